//! Per-version parts of a CRD: deprecation warnings, printer columns,
//! subresources and selectable fields.

use serde_json::Value;

use crate::crd::definition::{list, text};
use crate::crd::problem::{FieldProblem, ProblemKind};
use crate::crd::schema::Schema;

const COLUMN_TYPES: &str = "boolean,date,integer,number,string";
const COLUMN_FORMATS: &str = "byte,date,date-time,double,float,int32,int64,password";
const MAX_SELECTABLE_FIELDS: usize = 8;

pub(super) fn deprecation(version: &Value, path: &str) -> Vec<FieldProblem> {
    let Some(warning) = version["deprecationWarning"].as_str() else { return Vec::new() };
    let field = format!("{path}.deprecationWarning");
    let value = Value::String(warning.to_string());
    if version["deprecated"] != true {
        return vec![FieldProblem::invalid(field, value, "can only be set for deprecated versions")];
    }
    let mut out = Vec::new();
    if warning.len() > 256 {
        out.push(FieldProblem::invalid(&field, value.clone(), "must be <= 256 characters long"));
    }
    if warning.is_empty() {
        out.push(FieldProblem::invalid(&field, value.clone(), "must not be an empty string"));
    }
    if let Some((i, _)) = warning.char_indices().find(|(_, c)| c.is_control()) {
        let detail = format!(
            "must only contain printable UTF-8 characters; non-printable character found at index {i}"
        );
        out.push(FieldProblem::invalid(&field, value, detail));
    }
    out
}

pub(super) fn columns(columns: &Value, path: &str) -> Vec<FieldProblem> {
    let mut out = Vec::new();
    for (i, column) in list(columns).iter().enumerate() {
        let at = |field: &str| format!("{path}[{i}].{field}");
        if text(&column["name"]).is_empty() {
            out.push(FieldProblem::required(at("name"), ""));
        }
        let type_name = text(&column["type"]);
        let types = format!("must be one of {COLUMN_TYPES}");
        if type_name.is_empty() {
            out.push(FieldProblem::required(at("type"), types));
        } else if !COLUMN_TYPES.split(',').any(|t| t == type_name) {
            out.push(FieldProblem::invalid(at("type"), Value::String(type_name), types));
        }
        let format = text(&column["format"]);
        if !format.is_empty() && !COLUMN_FORMATS.split(',').any(|f| f == format) {
            out.push(FieldProblem::invalid(
                at("format"),
                Value::String(format),
                format!("must be one of {COLUMN_FORMATS}"),
            ));
        }
        let json_path = text(&column["jsonPath"]);
        if json_path.is_empty() {
            out.push(FieldProblem::required(at("JSONPath"), ""));
        } else {
            out.extend(simple_json_path(&json_path, &at("JSONPath")));
        }
    }
    out
}

fn simple_json_path(s: &str, field: &str) -> Option<FieldProblem> {
    if s.is_empty() {
        return Some(FieldProblem::invalid(field, Value::String(s.into()), "must not be empty"));
    }
    if !s.starts_with('.') {
        return Some(FieldProblem::invalid(
            field,
            Value::String(s.into()),
            "must be a simple json path starting with .",
        ));
    }
    None
}

pub(super) fn subresources(subresources: &Value, path: &str) -> Vec<FieldProblem> {
    let mut out = Vec::new();
    let scale = &subresources["scale"];
    if !scale.is_object() {
        return out;
    }
    for (key, prefix, detail) in [
        ("specReplicasPath", ".spec.", "should be a json path under .spec"),
        ("statusReplicasPath", ".status.", "should be a json path under .status"),
    ] {
        let field = format!("{path}.scale.{key}");
        let value = text(&scale[key]);
        if value.is_empty() {
            out.push(FieldProblem::required(field, ""));
        } else if let Some(problem) = simple_json_path(&value, &field) {
            out.push(problem);
        } else if !value.starts_with(prefix) {
            out.push(FieldProblem::invalid(field, Value::String(value), detail));
        }
    }
    let selector = text(&scale["labelSelectorPath"]);
    if !selector.is_empty() {
        let field = format!("{path}.scale.labelSelectorPath");
        if let Some(problem) = simple_json_path(&selector, &field) {
            out.push(problem);
        } else if !selector.starts_with(".spec.") && !selector.starts_with(".status.") {
            let detail = "should be a json path under either .spec or .status";
            out.push(FieldProblem::invalid(field, Value::String(selector), detail));
        }
    }
    out
}

pub(super) fn selectable_fields(fields: &Value, schema: Option<&Value>, path: &str) -> Vec<FieldProblem> {
    let fields = list(fields);
    if fields.is_empty() {
        return Vec::new();
    }
    let Some(schema) = schema else {
        let detail = "selectableFields may only be set when version.schema.openAPIV3Schema is not included";
        return vec![FieldProblem::invalid(path, Value::String(String::new()), detail)];
    };
    let mut out = Vec::new();
    let mut unique: Vec<String> = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let at = format!("{path}[{i}].jsonPath");
        let json_path = text(&field["jsonPath"]);
        if json_path.is_empty() {
            out.push(FieldProblem::required(at, ""));
            continue;
        }
        let value = Value::String(json_path.clone());
        let Some(found) = resolve(Schema::new(schema), &json_path) else {
            let detail = format!("is an invalid path: {json_path} does not refer to a field of the schema");
            out.push(FieldProblem::invalid(at, value, detail));
            continue;
        };
        if json_path.trim_start_matches('.').split('.').next() == Some("metadata") {
            out.push(FieldProblem::invalid(&at, value.clone(), "must not point to fields in metadata"));
        }
        if !matches!(found.type_name(), "string" | "boolean" | "integer") {
            let detail = "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed.";
            out.push(FieldProblem::invalid(&at, value.clone(), detail));
        }
        let normalized = json_path.trim_start_matches('.').to_string();
        if unique.contains(&normalized) {
            out.push(FieldProblem::new(ProblemKind::Duplicate, at, value, ""));
        } else {
            unique.push(normalized);
        }
    }
    if unique.len() > MAX_SELECTABLE_FIELDS {
        let detail = format!("must have at most {MAX_SELECTABLE_FIELDS} items");
        out.push(FieldProblem::new(ProblemKind::TooMany, path, Value::from(unique.len()), detail));
    }
    out
}

/// The schema of a dotted path such as `.spec.color`.
fn resolve<'a>(schema: Schema<'a>, path: &str) -> Option<Schema<'a>> {
    let rest = path.strip_prefix('.')?;
    rest.split('.').try_fold(schema, |node, name| if name.is_empty() { None } else { node.property(name) })
}
