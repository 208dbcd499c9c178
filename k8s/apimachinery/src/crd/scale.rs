//! The scale subresource's checks on a custom resource: the replicas at
//! `specReplicasPath` and `statusReplicasPath` are non-negative int32s and
//! `labelSelectorPath` holds a string, as upstream's validator checks them
//! after the schema.

use serde_json::Value;

use super::definition::ScaleSubresource;
use super::problem::{FieldProblem, go_sharp};

/// Problems of `obj` against its CRD version's scale subresource. `spec`
/// false checks only the status side (a `/status` update).
pub fn validate_scale(scale: &ScaleSubresource, obj: &Value, spec: bool) -> Vec<FieldProblem> {
    let mut out = Vec::new();
    if spec {
        out.extend(replicas(obj, &scale.spec_replicas_path));
    }
    out.extend(replicas(obj, &scale.status_replicas_path));
    if let Some(path) = scale.label_selector_path.as_deref()
        && let Err(err) = nested(obj, path, "string", Value::is_string)
    {
        out.push(FieldProblem::invalid(path, Value::String(String::new()), err));
    }
    out
}

fn replicas(obj: &Value, path: &str) -> Option<FieldProblem> {
    let value = match nested(obj, path, "int64", |v| v.is_i64()) {
        Err(err) => return Some(FieldProblem::invalid(path, Value::from(0), err)),
        Ok(value) => value.and_then(Value::as_i64).unwrap_or(0),
    };
    if value < 0 {
        return Some(FieldProblem::invalid(path, Value::from(value), "should be a non-negative integer"));
    }
    if value > i64::from(i32::MAX) {
        return Some(FieldProblem::invalid(
            path,
            Value::from(value),
            format!("should be less than or equal to {}", i32::MAX),
        ));
    }
    None
}

/// unstructured's `NestedFieldNoCopy` plus a type check, with its errors.
fn nested<'a>(
    obj: &'a Value,
    path: &str,
    want: &str,
    ok: fn(&Value) -> bool,
) -> Result<Option<&'a Value>, String> {
    let fields: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut current = obj;
    for (i, field) in fields.iter().enumerate() {
        let Value::Object(members) = current else {
            let at = format!(".{}", fields[..i].join("."));
            return Err(format!(
                "{at} accessor error: {} is of the type {}, expected map[string]interface{{}}",
                go_plain(current),
                go_type(current)
            ));
        };
        match members.get(*field) {
            Some(next) => current = next,
            None => return Ok(None),
        }
    }
    if ok(current) {
        Ok(Some(current))
    } else {
        Err(format!(
            ".{} accessor error: {} is of the type {}, expected {want}",
            fields.join("."),
            go_plain(current),
            go_type(current)
        ))
    }
}

fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's `%v` of a scalar (objects are approximated with `%#v`).
fn go_plain(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        other => go_sharp(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scale() -> ScaleSubresource {
        ScaleSubresource {
            spec_replicas_path: ".spec.replicas".into(),
            status_replicas_path: ".status.replicas".into(),
            label_selector_path: Some(".status.labelSelector".into()),
        }
    }

    #[test]
    fn replicas_must_be_small_non_negative_integers() {
        assert!(validate_scale(&scale(), &json!({"spec": {"replicas": 3}}), true).is_empty());
        let problems =
            validate_scale(&scale(), &json!({"spec": {"replicas": -1}, "status": {"replicas": "x"}}), true);
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                ".spec.replicas: Invalid value: -1: should be a non-negative integer",
                ".status.replicas: Invalid value: 0: .status.replicas accessor error: x is of the type string, expected int64",
            ]
        );
        let big = validate_scale(&scale(), &json!({"spec": {"replicas": 4_294_967_296_i64}}), true);
        assert_eq!(big[0].detail, "should be less than or equal to 2147483647");
        let selector = validate_scale(&scale(), &json!({"status": {"labelSelector": 1}}), false);
        assert_eq!(selector.len(), 1);
    }
}
