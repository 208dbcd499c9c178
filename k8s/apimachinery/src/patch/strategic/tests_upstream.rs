//! Cases from upstream's `strategicpatch/patch_test.go` (object + patch =
//! result, on its `MergeItem` test type), and the errors.

use serde_json::{Value, json};

use super::strategic_merge_patch;
use crate::patch::PatchError;
use crate::patch::testing::MergeItemMeta;

fn apply(original: Value, patch: Value) -> Result<Value, PatchError> {
    strategic_merge_patch(&original, &patch, &MergeItemMeta)
}

fn check(description: &str, original: Value, patch: Value, want: Value) {
    match apply(original, patch) {
        Ok(got) => assert_eq!(got, want, "{description}"),
        Err(err) => panic!("{description}: {err}"),
    }
}

#[test]
fn custom_cases() {
    check(
        "unique scalars when merging lists",
        json!({"mergingIntList": [1, 2]}),
        json!({"mergingIntList": [2, 3]}),
        json!({"mergingIntList": [1, 2, 3]}),
    );
    check(
        "delete map from nested map",
        json!({"simpleMap": {"key1": 1, "key2": 1}}),
        json!({"simpleMap": {"$patch": "delete"}}),
        json!({"simpleMap": {}}),
    );
    check(
        "delete all items from merging list",
        json!({"mergingList": [{"name": 1}, {"name": 2}]}),
        json!({"mergingList": [{"$patch": "replace"}]}),
        json!({"mergingList": []}),
    );
    check(
        "merge empty merging lists",
        json!({"mergingList": []}),
        json!({"mergingList": []}),
        json!({"mergingList": []}),
    );
    check(
        "delete all keys from map",
        json!({"name": 1, "value": 1}),
        json!({"$patch": "replace"}),
        json!({}),
    );
    check(
        "add key and delete all keys from map",
        json!({"name": 1, "value": 1}),
        json!({"other": "a", "$patch": "replace"}),
        json!({"other": "a"}),
    );
    check(
        "retainKeys list can add a field when no retainKeys directive present",
        json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}]}),
        json!({"retainKeysMergingList": [{"name": "foo", "value": "a"}]}),
        json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
    );
    check(
        "retainKeys map merge an empty map",
        json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
        json!({"retainKeysMap": {}}),
        json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
    );
}

#[test]
fn order_follows_the_patch_then_the_server() {
    check(
        "preserve the order from the patch in a merging list",
        json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
        json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}]}),
        json!({"mergingList": [
            {"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "value": "b", "other": "x"}
        ]}),
    );
    check(
        "preserve the order from the patch in a merging list 2",
        json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
        json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
        json!({"mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
    );
    check(
        "preserve the order from the patch in a merging int list",
        json!({"mergingIntList": [1, 2, 3]}),
        json!({"mergingIntList": [3, 1, 2]}),
        json!({"mergingIntList": [3, 1, 2]}),
    );
    check(
        "preserve the order from the patch in a merging int list 2",
        json!({"mergingIntList": [1, 2, 3]}),
        json!({"mergingIntList": [3, 1]}),
        json!({"mergingIntList": [2, 3, 1]}),
    );
}

#[test]
fn set_element_order() {
    check(
        "$setElementOrder contains item that is not present in the list to be merged",
        json!({"mergingList": [{"name": 1}, {"name": 3}]}),
        json!({
            "$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
            "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]
        }),
        json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
    );
    check(
        "$setElementOrder contains item that is not present in the int list to be merged",
        json!({"mergingIntList": [1, 3]}),
        json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
        json!({"mergingIntList": [3, 1]}),
    );
    check(
        "merge lists of maps",
        json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
        json!({
            "$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
            "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]
        }),
        json!({"mergingList": [
            {"name": 4, "value": 4}, {"name": 1, "other": "a"},
            {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}
        ]}),
    );
    check(
        "delete missing map from merging list with conflict",
        json!({"mergingList": [{"name": 3, "other": "a"}]}),
        json!({
            "$setElementOrder/mergingList": [{"name": 2}],
            "mergingList": [{"name": 2}, {"name": 1, "$patch": "delete"}]
        }),
        json!({"mergingList": [{"name": 2}, {"name": 3, "other": "a"}]}),
    );
    check(
        "add field to map in merging list nested in merging list",
        json!({"mergingList": [
            {"name": 1, "other": "a", "mergingList": [{"name": 1}, {"name": 2, "value": 2}]},
            {"name": 2, "other": "b"}
        ]}),
        json!({
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [{
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                "name": 1,
                "mergingList": [{"name": 1, "value": 1}]
            }]
        }),
        json!({"mergingList": [
            {"name": 1, "other": "a", "mergingList": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]},
            {"name": 2, "other": "b"}
        ]}),
    );
}

/// Upstream deletes in place and appends into the freed slots, which its
/// `$setElementOrder` pass then counts as the server's: a new item lands
/// after the server-only items that a deletion made room for.
#[test]
fn add_and_delete_in_one_patch() {
    check(
        "add map and delete map from merging list",
        json!({"mergingList": [{"name": 1}, {"name": 2, "other": "b"}, {"name": 4, "other": "c"}]}),
        json!({
            "$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
            "mergingList": [{"name": 3}, {"name": 1, "$patch": "delete"}]
        }),
        json!({"mergingList": [{"name": 2, "other": "b"}, {"name": 4, "other": "c"}, {"name": 3}]}),
    );
    check(
        "add map and delete map from merging list with conflict",
        json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 4, "other": "c"}]}),
        json!({
            "$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
            "mergingList": [{"name": 2}, {"name": 3}, {"name": 1, "$patch": "delete"}]
        }),
        json!({"mergingList": [{"name": 4, "other": "c"}, {"name": 2}, {"name": 3}]}),
    );
}

#[test]
fn primitive_list_deletions() {
    check(
        "delete items in lists of scalars",
        json!({"mergingIntList": [1, 2, 3, 4]}),
        json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
        json!({"mergingIntList": [1, 2, 4]}),
    );
    check(
        "delete all duplicate items in lists of scalars",
        json!({"mergingIntList": [1, 2, 3, 3, 4]}),
        json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
        json!({"mergingIntList": [1, 2, 4]}),
    );
    check(
        "add and delete items in lists of scalars",
        json!({"mergingIntList": [1, 2, 3, 4]}),
        json!({
            "$setElementOrder/mergingIntList": [1, 2, 4],
            "$deleteFromPrimitiveList/mergingIntList": [3],
            "mergingIntList": [4]
        }),
        json!({"mergingIntList": [1, 2, 4]}),
    );
    check(
        "deleting from a missing list does nothing",
        json!({"name": 1}),
        json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
        json!({"name": 1}),
    );
}

#[test]
fn nulls_and_nested_lists() {
    check(
        "delete field from map in merging list",
        json!({"mergingList": [{"name": 1, "value": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
        json!({
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [{"name": 1, "value": null}]
        }),
        json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
    );
    check(
        "replace non merging list nested in merging list",
        json!({"mergingList": [
            {"name": 1, "other": "a", "nonMergingList": [{"name": 1}, {"name": 2, "value": 2}]},
            {"name": 2, "other": "b"}
        ]}),
        json!({
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [{"name": 1, "nonMergingList": [{"name": 1, "value": 1}]}]
        }),
        json!({"mergingList": [
            {"name": 1, "other": "a", "nonMergingList": [{"name": 1, "value": 1}]},
            {"name": 2, "other": "b"}
        ]}),
    );
    check(
        "defined null values should propagate overwrite current fields",
        json!({"name": 2}),
        json!({"name": 1, "value": 1, "other": null}),
        json!({"name": 1, "value": 1}),
    );
    check(
        "a list patched with an object is replaced",
        json!({"mergingList": [{"name": 1}, {"name": 1}]}),
        json!({"mergingList": {}}),
        json!({"mergingList": {}}),
    );
}

#[test]
fn retain_keys_directive() {
    check(
        "$retainKeys clears the fields it leaves out",
        json!({"retainKeysMap": {"name": "foo", "value": "a", "other": "x"}}),
        json!({"retainKeysMap": {"$retainKeys": ["name", "value"], "value": "b"}}),
        json!({"retainKeysMap": {"name": "foo", "value": "b"}}),
    );
    check(
        "$retainKeys in a merged list element",
        json!({"retainKeysMergingList": [{"name": "a", "value": "1", "other": "x"}]}),
        json!({"retainKeysMergingList": [{"name": "a", "$retainKeys": ["name", "other"], "other": "y"}]}),
        json!({"retainKeysMergingList": [{"name": "a", "other": "y"}]}),
    );
}

#[test]
fn replace_strategy_takes_the_patch_as_written() {
    check(
        "replacingItem",
        json!({"replacingItem": {"a": 1, "b": 2}}),
        json!({"replacingItem": {"b": null, "c": {"$patch": "delete"}}}),
        json!({"replacingItem": {"b": null, "c": {"$patch": "delete"}}}),
    );
}

#[test]
fn new_values_never_carry_directives() {
    check(
        "new nested map",
        json!({}),
        json!({"simpleMap": {"a": "1", "b": null}, "mergingList": [{"name": 1, "$patch": "delete"}, {"name": 2}]}),
        json!({"simpleMap": {"a": "1"}, "mergingList": [{"name": 2}]}),
    );
}

#[test]
fn errors() {
    type Expect = fn(&PatchError) -> bool;
    let cases: Vec<(Value, Value, Expect)> = vec![
        (
            json!({"mergingList": [{"name": 1, "value": "a"}]}),
            json!({"mergingList": [{"value": "b"}]}),
            |e| matches!(e, PatchError::MissingMergeKey { path, key } if path == "mergingList" && key == "name"),
        ),
        (
            json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]
            }),
            |e| matches!(e, PatchError::SetElementOrderMismatch { .. }),
        ),
        (
            json!({"mergingIntList": [1, 3, 2]}),
            json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]}),
            |e| matches!(e, PatchError::SetElementOrderMismatch { .. }),
        ),
        (
            json!({"mergingList": [{"name": 1}]}),
            json!({"mergingList": [{"name": 1, "$patch": "merge"}]}),
            |e| matches!(e, PatchError::MergeDirectiveInList { .. }),
        ),
        (
            json!({}),
            json!({"simpleMap": {"$patch": "merge"}}),
            |e| matches!(e, PatchError::InvalidDirective { path, value } if path == "simpleMap" && value == "\"merge\""),
        ),
        (json!({}), json!({"$patch": 1}), |e| matches!(e, PatchError::InvalidDirective { .. })),
        (
            json!({"mergingList": [{"name": 1}]}),
            json!({"mergingList": [{"name": 1, "$patch": "remove"}]}),
            |e| matches!(e, PatchError::InvalidDirective { .. }),
        ),
        (json!({}), json!({"mergingIntList": [[1]]}), |e| matches!(e, PatchError::ListOfLists { .. })),
        (json!({"mergingIntList": [1]}), json!({"mergingIntList": [{"name": 1}]}), |e| {
            matches!(e, PatchError::MixedListElements { .. })
        }),
        (json!({}), json!({"mergingIntList": [{"a": 1}]}), |e| matches!(e, PatchError::NoMergeKey { .. })),
        (json!({}), json!({"retainKeysMap": {"$retainKeys": "name"}}), |e| {
            matches!(e, PatchError::BadRetainKeys { .. })
        }),
        (
            json!({}),
            json!({"retainKeysMap": {"$retainKeys": ["name"], "value": "b"}}),
            |e| matches!(e, PatchError::RetainKeysMismatch { key, .. } if key == "value"),
        ),
        (json!({}), json!({"$setElementOrdermergingList": []}), |e| {
            matches!(e, PatchError::BadSetElementOrder { .. })
        }),
        (json!({}), json!({"$setElementOrder/mergingList": {}}), |e| {
            matches!(e, PatchError::BadSetElementOrder { .. })
        }),
        (json!({"mergingList": 1}), json!({"$setElementOrder/mergingList": []}), |e| {
            matches!(e, PatchError::NotAList { .. })
        }),
        (json!({}), json!({"$deleteFromPrimitiveList/mergingIntList": 3}), |e| {
            matches!(e, PatchError::BadDeleteFromPrimitiveList { .. })
        }),
        (json!({"mergingList": [{"name": 1}]}), json!({"$deleteFromPrimitiveList/mergingList": [1]}), |e| {
            matches!(e, PatchError::BadDeleteFromPrimitiveList { .. })
        }),
    ];
    for (original, patch, expected) in cases {
        let err = apply(original, patch.clone()).expect_err(&patch.to_string());
        assert!(expected(&err), "{patch}: {err:?}");
    }
}

#[test]
fn error_statuses_follow_upstream() {
    let err = apply(json!({}), json!({"mergingIntList": [[1]]})).unwrap_err();
    assert_eq!(err.reason(), (422, "Invalid"));
    let err = apply(json!({}), json!({"retainKeysMap": {"$retainKeys": 1}})).unwrap_err();
    assert_eq!(err.reason(), (400, "BadRequest"));
    let err =
        apply(json!({"mergingList": [{"name": 1}]}), json!({"mergingList": [{"value": 1}]})).unwrap_err();
    assert_eq!(err.reason(), (500, ""));
    assert_eq!(err.to_string(), "mergingList: list element does not contain the merge key \"name\"");
}

/// The deepest patch accepted, through merged lists and replaced maps,
/// applies within a test thread's 2 MiB stack.
#[test]
fn deepest_patches_fit_the_stack() {
    use crate::patch::MAX_DEPTH;
    use crate::patch::fuzz::FuzzMeta;
    let nest =
        |leaf: Value, wrap: &dyn Fn(Value) -> Value, levels: usize| (0..levels).fold(leaf, |v, _| wrap(v));
    // Each level is a list and its element: 2 of the 100 allowed.
    let levels = (MAX_DEPTH - 3) / 2;
    let original = json!({"mlist": nest(json!([]), &|inner| json!([{"name": "x", "other": 1, "mlist": inner}]), levels)});
    let list = |inner: Value| json!([{"name": "x", "$retainKeys": ["name", "mlist"], "mlist": inner}]);
    let patch = json!({"mlist": nest(json!([{"name": "y"}]), &list, levels)});
    let got = strategic_merge_patch(&original, &patch, &FuzzMeta).unwrap();
    assert!(got.to_string().contains("\"name\":\"y\""));
    let maps = nest(json!({"$patch": "replace", "k": null}), &|inner| json!({"a": inner}), MAX_DEPTH - 1);
    assert!(strategic_merge_patch(&json!({}), &maps, &FuzzMeta).is_ok());
}
