//! Object bookkeeping the server owns: where an object lives in the store,
//! its uid, timestamps and generation, names and their validation.

use lichen_apimachinery::resources::Resource;
use lichen_store::KeyValue;
use serde_json::{Value, json};

use crate::status::{ApiError, Cause};

/// The store key of one object: `/registry/<group or core>/<plural>/[<namespace>/]<name>`.
pub fn key(res: &Resource, namespace: &str, name: &str) -> String {
    format!("{}{name}", prefix(res, namespace))
}

/// `events.k8s.io` Events, which live in the `v1` Events' storage.
pub fn is_events_v1(res: &Resource) -> bool {
    res.group == "events.k8s.io" && res.plural == "events"
}

/// The key prefix of a collection: all namespaces when `namespace` is empty.
pub fn prefix(res: &Resource, namespace: &str) -> String {
    let group = if res.group.is_empty() || is_events_v1(res) { "core" } else { &res.group };
    if res.namespaced && !namespace.is_empty() {
        format!("/registry/{group}/{}/{namespace}/", res.plural)
    } else {
        format!("/registry/{group}/{}/", res.plural)
    }
}

/// The object as stored, with `metadata.resourceVersion` from the store.
pub fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::Internal(format!("stored object {} is not JSON: {e}", kv.key)))?;
    set_resource_version(&mut obj, kv.mod_revision);
    Ok(obj)
}

pub fn set_resource_version(obj: &mut Value, rev: i64) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("resourceVersion".into(), json!(rev.to_string()));
    }
}

/// The object as `res` serves it (`events.k8s.io` Events are converted
/// from the stored `v1` form).
pub fn decode_for(res: &Resource, kv: &KeyValue) -> Result<Value, ApiError> {
    let obj = decode(kv)?;
    Ok(if is_events_v1(res) { lichen_apimachinery::events::to_events_v1(&obj) } else { obj })
}

/// The bytes to store for an object of `res` (see [`decode_for`]).
pub fn encode_for(res: &Resource, obj: &Value) -> Result<Vec<u8>, ApiError> {
    if is_events_v1(res) {
        return encode(&lichen_apimachinery::events::to_core_v1(obj));
    }
    encode(obj)
}

/// The bytes to store: the object without its resourceVersion (the store's
/// revision is the truth).
pub fn encode(obj: &Value) -> Result<Vec<u8>, ApiError> {
    let mut o = obj.clone();
    normalize(&mut o);
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("selfLink");
    }
    serde_json::to_vec(&o).map_err(ApiError::internal)
}

/// Drops what upstream's JSON encoding omits: ObjectMeta's maps and lists
/// are `omitempty`, so an emptied one goes.
pub fn normalize(o: &mut Value) {
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in ["labels", "annotations", "finalizers", "ownerReferences", "managedFields"] {
            let empty = match m.get(f) {
                Some(Value::Object(x)) => x.is_empty(),
                Some(Value::Array(x)) => x.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if empty {
                m.remove(f);
            }
        }
    }
}

pub fn meta(obj: &Value) -> &Value {
    obj.get("metadata").unwrap_or(&Value::Null)
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).get(field).and_then(Value::as_str)
}

pub fn meta_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable_object(),
    }
}

#[allow(clippy::panic)]
fn unreachable_object() -> ! {
    // meta_mut just made metadata an object.
    panic!("metadata is an object")
}

/// Now, as upstream writes timestamps: RFC 3339, UTC, whole seconds.
pub fn now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now())
}

pub fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    lichen_apimachinery::timestamp::format_rfc3339(i64::try_from(secs).unwrap_or(0))
}

pub fn now_unix() -> i64 {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    i64::try_from(secs).unwrap_or(0)
}

pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `generateName` plus five characters from upstream's alphabet (no vowels,
/// no look-alikes).
pub fn generated_name(base: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let base: String = base.chars().take(58).collect();
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let suffix: String =
        bytes.iter().take(5).map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect();
    format!("{base}{suffix}")
}

/// Which naming rule a kind follows upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain, 253 characters: most kinds.
    Subdomain,
    /// RFC 1123 label, 63 characters: namespaces.
    Label,
    /// RFC 1035 label, 63 characters: services.
    Dns1035,
    /// Anything that is a valid path segment: RBAC kinds.
    PathSegment,
}

pub fn name_rule(res: &Resource) -> NameRule {
    match (res.group.as_str(), res.plural.as_str()) {
        ("", "namespaces") => NameRule::Label,
        ("", "services") => NameRule::Dns1035,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Field errors of `name` under `rule`, at `field`.
pub fn validate_name(rule: NameRule, name: &str, field: &str) -> Vec<Cause> {
    let v = json!(name);
    let mut causes = Vec::new();
    match rule {
        NameRule::Subdomain => {
            if name.len() > 253 {
                causes.push(Cause::invalid(field, &v, "must be no more than 253 characters"));
            }
            if !name.split('.').all(is_label) {
                causes.push(Cause::invalid(field, &v, SUBDOMAIN_MSG));
            }
        }
        NameRule::Label => {
            if name.len() > 63 {
                causes.push(Cause::invalid(field, &v, "must be no more than 63 characters"));
            }
            if !is_label(name) {
                causes.push(Cause::invalid(field, &v, LABEL_MSG));
            }
        }
        NameRule::Dns1035 => {
            if name.len() > 63 {
                causes.push(Cause::invalid(field, &v, "must be no more than 63 characters"));
            }
            if !is_label(name) || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
                causes.push(Cause::invalid(field, &v, DNS1035_MSG));
            }
        }
        NameRule::PathSegment => {
            if name == "." || name == ".." {
                causes.push(Cause::invalid(field, &v, &format!("may not be '{name}'")));
            }
            for bad in ["/", "%"] {
                if name.contains(bad) {
                    causes.push(Cause::invalid(field, &v, &format!("may not contain '{bad}'")));
                }
            }
        }
    }
    causes
}

/// The part of an object that bumps `metadata.generation` when it changes:
/// everything but metadata and status.
pub fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("metadata");
            o.remove("status");
        }
        v
    };
    strip(old) != strip(new)
}

/// Kinds whose objects carry `metadata.generation` upstream.
pub fn has_generation(res: &Resource) -> bool {
    matches!(
        res.group.as_str(),
        "apps" | "batch" | "policy" | "networking.k8s.io" | "apiextensions.k8s.io" | "autoscaling"
    ) || matches!((res.group.as_str(), res.plural.as_str()), ("", "pods" | "replicationcontrollers"))
        || !is_builtin_group(&res.group)
}

fn is_builtin_group(group: &str) -> bool {
    group.is_empty() || group.ends_with(".k8s.io") || !group.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name(NameRule::Subdomain, "a.b-c", "metadata.name").is_empty());
        assert_eq!(validate_name(NameRule::Subdomain, "A", "metadata.name").len(), 1);
        assert_eq!(validate_name(NameRule::Label, "a.b", "metadata.name").len(), 1);
        assert_eq!(validate_name(NameRule::Dns1035, "1ab", "metadata.name").len(), 1);
        assert!(validate_name(NameRule::PathSegment, "system:admin", "metadata.name").is_empty());
        let long = "a".repeat(254);
        assert_eq!(validate_name(NameRule::Subdomain, &long, "metadata.name").len(), 1);
        let g = generated_name("web-");
        assert_eq!(g.len(), 9);
        assert!(validate_name(NameRule::Subdomain, &g, "metadata.name").is_empty());
    }

    #[test]
    fn timestamps() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_764_103_228);
        assert_eq!(rfc3339(t), "2025-11-25T20:40:28Z");
    }
}
