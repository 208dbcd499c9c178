//! Validation of a custom resource against one version's schema, as the
//! apiextensions server does it: ObjectMeta's name, then the OpenAPI v3
//! schema (kube-openapi's validator, with its messages), then the
//! `metadata`, `apiVersion` and `kind` of embedded resources, then the
//! uniqueness of `x-kubernetes-list-type: set|map` lists.
//!
//! Supported: `type`, `nullable`, `format`, `enum`, `properties`,
//! `required`, `additionalProperties`, `items`, `minimum`, `maximum`,
//! `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `minLength`,
//! `maxLength`, `pattern` (RE2-like syntax, ASCII classes), `minItems`,
//! `maxItems`, `uniqueItems`, `minProperties`, `maxProperties`, `allOf`,
//! `anyOf`, `oneOf`, `not`, `x-kubernetes-int-or-string`,
//! `x-kubernetes-embedded-resource`, `x-kubernetes-list-type` and
//! `x-kubernetes-list-map-keys`. Not supported: CEL rules in
//! `x-kubernetes-validations`, which are ignored here.

mod formats;
mod listtype;
mod meta;
mod numbers;
mod strings;
#[cfg(test)]
mod tests;

use serde_json::Value;

use super::problem::{FieldProblem, ProblemKind};
use super::schema::{Additional, Schema};

pub(crate) use formats::supported_format;
pub(crate) use meta::dns1035_label_errors;
pub(crate) use strings::compile as compile_pattern;

/// Validate a custom resource (after [`super::prune`] and
/// [`super::default`]) against its version's `openAPIV3Schema`.
pub fn validate(schema: &Value, obj: &Value) -> Vec<FieldProblem> {
    let mut problems = meta::object_meta_name(obj);
    problems.extend(schema_problems(schema, obj, ""));
    problems.extend(meta::embedded_resources(Schema::new(schema), obj));
    problems.extend(listtype::lists(Schema::new(schema), obj));
    problems
}

/// kube-openapi's schema validation of `value`, with field paths under
/// `prefix` (`""` for a whole object).
pub(crate) fn schema_problems(schema: &Value, value: &Value, prefix: &str) -> Vec<FieldProblem> {
    Walker { prefix }.check(Schema::new(schema), value, "")
}

/// `in body` messages name fields by their kube-openapi path (`spec.ports[0].name`).
struct Walker<'p> {
    prefix: &'p str,
}

impl Walker<'_> {
    /// The field path of a problem found at kube-openapi path `name`.
    fn field(&self, name: &str) -> String {
        let name = name.strip_prefix('.').unwrap_or(name);
        match (self.prefix.is_empty(), name.is_empty()) {
            (_, true) => self.prefix.to_string(),
            (true, false) => name.to_string(),
            (false, false) => format!("{}.{name}", self.prefix),
        }
    }

    fn problem(&self, kind: ProblemKind, name: &str, value: Value, detail: String) -> FieldProblem {
        FieldProblem::new(kind, self.field(name), value, detail)
    }

    /// Errors that upstream reports without a field (`allOf`, ...): they
    /// land on the prefix with an empty value.
    fn composite(&self, detail: String) -> FieldProblem {
        FieldProblem::invalid(self.prefix, Value::String(String::new()), detail)
    }

    fn check(&self, schema: Schema<'_>, value: &Value, name: &str) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        let types = types(schema);
        let format = effective_format(schema, &types);
        if value.is_null() {
            if !types.is_empty() && !schema.nullable() {
                out.push(self.type_problem(name, &types.join(","), "null"));
            }
            out.extend(self.enumeration(schema, value, name));
            return out;
        }
        if !types.is_empty() || !format.is_empty() {
            out.extend(self.type_check(&types, format, value, name));
        }
        out.extend(self.combinators(schema, value, name));
        match value {
            Value::String(s) => {
                out.extend(strings::check(self, schema, s, name));
                if supported_format(format) && !formats::valid(format, s) {
                    out.push(self.type_problem(name, format, s));
                }
            }
            Value::Number(n) => out.extend(numbers::check(self, schema, n, name)),
            Value::Array(items) => out.extend(self.array(schema, items, name)),
            Value::Bool(_) | Value::Null | Value::Object(_) => {}
        }
        out.extend(self.enumeration(schema, value, name));
        if let Value::Object(members) = value {
            out.extend(self.object(schema, members, name));
        }
        out
    }

    /// `InvalidType`: `spec.replicas in body must be of type integer: "string"`.
    fn type_problem(&self, name: &str, expected: &str, actual: &str) -> FieldProblem {
        let detail = format!("{name} in body must be of type {expected}: {}", crate::gofmt::quote(actual));
        self.problem(ProblemKind::TypeInvalid, name, Value::String(actual.to_string()), detail)
    }

    fn type_check(&self, types: &[&str], format: &str, value: &Value, name: &str) -> Option<FieldProblem> {
        let (actual, actual_format) = json_type(value);
        let is_float_int =
            actual == "number" && value.as_f64().is_some_and(is_json_integer) && types.contains(&"integer");
        let is_int_float = actual == "integer" && types.contains(&"number");
        let stringish = matches!(value, Value::String(_) | Value::Array(_));
        let has_format = !format.is_empty();
        let format_fits = types.contains(&actual) || actual_format == format || is_float_int || is_int_float;
        if has_format && !stringish && !format_fits {
            return Some(self.type_problem(name, format, actual_format));
        }
        let numeric = types.contains(&"number") || types.contains(&"integer");
        if has_format && stringish && !numeric {
            return None;
        }
        if !(types.contains(&actual) || is_float_int || is_int_float) {
            return Some(self.type_problem(name, &types.join(","), actual));
        }
        None
    }

    fn combinators(&self, schema: Schema<'_>, value: &Value, name: &str) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        let quoted = crate::gofmt::quote(name);
        let any_of = schema.list("anyOf");
        if !any_of.is_empty() {
            let results: Vec<Vec<FieldProblem>> =
                any_of.iter().map(|s| self.check(Schema::new(s), value, name)).collect();
            if !results.iter().any(Vec::is_empty) {
                out.push(self.composite(format!("{quoted} must validate at least one schema (anyOf)")));
                out.extend(best_failure(results));
            }
        }
        let one_of = schema.list("oneOf");
        if !one_of.is_empty() {
            let results: Vec<Vec<FieldProblem>> =
                one_of.iter().map(|s| self.check(Schema::new(s), value, name)).collect();
            let valid = results.iter().filter(|r| r.is_empty()).count();
            if valid != 1 {
                let more = if valid == 0 {
                    "Found none valid".to_string()
                } else {
                    format!("Found {valid} valid alternatives")
                };
                out.push(
                    self.composite(format!("{quoted} must validate one and only one schema (oneOf). {more}")),
                );
                if valid == 0 {
                    out.extend(best_failure(results));
                }
            }
        }
        let all_of = schema.list("allOf");
        if !all_of.is_empty() {
            let mut valid = 0;
            for sub in all_of {
                let result = self.check(Schema::new(sub), value, name);
                valid += usize::from(result.is_empty());
                out.extend(result);
            }
            if valid != all_of.len() {
                let more = if valid == 0 { ". None validated" } else { "" };
                out.push(self.composite(format!("{quoted} must validate all the schemas (allOf){more}")));
            }
        }
        if let Some(not) = schema.get("not")
            && self.check(Schema::new(not), value, name).is_empty()
        {
            out.push(self.composite(format!("{quoted} must not validate the schema (not)")));
        }
        out
    }

    fn enumeration(&self, schema: Schema<'_>, value: &Value, name: &str) -> Option<FieldProblem> {
        let allowed = schema.list("enum");
        if allowed.is_empty() || allowed.iter().any(|candidate| json_equal(candidate, value)) {
            return None;
        }
        let supported: Vec<String> = allowed
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        Some(FieldProblem::not_supported(self.field(name), value.clone(), &supported))
    }

    fn array(&self, schema: Schema<'_>, items: &[Value], name: &str) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        if let Some(items_schema) = schema.items() {
            for (i, item) in items.iter().enumerate() {
                out.extend(self.check(items_schema, item, &format!("{name}[{i}]")));
            }
        }
        let size = i64::try_from(items.len()).unwrap_or(i64::MAX);
        if let Some(min) = schema.i64("minItems")
            && size < min
        {
            let detail = format!("{name} in body should have at least {min} items");
            out.push(self.problem(ProblemKind::Invalid, name, Value::from(size), detail));
        }
        if let Some(max) = schema.i64("maxItems")
            && size > max
        {
            out.push(self.problem(
                ProblemKind::TooMany,
                name,
                Value::from(size),
                format!("must have at most {max} items"),
            ));
        }
        if schema.flag("uniqueItems")
            && items.iter().enumerate().any(|(i, a)| items[..i].iter().any(|b| json_equal(a, b)))
        {
            let detail = format!("{name} in body shouldn't contain duplicates");
            out.push(self.problem(ProblemKind::Invalid, name, Value::String(String::new()), detail));
        }
        out
    }

    fn object(
        &self,
        schema: Schema<'_>,
        members: &serde_json::Map<String, Value>,
        name: &str,
    ) -> Vec<FieldProblem> {
        let count = i64::try_from(members.len()).unwrap_or(i64::MAX);
        if let Some(min) = schema.i64("minProperties")
            && count < min
        {
            let detail = format!("{name} in body should have at least {min} properties");
            return vec![self.problem(ProblemKind::Invalid, name, Value::from(count), detail)];
        }
        if let Some(max) = schema.i64("maxProperties")
            && count > max
        {
            let detail = format!("must have at most {max} items");
            return vec![self.problem(ProblemKind::TooMany, name, Value::from(count), detail)];
        }
        let mut out = Vec::new();
        let properties = schema.properties();
        let declared = |key: &str| properties.is_some_and(|p| p.contains_key(key));
        match schema.additional() {
            Additional::Bool(false) => {
                for key in members.keys().filter(|k| !declared(k)) {
                    let detail = format!("{name}.{key} in body is a forbidden property");
                    out.push(self.problem(ProblemKind::Invalid, name, Value::String(key.clone()), detail));
                }
            }
            Additional::Schema(values) => {
                for (key, member) in members.iter().filter(|(k, _)| !declared(k)) {
                    out.extend(self.check(values, member, &format!("{name}.{key}")));
                }
            }
            Additional::None | Additional::Bool(true) => {}
        }
        for (key, property) in properties.into_iter().flatten() {
            if let Some(member) = members.get(key) {
                let child = if name.is_empty() { key.clone() } else { format!("{name}.{key}") };
                out.extend(self.check(Schema::new(property), member, &child));
            }
        }
        for key in schema.strings("required") {
            if !members.contains_key(key) {
                out.push(FieldProblem::required(self.field(&format!("{name}.{key}")), ""));
            }
        }
        out
    }
}

/// The failing alternative to report: the one with the fewest problems.
fn best_failure(results: Vec<Vec<FieldProblem>>) -> Vec<FieldProblem> {
    results.into_iter().min_by_key(Vec::len).unwrap_or_default()
}

/// The schema's types as kube-openapi sees them.
fn types(schema: Schema<'_>) -> Vec<&str> {
    if schema.int_or_string() {
        return vec!["integer", "string"];
    }
    match schema.type_name() {
        "" => Vec::new(),
        t => vec![t],
    }
}

/// The format after upstream strips the ones CRDs do not support.
fn effective_format<'a>(schema: Schema<'a>, types: &[&str]) -> &'a str {
    let format = schema.str("format").unwrap_or("");
    if format.is_empty() {
        return "";
    }
    let single = if types.len() == 1 { types[0] } else { "" };
    let keep = match single {
        "" | "string" => supported_format(format),
        "integer" => matches!(format, "int32" | "int64"),
        "number" => matches!(format, "float" | "double"),
        _ => false,
    };
    if keep { format } else { "" }
}

/// The JSON type and Go format of a decoded value: integers are int64,
/// other numbers float64.
fn json_type(value: &Value) -> (&'static str, &'static str) {
    match value {
        Value::Bool(_) => ("boolean", ""),
        Value::String(_) => ("string", ""),
        Value::Number(n) if n.is_i64() => ("integer", "int64"),
        Value::Number(_) => ("number", "float64"),
        Value::Array(_) => ("array", ""),
        Value::Object(_) => ("object", ""),
        Value::Null => ("null", ""),
    }
}

/// swag's `IsFloat64AJSONInteger`.
pub(super) fn is_json_integer(f: f64) -> bool {
    const MAX: f64 = 9_007_199_254_740_991.0;
    f.is_finite() && f.fract() == 0.0 && (-MAX..=MAX).contains(&f)
}

/// Equality with numbers compared by value (`1` equals `1.0`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}
