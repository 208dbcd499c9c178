//! `metadata.managedFields` on every write, as upstream's field manager
//! keeps it: who the request's manager is (`fieldManager`, else the
//! program in the User-Agent), which part of the object the endpoint owns,
//! and the bookkeeping of creates, updates and non-apply patches. Server-
//! side apply does its own in [`crate::apply`].

use axum::http::header;
use lichen_apimachinery::fieldpath::{ManagedFields, ManagerId, Operation, Reset, TypeRef, Updater};
use serde_json::{Value, json};

use crate::api::Ctx;
use crate::objects;
use crate::request::Verb;

/// The content type of server-side apply.
pub const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// The longest manager name upstream keeps from a User-Agent.
const MAX_MANAGER_LEN: usize = 128;

/// The manager of this request: `fieldManager`, else the User-Agent up to
/// its first `/` (`kubectl/v1.37.1 (linux/amd64) …` → `kubectl`).
pub fn manager(ctx: &Ctx) -> String {
    if let Some(m) = ctx.params.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    let agent = ctx.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let program = agent.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in program.chars().filter(|c| !c.is_control()) {
        if out.len() >= MAX_MANAGER_LEN {
            break;
        }
        out.push(c);
    }
    out
}

/// The manager's identity for this request's endpoint.
pub fn id(ctx: &Ctx, operation: Operation) -> ManagerId {
    ManagerId {
        manager: manager(ctx),
        operation,
        subresource: ctx.req.subresource.clone().unwrap_or_default(),
        api_version: ctx.res.api_version(),
    }
}

/// Field management for this request: the kind's schema, and the part of
/// the object the endpoint does not write (`status` through the main
/// resource of a kind with a status subresource, all but `status` through
/// that subresource).
pub fn updater(ctx: &Ctx) -> Updater<'static> {
    let has_status = ctx.res.subresources.iter().any(|s| s.name == "status");
    let reset = match ctx.req.subresource.as_deref() {
        Some("status") => Reset::AllButStatus,
        None if has_status => Reset::Status,
        _ => Reset::Nothing,
    };
    Updater {
        ty: TypeRef::for_kind(&ctx.res.group, &ctx.res.version, &ctx.res.kind),
        reset,
        api_version: ctx.res.api_version(),
        now: objects::now_rfc3339(),
    }
}

/// Whether this request is a server-side apply that manages its fields
/// itself (an apply to `scale` is recorded as an update of the workload).
pub fn is_apply(ctx: &Ctx) -> bool {
    ctx.req.verb == Verb::Patch
        && crate::body::content_type(&ctx.headers) == APPLY_PATCH
        && ctx.req.subresource.as_deref() != Some("scale")
}

/// `obj` without its `managedFields`.
pub fn without_managed_fields(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(Value::Object(m)) = out.get_mut("metadata") {
        m.remove("managedFields");
    }
    out
}

/// Writes `managed` into `obj` (removing the field when nobody manages
/// anything).
pub fn set(obj: &mut Value, managed: &ManagedFields) {
    let m = objects::meta_mut(obj);
    match managed.encode() {
        Some(list) => m.insert("managedFields".into(), list),
        None => m.remove("managedFields"),
    };
}

/// The managers a write starts from: the request's own `managedFields`
/// when it sends valid, non-empty ones on the main resource (`[]` or `[{}]`
/// reset them), else the live object's.
fn starting_point(ctx: &Ctx, live: Option<&Value>, new: &Value) -> ManagedFields {
    let from_live = || {
        let list = live.and_then(|l| objects::meta(l).get("managedFields"));
        ManagedFields::decode(list).unwrap_or_default()
    };
    if ctx.req.subresource.is_some() {
        return from_live();
    }
    let sent = objects::meta(new).get("managedFields");
    if ManagedFields::is_reset(sent) {
        return ManagedFields::default();
    }
    match ManagedFields::decode(sent) {
        Ok(m) if !m.is_empty() => m,
        _ => from_live(),
    }
}

/// Records a create (`live` is `None`), update or non-apply patch by this
/// request's manager in `new`'s `managedFields`. Objects that were never
/// tracked (or whose managers were reset) stay untracked until applied;
/// if the object cannot be walked, the live object's managers are kept.
pub fn track(ctx: &Ctx, live: Option<&Value>, new: &mut Value) {
    if is_apply(ctx) {
        return;
    }
    let mut managed = starting_point(ctx, live, new);
    if managed.is_empty() && live.is_some() {
        objects::meta_mut(new).remove("managedFields");
        return;
    }
    let before = live.map_or_else(|| json!({}), without_managed_fields);
    let after = without_managed_fields(new);
    match updater(ctx).update(&before, &after, &mut managed, &id(ctx, Operation::Update)) {
        Ok(()) => set(new, &managed),
        Err(_) => {
            let kept = live.and_then(|l| objects::meta(l).get("managedFields")).cloned();
            let m = objects::meta_mut(new);
            match kept {
                Some(k) => m.insert("managedFields".into(), k),
                None => m.remove("managedFields"),
            };
        }
    }
}
