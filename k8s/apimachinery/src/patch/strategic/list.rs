//! Lists with the `merge` strategy: objects merge by their merge key,
//! primitives form a set; `$patch` elements delete items or replace the
//! list; `$setElementOrder` sets the order.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::order::{arrange, check_patch_follows_order};
use super::{Merger, PATCH};
use crate::patch::PatchError;
use crate::patch::meta::FieldMeta;
use crate::patch::value::{identity, kind_name};

/// A merged list, and the server order upstream's `$setElementOrder` pass
/// sees afterwards (see [`Merger::merge_objects`]).
pub(super) struct MergedList {
    pub(super) items: Vec<Value>,
    pub(super) server: Vec<String>,
}

/// A patch list of objects, sorted out.
struct ListPatch<'p> {
    /// Merge keys whose items `$patch: delete` removes.
    doomed: HashSet<String>,
    /// A `$patch: replace` element was present.
    replace: bool,
    /// The elements without a directive.
    plain: Vec<&'p Map<String, Value>>,
}

/// What a list holds, judged from all its elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Elements {
    Objects,
    Primitives,
}

impl Merger<'_> {
    /// What the lists at the current field hold; primitives when empty.
    pub(super) fn elements(&self, lists: &[&[Value]]) -> Result<Elements, PatchError> {
        let (mut objects, mut primitives) = (false, false);
        for item in lists.iter().flat_map(|list| list.iter()) {
            match item {
                Value::Array(_) => return Err(PatchError::ListOfLists { path: self.location() }),
                Value::Object(_) => objects = true,
                _ => primitives = true,
            }
        }
        match (objects, primitives) {
            (true, true) => Err(PatchError::MixedListElements { path: self.location() }),
            (true, false) => Ok(Elements::Objects),
            (false, _) => Ok(Elements::Primitives),
        }
    }

    /// The merge key of the current list of objects.
    fn merge_key<'m>(&self, meta: &'m FieldMeta) -> Result<&'m str, PatchError> {
        meta.merge_key.as_deref().ok_or_else(|| PatchError::NoMergeKey { path: self.location() })
    }

    /// The identity of `item` for ordering and matching: its merge key's
    /// value for objects, itself for primitives.
    pub(super) fn key_of(&self, item: &Value, key: Option<&str>) -> Result<String, PatchError> {
        match key {
            Some(key) => self.merge_key_value(item.get(key), key),
            None => Ok(identity(item)),
        }
    }

    /// The identity of the merge key's value, which must be there.
    fn merge_key_value(&self, value: Option<&Value>, key: &str) -> Result<String, PatchError> {
        value
            .map(identity)
            .ok_or_else(|| PatchError::MissingMergeKey { path: self.location(), key: key.to_string() })
    }

    fn ids(&self, items: &[Value], key: Option<&str>) -> Result<Vec<String>, PatchError> {
        items.iter().map(|item| self.key_of(item, key)).collect()
    }

    fn keyed(&self, items: Vec<Value>, key: Option<&str>) -> Result<Vec<(String, Value)>, PatchError> {
        items.into_iter().map(|item| Ok((self.key_of(&item, key)?, item))).collect()
    }

    /// Merges `patch` into the list `original` at the current field, whose
    /// strategy is `merge`.
    pub(super) fn merge_list(
        &mut self,
        original: Vec<Value>,
        patch: &[Value],
        meta: &FieldMeta,
    ) -> Result<Vec<Value>, PatchError> {
        Ok(self.merge_list_tracked(original, patch, meta)?.items)
    }

    fn merge_list_tracked(
        &mut self,
        original: Vec<Value>,
        patch: &[Value],
        meta: &FieldMeta,
    ) -> Result<MergedList, PatchError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(MergedList { items: original, server: Vec::new() });
        }
        match self.elements(&[&original, patch])? {
            Elements::Primitives => Ok(self.merge_primitives(original, patch)),
            Elements::Objects => {
                let key = self.merge_key(meta)?;
                self.merge_objects(original, patch, key)
            }
        }
    }

    /// A set union: the original's values, then the patch's new ones, once
    /// each, in upstream's order.
    fn merge_primitives(&self, original: Vec<Value>, patch: &[Value]) -> MergedList {
        let server: Vec<String> = original.iter().map(identity).collect();
        let order: Vec<String> = patch.iter().map(identity).collect();
        let mut seen = HashSet::new();
        let mut merged = Vec::new();
        for item in original.into_iter().chain(patch.iter().cloned()) {
            let id = identity(&item);
            if seen.insert(id.clone()) {
                merged.push((id, item));
            }
        }
        MergedList { items: arrange(merged, &order, &server), server }
    }

    /// Splits a patch list of objects into its directives and the elements
    /// to merge.
    fn list_patch<'p>(&self, patch: &'p [Value], key: &str) -> Result<ListPatch<'p>, PatchError> {
        let mut list = ListPatch { doomed: HashSet::new(), replace: false, plain: Vec::new() };
        for element in patch {
            let Value::Object(element) = element else {
                continue;
            };
            let Some(directive) = element.get(PATCH) else {
                list.plain.push(element);
                continue;
            };
            match directive.as_str() {
                Some("delete") => {
                    list.doomed.insert(self.merge_key_value(element.get(key), key)?);
                }
                Some("replace") => list.replace = true,
                Some("merge") => return Err(PatchError::MergeDirectiveInList { path: self.location() }),
                _ => {
                    let value = directive.to_string();
                    return Err(PatchError::InvalidDirective { path: self.location(), value });
                }
            }
        }
        Ok(list)
    }

    /// Objects matched on `key`: `$patch: delete` elements remove every
    /// match, a `$patch: replace` element makes the other elements the whole
    /// list, the rest merge into their first match or are added.
    ///
    /// The server order returned mimics upstream, which deletes in place and
    /// appends new items into the slots that frees, so that its
    /// `$setElementOrder` pass sees those new items as server items.
    fn merge_objects(
        &mut self,
        original: Vec<Value>,
        patch: &[Value],
        key: &str,
    ) -> Result<MergedList, PatchError> {
        let ListPatch { doomed, replace, plain } = self.list_patch(patch, key)?;
        let before = original.len();
        let survives = |item: &Value| item.get(key).is_none_or(|value| !doomed.contains(&identity(value)));
        let kept: Vec<Value> = original.into_iter().filter(survives).collect();
        let freed = before - kept.len();
        if replace {
            let seen = self.ids(&kept, Some(key))?;
            let mut items = Vec::with_capacity(plain.len());
            for element in plain {
                let fresh = Value::Object(self.merge_object(Map::new(), element, false)?);
                items.push((self.key_of(&fresh, Some(key))?, fresh));
            }
            let server: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
            return Ok(MergedList { items: arrange(items, &[], &server), server: seen });
        }
        let mut items = self.keyed(kept, Some(key))?;
        let server: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
        let mut position: HashMap<String, usize> = HashMap::new();
        for (at, id) in server.iter().enumerate().rev() {
            position.insert(id.clone(), at);
        }
        let mut order = Vec::with_capacity(plain.len());
        let mut seen = server.clone();
        for element in plain {
            let id = self.merge_key_value(element.get(key), key)?;
            order.push(id.clone());
            if let Some((_, item)) = position.get(&id).and_then(|at| items.get_mut(*at)) {
                let current = match std::mem::take(item) {
                    Value::Object(current) => current,
                    _ => Map::new(),
                };
                *item = Value::Object(self.merge_object(current, element, false)?);
                continue;
            }
            let added = self.merge_object(Map::new(), element, false)?;
            if seen.len() < server.len() + freed {
                seen.push(id.clone());
            }
            position.insert(id.clone(), items.len());
            items.push((id, Value::Object(added)));
        }
        Ok(MergedList { items: arrange(items, &order, &server), server: seen })
    }

    /// The current field's list after `$setElementOrder`: `current` merged
    /// with `patch` by the field's strategy, then put in `order`. `None`
    /// when neither the object nor the patch has the list.
    pub(super) fn ordered_list(
        &mut self,
        current: Option<Value>,
        patch: Option<&Value>,
        order: &[Value],
    ) -> Result<Option<Value>, PatchError> {
        let current = match current {
            None => None,
            Some(Value::Array(items)) => Some(items),
            Some(other) => {
                return Err(PatchError::NotAList { path: self.location(), found: kind_name(&other) });
            }
        };
        let patch = match patch {
            None => None,
            Some(Value::Array(items)) => Some(items.as_slice()),
            Some(other) => {
                return Err(PatchError::NotAList { path: self.location(), found: kind_name(other) });
            }
        };
        if current.is_none() && patch.is_none() {
            return Ok(None);
        }
        let meta = self.field_meta();
        let elements = self.elements(&[current.as_deref().unwrap_or_default(), patch.unwrap_or_default()])?;
        let key = match elements {
            Elements::Objects => Some(self.merge_key(&meta)?),
            Elements::Primitives => None,
        };
        if let Some(patch) = patch {
            check_patch_follows_order(self, patch, order, key)?;
        }
        let (merged, server) = match (current, patch) {
            (current, Some(patch)) if meta.merge && !meta.replace => {
                let merged = self.merge_list_tracked(current.unwrap_or_default(), patch, &meta)?;
                (merged.items, merged.server)
            }
            (current, Some(patch)) => {
                (patch.to_vec(), self.ids(current.as_deref().unwrap_or_default(), key)?)
            }
            (Some(current), None) => {
                let server = self.ids(&current, key)?;
                (current, server)
            }
            (None, None) => return Ok(None),
        };
        let order = self.ids(order, key)?;
        let items = self.keyed(merged, key)?;
        Ok(Some(Value::Array(arrange(items, &order, &server))))
    }
}
