//! Role-based access control evaluated as upstream's RBAC authorizer
//! (`plugin/pkg/auth/authorizer/rbac`): ClusterRoleBindings first, then the
//! RoleBindings of the request's namespace; the first rule that allows the
//! request wins. Roles and bindings are read from the store ([`cache`]);
//! ClusterRoles with an `aggregationRule` are evaluated with the union of
//! the rules of the ClusterRoles their selectors match. The default roles
//! and bindings every cluster starts with are in [`defaults`].
//!
//! Only [`cache`] (reads) and [`install`] (the defaults at start) touch the
//! store; nothing here knows HTTP.

pub mod cache;
pub mod defaults;
pub mod escalation;
pub mod install;
pub mod policy;
pub mod rules;

pub use cache::Cache;
pub use policy::{Decision, Policy};
pub use rules::{PolicyRule, Request, ResourceAttributes};
