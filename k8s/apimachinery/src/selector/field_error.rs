//! Field-level validation errors, rendered exactly as upstream's
//! `field.Error` and `ErrorList.ToAggregate()` print them: the API server
//! hands these strings to kubectl verbatim, in 400 and 422 responses.

use std::fmt;

/// A path to a field, such as `spec.selector.matchExpressions[0].values`.
///
/// The root path is empty and prints as `<nil>`, as upstream's nil
/// `*field.Path` does (label selector strings are parsed with no path).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(String);

impl FieldPath {
    /// The path with no name, printed `<nil>`.
    pub fn root() -> Self {
        Self::default()
    }

    /// A path starting at `name`; `""` is the root.
    pub fn new(name: &str) -> Self {
        Self(name.to_owned())
    }

    /// `spec` -> `spec.selector`; the root's child is just `name`.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() { Self::new(name) } else { Self(format!("{}.{name}", self.0)) }
    }

    /// `values` -> `values[3]`.
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    /// `values[0]` -> `values[0][app]`.
    pub fn key(&self, key: &str) -> Self {
        Self(format!("{}[{key}]", self.0))
    }

    /// The path as written, `""` for the root.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str("<nil>") } else { f.write_str(&self.0) }
    }
}

/// What is wrong with a field; also the `reason` of a `metav1.StatusCause`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// `FieldValueInvalid`: malformed value.
    Invalid,
    /// `FieldValueRequired`: a value must be given.
    Required,
    /// `FieldValueForbidden`: a value may not be given here.
    Forbidden,
    /// `FieldValueTypeInvalid`: the JSON has the wrong type.
    TypeInvalid,
}

impl FieldErrorKind {
    /// The machine-readable cause type, `FieldValueInvalid`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Invalid => "FieldValueInvalid",
            Self::Required => "FieldValueRequired",
            Self::Forbidden => "FieldValueForbidden",
            Self::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    fn phrase(self) -> &'static str {
        match self {
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::Required => "Required value",
            Self::Forbidden => "Forbidden",
        }
    }

    /// Upstream prints the bad value only for these kinds.
    fn shows_value(self) -> bool {
        matches!(self, Self::Invalid | Self::TypeInvalid)
    }
}

/// The offending value, kept in the shape upstream formats it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadValue {
    /// Printed quoted, Go `%q`: `"a b"`.
    String(String),
    /// Printed as Go `%#v` of a `[]string`: `[]string{"a", "b"}`.
    Strings(Vec<String>),
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(value) => f.write_str(&crate::gofmt::quote(value)),
            Self::Strings(values) => {
                let quoted: Vec<String> = values.iter().map(|v| crate::gofmt::quote(v)).collect();
                write!(f, "[]string{{{}}}", quoted.join(", "))
            }
        }
    }
}

/// One field error: `values[0][app]: Invalid value: "-x": a valid label ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub kind: FieldErrorKind,
    pub field: FieldPath,
    pub value: BadValue,
    pub detail: String,
}

impl FieldError {
    pub fn invalid(field: FieldPath, value: BadValue, detail: impl Into<String>) -> Self {
        Self { kind: FieldErrorKind::Invalid, field, value, detail: detail.into() }
    }

    pub fn required(field: FieldPath, detail: impl Into<String>) -> Self {
        Self {
            kind: FieldErrorKind::Required,
            field,
            value: BadValue::String(String::new()),
            detail: detail.into(),
        }
    }

    pub fn forbidden(field: FieldPath, detail: impl Into<String>) -> Self {
        Self {
            kind: FieldErrorKind::Forbidden,
            field,
            value: BadValue::String(String::new()),
            detail: detail.into(),
        }
    }

    pub fn type_invalid(field: FieldPath, value: BadValue, detail: impl Into<String>) -> Self {
        Self { kind: FieldErrorKind::TypeInvalid, field, value, detail: detail.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.kind.phrase())?;
        if self.kind.shows_value() {
            write!(f, ": {}", self.value)?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldError {}

/// Several field errors, printed as upstream's aggregate: one error alone,
/// or `[first, second]` with duplicates dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    /// `Ok(())` when there is nothing to report.
    pub fn into_result(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl From<FieldError> for FieldErrors {
    fn from(error: FieldError) -> Self {
        Self(vec![error])
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut seen: Vec<String> = Vec::with_capacity(self.0.len());
        for error in &self.0 {
            let message = error.to_string();
            if !seen.contains(&message) {
                seen.push(message);
            }
        }
        match seen.as_slice() {
            [one] => f.write_str(one),
            many => write!(f, "[{}]", many.join(", ")),
        }
    }
}

impl std::error::Error for FieldErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_path_prints_nil_and_children_join_with_dots() {
        assert_eq!(FieldPath::root().to_string(), "<nil>");
        assert_eq!(FieldPath::root().child("key").to_string(), "key");
        let path =
            FieldPath::new("spec").child("selector").child("matchExpressions").index(0).child("values");
        assert_eq!(path.to_string(), "spec.selector.matchExpressions[0].values");
        assert_eq!(FieldPath::root().child("values").index(0).key("app").to_string(), "values[0][app]");
    }

    #[test]
    fn errors_render_like_upstream() {
        let invalid = FieldError::invalid(FieldPath::new("key"), BadValue::String("a b".into()), "bad");
        assert_eq!(invalid.to_string(), r#"key: Invalid value: "a b": bad"#);
        let required = FieldError::required(FieldPath::new("values"), "must be given");
        assert_eq!(required.to_string(), "values: Required value: must be given");
        let forbidden = FieldError::forbidden(FieldPath::new("values"), "");
        assert_eq!(forbidden.to_string(), "values: Forbidden");
        let list = FieldError::invalid(FieldPath::new("values"), BadValue::Strings(vec![]), "empty");
        assert_eq!(list.to_string(), "values: Invalid value: []string{}: empty");
        let two = BadValue::Strings(vec!["a".into(), "b".into()]);
        assert_eq!(two.to_string(), r#"[]string{"a", "b"}"#);
    }

    #[test]
    fn aggregate_brackets_many_and_drops_duplicates() {
        let a = FieldError::required(FieldPath::new("a"), "x");
        let b = FieldError::required(FieldPath::new("b"), "y");
        assert_eq!(FieldErrors(vec![a.clone()]).to_string(), "a: Required value: x");
        let all = FieldErrors(vec![a.clone(), b, a]);
        assert_eq!(all.to_string(), "[a: Required value: x, b: Required value: y]");
    }

    #[test]
    fn quoting_follows_go() {
        assert_eq!(crate::gofmt::quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(crate::gofmt::quote("tab\there\u{1}"), r#""tab\there\x01""#);
        assert_eq!(crate::gofmt::quote("é\u{200b}"), "\"é\\u200b\"");
    }
}
