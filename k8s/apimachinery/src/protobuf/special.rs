//! Types with their own protobuf and JSON forms: `resource.Quantity`,
//! `intstr.IntOrString`, `metav1.Time`, `metav1.MicroTime`,
//! `metav1.Duration`, and the raw JSON holders `runtime.RawExtension` and
//! `metav1.FieldsV1`. Each turns the bytes of its message into the JSON
//! upstream's `MarshalJSON` writes.

use serde_json::Value;

use super::error::Problem;
use super::wire::{Raw, Reader};
use crate::timestamp::GO_ZERO_TIME;

/// The fields of a small message, last occurrence winning as in proto2.
fn fields(bytes: &[u8]) -> Result<Vec<(u32, Raw<'_>)>, Problem> {
    let mut r = Reader::new(bytes);
    let mut out: Vec<(u32, Raw<'_>)> = Vec::new();
    while !r.is_empty() {
        let (n, raw) = r.field()?;
        out.retain(|(m, _)| *m != n);
        out.push((n, raw));
    }
    Ok(out)
}

fn get<'a>(fields: &[(u32, Raw<'a>)], n: u32) -> Option<Raw<'a>> {
    fields.iter().find(|(m, _)| *m == n).map(|(_, r)| *r)
}

fn varint(raw: Option<Raw<'_>>) -> Result<u64, Problem> {
    match raw {
        None => Ok(0),
        Some(Raw::Varint(v)) => Ok(v),
        Some(other) => Err(Problem::WireType { got: other.wire().number(), want: "varint" }),
    }
}

fn bytes<'a>(raw: Option<Raw<'a>>) -> Result<Option<&'a [u8]>, Problem> {
    match raw {
        None => Ok(None),
        Some(Raw::Len(b)) => Ok(Some(b)),
        Some(other) => Err(Problem::WireType { got: other.wire().number(), want: "length-delimited" }),
    }
}

/// The low 32 bits of a varint as Go's `int32(v)` takes them.
pub(crate) fn low_i32(v: u64) -> i32 {
    let b = v.to_le_bytes();
    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// `{1: string}`; the string is kept as sent (clients send canonical form).
pub(crate) fn quantity(msg: &[u8]) -> Result<Value, Problem> {
    let f = fields(msg)?;
    match bytes(get(&f, 1))? {
        None => Ok(Value::String("0".into())),
        Some([]) => Err(Problem::EmptyQuantity),
        Some(s) => Ok(Value::String(String::from_utf8_lossy(s).into_owned())),
    }
}

/// `{1: int64 type, 2: int32 intVal, 3: string strVal}`.
pub(crate) fn int_or_string(msg: &[u8]) -> Result<Value, Problem> {
    let f = fields(msg)?;
    let kind = varint(get(&f, 1))?.cast_signed();
    match kind {
        0 => Ok(Value::from(low_i32(varint(get(&f, 2))?))),
        1 => Ok(Value::String(String::from_utf8_lossy(bytes(get(&f, 3))?.unwrap_or_default()).into_owned())),
        other => Err(Problem::IntOrStringType(other)),
    }
}

/// A `Timestamp{1: seconds, 2: nanos}` as Go's `time.Unix(s, ns)` reads it:
/// `None` for empty bytes (the zero time), else normalized (seconds, nanos).
fn timestamp(msg: &[u8], micro: bool) -> Result<Option<(i64, u32)>, Problem> {
    if msg.is_empty() {
        return Ok(None);
    }
    let f = fields(msg)?;
    let seconds = varint(get(&f, 1))?.cast_signed();
    let mut nanos = i64::from(low_i32(varint(get(&f, 2))?));
    if micro {
        nanos -= nanos % 1000;
    }
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    let secs = i64::try_from(total.div_euclid(1_000_000_000)).map_err(|_| Problem::TimeRange(seconds))?;
    let frac = u32::try_from(total.rem_euclid(1_000_000_000)).map_err(|_| Problem::TimeRange(seconds))?;
    Ok(Some((secs, frac)))
}

/// `metav1.Time`: `2026-11-25T20:40:28Z`, `null` for the zero time.
pub(crate) fn time(msg: &[u8]) -> Result<Value, Problem> {
    match timestamp(msg, false)? {
        None => Ok(Value::Null),
        Some((GO_ZERO_TIME, 0)) => Ok(Value::Null),
        Some((s, _)) => Ok(Value::String(crate::timestamp::format_rfc3339(in_range(s)?))),
    }
}

/// `metav1.MicroTime`: `2026-11-25T20:40:28.123456Z`, `null` for the zero time.
pub(crate) fn micro_time(msg: &[u8]) -> Result<Value, Problem> {
    match timestamp(msg, true)? {
        None => Ok(Value::Null),
        Some((GO_ZERO_TIME, 0)) => Ok(Value::Null),
        Some((s, ns)) => Ok(Value::String(crate::timestamp::format_rfc3339_micros(in_range(s)?, ns / 1000))),
    }
}

/// Seconds Go can write as RFC 3339 (years 0000 to 9999).
const FORMATTABLE: std::ops::RangeInclusive<i64> = -62_167_219_200..=253_402_300_799;

fn in_range(secs: i64) -> Result<i64, Problem> {
    if FORMATTABLE.contains(&secs) { Ok(secs) } else { Err(Problem::TimeRange(secs)) }
}

/// `metav1.Duration{1: int64 nanoseconds}` as Go's `time.Duration.String`.
#[allow(dead_code, reason = "see Ty::Duration")]
pub(crate) fn duration(msg: &[u8]) -> Result<Value, Problem> {
    let f = fields(msg)?;
    Ok(Value::String(crate::gofmt::duration(varint(get(&f, 1))?.cast_signed())))
}

/// Standard base64 with padding, as Go's `encoding/json` writes `[]byte`.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[usize::try_from(n >> (18 - 6 * i) & 63).unwrap_or(0)]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `{1: bytes raw}` holding JSON, or a nested protobuf object (`k8s\0`).
/// A missing `raw` is `null`, as upstream's `MarshalJSON` writes it.
pub(crate) fn raw_json(msg: &[u8], depth: usize) -> Result<Value, Problem> {
    let f = fields(msg)?;
    match bytes(get(&f, 1))? {
        None => Ok(Value::Null),
        Some([]) => Err(Problem::EmptyRaw),
        Some(raw) if raw.starts_with(super::envelope::MAGIC) => {
            super::envelope::decode_nested(raw, depth).map_err(|e| Problem::Embedded(Box::new(e)))
        }
        Some(raw) => serde_json::from_slice(raw).map_err(|e| Problem::RawJson(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64, nanos: i32) -> Vec<u8> {
        let mut out = Vec::new();
        for (tag, v) in [(0x08u8, seconds.cast_unsigned()), (0x10, i64::from(nanos).cast_unsigned())] {
            out.push(tag);
            let mut v = v;
            while v >= 0x80 {
                out.push(u8::try_from(v & 0x7f).expect("7 bits") | 0x80);
                v >>= 7;
            }
            out.push(u8::try_from(v).expect("7 bits"));
        }
        out
    }

    #[test]
    fn times_format_like_upstream() {
        assert_eq!(time(&ts(1_795_639_228, 0)), Ok(Value::from("2026-11-25T20:40:28Z")));
        assert_eq!(time(&ts(1_795_639_228, 999_999_999)), Ok(Value::from("2026-11-25T20:40:28Z")));
        assert_eq!(time(&[]), Ok(Value::Null));
        assert_eq!(time(&ts(0, 0)), Ok(Value::from("1970-01-01T00:00:00Z")));
        assert_eq!(time(&ts(GO_ZERO_TIME, 0)), Ok(Value::Null));
        assert_eq!(time(&ts(951_782_400, 0)), Ok(Value::from("2000-02-29T00:00:00Z")));
        assert_eq!(
            micro_time(&ts(1_795_639_228, 123_456_789)),
            Ok(Value::from("2026-11-25T20:40:28.123456Z"))
        );
        assert_eq!(micro_time(&ts(1, -1_000)), Ok(Value::from("1970-01-01T00:00:00.999999Z")));
        assert_eq!(time(&ts(i64::MAX, 0)), Err(Problem::TimeRange(i64::MAX)));
        assert!(time(&ts(-62_167_219_201, 0)).is_err(), "year -1");
    }

    #[test]
    fn durations_format_like_go() {
        for (nanos, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (1_500_000, "1.5ms"),
            (1_000_000_000, "1s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (-2_000_000_000, "-2s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(crate::gofmt::duration(nanos), want, "{nanos}");
        }
    }

    #[test]
    fn base64_like_go() {
        for (input, want) in [
            (&b""[..], ""),
            (b"v", "dg=="),
            (b"ab", "YWI="),
            (b"abc", "YWJj"),
            (&[0, 1, 0xff], "AAH/"),
            (&[0xfb, 0xff], "+/8="),
        ] {
            assert_eq!(base64(input), want);
        }
    }

    #[test]
    fn duration_message() {
        assert_eq!(duration(&[0x08, 0x80, 0x94, 0xeb, 0xdc, 0x03]), Ok(Value::from("1s")));
        assert_eq!(duration(&[]), Ok(Value::from("0s")));
    }

    #[test]
    fn int_or_string_and_quantity() {
        assert_eq!(int_or_string(&[0x10, 0x03]), Ok(Value::from(3)));
        assert_eq!(int_or_string(&[]), Ok(Value::from(0)));
        assert_eq!(int_or_string(&[0x08, 0x01, 0x1a, 0x03, b'2', b'5', b'%']), Ok(Value::from("25%")));
        assert_eq!(int_or_string(&[0x08, 0x02]), Err(Problem::IntOrStringType(2)));
        assert_eq!(int_or_string(&[0x10, 0xff, 0xff, 0xff, 0xff, 0x0f]), Ok(Value::from(-1)));
        assert_eq!(quantity(&[0x0a, 0x03, b'1', b'0', b'0']), Ok(Value::from("100")));
        assert_eq!(quantity(&[]), Ok(Value::from("0")));
        assert_eq!(quantity(&[0x0a, 0x00]), Err(Problem::EmptyQuantity));
    }

    #[test]
    fn raw_json_values() {
        assert_eq!(
            raw_json(&[0x0a, 0x07, b'{', b'"', b'a', b'"', b':', b'1', b'}'], 0),
            Ok(serde_json::json!({"a": 1}))
        );
        assert_eq!(raw_json(&[], 0), Ok(Value::Null));
        assert_eq!(raw_json(&[0x0a, 0x00], 0), Err(Problem::EmptyRaw));
        assert!(matches!(raw_json(&[0x0a, 0x01, b'{'], 0), Err(Problem::RawJson(_))));
    }
}
