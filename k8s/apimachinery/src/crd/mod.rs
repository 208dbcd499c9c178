//! CustomResourceDefinitions (apiextensions.k8s.io/v1) and the custom
//! resources they define, following upstream's apiextensions-apiserver:
//!
//! - [`CrdInfo::from_crd`] validates a CRD as upstream does on create and
//!   reads names, scope and per-version schema, printer columns,
//!   subresources and selectable fields; [`CrdInfo::resources`] gives the
//!   resource-table entries of the served versions.
//! - [`status_for`] is the status upstream's controllers write.
//! - [`prune`], [`default`] and [`validate`] process a custom resource
//!   against one version's structural schema, in that order.
//!
//! Problems are [`FieldProblem`]s that print as upstream's field errors.
//! CEL rules (`x-kubernetes-validations`) are not evaluated.

mod defaults;
mod definition;
mod problem;
mod prune;
mod scale;
mod schema;
mod status;
#[cfg(test)]
mod tests;
mod validate;
mod validation;

pub use defaults::default;
pub use definition::{CrdInfo, CrdNames, CrdVersion, PrinterColumn, ScaleSubresource};
pub use problem::{BadValue, FieldProblem, ProblemKind};
pub use prune::prune;
pub use scale::validate_scale;
pub use status::status_for;
pub use validate::validate;
