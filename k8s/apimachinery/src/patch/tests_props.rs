//! Properties of the three formats over generated documents.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::fuzz::{self, FuzzMeta};
use super::{NoMeta, PatchType, apply_patch, json_patch, merge_patch, strategic_merge_patch};

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        "[a-c]{0,2}".prop_map(Value::String),
    ]
}

/// Objects nested a few levels; `lists` adds lists of scalars and objects.
fn object(lists: bool) -> impl Strategy<Value = Value> {
    let leaf = scalar();
    let tree = leaf.prop_recursive(4, 32, 4, move |inner| {
        let map = prop::collection::btree_map("[a-e]{1,2}", inner.clone(), 0..4)
            .prop_map(|entries| Value::Object(entries.into_iter().collect()));
        if lists {
            prop_oneof![map, prop::collection::vec(inner, 0..4).prop_map(Value::Array)].boxed()
        } else {
            map.boxed()
        }
    });
    prop::collection::btree_map("[a-e]{1,2}", tree, 0..5)
        .prop_map(|entries| Value::Object(entries.into_iter().collect()))
}

/// An object without `null`s, as stored objects are.
fn stored(lists: bool) -> impl Strategy<Value = Value> {
    object(lists).prop_map(|mut value| {
        strip_nulls(&mut value);
        value
    })
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, item| !item.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

proptest! {
    #[test]
    fn empty_merge_patch_is_identity(original in object(true)) {
        prop_assert_eq!(merge_patch(&original, &json!({})).unwrap(), original);
    }

    #[test]
    fn merge_patch_is_idempotent(original in object(true), patch in object(true)) {
        let once = merge_patch(&original, &patch).unwrap();
        prop_assert_eq!(merge_patch(&once, &patch).unwrap(), once);
    }

    #[test]
    fn strategic_without_lists_or_meta_is_a_merge_patch(original in stored(false), patch in object(false)) {
        let want = merge_patch(&original, &patch).unwrap();
        prop_assert_eq!(strategic_merge_patch(&original, &patch, &NoMeta).unwrap(), want);
    }

    #[test]
    fn strategic_with_no_meta_replaces_lists_like_a_merge_patch(original in stored(true), patch in object(true)) {
        let want = merge_patch(&original, &patch).unwrap();
        prop_assert_eq!(strategic_merge_patch(&original, &patch, &NoMeta).unwrap(), want);
    }

    #[test]
    fn json_patch_add_then_remove_restores(original in object(true), value in scalar()) {
        prop_assume!(original.get("zz").is_none());
        let patch = json!([{"op": "add", "path": "/zz", "value": value}, {"op": "remove", "path": "/zz"}]);
        prop_assert_eq!(json_patch(&original, &patch).unwrap(), original);
    }

    #[test]
    fn strategic_with_merge_lists_never_panics(original in object(true), patch in object(true)) {
        let renamed = |value: &Value| rename_keys(value);
        let _ = strategic_merge_patch(&renamed(&original), &renamed(&patch), &FuzzMeta);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = fuzz::apply(&data);
    }

    #[test]
    fn arbitrary_json_bodies_never_panic(original in object(true), patch in object(true), kind in 0u8..3) {
        let kind = [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge][usize::from(kind)];
        let body = serde_json::to_vec(&rename_keys(&patch)).unwrap();
        if let Ok(result) = apply_patch(kind, &original, &body, &FuzzMeta) {
            prop_assert!(result.is_object());
        }
    }
}

/// Gives generated keys the names that steer [`FuzzMeta`] and the
/// directives, so generated patches reach merge lists and `$` keys.
fn rename_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let renamed: Map<String, Value> = map
                .iter()
                .map(|(key, item)| {
                    let key = match key.as_str() {
                        "a" => "name".to_string(),
                        "b" => "$patch".to_string(),
                        "c" => "$setElementOrder/mlist".to_string(),
                        "d" => "$deleteFromPrimitiveList/slist".to_string(),
                        "e" => "$retainKeys".to_string(),
                        "aa" | "ab" => "mlist".to_string(),
                        "ba" | "bb" => "slist".to_string(),
                        "ca" => "vlist".to_string(),
                        "cb" => "rfield".to_string(),
                        "da" => "kmap".to_string(),
                        other => other.to_string(),
                    };
                    (key, rename_keys(item))
                })
                .collect();
            Value::Object(renamed)
        }
        Value::Array(items) => Value::Array(items.iter().map(rename_keys).collect()),
        other => other.clone(),
    }
}
