//! SPDY/3.1 as Kubernetes streaming speaks it: the framing that
//! moby/spdystream (client-go, the kubelet, containerd's streaming server)
//! puts on an upgraded HTTP connection, usable as client or server over any
//! byte stream.
//!
//! Layers, bottom up:
//! - [`headers`]: name/value blocks and their zlib compression with the fixed
//!   SPDY/3 dictionary, one context per direction per connection;
//! - [`frame`]: the frames and a byte codec ([`Encoder`], [`Decoder`]);
//! - [`connection`]: a [`Connection`] with a reader and a writer task;
//! - [`stream`]: [`Stream`]s, whose halves bridge to `tokio::io::copy`.
//!
//! What the peer does, and so what this module does. Read in moby/spdystream
//! 0.2.0 (Debian's `golang-github-docker-spdystream-dev`) and checked against
//! it live (`tests/data/spdy/interop.go`):
//! - **Flow control: spdystream enforces none.** Its framer parses
//!   WINDOW_UPDATE and its connection drops it ("unhandled frame type"); it
//!   never sends WINDOW_UPDATE or SETTINGS, and writes one DATA frame per
//!   `Write` whatever the window. Waiting for the peer's window would stall
//!   every stream after 64 KiB, so this module never waits for one. It still
//!   sends WINDOW_UPDATE, per stream and for the session (stream 0), for the
//!   bytes the application has consumed, so a strict SPDY/3.1 peer does not
//!   stall either. Memory is bounded by queues instead: a stream's full
//!   queue makes the reader stop reading the socket (spdystream's unbuffered
//!   channels do the same), and writers wait for room in a fixed send budget.
//! - spdystream drops DATA that arrives on a stream before the stream's
//!   SYN_REPLY, so an accepted [`Stream`] replies (with no headers) before its
//!   first write if the application has not replied yet.
//! - spdystream fails the whole connection on a duplicated or upper-case
//!   header name, a connection-level header (`connection`, `host`, …), an
//!   unknown control frame type or a RST_STREAM with status 0. [`Headers`]
//!   lower-cases names and the encoder joins repeated names and refuses the
//!   rest; the connection never sends unknown frames.
//! - spdystream only forgets a stream that is closed both ways or reset, and
//!   its `Close` waits for every stream to go. So dropping a [`Stream`] that is
//!   not closed both ways sends RST_STREAM CANCEL; a peer's RST after its FIN
//!   still reads as a clean end.
//! - On GOAWAY spdystream stops reading the connection, so
//!   [`Connection::goaway`] is for the end of a session.
//! - When the connection ends (EOF, I/O error), reads on every stream end as
//!   at a FIN, as spdystream's do; writes fail.

pub mod connection;
pub mod frame;
pub mod headers;
pub mod stream;

pub use connection::{Connection, OpenOptions, Role};
pub use frame::{Decoder, Encoder, Frame, GoAwayStatus, RstStatus, Setting};
pub use headers::Headers;
pub use stream::{RecvStream, SendStream, Stream};

/// What went wrong on a SPDY connection or stream.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("spdy connection i/o")]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol (or a frame to send cannot be encoded).
    #[error("spdy protocol error: {0}")]
    Protocol(String),
    /// A header block did not inflate or deflate.
    #[error("spdy header compression: {0}")]
    Compression(String),
    #[error("spdy stream {stream_id} reset: {status}")]
    Reset { stream_id: u32, status: RstStatus },
    #[error("spdy stream {0} is closed for writing")]
    StreamClosed(u32),
    #[error("spdy connection closed")]
    ConnectionClosed,
    #[error("spdy connection is going away: no new streams")]
    GoneAway,
    #[error("spdy stream ids exhausted")]
    StreamIdsExhausted,
}

impl SpdyError {
    pub(crate) fn protocol(what: impl Into<String>) -> SpdyError {
        SpdyError::Protocol(what.into())
    }

    /// Whether the peer must be told with GOAWAY PROTOCOL_ERROR.
    fn is_peer_fault(&self) -> bool {
        matches!(self, SpdyError::Protocol(_) | SpdyError::Compression(_))
    }
}

impl From<SpdyError> for std::io::Error {
    fn from(e: SpdyError) -> std::io::Error {
        use std::io::ErrorKind;
        let kind = match &e {
            SpdyError::Io(io) => io.kind(),
            SpdyError::Protocol(_) | SpdyError::Compression(_) => ErrorKind::InvalidData,
            SpdyError::Reset { .. } => ErrorKind::ConnectionReset,
            SpdyError::StreamClosed(_) => ErrorKind::BrokenPipe,
            SpdyError::ConnectionClosed => ErrorKind::ConnectionAborted,
            SpdyError::GoneAway | SpdyError::StreamIdsExhausted => ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

pub type Result<T, E = SpdyError> = std::result::Result<T, E>;
