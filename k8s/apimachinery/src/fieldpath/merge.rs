//! Server-side apply's merge of a configuration into the live object, and
//! removing items from an object (pruning fields an applier gave up).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value};

use super::element::PathElement;
use super::schema::{ListKind, TypeRef};
use super::set::Set;
use super::walk::{Node, WalkError, index_list, item_element, node};

/// `rhs` merged into `lhs`: leaves, atomic lists and atomic maps from `rhs`
/// replace those of `lhs`; maps and structs merge field by field;
/// associative lists merge item by item, in `rhs`'s order where `rhs` says
/// something about the order. A null in `rhs` removes the field.
pub fn merge(lhs: &Value, rhs: &Value, ty: TypeRef) -> Result<Value, WalkError> {
    Ok(merge_node(Some(lhs), rhs, ty, &mut Vec::new())?.unwrap_or(Value::Null))
}

/// A value without null map entries: what is stored for a config value.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), clean(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(clean).collect()),
        other => other.clone(),
    }
}

fn merge_node(
    l: Option<&Value>,
    r: &Value,
    ty: TypeRef,
    path: &mut Vec<PathElement>,
) -> Result<Option<Value>, WalkError> {
    if r.is_null() {
        return Ok(None);
    }
    let Some(l) = l.filter(|v| !v.is_null()) else { return Ok(Some(clean(r))) };
    match node(ty, &[Some(l), Some(r)]) {
        Node::Leaf => Ok(Some(clean(r))),
        Node::Object(t) => {
            let mut out: Map<String, Value> = l.as_object().cloned().unwrap_or_default();
            for (k, rv) in r.as_object().into_iter().flatten() {
                let (ft, _) = t.field(k);
                path.push(PathElement::Field(k.clone()));
                match merge_node(out.get(k), rv, ft, path)? {
                    Some(v) => out.insert(k.clone(), v),
                    None => out.remove(k),
                };
                path.pop();
            }
            Ok(Some(Value::Object(out)))
        }
        Node::List(kind, items) => {
            let ll = l.as_array().map(Vec::as_slice).unwrap_or_default();
            let rl = r.as_array().map(Vec::as_slice).unwrap_or_default();
            merge_list(ll, rl, &kind, items, path).map(|v| Some(Value::Array(v)))
        }
    }
}

/// structured-merge-diff's list merge: items both sides have come in
/// `rhs`'s order, items only `lhs` has stay where they were relative to
/// them, items only `rhs` has come where `rhs` puts them.
fn merge_list(
    l: &[Value],
    r: &[Value],
    kind: &ListKind,
    items: TypeRef,
    path: &mut Vec<PathElement>,
) -> Result<Vec<Value>, WalkError> {
    let rpes = index_list(kind, items, r, path, true)?;
    let lpes = index_list(kind, items, l, path, false)?;
    let lmap: BTreeMap<&PathElement, &Value> = lpes.iter().map(|(pe, v)| (pe, *v)).collect();
    let rmap: BTreeMap<&PathElement, &Value> = rpes.iter().map(|(pe, v)| (pe, *v)).collect();
    let mut shared: VecDeque<&PathElement> =
        rpes.iter().map(|(pe, _)| pe).filter(|pe| lmap.contains_key(pe)).collect();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(l.len().max(r.len()));
    let item =
        |pe: &PathElement, rv: &Value, path: &mut Vec<PathElement>| -> Result<Option<Value>, WalkError> {
            path.push(pe.clone());
            let merged = merge_node(lmap.get(pe).copied(), rv, items, path);
            path.pop();
            merged
        };
    let (mut li, mut ri) = (0, 0);
    while li < lpes.len() || ri < rpes.len() {
        if li < lpes.len() && ri < rpes.len() {
            let pe = &lpes[li].0;
            if *pe == rpes[ri].0 {
                merged_rhs.insert(pe);
                out.extend(item(pe, rpes[ri].1, path)?);
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if rmap.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lpes.len() {
            let (pe, lv) = &lpes[li];
            if !rmap.contains_key(pe) {
                out.push((*lv).clone());
                li += 1;
                continue;
            }
            if merged_rhs.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < rpes.len() {
            let (pe, rv) = &rpes[ri];
            merged_rhs.insert(pe);
            out.extend(item(pe, rv, path)?);
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.pop_front();
            }
        }
    }
    Ok(out)
}

/// `v` without the map entries, fields and list items that are members of
/// `set` (with everything below them).
pub fn remove_items(v: &Value, set: &Set, ty: TypeRef) -> Value {
    let mut out = v.clone();
    remove(&mut out, set, ty, &mut Vec::new());
    out
}

fn remove(v: &mut Value, set: &Set, ty: TypeRef, path: &mut Vec<PathElement>) {
    match node(ty, &[Some(v)]) {
        Node::Leaf => {}
        Node::Object(t) => {
            let Some(obj) = v.as_object_mut() else { return };
            let keys: Vec<String> = obj.keys().cloned().collect();
            for k in keys {
                let pe = PathElement::Field(k.clone());
                if set.is_member(&pe) {
                    obj.remove(&k);
                } else if let (Some(child), Some(cv)) = (set.child(&pe), obj.get_mut(&k)) {
                    path.push(pe);
                    remove(cv, child, t.field(&k).0, path);
                    path.pop();
                }
            }
        }
        Node::List(kind, items) => {
            let Some(list) = v.as_array_mut() else { return };
            let old = std::mem::take(list);
            for (i, mut item) in old.into_iter().enumerate() {
                if let Ok(pe) = item_element(&kind, items, i, &item, path) {
                    if set.is_member(&pe) {
                        continue;
                    }
                    if let Some(child) = set.child(&pe) {
                        path.push(pe);
                        remove(&mut item, child, items, path);
                        path.pop();
                    }
                }
                list.push(item);
            }
        }
    }
}
