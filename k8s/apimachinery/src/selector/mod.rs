//! Label and field selectors, with upstream's semantics and error text.
//!
//! - [`Selector`]: `?labelSelector=` strings ([`Selector::parse`]) and
//!   `metav1.LabelSelector` objects ([`Selector::from_label_selector`]),
//!   matched against an object's labels.
//! - [`FieldSelector`]: `?fieldSelector=` strings, bound to a kind's
//!   [`SelectableFields`] to check the labels and read values from JSON.
//!
//! Every error's `Display` is the message upstream's API server puts in
//! its 400 BadRequest (or 422 Invalid for a `metav1.LabelSelector`), so the
//! API server can return it unchanged.

mod field_error;
mod fields;
mod label_selector;
mod labels;
pub mod validation;

pub use field_error::{BadValue, FieldError, FieldErrorKind, FieldErrors, FieldPath};
pub use fields::{
    FieldMatcher, FieldOperator, FieldSelector, FieldSelectorError, FieldSelectorParseError, FieldTerm,
    SelectableFields, escape_value, field_value, unescape_value,
};
pub use labels::{Labels, Operator, ParseError, Requirement, RequirementError, Selector};
