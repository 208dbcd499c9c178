//! `x-kubernetes-list-type: set` items and `map` keys must be unique, as
//! upstream's `structurallisttype.ValidateListSetsAndMaps` checks after
//! schema validation. Paths use field-path notation (`spec.labels[key]`).

use serde_json::{Map, Value};

use crate::crd::problem::{FieldProblem, ProblemKind};
use crate::crd::schema::{Additional, Schema};

pub(super) fn lists(schema: Schema<'_>, obj: &Value) -> Vec<FieldProblem> {
    let mut out = Vec::new();
    if let Value::Object(members) = obj {
        object(schema, members, "", &mut out);
    }
    out
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

fn object(schema: Schema<'_>, members: &Map<String, Value>, path: &str, out: &mut Vec<FieldProblem>) {
    if let Additional::Schema(values) = schema.additional() {
        for (key, value) in members {
            walk(values, value, &format!("{path}[{key}]"), out);
        }
    }
    for (key, value) in members {
        if let Some(property) = schema.property(key) {
            walk(property, value, &child(path, key), out);
        }
    }
}

fn walk(schema: Schema<'_>, value: &Value, path: &str, out: &mut Vec<FieldProblem>) {
    match value {
        Value::Object(members) => object(schema, members, path, out),
        Value::Array(items) => array(schema, items, path, out),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

fn array(schema: Schema<'_>, items: &[Value], path: &str, out: &mut Vec<FieldProblem>) {
    match schema.str("x-kubernetes-list-type") {
        Some("set") => {
            for i in repeated(items) {
                out.push(FieldProblem::new(
                    ProblemKind::Duplicate,
                    format!("{path}[{i}]"),
                    items[i].clone(),
                    "",
                ));
            }
        }
        Some("map") => map(schema, items, path, out),
        _ => {}
    }
    if let Some(items_schema) = schema.items() {
        for (i, item) in items.iter().enumerate() {
            walk(items_schema, item, &format!("{path}[{i}]"), out);
        }
    }
}

fn map(schema: Schema<'_>, items: &[Value], path: &str, out: &mut Vec<FieldProblem>) {
    if let Some((i, item)) = items.iter().enumerate().find(|(_, x)| !x.is_null() && !x.is_object()) {
        let detail = "must be an object for an array of list-type map";
        out.push(FieldProblem::invalid(format!("{path}[{i}]"), item.clone(), detail));
        return;
    }
    let key_fields = schema.strings("x-kubernetes-list-map-keys");
    let keys: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut key = Map::new();
            for field in &key_fields {
                if let Some(v) = item.get(field) {
                    key.insert((*field).to_string(), v.clone());
                }
            }
            Value::Object(key)
        })
        .collect();
    for i in repeated(&keys) {
        out.push(FieldProblem::new(ProblemKind::Duplicate, format!("{path}[{i}]"), keys[i].clone(), ""));
    }
}

/// The index of the second occurrence of each repeated value.
fn repeated(values: &[Value]) -> Vec<usize> {
    let mut seen: Vec<(&Value, usize)> = Vec::new();
    let mut out = Vec::new();
    for (i, value) in values.iter().enumerate() {
        match seen.iter_mut().find(|(v, _)| *v == value) {
            Some((_, count)) => {
                *count += 1;
                if *count == 2 {
                    out.push(i);
                }
            }
            None => seen.push((value, 1)),
        }
    }
    out
}
