//! Walking an object along its schema: which path element names each list
//! item, the field set of an object (upstream's `ToFieldSet`) and what
//! changed between two objects (`Compare`).

use serde_json::Value;

use super::element::{Path, PathElement};
use super::schema::{ListKind, Shape, TypeRef};
use super::set::Set;
use super::value;

/// Why an object does not fit its schema well enough to track its fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    #[error(
        "{list}: element {index}: associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
    )]
    MissingKey { list: String, index: usize, key: String },
    #[error("{list}: element {index}: associative list with keys may not have non-map elements")]
    NotAMap { list: String, index: usize },
    #[error("{list}: duplicate entries for key {key}")]
    Duplicate { list: String, key: String },
}

/// How to walk a value (or a pair of values) at one type.
pub(crate) enum Node<'a> {
    Leaf,
    /// A struct or granular map: walk its fields with this type.
    Object(TypeRef<'a>),
    /// An associative list: items identified per `ListKind`.
    List(ListKind, TypeRef<'a>),
}

/// The node for the non-null values among `values`; values of another
/// JSON type than the schema expects make a leaf.
pub(crate) fn node<'a>(ty: TypeRef<'a>, values: &[Option<&Value>]) -> Node<'a> {
    let present: Vec<&Value> = values.iter().flatten().copied().filter(|v| !v.is_null()).collect();
    let all_objects = present.iter().all(|v| v.is_object());
    match ty.shape() {
        Shape::Leaf | Shape::List(ListKind::Atomic, _) => Node::Leaf,
        Shape::Struct | Shape::Map(_) if all_objects => Node::Object(ty),
        Shape::List(kind, items) if present.iter().all(|v| v.is_array()) => Node::List(kind, items),
        Shape::Deduced if all_objects && !present.is_empty() => Node::Object(ty),
        _ => Node::Leaf,
    }
}

/// The path element of item `index` of an associative list.
pub(crate) fn item_element(
    kind: &ListKind,
    items: TypeRef,
    index: usize,
    item: &Value,
    list: &[PathElement],
) -> Result<PathElement, WalkError> {
    match kind {
        ListKind::Atomic => Ok(PathElement::Index(index)),
        ListKind::Set => Ok(PathElement::Value(item.clone())),
        ListKind::Map(keys) => {
            let Value::Object(fields) = item else {
                return Err(WalkError::NotAMap { list: Path(list.to_vec()).to_string(), index });
            };
            let mut key = Vec::with_capacity(keys.len());
            for k in keys {
                let v = match fields.get(k).filter(|v| !v.is_null()) {
                    Some(v) => v.clone(),
                    None => items.key_default(k).ok_or_else(|| WalkError::MissingKey {
                        list: Path(list.to_vec()).to_string(),
                        index,
                        key: k.clone(),
                    })?,
                };
                key.push((k.clone(), v));
            }
            Ok(PathElement::key(key))
        }
    }
}

/// The items of a list with their path elements. With `strict`, a repeated
/// key is an error; otherwise the first item with a key wins.
pub(crate) fn index_list<'v>(
    kind: &ListKind,
    items: TypeRef,
    list: &'v [Value],
    path: &[PathElement],
    strict: bool,
) -> Result<Vec<(PathElement, &'v Value)>, WalkError> {
    let mut out: Vec<(PathElement, &Value)> = Vec::with_capacity(list.len());
    let mut seen = std::collections::BTreeSet::new();
    for (i, item) in list.iter().enumerate() {
        let pe = item_element(kind, items, i, item, path)?;
        if !seen.insert(pe.clone()) {
            if strict {
                return Err(WalkError::Duplicate {
                    list: Path(path.to_vec()).to_string(),
                    key: pe.to_string(),
                });
            }
            continue;
        }
        out.push((pe, item));
    }
    Ok(out)
}

/// Every field an object sets: leaves, list items, map entries, and struct
/// fields that are null or empty.
pub fn to_field_set(v: &Value, ty: TypeRef) -> Result<Set, WalkError> {
    let mut set = Set::new();
    fields(v, ty, &mut Vec::new(), &mut set)?;
    Ok(set)
}

fn fields(v: &Value, ty: TypeRef, path: &mut Vec<PathElement>, set: &mut Set) -> Result<(), WalkError> {
    if v.is_null() {
        set.insert(path);
        return Ok(());
    }
    match node(ty, &[Some(v)]) {
        Node::Leaf => set.insert(path),
        Node::Object(t) => {
            for (k, child) in v.as_object().into_iter().flatten() {
                let (ft, declared) = t.field(k);
                path.push(PathElement::Field(k.clone()));
                fields(child, ft, path, set)?;
                let empty = child.is_null() || child.as_object().is_some_and(serde_json::Map::is_empty);
                if !declared || empty {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Node::List(kind, items) => {
            let list = v.as_array().map(Vec::as_slice).unwrap_or_default();
            for (pe, item) in index_list(&kind, items, list, path, true)? {
                path.push(pe);
                fields(item, items, path, set)?;
                set.insert(path);
                path.pop();
            }
        }
    }
    Ok(())
}

/// What changed from one object to another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

impl Comparison {
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    /// Added or modified.
    pub fn changed(&self) -> Set {
        self.added.union(&self.modified)
    }

    /// The comparison without `ignored` and everything below it.
    pub fn without(&self, ignored: &Set) -> Comparison {
        Comparison {
            added: self.added.recursive_difference(ignored),
            modified: self.modified.recursive_difference(ignored),
            removed: self.removed.recursive_difference(ignored),
        }
    }
}

/// Compares `lhs` (before) with `rhs` (after). Null counts as absent.
///
/// Besides changed leaves, a map entry or list item that appears or goes
/// is itself added or removed. A struct field is not (upstream's typed
/// objects always have their non-pointer structs and required fields), so
/// `.spec` never shows up on its own for built-in kinds.
pub fn compare(lhs: &Value, rhs: &Value, ty: TypeRef) -> Result<Comparison, WalkError> {
    let mut out = Comparison::default();
    walk_compare(Some(lhs), Some(rhs), ty, true, &mut Vec::new(), &mut out)?;
    Ok(out)
}

fn leaf(l: Option<&Value>, r: Option<&Value>, path: &[PathElement], out: &mut Comparison) {
    match (l, r) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(a), Some(b)) if !value::equal(a, b) => out.modified.insert(path),
        _ => {}
    }
}

fn walk_compare(
    l: Option<&Value>,
    r: Option<&Value>,
    ty: TypeRef,
    implicit: bool,
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) -> Result<(), WalkError> {
    let l = l.filter(|v| !v.is_null());
    let r = r.filter(|v| !v.is_null());
    if l.is_none() && r.is_none() {
        return Ok(());
    }
    match node(ty, &[l, r]) {
        Node::Leaf => {
            leaf(l, r, path, out);
            return Ok(());
        }
        Node::Object(t) => {
            let empty =
                |x: Option<&Value>| x.and_then(Value::as_object).is_none_or(serde_json::Map::is_empty);
            if empty(l) && empty(r) {
                leaf(l, r, path, out);
                return Ok(());
            }
            let lm = l.and_then(Value::as_object);
            let rm = r.and_then(Value::as_object);
            let mut keys: Vec<&String> = lm.into_iter().chain(rm).flat_map(|m| m.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (ft, declared) = t.field(k);
                let always_there = declared && (matches!(ft.shape(), Shape::Struct) || t.requires(k));
                path.push(PathElement::Field(k.clone()));
                walk_compare(
                    lm.and_then(|m| m.get(k)),
                    rm.and_then(|m| m.get(k)),
                    ft,
                    always_there,
                    path,
                    out,
                )?;
                path.pop();
            }
        }
        Node::List(kind, items) => {
            let empty = |x: Option<&Value>| x.and_then(Value::as_array).is_none_or(Vec::is_empty);
            if empty(l) && empty(r) {
                leaf(l, r, path, out);
                return Ok(());
            }
            let ll = l.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let rl = r.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let lhs: std::collections::BTreeMap<PathElement, &Value> =
                index_list(&kind, items, ll, path, false)?.into_iter().collect();
            let rhs: std::collections::BTreeMap<PathElement, &Value> =
                index_list(&kind, items, rl, path, false)?.into_iter().collect();
            let mut pes: Vec<&PathElement> = lhs.keys().chain(rhs.keys()).collect();
            pes.sort();
            pes.dedup();
            for pe in pes {
                path.push(pe.clone());
                walk_compare(lhs.get(pe).copied(), rhs.get(pe).copied(), items, false, path, out)?;
                path.pop();
            }
        }
    }
    if !implicit {
        match (l, r) {
            (None, _) => out.added.insert(path),
            (_, None) => out.removed.insert(path),
            _ => {}
        }
    }
    Ok(())
}
