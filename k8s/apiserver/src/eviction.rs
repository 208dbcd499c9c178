//! `Eviction` (`POST pods/<name>/eviction`, policy/v1): a delete that
//! honours PodDisruptionBudgets, as upstream's eviction REST. With no
//! budget the pod is deleted; with one, the eviction goes ahead only while
//! the budget's `disruptionsAllowed` (kept by the disruption controller) is
//! positive, and takes one from it first (recording the pod under
//! `disruptedPods`); otherwise 429 TooManyRequests, which `kubectl drain`
//! retries. A pod that is not running yet, already finished, or unhealthy
//! while the budget is met is deleted without using the budget.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use lichen_apimachinery::selector::Selector;
use serde_json::{Value, json};

use crate::api::Ctx;
use crate::request::Verb;
use crate::status::ApiError;
use crate::{body, lifecycle, objects};

pub fn is_eviction(ctx: &Ctx) -> bool {
    ctx.is("", "pods") && ctx.req.subresource.as_deref() == Some("eviction")
}

const VIOLATION: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

fn too_many(cause: String) -> ApiError {
    ApiError::TooManyRequests { message: VIOLATION.into(), cause, retry_after: 0 }
}

pub async fn create(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    if ctx.req.verb != Verb::Create {
        return Err(ApiError::MethodNotSupported {
            verb: ctx.req.verb.as_str().into(),
            resource: "pods/eviction".into(),
        });
    }
    let bytes = body::read(body).await?;
    let eviction = body::decode_object(&bytes, &body::content_type(&ctx.headers))?;
    let pod_name = ctx.req.name.clone().unwrap_or_default();
    let name = objects::meta_str(&eviction, "name").unwrap_or("");
    if !name.is_empty() && name != pod_name {
        return Err(ApiError::BadRequest("name in URL does not match name in Eviction object".into()));
    }
    let pods = ctx.api.find("", "v1", "pods").ok_or(ApiError::NoRoute)?;
    let key = objects::key(&pods, &ctx.req.namespace, &pod_name);
    let k = key.clone();
    let kv = ctx.store(&pod_name, move |s| s.get(&k, None)).await?.ok_or_else(|| ctx.not_found(&pod_name))?;
    let pod = objects::decode(&kv)?;
    let options = eviction.get("deleteOptions").cloned().unwrap_or(json!({}));
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    let deleting = objects::meta(&pod).get("deletionTimestamp").is_some_and(|t| !t.is_null());
    // Pods that are not running, or already going, cost no budget.
    if deleting || matches!(phase, "Pending" | "Succeeded" | "Failed" | "") {
        return delete(ctx, &pod_name, &options).await;
    }
    let budgets = matching_budgets(ctx, &pod).await?;
    match budgets.len() {
        0 => return delete(ctx, &pod_name, &options).await,
        1 => {}
        _ => {
            return Err(ApiError::Internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
                    .into(),
            ));
        }
    }
    let (pdb_key, mut pdb, rev) = budgets.into_iter().next().unwrap_or_default();
    let pdb_name = objects::meta_str(&pdb, "name").unwrap_or("").to_owned();
    let status = &pdb["status"];
    if status["observedGeneration"].as_i64().unwrap_or(0)
        < objects::meta(&pdb)["generation"].as_i64().unwrap_or(0)
    {
        return Err(too_many(format!(
            "The disruption budget {pdb_name} is still being processed by the server."
        )));
    }
    let healthy = status["currentHealthy"].as_i64().unwrap_or(0);
    let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
    let ready = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    let policy = pdb["spec"]["unhealthyPodEvictionPolicy"].as_str().unwrap_or("IfHealthyBudget");
    if !ready && (policy == "AlwaysAllow" || healthy >= desired) {
        return delete(ctx, &pod_name, &options).await;
    }
    let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
    if allowed < 0 {
        return Err(ApiError::Forbidden("pdb disruptions allowed is negative".into()));
    }
    if allowed == 0 {
        return Err(too_many(format!(
            "The disruption budget {pdb_name} needs {desired} healthy pods and has {healthy} currently"
        )));
    }
    let dry_run =
        ctx.params.dry_run() || options["dryRun"].as_array().is_some_and(|d| d.iter().any(|v| v == "All"));
    if dry_run {
        return delete(ctx, &pod_name, &options).await;
    }
    // Take one disruption from the budget before deleting, so concurrent
    // evictions cannot both use the last one.
    pdb["status"]["disruptionsAllowed"] = json!(allowed - 1);
    pdb["status"]["disruptedPods"][&pod_name] = json!(objects::now_rfc3339());
    let value = objects::encode(&pdb)?;
    match ctx.store(&pdb_name, move |s| s.update(&pdb_key, &value, rev)).await {
        Ok(_) => {}
        Err(ApiError::Conflict { .. }) => {
            return Err(ApiError::Conflict {
                resource: "poddisruptionbudgets.policy".into(),
                group: "policy".into(),
                plural: "poddisruptionbudgets".into(),
                name: pdb_name,
                detail: "the object has been modified; please apply your changes to the latest version and try again"
                    .into(),
            });
        }
        Err(e) => return Err(e),
    }
    delete(ctx, &pod_name, &options).await
}

/// The budgets in the pod's namespace whose selector matches it, with
/// their store keys and revisions.
async fn matching_budgets(ctx: &Ctx, pod: &Value) -> Result<Vec<(String, Value, i64)>, ApiError> {
    let res = ctx.api.find("policy", "v1", "poddisruptionbudgets").ok_or(ApiError::NoRoute)?;
    let prefix = objects::prefix(&res, &ctx.req.namespace);
    let list = ctx.store("", move |s| s.list(&prefix, None, None, None)).await?;
    let mut out = Vec::new();
    for kv in list.items {
        let pdb = objects::decode(&kv)?;
        // policy/v1: a missing (or broken) selector selects nothing, `{}`
        // every pod.
        let Ok(sel) = Selector::from_label_selector(pdb["spec"].get("selector"), "spec.selector") else {
            continue;
        };
        if !sel.matches_object(pod) {
            continue;
        }
        out.push((kv.key.clone(), pdb, kv.mod_revision));
    }
    Ok(out)
}

/// Deletes the pod as a DELETE with the eviction's options would; 201
/// with a success Status, as upstream.
async fn delete(ctx: &Ctx, pod: &str, options: &Value) -> Result<Response, ApiError> {
    let pods = ctx.api.find("", "v1", "pods").ok_or(ApiError::NoRoute)?;
    let mut req = ctx.req.clone();
    req.subresource = None;
    req.verb = Verb::Delete;
    let del = Ctx {
        api: ctx.api.clone(),
        req,
        res: pods,
        params: ctx.params.clone(),
        headers: ctx.headers.clone(),
        identity: ctx.identity.clone(),
    };
    let bytes = serde_json::to_vec(options).map_err(ApiError::internal)?;
    let opts = lifecycle::DeleteOptions::parse(&bytes, &ctx.params)?;
    lifecycle::delete_one(&del, pod, &opts).await?;
    Ok(body::json(StatusCode::CREATED, &crate::status::success(json!({})), &ctx.headers))
}
