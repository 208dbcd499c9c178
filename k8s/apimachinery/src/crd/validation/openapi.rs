//! Checks of one `openAPIV3Schema` as upstream's
//! `validateCustomResourceDefinitionValidation` makes them: the root when
//! the status subresource is on, structural rules, defaults, then the
//! OpenAPI features CRDs do not allow and the Kubernetes extensions.

use serde_json::Value;

use super::structural;
use crate::crd::problem::{BadValue, FieldProblem};
use crate::crd::prune::prune_value;
use crate::crd::schema::{Additional, Schema};
use crate::crd::validate::schema_problems;

const OPENAPI_TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];
const META_FIELDS: [&str; 3] = ["metadata", "kind", "apiVersion"];
/// JSON names of the fields upstream allows at the root with status on.
const ROOT_ALLOWED: [&str; 22] = [
    "description",
    "type",
    "format",
    "title",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "required",
    "items",
    "properties",
    "externalDocs",
    "example",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
];
const ROOT_ALLOWED_NAMES: &str = "[Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum \
MaxLength MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs Example \
XPreserveUnknownFields XValidations]";

/// Problems of `schema` found at `path` (`spec.validation` or
/// `spec.versions[i].schema`).
pub(super) fn schema(schema: &Value, status_enabled: bool, path: &str) -> Vec<FieldProblem> {
    let root = format!("{path}.openAPIV3Schema");
    let s = Schema::new(schema);
    let mut out = Vec::new();
    if status_enabled {
        out.extend(status_root(s, &root));
    }
    if s.nullable() {
        out.push(FieldProblem::forbidden(format!("{root}.nullable"), "nullable cannot be true at the root"));
    }
    let structural = structural::validate(schema, &root);
    if structural.is_empty() {
        defaults(s, &root, true, false, &mut out);
    } else {
        out.extend(structural);
    }
    let rules = Rules { allow_defaults: true, disallow_reason: String::new(), inside_meta: false };
    node(s, &root, &rules, true, &mut out);
    out
}

fn status_root(s: Schema<'_>, root: &str) -> Option<FieldProblem> {
    let ty = s.type_name();
    for key in s.keys() {
        let zero = match s.get(key) {
            Some(Value::Bool(b)) => !b,
            Some(Value::Null) | None => true,
            Some(Value::String(t)) => t.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            Some(Value::Number(_)) => false,
        };
        if zero {
            continue;
        }
        if key == "type" {
            if ty != "object" {
                let detail = r#"only "object" is allowed as the type at the root of the schema if the status subresource is enabled"#;
                return Some(FieldProblem::invalid(format!("{root}.type"), Value::String(ty.into()), detail));
            }
            continue;
        }
        if !ROOT_ALLOWED.contains(&key.as_str()) {
            let detail = format!(
                "only {ROOT_ALLOWED_NAMES} fields are allowed at the root of the schema if the status subresource is enabled"
            );
            return Some(FieldProblem {
                value: BadValue::Raw("apiextensions.JSONSchemaProps{...}".into()),
                ..FieldProblem::invalid(root, Value::Null, detail)
            });
        }
    }
    None
}

/// Defaults must validate against their schema and must not carry fields
/// that pruning would drop. `additionalProperties` is not followed.
fn defaults(s: Schema<'_>, path: &str, resource: bool, inside_meta: bool, out: &mut Vec<FieldProblem>) {
    let resource = resource || s.embedded();
    if let Some(default) = s.default_value() {
        let raw = s.raw();
        let field = format!("{path}.default");
        if !inside_meta {
            let mut pruned = default.clone();
            prune_value(raw, &mut pruned, s.embedded());
            if &pruned != default {
                out.push(FieldProblem::invalid(&field, default.clone(), "must not have unknown fields"));
            }
        }
        out.extend(schema_problems(raw, default, &field));
    }
    if let Some(items) = s.items() {
        defaults(items, &format!("{path}.items"), false, inside_meta, out);
    }
    for (name, property) in s.properties().into_iter().flatten() {
        let meta = inside_meta || (resource && META_FIELDS.contains(&name.as_str()));
        defaults(Schema::new(property), &format!("{path}.properties[{name}]"), false, meta, out);
    }
}

struct Rules {
    allow_defaults: bool,
    disallow_reason: String,
    inside_meta: bool,
}

impl Rules {
    fn forbid_defaults(&self, reason: &str) -> Self {
        Self { allow_defaults: false, disallow_reason: reason.into(), inside_meta: self.inside_meta }
    }

    fn in_meta(&self) -> Self {
        Self {
            allow_defaults: self.allow_defaults,
            disallow_reason: self.disallow_reason.clone(),
            inside_meta: true,
        }
    }

    fn same(&self) -> Self {
        Self {
            allow_defaults: self.allow_defaults,
            disallow_reason: self.disallow_reason.clone(),
            inside_meta: self.inside_meta,
        }
    }
}

/// upstream's `ValidateCustomResourceDefinitionOpenAPISchema` for one node.
fn node(s: Schema<'_>, path: &str, rules: &Rules, is_root: bool, out: &mut Vec<FieldProblem>) {
    let at = |name: &str| format!("{path}.{name}");
    let ty = s.type_name();
    if !ty.is_empty() && !OPENAPI_TYPES.contains(&ty) {
        let supported: Vec<String> = OPENAPI_TYPES.iter().map(|t| (*t).to_string()).collect();
        out.push(FieldProblem::not_supported(at("type"), Value::String(ty.into()), &supported));
    }
    if s.has("default") && !rules.allow_defaults {
        let mut detail = "must not be set".to_string();
        if !rules.disallow_reason.is_empty() {
            detail = format!("{detail} {}", rules.disallow_reason);
        }
        out.push(FieldProblem::forbidden(at("default"), detail));
    }
    for (key, name) in [
        ("id", "id"),
        ("additionalItems", "additionalItems"),
        ("patternProperties", "patternProperties"),
        ("definitions", "definitions"),
        ("dependencies", "dependencies"),
        ("$ref", "$ref"),
    ] {
        let set = s
            .get(key)
            .is_some_and(|v| !(v.is_null() || v == "" || v.as_object().is_some_and(|o| o.is_empty())));
        if set {
            out.push(FieldProblem::forbidden(at(key), format!("{name} is not supported")));
        }
    }
    if ty == "null" {
        out.push(FieldProblem::forbidden(
            at("type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if s.get("items").is_some_and(Value::is_array) {
        out.push(FieldProblem::forbidden(at("items"), "items must be a schema object and not an array"));
    }
    if rules.inside_meta && s.embedded() {
        out.push(FieldProblem::forbidden(
            at("x-kubernetes-embedded-resource"),
            "must not be used inside of resource meta",
        ));
    }
    if s.flag("uniqueItems") {
        let detail = "uniqueItems cannot be set to true since the runtime complexity becomes quadratic";
        out.push(FieldProblem::forbidden(at("uniqueItems"), detail));
    }
    let has_properties = s.properties().is_some_and(|p| !p.is_empty());
    match s.additional() {
        Additional::None => {}
        additional => {
            if has_properties && !matches!(additional, Additional::Bool(true)) {
                let detail = "additionalProperties and properties are mutual exclusive";
                out.push(FieldProblem::forbidden(at("additionalProperties"), detail));
            }
            if let Additional::Schema(values) = additional {
                let sub = if rules.inside_meta {
                    rules.forbid_defaults("inside additionalProperties applying to object metadata")
                } else {
                    rules.same()
                };
                node(values, &at("additionalProperties"), &sub, false, out);
            }
        }
    }
    for (name, property) in s.properties().into_iter().flatten() {
        let mut sub = rules.same();
        if (is_root || s.embedded()) && META_FIELDS.contains(&name.as_str()) {
            sub = sub.in_meta();
            if is_root {
                sub = sub.forbid_defaults(&format!("in top-level {name}"));
            }
        }
        node(Schema::new(property), &format!("{path}.properties[{name}]"), &sub, false, out);
    }
    if let Some(not) = s.get("not") {
        node(Schema::new(not), &at("not"), rules, false, out);
    }
    for combinator in ["allOf", "oneOf", "anyOf"] {
        for (i, sub) in s.list(combinator).iter().enumerate() {
            node(Schema::new(sub), &format!("{path}.{combinator}[{i}]"), rules, false, out);
        }
    }
    match s.get("items") {
        Some(items @ Value::Object(_)) => node(Schema::new(items), &at("items"), rules, false, out),
        Some(Value::Array(all)) => {
            for (i, items) in all.iter().enumerate() {
                node(Schema::new(items), &format!("{path}.items[{i}]"), rules, false, out);
            }
        }
        _ => {}
    }
    if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        let field = at("x-kubernetes-preserve-unknown-fields");
        out.push(FieldProblem::invalid(field, Value::Bool(false), "must be true or undefined"));
    }
    extensions(s, path, out);
}

fn require_type(ty: &str, field: String, detail: &str) -> FieldProblem {
    if ty.is_empty() {
        FieldProblem::required(field, detail)
    } else {
        FieldProblem::invalid(field, Value::String(ty.into()), detail)
    }
}

/// `x-kubernetes-map-type`, `-list-type`, `-list-map-keys` and the static
/// parts of `-validations` (CEL rules themselves are not compiled).
fn extensions(s: Schema<'_>, path: &str, out: &mut Vec<FieldProblem>) {
    let at = |name: &str| format!("{path}.{name}");
    let ty = s.type_name();
    if let Some(map_type) = s.get("x-kubernetes-map-type") {
        if ty != "object" {
            out.push(require_type(ty, at("type"), "must be object if x-kubernetes-map-type is specified"));
        }
        if !matches!(map_type.as_str(), Some("atomic" | "granular")) {
            let supported = ["atomic".to_string(), "granular".to_string()];
            out.push(FieldProblem::not_supported(at("x-kubernetes-map-type"), map_type.clone(), &supported));
        }
    }
    let list_type = s.str("x-kubernetes-list-type");
    let items = s.items();
    if let Some(list_type) = list_type {
        if ty != "array" {
            out.push(require_type(ty, at("type"), "must be array if x-kubernetes-list-type is specified"));
        } else if list_type == "set"
            && let Some(item) = items
        {
            let detail = "must be atomic as item of a list with x-kubernetes-list-type=set";
            let value = Value::String(list_type.into());
            match item.type_name() {
                "array" if item.str("x-kubernetes-list-type").is_some_and(|t| t != "atomic") => {
                    out.push(FieldProblem::invalid(
                        format!("{path}.items.x-kubernetes-list-type"),
                        value,
                        detail,
                    ));
                }
                "object" if item.str("x-kubernetes-map-type") != Some("atomic") => {
                    out.push(FieldProblem::invalid(
                        format!("{path}.items.x-kubernetes-map-type"),
                        value,
                        detail,
                    ));
                }
                _ => {}
            }
        }
        if !matches!(list_type, "atomic" | "set" | "map") {
            let supported = ["atomic", "set", "map"].map(String::from);
            out.push(FieldProblem::not_supported(
                at("x-kubernetes-list-type"),
                Value::String(list_type.into()),
                &supported,
            ));
        }
    }
    let map_keys = s.strings("x-kubernetes-list-map-keys");
    let keys_value = || Value::from(map_keys.iter().map(|k| (*k).to_string()).collect::<Vec<_>>());
    if !map_keys.is_empty() {
        match list_type {
            None => out.push(FieldProblem::required(
                at("x-kubernetes-list-type"),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
            Some("map") => {}
            Some(other) => out.push(FieldProblem::invalid(
                at("x-kubernetes-list-type"),
                Value::String(other.into()),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
        }
    }
    if list_type == Some("map") {
        if map_keys.is_empty() {
            out.push(FieldProblem::required(
                at("x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        match items {
            None => out.push(FieldProblem::required(
                at("items"),
                "must have a schema if x-kubernetes-list-type is map",
            )),
            Some(item) if item.type_name() != "object" => out.push(FieldProblem::invalid(
                format!("{path}.items.type"),
                Value::String(item.type_name().into()),
                "must be object if parent array's x-kubernetes-list-type is map",
            )),
            Some(item) => {
                let mut seen: Vec<&str> = Vec::new();
                for k in &map_keys {
                    match item.property(k) {
                        Some(p) if matches!(p.type_name(), "array" | "object") => {
                            out.push(FieldProblem::invalid(
                                format!("{path}.items.properties[{k}].type"),
                                Value::String(item.type_name().into()),
                                "must be a scalar type if parent array's x-kubernetes-list-type is map",
                            ))
                        }
                        Some(_) => {}
                        None => out.push(FieldProblem::invalid(
                            at("x-kubernetes-list-map-keys"),
                            keys_value(),
                            "entries must all be names of item properties",
                        )),
                    }
                    if seen.contains(k) {
                        let detail = "must not contain duplicate entries";
                        out.push(FieldProblem::invalid(
                            at("x-kubernetes-list-map-keys"),
                            keys_value(),
                            detail,
                        ));
                    }
                    seen.push(k);
                }
            }
        }
    }
    if let (Some(kind @ ("set" | "map")), Some(item)) = (list_type, items) {
        if item.nullable() {
            out.push(FieldProblem::forbidden(
                format!("{path}.items.nullable"),
                format!("cannot be nullable when x-kubernetes-list-type is {kind}"),
            ));
        }
        if kind == "map" {
            let required = item.strings("required");
            for k in &map_keys {
                let Some(p) = item.property(k) else { continue };
                let field = format!("{path}.items.properties[{k}]");
                if !required.contains(k) && p.default_value().is_none() {
                    let detail = "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property";
                    out.push(FieldProblem::required(format!("{field}.default"), detail));
                }
                if p.nullable() {
                    let detail = "this property is in x-kubernetes-list-map-keys, so it cannot be nullable";
                    out.push(FieldProblem::forbidden(format!("{field}.nullable"), detail));
                }
            }
        }
    }
    for (i, rule) in s.list("x-kubernetes-validations").iter().enumerate() {
        let field = format!("{path}.x-kubernetes-validations[{i}]");
        if rule["rule"].as_str().unwrap_or("").trim().is_empty() {
            out.push(FieldProblem::required(format!("{field}.rule"), "rule is not specified"));
        }
    }
}
