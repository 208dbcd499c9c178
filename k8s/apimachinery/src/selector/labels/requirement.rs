//! One label requirement, `key in (a,b)`, and the label sets it matches.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde_json::{Map, Value};

use crate::selector::field_error::{BadValue, FieldError, FieldErrors, FieldPath};
use crate::selector::validation::{label_key_errors, label_value_errors};

/// How a requirement relates its key to its values (upstream's
/// `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    In,
    NotIn,
    /// `=`
    Equals,
    /// `==`, the same as `=` but printed back as written.
    DoubleEquals,
    /// `!=`
    NotEquals,
    /// A bare key.
    Exists,
    /// `!key`
    DoesNotExist,
    /// `>` with an integer.
    GreaterThan,
    /// `<` with an integer.
    LessThan,
}

impl Operator {
    /// Upstream's name for the operator: `in`, `=`, `exists`, `!`, `gt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::NotIn => "notin",
            Self::Equals => "=",
            Self::DoubleEquals => "==",
            Self::NotEquals => "!=",
            Self::Exists => "exists",
            Self::DoesNotExist => "!",
            Self::GreaterThan => "gt",
            Self::LessThan => "lt",
        }
    }
}

/// A set of labels a selector can be matched against. An object's
/// `metadata.labels` is a JSON object; values that are not strings count as
/// absent.
pub trait Labels {
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for Map<String, Value> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Labels for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<L: Labels + ?Sized> Labels for &L {
    fn label(&self, key: &str) -> Option<&str> {
        (**self).label(key)
    }
}

/// `key op values`, validated as upstream's `NewRequirement` validates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// A requirement, or every reason it is invalid. Errors name fields
    /// relative to the requirement: `key`, `values[0][app]`.
    pub fn new(key: impl Into<String>, operator: Operator, values: Vec<String>) -> Result<Self, FieldErrors> {
        Self::new_at(&FieldPath::root(), key.into(), operator, values)
    }

    /// As [`Requirement::new`], with errors named below `path`.
    pub(crate) fn new_at(
        path: &FieldPath,
        key: String,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        if let Some(error) = key_error(&key, &path.child("key")) {
            errors.push(error);
        }
        let values_path = path.child("values");
        let invalid_set = |detail: &str| {
            FieldError::invalid(values_path.clone(), BadValue::Strings(values.clone()), detail)
        };
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                errors.push(invalid_set("for 'in', 'notin' operators, values set can't be empty"));
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => {
                errors.push(invalid_set("exact-match compatibility requires one single value"));
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                errors.push(invalid_set("values set must be empty for exists and does not exist"));
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errors.push(invalid_set("for 'Gt', 'Lt' operators, exactly one value is required"));
                }
                for (i, value) in values.iter().enumerate() {
                    if value.parse::<i64>().is_err() {
                        errors.push(FieldError::invalid(
                            values_path.index(i),
                            BadValue::String(value.clone()),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, value) in values.iter().enumerate() {
            let problems = label_value_errors(value);
            if !problems.is_empty() {
                errors.push(FieldError::invalid(
                    values_path.index(i).key(&key),
                    BadValue::String(value.clone()),
                    problems.join("; "),
                ));
            }
        }
        errors.into_result()?;
        Ok(Self { key, operator, values })
    }

    /// Unvalidated, for callers that validated already or deliberately do
    /// not (upstream's `SelectorFromValidatedSet`).
    pub(crate) fn from_parts(key: String, operator: Operator, values: Vec<String>) -> Self {
        Self { key, operator, values }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values in the order given (parsed selectors sort and deduplicate
    /// them, as upstream's parser does).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Upstream's `Requirement.Matches`: `notin` and `!=` match when the
    /// key is absent; `gt`/`lt` need an integer label value.
    pub fn matches(&self, labels: &impl Labels) -> bool {
        let value = labels.label(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => value.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(actual), [wanted]) =
                    (value.and_then(|v| v.parse::<i64>().ok()), self.values.as_slice())
                else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else { return false };
                if self.operator == Operator::GreaterThan { actual > wanted } else { actual < wanted }
            }
        }
    }

    fn has_value(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }
}

/// The key check the parser runs before anything else, named by `path`.
pub(crate) fn key_error(key: &str, path: &FieldPath) -> Option<FieldError> {
    let problems = label_key_errors(key);
    if problems.is_empty() {
        None
    } else {
        Some(FieldError::invalid(path.clone(), BadValue::String(key.to_owned()), problems.join("; ")))
    }
}

/// Upstream's canonical form: `!key`, `key`, `key=v`, `key in (a,b)`, with
/// several values sorted.
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let (before, after) = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => ("=", ""),
            Operator::DoubleEquals => ("==", ""),
            Operator::NotEquals => ("!=", ""),
            Operator::GreaterThan => (">", ""),
            Operator::LessThan => ("<", ""),
            Operator::In => (" in (", ")"),
            Operator::NotIn => (" notin (", ")"),
        };
        f.write_str(before)?;
        if let [only] = self.values.as_slice() {
            f.write_str(only)?;
        } else {
            let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            f.write_str(&sorted.join(","))?;
        }
        f.write_str(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn req(key: &str, op: Operator, values: &[&str]) -> Requirement {
        Requirement::new(key, op, values.iter().map(|v| (*v).to_owned()).collect())
            .expect("valid requirement")
    }

    #[test]
    fn set_operators_follow_upstream_truth_table() {
        let set = labels(&[("env", "prod"), ("tier", "web")]);
        assert!(req("env", Operator::In, &["prod", "dev"]).matches(&set));
        assert!(!req("env", Operator::In, &["dev"]).matches(&set));
        assert!(!req("missing", Operator::In, &["dev"]).matches(&set));
        assert!(req("missing", Operator::NotIn, &["dev"]).matches(&set));
        assert!(!req("env", Operator::NotIn, &["prod"]).matches(&set));
        assert!(req("missing", Operator::NotEquals, &["x"]).matches(&set));
        assert!(req("tier", Operator::Exists, &[]).matches(&set));
        assert!(req("missing", Operator::DoesNotExist, &[]).matches(&set));
        assert!(!req("tier", Operator::DoesNotExist, &[]).matches(&set));
    }

    #[test]
    fn comparisons_need_integers() {
        let set = labels(&[("n", "5"), ("s", "five")]);
        assert!(req("n", Operator::GreaterThan, &["4"]).matches(&set));
        assert!(!req("n", Operator::GreaterThan, &["5"]).matches(&set));
        assert!(req("n", Operator::LessThan, &["6"]).matches(&set));
        assert!(!req("s", Operator::LessThan, &["6"]).matches(&set));
        assert!(!req("missing", Operator::GreaterThan, &["0"]).matches(&set));
    }

    #[test]
    fn json_labels_ignore_non_strings() {
        let map = serde_json::json!({"a": "1", "b": 2}).as_object().cloned().unwrap_or_default();
        assert!(req("a", Operator::Exists, &[]).matches(&map));
        assert!(!req("b", Operator::Exists, &[]).matches(&map));
    }

    #[test]
    fn new_reports_every_problem_with_paths() {
        let err = Requirement::new("a", Operator::In, vec![]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
        );
        let err = Requirement::new("-a", Operator::GreaterThan, vec!["x".into()]).unwrap_err();
        assert_eq!(err.0.len(), 2);
        assert!(err.to_string().starts_with("[key: Invalid value: \"-a\": name part must consist"));
        assert!(err.to_string().contains(
            "values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer]"
        ));
        let err = Requirement::new("a", Operator::Equals, vec!["-x".into()]).unwrap_err();
        assert!(err.to_string().starts_with("values[0][a]: Invalid value: \"-x\": a valid label must be"));
        let err = Requirement::new("a", Operator::Exists, vec!["x".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist"
        );
    }

    #[test]
    fn display_is_canonical() {
        assert_eq!(req("a", Operator::In, &["c", "b"]).to_string(), "a in (b,c)");
        assert_eq!(req("a", Operator::NotIn, &[""]).to_string(), "a notin ()");
        assert_eq!(req("a", Operator::DoubleEquals, &["b"]).to_string(), "a==b");
        assert_eq!(req("a", Operator::NotEquals, &[""]).to_string(), "a!=");
        assert_eq!(req("a", Operator::DoesNotExist, &[]).to_string(), "!a");
        assert_eq!(req("a", Operator::GreaterThan, &["3"]).to_string(), "a>3");
        assert_eq!(req("a", Operator::LessThan, &["3"]).to_string(), "a<3");
    }
}
