//! Container logs in the CRI format, served as the kubelet serves
//! `GET /api/v1/namespaces/<ns>/pods/<p>/log` (upstream's
//! `pkg/kubelet/kuberuntime/logs/logs.go` and `pkg/util/tail/tail.go`).
//!
//! The runtime writes one record per line:
//! `<RFC3339Nano time> <stdout|stderr> <P|F> <content>\n`. `F` closes a line
//! (its newline is the record's `\n`); `P` is a piece of a longer line that
//! continues in the next record (containerd splits lines past 16 KiB).
//!
//! The caller opens the file, finds where to start with [`tail_start`], and
//! feeds what follows to a [`Writer`]; following the file as it grows (and
//! noticing rotation) is the caller's job. Nothing here is async.
//!
//! Where this deliberately differs from upstream:
//! - only the CRI format is read, not Docker's JSON lines; a first line that
//!   does not parse is skipped like any other, instead of failing the whole
//!   request with "unsupported log format";
//! - `timestamps` are written in UTC (`...Z`), where upstream keeps the
//!   offset the runtime wrote (same instant; containerd writes its local zone).

use std::fmt;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};

use crate::timestamp::{format_rfc3339_nanos, parse_rfc3339_nanos};

/// The stream a record came from. Both are served as one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        })
    }
}

/// One parsed record, borrowing its content from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Unix seconds and nanoseconds.
    pub time: (i64, u32),
    pub stream: Stream,
    /// `P`: the content has no newline of its own and continues in the next record.
    pub partial: bool,
    pub content: &'a [u8],
}

/// Why a line is not a CRI log record. The texts are upstream's `parseCRILog` ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("timestamp is not found")]
    MissingTimestamp,
    #[error("unexpected timestamp {0:?}, want RFC 3339 like 2006-01-02T15:04:05.999999999Z07:00")]
    BadTimestamp(String),
    #[error("stream type is not found")]
    MissingStream,
    #[error("unexpected stream type {0:?}")]
    BadStream(String),
    #[error("log tag is not found")]
    MissingTag,
}

/// Parses one record; `line` is without its trailing `\n`.
///
/// The tag field is required but, as upstream keeps it forward compatible,
/// only its first `:`-separated tag is looked at, and anything but `P` reads
/// as a full line (`F`).
pub fn parse_record(line: &[u8]) -> Result<Record<'_>, ParseError> {
    let (time, rest) = split_field(line).ok_or(ParseError::MissingTimestamp)?;
    let time = std::str::from_utf8(time)
        .ok()
        .and_then(parse_rfc3339_nanos)
        .ok_or_else(|| ParseError::BadTimestamp(String::from_utf8_lossy(time).into_owned()))?;
    let (stream, rest) = split_field(rest).ok_or(ParseError::MissingStream)?;
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        other => return Err(ParseError::BadStream(String::from_utf8_lossy(other).into_owned())),
    };
    let (tags, content) = split_field(rest).ok_or(ParseError::MissingTag)?;
    let partial = tags.split(|&c| c == b':').next() == Some(b"P");
    Ok(Record { time, stream, partial, content })
}

fn split_field(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = b.iter().position(|&c| c == b' ')?;
    Some((&b[..i], &b[i + 1..]))
}

/// What to serve, from `PodLogOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Skip records older than this (Unix seconds, nanoseconds): the later of
    /// now − `sinceSeconds` and `sinceTime`, computed by the caller.
    pub since: Option<(i64, u32)>,
    /// Prefix each record with its time (`timestamps=true`).
    pub timestamps: bool,
    /// Stop after this many bytes of output (`limitBytes`).
    pub limit_bytes: Option<u64>,
    /// Serve the last this many records (`tailLines`); `None` serves all.
    /// The caller seeks to [`tail_start`]; the [`Writer`] also stops after
    /// this many records unless `follow` is set, as upstream does.
    pub tail_lines: Option<u64>,
    /// Keep serving as the file grows (`follow=true`).
    pub follow: bool,
}

/// Returns the byte offset where the last `lines` records of `file` begin, as
/// upstream's `tail.FindTailLineStartIndex`: it counts `\n`s back from the
/// end, reading blocks backwards, so a short tail of a big file reads little.
///
/// A last line without its `\n` (the runtime is mid-write) is not counted, so
/// it comes after the offset too: with `lines == 0` the offset is the end of
/// the last complete line, where a follower starts. A file with fewer lines
/// gives 0.
pub fn tail_start<R: Read + Seek>(file: &mut R, lines: u64) -> io::Result<u64> {
    const BLOCK: usize = 4096;
    let mut buf = [0u8; BLOCK];
    let mut right = file.seek(SeekFrom::End(0))?;
    let mut seen = 0u64;
    while right > 0 {
        let len = usize::try_from(right).map_or(BLOCK, |r| r.min(BLOCK));
        let left = right - len as u64;
        file.seek(SeekFrom::Start(left))?;
        let block = &mut buf[..len];
        file.read_exact(block)?;
        for i in (0..len).rev().filter(|&i| block[i] == b'\n') {
            seen += 1;
            if seen > lines {
                return Ok(left + i as u64 + 1);
            }
        }
        right = left;
    }
    Ok(0)
}

/// Whether to keep feeding a [`Writer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `limit_bytes` is spent, or (not following) `tail_lines` records were
    /// served: the response is complete.
    LimitReached,
}

/// How far [`Writer::write_all_from`] or [`Writer::write_to_end`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of input taken as records (each with its `\n`). A follower
    /// resumes reading the file at its start offset plus this.
    pub consumed: u64,
    pub flow: Flow,
}

/// Turns records into the bytes of the log response, keeping the byte and
/// line budgets across calls so one `Writer` serves a whole (followed) request.
///
/// Each record becomes its content, plus `\n` if it is a full (`F`) record.
/// With `timestamps`, every record gets `<time> ` in front, partial pieces
/// included: upstream does so (kubernetes#77603, closed unfixed), so a line
/// split by the runtime shows a second timestamp in its middle.
#[derive(Debug)]
pub struct Writer {
    since: Option<(i64, u32)>,
    timestamps: bool,
    bytes_left: Option<u64>,
    lines_left: Option<u64>,
    malformed: u64,
    last_error: Option<ParseError>,
}

impl Writer {
    pub fn new(opts: &Options) -> Writer {
        Writer {
            since: opts.since,
            timestamps: opts.timestamps,
            bytes_left: opts.limit_bytes,
            lines_left: if opts.follow { None } else { opts.tail_lines },
            malformed: 0,
            last_error: None,
        }
    }

    /// Lines skipped because they are not CRI records (upstream logs and
    /// skips them).
    pub fn malformed_lines(&self) -> u64 {
        self.malformed
    }

    /// Why the last skipped line did not parse, for the caller to log.
    pub fn last_error(&self) -> Option<&ParseError> {
        self.last_error.as_ref()
    }

    /// Writes one complete line (without its `\n`). Records older than
    /// `since` and malformed lines write nothing.
    pub fn write_line(&mut self, line: &[u8], out: &mut impl Write) -> io::Result<Flow> {
        self.write_record(line, true, out)
    }

    /// Writes the complete lines of `r` until its end. A last line without
    /// `\n` (the runtime is mid-write) is read but not written nor counted in
    /// [`Progress::consumed`]: a follower seeks back and reads it again once
    /// complete.
    pub fn write_all_from<R: BufRead>(&mut self, r: &mut R, out: &mut impl Write) -> io::Result<Progress> {
        self.write_from(r, out, false)
    }

    /// As [`write_all_from`](Self::write_all_from), then, as upstream does
    /// when not following, writes a last line without `\n` as it stands: its
    /// content with no newline added, even for an `F` record.
    pub fn write_to_end<R: BufRead>(&mut self, r: &mut R, out: &mut impl Write) -> io::Result<Progress> {
        self.write_from(r, out, true)
    }

    fn write_from<R: BufRead>(
        &mut self,
        r: &mut R,
        out: &mut impl Write,
        unterminated_too: bool,
    ) -> io::Result<Progress> {
        let mut consumed = 0u64;
        let mut line = Vec::new();
        loop {
            if self.done() {
                return Ok(Progress { consumed, flow: Flow::LimitReached });
            }
            line.clear();
            let n = r.read_until(b'\n', &mut line)?;
            let flow = match line.split_last() {
                None => return Ok(Progress { consumed, flow: Flow::Continue }),
                Some((b'\n', body)) => {
                    consumed += n as u64;
                    self.write_record(body, true, out)?
                }
                Some(_) if unterminated_too => {
                    consumed += n as u64;
                    let flow = self.write_record(&line, false, out)?;
                    return Ok(Progress { consumed, flow });
                }
                Some(_) => return Ok(Progress { consumed, flow: Flow::Continue }),
            };
            if flow == Flow::LimitReached {
                return Ok(Progress { consumed, flow });
            }
        }
    }

    fn done(&self) -> bool {
        self.bytes_left == Some(0) || self.lines_left == Some(0)
    }

    fn write_record(&mut self, line: &[u8], terminated: bool, out: &mut impl Write) -> io::Result<Flow> {
        if self.done() {
            return Ok(Flow::LimitReached);
        }
        let record = match parse_record(line) {
            Ok(record) => record,
            Err(e) => {
                self.malformed += 1;
                self.last_error = Some(e);
                return Ok(Flow::Continue);
            }
        };
        // Upstream counts records skipped by `since` against the tail too.
        if let Some(lines) = &mut self.lines_left {
            *lines -= 1;
        }
        if self.since.is_none_or(|since| record.time >= since) {
            if self.timestamps {
                let (unix, nanos) = record.time;
                let prefix = format_rfc3339_nanos(unix, nanos) + " ";
                self.emit(prefix.as_bytes(), out)?;
            }
            self.emit(record.content, out)?;
            if terminated && !record.partial {
                self.emit(b"\n", out)?;
            }
        }
        Ok(if self.done() { Flow::LimitReached } else { Flow::Continue })
    }

    /// Writes `bytes`, cut to what is left of `limit_bytes`.
    fn emit(&mut self, bytes: &[u8], out: &mut impl Write) -> io::Result<()> {
        let bytes = match &mut self.bytes_left {
            None => bytes,
            Some(left) => {
                let n = usize::try_from(*left).map_or(bytes.len(), |l| l.min(bytes.len()));
                *left -= n as u64;
                &bytes[..n]
            }
        };
        out.write_all(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    /// 2026-11-25T10:00:00Z.
    const T0: i64 = 1_795_600_800;

    /// A time as containerd writes it: Go's RFC3339Nano, trailing zeros of
    /// the fraction stripped.
    fn go_time(unix: i64, nanos: u32) -> String {
        let fixed = format_rfc3339_nanos(unix, nanos);
        let stripped = fixed.trim_end_matches('Z').trim_end_matches('0').trim_end_matches('.');
        format!("{stripped}Z")
    }

    fn rec(unix: i64, nanos: u32, stream: &str, tag: &str, content: &str) -> String {
        format!("{} {stream} {tag} {content}\n", go_time(unix, nanos))
    }

    fn serve(opts: &Options, input: &str) -> (String, Progress) {
        let mut out = Vec::new();
        let progress = Writer::new(opts).write_all_from(&mut input.as_bytes(), &mut out).unwrap();
        (String::from_utf8(out).unwrap(), progress)
    }

    #[test]
    fn parses_full_partial_and_empty_records() {
        let r = parse_record(b"2026-11-25T10:00:00.1234Z stdout F hello  world ").unwrap();
        assert_eq!(
            r,
            Record {
                time: (T0, 123_400_000),
                stream: Stream::Stdout,
                partial: false,
                content: b"hello  world "
            }
        );
        let r = parse_record(b"2026-11-25T10:00:00Z stderr P part").unwrap();
        assert_eq!((r.stream, r.partial, r.content), (Stream::Stderr, true, &b"part"[..]));
        let r = parse_record(b"2026-11-25T10:00:00Z stdout F ").unwrap();
        assert_eq!((r.partial, r.content), (false, &b""[..]));
        let r = parse_record(b"2026-11-25T11:00:00.5+01:00 stdout F x").unwrap();
        assert_eq!(r.time, (T0, 500_000_000));
        let r = parse_record(b"2026-11-25T04:30:00-05:30 stdout F x").unwrap();
        assert_eq!(r.time, (T0, 0));
    }

    #[test]
    fn parses_every_fraction_length() {
        for len in 0..=9 {
            let frac = if len == 0 { String::new() } else { format!(".{}", &"987654321"[..len]) };
            let line = format!("2026-11-25T10:00:00{frac}Z stdout F x");
            let want = frac.get(1..).map_or(0, |d| format!("{d:0<9}").parse().unwrap());
            assert_eq!(parse_record(line.as_bytes()).unwrap().time, (T0, want), "{line}");
        }
    }

    #[test]
    fn first_tag_decides_partial() {
        let partial = |tag: &str| {
            parse_record(format!("2026-11-25T10:00:00Z stdout {tag} x").as_bytes()).unwrap().partial
        };
        assert!(partial("P"));
        assert!(partial("P:future"));
        assert!(!partial("F"));
        assert!(!partial("F:P"));
        // Unknown tags read as full lines, as upstream keeps the field forward compatible.
        assert!(!partial("X"));
        assert!(!partial(""));
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let err = |line: &str| parse_record(line.as_bytes()).unwrap_err();
        assert_eq!(err(""), ParseError::MissingTimestamp);
        assert_eq!(err("2026-11-25T10:00:00Z").to_string(), "timestamp is not found");
        assert_eq!(err("2026-11-25T10:00:00Z stdout").to_string(), "stream type is not found");
        assert_eq!(err("2026-11-25T10:00:00Z stdout F").to_string(), "log tag is not found");
        assert_eq!(err("2026-11-25T10:00:00Z stdin F x").to_string(), r#"unexpected stream type "stdin""#);
        assert_eq!(err("2026-11-25T10:00:00Z  F x").to_string(), r#"unexpected stream type """#);
        assert_eq!(
            err("yesterday stdout F x").to_string(),
            r#"unexpected timestamp "yesterday", want RFC 3339 like 2006-01-02T15:04:05.999999999Z07:00"#
        );
        assert_eq!(err("2026-11-25 stdout F x"), ParseError::BadTimestamp("2026-11-25".into()));
        assert_eq!(
            err("2026-11-25T10:00:00.Z stdout F x"),
            ParseError::BadTimestamp("2026-11-25T10:00:00.Z".into())
        );
        // Docker's JSON lines are not CRI records.
        assert_eq!(
            err(r#"{"log":"x\n","stream":"stdout","time":"2026-11-25T10:00:00Z"}"#),
            ParseError::MissingTimestamp
        );
    }

    #[test]
    fn joins_partial_records_and_merges_streams() {
        let input = [
            rec(T0, 0, "stdout", "P", "hel"),
            rec(T0, 1, "stdout", "P", "lo "),
            rec(T0, 2, "stdout", "F", "world"),
            rec(T0, 3, "stderr", "F", "oops"),
            rec(T0, 4, "stdout", "F", ""),
        ]
        .concat();
        let (out, progress) = serve(&Options::default(), &input);
        assert_eq!(out, "hello world\noops\n\n");
        assert_eq!(progress, Progress { consumed: input.len() as u64, flow: Flow::Continue });
    }

    #[test]
    fn skips_records_older_than_since() {
        let input = [
            rec(T0 - 1, 999_999_999, "stdout", "F", "old"),
            rec(T0, 0, "stdout", "F", "exactly since"),
            rec(T0, 1, "stderr", "F", "new"),
        ]
        .concat();
        let (out, _) = serve(&Options { since: Some((T0, 0)), ..Options::default() }, &input);
        assert_eq!(out, "exactly since\nnew\n");
        let (out, _) = serve(&Options { since: Some((T0, 1)), ..Options::default() }, &input);
        assert_eq!(out, "new\n");
    }

    #[test]
    fn timestamps_prefix_every_record_in_utc_with_nine_digits() {
        let input = [
            "2026-11-25T11:00:00.1+01:00 stdout P hel\n".to_string(),
            rec(T0, 123_456_789, "stdout", "F", "lo"),
            rec(T0 + 1, 0, "stderr", "F", ""),
        ]
        .concat();
        let (out, _) = serve(&Options { timestamps: true, ..Options::default() }, &input);
        assert_eq!(
            out,
            "2026-11-25T10:00:00.100000000Z hel2026-11-25T10:00:00.123456789Z lo\n\
             2026-11-25T10:00:01.000000000Z \n"
        );
    }

    #[test]
    fn limit_cuts_mid_record_and_stops() {
        let input = [rec(T0, 0, "stdout", "F", "hello world"), rec(T0, 1, "stdout", "F", "more")].concat();
        let first = rec(T0, 0, "stdout", "F", "hello world").len() as u64;
        let opts = Options { limit_bytes: Some(8), ..Options::default() };
        let (out, progress) = serve(&opts, &input);
        assert_eq!(out, "hello wo");
        assert_eq!(progress, Progress { consumed: first, flow: Flow::LimitReached });

        // A spent writer writes nothing more.
        let mut w = Writer::new(&opts);
        let mut out = Vec::new();
        assert_eq!(
            w.write_line(input.lines().next().unwrap().as_bytes(), &mut out).unwrap(),
            Flow::LimitReached
        );
        assert_eq!(
            w.write_line(input.lines().nth(1).unwrap().as_bytes(), &mut out).unwrap(),
            Flow::LimitReached
        );
        assert_eq!(out, b"hello wo");

        // Exactly one record's worth stops right after it.
        let (out, progress) = serve(&Options { limit_bytes: Some(12), ..Options::default() }, &input);
        assert_eq!(
            (out.as_str(), progress.flow, progress.consumed),
            ("hello world\n", Flow::LimitReached, first)
        );

        let (out, progress) = serve(&Options { limit_bytes: Some(0), ..Options::default() }, &input);
        assert_eq!((out.as_str(), progress), ("", Progress { consumed: 0, flow: Flow::LimitReached }));
    }

    #[test]
    fn limit_counts_timestamp_prefixes() {
        let input = [rec(T0, 0, "stdout", "F", "a"), rec(T0, 1, "stdout", "F", "b")].concat();
        let opts = |limit| Options { timestamps: true, limit_bytes: Some(limit), ..Options::default() };
        assert_eq!(serve(&opts(10), &input).0, "2026-11-25");
        // 31 bytes of prefix, "a\n", then 5 bytes into the second prefix.
        assert_eq!(serve(&opts(38), &input).0, "2026-11-25T10:00:00.000000000Z a\n2026-");
        assert_eq!(serve(&opts(38), &input).1.flow, Flow::LimitReached);
    }

    #[test]
    fn incomplete_trailing_line_is_left_for_later() {
        let done = rec(T0, 0, "stdout", "F", "one");
        let mid_write = "2026-11-25T10:00:01Z stdout F tw";
        let input = format!("{done}{mid_write}");
        let (out, progress) = serve(&Options::default(), &input);
        assert_eq!(out, "one\n");
        assert_eq!(progress, Progress { consumed: done.len() as u64, flow: Flow::Continue });

        // The runtime finishes the line; a follower resumes where it stopped.
        let input = format!("{input}o\n");
        let mut w = Writer::new(&Options { follow: true, ..Options::default() });
        let mut out = Vec::new();
        let mut file = Cursor::new(input.as_bytes());
        file.seek(SeekFrom::Start(progress.consumed)).unwrap();
        let more = w.write_all_from(&mut file, &mut out).unwrap();
        assert_eq!(out, b"two\n");
        assert_eq!(progress.consumed + more.consumed, input.len() as u64);

        // Not following, upstream writes the incomplete line as it stands, with no newline.
        let mut out = Vec::new();
        let all = format!("{done}{mid_write}");
        let progress = Writer::new(&Options::default()).write_to_end(&mut all.as_bytes(), &mut out).unwrap();
        assert_eq!(out, b"one\ntw");
        assert_eq!(progress, Progress { consumed: all.len() as u64, flow: Flow::Continue });
    }

    #[test]
    fn malformed_lines_are_skipped_and_counted() {
        let input =
            [rec(T0, 0, "stdout", "F", "a"), "garbage\n".into(), rec(T0, 1, "stdout", "F", "b")].concat();
        let mut w = Writer::new(&Options::default());
        let mut out = Vec::new();
        let progress = w.write_all_from(&mut input.as_bytes(), &mut out).unwrap();
        assert_eq!(out, b"a\nb\n");
        assert_eq!(progress.consumed, input.len() as u64);
        assert_eq!(w.malformed_lines(), 1);
        assert_eq!(w.last_error(), Some(&ParseError::MissingTimestamp));
    }

    #[test]
    fn tail_lines_stop_the_writer_unless_following() {
        let input = [
            rec(T0, 0, "stdout", "F", "a"),
            "garbage\n".into(),
            rec(T0, 1, "stdout", "F", "b"),
            rec(T0, 2, "stdout", "F", "c"),
        ]
        .concat();
        let opts = Options { tail_lines: Some(2), ..Options::default() };
        // Malformed lines do not count; records skipped by `since` do, as upstream.
        assert_eq!(serve(&opts, &input).0, "a\nb\n");
        assert_eq!(serve(&opts, &input).1.flow, Flow::LimitReached);
        assert_eq!(serve(&Options { since: Some((T0, 1)), ..opts.clone() }, &input).0, "b\n");
        assert_eq!(serve(&Options { follow: true, ..opts.clone() }, &input).0, "a\nb\nc\n");
        let zero = Options { tail_lines: Some(0), ..Options::default() };
        assert_eq!(serve(&zero, &input), (String::new(), Progress { consumed: 0, flow: Flow::LimitReached }));
    }

    /// A reader that counts the bytes read from it.
    struct Counting<'a> {
        inner: Cursor<&'a [u8]>,
        read: usize,
    }

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n;
            Ok(n)
        }
    }

    impl Seek for Counting<'_> {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    fn tail(data: &[u8], lines: u64) -> u64 {
        tail_start(&mut Cursor::new(data), lines).unwrap()
    }

    #[test]
    fn tail_start_counts_lines_from_the_end() {
        let data = b"a\nbb\nccc\n";
        assert_eq!(tail(data, 0), 9);
        assert_eq!(tail(data, 1), 5);
        assert_eq!(tail(data, 2), 2);
        assert_eq!(tail(data, 3), 0);
        assert_eq!(tail(data, 4), 0);
        assert_eq!(tail(data, u64::MAX), 0);
        for n in [0, 1, 5] {
            assert_eq!(tail(b"", n), 0);
        }
        assert_eq!(tail(b"\n\n", 1), 1);
    }

    #[test]
    fn tail_start_does_not_count_an_unterminated_last_line() {
        let data = b"a\nb\nc";
        assert_eq!(tail(data, 0), 4);
        assert_eq!(tail(data, 1), 2);
        assert_eq!(tail(data, 2), 0);
        assert_eq!(tail(data, 3), 0);
        assert_eq!(tail(b"no newline", 0), 0);
    }

    #[test]
    fn tail_start_handles_lines_longer_than_a_block() {
        let long = format!("{}\n", "x".repeat(10_000));
        let data = format!("short\n{long}{long}{long}");
        assert_eq!(tail(data.as_bytes(), 0), data.len() as u64);
        assert_eq!(tail(data.as_bytes(), 1), (6 + 2 * long.len()) as u64);
        assert_eq!(tail(data.as_bytes(), 3), 6);
        assert_eq!(tail(data.as_bytes(), 4), 0);
    }

    #[test]
    fn tail_start_reads_only_the_end_of_a_big_file() {
        let data = rec(T0, 0, "stdout", "F", "some line of log").repeat(100_000);
        let mut file = Counting { inner: Cursor::new(data.as_bytes()), read: 0 };
        let start = tail_start(&mut file, 3).unwrap();
        assert_eq!(data.len() as u64 - start, 3 * rec(T0, 0, "stdout", "F", "some line of log").len() as u64);
        assert!(file.read <= 4096, "read {} bytes of {}", file.read, data.len());
    }

    fn record_strategy() -> impl Strategy<Value = (i64, u32, bool, bool, String)> {
        (0i64..4_000_000_000, 0u32..1_000_000_000, any::<bool>(), any::<bool>(), "[ -~]{0,12}")
    }

    proptest! {
        #[test]
        fn records_round_trip(
            (unix, nanos, stderr, partial, content) in record_strategy(),
            off in -23i64 * 60..=23 * 60,
        ) {
            let local = go_time(unix + off * 60, nanos);
            let sign = if off < 0 { '-' } else { '+' };
            let time = format!("{}{sign}{:02}:{:02}", local.trim_end_matches('Z'), off.abs() / 60, off.abs() % 60);
            let stream = if stderr { Stream::Stderr } else { Stream::Stdout };
            let line = format!("{time} {stream} {} {content}", if partial { "P" } else { "F" });
            let r = parse_record(line.as_bytes()).unwrap();
            prop_assert_eq!(r, Record { time: (unix, nanos), stream, partial, content: content.as_bytes() });
        }

        #[test]
        fn tail_then_writer_serves_the_last_n_records(
            records in proptest::collection::vec(record_strategy(), 0..40),
            n in 0u64..45,
            unterminated in any::<bool>(),
            follow in any::<bool>(),
        ) {
            let mut log = String::new();
            let mut want = Vec::new();
            for (unix, nanos, stderr, partial, content) in &records {
                let stream = if *stderr { "stderr" } else { "stdout" };
                log += &rec(*unix, *nanos, stream, if *partial { "P" } else { "F" }, content);
                want.push(if *partial { content.clone() } else { format!("{content}\n") });
            }
            if unterminated {
                log += "2026-11-25T10:00:00Z stdout F mid-wri";
            }
            let start = tail_start(&mut Cursor::new(log.as_bytes()), n).unwrap();
            let opts = Options { tail_lines: Some(n), follow, ..Options::default() };
            let mut out = Vec::new();
            let mut rest = &log.as_bytes()[usize::try_from(start).unwrap()..];
            Writer::new(&opts).write_all_from(&mut rest, &mut out).unwrap();
            let skip = want.len().saturating_sub(usize::try_from(n).unwrap());
            prop_assert_eq!(String::from_utf8(out).unwrap(), want[skip..].concat());
        }
    }
}
