//! Server-side apply (`application/apply-patch+yaml`): the PatchOptions
//! checks, merging a configuration into the live object along the kind's
//! schema with field ownership and conflicts, and creating the object when
//! it does not exist yet (apply upserts).

use axum::http::StatusCode;
use axum::response::Response;
use lichen_apimachinery::fieldpath::{ApplyError, ManagedFields, Operation, TypeRef, merge};
use serde_json::{Value, json};

use crate::api::Ctx;
use crate::managed;
use crate::objects;
use crate::status::{ApiError, Cause};

/// Upstream's limit on `fieldManager`.
const MAX_FIELD_MANAGER: usize = 128;

fn invalid_options(causes: Vec<Cause>) -> ApiError {
    ApiError::Invalid {
        group: "meta.k8s.io".into(),
        kind: "PatchOptions".into(),
        name: String::new(),
        causes,
    }
}

/// `PatchOptions` validation: apply needs a `fieldManager`, only apply may
/// say `force`, and a manager name is at most 128 printable characters.
pub fn check_options(ctx: &Ctx, apply: bool) -> Result<(), ApiError> {
    let manager = ctx.params.get("fieldManager").unwrap_or("");
    let mut causes = Vec::new();
    if !apply && ctx.params.get("force").is_some() {
        causes.push(Cause::forbidden("force", "may not be specified for non-apply patch"));
    }
    if apply && manager.is_empty() {
        causes.push(Cause::required("fieldManager", "is required for apply patch"));
    }
    if manager.len() > MAX_FIELD_MANAGER {
        causes.push(Cause {
            reason: "FieldValueTooLong",
            field: "fieldManager".into(),
            message: format!("Too long: may not be more than {MAX_FIELD_MANAGER} bytes"),
        });
    }
    if let Some((i, c)) = manager.char_indices().find(|(_, c)| c.is_control()) {
        let detail = format!("invalid character U+{:04X} (at position {i})", u32::from(c));
        causes.push(Cause::invalid("fieldManager", &json!(manager), &detail));
    }
    if causes.is_empty() { Ok(()) } else { Err(invalid_options(causes)) }
}

/// The applied configuration: YAML or JSON, of this endpoint's type,
/// without `managedFields`.
fn config(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let mut config: Value = serde_yaml_ng::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?;
    if !config.is_object() {
        return Err(ApiError::BadRequest("the apply configuration must be an object".into()));
    }
    let (api_version, kind) = match ctx.req.subresource.as_deref() {
        Some("scale") => ("autoscaling/v1".to_string(), "Scale".to_string()),
        _ => (ctx.res.api_version(), ctx.res.kind.clone()),
    };
    let sent = config.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if sent != api_version {
        return Err(ApiError::BadRequest(format!(
            "Incorrect version specified in apply patch. Specified patch version: {sent}, expected: {api_version}"
        )));
    }
    crate::crud::check_type(ctx, &mut config, &api_version, &kind)?;
    if objects::meta(&config).get("managedFields").is_some_and(|m| !m.is_null()) {
        return Err(ApiError::BadRequest("metadata.managedFields must be nil".into()));
    }
    Ok(config)
}

fn wire(ctx: &Ctx, name: &str, e: ApplyError) -> ApiError {
    match e {
        ApplyError::Conflicts(conflicts) => ApiError::ApplyConflict {
            message: conflicts.message(),
            causes: conflicts
                .0
                .iter()
                .map(|c| Cause {
                    reason: "FieldManagerConflict",
                    field: c.path.to_string(),
                    message: c.cause_message(),
                })
                .collect(),
        },
        ApplyError::Config(w) => ApiError::BadRequest(format!(
            "failed to create typed patch object ({}/{name}; {}, Kind={}): {w}",
            ctx.req.namespace,
            ctx.res.api_version(),
            ctx.res.kind
        )),
        ApplyError::Live(w) => ApiError::Internal(format!("failed to create typed live object: {w}")),
    }
}

/// Applies the configuration in `body` on top of `current` (through
/// `scale`: the current Scale), as this request's field manager.
pub fn apply(ctx: &Ctx, current: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let config = config(ctx, body)?;
    if ctx.req.subresource.as_deref() == Some("scale") {
        return merge(current, &config, TypeRef::Deduced).map_err(|e| ApiError::BadRequest(e.to_string()));
    }
    let name = objects::meta_str(current, "name").unwrap_or("").to_string();
    let list = objects::meta(current).get("managedFields");
    let mut managers = ManagedFields::decode(list)
        .map_err(|e| ApiError::Internal(format!("failed to decode managed fields: {e}")))?;
    let live = managed::without_managed_fields(current);
    let force = ctx.params.flag("force");
    let id = managed::id(ctx, Operation::Apply);
    let mut out = managed::updater(ctx)
        .apply(&live, &config, &mut managers, &id, force)
        .map_err(|e| wire(ctx, &name, e))?;
    managed::set(&mut out, &managers);
    if objects::meta(&config).get("resourceVersion").is_none() {
        // Not a precondition unless the configuration makes it one, so a
        // concurrent write is retried rather than refused.
        objects::meta_mut(&mut out).remove("resourceVersion");
    }
    Ok(out)
}

/// Apply to an object that does not exist: the configuration applied to
/// nothing, then created the way `POST` creates (names, namespace, server
/// fields, defaults, validation).
pub async fn create(ctx: &Ctx, name: &str, body: &[u8]) -> Result<Response, ApiError> {
    let config = config(ctx, body)?;
    match objects::meta_str(&config, "name").unwrap_or("") {
        "" => {}
        n if n == name => {}
        n => {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
    }
    let mut managers = ManagedFields::default();
    let id = managed::id(ctx, Operation::Apply);
    let mut obj = managed::updater(ctx)
        .apply(&json!({}), &config, &mut managers, &id, true)
        .map_err(|e| wire(ctx, name, e))?;
    objects::meta_mut(&mut obj).insert("name".into(), json!(name));
    managed::set(&mut obj, &managers);
    let warnings = crate::validate::unknown_fields(ctx, &mut obj, None, false)?;
    let obj = crate::crud::insert(ctx, obj).await?;
    Ok(crate::validate::with_warnings(crate::crud::respond(ctx, StatusCode::CREATED, &obj), &warnings))
}

#[cfg(test)]
mod tests;
