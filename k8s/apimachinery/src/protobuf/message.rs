//! Decoding one message of the schema into the JSON upstream's
//! `encoding/json` writes for the Go struct that protobuf fills.
//!
//! Rules, per Go field: a pointer is `null` or left out (`omitempty`) when
//! absent and written when present, zero or not; a non-pointer scalar is
//! always there (gogo writes it even when zero) and `omitempty` drops its
//! zero; a non-pointer struct is always written (`omitempty` does not apply
//! to structs), `{}` when absent; an absent list or map is `null` unless
//! `omitempty`. Repeated fields are read packed or unpacked; a singular
//! message that occurs twice is merged, a scalar's last occurrence wins.

use serde_json::{Map, Value};

use super::error::{Problem, ProtobufError};
use super::schema::{self, Field, INLINE, Message, OMITEMPTY, OMITZERO, POINTER, Shape, Ty};
use super::special;
use super::wire::{Raw, Reader, Wire};

/// How deep messages may nest (the deepest built-in kind needs about 15).
pub(crate) const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone)]
enum Seg {
    Field(&'static str),
    /// An inlined struct: no segment of its own in JSON.
    Inline,
    Index(usize),
    Key(String),
}

/// The JSON path of the value being decoded, for error messages.
#[derive(Debug, Default)]
pub(crate) struct Path(Vec<Seg>);

impl Path {
    fn error(&self, problem: Problem) -> ProtobufError {
        let mut path = String::new();
        for seg in &self.0 {
            match seg {
                Seg::Field(name) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(name);
                }
                Seg::Inline => {}
                Seg::Index(i) => path.push_str(&format!("[{i}]")),
                Seg::Key(k) => path.push_str(&format!("[{k}]")),
            }
        }
        if path.is_empty() {
            path.push_str("object");
        }
        ProtobufError::Field { path, problem }
    }

    fn with<T>(
        &mut self,
        seg: Seg,
        f: impl FnOnce(&mut Self) -> Result<T, ProtobufError>,
    ) -> Result<T, ProtobufError> {
        self.0.push(seg);
        let out = f(self);
        self.0.pop();
        out
    }
}

fn segment(field: &Field) -> Seg {
    if field.has(INLINE) { Seg::Inline } else { Seg::Field(field.json) }
}

/// What one field collected while reading the message.
enum Slot<'a> {
    Absent,
    /// A singular scalar or special type: the last occurrence.
    Last(Raw<'a>),
    /// A singular message: every occurrence, merged in order.
    Parts(u16, Vec<&'a [u8]>),
    List(Vec<Value>),
    Map(Map<String, Value>),
}

/// Decodes `bytes` as `msg` into its JSON object's members.
pub(crate) fn object(
    msg: &'static Message,
    bytes: &[u8],
    path: &mut Path,
    depth: usize,
) -> Result<Map<String, Value>, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(path.error(Problem::TooDeep(MAX_DEPTH)));
    }
    let mut slots: Vec<Slot<'_>> = msg.fields.iter().map(|_| Slot::Absent).collect();
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let (number, raw) = r.field().map_err(|p| path.error(p))?;
        let Some((i, field)) = msg.field(number) else {
            continue; // unknown fields are skipped, as upstream does
        };
        let slot = &mut slots[i];
        path.with(segment(field), |path| collect(field, slot, raw, path, depth))?;
    }
    let mut out = Map::new();
    let mut inlined = Vec::new();
    for (field, slot) in msg.fields.iter().zip(slots) {
        let value = path.with(segment(field), |path| finish(field, slot, path, depth))?;
        match value {
            Some(Value::Object(members)) if field.has(INLINE) => inlined.push(members),
            Some(v) => {
                out.insert(field.json.to_string(), v);
            }
            None => {}
        }
    }
    // Go gives the outer struct's own fields precedence over inlined ones.
    for members in inlined {
        for (k, v) in members {
            out.entry(k).or_insert(v);
        }
    }
    Ok(out)
}

fn collect<'a>(
    field: &Field,
    slot: &mut Slot<'a>,
    raw: Raw<'a>,
    path: &mut Path,
    depth: usize,
) -> Result<(), ProtobufError> {
    match field.shape {
        Shape::Single => match (field.ty, raw) {
            (Ty::Msg(id), Raw::Len(b)) => match slot {
                Slot::Parts(_, parts) => parts.push(b),
                _ => *slot = Slot::Parts(id, vec![b]),
            },
            (ty, raw) => {
                check_wire(ty, raw).map_err(|p| path.error(p))?;
                *slot = Slot::Last(raw);
            }
        },
        Shape::Repeated => {
            if !matches!(slot, Slot::List(_)) {
                *slot = Slot::List(Vec::new());
            }
            let Slot::List(list) = slot else {
                return Ok(());
            };
            match (packable(field.ty), raw) {
                (true, Raw::Len(b)) => {
                    let mut r = Reader::new(b);
                    while !r.is_empty() {
                        let item = Raw::Varint(r.varint().map_err(|p| path.error(p))?);
                        let index = list.len();
                        list.push(path.with(Seg::Index(index), |path| value(field.ty, item, path, depth))?);
                    }
                }
                _ => {
                    let index = list.len();
                    list.push(path.with(Seg::Index(index), |path| value(field.ty, raw, path, depth))?);
                }
            }
        }
        Shape::Map | Shape::MapOfLists => {
            let Raw::Len(entry) = raw else {
                return Err(path.error(wire_problem(raw, "length-delimited")));
            };
            let (key, val) = map_entry(entry).map_err(|p| path.error(p))?;
            let v = path.with(Seg::Key(key.clone()), |path| match (field.shape, val) {
                (Shape::MapOfLists, Some(Raw::Len(b))) => list_wrapper(field.ty, b, path, depth),
                (Shape::MapOfLists, None) => Ok(Value::Null),
                (_, Some(raw)) => value(field.ty, raw, path, depth),
                (_, None) => zero(field.ty, path, depth)
                    .map(|v| if field.ty == Ty::Bytes { Value::from("") } else { v }),
            })?;
            match slot {
                Slot::Map(map) => {
                    map.insert(key, v);
                }
                _ => *slot = Slot::Map(Map::from_iter([(key, v)])),
            }
        }
    }
    Ok(())
}

/// `{1: key, 2: value}` of a map entry; a missing key is `""`.
fn map_entry(entry: &[u8]) -> Result<(String, Option<Raw<'_>>), Problem> {
    let mut r = Reader::new(entry);
    let (mut key, mut val) = (String::new(), None);
    while !r.is_empty() {
        match r.field()? {
            (1, Raw::Len(b)) => key = String::from_utf8_lossy(b).into_owned(),
            (1, other) => return Err(wire_problem(other, "length-delimited")),
            (2, raw) => val = Some(raw),
            _ => {}
        }
    }
    Ok((key, val))
}

/// `{1: repeated ty items}` (`ExtraValue`) as a JSON array.
fn list_wrapper(ty: Ty, bytes: &[u8], path: &mut Path, depth: usize) -> Result<Value, ProtobufError> {
    let mut r = Reader::new(bytes);
    let mut items = Vec::new();
    while !r.is_empty() {
        let (n, raw) = r.field().map_err(|p| path.error(p))?;
        if n == 1 {
            let index = items.len();
            items.push(path.with(Seg::Index(index), |path| value(ty, raw, path, depth))?);
        }
    }
    Ok(Value::Array(items))
}

/// The JSON for a field once the whole message is read, `None` to leave it out.
fn finish(
    field: &Field,
    slot: Slot<'_>,
    path: &mut Path,
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    let omit_empty = field.has(OMITEMPTY) || field.has(OMITZERO);
    let present = match slot {
        Slot::Absent => None,
        Slot::Last(raw) => Some(value(field.ty, raw, path, depth)?),
        Slot::Parts(id, parts) => match parts.as_slice() {
            [one] => Some(message_value(id, one, path, depth)?),
            _ => Some(message_value(id, &parts.concat(), path, depth)?),
        },
        Slot::List(list) => return Ok(Some(Value::Array(list))),
        Slot::Map(map) => return Ok(Some(Value::Object(map))),
    };
    if field.shape != Shape::Single {
        // Absent list or map: Go's nil slice or map.
        return Ok((!omit_empty).then_some(Value::Null));
    }
    if field.has(POINTER) {
        return Ok(match present {
            Some(v) => Some(v),
            None => (!omit_empty).then_some(Value::Null),
        });
    }
    let v = match present {
        Some(v) => v,
        None => zero(field.ty, path, depth)?,
    };
    if field.has(OMITEMPTY) && is_empty_scalar(field.ty, &v) {
        return Ok(None);
    }
    if field.has(OMITZERO) && (is_empty_scalar(field.ty, &v) || v.is_null()) {
        return Ok(None);
    }
    Ok(Some(v))
}

/// Whether `omitempty` drops this value: Go's zero scalars, never structs.
fn is_empty_scalar(ty: Ty, v: &Value) -> bool {
    match ty {
        Ty::Str | Ty::Bytes => v.is_null() || v.as_str() == Some(""),
        Ty::Bool => v.as_bool() == Some(false),
        Ty::I32 | Ty::I64 => v.as_i64() == Some(0),
        _ => false,
    }
}

/// The JSON of a Go zero value of this type.
fn zero(ty: Ty, path: &mut Path, depth: usize) -> Result<Value, ProtobufError> {
    Ok(match ty {
        Ty::Str => Value::from(""),
        Ty::Bytes | Ty::Time | Ty::MicroTime | Ty::RawJson => Value::Null,
        Ty::Bool => Value::Bool(false),
        Ty::I32 | Ty::I64 | Ty::IntOrString => Value::from(0),
        Ty::Quantity => Value::from("0"),
        Ty::Duration => Value::from("0s"),
        Ty::Msg(id) => message_value(id, &[], path, depth)?,
    })
}

fn message_value(id: u16, bytes: &[u8], path: &mut Path, depth: usize) -> Result<Value, ProtobufError> {
    let msg = schema::message(id).ok_or_else(|| path.error(Problem::MissingMessage(id)))?;
    Ok(Value::Object(object(msg, bytes, path, depth + 1)?))
}

fn wire_problem(raw: Raw<'_>, want: &'static str) -> Problem {
    Problem::WireType { got: raw.wire().number(), want }
}

/// The wire type a value of `ty` must arrive in.
fn wire_of(ty: Ty) -> Wire {
    match ty {
        Ty::Bool | Ty::I32 | Ty::I64 => Wire::Varint,
        _ => Wire::Len,
    }
}

fn check_wire(ty: Ty, raw: Raw<'_>) -> Result<(), Problem> {
    let want = wire_of(ty);
    if raw.wire() == want {
        return Ok(());
    }
    let name = match want {
        Wire::Varint => "varint",
        Wire::Fixed64 => "fixed64",
        Wire::Fixed32 => "fixed32",
        Wire::Len => "length-delimited",
    };
    Err(wire_problem(raw, name))
}

/// Whether a repeated field of `ty` may arrive packed (varints only: the
/// schema has no fixed-width numbers).
fn packable(ty: Ty) -> bool {
    wire_of(ty) == Wire::Varint
}

/// One value of type `ty`.
fn value(ty: Ty, raw: Raw<'_>, path: &mut Path, depth: usize) -> Result<Value, ProtobufError> {
    check_wire(ty, raw).map_err(|p| path.error(p))?;
    let special = |r: Result<Value, Problem>, path: &mut Path| r.map_err(|p| path.error(p));
    Ok(match (ty, raw) {
        (Ty::Str, Raw::Len(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        (Ty::Bytes, Raw::Len(b)) => Value::String(special::base64(b)),
        (Ty::Bool, Raw::Varint(v)) => Value::Bool(v != 0),
        (Ty::I32, Raw::Varint(v)) => Value::from(special::low_i32(v)),
        (Ty::I64, Raw::Varint(v)) => Value::from(v.cast_signed()),
        (Ty::Msg(id), Raw::Len(b)) => message_value(id, b, path, depth)?,
        (Ty::Quantity, Raw::Len(b)) => special(special::quantity(b), path)?,
        (Ty::IntOrString, Raw::Len(b)) => special(special::int_or_string(b), path)?,
        (Ty::Time, Raw::Len(b)) => special(special::time(b), path)?,
        (Ty::MicroTime, Raw::Len(b)) => special(special::micro_time(b), path)?,
        (Ty::Duration, Raw::Len(b)) => special(special::duration(b), path)?,
        (Ty::RawJson, Raw::Len(b)) => special(special::raw_json(b, depth + 1), path)?,
        (_, raw) => return Err(path.error(wire_problem(raw, "another wire type"))),
    })
}
