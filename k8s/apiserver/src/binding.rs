//! `Binding`: how the scheduler puts a pod on a node (`POST
//! pods/<name>/binding`, or the `bindings` collection). Upstream's
//! `assignPod`: the pod gets `spec.nodeName` and the `PodScheduled`
//! condition, once; binding a bound or deleting pod is a conflict.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::api::Ctx;
use crate::status::{ApiError, Cause};
use crate::{body, objects};

pub fn is_binding(ctx: &Ctx) -> bool {
    ctx.is("", "bindings") || (ctx.is("", "pods") && ctx.req.subresource.as_deref() == Some("binding"))
}

fn conflict(pod: &str, why: String) -> ApiError {
    ApiError::Conflict {
        resource: "pods/binding".into(),
        group: String::new(),
        plural: "pods/binding".into(),
        name: pod.into(),
        detail: why,
    }
}

pub async fn create(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let bytes = body::read(body).await?;
    let binding = body::decode_object(&bytes, &body::content_type(&ctx.headers))?;
    let name = objects::meta_str(&binding, "name").unwrap_or("").to_string();
    let pod_name = ctx.req.name.clone().unwrap_or_else(|| name.clone());
    let invalid = |cause: Cause| ApiError::Invalid {
        group: String::new(),
        kind: "Binding".into(),
        name: name.clone(),
        causes: vec![cause],
    };
    if pod_name.is_empty() {
        return Err(invalid(Cause::required("metadata.name", "")));
    }
    if ctx.req.name.is_some() && !name.is_empty() && name != pod_name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({name}) does not match the name on the URL ({pod_name})"
        )));
    }
    let node = binding["target"]["name"].as_str().unwrap_or("").to_string();
    if node.is_empty() {
        return Err(invalid(Cause::required("target.name", "")));
    }
    if !matches!(binding["target"]["kind"].as_str(), None | Some("") | Some("Node")) {
        return Err(invalid(Cause::invalid(
            "target.kind",
            &binding["target"]["kind"],
            "must be empty or 'Node'",
        )));
    }
    let pods = ctx.api.find("", "v1", "pods").ok_or(ApiError::NoRoute)?;
    let key = objects::key(&pods, &ctx.req.namespace, &pod_name);
    let annotations = binding["metadata"]["annotations"].clone();
    for _ in 0..crate::crud::MAX_ATTEMPTS {
        let k = key.clone();
        let kv = ctx.store(&pod_name, move |s| s.get(&k, None)).await?.ok_or_else(|| ApiError::NotFound {
            resource: "pods".into(),
            group: String::new(),
            plural: "pods".into(),
            name: pod_name.clone(),
        })?;
        let mut pod = objects::decode(&kv)?;
        if objects::meta(&pod).get("deletionTimestamp").is_some_and(|t| !t.is_null()) {
            return Err(conflict(
                &pod_name,
                format!("pod {pod_name} is being deleted, cannot be assigned to a host"),
            ));
        }
        if let Some(bound) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            return Err(conflict(&pod_name, format!("pod {pod_name} is already assigned to node {bound:?}")));
        }
        pod["spec"]["nodeName"] = json!(node);
        if let Some(a) = annotations.as_object() {
            let m = objects::meta_mut(&mut pod);
            let target = m.entry("annotations").or_insert(json!({}));
            for (k, v) in a {
                target[k] = v.clone();
            }
        }
        set_scheduled(&mut pod);
        if ctx.params.dry_run() {
            break;
        }
        let (k, value) = (key.clone(), objects::encode(&pod)?);
        match ctx.store(&pod_name, move |s| s.update(&k, &value, kv.mod_revision)).await {
            Ok(_) => break,
            Err(ApiError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(body::json(StatusCode::CREATED, &crate::status::success(json!({})), &ctx.headers))
}

/// `PodScheduled=True`, replacing an earlier PodScheduled condition.
fn set_scheduled(pod: &mut Value) {
    let now = objects::now_rfc3339();
    let cond =
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
    let conditions = &mut pod["status"]["conditions"];
    match conditions.as_array_mut() {
        Some(list) => {
            list.retain(|c| c["type"] != "PodScheduled");
            list.push(cond);
        }
        None => *conditions = json!([cond]),
    }
}
