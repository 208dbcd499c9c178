//! ObjectMeta and TypeMeta checks: the custom resource's own
//! `metadata.name`, and `apiVersion`, `kind` of resources embedded with
//! `x-kubernetes-embedded-resource`.

use serde_json::{Map, Value};

use crate::crd::problem::FieldProblem;
use crate::crd::schema::{Additional, Schema};
use crate::selector::validation::dns1123_subdomain_errors;

/// `metadata.name` must be a DNS subdomain.
pub(super) fn object_meta_name(obj: &Value) -> Vec<FieldProblem> {
    match obj.pointer("/metadata/name") {
        None | Some(Value::Null) => {
            vec![FieldProblem::required("metadata.name", "name or generateName is required")]
        }
        Some(Value::String(name)) if name.is_empty() => {
            vec![FieldProblem::required("metadata.name", "name or generateName is required")]
        }
        Some(Value::String(name)) => dns1123_subdomain_errors(name)
            .into_iter()
            .map(|e| FieldProblem::invalid("metadata.name", Value::String(name.clone()), e))
            .collect(),
        Some(other) => vec![FieldProblem::invalid("metadata.name", other.clone(), "must be a string")],
    }
}

/// Embedded resources below the root need `apiVersion` and `kind`.
pub(super) fn embedded_resources(schema: Schema<'_>, obj: &Value) -> Vec<FieldProblem> {
    let mut out = Vec::new();
    if let Value::Object(members) = obj {
        // The root itself is not checked here; the server checks its type meta.
        members_walk(schema, members, "", &mut out);
    }
    out
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

fn members_walk(schema: Schema<'_>, members: &Map<String, Value>, path: &str, out: &mut Vec<FieldProblem>) {
    for (key, value) in members {
        if let Some(property) = schema.property(key) {
            walk(property, value, &child(path, key), out);
        } else if let Additional::Schema(values) = schema.additional() {
            walk(values, value, &format!("{path}[{key}]"), out);
        }
    }
}

fn walk(schema: Schema<'_>, value: &Value, path: &str, out: &mut Vec<FieldProblem>) {
    match value {
        Value::Object(members) => {
            if schema.embedded() {
                type_meta(members, path, out);
            }
            members_walk(schema, members, path, out);
        }
        Value::Array(items) => {
            if let Some(items_schema) = schema.items() {
                for (i, item) in items.iter().enumerate() {
                    walk(items_schema, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

fn type_meta(members: &Map<String, Value>, path: &str, out: &mut Vec<FieldProblem>) {
    let api_version = child(path, "apiVersion");
    let kind = child(path, "kind");
    match members.get("apiVersion") {
        None => out.push(FieldProblem::required(&api_version, "")),
        Some(Value::String(v)) if v.is_empty() => out.push(FieldProblem::required(&api_version, "")),
        Some(Value::String(v)) if v.split('/').count() > 2 => out.push(FieldProblem::invalid(
            &api_version,
            Value::String(v.clone()),
            format!("unexpected GroupVersion string: {v}"),
        )),
        Some(Value::String(_)) => {}
        Some(other) => out.push(FieldProblem::invalid(&api_version, other.clone(), "must be a string")),
    }
    match members.get("kind") {
        None => out.push(FieldProblem::required(&kind, "")),
        Some(Value::String(k)) if k.is_empty() => out.push(FieldProblem::required(&kind, "")),
        Some(Value::String(k)) => {
            let errors = dns1035_label_errors(&k.to_ascii_lowercase());
            if !errors.is_empty() {
                let detail = format!("may have mixed case, but should otherwise match: {}", errors.join(","));
                out.push(FieldProblem::invalid(&kind, Value::String(k.clone()), detail));
            }
        }
        Some(other) => out.push(FieldProblem::invalid(&kind, other.clone(), "must be a string")),
    }
}

const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";

/// Upstream's `IsDNS1035Label` messages.
pub(crate) fn dns1035_label_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 bytes".to_string());
    }
    let bytes = value.as_bytes();
    let ok = match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_lowercase()
                && (last.is_ascii_lowercase() || last.is_ascii_digit())
                && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        }
        _ => false,
    };
    if !ok {
        errors.push(format!(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic \
             character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for \
             validation is '{DNS1035_LABEL_FMT}')"
        ));
    }
    errors
}
