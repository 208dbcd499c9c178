//! Name/value header blocks (SPDY/3 §2.6.10) and their compression.
//!
//! A block is a 32-bit count of entries, then per entry a 32-bit length and
//! the lower-case name, a 32-bit length and the value; several values of one
//! name are joined with NUL. Blocks are deflated with zlib and the fixed
//! SPDY/3 dictionary. Each direction of a connection has ONE deflate stream
//! for all its blocks: every block ends with a SYNC_FLUSH, and the next
//! block continues the same stream, so a block only inflates in order, with
//! the context that inflated the ones before it.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::{Result, SpdyError};

/// The largest inflated header block accepted (a deflate stream can expand
/// a 16 MiB frame far beyond that).
pub const MAX_BLOCK_LEN: usize = 16 << 20;

/// The largest header block sent: half a frame, so that even incompressible
/// bytes deflate into one frame (deflate adds 5 bytes per 16 KiB at most).
pub const MAX_SEND_BLOCK_LEN: usize = 8 << 20;

/// The Adler-32 of [`DICTIONARY`]: the DICTID in the zlib header of every
/// SPDY/3 header stream.
pub const DICTIONARY_ADLER32: u32 = 0xe3c6_a7c2;

/// The SPDY/3 header dictionary (spec §2.6.10.1), byte for byte what
/// moby/spdystream's `spdy/dictionary.go` and Chromium's `kV3Dictionary`
/// hold.
#[rustfmt::skip]
pub const DICTIONARY: &[u8; 1423] = b"\
    \0\0\0\x07options\0\0\0\x04head\0\0\0\x04post\0\0\0\x03put\0\0\0\x06delete\0\0\0\x05\
    trace\0\0\0\x06accept\0\0\0\x0eaccept-charset\0\0\0\x0faccept-encoding\0\0\0\x0facce\
    pt-language\0\0\0\x0daccept-ranges\0\0\0\x03age\0\0\0\x05allow\0\0\0\x0dauthorizatio\
    n\0\0\0\x0dcache-control\0\0\0\x0aconnection\0\0\0\x0ccontent-base\0\0\0\x10content-\
    encoding\0\0\0\x10content-language\0\0\0\x0econtent-length\0\0\0\x10content-location\
    \0\0\0\x0bcontent-md5\0\0\0\x0dcontent-range\0\0\0\x0ccontent-type\0\0\0\x04date\0\0\
    \0\x04etag\0\0\0\x06expect\0\0\0\x07expires\0\0\0\x04from\0\0\0\x04host\0\0\0\x08if-\
    match\0\0\0\x11if-modified-since\0\0\0\x0dif-none-match\0\0\0\x08if-range\0\0\0\x13i\
    f-unmodified-since\0\0\0\x0dlast-modified\0\0\0\x08location\0\0\0\x0cmax-forwards\0\
    \0\0\x06pragma\0\0\0\x12proxy-authenticate\0\0\0\x13proxy-authorization\0\0\0\x05ran\
    ge\0\0\0\x07referer\0\0\0\x0bretry-after\0\0\0\x06server\0\0\0\x02te\0\0\0\x07traile\
    r\0\0\0\x11transfer-encoding\0\0\0\x07upgrade\0\0\0\x0auser-agent\0\0\0\x04vary\0\0\
    \0\x03via\0\0\0\x07warning\0\0\0\x10www-authenticate\0\0\0\x06method\0\0\0\x03get\0\
    \0\0\x06status\0\0\0\x06200 OK\0\0\0\x07version\0\0\0\x08HTTP/1.1\0\0\0\x03url\0\0\0\
    \x06public\0\0\0\x0aset-cookie\0\0\0\x0akeep-alive\0\0\0\x06origin100101201202205206\
    300302303304305306307402405406407408409410411412413414415416417502504505203 Non-Auth\
    oritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthori\
    zed403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service\
    \x20UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, W\
    ed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,applicati\
    on/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,de\
    flate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

/// A header block: `(name, value)` pairs, names lower-case. Several values of
/// one name are several pairs; on the wire they become one NUL-joined entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    /// Adds a value; the name is lower-cased (SPDY requires it, and
    /// spdystream rejects the whole connection otherwise).
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let mut name = name.into();
        name.make_ascii_lowercase();
        self.0.push((name, value.into()));
    }

    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Headers {
        self.push(name, value);
        self
    }

    /// The first value of `name` (any case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (any case), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries as the wire has them: each name once, in order of first
    /// appearance, with its values.
    fn grouped(&self) -> Vec<(&str, Vec<&str>)> {
        let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
        for (n, v) in &self.0 {
            match out.iter_mut().find(|(m, _)| *m == n.as_str()) {
                Some((_, vs)) => vs.push(v),
                None => out.push((n, vec![v])),
            }
        }
        out
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Headers {
        let mut h = Headers::new();
        for (n, v) in iter {
            h.push(n, v);
        }
        h
    }
}

impl<N: Into<String>, V: Into<String>, const K: usize> From<[(N, V); K]> for Headers {
    fn from(pairs: [(N, V); K]) -> Headers {
        pairs.into_iter().collect()
    }
}

impl From<Vec<(String, String)>> for Headers {
    fn from(pairs: Vec<(String, String)>) -> Headers {
        pairs.into_iter().collect()
    }
}

fn put_len(out: &mut Vec<u8>, len: usize, what: &str) -> Result<()> {
    let n = u32::try_from(len).map_err(|_| SpdyError::protocol(format!("header {what} too long")))?;
    out.extend_from_slice(&n.to_be_bytes());
    Ok(())
}

/// The uncompressed block for `headers`.
pub fn encode_block(headers: &Headers) -> Result<Vec<u8>> {
    let groups = headers.grouped();
    let mut out = Vec::new();
    put_len(&mut out, groups.len(), "count")?;
    for (name, values) in groups {
        if name.is_empty() || name.contains('\0') {
            return Err(SpdyError::protocol(format!("invalid header name {name:?}")));
        }
        if values.iter().any(|v| v.contains('\0')) {
            return Err(SpdyError::protocol(format!("header {name} has a value with NUL")));
        }
        put_len(&mut out, name.len(), "name")?;
        out.extend_from_slice(name.as_bytes());
        let value = values.join("\0");
        put_len(&mut out, value.len(), "value")?;
        out.extend_from_slice(value.as_bytes());
    }
    if out.len() > MAX_SEND_BLOCK_LEN {
        return Err(SpdyError::protocol(format!("header block of {} bytes is too large", out.len())));
    }
    Ok(out)
}

/// Reads an uncompressed block. Names are lower-cased; NUL-joined values
/// become separate pairs. Bytes left after the last entry are an error.
pub fn decode_block(block: &[u8]) -> Result<Headers> {
    let mut cur = Cursor(block);
    let count = cur.length()?;
    let mut headers = Headers::new();
    for _ in 0..count {
        let len = cur.length()?;
        let name = String::from_utf8_lossy(cur.take(len)?).to_ascii_lowercase();
        if name.is_empty() {
            return Err(SpdyError::protocol("empty header name"));
        }
        let len = cur.length()?;
        let value = String::from_utf8_lossy(cur.take(len)?);
        for v in value.split('\0') {
            headers.0.push((name.clone(), v.to_string()));
        }
    }
    if !cur.0.is_empty() {
        return Err(SpdyError::protocol(format!("{} bytes after the header block", cur.0.len())));
    }
    Ok(headers)
}

/// Reads big-endian fields off the front of a slice.
pub(super) struct Cursor<'a>(pub(super) &'a [u8]);

impl<'a> Cursor<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(SpdyError::protocol("header block truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    pub(super) fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn length(&mut self) -> Result<usize> {
        usize::try_from(self.u32()?).map_err(|_| SpdyError::protocol("header length overflow"))
    }
}

/// The deflate side of one direction of a connection.
pub struct HeaderCompressor {
    z: Compress,
}

impl HeaderCompressor {
    pub fn new() -> Result<HeaderCompressor> {
        // Best compression, as spdystream; the dictionary goes in before the
        // first byte, which puts FDICT and its DICTID in the zlib header.
        let mut z = Compress::new(Compression::best(), true);
        let adler = z.set_dictionary(DICTIONARY).map_err(|e| SpdyError::Compression(e.to_string()))?;
        if adler != DICTIONARY_ADLER32 {
            return Err(SpdyError::Compression(format!("dictionary adler32 {adler:#x}")));
        }
        Ok(HeaderCompressor { z })
    }

    /// Deflates `block` into `out`, ending with a SYNC_FLUSH.
    pub fn compress(&mut self, block: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let mut pos = 0;
        loop {
            out.reserve(block.len() - pos + 64);
            let before = self.z.total_in();
            self.z
                .compress_vec(&block[pos..], out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Compression(e.to_string()))?;
            pos += usize::try_from(self.z.total_in() - before)
                .map_err(|_| SpdyError::Compression("input count overflow".into()))?;
            // Done when all input is in and the flush did not run out of room.
            if pos == block.len() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }
}

/// The inflate side of one direction of a connection.
pub struct HeaderDecompressor {
    z: Decompress,
}

impl Default for HeaderDecompressor {
    fn default() -> Self {
        HeaderDecompressor::new()
    }
}

impl HeaderDecompressor {
    pub fn new() -> HeaderDecompressor {
        HeaderDecompressor { z: Decompress::new(true) }
    }

    /// Inflates one compressed block (all of `input`) and returns the
    /// uncompressed bytes.
    pub fn decompress(&mut self, input: &[u8]) -> Result<Vec<u8>> {
        let err = |e: String| SpdyError::Compression(e);
        let mut out = Vec::with_capacity(input.len() * 4 + 64);
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.len().max(256));
            }
            let before = self.z.total_in();
            let status = match self.z.decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync) {
                Ok(s) => s,
                Err(e) => match e.needs_dictionary() {
                    // The zlib header asked for a dictionary: it must be ours.
                    Some(DICTIONARY_ADLER32) => {
                        pos += consumed(&self.z, before)?;
                        self.z.set_dictionary(DICTIONARY).map_err(|e| err(e.to_string()))?;
                        continue;
                    }
                    Some(other) => return Err(err(format!("unknown dictionary {other:#010x}"))),
                    None => return Err(err(e.to_string())),
                },
            };
            pos += consumed(&self.z, before)?;
            if out.len() > MAX_BLOCK_LEN {
                return Err(SpdyError::protocol("inflated header block too large"));
            }
            let room_left = out.len() < out.capacity();
            match status {
                Status::StreamEnd => {
                    if pos < input.len() {
                        return Err(err("data after the end of the header stream".into()));
                    }
                    return Ok(out);
                }
                Status::Ok | Status::BufError => {
                    if pos == input.len() && room_left {
                        return Ok(out);
                    }
                    if status == Status::BufError && room_left {
                        return Err(err("header block stalled".into()));
                    }
                }
            }
        }
    }
}

fn consumed(z: &Decompress, before: u64) -> Result<usize> {
    usize::try_from(z.total_in() - before).map_err(|_| SpdyError::Compression("input count overflow".into()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn adler32(data: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &x in data {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    }

    #[test]
    fn dictionary_is_the_spdy3_one() {
        assert_eq!(DICTIONARY.len(), 1423);
        assert_eq!(adler32(DICTIONARY), DICTIONARY_ADLER32);
        assert!(DICTIONARY.starts_with(b"\0\0\0\x07options\0\0\0\x04head"));
        assert!(DICTIONARY.ends_with(b"charset=iso-8859-1,utf-,*,enq=0."));
    }

    #[test]
    fn the_zlib_stream_names_the_dictionary() {
        let mut c = HeaderCompressor::new().expect("compressor");
        let mut out = Vec::new();
        c.compress(&encode_block(&Headers::from([("a", "b")])).expect("block"), &mut out).expect("deflate");
        // CMF 0x78 (deflate, 32 KiB window); FLG with FDICT (0x20) and level 3
        // (0xc0), as Go's zlib.BestCompression writes; then the DICTID.
        assert_eq!(out[0], 0x78);
        assert_eq!(out[1] & 0x20, 0x20, "FDICT set");
        assert_eq!((u16::from(out[0]) << 8 | u16::from(out[1])) % 31, 0, "FCHECK");
        assert_eq!(out[1], 0xf9);
        assert_eq!(u32::from_be_bytes([out[2], out[3], out[4], out[5]]), DICTIONARY_ADLER32);
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "ends with a sync flush: {out:02x?}");
    }

    #[test]
    fn multi_valued_headers_share_one_entry() {
        let h = Headers::from([("Streamtype", "data"), ("port", "80"), ("streamtype", "error")]);
        let block = encode_block(&h).expect("block");
        let mut want = Vec::new();
        want.extend_from_slice(&2u32.to_be_bytes());
        want.extend_from_slice(&10u32.to_be_bytes());
        want.extend_from_slice(b"streamtype");
        want.extend_from_slice(&10u32.to_be_bytes());
        want.extend_from_slice(b"data\0error");
        want.extend_from_slice(&4u32.to_be_bytes());
        want.extend_from_slice(b"port");
        want.extend_from_slice(&2u32.to_be_bytes());
        want.extend_from_slice(b"80");
        assert_eq!(block, want);
        let back = decode_block(&block).expect("decode");
        assert_eq!(back.get_all("StreamType").collect::<Vec<_>>(), ["data", "error"]);
        assert_eq!(back.get("port"), Some("80"));
        assert_eq!(back, Headers::from([("streamtype", "data"), ("streamtype", "error"), ("port", "80")]));
    }

    #[test]
    fn bad_blocks_are_refused() {
        assert!(encode_block(&Headers::from([("a", "x\0y")])).is_err());
        assert!(encode_block(&Headers::from([("", "x")])).is_err());
        // A count promising more entries than there are bytes.
        assert!(decode_block(&[0, 0, 0, 9, 0, 0, 0, 1, b'a']).is_err());
        // A name longer than the block.
        assert!(decode_block(&[0, 0, 0, 1, 0xff, 0, 0, 0, b'a']).is_err());
        // Trailing bytes.
        assert!(decode_block(&[0, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn successive_blocks_share_the_context() {
        let mut c = HeaderCompressor::new().expect("compressor");
        let h1 = Headers::from([("streamtype", "stdin"), ("port", "8080")]);
        let h2 = Headers::from([("streamtype", "stdout"), ("port", "8080")]);
        let (mut f1, mut f2) = (Vec::new(), Vec::new());
        c.compress(&encode_block(&h1).expect("block"), &mut f1).expect("deflate");
        c.compress(&encode_block(&h2).expect("block"), &mut f2).expect("deflate");
        // The second block has no zlib header and refers back to the first.
        assert_ne!(f2[0], 0x78);

        let mut d = HeaderDecompressor::new();
        assert_eq!(decode_block(&d.decompress(&f1).expect("inflate 1")).expect("block 1"), h1);
        assert_eq!(decode_block(&d.decompress(&f2).expect("inflate 2")).expect("block 2"), h2);

        // Alone, the second block is not a zlib stream.
        assert!(HeaderDecompressor::new().decompress(&f2).is_err());
    }

    /// Two blocks deflated by C zlib (Python's `zlib.compressobj(9,
    /// zdict=DICTIONARY)`, `flush(Z_SYNC_FLUSH)` after each): another
    /// implementation's output, read across blocks.
    #[test]
    fn blocks_from_c_zlib_inflate() {
        let f1 = hex(C_ZLIB_BLOCK_1);
        let f2 = hex(C_ZLIB_BLOCK_2);
        let mut d = HeaderDecompressor::new();
        let h1 = decode_block(&d.decompress(&f1).expect("inflate 1")).expect("block 1");
        let h2 = decode_block(&d.decompress(&f2).expect("inflate 2")).expect("block 2");
        assert_eq!(h1, Headers::from([("streamtype", "error"), ("port", "80"), ("requestid", "0")]));
        assert_eq!(h2, Headers::from([("streamtype", "data"), ("port", "80"), ("requestid", "0")]));
    }

    const C_ZLIB_BLOCK_1: &str = "78f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45a024cc64610024398b209198094adc8c0600000000ffff";
    const C_ZLIB_BLOCK_2: &str = "c2aa15540a2512d209000000ffff";

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
    }

    #[test]
    fn a_wrong_dictionary_is_refused() {
        // The zlib header of a stream deflated with another dictionary.
        let mut d = HeaderDecompressor::new();
        let err = d.decompress(&[0x78, 0xbb, 0x00, 0x00, 0x00, 0x01, 0x00]).expect_err("wrong dict");
        assert!(err.to_string().contains("dictionary"), "{err}");
    }

    #[test]
    fn a_header_bomb_is_refused() {
        let mut c = HeaderCompressor::new().expect("compressor");
        let mut big = Vec::new();
        big.extend_from_slice(&1u32.to_be_bytes());
        big.extend_from_slice(&1u32.to_be_bytes());
        big.push(b'a');
        let n = MAX_BLOCK_LEN + 1;
        big.extend_from_slice(&u32::try_from(n).expect("fits").to_be_bytes());
        big.resize(big.len() + n, b'x');
        let mut z = Vec::new();
        c.compress(&big, &mut z).expect("deflate");
        assert!(z.len() < 64 << 10, "compresses well: {}", z.len());
        let err = HeaderDecompressor::new().decompress(&z).expect_err("bomb");
        assert!(matches!(err, SpdyError::Protocol(_)), "{err}");
    }

    pub(crate) mod prop {
        use proptest::prelude::*;

        use super::super::*;

        pub(crate) fn headers() -> impl Strategy<Value = Headers> + Clone {
            proptest::collection::btree_map(
                "[a-z0-9:-]{1,12}".prop_filter("not a connection header", |n| {
                    !["connection", "keep-alive", "proxy-connection", "transfer-encoding", "host"]
                        .contains(&n.as_str())
                }),
                proptest::collection::vec("[^\u{0}]{0,24}", 1..4),
                0..6,
            )
            .prop_map(|m| {
                let mut h = Headers::new();
                for (n, vs) in m {
                    for v in vs {
                        h.push(n.clone(), v);
                    }
                }
                h
            })
        }

        proptest! {
            #[test]
            fn blocks_round_trip(hs in proptest::collection::vec(headers(), 1..5)) {
                let mut c = HeaderCompressor::new().expect("compressor");
                let mut d = HeaderDecompressor::new();
                for h in hs {
                    let mut z = Vec::new();
                    c.compress(&encode_block(&h).expect("block"), &mut z).expect("deflate");
                    let back = decode_block(&d.decompress(&z).expect("inflate")).expect("decode");
                    prop_assert_eq!(back, h);
                }
            }
        }
    }
}
