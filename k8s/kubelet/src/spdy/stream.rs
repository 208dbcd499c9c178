//! Streams: the application's side of SYN_STREAM/SYN_REPLY, DATA, FIN and
//! RST_STREAM, as `AsyncRead`/`AsyncWrite` halves.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, mpsc, oneshot};

use super::connection::{Inner, Tx, lock};
use super::frame::{Frame, RstStatus};
use super::headers::Headers;
use super::{Result, SpdyError};

/// What both ends of a stream's bookkeeping share.
pub(super) struct StreamState {
    pub(super) id: u32,
    pub(super) local_fin: AtomicBool,
    pub(super) remote_fin: AtomicBool,
    /// This side sent SYN_REPLY (always true for streams it opened). Only
    /// changed under the `Tx` lock, so a reply is queued before any DATA.
    pub(super) replied: AtomicBool,
    pub(super) reset: Mutex<Option<RstStatus>>,
    /// Bytes consumed since the last WINDOW_UPDATE.
    pub(super) unacked: AtomicU32,
}

impl StreamState {
    pub(super) fn new(id: u32, replied: bool) -> Arc<StreamState> {
        Arc::new(StreamState {
            id,
            local_fin: AtomicBool::new(false),
            remote_fin: AtomicBool::new(false),
            replied: AtomicBool::new(replied),
            reset: Mutex::new(None),
            unacked: AtomicU32::new(0),
        })
    }

    pub(super) fn reset_status(&self) -> Option<RstStatus> {
        *lock(&self.reset)
    }
}

/// What the halves of one stream share; dropping the last half resets an
/// unfinished stream (RST_STREAM CANCEL) and forgets it.
struct StreamCore {
    state: Arc<StreamState>,
    conn: Arc<Inner>,
}

impl StreamCore {
    fn id(&self) -> u32 {
        self.state.id
    }

    fn writable(&self) -> Result<()> {
        if let Some(status) = self.state.reset_status() {
            return Err(SpdyError::Reset { stream_id: self.id(), status });
        }
        if self.state.local_fin.load(Ordering::Acquire) {
            return Err(SpdyError::StreamClosed(self.id()));
        }
        Ok(())
    }

    /// Queues SYN_REPLY if this side has not replied yet; `tx` held.
    fn reply_locked(&self, tx: &mut Tx, headers: Headers) -> Result<()> {
        if self.state.replied.load(Ordering::Acquire) {
            return Ok(());
        }
        self.state.replied.store(true, Ordering::Release);
        tx.send(&Frame::SynReply { stream_id: self.id(), fin: false, headers }, None)
    }

    fn reply(&self, headers: Headers) -> Result<()> {
        let mut tx = lock(&self.conn.tx);
        if let Some(status) = self.state.reset_status() {
            return Err(SpdyError::Reset { stream_id: self.id(), status });
        }
        self.reply_locked(&mut tx, headers)
    }

    fn send_data(&self, data: Bytes, fin: bool, permit: Option<OwnedSemaphorePermit>) -> Result<()> {
        let mut tx = lock(&self.conn.tx);
        self.writable()?;
        self.reply_locked(&mut tx, Headers::new())?;
        if fin {
            self.state.local_fin.store(true, Ordering::Release);
        }
        tx.send(&Frame::Data { stream_id: self.id(), fin, data }, permit)
    }

    fn close_write(&self) -> Result<()> {
        if self.state.local_fin.load(Ordering::Acquire) && self.state.reset_status().is_none() {
            return Ok(());
        }
        self.send_data(Bytes::new(), true, None)
    }

    fn reset(&self, status: RstStatus) {
        {
            let mut reset = lock(&self.state.reset);
            let finished =
                self.state.local_fin.load(Ordering::Acquire) && self.state.remote_fin.load(Ordering::Acquire);
            if reset.is_some() || finished {
                return;
            }
            *reset = Some(status);
        }
        let _ = self.conn.send(&Frame::RstStream { stream_id: self.id(), status });
        lock(&self.conn.streams).remove(&self.id());
    }

    /// The end of the stream's data: EOF (the peer's FIN, even if a reset
    /// followed it, or the end of the connection), or the reset that cut the
    /// data short.
    fn end_of_data(&self) -> Result<()> {
        if self.state.remote_fin.load(Ordering::Acquire) {
            return Ok(());
        }
        match self.state.reset_status() {
            Some(status) => Err(SpdyError::Reset { stream_id: self.id(), status }),
            None => Ok(()),
        }
    }
}

impl Drop for StreamCore {
    fn drop(&mut self) {
        self.reset(RstStatus::CANCEL);
        lock(&self.conn.streams).remove(&self.id());
    }
}

/// A SPDY stream: headers, an inbound byte stream and an outbound one.
/// It implements `AsyncRead` and `AsyncWrite` (shutdown = FIN);
/// [`Stream::into_split`] gives halves to copy in both directions at once.
pub struct Stream {
    headers: Headers,
    reply_rx: Option<oneshot::Receiver<Headers>>,
    reply_headers: Headers,
    recv: RecvStream,
    send: SendStream,
}

impl Stream {
    pub(super) fn new(
        conn: Arc<Inner>,
        state: Arc<StreamState>,
        headers: Headers,
        rx: mpsc::Receiver<Bytes>,
        reply_rx: Option<oneshot::Receiver<Headers>>,
    ) -> Stream {
        let core = Arc::new(StreamCore { state, conn });
        Stream {
            headers,
            reply_rx,
            reply_headers: Headers::new(),
            recv: RecvStream { core: core.clone(), rx, unread: Bytes::new() },
            send: SendStream { core, acquiring: Mutex::new(None) },
        }
    }

    pub fn id(&self) -> u32 {
        self.send.core.id()
    }

    /// The SYN_STREAM's headers (names lower-case).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// For a stream this side opened: waits for the SYN_REPLY and returns
    /// its headers (at once if already received). For an accepted stream:
    /// no headers.
    pub async fn wait_reply(&mut self) -> Result<Headers> {
        if let Some(rx) = self.reply_rx.take() {
            match rx.await {
                Ok(h) => self.reply_headers = h,
                Err(_) => {
                    self.send.core.end_of_data()?;
                    return Err(SpdyError::ConnectionClosed);
                }
            }
        }
        Ok(self.reply_headers.clone())
    }

    /// Answers an accepted stream with SYN_REPLY; later calls, and calls
    /// after a write (which replied), do nothing.
    pub fn reply(&self, headers: Headers) -> Result<()> {
        self.send.reply(headers)
    }

    pub async fn write(&self, data: &[u8]) -> Result<()> {
        self.send.write(data).await
    }

    pub fn close_write(&self) -> Result<()> {
        self.send.close_write()
    }

    pub async fn read(&mut self) -> Result<Option<Bytes>> {
        self.recv.read().await
    }

    pub fn reset(&self, status: RstStatus) {
        self.send.reset(status)
    }

    /// The read and write halves; the stream is reset if both are dropped
    /// before it finished both ways.
    pub fn into_split(self) -> (RecvStream, SendStream) {
        (self.recv, self.send)
    }
}

/// The inbound half of a [`Stream`].
pub struct RecvStream {
    core: Arc<StreamCore>,
    rx: mpsc::Receiver<Bytes>,
    unread: Bytes,
}

impl RecvStream {
    pub fn id(&self) -> u32 {
        self.core.id()
    }

    /// The next bytes from the peer; `None` at its FIN or when the
    /// connection ended; an error if the stream was reset.
    pub async fn read(&mut self) -> Result<Option<Bytes>> {
        if !self.unread.is_empty() {
            return Ok(Some(std::mem::take(&mut self.unread)));
        }
        match self.rx.recv().await {
            Some(data) => {
                self.core.conn.consumed(&self.core.state, data.len());
                Ok(Some(data))
            }
            None => self.core.end_of_data().map(|()| None),
        }
    }
}

impl AsyncRead for RecvStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.unread.is_empty() {
            match ready!(this.rx.poll_recv(cx)) {
                Some(data) => {
                    this.core.conn.consumed(&this.core.state, data.len());
                    this.unread = data;
                }
                None => return Poll::Ready(this.core.end_of_data().map_err(io::Error::from)),
            }
        }
        let n = buf.remaining().min(this.unread.len());
        buf.put_slice(&this.unread[..n]);
        this.unread.advance(n);
        Poll::Ready(Ok(()))
    }
}

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// The outbound half of a [`Stream`].
pub struct SendStream {
    core: Arc<StreamCore>,
    /// `poll_write`'s wait for send budget (in a mutex only to be `Sync`).
    acquiring: Mutex<Option<Acquire>>,
}

impl SendStream {
    pub fn id(&self) -> u32 {
        self.core.id()
    }

    /// Queues `data` as DATA frames of at most 16 KiB, waiting while the
    /// send queue is full.
    pub async fn write(&self, data: &[u8]) -> Result<()> {
        for chunk in data.chunks(self.core.conn.chunk()) {
            self.core.writable()?;
            let permits = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            let permit = self
                .core
                .conn
                .budget
                .clone()
                .acquire_many_owned(permits)
                .await
                .map_err(|_| SpdyError::ConnectionClosed)?;
            self.core.send_data(Bytes::copy_from_slice(chunk), false, Some(permit))?;
        }
        Ok(())
    }

    /// Half-closes the stream: an empty DATA frame with FIN. Idempotent.
    pub fn close_write(&self) -> Result<()> {
        self.core.close_write()
    }

    pub fn reply(&self, headers: Headers) -> Result<()> {
        self.core.reply(headers)
    }

    /// Aborts the stream both ways (RST_STREAM with `status`, usually
    /// [`RstStatus::CANCEL`]).
    pub fn reset(&self, status: RstStatus) {
        self.core.reset(status)
    }
}

impl AsyncWrite for SendStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        this.core.writable()?;
        let want = buf.len().min(this.core.conn.chunk());
        let slot = this.acquiring.get_mut().unwrap_or_else(PoisonError::into_inner);
        let budget = &this.core.conn.budget;
        let acquire = slot.get_or_insert_with(|| {
            Box::pin(budget.clone().acquire_many_owned(u32::try_from(want).unwrap_or(u32::MAX)))
        });
        let permit = ready!(acquire.as_mut().poll(cx));
        *slot = None;
        let permit = permit.map_err(|_| io::Error::from(SpdyError::ConnectionClosed))?;
        // The permit may be for an earlier, different buffer.
        let n = want.min(permit.num_permits());
        this.core.send_data(Bytes::copy_from_slice(&buf[..n]), false, Some(permit))?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.core.close_write().map_err(io::Error::from))
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().send).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().send).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().send).poll_shutdown(cx)
    }
}
