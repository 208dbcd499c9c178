//! SPDY/3 frames (spec §2.2, §2.6) and the byte codec.
//!
//! Control frame: `1 | version(15) | type(16) | flags(8) | length(24) | data`.
//! Data frame: `0 | stream-id(31) | flags(8) | length(24) | data`.
//! SYN_STREAM, SYN_REPLY and HEADERS carry a compressed header block, so the
//! [`Encoder`] and [`Decoder`] each hold one direction's zlib context and must
//! see every frame of their direction, in order.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

use super::headers::{self, Cursor, HeaderCompressor, HeaderDecompressor, Headers};
use super::{Result, SpdyError};

pub const VERSION: u16 = 3;
/// The largest payload a frame can carry (24-bit length).
pub const MAX_PAYLOAD: usize = 0xff_ffff;
/// The largest stream id (31 bits).
pub const MAX_STREAM_ID: u32 = 0x7fff_ffff;
const HEAD_LEN: usize = 8;

const FLAG_FIN: u8 = 0x01;
const FLAG_UNIDIRECTIONAL: u8 = 0x02;
const FLAG_CLEAR_SETTINGS: u8 = 0x01;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;
const KNOWN: [u16; 8] = [SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE];

/// A RST_STREAM status code (spec §2.6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RstStatus(pub u32);

impl RstStatus {
    pub const PROTOCOL_ERROR: RstStatus = RstStatus(1);
    pub const INVALID_STREAM: RstStatus = RstStatus(2);
    pub const REFUSED_STREAM: RstStatus = RstStatus(3);
    pub const UNSUPPORTED_VERSION: RstStatus = RstStatus(4);
    pub const CANCEL: RstStatus = RstStatus(5);
    pub const INTERNAL_ERROR: RstStatus = RstStatus(6);
    pub const FLOW_CONTROL_ERROR: RstStatus = RstStatus(7);
    pub const STREAM_IN_USE: RstStatus = RstStatus(8);
    pub const STREAM_ALREADY_CLOSED: RstStatus = RstStatus(9);
    pub const INVALID_CREDENTIALS: RstStatus = RstStatus(10);
    pub const FRAME_TOO_LARGE: RstStatus = RstStatus(11);
}

impl fmt::Display for RstStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            1 => "PROTOCOL_ERROR",
            2 => "INVALID_STREAM",
            3 => "REFUSED_STREAM",
            4 => "UNSUPPORTED_VERSION",
            5 => "CANCEL",
            6 => "INTERNAL_ERROR",
            7 => "FLOW_CONTROL_ERROR",
            8 => "STREAM_IN_USE",
            9 => "STREAM_ALREADY_CLOSED",
            10 => "INVALID_CREDENTIALS",
            11 => "FRAME_TOO_LARGE",
            n => return write!(f, "status {n}"),
        };
        f.write_str(name)
    }
}

/// A GOAWAY status code (spec §2.6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoAwayStatus(pub u32);

impl GoAwayStatus {
    pub const OK: GoAwayStatus = GoAwayStatus(0);
    pub const PROTOCOL_ERROR: GoAwayStatus = GoAwayStatus(1);
    pub const INTERNAL_ERROR: GoAwayStatus = GoAwayStatus(2);
}

/// One SETTINGS entry: flags, a 24-bit id, a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub flags: u8,
    pub id: u32,
    pub value: u32,
}

impl Setting {
    pub const INITIAL_WINDOW_SIZE: u32 = 7;
}

/// A frame, with its header block (if any) uncompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        /// 0 (highest) to 7.
        priority: u8,
        slot: u8,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: RstStatus,
    },
    Settings {
        clear: bool,
        settings: Vec<Setting>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: GoAwayStatus,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    /// Stream 0 is the session window (SPDY/3.1).
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
    /// A control frame of a type this module does not know (NOOP of SPDY/2,
    /// CREDENTIAL, …): read and ignored, as spdystream ignores them.
    Unknown {
        kind: u16,
        flags: u8,
        payload: Bytes,
    },
}

fn stream_id_ok(id: u32, zero_ok: bool) -> Result<u32> {
    if id > MAX_STREAM_ID || (id == 0 && !zero_ok) {
        return Err(SpdyError::protocol(format!("invalid stream id {id}")));
    }
    Ok(id)
}

/// Connection-level HTTP headers, which spdystream treats as a fatal error
/// in a header block (`host` only in SYN_STREAM).
const FORBIDDEN_HEADERS: [&str; 5] =
    ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "host"];

fn forbidden_headers(headers: &Headers, syn_stream: bool) -> Result<()> {
    let forbidden = if syn_stream { &FORBIDDEN_HEADERS[..] } else { &FORBIDDEN_HEADERS[..4] };
    match headers.iter().find(|(n, _)| forbidden.contains(n)) {
        Some((name, _)) => Err(SpdyError::protocol(format!("header {name} is not allowed in SPDY"))),
        None => Ok(()),
    }
}

fn flag(on: bool, bit: u8) -> u8 {
    if on { bit } else { 0 }
}

/// The write side of a connection's framing: owns the deflate context.
pub struct Encoder {
    headers: HeaderCompressor,
    /// Set when a header block went into the deflate stream but its frame
    /// was not produced: the peer's inflate context can no longer follow.
    broken: bool,
}

impl Encoder {
    pub fn new() -> Result<Encoder> {
        Ok(Encoder { headers: HeaderCompressor::new()?, broken: false })
    }

    /// Appends `frame` to `out`. Every check that can fail happens before the
    /// header block is compressed, so a refused frame leaves the context
    /// usable.
    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<()> {
        if self.broken {
            return Err(SpdyError::Compression("header context lost by an earlier error".into()));
        }
        let (kind, flags, fixed, headers): (u16, u8, Vec<u8>, Option<&Headers>) = match frame {
            Frame::Data { stream_id, fin, data } => {
                let id = stream_id_ok(*stream_id, false)?;
                let len = payload_len(data.len())?;
                out.extend_from_slice(&id.to_be_bytes());
                out.push(flag(*fin, FLAG_FIN));
                out.extend_from_slice(&len);
                out.extend_from_slice(data);
                return Ok(());
            }
            Frame::SynStream { stream_id, associated_to, priority, slot, fin, unidirectional, headers } => {
                if *priority > 7 {
                    return Err(SpdyError::protocol(format!("priority {priority} is not 0..=7")));
                }
                let mut fixed = stream_id_ok(*stream_id, false)?.to_be_bytes().to_vec();
                fixed.extend_from_slice(&stream_id_ok(*associated_to, true)?.to_be_bytes());
                fixed.push(priority << 5);
                fixed.push(*slot);
                forbidden_headers(headers, true)?;
                let flags = flag(*fin, FLAG_FIN) | flag(*unidirectional, FLAG_UNIDIRECTIONAL);
                (SYN_STREAM, flags, fixed, Some(headers))
            }
            Frame::SynReply { stream_id, fin, headers } => {
                forbidden_headers(headers, false)?;
                let fixed = stream_id_ok(*stream_id, false)?.to_be_bytes().to_vec();
                (SYN_REPLY, flag(*fin, FLAG_FIN), fixed, Some(headers))
            }
            Frame::Headers { stream_id, fin, headers } => {
                forbidden_headers(headers, false)?;
                let fixed = stream_id_ok(*stream_id, false)?.to_be_bytes().to_vec();
                (HEADERS, flag(*fin, FLAG_FIN), fixed, Some(headers))
            }
            Frame::RstStream { stream_id, status } => {
                if status.0 == 0 {
                    // spdystream fails the connection on it.
                    return Err(SpdyError::protocol("RST_STREAM status 0"));
                }
                let mut fixed = stream_id_ok(*stream_id, false)?.to_be_bytes().to_vec();
                fixed.extend_from_slice(&status.0.to_be_bytes());
                (RST_STREAM, 0, fixed, None)
            }
            Frame::Settings { clear, settings } => {
                let count = u32::try_from(settings.len())
                    .ok()
                    .filter(|_| settings.len() <= (MAX_PAYLOAD - 4) / 8)
                    .ok_or_else(|| SpdyError::protocol("too many settings"))?;
                let mut fixed = count.to_be_bytes().to_vec();
                for s in settings {
                    if s.id > 0xff_ffff {
                        return Err(SpdyError::protocol(format!("setting id {} is not 24-bit", s.id)));
                    }
                    fixed.extend_from_slice(&(u32::from(s.flags) << 24 | s.id).to_be_bytes());
                    fixed.extend_from_slice(&s.value.to_be_bytes());
                }
                (SETTINGS, flag(*clear, FLAG_CLEAR_SETTINGS), fixed, None)
            }
            Frame::Ping { id } => (PING, 0, id.to_be_bytes().to_vec(), None),
            Frame::GoAway { last_good_stream_id, status } => {
                let mut fixed = stream_id_ok(*last_good_stream_id, true)?.to_be_bytes().to_vec();
                fixed.extend_from_slice(&status.0.to_be_bytes());
                (GOAWAY, 0, fixed, None)
            }
            Frame::WindowUpdate { stream_id, delta } => {
                if *delta == 0 || *delta > 0x7fff_ffff {
                    return Err(SpdyError::protocol(format!("window delta {delta} is not 1..2^31")));
                }
                let mut fixed = stream_id_ok(*stream_id, true)?.to_be_bytes().to_vec();
                fixed.extend_from_slice(&delta.to_be_bytes());
                (WINDOW_UPDATE, 0, fixed, None)
            }
            Frame::Unknown { kind, flags, payload } => {
                if KNOWN.contains(kind) {
                    return Err(SpdyError::protocol(format!(
                        "control frame type {kind} is not an unknown one"
                    )));
                }
                (*kind, *flags, payload.to_vec(), None)
            }
        };
        let mut body = fixed;
        if let Some(h) = headers {
            let block = headers::encode_block(h)?;
            let start = body.len();
            self.headers.compress(&block, &mut body).inspect_err(|_| self.broken = true)?;
            if body.len() > MAX_PAYLOAD {
                // Cannot happen with MAX_SEND_BLOCK_LEN; the context moved on
                // anyway, so nothing more can be sent.
                self.broken = true;
                return Err(SpdyError::protocol(format!("header block of {} bytes", body.len() - start)));
            }
        }
        let len = payload_len(body.len())?;
        let [v0, v1] = VERSION.to_be_bytes();
        let [k0, k1] = kind.to_be_bytes();
        out.extend_from_slice(&[0x80 | v0, v1, k0, k1, flags]);
        out.extend_from_slice(&len);
        out.extend_from_slice(&body);
        Ok(())
    }
}

fn payload_len(len: usize) -> Result<[u8; 3]> {
    if len > MAX_PAYLOAD {
        return Err(SpdyError::protocol(format!("frame payload of {len} bytes exceeds 2^24-1")));
    }
    let [_, a, b, c] = u32::try_from(len).map_err(|_| SpdyError::protocol("frame too long"))?.to_be_bytes();
    Ok([a, b, c])
}

/// The read side of a connection's framing: owns the inflate context.
#[derive(Default)]
pub struct Decoder {
    headers: HeaderDecompressor,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// The total length (header included) of the frame at the front of
    /// `buf`, once its 8-byte header is in.
    pub fn frame_len(buf: &[u8]) -> Option<usize> {
        let h = buf.get(..HEAD_LEN)?;
        Some(HEAD_LEN + (usize::from(h[5]) << 16 | usize::from(h[6]) << 8 | usize::from(h[7])))
    }

    /// Takes the first whole frame off `buf`; `None` until one is in.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>> {
        let Some(len) = Decoder::frame_len(buf) else { return Ok(None) };
        if buf.len() < len {
            buf.reserve(len - buf.len());
            return Ok(None);
        }
        let mut raw = buf.split_to(len).freeze();
        let head: [u8; HEAD_LEN] = [raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]];
        raw.advance(HEAD_LEN);
        self.parse(head, raw).map(Some)
    }

    fn parse(&mut self, h: [u8; HEAD_LEN], payload: Bytes) -> Result<Frame> {
        let flags = h[4];
        if h[0] & 0x80 == 0 {
            let stream_id = stream_id_ok(u32::from_be_bytes([h[0], h[1], h[2], h[3]]), false)?;
            return Ok(Frame::Data { stream_id, fin: flags & FLAG_FIN != 0, data: payload });
        }
        let version = u16::from_be_bytes([h[0] & 0x7f, h[1]]);
        let kind = u16::from_be_bytes([h[2], h[3]]);
        if version != VERSION {
            return Err(SpdyError::protocol(format!("control frame of SPDY version {version}")));
        }
        let fin = flags & FLAG_FIN != 0;
        let exact = |n: usize| -> Result<Cursor<'_>> {
            if payload.len() != n {
                return Err(SpdyError::protocol(format!("control frame {kind} of length {}", payload.len())));
            }
            Ok(Cursor(&payload))
        };
        let at_least = |n: usize| -> Result<Cursor<'_>> {
            if payload.len() < n {
                return Err(SpdyError::protocol(format!("control frame {kind} of length {}", payload.len())));
            }
            Ok(Cursor(&payload))
        };
        let frame = match kind {
            SYN_STREAM => {
                let mut c = at_least(10)?;
                let stream_id = stream_id_ok(c.u32()? & MAX_STREAM_ID, false)?;
                let associated_to = c.u32()? & MAX_STREAM_ID;
                let ps = c.take(2)?;
                Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority: ps[0] >> 5,
                    slot: ps[1],
                    fin,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    headers: self.block(c.0)?,
                }
            }
            SYN_REPLY | HEADERS => {
                let mut c = at_least(4)?;
                let stream_id = stream_id_ok(c.u32()? & MAX_STREAM_ID, false)?;
                let headers = self.block(c.0)?;
                if kind == SYN_REPLY {
                    Frame::SynReply { stream_id, fin, headers }
                } else {
                    Frame::Headers { stream_id, fin, headers }
                }
            }
            RST_STREAM => {
                let mut c = exact(8)?;
                let stream_id = stream_id_ok(c.u32()? & MAX_STREAM_ID, false)?;
                Frame::RstStream { stream_id, status: RstStatus(c.u32()?) }
            }
            SETTINGS => {
                let mut c = at_least(4)?;
                let count = usize::try_from(c.u32()?).unwrap_or(usize::MAX);
                if count.checked_mul(8) != Some(c.0.len()) {
                    return Err(SpdyError::protocol(format!(
                        "SETTINGS of {count} entries in {} bytes",
                        c.0.len()
                    )));
                }
                let mut settings = Vec::with_capacity(count);
                for _ in 0..count {
                    let [f, a, b, d] = c.u32()?.to_be_bytes();
                    settings.push(Setting {
                        flags: f,
                        id: u32::from_be_bytes([0, a, b, d]),
                        value: c.u32()?,
                    });
                }
                Frame::Settings { clear: flags & FLAG_CLEAR_SETTINGS != 0, settings }
            }
            PING => Frame::Ping { id: exact(4)?.u32()? },
            GOAWAY => {
                let mut c = exact(8)?;
                let last_good_stream_id = c.u32()? & MAX_STREAM_ID;
                Frame::GoAway { last_good_stream_id, status: GoAwayStatus(c.u32()?) }
            }
            WINDOW_UPDATE => {
                let mut c = exact(8)?;
                let stream_id = c.u32()? & MAX_STREAM_ID;
                Frame::WindowUpdate { stream_id, delta: c.u32()? & 0x7fff_ffff }
            }
            kind => Frame::Unknown { kind, flags, payload: payload.clone() },
        };
        Ok(frame)
    }

    /// Inflates and reads one header block. An empty block (a SYN_REPLY of
    /// just a stream id) is no headers and leaves the context alone.
    fn block(&mut self, compressed: &[u8]) -> Result<Headers> {
        if compressed.is_empty() {
            return Ok(Headers::new());
        }
        headers::decode_block(&self.headers.decompress(compressed)?)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::spdy::headers::tests::hex;

    fn round_trip(frames: &[Frame]) -> Vec<Frame> {
        let mut enc = Encoder::new().expect("encoder");
        let mut wire = Vec::new();
        for f in frames {
            enc.encode(f, &mut wire).expect("encode");
        }
        let mut dec = Decoder::new();
        let mut buf = BytesMut::from(&wire[..]);
        let mut out = Vec::new();
        while let Some(f) = dec.decode(&mut buf).expect("decode") {
            out.push(f);
        }
        assert!(buf.is_empty());
        out
    }

    fn every_kind() -> Vec<Frame> {
        let h = Headers::from([("streamtype", "stdin"), ("x", "1"), ("x", "2")]);
        vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                slot: 0,
                fin: false,
                unidirectional: false,
                headers: h.clone(),
            },
            Frame::SynStream {
                stream_id: 3,
                associated_to: 1,
                priority: 7,
                slot: 2,
                fin: true,
                unidirectional: true,
                headers: Headers::new(),
            },
            Frame::SynReply { stream_id: 1, fin: false, headers: Headers::new() },
            Frame::SynReply { stream_id: 3, fin: true, headers: h.clone() },
            Frame::RstStream { stream_id: 5, status: RstStatus::CANCEL },
            Frame::Settings {
                clear: true,
                settings: vec![Setting { flags: 1, id: Setting::INITIAL_WINDOW_SIZE, value: 1 << 20 }],
            },
            Frame::Settings { clear: false, settings: vec![] },
            Frame::Ping { id: 0xffff_ffff },
            Frame::GoAway { last_good_stream_id: 7, status: GoAwayStatus::PROTOCOL_ERROR },
            Frame::Headers { stream_id: 1, fin: true, headers: h },
            Frame::WindowUpdate { stream_id: 0, delta: 65536 },
            Frame::WindowUpdate { stream_id: 9, delta: 0x7fff_ffff },
            Frame::Data { stream_id: 1, fin: false, data: Bytes::from_static(b"hello") },
            Frame::Data { stream_id: MAX_STREAM_ID, fin: true, data: Bytes::new() },
            Frame::Unknown { kind: 5, flags: 0, payload: Bytes::new() },
            Frame::Unknown { kind: 10, flags: 3, payload: Bytes::from_static(b"\x00\x01credential") },
        ]
    }

    #[test]
    fn every_frame_type_round_trips() {
        let frames = every_kind();
        assert_eq!(round_trip(&frames), frames);
    }

    #[test]
    fn fixed_layouts_match_the_spec() {
        let mut enc = Encoder::new().expect("encoder");
        let mut w = Vec::new();
        enc.encode(&Frame::Ping { id: 1 }, &mut w).expect("ping");
        assert_eq!(w, [0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
        w.clear();
        enc.encode(&Frame::RstStream { stream_id: 3, status: RstStatus::CANCEL }, &mut w).expect("rst");
        assert_eq!(w, [0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 5]);
        w.clear();
        enc.encode(&Frame::Data { stream_id: 5, fin: true, data: Bytes::from_static(b"ab") }, &mut w)
            .expect("data");
        assert_eq!(w, [0, 0, 0, 5, 1, 0, 0, 2, b'a', b'b']);
        w.clear();
        let settings = vec![Setting { flags: 0, id: 7, value: 0x1_0000 }];
        enc.encode(&Frame::Settings { clear: false, settings }, &mut w).expect("settings");
        assert_eq!(w, [0x80, 3, 0, 4, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 7, 0, 1, 0, 0]);
        w.clear();
        enc.encode(&Frame::GoAway { last_good_stream_id: 1, status: GoAwayStatus::OK }, &mut w)
            .expect("goaway");
        assert_eq!(w, [0x80, 3, 0, 7, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0]);
        w.clear();
        enc.encode(&Frame::WindowUpdate { stream_id: 1, delta: 2 }, &mut w).expect("window");
        assert_eq!(w, [0x80, 3, 0, 9, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 2]);
    }

    #[test]
    fn the_largest_data_frame_round_trips() {
        let data = Bytes::from(vec![0xa5; MAX_PAYLOAD]);
        let frames = [Frame::Data { stream_id: 1, fin: true, data }];
        assert_eq!(round_trip(&frames), frames);
        let mut enc = Encoder::new().expect("encoder");
        let too_big = Frame::Data { stream_id: 1, fin: false, data: Bytes::from(vec![0; MAX_PAYLOAD + 1]) };
        assert!(enc.encode(&too_big, &mut Vec::new()).is_err());
    }

    #[test]
    fn a_large_header_block_round_trips() {
        // 4 MiB of headers: several deflate blocks, a frame far over 64 KiB.
        let mut h = Headers::new();
        for i in 0..4096 {
            h.push(format!("x-{i}"), format!("{i:01024}"));
        }
        let frames = [Frame::SynReply { stream_id: 1, fin: false, headers: h }];
        assert_eq!(round_trip(&frames), frames);
    }

    #[test]
    fn a_refused_frame_leaves_the_context_usable() {
        let mut enc = Encoder::new().expect("encoder");
        let mut w = Vec::new();
        let bad = Frame::SynStream {
            stream_id: 0,
            associated_to: 0,
            priority: 0,
            slot: 0,
            fin: false,
            unidirectional: false,
            headers: Headers::from([("a", "b")]),
        };
        assert!(enc.encode(&bad, &mut w).is_err());
        assert!(
            enc.encode(&Frame::SynReply { stream_id: 0, fin: false, headers: Headers::new() }, &mut w)
                .is_err()
        );
        assert!(w.is_empty());
        let good = Frame::SynReply { stream_id: 1, fin: false, headers: Headers::from([("a", "b")]) };
        enc.encode(&good, &mut w).expect("encode");
        let mut buf = BytesMut::from(&w[..]);
        assert_eq!(Decoder::new().decode(&mut buf).expect("decode"), Some(good));
    }

    #[test]
    fn frames_spdystream_would_choke_on_are_refused() {
        let mut enc = Encoder::new().expect("encoder");
        let mut w = Vec::new();
        let syn = |headers| Frame::SynStream {
            stream_id: 1,
            associated_to: 0,
            priority: 0,
            slot: 0,
            fin: false,
            unidirectional: false,
            headers,
        };
        assert!(enc.encode(&syn(Headers::from([("Host", "x")])), &mut w).is_err());
        assert!(enc.encode(&syn(Headers::from([("Connection", "upgrade")])), &mut w).is_err());
        let reply = Frame::SynReply {
            stream_id: 1,
            fin: false,
            headers: Headers::from([("transfer-encoding", "x")]),
        };
        assert!(enc.encode(&reply, &mut w).is_err());
        assert!(enc.encode(&Frame::RstStream { stream_id: 1, status: RstStatus(0) }, &mut w).is_err());
        assert!(w.is_empty());
        let reply = Frame::SynReply { stream_id: 1, fin: false, headers: Headers::from([("host", "x")]) };
        enc.encode(&reply, &mut w).expect("host is fine in a reply");
    }

    #[test]
    fn malformed_frames_are_protocol_errors() {
        let cases: [&[u8]; 6] = [
            &[0x80, 3, 0, 6, 0, 0, 0, 5, 0, 0, 0, 1, 0], // PING of 5 bytes
            &[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1],    // SPDY/2
            &[0, 0, 0, 0, 0, 0, 0, 1, 0],                // DATA on stream 0
            &[0x80, 3, 0, 3, 0, 0, 0, 4, 0, 0, 0, 1],    // short RST_STREAM
            &[0x80, 3, 0, 4, 0, 0, 0, 8, 0, 0, 0, 2, 0, 0, 0, 0], // SETTINGS count lies
            &[0x80, 3, 0, 1, 0, 0, 0, 4, 0, 0, 0, 1],    // SYN_STREAM too short
        ];
        for bytes in cases {
            let mut buf = BytesMut::from(bytes);
            let got = Decoder::new().decode(&mut buf);
            assert!(matches!(got, Err(SpdyError::Protocol(_))), "{bytes:02x?}: {got:?}");
        }
    }

    #[test]
    fn partial_input_waits_for_the_rest() {
        let mut enc = Encoder::new().expect("encoder");
        let mut w = Vec::new();
        enc.encode(&Frame::Data { stream_id: 1, fin: false, data: Bytes::from_static(b"xyz") }, &mut w)
            .expect("e");
        let mut dec = Decoder::new();
        let mut buf = BytesMut::new();
        for (i, b) in w.iter().enumerate() {
            assert_eq!(dec.decode(&mut buf).expect("decode"), None, "after {i} bytes");
            buf.extend_from_slice(&[*b]);
        }
        assert!(dec.decode(&mut buf).expect("decode").is_some());
    }

    /// Frames captured from another implementation: node-spdy's parser test
    /// vectors (spdy-transport `test/spdy/parser-test.js`), deflated by
    /// node's zlib. Each starts its own zlib stream, so each gets a fresh
    /// decoder, as the first frame of a connection would.
    #[test]
    fn node_spdy_frames_decode() {
        let syn = hex(concat!(
            "800300010000002c0000000100000000000078",
            "f9e3c6a7c202e50e507ab442a45a77d7105006",
            "b32a4804974d8cfa00000000ffff"
        ));
        let mut buf = BytesMut::from(&syn[..]);
        let got = Decoder::new().decode(&mut buf).expect("decode");
        assert_eq!(
            got,
            Some(Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                slot: 0,
                fin: false,
                unidirectional: false,
                headers: Headers::from([(":method", "GET"), (":path", "/")]),
            })
        );
        let reply = hex("80030002000000140000000178f9e3c6a7c202a6230600000000ffff");
        let mut buf = BytesMut::from(&reply[..]);
        let got = Decoder::new().decode(&mut buf).expect("decode");
        assert_eq!(got, Some(Frame::SynReply { stream_id: 1, fin: false, headers: Headers::new() }));
    }

    /// What a moby/spdystream 0.2.0 client (Go's compress/flate, level 9)
    /// wrote for: an error stream closed at once, a stdin stream with
    /// `hello\n` then FIN, a port-forward data stream (three headers, in Go's
    /// map order), and a PING. Produced by `tests/data/spdy/interop.go
    /// capture`. The header blocks share one zlib stream.
    pub(crate) const GO_CLIENT_SESSION: &str = concat!(
        "80030001000000290000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a68",
        "00000000ffff",
        "0000000101000000",
        "800300010000001700000003000000000000c22e555c92929907000000ffff",
        "000000030000000668656c6c6f0a",
        "0000000301000000",
        "800300010000002f000000050000000000000225550c295001940829cb8bc0d9c6c2c0c280818181b30812f79",
        "9a03cc16800000000ffff",
        "800300060000000400000001",
    );

    #[test]
    fn a_go_spdystream_client_session_decodes() {
        let wire = hex(GO_CLIENT_SESSION);
        // As kubectl's first WebSocket messages showed: 80 03 00 01, length.
        assert_eq!(wire[..4], [0x80, 0x03, 0x00, 0x01]);
        let mut dec = Decoder::new();
        let mut buf = BytesMut::from(&wire[..]);
        let mut frames = Vec::new();
        while let Some(f) = dec.decode(&mut buf).expect("decode") {
            frames.push(f);
        }
        assert!(buf.is_empty());
        let syn = |stream_id, headers| Frame::SynStream {
            stream_id,
            associated_to: 0,
            priority: 0,
            slot: 0,
            fin: false,
            unidirectional: false,
            headers,
        };
        let fin = |stream_id| Frame::Data { stream_id, fin: true, data: Bytes::new() };
        let mut data_headers = match &frames[5] {
            Frame::SynStream { headers, .. } => headers.iter().collect::<Vec<_>>(),
            other => panic!("not a SYN_STREAM: {other:?}"),
        };
        data_headers.sort();
        assert_eq!(data_headers, [("port", "8080"), ("requestid", "0"), ("streamtype", "data")]);
        assert_eq!(
            frames,
            [
                syn(1, Headers::from([("streamtype", "error")])),
                fin(1),
                syn(3, Headers::from([("streamtype", "stdin")])),
                Frame::Data { stream_id: 3, fin: false, data: Bytes::from_static(b"hello\n") },
                fin(3),
                frames[5].clone(),
                Frame::Ping { id: 1 },
            ]
        );
    }

    fn any_frame() -> impl Strategy<Value = Frame> {
        let id = 1..=MAX_STREAM_ID;
        let headers = crate::spdy::headers::tests::prop::headers();
        prop_oneof![
            (
                id.clone(),
                0..=MAX_STREAM_ID,
                0u8..8,
                any::<u8>(),
                any::<bool>(),
                any::<bool>(),
                headers.clone()
            )
                .prop_map(
                    |(stream_id, associated_to, priority, slot, fin, unidirectional, headers)| {
                        Frame::SynStream {
                            stream_id,
                            associated_to,
                            priority,
                            slot,
                            fin,
                            unidirectional,
                            headers,
                        }
                    }
                ),
            (id.clone(), any::<bool>(), headers.clone())
                .prop_map(|(stream_id, fin, headers)| Frame::SynReply { stream_id, fin, headers }),
            (id.clone(), any::<bool>(), headers).prop_map(|(stream_id, fin, headers)| Frame::Headers {
                stream_id,
                fin,
                headers
            }),
            (id.clone(), 1..=u32::MAX)
                .prop_map(|(stream_id, s)| Frame::RstStream { stream_id, status: RstStatus(s) }),
            (any::<bool>(), proptest::collection::vec((any::<u8>(), 0..=0xff_ffffu32, any::<u32>()), 0..5))
                .prop_map(|(clear, s)| Frame::Settings {
                    clear,
                    settings: s.into_iter().map(|(flags, id, value)| Setting { flags, id, value }).collect(),
                }),
            any::<u32>().prop_map(|id| Frame::Ping { id }),
            (0..=MAX_STREAM_ID, any::<u32>()).prop_map(|(last_good_stream_id, s)| Frame::GoAway {
                last_good_stream_id,
                status: GoAwayStatus(s)
            }),
            (0..=MAX_STREAM_ID, 1..=0x7fff_ffffu32)
                .prop_map(|(stream_id, delta)| Frame::WindowUpdate { stream_id, delta }),
            (id, any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300))
                .prop_map(|(stream_id, fin, d)| Frame::Data { stream_id, fin, data: Bytes::from(d) }),
            (10u16.., any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(kind, flags, p)| Frame::Unknown { kind, flags, payload: Bytes::from(p) }),
        ]
    }

    proptest! {
        /// Any sequence of frames, fed to the decoder in arbitrary pieces,
        /// comes back as it went in (header blocks sharing one context).
        #[test]
        fn frames_round_trip(frames in proptest::collection::vec(any_frame(), 1..12), cut in any::<proptest::sample::Index>()) {
            let mut enc = Encoder::new().expect("encoder");
            let mut wire = Vec::new();
            for f in &frames {
                enc.encode(f, &mut wire).expect("encode");
            }
            let mut dec = Decoder::new();
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            let step = cut.index(wire.len()) + 1;
            for piece in wire.chunks(step) {
                buf.extend_from_slice(piece);
                while let Some(f) = dec.decode(&mut buf).expect("decode") {
                    out.push(f);
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(out, frames);
        }

        /// Arbitrary bytes never panic the decoder.
        #[test]
        fn garbage_does_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut dec = Decoder::new();
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = dec.decode(&mut buf) {}
        }
    }
}
