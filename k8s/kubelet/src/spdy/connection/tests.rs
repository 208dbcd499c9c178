use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::spdy::frame::{Decoder, Encoder};

/// Fails a test that hangs instead of hanging CI.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f).await.expect("timed out")
}

fn pair(buffer: usize) -> (Connection, Connection) {
    let (a, b) = tokio::io::duplex(buffer);
    (Connection::new(a, Role::Client).expect("client"), Connection::new(b, Role::Server).expect("server"))
}

fn stream_type(t: &str) -> Headers {
    Headers::from([("streamType", t)])
}

/// What `kubectl exec -i` does over SPDY (remotecommand v4): error, stdin
/// and stdout streams; stdin is echoed to stdout by the server; the client
/// half-closes stdin, the server sees EOF, closes stdout and reports on the
/// error stream. The small duplex buffer makes both sides wait on each
/// other, and the payload is far over the 64 KiB window.
#[tokio::test]
async fn exec_like_session() {
    let (client, server) = pair(4096);
    let srv = tokio::spawn(async move {
        let mut streams = HashMap::new();
        for _ in 0..3 {
            let s = server.accept_stream().await.expect("a stream");
            s.reply(Headers::new()).expect("reply");
            streams.insert(s.headers().get("streamtype").expect("streamtype").to_string(), s);
        }
        let mut error = streams.remove("error").expect("error");
        let (mut stdin, _) = streams.remove("stdin").expect("stdin").into_split();
        let (_, mut stdout) = streams.remove("stdout").expect("stdout").into_split();
        // The client half-closed the error stream when it opened it.
        assert_eq!(error.read().await.expect("error read"), None);
        let n = tokio::io::copy(&mut stdin, &mut stdout).await.expect("echo");
        stdout.shutdown().await.expect("close stdout");
        error.write(br#"{"status":"Success"}"#).await.expect("status");
        error.close_write().expect("close error");
        (n, server)
    });

    let open = |t: &str, opts| client.open_stream(stream_type(t), opts);
    let mut error = within(open("error", OpenOptions::new().fin(true))).await.expect("error stream");
    let stdin = within(open("stdin", OpenOptions::new())).await.expect("stdin stream");
    let mut stdout = within(open("stdout", OpenOptions::new())).await.expect("stdout stream");
    assert_eq!((error.id(), stdin.id(), stdout.id()), (1, 3, 5));
    assert_eq!(stdin.headers().get("streamtype"), Some("stdin"));

    let payload: Vec<u8> = (0u8..=250).cycle().take(300_000).collect();
    let sent = payload.clone();
    let writer = tokio::spawn(async move {
        stdin.write(&sent).await.expect("write stdin");
        stdin.close_write().expect("close stdin");
        stdin
    });
    let mut echoed = Vec::new();
    within(stdout.read_to_end(&mut echoed)).await.expect("read stdout");
    assert_eq!(echoed.len(), payload.len());
    assert!(echoed == payload, "echo differs");

    within(client.ping()).await.expect("ping answered");

    let mut status = Vec::new();
    within(error.read_to_end(&mut status)).await.expect("read error");
    assert_eq!(status, br#"{"status":"Success"}"#);

    let _stdin = within(writer).await.expect("writer");
    let (n, _server) = within(srv).await.expect("server");
    assert_eq!(n, 300_000);
}

/// A scripted peer: frames in and out through the codec, nothing else.
struct Peer {
    io: DuplexStream,
    enc: Encoder,
    dec: Decoder,
    buf: BytesMut,
}

impl Peer {
    fn new(io: DuplexStream) -> Peer {
        Peer { io, enc: Encoder::new().expect("encoder"), dec: Decoder::new(), buf: BytesMut::new() }
    }

    async fn send(&mut self, f: Frame) {
        let mut w = Vec::new();
        self.enc.encode(&f, &mut w).expect("encode");
        self.io.write_all(&w).await.expect("peer write");
    }

    /// The next frame, or None at EOF.
    async fn recv(&mut self) -> Option<Frame> {
        within(async {
            loop {
                if let Some(f) = self.dec.decode(&mut self.buf).expect("decode") {
                    return Some(f);
                }
                if self.io.read_buf(&mut self.buf).await.expect("peer read") == 0 {
                    return None;
                }
            }
        })
        .await
    }

    /// The next frame that is not a WINDOW_UPDATE.
    async fn recv_skipping_windows(&mut self) -> Option<Frame> {
        loop {
            match self.recv().await {
                Some(Frame::WindowUpdate { .. }) => continue,
                other => return other,
            }
        }
    }
}

fn with_peer(role: Role) -> (Connection, Peer) {
    let (a, b) = tokio::io::duplex(1 << 20);
    (Connection::new(a, role).expect("connection"), Peer::new(b))
}

fn syn(stream_id: u32, fin: bool, headers: Headers) -> Frame {
    Frame::SynStream {
        stream_id,
        associated_to: 0,
        priority: 0,
        slot: 0,
        fin,
        unidirectional: false,
        headers,
    }
}

#[tokio::test]
async fn pings_are_echoed_and_unknown_frames_ignored() {
    let (_client, mut peer) = with_peer(Role::Client);
    peer.send(Frame::Unknown { kind: 10, flags: 0, payload: Bytes::from_static(b"credential") }).await;
    peer.send(Frame::Settings { clear: false, settings: vec![Setting { flags: 0, id: 4, value: 100 }] })
        .await;
    peer.send(Frame::WindowUpdate { stream_id: 0, delta: 1000 }).await;
    peer.send(Frame::Ping { id: 2 }).await;
    assert_eq!(peer.recv().await, Some(Frame::Ping { id: 2 }));
    // A PING of the client's own parity is a reply to nothing: no echo.
    peer.send(Frame::Ping { id: 7 }).await;
    peer.send(Frame::Ping { id: 4 }).await;
    assert_eq!(peer.recv().await, Some(Frame::Ping { id: 4 }));
}

#[tokio::test]
async fn an_accepted_stream_replies_before_its_data_and_acknowledges_what_it_reads() {
    let (server, mut peer) = with_peer(Role::Server);
    peer.send(syn(1, false, Headers::from([("streamtype", "data"), ("port", "80"), ("requestid", "0")])))
        .await;
    let mut stream = within(server.accept_stream()).await.expect("accepted");
    assert_eq!(stream.headers().get("port"), Some("80"));

    // No explicit reply: the first write sends SYN_REPLY first.
    stream.write(b"from server").await.expect("write");
    assert_eq!(
        peer.recv().await,
        Some(Frame::SynReply { stream_id: 1, fin: false, headers: Headers::new() })
    );
    assert_eq!(
        peer.recv().await,
        Some(Frame::Data { stream_id: 1, fin: false, data: Bytes::from_static(b"from server") })
    );

    // 64 KiB in: the reader consumes it and the peer gets window back, for
    // the stream and for the session.
    for _ in 0..4 {
        peer.send(Frame::Data { stream_id: 1, fin: false, data: Bytes::from(vec![7; 16 << 10]) }).await;
    }
    let mut read = 0;
    while read < 64 << 10 {
        read += within(stream.read()).await.expect("read").expect("data").len();
    }
    let (mut stream_credit, mut session_credit) = (0, 0);
    while stream_credit < 32 << 10 || session_credit < 32 << 10 {
        match peer.recv().await {
            Some(Frame::WindowUpdate { stream_id: 1, delta }) => stream_credit += delta,
            Some(Frame::WindowUpdate { stream_id: 0, delta }) => session_credit += delta,
            other => panic!("expected WINDOW_UPDATE, got {other:?}"),
        }
    }
    assert!(stream_credit <= 64 << 10 && session_credit <= 64 << 10);

    // FIN from the peer is EOF; our FIN ends the stream without a reset.
    peer.send(Frame::Data { stream_id: 1, fin: true, data: Bytes::new() }).await;
    assert_eq!(within(stream.read()).await.expect("read"), None);
    stream.close_write().expect("fin");
    stream.close_write().expect("fin again is a no-op");
    assert!(matches!(stream.write(b"late").await, Err(SpdyError::StreamClosed(1))));
    drop(stream);
    assert_eq!(
        peer.recv_skipping_windows().await,
        Some(Frame::Data { stream_id: 1, fin: true, data: Bytes::new() })
    );
    peer.send(Frame::Ping { id: 1 }).await;
    assert_eq!(peer.recv_skipping_windows().await, Some(Frame::Ping { id: 1 }), "no RST_STREAM before");
}

#[tokio::test]
async fn a_stream_dropped_unfinished_is_cancelled() {
    let (client, mut peer) = with_peer(Role::Client);
    let stream =
        client.open_stream(stream_type("stdout"), OpenOptions::new().wait_reply(false)).await.expect("open");
    assert!(matches!(peer.recv().await, Some(Frame::SynStream { stream_id: 1, fin: false, .. })));
    drop(stream);
    assert_eq!(peer.recv().await, Some(Frame::RstStream { stream_id: 1, status: RstStatus::CANCEL }));
}

#[tokio::test]
async fn a_reset_from_the_peer_fails_reads_and_writes() {
    let (client, mut peer) = with_peer(Role::Client);
    let opening =
        tokio::spawn(async move { client.open_stream(stream_type("stdin"), OpenOptions::new()).await });
    assert!(matches!(peer.recv().await, Some(Frame::SynStream { stream_id: 1, .. })));
    peer.send(Frame::SynReply { stream_id: 1, fin: false, headers: Headers::from([("x", "y")]) }).await;
    let mut stream = within(opening).await.expect("task").expect("open");
    assert_eq!(stream.wait_reply().await.expect("reply").get("x"), Some("y"));

    peer.send(Frame::Data { stream_id: 1, fin: false, data: Bytes::from_static(b"before") }).await;
    peer.send(Frame::RstStream { stream_id: 1, status: RstStatus::INTERNAL_ERROR }).await;
    assert_eq!(within(stream.read()).await.expect("read").as_deref(), Some(&b"before"[..]));
    let err = within(stream.read()).await.expect_err("reset");
    assert!(matches!(err, SpdyError::Reset { stream_id: 1, status: RstStatus::INTERNAL_ERROR }), "{err}");
    assert!(matches!(stream.write(b"x").await, Err(SpdyError::Reset { .. })));
    let io_err = io::Error::from(err);
    assert_eq!(io_err.kind(), io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn a_refused_open_fails_with_the_reset() {
    let (client, mut peer) = with_peer(Role::Client);
    let opening = tokio::spawn(async move { client.open_stream(stream_type("x"), OpenOptions::new()).await });
    assert!(matches!(peer.recv().await, Some(Frame::SynStream { stream_id: 1, .. })));
    peer.send(Frame::RstStream { stream_id: 1, status: RstStatus::REFUSED_STREAM }).await;
    let got = within(opening).await.expect("task");
    assert!(matches!(got, Err(SpdyError::Reset { status: RstStatus::REFUSED_STREAM, .. })));
}

#[tokio::test]
async fn goaway_stops_new_streams_not_open_ones() {
    let (client, server) = pair(1 << 16);
    let srv = server.clone();
    let accepted = tokio::spawn(async move {
        let s = srv.accept_stream().await?;
        s.reply(Headers::new()).ok()?;
        Some(s)
    });
    let mut stream = within(client.open_stream(stream_type("data"), OpenOptions::new())).await.expect("open");
    let mut accepted = within(accepted).await.expect("task").expect("accepted");

    server.goaway().expect("goaway");
    // The PING reply comes after the GOAWAY, so the client has seen it.
    within(server.ping()).await.expect("ping");
    within(client.ping()).await.expect("ping");
    assert!(matches!(
        client.open_stream(stream_type("data"), OpenOptions::new()).await,
        Err(SpdyError::GoneAway)
    ));
    assert!(within(server.accept_stream()).await.is_none());

    stream.write(b"still").await.expect("write");
    stream.close_write().expect("fin");
    let mut got = Vec::new();
    within(accepted.read_to_end(&mut got)).await.expect("read");
    assert_eq!(got, b"still");
    accepted.write(b"open").await.expect("write back");
    assert_eq!(within(stream.read()).await.expect("read").as_deref(), Some(&b"open"[..]));
}

#[tokio::test]
async fn peer_eof_ends_every_stream() {
    let (client, mut peer) = with_peer(Role::Client);
    let mut stream =
        client.open_stream(stream_type("stdout"), OpenOptions::new().wait_reply(false)).await.expect("open");
    assert!(matches!(peer.recv().await, Some(Frame::SynStream { .. })));
    peer.send(Frame::SynReply { stream_id: 1, fin: false, headers: Headers::new() }).await;
    peer.send(Frame::Data { stream_id: 1, fin: false, data: Bytes::from_static(b"partial") }).await;
    drop(peer);
    assert_eq!(within(stream.read()).await.expect("read").as_deref(), Some(&b"partial"[..]));
    assert_eq!(within(stream.read()).await.expect("read"), None);
    within(client.closed()).await;
    assert!(client.is_closed());
    assert!(within(client.accept_stream()).await.is_none());
    assert!(matches!(
        client.open_stream(stream_type("x"), OpenOptions::new()).await,
        Err(SpdyError::ConnectionClosed)
    ));
    assert!(matches!(client.ping().await, Err(SpdyError::ConnectionClosed)));
    assert!(stream.write(b"x").await.is_err());
}

#[tokio::test]
async fn a_protocol_error_gets_goaway_and_close() {
    let (client, mut peer) = with_peer(Role::Server);
    // A PING with a 5-byte payload.
    peer.io.write_all(&[0x80, 3, 0, 6, 0, 0, 0, 5, 0, 0, 0, 1, 0]).await.expect("write");
    assert_eq!(
        peer.recv().await,
        Some(Frame::GoAway { last_good_stream_id: 0, status: GoAwayStatus::PROTOCOL_ERROR })
    );
    assert_eq!(peer.recv().await, None, "then the connection closes");
    within(client.closed()).await;
}

#[tokio::test]
async fn bad_stream_ids_are_refused() {
    let (server, mut peer) = with_peer(Role::Server);
    peer.send(syn(2, false, stream_type("even"))).await;
    assert_eq!(peer.recv().await, Some(Frame::RstStream { stream_id: 2, status: RstStatus::PROTOCOL_ERROR }));
    peer.send(syn(5, false, stream_type("five"))).await;
    peer.send(syn(3, false, stream_type("three"))).await;
    assert_eq!(peer.recv().await, Some(Frame::RstStream { stream_id: 3, status: RstStatus::PROTOCOL_ERROR }));
    let s = within(server.accept_stream()).await.expect("stream 5");
    assert_eq!((s.id(), s.headers().get("streamtype")), (5, Some("five")));
}

#[tokio::test]
async fn the_largest_frame_is_delivered_and_writes_are_chunked() {
    let (server, mut peer) = with_peer(Role::Server);
    peer.send(syn(1, false, stream_type("data"))).await;
    let mut stream = within(server.accept_stream()).await.expect("accepted");
    let big = Bytes::from(vec![0x5a; crate::spdy::frame::MAX_PAYLOAD]);
    let sending = tokio::spawn(async move {
        peer.send(Frame::Data { stream_id: 1, fin: true, data: big }).await;
        peer
    });
    let got = within(stream.read()).await.expect("read").expect("data");
    assert_eq!(got.len(), crate::spdy::frame::MAX_PAYLOAD);
    assert_eq!(within(stream.read()).await.expect("read"), None);
    let mut peer = within(sending).await.expect("peer");

    stream.write(&[1; 40_000]).await.expect("write");
    stream.close_write().expect("fin");
    assert!(matches!(peer.recv_skipping_windows().await, Some(Frame::SynReply { stream_id: 1, .. })));
    let mut sizes = Vec::new();
    loop {
        match peer.recv_skipping_windows().await {
            Some(Frame::Data { fin: false, data, .. }) => sizes.push(data.len()),
            Some(Frame::Data { fin: true, data, .. }) if data.is_empty() => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(sizes, [16384, 16384, 7232]);
}

#[tokio::test]
async fn dropping_every_handle_closes_the_connection() {
    let (client, mut peer) = with_peer(Role::Client);
    drop(client);
    assert_eq!(peer.recv().await, None);
}

/// A real spdystream client's bytes, replayed into this side as server.
#[tokio::test]
async fn a_go_client_session_is_served() {
    let (server, mut peer) = with_peer(Role::Server);
    let wire = crate::spdy::headers::tests::hex(crate::spdy::frame::tests::GO_CLIENT_SESSION);
    peer.io.write_all(&wire).await.expect("write");
    let mut error = within(server.accept_stream()).await.expect("error stream");
    let mut stdin = within(server.accept_stream()).await.expect("stdin stream");
    let data = within(server.accept_stream()).await.expect("data stream");
    assert_eq!(error.headers().get("streamtype"), Some("error"));
    assert_eq!(data.headers().get("requestid"), Some("0"));
    assert_eq!(within(error.read()).await.expect("read"), None);
    let mut got = Vec::new();
    within(stdin.read_to_end(&mut got)).await.expect("read stdin");
    assert_eq!(got, b"hello\n");
    assert_eq!(peer.recv().await, Some(Frame::Ping { id: 1 }));
}

#[tokio::test]
async fn a_small_initial_window_makes_smaller_frames() {
    let (server, mut peer) = with_peer(Role::Server);
    let window = Setting { flags: 0, id: Setting::INITIAL_WINDOW_SIZE, value: 4096 };
    peer.send(Frame::Settings { clear: false, settings: vec![window] }).await;
    peer.send(syn(1, false, stream_type("data"))).await;
    let stream = within(server.accept_stream()).await.expect("accepted");
    stream.write(&[0; 10_000]).await.expect("write");
    assert!(matches!(peer.recv().await, Some(Frame::SynReply { .. })));
    let mut sizes = Vec::new();
    while sizes.iter().sum::<usize>() < 10_000 {
        match peer.recv().await {
            Some(Frame::Data { data, .. }) => sizes.push(data.len()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(sizes, [4096, 4096, 1808]);
}

#[tokio::test]
async fn a_reset_after_fin_still_reads_to_eof() {
    let (client, mut peer) = with_peer(Role::Client);
    let mut stream =
        client.open_stream(stream_type("stdout"), OpenOptions::new().wait_reply(false)).await.expect("open");
    assert!(matches!(peer.recv().await, Some(Frame::SynStream { .. })));
    peer.send(Frame::SynReply { stream_id: 1, fin: false, headers: Headers::new() }).await;
    peer.send(Frame::Data { stream_id: 1, fin: true, data: Bytes::from_static(b"all of it") }).await;
    peer.send(Frame::RstStream { stream_id: 1, status: RstStatus::CANCEL }).await;
    peer.send(Frame::Ping { id: 2 }).await;
    assert_eq!(peer.recv().await, Some(Frame::Ping { id: 2 }), "both frames handled");
    let mut got = Vec::new();
    within(stream.read_to_end(&mut got)).await.expect("EOF, not the reset");
    assert_eq!(got, b"all of it");
    assert!(matches!(stream.write(b"x").await, Err(SpdyError::Reset { .. })));
}
