//! `metav1.LabelSelector` (`matchLabels` and `matchExpressions`, as in a
//! Deployment's `spec.selector`) to [`Selector`], validated the way
//! upstream's `ValidateLabelSelector` names its errors.

use serde_json::{Map, Value};

use crate::selector::field_error::{BadValue, FieldError, FieldErrors, FieldPath};
use crate::selector::labels::{Operator, Requirement, Selector};
use crate::selector::validation::{label_key_errors, label_value_errors};

/// One `matchExpressions` entry as read from JSON; absent fields are empty.
struct Expression {
    key: String,
    operator: String,
    values: Vec<String>,
}

impl Selector {
    /// Converts a `metav1.LabelSelector` object: `None` or `null` matches
    /// nothing, `{}` matches everything (upstream's
    /// `LabelSelectorAsSelector`).
    ///
    /// Errors are named below `path`, e.g. with `spec.selector`:
    /// `spec.selector.matchExpressions[0].values: Required value: ...`.
    pub fn from_label_selector(selector: Option<&Value>, path: &str) -> Result<Self, FieldErrors> {
        let object = match selector {
            None | Some(Value::Null) => return Ok(Self::nothing()),
            Some(Value::Object(object)) => object,
            Some(other) => {
                return Err(FieldError::type_invalid(
                    FieldPath::new(path),
                    json_type(other),
                    "must be an object",
                )
                .into());
            }
        };
        let path = FieldPath::new(path);
        let mut errors = FieldErrors::default();
        let labels = match_labels(object, &path, &mut errors);
        let expressions = match_expressions(object, &path, &mut errors);
        validate(&labels, &expressions, &path, &mut errors);
        errors.into_result()?;

        let mut requirements = Vec::with_capacity(labels.len() + expressions.len());
        for (key, value) in labels {
            requirements.push(Requirement::new(key, Operator::Equals, vec![value])?);
        }
        for expression in expressions {
            let operator = match expression.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                _ => Operator::DoesNotExist,
            };
            requirements.push(Requirement::new(expression.key, operator, expression.values)?);
        }
        Ok(Self::from_requirements(requirements))
    }
}

/// Upstream's `ValidateLabelSelector`, over already-read fields.
fn validate(
    labels: &[(String, String)],
    expressions: &[Expression],
    path: &FieldPath,
    errors: &mut FieldErrors,
) {
    let labels_path = path.child("matchLabels");
    for (key, value) in labels {
        for problem in label_key_errors(key) {
            errors.push(FieldError::invalid(labels_path.clone(), BadValue::String(key.clone()), problem));
        }
        for problem in label_value_errors(value) {
            errors.push(FieldError::invalid(labels_path.clone(), BadValue::String(value.clone()), problem));
        }
    }
    for (i, expression) in expressions.iter().enumerate() {
        let path = path.child("matchExpressions").index(i);
        match expression.operator.as_str() {
            "In" | "NotIn" if expression.values.is_empty() => errors.push(FieldError::required(
                path.child("values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !expression.values.is_empty() => errors.push(FieldError::forbidden(
                path.child("values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errors.push(FieldError::invalid(
                path.child("operator"),
                BadValue::String(other.to_owned()),
                "not a valid selector operator",
            )),
        }
        for problem in label_key_errors(&expression.key) {
            errors.push(FieldError::invalid(
                path.child("key"),
                BadValue::String(expression.key.clone()),
                problem,
            ));
        }
        for (j, value) in expression.values.iter().enumerate() {
            for problem in label_value_errors(value) {
                let value_path = path.child("values").index(j);
                errors.push(FieldError::invalid(value_path, BadValue::String(value.clone()), problem));
            }
        }
    }
}

/// `matchLabels` sorted by key; wrong JSON types become errors.
fn match_labels(
    object: &Map<String, Value>,
    path: &FieldPath,
    errors: &mut FieldErrors,
) -> Vec<(String, String)> {
    let path = path.child("matchLabels");
    let map = match object.get("matchLabels") {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Object(map)) => map,
        Some(other) => {
            errors.push(FieldError::type_invalid(path, json_type(other), "must be an object"));
            return Vec::new();
        }
    };
    let mut labels = Vec::with_capacity(map.len());
    for (key, value) in map {
        match value.as_str() {
            Some(value) => labels.push((key.clone(), value.to_owned())),
            None => {
                errors.push(FieldError::type_invalid(path.key(key), json_type(value), "must be a string"))
            }
        }
    }
    labels.sort();
    labels
}

fn match_expressions(
    object: &Map<String, Value>,
    path: &FieldPath,
    errors: &mut FieldErrors,
) -> Vec<Expression> {
    let path = path.child("matchExpressions");
    let items = match object.get("matchExpressions") {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            errors.push(FieldError::type_invalid(path, json_type(other), "must be an array"));
            return Vec::new();
        }
    };
    let mut expressions = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = path.index(i);
        let Some(item) = item.as_object() else {
            errors.push(FieldError::type_invalid(path, json_type(item), "must be an object"));
            continue;
        };
        let key = string_field(item, "key", &path, errors);
        let operator = string_field(item, "operator", &path, errors);
        let values = match item.get("values") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(values)) => values
                .iter()
                .enumerate()
                .filter_map(|(j, value)| match value.as_str() {
                    Some(value) => Some(value.to_owned()),
                    None => {
                        let value_path = path.child("values").index(j);
                        errors.push(FieldError::type_invalid(
                            value_path,
                            json_type(value),
                            "must be a string",
                        ));
                        None
                    }
                })
                .collect(),
            Some(other) => {
                errors.push(FieldError::type_invalid(
                    path.child("values"),
                    json_type(other),
                    "must be an array",
                ));
                Vec::new()
            }
        };
        expressions.push(Expression { key, operator, values });
    }
    expressions
}

fn string_field(item: &Map<String, Value>, name: &str, path: &FieldPath, errors: &mut FieldErrors) -> String {
    match item.get(name) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            errors.push(FieldError::type_invalid(path.child(name), json_type(other), "must be a string"));
            String::new()
        }
    }
}

fn json_type(value: &Value) -> BadValue {
    let name = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    BadValue::String(name.to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn convert(selector: Value) -> Result<Selector, String> {
        Selector::from_label_selector(Some(&selector), "spec.selector").map_err(|e| e.to_string())
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn null_matches_nothing_and_empty_matches_everything() {
        let none = Selector::from_label_selector(None, "spec.selector").expect("converts");
        assert!(none.is_nothing());
        assert!(!none.matches(&labels(&[])));
        assert!(convert(Value::Null).expect("converts").is_nothing());
        for empty in [json!({}), json!({"matchLabels": {}, "matchExpressions": []})] {
            let selector = convert(empty).expect("converts");
            assert!(selector.is_empty());
            assert!(selector.matches(&labels(&[("any", "thing")])));
        }
    }

    #[test]
    fn labels_and_expressions_are_anded() {
        let selector = convert(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "app", "operator": "Exists", "values": []},
            ]
        }))
        .expect("converts");
        assert_eq!(selector.to_string(), "app=web,app,!canary,env notin (dev),tier in (edge,front)");
        assert!(selector.matches(&labels(&[("app", "web"), ("tier", "edge")])));
        assert!(!selector.matches(&labels(&[("app", "web"), ("tier", "edge"), ("canary", "1")])));
        assert!(!selector.matches(&labels(&[("app", "web")])));
    }

    #[test]
    fn errors_name_the_field() {
        let err = convert(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}));
        assert_eq!(
            err.unwrap_err(),
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
        );
        let err = convert(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}));
        assert_eq!(
            err.unwrap_err(),
            "spec.selector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
        );
        let err = convert(json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}));
        assert_eq!(
            err.unwrap_err(),
            "spec.selector.matchExpressions[0].operator: Invalid value: \"Gt\": not a valid selector operator"
        );
    }

    #[test]
    fn bad_keys_and_values_are_each_reported() {
        let err = convert(json!({
            "matchLabels": {"-bad": "ok", "good": "-bad"},
            "matchExpressions": [{"key": "a", "operator": "In", "values": ["ok", "no way"]}]
        }))
        .unwrap_err();
        assert!(
            err.starts_with("[spec.selector.matchLabels: Invalid value: \"-bad\": name part must consist"),
            "{err}"
        );
        assert!(
            err.contains(", spec.selector.matchLabels: Invalid value: \"-bad\": a valid label must be"),
            "{err}"
        );
        assert!(err.contains(
            ", spec.selector.matchExpressions[0].values[1]: Invalid value: \"no way\": a valid label"
        ));
    }

    #[test]
    fn wrong_json_types_are_errors_not_panics() {
        let err = convert(json!({"matchLabels": {"a": 1}, "matchExpressions": "x"})).unwrap_err();
        assert_eq!(
            err,
            "[spec.selector.matchLabels[a]: Invalid value: \"number\": must be a string, \
             spec.selector.matchExpressions: Invalid value: \"string\": must be an array]"
        );
        assert!(convert(json!([])).is_err());
    }
}
