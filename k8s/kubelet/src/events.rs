//! Events about pods and the node, in the shape upstream's kubelet records
//! them (`source.component: kubelet`), so `kubectl describe` and
//! `kubectl get events` show what happened. Best effort: a failed post is
//! logged, never retried.

use serde_json::json;

use crate::Agent;

/// The object an event is about.
pub struct Involved<'a> {
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    /// e.g. `spec.containers{web}`.
    pub field_path: Option<String>,
}

pub fn record(agent: &Agent, about: Involved<'_>, warning: bool, reason: &str, message: String) {
    let now = crate::now_rfc3339();
    let ns = if about.namespace.is_empty() { "default" } else { about.namespace };
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut involved = json!({
        "apiVersion": "v1",
        "kind": about.kind,
        "name": about.name,
        "uid": about.uid,
    });
    if !about.namespace.is_empty() {
        involved["namespace"] = json!(about.namespace);
    }
    if let Some(f) = &about.field_path {
        involved["fieldPath"] = json!(f);
    }
    let ev = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{}.{:x}", about.name, nanos), "namespace": ns},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": if warning { "Warning" } else { "Normal" },
        "source": {"component": "kubelet", "host": agent.cfg.node_name},
        "reportingComponent": "kubelet",
        "reportingInstance": agent.cfg.node_name,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    let client = agent.client.clone();
    let path = format!("/api/v1/namespaces/{ns}/events");
    tokio::spawn(async move {
        if let Err(e) = client.create(&path, &ev).await {
            tracing::debug!(error = %e, "event not recorded");
        }
    });
}
