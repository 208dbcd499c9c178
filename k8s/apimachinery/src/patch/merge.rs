//! `application/merge-patch+json`: RFC 7386 JSON merge patch. Objects merge,
//! `null` deletes, everything else (lists included) replaces.

use serde_json::{Map, Value};

use super::value::{deeper_than, kind_name};
use super::{MAX_DEPTH, PatchError};

/// Applies the RFC 7386 merge patch `patch` to the object `original`.
pub fn merge_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !original.is_object() {
        return Err(PatchError::OriginalNotObject { found: kind_name(original) });
    }
    if !patch.is_object() {
        return Err(PatchError::PatchNotObject { found: kind_name(patch) });
    }
    if deeper_than(patch, MAX_DEPTH) {
        return Err(PatchError::PatchTooDeep { limit: MAX_DEPTH });
    }
    let mut document = original.clone();
    merge_into(&mut document, patch);
    Ok(document)
}

/// RFC 7386 `MergePatch(Target, Patch)`, in place. Recurses only as deep as
/// `patch` nests.
fn merge_into(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_into(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The test cases of RFC 7386 appendix A whose target is an object.
    #[test]
    fn rfc7386_examples() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": "b", "b": "c"}), json!({"a": null}), json!({"b": "c"})),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (json!({"a": {"b": "c"}}), json!({"a": {"b": "d", "c": null}}), json!({"a": {"b": "d"}})),
            (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
            (json!({"e": null}), json!({"a": 1}), json!({"e": null, "a": 1})),
            (json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
        ];
        for (original, patch, want) in cases {
            assert_eq!(merge_patch(&original, &patch).unwrap(), want, "patch {patch}");
        }
    }

    #[test]
    fn kubectl_patch_of_labels_and_replicas() {
        let original = json!({
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "a"}]}}}
        });
        let patch = json!({"metadata": {"labels": {"tier": null, "env": "prod"}}, "spec": {"replicas": 3}});
        let got = merge_patch(&original, &patch).unwrap();
        assert_eq!(got["metadata"]["labels"], json!({"app": "web", "env": "prod"}));
        assert_eq!(got["spec"]["replicas"], json!(3));
        assert_eq!(got["spec"]["template"], original["spec"]["template"]);
    }

    #[test]
    fn non_object_patch_is_rejected() {
        let err = merge_patch(&json!({}), &json!(["a"])).unwrap_err();
        assert_eq!(err.to_string(), "patch body must be a JSON object, found an array");
        assert_eq!(err.reason(), (400, "BadRequest"));
    }
}
