//! Field management, as upstream's structured-merge-diff and field manager
//! do it, for `metadata.managedFields` and server-side apply:
//!
//! - [`PathElement`], [`Path`] and [`Set`]: sets of field paths, encoded as
//!   `fieldsV1` by [`fieldsv1`] (`f:spec`, `k:{"name":"c"}`, `v:"x"`, `i:0`);
//! - [`TypeRef`]: what the kind's schema says (associative lists, atomic
//!   maps and lists; custom resources are deduced from the value);
//! - [`to_field_set`], [`compare`], [`merge`], [`remove_items`]: walking
//!   objects along the schema;
//! - [`ManagedFields`] and [`Updater`]: the managers of an object and what
//!   an update or an apply does to them, [`Conflicts`] when an apply would
//!   change another manager's fields.
//!
//! Nothing here does I/O or reads the clock: callers pass the time.

mod conflict;
mod element;
pub mod fieldsv1;
mod managers;
mod merge;
mod schema;
mod set;
mod updater;
mod value;
mod walk;

#[cfg(test)]
mod tests;

pub use conflict::{Conflict, Conflicts};
pub use element::{ElementError, Path, PathElement};
pub use fieldsv1::FieldsV1Error;
pub use managers::{Entry, ManagedFields, ManagedFieldsError, ManagerId, Operation};
pub use merge::{merge, remove_items};
pub use schema::{ListKind, Shape, TypeRef};
pub use set::Set;
pub use updater::{ApplyError, LAST_APPLIED, MAX_UPDATE_MANAGERS, Reset, Updater};
pub use walk::{Comparison, WalkError, compare, to_field_set};
