//! The `FieldsV1` encoding of a [`Set`] in `metadata.managedFields`: a JSON
//! object keyed by serialized path elements, `{}` for a member, nested
//! objects for children, and `".": {}` inside a child that is a member too.

use serde_json::{Map, Value};

use super::element::{ElementError, PathElement};
use super::set::Set;

/// Why a `fieldsV1` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldsV1Error {
    #[error("fieldsV1 at {at:?} is not a JSON object")]
    NotAnObject { at: String },
    #[error("fieldsV1 at {at:?}")]
    Element {
        at: String,
        #[source]
        source: ElementError,
    },
}

/// The `fieldsV1` object of a set.
pub fn encode(set: &Set) -> Value {
    Value::Object(contents(set, false))
}

fn contents(set: &Set, include_self: bool) -> Map<String, Value> {
    let mut out = Map::new();
    for m in set.members() {
        if set.child(m).is_none() {
            out.insert(m.serialize(), Value::Object(Map::new()));
        }
    }
    for (pe, child) in set.children() {
        out.insert(pe.serialize(), Value::Object(contents(child, set.is_member(pe))));
    }
    if include_self && !out.is_empty() {
        out.insert(".".into(), Value::Object(Map::new()));
    }
    out
}

/// The set a `fieldsV1` object describes. Keys of unknown element kinds are
/// ignored, as upstream does.
pub fn decode(fields: &Value) -> Result<Set, FieldsV1Error> {
    read(fields, "").map(|(set, _)| set)
}

/// The set below `v` and whether `v` marks its own path as a member.
fn read(v: &Value, at: &str) -> Result<(Set, bool), FieldsV1Error> {
    let Value::Object(entries) = v else { return Err(FieldsV1Error::NotAnObject { at: at.to_string() }) };
    let mut set = Set::new();
    let mut is_member = false;
    let mut any_child = false;
    for (key, child) in entries {
        if key == "." {
            is_member = true;
            continue;
        }
        let here = format!("{at}/{key}");
        let pe = PathElement::deserialize(key)
            .map_err(|source| FieldsV1Error::Element { at: here.clone(), source })?;
        let Some(pe) = pe else { continue };
        any_child = true;
        let (grandchildren, child_is_member) = read(child, &here)?;
        if child_is_member {
            set.insert_member(pe.clone());
        }
        set.insert_child(pe, grandchildren);
    }
    Ok((set, is_member || !any_child))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldpath::element::Path;
    use serde_json::json;

    #[test]
    fn encodes_members_children_and_self() {
        let mut s = Set::new();
        s.insert(&Path::fields(&["spec", "replicas"]).0);
        s.insert(&Path::fields(&["metadata", "labels"]).0);
        s.insert(&Path::fields(&["metadata", "labels", "app"]).0);
        let mut item = Path::fields(&["spec", "containers"]);
        item.0.push(PathElement::key([("name".into(), json!("c"))]));
        s.insert(&item.0);
        item.0.push(PathElement::field("image"));
        s.insert(&item.0);
        assert_eq!(
            encode(&s),
            json!({
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}}},
                    "f:replicas": {},
                },
            })
        );
        assert_eq!(decode(&encode(&s)), Ok(s));
    }

    #[test]
    fn decodes_what_upstream_writes() {
        let v = json!({
            "f:metadata": {"f:finalizers": {"v:\"a\"": {}}},
            "f:spec": {"f:args": {}, "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}}}},
            "x:future": {"f:anything": {}},
        });
        let s = decode(&v).expect("decodes");
        let paths: Vec<String> = s.paths().iter().map(ToString::to_string).collect();
        assert_eq!(
            paths,
            [
                ".metadata.finalizers[=\"a\"]",
                ".spec.args",
                ".spec.ports[containerPort=80,protocol=\"TCP\"]",
                ".spec.ports[containerPort=80,protocol=\"TCP\"].name",
            ]
        );
        assert_eq!(
            encode(&s),
            json!({
                "f:metadata": {"f:finalizers": {"v:\"a\"": {}}},
                "f:spec": {"f:args": {}, "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}}}},
            })
        );
    }

    #[test]
    fn refuses_garbage() {
        assert!(matches!(decode(&json!([])), Err(FieldsV1Error::NotAnObject { .. })));
        assert!(matches!(decode(&json!({"f:a": 1})), Err(FieldsV1Error::NotAnObject { .. })));
        assert!(matches!(decode(&json!({"k:1": {}})), Err(FieldsV1Error::Element { .. })));
    }

    #[test]
    fn empty_set_is_empty_object() {
        assert_eq!(encode(&Set::new()), json!({}));
        assert_eq!(decode(&json!({})), Ok(Set::new()));
    }
}
