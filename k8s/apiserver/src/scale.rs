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
    let custom = crate::crds::version(ctx).is_some();
    let selector = match &selector_path {
        Some(path) => {
            crate::crds::get_path(obj, path).and_then(Value::as_str).unwrap_or_default().to_string()
        }
        None if custom => String::new(),
        None => builtin_selector(&obj["spec"]["selector"]),
    };
    let m = objects::meta(obj);
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
    let read = |path: &str| crate::crds::get_path(obj, path).and_then(Value::as_i64);
    let mut status = json!({"replicas": read(&status_path).unwrap_or(0)});
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    // Built-in workloads default to one replica; a custom resource has what
    // its spec path holds.
    let replicas = read(&spec_path).unwrap_or(if custom { 0 } else { 1 });
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": replicas},
        "status": status,
    }))
}

/// A built-in workload's selector in string form: a `metav1.LabelSelector`,
/// or a ReplicationController's plain map.
fn builtin_selector(sel: &Value) -> String {
    match sel {
        Value::Object(m) if m.contains_key("matchLabels") || m.contains_key("matchExpressions") => {
            crate::selectors::format_label_selector(sel)
        }
        Value::Object(m) => {
            let mut parts: Vec<String> =
                m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect();
            parts.sort();
            parts.join(",")
        }
        _ => String::new(),
    }
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
    Ok(out)
}
