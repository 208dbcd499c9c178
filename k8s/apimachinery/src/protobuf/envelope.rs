//! The body kubectl sends: the magic `k8s\0`, then a `runtime.Unknown`
//! `{1: TypeMeta{1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding,
//! 4: contentType}` whose `raw` is the typed message.

use serde_json::{Map, Value};

use super::error::{Problem, ProtobufError};
use super::message::{Path, object};
use super::schema;
use super::wire::{Raw, Reader};

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8] = b"k8s\0";

/// The envelope's fields, last occurrence winning.
#[derive(Default)]
struct Unknown<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

fn string(field: &'static str, raw: Raw<'_>) -> Result<String, ProtobufError> {
    match raw {
        Raw::Len(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        other => Err(ProtobufError::Envelope {
            field,
            problem: Problem::WireType { got: other.wire().number(), want: "length-delimited" },
        }),
    }
}

fn parse(bytes: &[u8]) -> Result<Unknown<'_>, ProtobufError> {
    let body = bytes.strip_prefix(MAGIC).ok_or(ProtobufError::Magic)?;
    let mut out = Unknown::default();
    let mut r = Reader::new(body);
    let envelope = |problem| ProtobufError::Envelope { field: "runtime.Unknown", problem };
    while !r.is_empty() {
        let (n, raw) = r.field().map_err(envelope)?;
        match n {
            1 => {
                let Raw::Len(type_meta) = raw else {
                    return Err(envelope(Problem::WireType {
                        got: raw.wire().number(),
                        want: "length-delimited",
                    }));
                };
                let mut t = Reader::new(type_meta);
                let type_meta_err = |problem| ProtobufError::Envelope { field: "typeMeta", problem };
                while !t.is_empty() {
                    match t.field().map_err(type_meta_err)? {
                        (1, raw) => out.api_version = string("typeMeta.apiVersion", raw)?,
                        (2, raw) => out.kind = string("typeMeta.kind", raw)?,
                        _ => {}
                    }
                }
            }
            2 => match raw {
                Raw::Len(b) => out.raw = b,
                other => {
                    return Err(ProtobufError::Envelope {
                        field: "raw",
                        problem: Problem::WireType { got: other.wire().number(), want: "length-delimited" },
                    });
                }
            },
            3 => out.content_encoding = string("contentEncoding", raw)?,
            4 => out.content_type = string("contentType", raw)?,
            _ => {}
        }
    }
    Ok(out)
}

/// Decodes a whole body, nested `depth` levels inside another object.
pub(crate) fn decode_nested(bytes: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    let unknown = parse(bytes)?;
    if unknown.kind.is_empty() {
        return Err(ProtobufError::MissingKind);
    }
    if !unknown.content_encoding.is_empty() {
        return Err(ProtobufError::ContentEncoding(unknown.content_encoding));
    }
    if !unknown.content_type.is_empty() && unknown.content_type != super::CONTENT_TYPE {
        return Err(ProtobufError::ContentType(unknown.content_type));
    }
    let message = schema::root(&unknown.api_version, &unknown.kind).ok_or_else(|| {
        ProtobufError::UnknownKind { api_version: unknown.api_version.clone(), kind: unknown.kind.clone() }
    })?;
    let mut path = Path::default();
    let fields = object(message, unknown.raw, &mut path, depth)?;
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(unknown.kind));
    out.insert("apiVersion".into(), Value::String(unknown.api_version));
    for (k, v) in fields {
        out.entry(k).or_insert(v);
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_errors() {
        assert_eq!(decode_nested(b"{\"kind\":\"Pod\"}", 0), Err(ProtobufError::Magic));
        assert_eq!(decode_nested(b"k8s\0", 0), Err(ProtobufError::MissingKind));
        assert_eq!(
            decode_nested(b"k8s\0\x0a\x0a\x0a\x02v1\x12\x04Fake", 0),
            Err(ProtobufError::UnknownKind { api_version: "v1".into(), kind: "Fake".into() })
        );
        assert_eq!(
            decode_nested(b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x1a\x04gzip", 0),
            Err(ProtobufError::ContentEncoding("gzip".into()))
        );
        assert_eq!(
            decode_nested(b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x22\x03xml", 0),
            Err(ProtobufError::ContentType("xml".into()))
        );
        assert_eq!(
            decode_nested(b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09Config", 0),
            Err(ProtobufError::Envelope {
                field: "runtime.Unknown",
                problem: Problem::Truncated { len: 15, left: 12 }
            })
        );
    }

    #[test]
    fn empty_raw_is_an_empty_object() {
        let v = decode_nested(b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09Namespace", 0);
        assert_eq!(
            v,
            Ok(
                serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {}, "spec": {}, "status": {}})
            )
        );
    }
}
