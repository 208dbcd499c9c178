//! Defaulting: fill in the `default` of every property missing from an
//! object that exists, in list items and `additionalProperties` values
//! too, as upstream's `structuraldefaulting` does. A `null` where the
//! schema is not `nullable` is first dropped, or replaced by the default
//! if there is one. Defaults are applied after pruning and before
//! validation.

use serde_json::Value;

use super::schema::{Additional, Schema};

/// Apply the defaults of `schema` (a version's `openAPIV3Schema`) to `obj`.
pub fn default(schema: &Value, obj: &mut Value) {
    let schema = Schema::new(schema);
    drop_nulls(obj, Some(schema));
    apply(obj, schema);
}

/// `null` where it is not allowed and no default replaces it.
fn drops(value: &Value, schema: Option<Schema<'_>>) -> bool {
    value.is_null() && schema.is_some_and(|s| !s.nullable() && s.default_value().is_none())
}

fn drop_nulls(value: &mut Value, schema: Option<Schema<'_>>) {
    match value {
        Value::Object(members) => {
            let member_schema = |key: &str| schema.and_then(|s| s.member(key)).flatten();
            members.retain(|key, member| !drops(member, member_schema(key)));
            for (key, member) in members.iter_mut() {
                drop_nulls(member, member_schema(key));
            }
        }
        Value::Array(items) => {
            let items_schema = schema.and_then(|s| s.items());
            for item in items {
                drop_nulls(item, items_schema);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// A `null` that the default of a non-nullable schema replaces.
fn replaced(value: &Value, schema: Schema<'_>) -> Option<Value> {
    if value.is_null() && !schema.nullable() { schema.default_value().cloned() } else { None }
}

fn apply(value: &mut Value, schema: Schema<'_>) {
    match value {
        Value::Object(members) => {
            if let Some(properties) = schema.properties() {
                for (key, property) in properties {
                    let property = Schema::new(property);
                    let Some(default) = property.default_value() else { continue };
                    let missing = members.get(key).is_none_or(|v| v.is_null() && !property.nullable());
                    if missing {
                        members.insert(key.clone(), default.clone());
                    }
                }
            }
            for (key, member) in members.iter_mut() {
                if let Some(property) = schema.property(key) {
                    apply(member, property);
                } else if let Additional::Schema(values) = schema.additional() {
                    if let Some(default) = replaced(member, values) {
                        *member = default;
                    }
                    apply(member, values);
                }
            }
        }
        Value::Array(items) => {
            let Some(items_schema) = schema.items() else { return };
            for item in items {
                if let Some(default) = replaced(item, items_schema) {
                    *item = default;
                }
                apply(item, items_schema);
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
                        "replicas": {"type": "integer", "default": 1},
                        "mode": {"type": "string", "default": "auto"},
                        "note": {"type": "string"},
                        "maybe": {"type": "string", "nullable": true, "default": "d"},
                        "ports": {"type": "array", "items": {
                            "type": "object",
                            "properties": {"protocol": {"type": "string", "default": "TCP"}, "port": {"type": "integer"}}
                        }},
                        "limits": {"type": "object", "additionalProperties": {
                            "type": "object", "properties": {"unit": {"type": "string", "default": "Mi"}}
                        }},
                        "nested": {"type": "object", "properties": {"inner": {"type": "string", "default": "x"}}}
                    }
                }
            }
        })
    }

    #[test]
    fn fills_missing_properties_of_existing_objects() {
        let mut obj = json!({
            "spec": {
                "mode": "manual", "note": null, "maybe": null,
                "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}],
                "limits": {"mem": {}}
            }
        });
        default(&schema(), &mut obj);
        assert_eq!(
            obj,
            json!({
                "spec": {
                    "replicas": 1, "mode": "manual", "maybe": null,
                    "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                    "limits": {"mem": {"unit": "Mi"}}
                }
            })
        );
    }

    #[test]
    fn does_not_create_missing_parents() {
        let mut obj = json!({});
        default(&schema(), &mut obj);
        assert_eq!(obj, json!({}));
    }

    #[test]
    fn a_null_with_a_default_is_defaulted() {
        let mut obj = json!({"spec": {"replicas": null}});
        default(&schema(), &mut obj);
        assert_eq!(obj["spec"]["replicas"], 1);
    }
}
