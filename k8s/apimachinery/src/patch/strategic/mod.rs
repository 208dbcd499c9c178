//! `application/strategic-merge-patch+json`, the format `kubectl apply`,
//! `kubectl edit` and `kubectl patch` send: a JSON merge patch whose lists
//! merge by key where the schema says so, plus directives (`$patch`,
//! `$retainKeys`, `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`).
//!
//! Follows upstream's `strategicpatch.StrategicMergeMapPatch`, including its
//! list order: items named in `$setElementOrder` (or else in the patch list)
//! keep that order, and items only on the server come first where the patch
//! says nothing about their place; so without `$setElementOrder` a new item
//! lands before the server's items, as `kubectl patch` shows upstream.
//! Where upstream copies a new patch value verbatim (directives and `null`s
//! included), this applies it to an empty value instead, so no directive
//! ever reaches the stored object; the one exception is a field whose
//! strategy is `replace`, which takes the patch value as written.
//! `$deleteFromPrimitiveList` on a missing list does nothing (upstream sets
//! the list to the deletion list). The `retainKeys` strategy only tells
//! clients to send `$retainKeys`; applying a patch honours the directive
//! wherever it appears, as upstream does.

mod list;
mod order;
#[cfg(test)]
mod tests_doc;
#[cfg(test)]
mod tests_upstream;

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::meta::{FieldMeta, PatchMeta};
use super::value::{deeper_than, kind_name};
use super::{MAX_DEPTH, PatchError};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// Applies the strategic merge patch `patch` to the object `original`,
/// looking up each field's strategy in `meta`.
pub fn strategic_merge_patch(
    original: &Value,
    patch: &Value,
    meta: &dyn PatchMeta,
) -> Result<Value, PatchError> {
    let Value::Object(original) = original else {
        return Err(PatchError::OriginalNotObject { found: kind_name(original) });
    };
    let Value::Object(patch_map) = patch else {
        return Err(PatchError::PatchNotObject { found: kind_name(patch) });
    };
    if deeper_than(patch, MAX_DEPTH) {
        return Err(PatchError::PatchTooDeep { limit: MAX_DEPTH });
    }
    let mut merger = Merger { meta, path: Vec::new() };
    Ok(Value::Object(merger.merge_object(original.clone(), patch_map, false)?))
}

/// Walks the patch, keeping the schema path of the field at hand. Recursion
/// follows the patch, whose depth was checked.
struct Merger<'a> {
    meta: &'a dyn PatchMeta,
    /// Field names from the root; list indexes and map keys left out.
    path: Vec<String>,
}

impl Merger<'_> {
    fn field_meta(&self) -> FieldMeta {
        let path: Vec<&str> = self.path.iter().map(String::as_str).collect();
        self.meta.field(&path)
    }

    /// The current field for error messages: `spec.template.spec.containers`.
    fn location(&self) -> String {
        if self.path.is_empty() { "(root)".to_string() } else { self.path.join(".") }
    }

    /// Runs `f` on member `key` of the current object: one level deeper in
    /// the schema unless the object is a map whose keys are data.
    fn in_member<T>(&mut self, key: &str, keys_are_data: bool, f: impl FnOnce(&mut Self) -> T) -> T {
        if keys_are_data {
            return f(self);
        }
        self.path.push(key.to_string());
        let result = f(self);
        self.path.pop();
        result
    }

    /// Merges `patch` into `original`, an object at the current path.
    fn merge_object(
        &mut self,
        mut original: Map<String, Value>,
        patch: &Map<String, Value>,
        keys_are_data: bool,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.get(PATCH) {
            return match directive.as_str() {
                Some("replace") => {
                    let rest: Map<String, Value> = patch
                        .iter()
                        .filter(|(key, _)| *key != PATCH)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    self.merge_object(Map::new(), &rest, keys_are_data)
                }
                Some("delete") => Ok(Map::new()),
                _ => {
                    Err(PatchError::InvalidDirective { path: self.location(), value: directive.to_string() })
                }
            };
        }
        self.retain_keys(&mut original, patch)?;
        let ordered = self.set_element_orders(&mut original, patch, keys_are_data)?;
        for (key, value) in patch {
            if let Some(rest) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
                self.delete_from_primitive_list(&mut original, key, rest, value)?;
            }
        }
        for (key, value) in patch {
            let directive = key == RETAIN_KEYS
                || key.starts_with(SET_ELEMENT_ORDER)
                || key.starts_with(DELETE_FROM_PRIMITIVE_LIST);
            if directive || ordered.contains(key) {
                continue;
            }
            if value.is_null() {
                original.remove(key);
                continue;
            }
            let current = original.remove(key);
            let merged = self.in_member(key, keys_are_data, |m| m.merge_value(current, value))?;
            original.insert(key.clone(), merged);
        }
        Ok(original)
    }

    /// The new value of the current field, `current` when it exists.
    fn merge_value(&mut self, current: Option<Value>, patch: &Value) -> Result<Value, PatchError> {
        let meta = self.field_meta();
        if meta.replace {
            return Ok(patch.clone());
        }
        let merges_list = meta.merge;
        Ok(match (current, patch) {
            (Some(Value::Object(current)), Value::Object(patch)) => {
                Value::Object(self.merge_object(current, patch, meta.is_map)?)
            }
            (_, Value::Object(patch)) => Value::Object(self.merge_object(Map::new(), patch, meta.is_map)?),
            (Some(Value::Array(current)), Value::Array(patch)) if merges_list => {
                Value::Array(self.merge_list(current, patch, &meta)?)
            }
            (_, Value::Array(patch)) if merges_list => {
                Value::Array(self.merge_list(Vec::new(), patch, &meta)?)
            }
            (_, other) => other.clone(),
        })
    }

    /// `$retainKeys`: drops the members of `original` the list leaves out,
    /// after checking that the patch sets nothing outside the list.
    fn retain_keys(
        &self,
        original: &mut Map<String, Value>,
        patch: &Map<String, Value>,
    ) -> Result<(), PatchError> {
        let Some(retain) = patch.get(RETAIN_KEYS) else {
            return Ok(());
        };
        let Value::Array(retain) = retain else {
            return Err(PatchError::BadRetainKeys { path: self.location() });
        };
        let keep: HashSet<&str> = retain.iter().filter_map(Value::as_str).collect();
        for (key, value) in patch {
            let skipped = key == RETAIN_KEYS
                || value.is_null()
                || key.starts_with(SET_ELEMENT_ORDER)
                || key.starts_with(DELETE_FROM_PRIMITIVE_LIST);
            if !skipped && !keep.contains(key.as_str()) {
                return Err(PatchError::RetainKeysMismatch { path: self.location(), key: key.clone() });
            }
        }
        original.retain(|key, _| keep.contains(key.as_str()));
        Ok(())
    }

    /// Every `$setElementOrder/<field>` of `patch`: merges the field's patch
    /// list and puts the result in order. Returns the fields it handled.
    fn set_element_orders(
        &mut self,
        original: &mut Map<String, Value>,
        patch: &Map<String, Value>,
        keys_are_data: bool,
    ) -> Result<HashSet<String>, PatchError> {
        let mut handled = HashSet::new();
        for (key, order) in patch {
            let Some(rest) = key.strip_prefix(SET_ELEMENT_ORDER) else {
                continue;
            };
            let field = rest.strip_prefix('/').filter(|field| !field.is_empty());
            let (Some(field), Value::Array(order)) = (field, order) else {
                return Err(PatchError::BadSetElementOrder { path: self.location(), key: key.clone() });
            };
            handled.insert(field.to_string());
            let current = original.remove(field);
            let patch_list = patch.get(field);
            let merged =
                self.in_member(field, keys_are_data, |m| m.ordered_list(current, patch_list, order))?;
            if let Some(merged) = merged {
                original.insert(field.to_string(), merged);
            }
        }
        Ok(handled)
    }

    /// `$deleteFromPrimitiveList/<field>`: removes every listed value from
    /// the field's list of primitives.
    fn delete_from_primitive_list(
        &self,
        original: &mut Map<String, Value>,
        key: &str,
        rest: &str,
        deletions: &Value,
    ) -> Result<(), PatchError> {
        let bad = || PatchError::BadDeleteFromPrimitiveList { path: self.location(), key: key.to_string() };
        let field = rest.strip_prefix('/').filter(|field| !field.is_empty()).ok_or_else(bad)?;
        let Value::Array(deletions) = deletions else {
            return Err(bad());
        };
        let composite = |value: &Value| value.is_object() || value.is_array();
        if deletions.iter().any(composite) {
            return Err(bad());
        }
        let Some(Value::Array(items)) = original.get_mut(field) else {
            return Ok(());
        };
        if items.iter().any(composite) {
            return Err(bad());
        }
        let doomed: HashSet<String> = deletions.iter().map(super::value::identity).collect();
        items.retain(|item| !doomed.contains(&super::value::identity(item)));
        Ok(())
    }
}
