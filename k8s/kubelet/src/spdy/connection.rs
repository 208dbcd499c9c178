//! A SPDY connection over any byte stream: a reader task routes incoming
//! frames to streams, a writer task puts queued frames on the wire.
//!
//! Frames are encoded by whoever sends them, under one lock that also hands
//! out stream ids, and queued in that order: ids grow on the wire, header
//! blocks enter the deflate stream in wire order, and a stream's SYN_REPLY
//! always precedes its DATA. Nothing the reader task sends (PING replies,
//! refusals) waits for queue room, so it can never block on the peer
//! reading; only DATA waits, for a share of a fixed send budget.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use super::frame::{Decoder, Encoder, Frame, GoAwayStatus, MAX_STREAM_ID, RstStatus, Setting};
use super::headers::Headers;
use super::stream::{Stream, StreamState};
use super::{Result, SpdyError};

/// The largest DATA payload sent in one frame.
pub const MAX_DATA_CHUNK: usize = 16 << 10;
/// The smallest frames a tiny SETTINGS_INITIAL_WINDOW_SIZE can bring.
const MIN_DATA_CHUNK: usize = 1 << 10;
/// Bytes of DATA queued for the socket before writers wait.
const SEND_BUDGET: usize = 256 << 10;
/// The receive window this side has: the SPDY default, as it sends no
/// SETTINGS. WINDOW_UPDATE goes out once half of it has been consumed.
const RECV_WINDOW: u32 = 64 << 10;
/// DATA frames held per stream before the reader stops reading the socket.
const STREAM_QUEUE: usize = 16;
/// Streams the peer opened that the application has not accepted yet; more
/// are refused.
const ACCEPT_QUEUE: usize = 128;

/// Which end of the connection this is: clients open odd stream ids and
/// send odd PING ids, servers even ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

impl Role {
    fn first_id(self) -> u32 {
        match self {
            Role::Client => 1,
            Role::Server => 2,
        }
    }

    /// Whether `id` (stream or ping) is of this side's parity.
    fn owns(self, id: u32) -> bool {
        (id % 2 == 1) == (self == Role::Client)
    }
}

/// How [`Connection::open_stream`] opens a stream.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    fin: bool,
    wait_reply: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// Not half-closed, and wait for the SYN_REPLY (what client-go does:
    /// `CreateStream` then `WaitTimeout`).
    pub fn new() -> OpenOptions {
        OpenOptions { fin: false, wait_reply: true }
    }

    /// Send FIN with the SYN_STREAM: this side will not write (kubectl's
    /// port-forward error stream).
    pub fn fin(mut self, fin: bool) -> OpenOptions {
        self.fin = fin;
        self
    }

    /// Return once SYN_STREAM is queued instead of after the SYN_REPLY; see
    /// [`Stream::wait_reply`].
    pub fn wait_reply(mut self, wait: bool) -> OpenOptions {
        self.wait_reply = wait;
        self
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

enum Out {
    /// Encoded frame bytes, with the send budget they hold until written.
    Frame(Bytes, Option<OwnedSemaphorePermit>),
    /// Write what is queued, then close the write side.
    Shutdown,
}

/// The reader task's route to a stream.
pub(super) struct Entry {
    state: Arc<StreamState>,
    /// Dropped at the peer's FIN, which ends the stream's reads.
    data_tx: Option<mpsc::Sender<Bytes>>,
    /// Taken by the SYN_REPLY.
    reply_tx: Option<oneshot::Sender<Headers>>,
}

/// A stream the peer opened, waiting in the accept queue.
struct Incoming {
    state: Arc<StreamState>,
    headers: Headers,
    data_rx: mpsc::Receiver<Bytes>,
}

/// The send side: the deflate context, the ids, the queue.
pub(super) struct Tx {
    encoder: Encoder,
    out: mpsc::UnboundedSender<Out>,
    next_stream_id: u32,
    next_ping_id: u32,
}

impl Tx {
    pub(super) fn send(&mut self, frame: &Frame, permit: Option<OwnedSemaphorePermit>) -> Result<()> {
        let mut buf = Vec::new();
        self.encoder.encode(frame, &mut buf)?;
        self.out.send(Out::Frame(buf.into(), permit)).map_err(|_| SpdyError::ConnectionClosed)
    }
}

#[derive(Default)]
struct ConnState {
    closed: bool,
    goaway_sent: bool,
    goaway_received: bool,
    /// The highest stream id the peer opened.
    last_peer_stream: u32,
}

pub(super) struct Inner {
    role: Role,
    pub(super) tx: Mutex<Tx>,
    pub(super) budget: Arc<Semaphore>,
    pub(super) streams: Mutex<HashMap<u32, Entry>>,
    /// None once GOAWAY went either way or the connection ended.
    accept_tx: Mutex<Option<mpsc::Sender<Incoming>>>,
    accept_rx: tokio::sync::Mutex<mpsc::Receiver<Incoming>>,
    pings: Mutex<HashMap<u32, oneshot::Sender<()>>>,
    state: Mutex<ConnState>,
    closed: watch::Sender<bool>,
    /// The peer's SETTINGS_INITIAL_WINDOW_SIZE, 0 if it sent none.
    peer_window: AtomicU32,
    /// Bytes consumed on all streams since the last session WINDOW_UPDATE.
    session_unacked: AtomicU32,
}

impl Inner {
    pub(super) fn send(&self, frame: &Frame) -> Result<()> {
        lock(&self.tx).send(frame, None)
    }

    /// The DATA payload size for one frame: 16 KiB, or less if the peer
    /// announced a smaller initial window (but not absurdly small).
    pub(super) fn chunk(&self) -> usize {
        match self.peer_window.load(Ordering::Relaxed) {
            0 => MAX_DATA_CHUNK,
            w => usize::try_from(w).unwrap_or(MAX_DATA_CHUNK).clamp(MIN_DATA_CHUNK, MAX_DATA_CHUNK),
        }
    }

    fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    fn ensure_open(&self) -> Result<()> {
        if self.is_closed() {
            return Err(SpdyError::ConnectionClosed);
        }
        Ok(())
    }

    /// Counts consumed bytes towards WINDOW_UPDATEs, sent once half the
    /// window is consumed.
    pub(super) fn consumed(&self, stream: &StreamState, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let half = RECV_WINDOW / 2;
        let mut updates = Vec::new();
        // Once the peer has finished (or the stream is reset), no more data
        // comes on the stream.
        if !stream.remote_fin.load(Ordering::Acquire) && stream.reset_status().is_none() {
            let total = stream.unacked.fetch_add(n, Ordering::AcqRel).saturating_add(n);
            if total >= half {
                stream.unacked.fetch_sub(total, Ordering::AcqRel);
                updates.push(Frame::WindowUpdate { stream_id: stream.id, delta: total.min(0x7fff_ffff) });
            }
        }
        let total = self.session_unacked.fetch_add(n, Ordering::AcqRel).saturating_add(n);
        if total >= half {
            self.session_unacked.fetch_sub(total, Ordering::AcqRel);
            updates.push(Frame::WindowUpdate { stream_id: 0, delta: total.min(0x7fff_ffff) });
        }
        for f in updates {
            // A closed connection needs no window.
            let _ = self.send(&f);
        }
    }

    /// Handles one frame from the peer; an error ends the connection.
    async fn handle(&self, frame: Frame) -> Result<()> {
        match frame {
            Frame::SynStream { stream_id, fin, unidirectional, headers, .. } => {
                self.on_syn_stream(stream_id, fin, unidirectional, headers);
            }
            Frame::SynReply { stream_id, fin, headers } => {
                if let Some(reply) = lock(&self.streams).get_mut(&stream_id).and_then(|e| e.reply_tx.take()) {
                    let _ = reply.send(headers);
                }
                if fin {
                    self.remote_finished(stream_id);
                }
            }
            Frame::Headers { stream_id, fin, .. } => {
                // Headers after the reply carry nothing Kubernetes uses.
                if fin {
                    self.remote_finished(stream_id);
                }
            }
            Frame::Data { stream_id, fin, data } => {
                let tx = lock(&self.streams).get(&stream_id).and_then(|e| e.data_tx.clone());
                match tx {
                    // A dropped receiver means nobody reads: discard.
                    Some(tx) if !data.is_empty() => {
                        let _ = tx.send(data).await;
                    }
                    Some(_) => {}
                    None => tracing::trace!(stream_id, "spdy: data for a closed or unknown stream dropped"),
                }
                if fin {
                    self.remote_finished(stream_id);
                }
            }
            Frame::RstStream { stream_id, status } => {
                if let Some(entry) = lock(&self.streams).remove(&stream_id) {
                    *lock(&entry.state.reset) = Some(status);
                    tracing::debug!(stream_id, %status, "spdy: stream reset by peer");
                }
            }
            Frame::Settings { settings, .. } => {
                for s in settings.iter().filter(|s| s.id == Setting::INITIAL_WINDOW_SIZE) {
                    self.peer_window.store(s.value, Ordering::Relaxed);
                }
            }
            Frame::Ping { id } => {
                if self.role.owns(id) {
                    if let Some(waiter) = lock(&self.pings).remove(&id) {
                        let _ = waiter.send(());
                    }
                } else {
                    self.send(&Frame::Ping { id })?;
                }
            }
            Frame::GoAway { last_good_stream_id, status } => {
                tracing::debug!(last_good_stream_id, status = status.0, "spdy: peer is going away");
                lock(&self.state).goaway_received = true;
                lock(&self.accept_tx).take();
            }
            // Flow control is not enforced: see the module documentation.
            Frame::WindowUpdate { .. } => {}
            Frame::Unknown { kind, .. } => tracing::trace!(kind, "spdy: unknown control frame ignored"),
        }
        Ok(())
    }

    fn on_syn_stream(&self, id: u32, fin: bool, unidirectional: bool, headers: Headers) {
        let refuse = |status| {
            tracing::debug!(stream_id = id, %status, "spdy: refusing stream");
            let _ = self.send(&Frame::RstStream { stream_id: id, status });
        };
        {
            let mut st = lock(&self.state);
            if self.role.owns(id) || id <= st.last_peer_stream {
                drop(st);
                return refuse(RstStatus::PROTOCOL_ERROR);
            }
            st.last_peer_stream = id;
        }
        let Some(accept) = lock(&self.accept_tx).clone() else { return refuse(RstStatus::REFUSED_STREAM) };
        let state = StreamState::new(id, false);
        state.local_fin.store(unidirectional, Ordering::Release);
        state.remote_fin.store(fin, Ordering::Release);
        let (data_tx, data_rx) = mpsc::channel(STREAM_QUEUE);
        let data_tx = (!fin).then_some(data_tx);
        lock(&self.streams).insert(id, Entry { state: state.clone(), data_tx, reply_tx: None });
        if accept.try_send(Incoming { state, headers, data_rx }).is_err() {
            lock(&self.streams).remove(&id);
            refuse(RstStatus::REFUSED_STREAM);
        }
    }

    fn remote_finished(&self, id: u32) {
        if let Some(entry) = lock(&self.streams).get_mut(&id) {
            entry.state.remote_fin.store(true, Ordering::Release);
            entry.data_tx = None;
        }
    }

    /// Ends the connection: after a protocol error, tells the peer with
    /// GOAWAY; then every stream ends and the writer closes.
    fn teardown(&self, end: Result<()>) {
        let last = {
            let mut st = lock(&self.state);
            st.closed = true;
            st.last_peer_stream
        };
        if let Err(e) = &end {
            tracing::debug!(error = %e, "spdy connection failed");
            if e.is_peer_fault() {
                let _ = self
                    .send(&Frame::GoAway { last_good_stream_id: last, status: GoAwayStatus::PROTOCOL_ERROR });
            }
        }
        let _ = lock(&self.tx).out.send(Out::Shutdown);
        self.budget.close();
        lock(&self.accept_tx).take();
        lock(&self.streams).clear();
        lock(&self.pings).clear();
        self.closed.send_replace(true);
    }
}

/// A SPDY/3.1 connection. Cheap to clone; the connection lives while any
/// clone or any [`Stream`] does, and ends when the peer closes, on a protocol
/// error (after GOAWAY PROTOCOL_ERROR), or when the last handle is dropped
/// (which closes this side's writing).
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

impl Connection {
    /// Starts the reader and writer tasks on `io` (an upgraded HTTP
    /// connection, a WebSocket byte stream, …). Needs a tokio runtime.
    pub fn new<T>(io: T, role: Role) -> Result<Connection>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (accept_tx, accept_rx) = mpsc::channel(ACCEPT_QUEUE);
        let (done_tx, done_rx) = watch::channel(());
        let budget = Arc::new(Semaphore::new(SEND_BUDGET));
        let inner = Arc::new(Inner {
            role,
            tx: Mutex::new(Tx {
                encoder: Encoder::new()?,
                out: out_tx,
                next_stream_id: role.first_id(),
                next_ping_id: role.first_id(),
            }),
            budget: budget.clone(),
            streams: Mutex::new(HashMap::new()),
            accept_tx: Mutex::new(Some(accept_tx)),
            accept_rx: tokio::sync::Mutex::new(accept_rx),
            pings: Mutex::new(HashMap::new()),
            state: Mutex::new(ConnState::default()),
            closed: watch::channel(false).0,
            peer_window: AtomicU32::new(0),
            session_unacked: AtomicU32::new(0),
        });
        tokio::spawn(write_loop(wr, out_rx, budget, done_tx));
        tokio::spawn(read_loop(rd, Arc::downgrade(&inner), done_rx));
        Ok(Connection { inner })
    }

    pub fn role(&self) -> Role {
        self.inner.role
    }

    /// Opens a stream (SYN_STREAM with `headers`) and, unless told not to,
    /// waits for the peer's SYN_REPLY. Bound the wait with
    /// `tokio::time::timeout`; a stream dropped before its reply is reset.
    pub async fn open_stream(&self, headers: Headers, opts: OpenOptions) -> Result<Stream> {
        let inner = &self.inner;
        {
            let st = lock(&inner.state);
            if st.closed {
                return Err(SpdyError::ConnectionClosed);
            }
            if st.goaway_received {
                return Err(SpdyError::GoneAway);
            }
        }
        let (state, data_rx, reply_rx) = {
            let mut tx = lock(&inner.tx);
            let id = tx.next_stream_id;
            if id > MAX_STREAM_ID {
                return Err(SpdyError::StreamIdsExhausted);
            }
            tx.next_stream_id += 2;
            let state = StreamState::new(id, true);
            state.local_fin.store(opts.fin, Ordering::Release);
            let (data_tx, data_rx) = mpsc::channel(STREAM_QUEUE);
            let (reply_tx, reply_rx) = oneshot::channel();
            let entry = Entry { state: state.clone(), data_tx: Some(data_tx), reply_tx: Some(reply_tx) };
            lock(&inner.streams).insert(id, entry);
            let syn = Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                slot: 0,
                fin: opts.fin,
                unidirectional: false,
                headers: headers.clone(),
            };
            // Checked after the insert: a teardown either saw the entry (and
            // dropped it) or had already marked the connection closed.
            if let Err(e) = tx.send(&syn, None).and_then(|()| inner.ensure_open()) {
                lock(&inner.streams).remove(&id);
                return Err(e);
            }
            (state, data_rx, reply_rx)
        };
        let mut stream = Stream::new(inner.clone(), state, headers, data_rx, Some(reply_rx));
        if opts.wait_reply {
            stream.wait_reply().await?;
        }
        Ok(stream)
    }

    /// The next stream the peer opened; `None` once it can open no more
    /// (GOAWAY either way, or the connection ended). Answer it with
    /// [`Stream::reply`], or just write: the first write replies.
    pub async fn accept_stream(&self) -> Option<Stream> {
        let incoming = self.inner.accept_rx.lock().await.recv().await?;
        Some(Stream::new(self.inner.clone(), incoming.state, incoming.headers, incoming.data_rx, None))
    }

    /// Sends a PING and waits for the peer to echo it.
    pub async fn ping(&self) -> Result<Duration> {
        let inner = &self.inner;
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut t = lock(&inner.tx);
            let id = t.next_ping_id;
            t.next_ping_id = match id.checked_add(2) {
                Some(next) => next,
                None => inner.role.first_id(),
            };
            id
        };
        lock(&inner.pings).insert(id, tx);
        let start = Instant::now();
        // Checked after the insert, as in `open_stream`.
        if let Err(e) = inner.send(&Frame::Ping { id }).and_then(|()| inner.ensure_open()) {
            lock(&inner.pings).remove(&id);
            return Err(e);
        }
        rx.await.map_err(|_| SpdyError::ConnectionClosed)?;
        Ok(start.elapsed())
    }

    /// Sends GOAWAY (OK): the peer may open no more streams and new ones are
    /// refused; open streams go on. spdystream stops reading when it gets
    /// GOAWAY, so towards Go peers this ends the session.
    pub fn goaway(&self) -> Result<()> {
        let last = {
            let mut st = lock(&self.inner.state);
            if st.goaway_sent {
                return Ok(());
            }
            st.goaway_sent = true;
            st.last_peer_stream
        };
        lock(&self.inner.accept_tx).take();
        self.inner.send(&Frame::GoAway { last_good_stream_id: last, status: GoAwayStatus::OK })
    }

    /// Whether the connection has ended (peer closed, I/O or protocol error).
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Waits until the connection has ended.
    pub async fn closed(&self) {
        let mut rx = self.inner.closed.subscribe();
        let _ = rx.wait_for(|closed| *closed).await;
    }
}

async fn read_loop<R: AsyncRead + Unpin>(mut rd: R, weak: Weak<Inner>, mut done: watch::Receiver<()>) {
    let mut dec = Decoder::new();
    let mut buf = BytesMut::with_capacity(64 << 10);
    let end = loop {
        let frame = tokio::select! {
            f = next_frame(&mut rd, &mut dec, &mut buf) => f,
            // The writer has stopped (every handle dropped, or a write failed).
            _ = done.changed() => break Ok(()),
        };
        let frame = match frame {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let Some(inner) = weak.upgrade() else { break Ok(()) };
        if let Err(e) = inner.handle(frame).await {
            break Err(e);
        }
    };
    if let Some(inner) = weak.upgrade() {
        inner.teardown(end);
    }
}

async fn next_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    dec: &mut Decoder,
    buf: &mut BytesMut,
) -> Result<Option<Frame>> {
    loop {
        if let Some(f) = dec.decode(buf)? {
            return Ok(Some(f));
        }
        if rd.read_buf(buf).await? == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(SpdyError::protocol("connection ended inside a frame"));
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    wr: W,
    mut rx: mpsc::UnboundedReceiver<Out>,
    budget: Arc<Semaphore>,
    done: watch::Sender<()>,
) {
    let mut w = BufWriter::with_capacity(64 << 10, wr);
    let result: io::Result<()> = async {
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            while let Some(out) = next.take() {
                match out {
                    Out::Frame(bytes, permit) => {
                        w.write_all(&bytes).await?;
                        drop(permit);
                    }
                    Out::Shutdown => return w.flush().await,
                }
                next = rx.try_recv().ok();
            }
            w.flush().await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "spdy: write failed");
    }
    budget.close();
    rx.close();
    let _ = w.shutdown().await;
    drop(done);
}

#[cfg(test)]
mod go_interop;
#[cfg(test)]
mod tests;
