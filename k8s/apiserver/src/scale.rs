//! The `scale` subresource: an `autoscaling/v1 Scale` view of a workload's
//! replicas (`kubectl scale` PATCHes it).

use serde_json::{Value, json};

use crate::api::Ctx;
use crate::objects;
use crate::status::{ApiError, Cause};

/// Where a kind keeps its replicas: (spec path, status path, selector path).
fn paths(ctx: &Ctx) -> (String, String, Option<String>) {
    if let Some(s) = crate::crds::version(ctx).and_then(|v| v.scale) {
        return (s.spec_replicas_path, s.status_replicas_path, s.label_selector_path);
    }
    (".spec.replicas".into(), ".status.replicas".into(), None)
}

/// The Scale of a Deployment, ReplicaSet, StatefulSet, ReplicationController
/// or a custom resource with a scale subresource.
pub fn scale_of(ctx: &Ctx, obj: &Value) -> Result<Value, ApiError> {
    let (spec_path, status_path, selector_path) = paths(ctx);
    if let Some(sel) = selector_path {
        let m = objects::meta(obj);
        let mut status = json!({"replicas": crate::crds::get_path(obj, &status_path).and_then(Value::as_i64).unwrap_or(0)});
        if let Some(s) = crate::crds::get_path(obj, &sel).and_then(Value::as_str) {
            status["selector"] = json!(s);
        }
        return Ok(json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                         "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
            "spec": {"replicas": crate::crds::get_path(obj, &spec_path).and_then(Value::as_i64).unwrap_or(0)},
            "status": status,
        }));
    }
    let m = objects::meta(obj);
    let selector = match &obj["spec"]["selector"] {
        Value::Object(sel) if sel.contains_key("matchLabels") || sel.contains_key("matchExpressions") => {
            crate::selectors::format_label_selector(&obj["spec"]["selector"])
        }
        Value::Object(sel) => {
            // ReplicationController: a plain map.
            let mut parts: Vec<String> =
                sel.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect();
            parts.sort();
            parts.join(",")
        }
        _ => String::new(),
    };
    let mut meta = json!({
        "name": m["name"],
        "namespace": m["namespace"],
        "uid": m["uid"],
        "resourceVersion": m["resourceVersion"],
        "creationTimestamp": m["creationTimestamp"],
    });
    if let Some(o) = meta.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    let mut status = json!({"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0)});
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    let _ = ctx;
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": status,
    }))
}

/// The workload with the replicas a Scale asks for.
pub fn apply_scale(ctx: &Ctx, current: &Value, scale: &Value) -> Result<Value, ApiError> {
    let replicas = &scale["spec"]["replicas"];
    let n = match replicas {
        Value::Null => 0,
        v => v
            .as_i64()
            .ok_or_else(|| ApiError::BadRequest(format!("spec.replicas: expected an integer, got {v}")))?,
    };
    if n < 0 {
        return Err(ApiError::Invalid {
            group: "autoscaling".into(),
            kind: "Scale".into(),
            name: objects::meta_str(current, "name").unwrap_or("").into(),
            causes: vec![Cause::invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
        });
    }
    let mut out = current.clone();
    let (spec_path, _, _) = paths(ctx);
    crate::crds::set_path(&mut out, &spec_path, json!(n));
    if out["spec"] != current["spec"]
        && let Some(g) = objects::meta(current).get("generation").and_then(Value::as_i64)
    {
        objects::meta_mut(&mut out).insert("generation".into(), json!(g + 1));
    }
    let _ = ctx;
    Ok(out)
}
