//! Field selectors: the `?fieldSelector=` string form (`a=b`, `a==b`,
//! `a!=b`, comma-separated, values escaped with `\`), and per kind the
//! fields upstream lets you select on.

mod kinds;

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

pub use kinds::{FieldMatcher, FieldSelectorError, SelectableFields, field_value};

/// Why a field selector string was rejected; `Display` is upstream's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldSelectorParseError {
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    Term { selector: String, term: String },
    #[error("invalid field selector: invalid escape sequence: {sequence}")]
    InvalidEscape { sequence: String },
    /// Upstream prints the character's code point (`61` for `=`).
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.character))]
    Unescaped { character: char },
}

/// `=` or `!=`; `==` parses as `=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    Equals,
    NotEquals,
}

/// `field=value` or `field!=value`, with the value unescaped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldTerm {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

impl FieldTerm {
    /// Whether `actual` (the object's value, `""` when absent) satisfies
    /// the term.
    pub fn matches(&self, actual: &str) -> bool {
        match self.operator {
            FieldOperator::Equals => actual == self.value,
            FieldOperator::NotEquals => actual != self.value,
        }
    }
}

impl fmt::Display for FieldTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operator = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{operator}{}", self.field, escape_value(&self.value))
    }
}

/// An AND of field terms; no terms matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// In upstream's order: sorted by the raw text of each term.
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parses `metadata.name=web,status.phase!=Running`. Field names are not
    /// checked here; see [`FieldSelector::bind`].
    pub fn parse(selector: &str) -> Result<Self, FieldSelectorParseError> {
        let mut parts = split_terms(selector);
        parts.sort_unstable();
        let mut terms = Vec::with_capacity(parts.len());
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((field, operator, raw)) = split_term(part) else {
                return Err(FieldSelectorParseError::Term {
                    selector: selector.to_owned(),
                    term: part.to_owned(),
                });
            };
            terms.push(FieldTerm { field: field.to_owned(), operator, value: unescape_value(raw)? });
        }
        Ok(Self { terms })
    }

    /// One `field=value` term.
    pub fn one_term_equal(field: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            terms: vec![FieldTerm {
                field: field.into(),
                operator: FieldOperator::Equals,
                value: value.into(),
            }],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    /// The value `field` must equal, if a `field=value` term pins it.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && t.operator == FieldOperator::Equals)
            .map(|t| t.value.as_str())
    }

    /// Checks every field against what `fields` allows, translating aliases
    /// (a pod's `spec.host`, an events.k8s.io Event's `regarding.kind`), as
    /// the API server does before listing. The first unsupported field, in
    /// upstream's order, is the error for a 400 BadRequest.
    pub fn bind(&self, fields: &SelectableFields) -> Result<FieldMatcher, FieldSelectorError> {
        FieldMatcher::new(self, fields)
    }

    /// Binds to the built-in kind `group`/`kind` and matches `object`; see
    /// [`SelectableFields::built_in`].
    pub fn matches(&self, group: &str, kind: &str, object: &Value) -> Result<bool, FieldSelectorError> {
        Ok(self.bind(&SelectableFields::built_in(group, kind))?.matches(object))
    }
}

impl FromStr for FieldSelector {
    type Err = FieldSelectorParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Terms joined by `,`, values escaped; `==` prints as `=`.
impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{term}")?;
        }
        Ok(())
    }
}

/// Escapes `\`, `,` and `=` in a value with a backslash.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The inverse of [`escape_value`]; a bare `,` or `=`, or any other escape,
/// is an error.
pub fn unescape_value(raw: &str) -> Result<String, FieldSelectorParseError> {
    let mut out = String::with_capacity(raw.len());
    let mut escaped = false;
    for c in raw.chars() {
        if escaped {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(FieldSelectorParseError::InvalidEscape { sequence: format!("\\{c}") });
            }
            out.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            ',' | '=' => return Err(FieldSelectorParseError::Unescaped { character: c }),
            c => out.push(c),
        }
    }
    if escaped {
        return Err(FieldSelectorParseError::InvalidEscape { sequence: "\\".to_owned() });
    }
    Ok(out)
}

/// Splits on commas not preceded by a backslash; the backslash stays.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in selector.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits at the first operator: `!=`, then `==`, then `=`, tried at each
/// position in turn. The field part is taken literally.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (token, operator) in
            [("!=", FieldOperator::NotEquals), ("==", FieldOperator::Equals), ("=", FieldOperator::Equals)]
        {
            if let Some(value) = rest.strip_prefix(token) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
