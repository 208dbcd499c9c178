//! Reading fields of objects held as `serde_json::Value`, with the zero
//! values Go's typed structs would have for absent fields.

use serde_json::Value;

use super::duration;

/// The value at `path`, if every step exists.
pub(crate) fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, key| v.get(*key))
}

/// The string at `path`, `""` when absent.
pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    opt_str(v, path).unwrap_or("")
}

pub(crate) fn opt_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

/// The integer at `path`, `0` when absent.
pub(crate) fn int_at(v: &Value, path: &[&str]) -> i64 {
    opt_int(v, path).unwrap_or(0)
}

pub(crate) fn opt_int(v: &Value, path: &[&str]) -> Option<i64> {
    get(v, path).and_then(as_int)
}

/// An integer field, tolerating integral floats as Go's JSON decoding does.
pub(crate) fn as_int(v: &Value) -> Option<i64> {
    #[allow(clippy::cast_possible_truncation)]
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

/// The boolean at `path`, `false` when absent.
pub(crate) fn bool_at(v: &Value, path: &[&str]) -> bool {
    opt_bool(v, path).unwrap_or(false)
}

pub(crate) fn opt_bool(v: &Value, path: &[&str]) -> Option<bool> {
    get(v, path).and_then(Value::as_bool)
}

/// The array at `path`, empty when absent.
pub(crate) fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// The number of entries of the map or array at `path`.
pub(crate) fn len_at(v: &Value, path: &[&str]) -> usize {
    match get(v, path) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

/// Whether `path` holds a non-null value (a set pointer in Go).
pub(crate) fn is_set(v: &Value, path: &[&str]) -> bool {
    get(v, path).is_some_and(|v| !v.is_null())
}

pub(crate) fn name(obj: &Value) -> &str {
    str_at(obj, &["metadata", "name"])
}

/// The `Age` cell: time since `metadata.creationTimestamp`.
pub(crate) fn age(obj: &Value, now_unix: i64) -> String {
    since_at(obj, &["metadata", "creationTimestamp"], now_unix)
}

/// Time since the timestamp at `path`, `<unknown>` when unset.
pub(crate) fn since_at(obj: &Value, path: &[&str], now_unix: i64) -> String {
    duration::since(opt_str(obj, path), now_unix)
}

/// The Unix time of the timestamp at `path`; `None` when unset or Go's
/// zero time.
pub(crate) fn time_at(obj: &Value, path: &[&str]) -> Option<i64> {
    opt_str(obj, path).and_then(duration::parse_rfc3339).filter(|t| *t != duration::GO_ZERO_TIME)
}

pub(crate) fn is_deleting(obj: &Value) -> bool {
    is_set(obj, &["metadata", "deletionTimestamp"])
}

/// An annotation of the object.
pub(crate) fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    get(obj, &["metadata", "annotations", key]).and_then(Value::as_str)
}

/// The first condition of `conditions` with the given type.
pub(crate) fn condition<'a>(conditions: &'a [Value], type_: &str) -> Option<&'a Value> {
    conditions.iter().find(|c| str_at(c, &["type"]) == type_)
}

/// Upstream's `hasJobCondition`-style check: the first condition of the
/// type has status `True`.
pub(crate) fn condition_true(conditions: &[Value], type_: &str) -> bool {
    condition(conditions, type_).is_some_and(|c| str_at(c, &["status"]) == "True")
}

/// An `IntOrString` as Go's `IntOrString.String()` prints it.
pub(crate) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => as_int(other).map_or_else(String::new, |i| i.to_string()),
    }
}

/// A Go `*bool` printed by upstream's `printBoolPtr`.
pub(crate) fn bool_ptr(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_fields_read_as_go_zero_values() {
        let v = json!({"spec": {"n": 3, "f": 2.0, "s": "x", "b": true, "a": [1, 2], "m": {"k": "v"}}});
        assert_eq!(int_at(&v, &["spec", "n"]), 3);
        assert_eq!(int_at(&v, &["spec", "f"]), 2);
        assert_eq!(int_at(&v, &["spec", "missing"]), 0);
        assert_eq!(str_at(&v, &["spec", "s"]), "x");
        assert_eq!(str_at(&v, &["spec", "n"]), "");
        assert!(bool_at(&v, &["spec", "b"]));
        assert_eq!(arr_at(&v, &["spec", "a"]).len(), 2);
        assert_eq!(len_at(&v, &["spec", "m"]), 1);
        assert!(arr_at(&v, &["nope"]).is_empty());
        assert_eq!(int_or_string(&json!(25)), "25");
        assert_eq!(int_or_string(&json!("25%")), "25%");
    }
}
