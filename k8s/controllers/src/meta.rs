//! Reading object metadata out of JSON, the pieces every controller uses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lichen_apimachinery::selector::Selector;
use serde_json::{Value, json};

/// A cache key: `ns/name`, or `name` for cluster-scoped objects.
pub fn key(namespace: &str, name: &str) -> String {
    if namespace.is_empty() { name.to_owned() } else { format!("{namespace}/{name}") }
}

pub fn key_of(obj: &Value) -> String {
    key(namespace(obj), name(obj))
}

/// Splits a key back into namespace and name.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

pub fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or("")
}

pub fn namespace(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or("")
}

pub fn uid(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or("")
}

pub fn resource_version(obj: &Value) -> &str {
    obj["metadata"]["resourceVersion"].as_str().unwrap_or("")
}

pub fn generation(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().unwrap_or(0)
}

/// Whether `a` is an older version than `b` (resourceVersions are the
/// store's revision numbers; anything else counts as not older).
pub fn older(a: &Value, b: &Value) -> bool {
    match (resource_version(a).parse::<u64>(), resource_version(b).parse::<u64>()) {
        (Ok(x), Ok(y)) => x < y,
        _ => false,
    }
}

pub fn label<'a>(obj: &'a Value, k: &str) -> Option<&'a str> {
    obj["metadata"]["labels"][k].as_str()
}

pub fn annotation<'a>(obj: &'a Value, k: &str) -> Option<&'a str> {
    obj["metadata"]["annotations"][k].as_str()
}

pub fn is_terminating(obj: &Value) -> bool {
    obj["metadata"]["deletionTimestamp"].is_string()
}

/// The owner reference with `controller: true`, if any.
pub fn controller_ref(obj: &Value) -> Option<&Value> {
    obj["metadata"]["ownerReferences"].as_array()?.iter().find(|r| r["controller"] == json!(true))
}

/// The uid of the controlling owner, or "".
pub fn controller_uid(obj: &Value) -> &str {
    controller_ref(obj).and_then(|r| r["uid"].as_str()).unwrap_or("")
}

/// An owner reference naming `owner` as controller, blocking its
/// foreground deletion, as upstream's controllers set them.
pub fn owner_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// The selector of `spec.selector` (a LabelSelector); a broken one matches
/// nothing.
pub fn selector(obj: &Value) -> Selector {
    Selector::from_label_selector(obj["spec"].get("selector"), "spec.selector")
        .unwrap_or_else(|_| Selector::nothing())
}

pub fn now() -> SystemTime {
    SystemTime::now()
}

pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    lichen_apimachinery::timestamp::format_rfc3339(i64::try_from(secs).unwrap_or(0))
}

pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// Parses an RFC 3339 timestamp field.
pub fn time(v: &Value) -> Option<SystemTime> {
    let secs = lichen_apimachinery::timestamp::parse_rfc3339(v.as_str()?)?;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

pub fn creation(obj: &Value) -> Option<SystemTime> {
    time(&obj["metadata"]["creationTimestamp"])
}

/// A condition of `status.conditions` by type.
pub fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)
}

pub fn condition_true(obj: &Value, kind: &str) -> bool {
    condition(obj, kind).is_some_and(|c| c["status"] == "True")
}

/// Sets a condition in `conditions` as upstream's `SetDeploymentCondition`:
/// nothing changes when status and reason are the same; the transition
/// time is kept when only the reason changes.
pub fn set_condition(conditions: &mut Vec<Value>, kind: &str, status: &str, reason: &str, message: &str) {
    if let Some(c) = conditions.iter().find(|c| c["type"] == kind)
        && c["status"] == status
        && c["reason"] == reason
    {
        return;
    }
    touch_condition(conditions, kind, status, reason, message);
}

/// Sets a condition and its `lastUpdateTime` even when nothing else
/// changes (a Deployment's progress resets its deadline this way).
pub fn touch_condition(conditions: &mut Vec<Value>, kind: &str, status: &str, reason: &str, message: &str) {
    let now = now_rfc3339();
    if let Some(c) = conditions.iter_mut().find(|c| c["type"] == kind) {
        if c["status"] != status {
            c["lastTransitionTime"] = json!(now);
        }
        c["status"] = json!(status);
        c["reason"] = json!(reason);
        c["message"] = json!(message);
        c["lastUpdateTime"] = json!(now);
        return;
    }
    conditions.push(json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": now, "lastUpdateTime": now,
    }));
}

/// Collection and object paths of the kinds the controllers write.
pub fn path(api_version: &str, plural: &str, namespace: &str, name: &str) -> String {
    let base = if api_version == "v1" { "/api/v1".to_owned() } else { format!("/apis/{api_version}") };
    let ns = if namespace.is_empty() { String::new() } else { format!("/namespaces/{namespace}") };
    let name = if name.is_empty() { String::new() } else { format!("/{name}") };
    format!("{base}{ns}/{plural}{name}")
}

/// A pod that counts toward its controller: not finished, not deleting.
pub fn pod_active(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    phase != "Succeeded" && phase != "Failed" && !is_terminating(pod)
}

pub fn pod_ready(pod: &Value) -> bool {
    condition_true(pod, "Ready")
}

/// Ready for at least `min_ready_seconds` at `now` (upstream's
/// `IsPodAvailable`).
pub fn pod_available(pod: &Value, min_ready_seconds: i64, now: SystemTime) -> bool {
    if !pod_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    let since = condition(pod, "Ready").and_then(|c| time(&c["lastTransitionTime"]));
    let need = Duration::from_secs(u64::try_from(min_ready_seconds).unwrap_or(0));
    since.is_some_and(|t| t + need <= now)
}

/// Labels as a map (empty when absent).
pub fn labels(obj: &Value) -> serde_json::Map<String, Value> {
    obj["metadata"]["labels"].as_object().cloned().unwrap_or_default()
}

/// An `intstr` scaled against `total`: an integer, or a percentage rounded
/// up (`round_up`) or down, as upstream's `GetScaledValueFromIntOrPercent`.
pub fn int_or_percent(v: &Value, total: i64, round_up: bool) -> i64 {
    if let Some(n) = v.as_i64() {
        return n.max(0);
    }
    let Some(p) = v.as_str().and_then(|s| s.strip_suffix('%')).and_then(|p| p.parse::<i64>().ok()) else {
        return 0;
    };
    let scaled = p * total;
    if round_up { (scaled + 99) / 100 } else { scaled / 100 }.max(0)
}

/// Whether two statuses are the same but for empty values (zero counts,
/// nulls, empty lists) the API server may drop: a controller writes its
/// status only when this is false.
pub fn same_status(a: &Value, b: &Value) -> bool {
    let strip = |s: &Value| {
        let mut m = s.as_object().cloned().unwrap_or_default();
        m.retain(|_, v| *v != json!(0) && !v.is_null() && *v != json!([]));
        m
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_keys() {
        assert_eq!(path("v1", "pods", "ns", "p"), "/api/v1/namespaces/ns/pods/p");
        assert_eq!(path("apps/v1", "replicasets", "ns", ""), "/apis/apps/v1/namespaces/ns/replicasets");
        assert_eq!(path("v1", "nodes", "", "n"), "/api/v1/nodes/n");
        assert_eq!(split_key("ns/a"), ("ns", "a"));
        assert_eq!(split_key("node1"), ("", "node1"));
    }

    #[test]
    fn conditions_keep_their_transition_time() {
        let mut c = Vec::new();
        set_condition(&mut c, "Available", "False", "R", "m");
        c[0]["lastTransitionTime"] = json!("2020-01-01T00:00:00Z");
        set_condition(&mut c, "Available", "False", "R", "other message");
        assert_eq!(c[0]["message"], "m");
        set_condition(&mut c, "Available", "False", "R2", "m2");
        assert_eq!(c[0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(c[0]["reason"], "R2");
        set_condition(&mut c, "Available", "True", "R3", "m3");
        assert_ne!(c[0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
    }
}
