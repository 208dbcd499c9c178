//! Label selectors: the `?labelSelector=` string form, matching, and the
//! canonical string upstream prints.

mod parser;
mod requirement;

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

pub use parser::{ParseError, RequirementError};
pub use requirement::{Labels, Operator, Requirement};

/// An AND of label requirements, or the selector that matches nothing
/// (what a null `metav1.LabelSelector` means).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector(Inner);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Inner {
    Nothing,
    /// Sorted by key, stably; empty matches everything.
    All(Vec<Requirement>),
}

impl Default for Selector {
    fn default() -> Self {
        Self::everything()
    }
}

impl Selector {
    /// Matches every label set; what an empty `?labelSelector=` means.
    pub fn everything() -> Self {
        Self(Inner::All(Vec::new()))
    }

    /// Matches no label set, not even the empty one.
    pub fn nothing() -> Self {
        Self(Inner::Nothing)
    }

    /// Parses the `?labelSelector=` form, e.g. `app=web,tier notin (db),!canary`.
    /// Errors carry upstream's text for a 400 BadRequest.
    pub fn parse(selector: &str) -> Result<Self, ParseError> {
        Ok(Self::from_requirements(parser::parse(selector)?))
    }

    /// `key=value` for every pair, unvalidated (upstream's
    /// `SelectorFromValidatedSet`); no pairs is [`Selector::everything`].
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let requirements = pairs
            .into_iter()
            .map(|(key, value)| Requirement::from_parts(key.into(), Operator::Equals, vec![value.into()]))
            .collect();
        Self::from_requirements(requirements)
    }

    pub(crate) fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key().cmp(b.key()));
        Self(Inner::All(requirements))
    }

    /// This selector and also `requirement`. Adding to
    /// [`Selector::nothing`] still matches nothing.
    pub fn with(self, requirement: Requirement) -> Self {
        match self.0 {
            Inner::Nothing => self,
            Inner::All(mut requirements) => {
                requirements.push(requirement);
                Self::from_requirements(requirements)
            }
        }
    }

    /// True when the selector does not restrict anything. The nothing
    /// selector is not empty.
    pub fn is_empty(&self) -> bool {
        matches!(&self.0, Inner::All(requirements) if requirements.is_empty())
    }

    /// True when this is [`Selector::nothing`].
    pub fn is_nothing(&self) -> bool {
        self.0 == Inner::Nothing
    }

    /// The requirements, sorted by key; `None` for [`Selector::nothing`].
    pub fn requirements(&self) -> Option<&[Requirement]> {
        match &self.0 {
            Inner::Nothing => None,
            Inner::All(requirements) => Some(requirements),
        }
    }

    pub fn matches(&self, labels: &impl Labels) -> bool {
        match &self.0 {
            Inner::Nothing => false,
            Inner::All(requirements) => requirements.iter().all(|r| r.matches(labels)),
        }
    }

    /// Matches an object's `metadata.labels`; no labels is the empty set.
    pub fn matches_object(&self, object: &Value) -> bool {
        let empty = serde_json::Map::new();
        let labels = object.pointer("/metadata/labels").and_then(Value::as_object).unwrap_or(&empty);
        self.matches(labels)
    }

    /// The value `key` must have, when the selector pins it to exactly one
    /// (`key=v`, `key==v`, `key in (v)`): useful for indexed lookups.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let requirement = self.requirements()?.iter().find(|r| r.key() == key)?;
        match (requirement.operator(), requirement.values()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [only]) => Some(only),
            _ => None,
        }
    }
}

impl FromStr for Selector {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Upstream's canonical string: requirements joined by `,`. Both
/// everything and nothing print as `""`.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Inner::All(requirements) = &self.0 else { return Ok(()) };
        for (i, requirement) in requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
