//! One field-level problem, printed exactly as upstream's `field.Error`:
//! `spec.size: Invalid value: 11: spec.size in body should be less than or
//! equal to 10`. The API server answers 422 Invalid with one cause per
//! problem: [`FieldProblem::reason`], [`FieldProblem::field`] and
//! [`FieldProblem::body`].

use std::fmt;

use serde_json::Value;

/// Upstream's `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    Required,
    Invalid,
    /// The JSON type does not match the schema; printed as `Invalid value`.
    TypeInvalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Duplicate,
}

impl ProblemKind {
    /// The `reason` of a `metav1.StatusCause`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid => "FieldValueInvalid",
            Self::TypeInvalid => "FieldValueTypeInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Duplicate => "FieldValueDuplicate",
        }
    }

    fn phrase(self) -> &'static str {
        match self {
            Self::Required => "Required value",
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
            Self::Duplicate => "Duplicate value",
        }
    }

    fn shows_value(self) -> bool {
        !matches!(self, Self::Required | Self::Forbidden | Self::TooLong)
    }
}

/// The offending value as upstream prints it.
#[derive(Debug, Clone, PartialEq)]
pub enum BadValue {
    /// A JSON value: strings quoted, numbers as Go prints them, objects and
    /// arrays as Go's `%#v` of `map[string]interface {}`.
    Json(Value),
    /// Text printed as is (Go's `%#v` of a typed value).
    Raw(String),
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldProblem {
    pub kind: ProblemKind,
    /// `spec.versions[0].name`; `""` prints as `<nil>` like a nil path.
    pub field: String,
    pub value: BadValue,
    pub detail: String,
}

impl FieldProblem {
    pub fn new(kind: ProblemKind, field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        Self { kind, field: field.into(), value: BadValue::Json(value), detail: detail.into() }
    }

    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Required, field, Value::String(String::new()), detail)
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Forbidden, field, Value::String(String::new()), detail)
    }

    pub fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Invalid, field, value, detail)
    }

    /// `Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported(field: impl Into<String>, value: Value, supported: &[String]) -> Self {
        let quoted: Vec<String> = supported.iter().map(|s| crate::gofmt::quote(s)).collect();
        let detail = if quoted.is_empty() {
            String::new()
        } else {
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ProblemKind::NotSupported, field, value, detail)
    }

    /// The machine-readable cause type.
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// The message without the field: upstream's `ErrorBody`.
    pub fn body(&self) -> String {
        let mut out = self.kind.phrase().to_string();
        if self.kind.shows_value() {
            out.push_str(": ");
            match &self.value {
                BadValue::Json(value) => out.push_str(&go_value(value)),
                BadValue::Raw(text) => out.push_str(text),
            }
        }
        if !self.detail.is_empty() {
            out.push_str(": ");
            out.push_str(&self.detail);
        }
        out
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = if self.field.is_empty() { "<nil>" } else { &self.field };
        write!(f, "{field}: {}", self.body())
    }
}

/// A JSON value the way `field.Error` prints a bad value.
fn go_value(value: &Value) -> String {
    match value {
        Value::Null => crate::gofmt::quote("null"),
        Value::String(s) => crate::gofmt::quote(s),
        Value::Bool(_) | Value::Number(_) => go_sharp(value),
        Value::Array(_) | Value::Object(_) => go_sharp(value),
    }
}

/// Go's `%#v` of an unstructured JSON value.
pub(crate) fn go_sharp(value: &Value) -> String {
    match value {
        Value::Null => "interface {}(nil)".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => go_float(f),
            (None, None) => n.to_string(),
        },
        Value::String(s) => crate::gofmt::quote(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_sharp).collect();
            format!("[]interface {{}}{{{}}}", inner.join(", "))
        }
        Value::Object(members) => {
            let mut keys: Vec<&String> = members.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", crate::gofmt::quote(k), go_sharp(&members[k.as_str()])))
                .collect();
            format!("map[string]interface {{}}{{{}}}", inner.join(", "))
        }
    }
}

/// Go's `%v` of a float64: shortest digits, exponent form below 1e-4 and
/// from 1e6 on (`strconv.FormatFloat(f, 'g', -1, 64)`).
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prints_like_field_error() {
        let p = FieldProblem::invalid(
            "spec.size",
            json!(11),
            "spec.size in body should be less than or equal to 10",
        );
        assert_eq!(
            p.to_string(),
            "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10"
        );
        assert_eq!(FieldProblem::required("spec.cronSpec", "").to_string(), "spec.cronSpec: Required value");
        let ns = FieldProblem::not_supported("spec.mode", json!("x"), &["a".into(), "b".into()]);
        assert_eq!(ns.to_string(), r#"spec.mode: Unsupported value: "x": supported values: "a", "b""#);
        assert_eq!(ns.reason(), "FieldValueNotSupported");
        let root = FieldProblem::invalid("", json!(null), "bad");
        assert_eq!(root.to_string(), r#"<nil>: Invalid value: "null": bad"#);
    }

    #[test]
    fn go_formatting_of_values() {
        assert_eq!(go_float(10.0), "10");
        assert_eq!(go_float(10.5), "10.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(100000.0), "100000");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_sharp(&json!({"b": 1, "a": "x"})), r#"map[string]interface {}{"a":"x", "b":1}"#);
        assert_eq!(go_sharp(&json!([1, true])), "[]interface {}{1, true}");
        assert_eq!(crate::gofmt::quote("a\"b\n"), r#""a\"b\n""#);
    }
}
