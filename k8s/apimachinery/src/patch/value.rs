//! Small questions about JSON values that all three patch formats ask. Every
//! recursive walk here is bounded by its `limit` or by the shallower of two
//! values, so none can overflow the stack on hostile input.

use serde_json::Value;

/// The kind of a value with its article, for error messages: "an array".
pub(crate) fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether objects and arrays nest more than `limit` levels in `value`
/// (`{}` is one level, a scalar none).
pub(crate) fn deeper_than(value: &Value, limit: usize) -> bool {
    match value {
        Value::Array(items) => limit == 0 || items.iter().any(|item| deeper_than(item, limit - 1)),
        Value::Object(map) => limit == 0 || map.values().any(|item| deeper_than(item, limit - 1)),
        _ => false,
    }
}

/// How many values `value` holds, itself included, counting no further than
/// just past `cap`.
pub(crate) fn count_values(value: &Value, cap: usize) -> usize {
    let mut count = 0;
    let mut stack = vec![value];
    while let Some(next) = stack.pop() {
        count += 1;
        if count > cap {
            break;
        }
        match next {
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    count
}

/// Equality as RFC 6902 `test` defines it: numbers compare by value, so `1`
/// equals `1.0`; objects ignore member order.
pub(crate) fn json_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
            (Some(a), Some(b), _, _) => a == b,
            (_, _, Some(a), Some(b)) => a == b,
            _ => a.as_f64() == b.as_f64(),
        },
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(key, x)| b.get(key).is_some_and(|y| json_equal(x, y)))
        }
        _ => left == right,
    }
}

/// A string that is equal for equal values, to find list elements in hash
/// maps instead of comparing every pair.
pub(crate) fn identity(value: &Value) -> String {
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn depth_counts_containers_only() {
        assert!(!deeper_than(&json!("x"), 0));
        assert!(deeper_than(&json!({}), 0));
        assert!(!deeper_than(&json!({"a": [1]}), 2));
        assert!(deeper_than(&json!({"a": [[1]]}), 2));
    }

    #[test]
    fn count_stops_past_the_cap() {
        assert_eq!(count_values(&json!({"a": [1, 2], "b": null}), 100), 5);
        assert_eq!(count_values(&json!([1, 2, 3, 4, 5]), 2), 3);
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_equal(&json!({"a": [1, "x"]}), &json!({"a": [1.0, "x"]})));
        assert!(!json_equal(&json!([1, 2]), &json!([2, 1])));
        assert!(!json_equal(&json!(-1), &json!(u64::MAX)));
    }
}
