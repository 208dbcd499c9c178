//! `application/json-patch+json`: RFC 6902 JSON patch, with upstream's limit
//! of 10,000 operations. Negative array indexes, which upstream's library
//! accepts beyond the RFC, are rejected.

use serde_json::{Map, Value};

use super::pointer::{self, array_index};
use super::value::{count_values, deeper_than, json_equal, kind_name};
use super::{MAX_DEPTH, PatchError};

/// At most this many operations in one JSON patch (upstream's
/// `maxJSONPatchOperations`).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// At most this many values copied by the `copy` operations of one patch,
/// so a few operations that each double the document cannot exhaust memory.
pub const MAX_COPIED_VALUES: usize = 1_000_000;

/// Applies the RFC 6902 JSON patch `patch` (an array of operations) to the
/// object `original`. The operations apply in order to a copy; the first
/// failure aborts the whole patch.
pub fn json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !original.is_object() {
        return Err(PatchError::OriginalNotObject { found: kind_name(original) });
    }
    let Value::Array(operations) = patch else {
        return Err(PatchError::JsonPatchNotArray { found: kind_name(patch) });
    };
    if operations.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            count: operations.len(),
            limit: MAX_JSON_PATCH_OPERATIONS,
        });
    }
    // An operation is an object holding a value: two levels above the value.
    if deeper_than(patch, MAX_DEPTH + 2) {
        return Err(PatchError::PatchTooDeep { limit: MAX_DEPTH });
    }
    let mut objects = Vec::with_capacity(operations.len());
    for (index, operation) in operations.iter().enumerate() {
        match operation {
            Value::Object(map) => objects.push(map),
            other => return Err(PatchError::OperationNotObject { index, found: kind_name(other) }),
        }
    }
    let mut document = original.clone();
    let mut copied = 0;
    for (index, operation) in objects.into_iter().enumerate() {
        Operation { index, fields: operation }.apply(&mut document, &mut copied)?;
    }
    if !document.is_object() {
        return Err(PatchError::ResultNotObject { found: kind_name(&document) });
    }
    Ok(document)
}

/// Why a step of an operation failed, before the operation adds context.
enum Miss {
    NotFound,
    BadIndex,
}

struct Operation<'a> {
    index: usize,
    fields: &'a Map<String, Value>,
}

impl Operation<'_> {
    fn apply(&self, document: &mut Value, copied: &mut usize) -> Result<(), PatchError> {
        let index = self.index;
        let op = match self.fields.get("op") {
            Some(Value::String(op)) => op.as_str(),
            Some(other) => return Err(PatchError::UnknownOperation { index, op: other.to_string() }),
            None => return Err(PatchError::MissingOperationField { index, field: "op" }),
        };
        let (path_text, path) = self.pointer("path")?;
        match op {
            "add" => {
                let value = self.value()?;
                self.check_depth(&path, value)?;
                add(document, &path, value.clone()).map_err(|miss| self.miss(miss, "add", path_text))
            }
            "remove" => {
                if path.is_empty() {
                    return Err(PatchError::RemoveRoot { index });
                }
                remove(document, &path).map(drop).map_err(|miss| self.miss(miss, "remove", path_text))
            }
            "replace" => {
                let value = self.value()?;
                self.check_depth(&path, value)?;
                let target = pointer::get_mut(document, &path)
                    .ok_or_else(|| self.miss(Miss::NotFound, "replace", path_text))?;
                *target = value.clone();
                Ok(())
            }
            "move" => {
                let (from_text, from) = self.pointer("from")?;
                if pointer::get(document, &from).is_none() {
                    return Err(self.miss(Miss::NotFound, "move", from_text));
                }
                if from == path {
                    return Ok(());
                }
                if path.starts_with(&from) {
                    return Err(PatchError::MoveIntoChild {
                        index,
                        from: from_text.to_string(),
                        path: path_text.to_string(),
                    });
                }
                let value = remove(document, &from).map_err(|miss| self.miss(miss, "move", from_text))?;
                self.check_depth(&path, &value)?;
                add(document, &path, value).map_err(|miss| self.miss(miss, "move", path_text))
            }
            "copy" => {
                let (from_text, from) = self.pointer("from")?;
                let value = pointer::get(document, &from)
                    .ok_or_else(|| self.miss(Miss::NotFound, "copy", from_text))?;
                *copied += count_values(value, MAX_COPIED_VALUES);
                if *copied > MAX_COPIED_VALUES {
                    return Err(PatchError::CopyLimitExceeded { index, limit: MAX_COPIED_VALUES });
                }
                self.check_depth(&path, value)?;
                let value = value.clone();
                add(document, &path, value).map_err(|miss| self.miss(miss, "copy", path_text))
            }
            "test" => {
                let expected = self.value()?;
                let actual = pointer::get(document, &path)
                    .ok_or_else(|| self.miss(Miss::NotFound, "test", path_text))?;
                if json_equal(actual, expected) {
                    Ok(())
                } else {
                    Err(PatchError::TestFailed { index, path: path_text.to_string() })
                }
            }
            other => Err(PatchError::UnknownOperation { index, op: format!("{other:?}") }),
        }
    }

    /// The pointer in member `field`, as written and as tokens.
    fn pointer(&self, field: &'static str) -> Result<(&str, Vec<String>), PatchError> {
        let Some(Value::String(text)) = self.fields.get(field) else {
            return Err(PatchError::MissingOperationField { index: self.index, field });
        };
        let tokens = pointer::parse(text)
            .ok_or_else(|| PatchError::InvalidPointer { index: self.index, pointer: text.clone() })?;
        Ok((text, tokens))
    }

    fn value(&self) -> Result<&Value, PatchError> {
        self.fields
            .get("value")
            .ok_or(PatchError::MissingOperationField { index: self.index, field: "value" })
    }

    /// Refuses to put `value` where the document would nest too deep.
    fn check_depth(&self, path: &[String], value: &Value) -> Result<(), PatchError> {
        if path.len() > MAX_DEPTH || deeper_than(value, MAX_DEPTH - path.len()) {
            return Err(PatchError::ResultTooDeep { limit: MAX_DEPTH });
        }
        Ok(())
    }

    fn miss(&self, miss: Miss, op: &'static str, path: &str) -> PatchError {
        let (index, path) = (self.index, path.to_string());
        match miss {
            Miss::NotFound => PatchError::PathNotFound { index, op, path },
            Miss::BadIndex => PatchError::InvalidArrayIndex { index, op, path },
        }
    }
}

/// RFC 6902 `add`: sets a member, inserts into an array (`-` appends), or
/// replaces the whole document for the empty path.
fn add(document: &mut Value, path: &[String], value: Value) -> Result<(), Miss> {
    let Some((last, parent)) = path.split_last() else {
        *document = value;
        return Ok(());
    };
    match pointer::get_mut(document, parent).ok_or(Miss::NotFound)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
        }
        Value::Array(items) if last == "-" => items.push(value),
        Value::Array(items) => {
            let at = array_index(last).filter(|at| *at <= items.len()).ok_or(Miss::BadIndex)?;
            items.insert(at, value);
        }
        _ => return Err(Miss::NotFound),
    }
    Ok(())
}

/// RFC 6902 `remove` of a non-empty path; returns the removed value.
fn remove(document: &mut Value, path: &[String]) -> Result<Value, Miss> {
    let (last, parent) = path.split_last().ok_or(Miss::NotFound)?;
    match pointer::get_mut(document, parent).ok_or(Miss::NotFound)? {
        Value::Object(map) => map.remove(last).ok_or(Miss::NotFound),
        Value::Array(items) => {
            let at = array_index(last).filter(|at| *at < items.len()).ok_or(Miss::BadIndex)?;
            Ok(items.remove(at))
        }
        _ => Err(Miss::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(original: Value, patch: Value) -> Result<Value, PatchError> {
        json_patch(&original, &patch)
    }

    /// RFC 6902 appendix A, the examples whose document is an object.
    #[test]
    fn rfc6902_examples() {
        let cases = [
            // A.1 adding an object member
            (
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz", "value": "qux"}]),
                json!({"baz": "qux", "foo": "bar"}),
            ),
            // A.2 adding an array element
            (
                json!({"foo": ["bar", "baz"]}),
                json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
                json!({"foo": ["bar", "qux", "baz"]}),
            ),
            // A.3 removing an object member
            (
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "remove", "path": "/baz"}]),
                json!({"foo": "bar"}),
            ),
            // A.4 removing an array element
            (
                json!({"foo": ["bar", "qux", "baz"]}),
                json!([{"op": "remove", "path": "/foo/1"}]),
                json!({"foo": ["bar", "baz"]}),
            ),
            // A.5 replacing a value
            (
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "replace", "path": "/baz", "value": "boo"}]),
                json!({"baz": "boo", "foo": "bar"}),
            ),
            // A.6 moving a value
            (
                json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
                json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]),
                json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
            ),
            // A.7 moving an array element
            (
                json!({"foo": ["all", "grass", "cows", "eat"]}),
                json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}]),
                json!({"foo": ["all", "cows", "eat", "grass"]}),
            ),
            // A.8 testing a value: success
            (
                json!({"baz": "qux", "foo": ["a", 2, "c"]}),
                json!([{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}]),
                json!({"baz": "qux", "foo": ["a", 2, "c"]}),
            ),
            // A.10 adding a nested member object
            (
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}]),
                json!({"foo": "bar", "child": {"grandchild": {}}}),
            ),
            // A.11 ignoring unrecognized elements
            (
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}]),
                json!({"foo": "bar", "baz": "qux"}),
            ),
            // A.14 ~ escape ordering
            (
                json!({"/": 9, "~1": 10}),
                json!([{"op": "test", "path": "/~01", "value": 10}]),
                json!({"/": 9, "~1": 10}),
            ),
            // A.16 adding an array value
            (
                json!({"foo": ["bar"]}),
                json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]),
                json!({"foo": ["bar", ["abc", "def"]]}),
            ),
            // copy
            (
                json!({"a": {"b": 1}}),
                json!([{"op": "copy", "from": "/a", "path": "/c"}]),
                json!({"a": {"b": 1}, "c": {"b": 1}}),
            ),
        ];
        for (original, patch, want) in cases {
            assert_eq!(apply(original, patch.clone()).unwrap(), want, "{patch}");
        }
    }

    #[test]
    fn failures_name_the_operation_and_path() {
        // A.9 testing a value: error
        let err = apply(json!({"baz": "qux"}), json!([{"op": "test", "path": "/baz", "value": "bar"}]))
            .unwrap_err();
        assert!(matches!(err, PatchError::TestFailed { index: 0, ref path } if path == "/baz"), "{err}");
        // A.12 adding to a nonexistent target
        let err = apply(json!({"foo": "bar"}), json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]))
            .unwrap_err();
        assert_eq!(err.to_string(), "json patch operation 0 (add): path \"/baz/bat\" does not exist");
        assert_eq!(err.reason(), (422, "Invalid"));
        // A.15 comparing strings and numbers
        let err = apply(json!({"/": 9, "~1": 10}), json!([{"op": "test", "path": "/~01", "value": "10"}]))
            .unwrap_err();
        assert!(matches!(err, PatchError::TestFailed { .. }));
        let err = apply(json!({"a": [1]}), json!([{"op": "add", "path": "/a/2", "value": 0}])).unwrap_err();
        assert!(matches!(err, PatchError::InvalidArrayIndex { op: "add", .. }), "{err}");
        let err = apply(json!({"a": 1}), json!([{"op": "replace", "path": "/b", "value": 0}])).unwrap_err();
        assert!(matches!(err, PatchError::PathNotFound { op: "replace", .. }), "{err}");
        let err = apply(json!({"a": 1}), json!([{"op": "remove", "path": "/b"}])).unwrap_err();
        assert!(matches!(err, PatchError::PathNotFound { op: "remove", .. }), "{err}");
    }

    #[test]
    fn a_failing_operation_aborts_the_whole_patch() {
        let original = json!({"spec": {"replicas": 1}});
        let patch = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "test", "path": "/spec/replicas", "value": 1}
        ]);
        assert!(json_patch(&original, &patch).is_err());
        assert_eq!(original, json!({"spec": {"replicas": 1}}));
    }

    #[test]
    fn malformed_operations() {
        let err = apply(json!({}), json!({"op": "add"})).unwrap_err();
        assert_eq!(err.reason(), (400, "BadRequest"));
        let err = apply(json!({}), json!(["add"])).unwrap_err();
        assert!(matches!(err, PatchError::OperationNotObject { index: 0, .. }));
        let err = apply(json!({}), json!([{"op": "frobnicate", "path": "/a"}])).unwrap_err();
        assert!(matches!(err, PatchError::UnknownOperation { .. }));
        let err = apply(json!({}), json!([{"path": "/a"}])).unwrap_err();
        assert!(matches!(err, PatchError::MissingOperationField { field: "op", .. }));
        let err = apply(json!({}), json!([{"op": "add", "path": "/a"}])).unwrap_err();
        assert!(matches!(err, PatchError::MissingOperationField { field: "value", .. }));
        let err = apply(json!({}), json!([{"op": "add", "path": "a", "value": 1}])).unwrap_err();
        assert!(matches!(err, PatchError::InvalidPointer { .. }));
        let err = apply(json!({"a": {}}), json!([{"op": "move", "from": "/a", "path": "/a/b"}])).unwrap_err();
        assert!(matches!(err, PatchError::MoveIntoChild { .. }));
        let err = apply(json!({}), json!([{"op": "remove", "path": ""}])).unwrap_err();
        assert!(matches!(err, PatchError::RemoveRoot { .. }));
        let err = apply(json!({}), json!([{"op": "replace", "path": "", "value": [1]}])).unwrap_err();
        assert!(matches!(err, PatchError::ResultNotObject { .. }));
    }

    #[test]
    fn too_many_operations_is_too_large() {
        let patch =
            Value::Array(vec![json!({"op": "test", "path": "", "value": {}}); MAX_JSON_PATCH_OPERATIONS + 1]);
        let err = json_patch(&json!({}), &patch).unwrap_err();
        assert_eq!(err.reason(), (413, "RequestEntityTooLarge"));
    }

    #[test]
    fn doubling_copies_stop_at_the_depth_and_size_limits() {
        let deepen = Value::Array(vec![json!({"op": "copy", "from": "", "path": "/x"}); 200]);
        let err = json_patch(&json!({}), &deepen).unwrap_err();
        assert!(matches!(err, PatchError::ResultTooDeep { .. }), "{err}");

        let mut widen = vec![json!({"op": "add", "path": "/a", "value": [1, 2, 3, 4]})];
        for step in 0..40 {
            widen.push(json!({"op": "copy", "from": "/a", "path": format!("/a/{step}")}));
        }
        let err = json_patch(&json!({}), &Value::Array(widen)).unwrap_err();
        assert!(matches!(err, PatchError::CopyLimitExceeded { .. }), "{err}");
    }
}
