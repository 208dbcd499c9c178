//! Single-object verbs: get, create, update (PUT), patch, delete, and the
//! `status`, `scale` and `finalize` subresources.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::api::Ctx;
use crate::status::{ApiError, Cause};
use crate::{body, lifecycle, objects, scale, table};

/// Compare-and-swap attempts before a write gives up with Conflict: only
/// writers racing on one object retry, so this is never reached in practice
/// (upstream retries without a bound).
pub const MAX_ATTEMPTS: usize = 1000;

/// Reads the current object, `NotFound` if absent.
pub async fn current(ctx: &Ctx, name: &str) -> Result<(Value, i64), ApiError> {
    let key = objects::key(&ctx.res, &ctx.req.namespace, name);
    let kv = ctx.store(name, move |s| s.get(&key, None)).await?.ok_or_else(|| ctx.not_found(name))?;
    Ok((objects::decode_for(&ctx.res, &kv)?, kv.mod_revision))
}

fn url_name(ctx: &Ctx) -> Result<&str, ApiError> {
    ctx.req.name.as_deref().ok_or(ApiError::NoRoute)
}

/// One object, or a one-row Table for kubectl.
pub fn respond(ctx: &Ctx, code: StatusCode, obj: &Value) -> Response {
    if ctx.req.subresource.is_none() && body::wants_table(&ctx.headers) {
        let t = table::table(
            ctx,
            std::slice::from_ref(obj),
            json!({"resourceVersion": objects::meta_str(obj, "resourceVersion")}),
        );
        return body::json(code, &t, &ctx.headers);
    }
    body::json(code, obj, &ctx.headers)
}

pub async fn get(ctx: &Ctx) -> Result<Response, ApiError> {
    let name = url_name(ctx)?;
    let (obj, _) = current(ctx, name).await?;
    let obj = match ctx.req.subresource.as_deref() {
        Some("scale") => scale::scale_of(ctx, &obj)?,
        _ => obj,
    };
    Ok(respond(ctx, StatusCode::OK, &obj))
}

/// The body's apiVersion and kind must be the endpoint's (missing ones are
/// filled in, as upstream's decoder defaults them).
pub fn check_type(ctx: &Ctx, obj: &mut Value, api_version: &str, kind: &str) -> Result<(), ApiError> {
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => obj["apiVersion"] = json!(api_version),
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = json!(kind),
        Some(k) if k == kind => {}
        Some(k) => {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({kind}) of {}",
                ctx.qualified()
            )));
        }
    }
    Ok(())
}

fn check_namespace(ctx: &Ctx, obj: &mut Value) -> Result<(), ApiError> {
    let body_ns = objects::meta_str(obj, "namespace").unwrap_or("").to_string();
    if ctx.res.namespaced {
        if ctx.req.namespace.is_empty() {
            return Err(ApiError::NoRoute);
        }
        if !body_ns.is_empty() && body_ns != ctx.req.namespace {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request"
                    .into(),
            ));
        }
        objects::meta_mut(obj).insert("namespace".into(), json!(ctx.req.namespace));
    } else {
        objects::meta_mut(obj).remove("namespace");
    }
    Ok(())
}

fn invalid(ctx: &Ctx, name: &str, causes: Vec<Cause>) -> ApiError {
    ApiError::Invalid { group: ctx.res.group.clone(), kind: ctx.res.kind.clone(), name: name.into(), causes }
}

pub async fn create(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    if ctx.req.name.is_some() {
        return Err(ApiError::MethodNotSupported { verb: "create".into(), resource: ctx.res.plural.clone() });
    }
    let bytes = body::read(body).await?;
    let content_type = body::content_type(&ctx.headers);
    let mut obj = body::decode_object(&bytes, &content_type)?;
    let (api_version, kind) = (ctx.res.api_version(), ctx.res.kind.clone());
    check_type(ctx, &mut obj, &api_version, &kind)?;
    let raw = (content_type.is_empty() || content_type == "application/json").then_some(&bytes[..]);
    let warnings = crate::validate::unknown_fields(ctx, &mut obj, raw, true)?;
    let obj = insert(ctx, obj).await?;
    Ok(crate::validate::with_warnings(respond(ctx, StatusCode::CREATED, &obj), &warnings))
}

/// The create path after decoding, shared with server-side apply's upsert:
/// namespace and name checks, server fields, defaults, managedFields,
/// validation, and the store. Returns the object as stored.
pub async fn insert(ctx: &Ctx, mut obj: Value) -> Result<Value, ApiError> {
    check_namespace(ctx, &mut obj)?;
    let name = match objects::meta_str(&obj, "name").filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => match objects::meta_str(&obj, "generateName").filter(|n| !n.is_empty()) {
            Some(base) => objects::generated_name(base),
            None => {
                return Err(invalid(
                    ctx,
                    "",
                    vec![Cause::required("metadata.name", "name or generateName is required")],
                ));
            }
        },
    };
    let causes = objects::validate_name(objects::name_rule(&ctx.res), &name, "metadata.name");
    if !causes.is_empty() {
        return Err(invalid(ctx, &name, causes));
    }
    if ctx.res.namespaced {
        lifecycle::check_namespace_open(ctx, &name).await?;
    }
    lifecycle::prepare_create(ctx, &mut obj, &name);
    let causes = crate::validate::admit(ctx, &mut obj);
    crate::managed::track(ctx, None, &mut obj);
    objects::normalize(&mut obj);
    crate::authz::check_escalation(ctx, &obj).await?;
    if !causes.is_empty() {
        return Err(invalid(ctx, &name, causes));
    }
    let _services = if ctx.is("", "services") {
        let guard = ctx.api.service_lock.lock().await;
        crate::services::allocate(ctx, &mut obj, None).await?;
        Some(guard)
    } else {
        None
    };
    if !ctx.params.dry_run() {
        let key = objects::key(&ctx.res, &ctx.req.namespace, &name);
        let value = objects::encode_for(&ctx.res, &obj)?;
        let kv = ctx.store(&name, move |s| s.create(&key, &value)).await?;
        objects::set_resource_version(&mut obj, kv.mod_revision);
    }
    Ok(obj)
}

pub async fn update(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let name = url_name(ctx)?.to_string();
    let bytes = body::read(body).await?;
    let content_type = body::content_type(&ctx.headers);
    let mut new = body::decode_object(&bytes, &content_type)?;
    let warnings = if ctx.req.subresource.is_none() {
        let raw = (content_type.is_empty() || content_type == "application/json").then_some(&bytes[..]);
        crate::validate::unknown_fields(ctx, &mut new, raw, true)?
    } else {
        Vec::new()
    };
    let r = write_loop(ctx, &name, |_| Ok(new.clone()), true).await?;
    Ok(crate::validate::with_warnings(r, &warnings))
}

pub async fn patch(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let name = url_name(ctx)?.to_string();
    let bytes = body::read(body).await?;
    let content_type = body::content_type(&ctx.headers);
    let kind = crate::patch::kind_of(&content_type)?;
    if kind == crate::patch::Kind::Patch(lichen_apimachinery::patch::PatchType::StrategicMerge)
        && crate::crds::version(ctx).is_some()
    {
        // Custom resources have no patch strategies to merge by.
        return Err(ApiError::UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
        ));
    }
    let apply = kind == crate::patch::Kind::Apply;
    crate::apply::check_options(ctx, apply)?;
    let warnings = std::sync::Mutex::new(Vec::new());
    let r = write_loop(
        ctx,
        &name,
        |current| {
            let mut new = crate::patch::apply(ctx, kind, current, &bytes)?;
            if ctx.req.subresource.is_none() {
                let w = crate::validate::unknown_fields(ctx, &mut new, None, false)?;
                if let Ok(mut slot) = warnings.lock() {
                    *slot = w;
                }
            }
            Ok(new)
        },
        false,
    )
    .await;
    let r = match r {
        // Server-side apply creates what does not exist yet.
        Err(ApiError::NotFound { .. }) if apply && ctx.req.subresource.is_none() => {
            return crate::apply::create(ctx, &name, &bytes).await;
        }
        r => r?,
    };
    let warnings = warnings.into_inner().unwrap_or_default();
    Ok(crate::validate::with_warnings(r, &warnings))
}

/// Read, change, compare-and-swap; retried when another writer got in
/// between and the client did not pin a resourceVersion.
async fn write_loop(
    ctx: &Ctx,
    name: &str,
    change: impl Fn(&Value) -> Result<Value, ApiError>,
    is_put: bool,
) -> Result<Response, ApiError> {
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            tokio::task::yield_now().await;
        }
        let (current, rev) = current(ctx, name).await?;
        let base = match ctx.req.subresource.as_deref() {
            Some("scale") => scale::scale_of(ctx, &current)?,
            _ => current.clone(),
        };
        let mut new = change(&base)?;
        let (api_version, kind) = match ctx.req.subresource.as_deref() {
            Some("scale") => ("autoscaling/v1".to_string(), "Scale".to_string()),
            _ => (ctx.res.api_version(), ctx.res.kind.clone()),
        };
        check_type(ctx, &mut new, &api_version, &kind)?;
        let new_name = objects::meta_str(&new, "name").unwrap_or("");
        if !new_name.is_empty() && new_name != name || (is_put && new_name.is_empty()) {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({new_name}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(ns) = objects::meta_str(&new, "namespace")
            && !ns.is_empty()
            && ns != ctx.req.namespace
        {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request"
                    .into(),
            ));
        }
        // A uid in the body is a precondition, as upstream's update checks
        // it: a writer of an object deleted and re-created under the same
        // name (an agent reporting a pod's status) gets a conflict.
        if let Some(uid) = objects::meta_str(&new, "uid").filter(|u| !u.is_empty())
            && objects::meta_str(&current, "uid") != Some(uid)
        {
            let have = objects::meta_str(&current, "uid").unwrap_or("").to_owned();
            return Err(lifecycle::precondition(ctx, name, "UID", uid, &have));
        }
        // A PUT body's resourceVersion pins the write; a patch pins it only
        // if it changed the one it was applied to (the current object's).
        let base_rv = objects::meta_str(&base, "resourceVersion");
        let pinned = objects::meta_str(&new, "resourceVersion")
            .filter(|v| !v.is_empty() && (is_put || Some(*v) != base_rv))
            .map(String::from);
        if let Some(p) = &pinned
            && *p != rev.to_string()
        {
            return Err(ctx.conflict(name));
        }
        let mut merged = match ctx.req.subresource.as_deref() {
            Some("scale") => scale::apply_scale(ctx, &current, &new)?,
            sub => lifecycle::merge_update(ctx, sub, &current, new),
        };
        let _services = if ctx.is("", "services") && ctx.req.subresource.is_none() {
            let guard = ctx.api.service_lock.lock().await;
            crate::services::allocate(ctx, &mut merged, Some(&current)).await?;
            Some(guard)
        } else {
            None
        };
        let causes = crate::validate::admit(ctx, &mut merged);
        crate::managed::track(ctx, Some(&current), &mut merged);
        objects::normalize(&mut merged);
        crate::authz::check_escalation(ctx, &merged).await?;
        if !causes.is_empty() {
            return Err(invalid(ctx, name, causes));
        }
        let answer = |obj: &Value| -> Response {
            match ctx.req.subresource.as_deref() {
                Some("scale") => match scale::scale_of(ctx, obj) {
                    Ok(s) => respond(ctx, StatusCode::OK, &s),
                    Err(e) => axum::response::IntoResponse::into_response(e),
                },
                _ => respond(ctx, StatusCode::OK, obj),
            }
        };
        if lifecycle::unchanged(&merged, &current) {
            return Ok(answer(&current));
        }
        if ctx.params.dry_run() {
            objects::set_resource_version(&mut merged, rev);
            return Ok(answer(&merged));
        }
        if lifecycle::finalized(&merged) {
            let key = objects::key(&ctx.res, &ctx.req.namespace, name);
            let n = name.to_string();
            return match ctx.store(name, move |s| s.delete(&key, Some(rev))).await {
                Ok(kv) => {
                    let mut gone = merged;
                    objects::set_resource_version(&mut gone, kv.mod_revision);
                    Ok(answer(&gone))
                }
                Err(ApiError::Conflict { .. }) if pinned.is_none() => continue,
                Err(e) => Err(e),
            }
            .map_err(|e| if let ApiError::NotFound { .. } = e { ctx.not_found(&n) } else { e });
        }
        let key = objects::key(&ctx.res, &ctx.req.namespace, name);
        let value = objects::encode_for(&ctx.res, &merged)?;
        match ctx.store(name, move |s| s.update(&key, &value, rev)).await {
            Ok(kv) => {
                let mut obj = merged;
                objects::set_resource_version(&mut obj, kv.mod_revision);
                return Ok(answer(&obj));
            }
            Err(ApiError::Conflict { .. }) if pinned.is_none() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ctx.conflict(name))
}

pub async fn delete(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let name = url_name(ctx)?.to_string();
    if ctx.req.subresource.is_some() {
        return Err(ApiError::MethodNotSupported { verb: "delete".into(), resource: ctx.res.plural.clone() });
    }
    let bytes = body::read(body).await?;
    let opts = lifecycle::DeleteOptions::parse(&bytes, &ctx.params)?;
    let (obj, gone) = lifecycle::delete_one(ctx, &name, &opts).await?;
    if !gone {
        // Held by finalizers or a grace period: the object, 202 when a
        // grace period runs (upstream).
        let graceful = objects::meta(&obj)["deletionGracePeriodSeconds"].as_i64().is_some_and(|g| g > 0);
        let code = if graceful && !opts.dry_run { StatusCode::ACCEPTED } else { StatusCode::OK };
        return Ok(body::json(code, &obj, &ctx.headers));
    }
    // Gone at once: upstream answers a Status, except for the kinds whose
    // registries return the deleted object (pods, custom resources).
    let returns_object = ctx.is("", "pods") || crate::crds::version(ctx).is_some();
    if returns_object {
        return Ok(body::json(StatusCode::OK, &obj, &ctx.headers));
    }
    let mut details = json!({"name": name, "kind": ctx.res.plural, "uid": objects::meta_str(&obj, "uid")});
    if !ctx.res.group.is_empty() {
        details["group"] = json!(ctx.res.group);
    }
    Ok(body::json(StatusCode::OK, &crate::status::success(details), &ctx.headers))
}

pub async fn delete_collection(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let bytes = body::read(body).await?;
    let opts = lifecycle::DeleteOptions::parse(&bytes, &ctx.params)?;
    let (items, rev) = crate::list::matching(ctx).await?;
    let mut deleted = Vec::new();
    for obj in items {
        let name = objects::meta_str(&obj, "name").unwrap_or("").to_string();
        match lifecycle::delete_one(ctx, &name, &opts).await {
            Ok((o, _)) => deleted.push(o),
            Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "kind": ctx.res.list_kind,
        "apiVersion": ctx.res.api_version(),
        "metadata": {"resourceVersion": rev.to_string()},
        "items": deleted,
    });
    Ok(body::json(StatusCode::OK, &list, &ctx.headers))
}
