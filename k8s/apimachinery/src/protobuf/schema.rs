//! The shape of the generated schema table (`table.rs`) and lookups into it.
//!
//! One [`Message`] per protobuf message, its fields in Go declaration order
//! (the order upstream's JSON encoder writes them). Each field carries what
//! Go's `encoding/json` needs to reproduce upstream's JSON: the JSON name,
//! `omitempty`/`omitzero`, whether the Go field is a pointer (proto2
//! presence: a present zero is written, an absent pointer is omitted or
//! `null`), and whether an embedded struct is inlined.

use super::table::{MESSAGES, ROOTS};

/// The value type of a field (of each element for repeated fields, of each
/// value for maps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Str,
    Bytes,
    Bool,
    I32,
    I64,
    /// A message: an index into `MESSAGES`.
    Msg(u16),
    /// `resource.Quantity`: `{1: string}`, JSON string.
    Quantity,
    /// `intstr.IntOrString`: `{1: type, 2: intVal, 3: strVal}`.
    IntOrString,
    /// `metav1.Time`: a Timestamp, JSON RFC 3339 in seconds.
    Time,
    /// `metav1.MicroTime`: a Timestamp, JSON RFC 3339 in microseconds.
    MicroTime,
    /// `metav1.Duration`: `{1: int64 nanoseconds}`, JSON Go duration.
    #[allow(
        dead_code,
        reason = "no kind in the table has a Duration field; regenerating with more kinds may add one"
    )]
    Duration,
    /// `runtime.RawExtension`, `metav1.FieldsV1`: `{1: bytes}` holding JSON.
    RawJson,
}

/// How many values a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Single,
    Repeated,
    /// `map<string, ty>`, JSON object.
    Map,
    /// `map<string, {1: repeated ty}>` (`ExtraValue`), JSON object of arrays.
    MapOfLists,
}

/// `json:",omitempty"`: a zero scalar, empty list or map, or nil pointer is left out.
pub(crate) const OMITEMPTY: u8 = 1;
/// `json:",omitzero"`: a zero value (a zero `Time` too) is left out.
pub(crate) const OMITZERO: u8 = 2;
/// An embedded struct with `json:",inline"`: its fields join the parent's.
pub(crate) const INLINE: u8 = 4;
/// The Go field is a pointer: presence on the wire decides presence in JSON.
pub(crate) const POINTER: u8 = 8;

#[derive(Debug)]
pub(crate) struct Field {
    pub number: u16,
    pub json: &'static str,
    pub ty: Ty,
    pub shape: Shape,
    pub flags: u8,
}

impl Field {
    pub(crate) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// One message; `table::NAMES` (tests only) holds its Go package and type,
/// `core/v1.ConfigMap`, at the same index.
#[derive(Debug)]
pub(crate) struct Message {
    pub fields: &'static [Field],
}

impl Message {
    pub(crate) fn field(&self, number: u32) -> Option<(usize, &'static Field)> {
        self.fields.iter().enumerate().find(|(_, f)| u32::from(f.number) == number)
    }
}

/// The message with this index; the table is generated so that every
/// `Ty::Msg` index exists (a test checks).
pub(crate) fn message(id: u16) -> Option<&'static Message> {
    MESSAGES.get(usize::from(id))
}

/// Kinds registered in every group version, so any apiVersion names them.
const OPTIONS_KINDS: &[&str] = &["DeleteOptions"];

/// The message for a top-level object of this apiVersion and kind.
pub(crate) fn root(api_version: &str, kind: &str) -> Option<&'static Message> {
    let found = ROOTS.iter().find(|(v, k, _)| *v == api_version && *k == kind).or_else(|| {
        OPTIONS_KINDS
            .contains(&kind)
            .then(|| ROOTS.iter().find(|(v, k, _)| *v == "meta.k8s.io/v1" && *k == kind))
            .flatten()
    });
    found.and_then(|&(_, _, id)| message(id))
}

/// Every (apiVersion, kind) that [`root`] knows, in table order.
pub(crate) fn kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
    ROOTS.iter().map(|&(v, k, _)| (v, k))
}

#[cfg(test)]
mod tests {
    use super::super::table::NAMES;
    use super::*;

    fn name(m: Option<&'static Message>) -> Option<&'static str> {
        let m = m?;
        let i = MESSAGES.iter().position(|x| std::ptr::eq(x, m))?;
        Some(NAMES[i])
    }

    #[test]
    fn every_message_reference_resolves() {
        assert_eq!(MESSAGES.len(), NAMES.len());
        for (m, name) in MESSAGES.iter().zip(NAMES) {
            let mut numbers = std::collections::BTreeSet::new();
            for f in m.fields {
                assert!(numbers.insert(f.number), "{name} field {} twice", f.number);
                assert!(f.number > 0, "{name}");
                if let Ty::Msg(id) = f.ty {
                    assert!(message(id).is_some(), "{name}.{} -> {id}", f.json);
                }
            }
        }
    }

    #[test]
    fn every_builtin_resource_but_crds_has_a_schema() {
        for r in crate::resources::builtin() {
            if r.group == "apiextensions.k8s.io" {
                continue;
            }
            assert!(root(&r.api_version(), &r.kind).is_some(), "{} {}", r.api_version(), r.kind);
        }
    }

    #[test]
    fn delete_options_under_any_group_version() {
        assert_eq!(name(root("v1", "DeleteOptions")), Some("meta/v1.DeleteOptions"));
        assert_eq!(name(root("apps/v1", "DeleteOptions")), Some("meta/v1.DeleteOptions"));
        assert_eq!(name(root("v1", "ConfigMap")), Some("core/v1.ConfigMap"));
        assert!(root("example.com/v1", "Widget").is_none());
        assert!(root("v1", "Deployment").is_none());
    }
}
