//! Structural schema rules (upstream's `ValidateStructural`): every field
//! has a type, value validations (`allOf`, `anyOf`, `oneOf`, `not`) only
//! restrict what the structural part specifies, `metadata` at the root
//! restricts only `name` and `generateName`. Problems are sorted by their
//! text, as upstream sorts them.

use serde_json::Value;

use crate::crd::problem::FieldProblem;
use crate::crd::schema::{Additional, Schema};
use crate::crd::validate::compile_pattern;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

pub(super) fn validate(schema: &Value, path: &str) -> Vec<FieldProblem> {
    let mut out = Vec::new();
    invariants(Schema::new(schema), Level::Root, path, &mut out);
    completeness(Schema::new(schema), path, &mut out);
    out.sort_by_key(ToString::to_string);
    out
}

fn key(path: &str, name: &str) -> String {
    format!("{path}.properties[{name}]")
}

fn invariants(s: Schema<'_>, level: Level, path: &str, out: &mut Vec<FieldProblem>) {
    let ty = s.type_name();
    if ty == "array" && s.items().is_none() {
        out.push(FieldProblem::required(format!("{path}.items"), "must be specified"));
    }
    if let Some(items) = s.items() {
        invariants(items, Level::Item, &format!("{path}.items"), out);
    }
    for (name, property) in s.properties().into_iter().flatten() {
        invariants(Schema::new(property), Level::Field, &key(path, name), out);
    }
    match s.additional() {
        Additional::None => {}
        additional => {
            if level == Level::Root {
                out.push(FieldProblem::forbidden(
                    format!("{path}.additionalProperties"),
                    "must not be used at the root",
                ));
            }
            if let Additional::Schema(values) = additional {
                invariants(values, Level::Field, &format!("{path}.additionalProperties"), out);
            }
        }
    }
    if s.int_or_string() && s.preserve_unknown() {
        let field = format!("{path}.x-kubernetes-preserve-unknown-fields");
        out.push(FieldProblem::invalid(
            field,
            Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if s.int_or_string() && s.embedded() {
        let field = format!("{path}.x-kubernetes-embedded-resource");
        out.push(FieldProblem::invalid(
            field,
            Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    value_validation(
        s,
        int_or_string_any_of(s.list("anyOf")),
        first_all_of_is_int_or_string(s),
        level,
        path,
        out,
    );

    let check_metadata = level == Level::Root || s.embedded();
    let type_field = format!("{path}.type");
    if s.embedded() && ty != "object" {
        let detail = "must be object if x-kubernetes-embedded-resource is true";
        out.push(if ty.is_empty() {
            FieldProblem::required(&type_field, detail)
        } else {
            FieldProblem::invalid(&type_field, Value::String(ty.into()), detail)
        });
    } else if ty.is_empty() && !s.int_or_string() && !s.preserve_unknown() {
        let detail = match level {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        out.push(FieldProblem::required(&type_field, detail));
    }
    if s.embedded() && !matches!(s.additional(), Additional::None) {
        let detail = "must not be used if x-kubernetes-embedded-resource is set";
        out.push(FieldProblem::forbidden(format!("{path}.additionalProperties"), detail));
    }
    if level == Level::Root && !ty.is_empty() && ty != "object" {
        out.push(FieldProblem::invalid(&type_field, Value::String(ty.into()), "must be object at the root"));
    }
    for name in ["kind", "apiVersion"] {
        if let Some(property) = s.property(name)
            && check_metadata
            && property.type_name() != "string"
        {
            let field = format!("{}.type", key(path, name));
            out.push(FieldProblem::invalid(
                field,
                Value::String(property.type_name().into()),
                "must be string",
            ));
        }
    }
    if let Some(metadata) = s.property("metadata") {
        let field = key(path, "metadata");
        if check_metadata && metadata.type_name() != "object" {
            let value = Value::String(metadata.type_name().into());
            out.push(FieldProblem::invalid(format!("{field}.type"), value, "must be object"));
        }
        if level == Level::Root && !root_metadata_ok(metadata) {
            let detail = "must not specify anything other than name and generateName, but metadata is implicitly specified";
            out.push(FieldProblem::forbidden(field, detail));
        }
    }
    if s.embedded() && !s.preserve_unknown() && s.properties().is_none_or(|p| p.is_empty()) {
        let detail = "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields";
        out.push(FieldProblem::required(format!("{path}.properties"), detail));
    }
}

/// The root `metadata` schema may give a type and a default and restrict
/// `name` and `generateName`, nothing else.
fn root_metadata_ok(metadata: Schema<'_>) -> bool {
    let only_names = metadata
        .properties()
        .is_none_or(|p| p.is_empty() || p.keys().all(|k| k == "name" || k == "generateName"));
    only_names
        && metadata.keys().all(|k| {
            matches!(k.as_str(), "type" | "default" | "properties" | "example" | "externalDocs")
                || (k == "nullable" && !metadata.nullable())
                || (k == "x-kubernetes-preserve-unknown-fields" && !metadata.preserve_unknown())
        })
}

fn int_or_string_any_of(any_of: &[Value]) -> bool {
    any_of.len() == 2
        && any_of[0] == serde_json::json!({"type": "integer"})
        && any_of[1] == serde_json::json!({"type": "string"})
}

fn first_all_of_is_int_or_string(s: Schema<'_>) -> bool {
    s.list("allOf").first().is_some_and(|first| int_or_string_any_of(Schema::new(first).list("anyOf")))
}

/// Rules for the value-validation part of a node at `path`.
fn value_validation(
    v: Schema<'_>,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    level: Level,
    path: &str,
    out: &mut Vec<FieldProblem>,
) {
    if !skip_any_of {
        for (i, nested) in v.list("anyOf").iter().enumerate() {
            nested_validation(Schema::new(nested), false, level, &format!("{path}.anyOf[{i}]"), out);
        }
    }
    for (i, nested) in v.list("allOf").iter().enumerate() {
        let skip = skip_first_all_of_any_of && i == 0;
        nested_validation(Schema::new(nested), skip, level, &format!("{path}.allOf[{i}]"), out);
    }
    for (i, nested) in v.list("oneOf").iter().enumerate() {
        nested_validation(Schema::new(nested), false, level, &format!("{path}.oneOf[{i}]"), out);
    }
    if let Some(not) = v.get("not") {
        nested_validation(Schema::new(not), false, level, &format!("{path}.not"), out);
    }
    if let Some(pattern) = v.str("pattern").filter(|p| !p.is_empty())
        && let Err(err) = compile_pattern(pattern)
    {
        let detail = format!("must be a valid regular expression, but isn't: {err}");
        out.push(FieldProblem::invalid(format!("{path}.pattern"), Value::String(pattern.into()), detail));
    }
}

fn nested_validation(
    v: Schema<'_>,
    skip_any_of: bool,
    level: Level,
    path: &str,
    out: &mut Vec<FieldProblem>,
) {
    value_validation(v, skip_any_of, false, level, path, out);
    if let Some(items) = v.items() {
        nested_validation(items, false, level, &format!("{path}.items"), out);
    }
    for (name, property) in v.properties().into_iter().flatten() {
        nested_validation(Schema::new(property), false, Level::Field, &key(path, name), out);
    }
    let forbidden = |out: &mut Vec<FieldProblem>, name: &str, detail: &str| {
        out.push(FieldProblem::forbidden(format!("{path}.{name}"), detail));
    };
    if !v.type_name().is_empty() {
        forbidden(out, "type", "must be empty to be structural");
    }
    if v.has("additionalProperties") {
        forbidden(out, "additionalProperties", "must be undefined to be structural");
    }
    if v.has("default") {
        forbidden(out, "default", "must be undefined to be structural");
    }
    for name in ["title", "description"] {
        if v.str(name).is_some_and(|t| !t.is_empty()) {
            forbidden(out, name, "must be empty to be structural");
        }
    }
    if v.nullable() {
        forbidden(out, "nullable", "must be false to be structural");
    }
    if v.has("externalDocs") {
        forbidden(out, "externalDocs", "must be undefined to be structural");
    }
    for name in [
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
    ] {
        if v.flag(name) {
            forbidden(out, name, "must be false to be structural");
        }
    }
    if !v.list("x-kubernetes-list-map-keys").is_empty() {
        forbidden(out, "x-kubernetes-list-map-keys", "must be empty to be structural");
    }
    for name in ["x-kubernetes-list-type", "x-kubernetes-map-type"] {
        if v.has(name) {
            forbidden(out, name, "must be undefined to be structural");
        }
    }
    if !v.list("x-kubernetes-validations").is_empty() {
        forbidden(out, "x-kubernetes-validations", "must be empty to be structural");
    }
    if v.property("metadata").is_some() {
        out.push(FieldProblem::forbidden(key(path, "metadata"), "must not be specified in a nested context"));
    }
}

/// Properties and items named in value validations must exist in the
/// structural part.
fn completeness(s: Schema<'_>, path: &str, out: &mut Vec<FieldProblem>) {
    value_completeness(s, Some(s), path, path, out);
}

fn value_completeness(
    v: Schema<'_>,
    s: Option<Schema<'_>>,
    s_path: &str,
    v_path: &str,
    out: &mut Vec<FieldProblem>,
) {
    let Some(s) = s else {
        out.push(FieldProblem::required(s_path, format!("because it is defined in {v_path}")));
        return;
    };
    if let Some(not) = v.get("not") {
        nested_completeness(Schema::new(not), Some(s), s_path, &format!("{v_path}.not"), out);
    }
    for name in ["allOf", "anyOf", "oneOf"] {
        for (i, nested) in v.list(name).iter().enumerate() {
            nested_completeness(Schema::new(nested), Some(s), s_path, &format!("{v_path}.{name}[{i}]"), out);
        }
    }
}

fn nested_completeness(
    v: Schema<'_>,
    s: Option<Schema<'_>>,
    s_path: &str,
    v_path: &str,
    out: &mut Vec<FieldProblem>,
) {
    let Some(s) = s else {
        out.push(FieldProblem::required(s_path, format!("because it is defined in {v_path}")));
        return;
    };
    value_completeness(v, Some(s), s_path, v_path, out);
    if let Some(items) = v.items() {
        nested_completeness(items, s.items(), &format!("{s_path}.items"), &format!("{v_path}.items"), out);
    }
    for (name, property) in v.properties().into_iter().flatten() {
        let (sp, vp) = (key(s_path, name), key(v_path, name));
        match s.property(name) {
            Some(structural) => nested_completeness(Schema::new(property), Some(structural), &sp, &vp, out),
            None => out.push(FieldProblem::required(sp, format!("because it is defined in {vp}"))),
        }
    }
}
