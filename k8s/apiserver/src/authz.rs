//! May this identity do this? `system:masters` may do anything; everyone
//! else is refused with upstream's message until RBAC is evaluated.

use crate::api::Ctx;
use crate::status::ApiError;

pub async fn authorize(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.identity.is_master() {
        return Ok(());
    }
    Err(forbidden(ctx))
}

/// `configmaps "x" is forbidden: User "bob" cannot get resource "configmaps"
/// in API group "" in the namespace "default"`.
pub fn forbidden(ctx: &Ctx) -> ApiError {
    let r = &ctx.req;
    let what = match &r.name {
        Some(n) => format!("{} {n:?} is forbidden", ctx.qualified()),
        None => format!("{} is forbidden", ctx.qualified()),
    };
    let resource = match &r.subresource {
        Some(s) => format!("{}/{s}", r.plural),
        None => r.plural.clone(),
    };
    let scope = if r.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {:?}", r.namespace)
    };
    ApiError::Forbidden(format!(
        "{what}: User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
        ctx.identity.user,
        r.verb.as_str(),
        r.group
    ))
}
