//! Pruning: drop the fields of a custom resource that its structural
//! schema does not specify, as upstream's `pruning.Prune` does.
//!
//! - `x-kubernetes-preserve-unknown-fields: true` keeps unknown fields of
//!   that object (and below it, until a schema says otherwise).
//! - `apiVersion`, `kind` and `metadata` are kept at the root and in every
//!   `x-kubernetes-embedded-resource` object.
//! - A member matched by `additionalProperties` is kept; with
//!   `additionalProperties: true|false` it has no schema, so objects inside
//!   it are emptied, as upstream does.
//!
//! Only the structural part of the schema counts: `allOf`, `anyOf`,
//! `oneOf` and `not` never keep a field.

use serde_json::Value;

use super::schema::Schema;

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Prune `obj` (a whole custom resource) against its version's
/// `openAPIV3Schema`.
pub fn prune(schema: &Value, obj: &mut Value) {
    walk(obj, Some(Schema::new(schema)), true);
}

/// Prune a value below the root; `resource` keeps its type and object meta.
pub(crate) fn prune_value(schema: &Value, value: &mut Value, resource: bool) {
    walk(value, Some(Schema::new(schema)), resource);
}

fn walk(value: &mut Value, schema: Option<Schema<'_>>, resource: bool) {
    if let Some(schema) = schema.filter(Schema::preserve_unknown) {
        preserve(value, schema, resource);
        return;
    }
    match value {
        Value::Object(members) => {
            let Some(schema) = schema else {
                members.clear();
                return;
            };
            let keep_meta = resource || schema.embedded();
            members.retain(|key, _| {
                (keep_meta && META_FIELDS.contains(&key.as_str())) || schema.member(key).is_some()
            });
            for (key, member) in members.iter_mut() {
                if keep_meta && META_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                if let Some(member_schema) = schema.member(key) {
                    walk(member, member_schema, false);
                }
            }
        }
        Value::Array(items) => {
            let items_schema = schema.and_then(|s| s.items());
            for item in items {
                walk(item, items_schema, false);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// Inside `x-kubernetes-preserve-unknown-fields`: unknown members stay,
/// known ones are pruned by their own schema.
fn preserve(value: &mut Value, schema: Schema<'_>, resource: bool) {
    match value {
        Value::Object(members) => {
            let keep_meta = resource || schema.embedded();
            for (key, member) in members.iter_mut() {
                if keep_meta && META_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                if let Some(member_schema) = schema.member(key) {
                    walk(member, member_schema, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(items_schema) = schema.items() {
                for item in items {
                    preserve(item, items_schema, false);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "size": {"type": "integer"},
                        "ports": {"type": "array", "items": {
                            "type": "object", "properties": {"name": {"type": "string"}}
                        }},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                 "properties": {"strict": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                        "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                                     "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}}}
                    }
                }
            }
        })
    }

    #[test]
    fn drops_unknown_fields_at_every_level() {
        let mut obj = json!({
            "apiVersion": "a/v1", "kind": "K", "metadata": {"name": "n", "whatever": 1},
            "extra": true,
            "spec": {
                "size": 3, "bogus": "x",
                "ports": [{"name": "a", "port": 80}, {"junk": {}}],
                "labels": {"app": "web"},
                "free": {"anything": {"deep": 1}, "strict": {"a": "ok", "b": "gone"}},
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                             "spec": {"x": "y", "z": 1}, "status": {}}
            }
        });
        prune(&schema(), &mut obj);
        assert_eq!(
            obj,
            json!({
                "apiVersion": "a/v1", "kind": "K", "metadata": {"name": "n", "whatever": 1},
                "spec": {
                    "size": 3,
                    "ports": [{"name": "a"}, {}],
                    "labels": {"app": "web"},
                    "free": {"anything": {"deep": 1}, "strict": {"a": "ok"}},
                    "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": "y"}}
                }
            })
        );
    }

    #[test]
    fn preserve_at_the_root_keeps_everything_unknown() {
        let mut obj = json!({"spec": {"a": 1}, "other": [1, 2]});
        let before = obj.clone();
        prune(&json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}), &mut obj);
        assert_eq!(obj, before);
    }

    #[test]
    fn boolean_additional_properties_keep_keys_but_empty_objects() {
        let mut obj = json!({"m": {"k": {"inner": 1}, "s": "v"}});
        let schema =
            json!({"type": "object", "properties": {"m": {"type": "object", "additionalProperties": true}}});
        prune(&schema, &mut obj);
        assert_eq!(obj, json!({"m": {"k": {}, "s": "v"}}));
    }
}
