//! `kubectl port-forward` on the node. kubectl speaks SPDY/3.1: inside a
//! WebSocket (`SPDY/3.1+portforward.k8s.io`, what 1.37 tries first) or,
//! as a fallback, on the upgraded HTTP connection itself. Each forwarded
//! connection is a pair of SPDY streams (`streamType` error and data, the
//! same `requestID`); the data stream is spliced to a TCP connection made
//! inside the pod's network namespace to `localhost:<port>`, so apps bound
//! to 127.0.0.1 in the pod are reachable, as upstream.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream as _};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;

use crate::Agent;
use crate::cri::{api, describe};
use crate::server::{Body, full, status};
use crate::spdy::{self, Connection, Headers, Role};

pub const WS_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
pub const STREAM_PROTOCOL: &str = "portforward.k8s.io";
/// A stream pair not complete after this is refused (upstream's default).
const PAIR_TIMEOUT: Duration = Duration::from_secs(30);

fn header(req: &Request<Incoming>, name: &str) -> Vec<String> {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_owned()).collect::<Vec<_>>())
        .collect()
}

/// The pod sandbox's network namespace, as `/proc/<pid>/ns/net` of its
/// pause process (from CRI's verbose sandbox status).
async fn netns_of(agent: &Agent, ns: &str, pod: &str) -> Result<(String, String), (u16, String)> {
    let Some(p) = agent.pods.find(ns, pod) else {
        return Err((404, format!("pod {pod:?} not found on this node")));
    };
    let rt =
        crate::pods::runtime::inspect(&agent.cri, &p.metadata.uid).await.map_err(|e| (500, describe(&e)))?;
    let Some(sandbox) = rt.sandbox.filter(|s| s.ready) else {
        return Err((400, format!("pod {pod} has no running sandbox")));
    };
    if p.spec.host_network {
        return Ok((sandbox.id, "/proc/self/ns/net".into()));
    }
    let mut rtc = agent.cri.runtime.clone();
    let st = rtc
        .pod_sandbox_status(api::PodSandboxStatusRequest {
            pod_sandbox_id: sandbox.id.clone(),
            verbose: true,
        })
        .await
        .map_err(|e| (500, describe(&e)))?
        .into_inner();
    let info: serde_json::Value =
        st.info.get("info").and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
    let pid = info["pid"]
        .as_u64()
        .filter(|p| *p > 0)
        .ok_or((500, "the runtime did not report the sandbox's process".to_owned()))?;
    Ok((sandbox.id, format!("/proc/{pid}/ns/net")))
}

/// Connects to `localhost:port` inside a network namespace: a thread of
/// its own (never a pooled one, which would stay in the pod's namespace)
/// enters it, makes the socket (which stays in that namespace) and hands
/// it back.
async fn dial_in_netns(netns: &str, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let netns = netns.to_owned();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("netns-dial".into()).spawn(move || {
        let dial = || -> std::io::Result<std::net::TcpStream> {
            let f = std::fs::File::open(&netns)?;
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&f),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
            let s = std::net::TcpStream::connect_timeout(&v4, Duration::from_secs(10)).or_else(|e4| {
                std::net::TcpStream::connect_timeout(&v6, Duration::from_secs(10)).map_err(|_| e4)
            })?;
            s.set_nonblocking(true)?;
            Ok(s)
        };
        let _ = tx.send(dial());
    })?;
    let std_stream = rx.await.map_err(std::io::Error::other)??;
    tokio::net::TcpStream::from_std(std_stream)
}

pub async fn handle(agent: Agent, ns: &str, pod: &str, req: Request<Incoming>) -> Response<Body> {
    let ws = header(&req, "upgrade").iter().any(|u| u.eq_ignore_ascii_case("websocket"));
    let (sandbox, netns) = match netns_of(&agent, ns, pod).await {
        Ok(x) => x,
        Err((code, msg)) => return status(code, if code == 404 { "NotFound" } else { "BadRequest" }, &msg),
    };
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert("connection", hyper::header::HeaderValue::from_static("Upgrade"));
    if ws {
        if !header(&req, "sec-websocket-protocol").iter().any(|p| p == WS_PROTOCOL) {
            return status(
                400,
                "BadRequest",
                &format!("port-forward over WebSocket needs the {WS_PROTOCOL} subprotocol"),
            );
        }
        let Some(key) = req.headers().get("sec-websocket-key").map(|k| derive_accept_key(k.as_bytes()))
        else {
            return status(400, "BadRequest", "missing Sec-WebSocket-Key");
        };
        h.insert("upgrade", hyper::header::HeaderValue::from_static("websocket"));
        h.insert("sec-websocket-protocol", hyper::header::HeaderValue::from_static(WS_PROTOCOL));
        if let Ok(v) = hyper::header::HeaderValue::from_str(&key) {
            h.insert("sec-websocket-accept", v);
        }
    } else {
        if !header(&req, "x-stream-protocol-version").iter().any(|p| p == STREAM_PROTOCOL) {
            return status(
                400,
                "BadRequest",
                &format!("port-forward needs the {STREAM_PROTOCOL} stream protocol"),
            );
        }
        h.insert("upgrade", hyper::header::HeaderValue::from_static("SPDY/3.1"));
        h.insert("x-stream-protocol-version", hyper::header::HeaderValue::from_static(STREAM_PROTOCOL));
    }
    let upgrade = hyper::upgrade::on(req);
    let pod_uid = agent.pods.find(ns, pod).map(|p| p.metadata.uid).unwrap_or_default();
    let target = Target { sandbox, netns, pod_uid };
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let io = TokioIo::new(upgraded);
        let conn = if ws {
            let socket = WebSocketStream::from_raw_socket(io, WsRole::Server, None).await;
            Connection::new(WsBytes::new(socket), Role::Server)
        } else {
            Connection::new(io, Role::Server)
        };
        match conn {
            Ok(c) => serve(c, target).await,
            Err(e) => tracing::debug!(error = %e, "port-forward connection"),
        }
    });
    resp
}

struct Target {
    sandbox: String,
    netns: String,
    pod_uid: String,
}

/// Pairs each connection's error and data streams and forwards them.
async fn serve(conn: Connection, target: Target) {
    let target = std::sync::Arc::new(target);
    let mut waiting: HashMap<String, (spdy::Stream, tokio::time::Instant)> = HashMap::new();
    while let Some(stream) = conn.accept_stream().await {
        let kind = stream.headers().get("streamtype").unwrap_or("").to_owned();
        if let Err(e) = stream.reply(Headers::default()) {
            tracing::debug!(error = %e, "port-forward reply");
            continue;
        }
        // Old clients without requestID pair by stream id (error = data - 2).
        let id = stream.headers().get("requestid").map(str::to_owned).unwrap_or_else(|| {
            let sid = stream.id();
            if kind == "error" { sid.to_string() } else { sid.saturating_sub(2).to_string() }
        });
        waiting.retain(|_, (_, at)| at.elapsed() < PAIR_TIMEOUT);
        match waiting.remove(&id) {
            Some((other, _)) => {
                let (error, data) = if kind == "error" { (stream, other) } else { (other, stream) };
                tokio::spawn(forward(error, data, target.clone()));
            }
            None => {
                waiting.insert(id, (stream, tokio::time::Instant::now()));
            }
        }
    }
}

async fn forward(error: spdy::Stream, data: spdy::Stream, target: std::sync::Arc<Target>) {
    tracing::debug!(headers = ?data.headers(), "port-forward stream pair");
    let port_header = data.headers().get("port").unwrap_or("").to_owned();
    let Ok(port) = port_header.parse::<u16>() else {
        let _ = error.write(format!("invalid port {port_header:?}").as_bytes()).await;
        let _ = error.close_write();
        return;
    };
    let tcp = match dial_in_netns(&target.netns, port).await {
        Ok(t) => t,
        Err(e) => {
            let msg = format!(
                "error forwarding port {port} to pod {}, uid {}: failed to connect to localhost:{port} inside the pod's network namespace: {e}",
                target.sandbox, target.pod_uid
            );
            tracing::info!(error = %msg, "port-forward");
            let _ = error.write(msg.as_bytes()).await;
            let _ = error.close_write();
            // End the data stream cleanly and let the client read the
            // message before the streams go (a reset would lose it).
            let _ = data.close_write();
            let mut data = data;
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while let Ok(Some(_)) = data.read().await {}
            })
            .await;
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                let mut error = error;
                while let Ok(Some(_)) = error.read().await {}
            })
            .await;
            return;
        }
    };
    let _ = error.close_write();
    let (mut tcp_read, mut tcp_write) = tcp.into_split();
    let (mut recv, mut send) = data.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut recv, &mut tcp_write).await;
        let _ = tcp_write.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut tcp_read, &mut send).await;
        let _ = send.shutdown().await;
    };
    tokio::join!(up, down);
}

/// A WebSocket as a byte stream: binary messages in, binary messages out
/// (kubectl splits SPDY frames across messages freely).
pub struct WsBytes<S> {
    ws: WebSocketStream<S>,
    pending: Bytes,
}

impl<S> WsBytes<S> {
    pub fn new(ws: WebSocketStream<S>) -> WsBytes<S> {
        WsBytes { ws, pending: Bytes::new() }
    }
}

fn io_err(e: tokio_tungstenite::tungstenite::Error) -> std::io::Error {
    std::io::Error::other(e)
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsBytes<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut self.ws).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) | Poll::Ready(Some(Ok(Message::Close(_)))) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Ok(Message::Binary(b)))) => self.pending = b,
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(io_err(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsBytes<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.ws).poll_ready(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(io_err(e))),
            Poll::Ready(Ok(())) => {}
        }
        let msg = Message::Binary(Bytes::copy_from_slice(data));
        Poll::Ready(Pin::new(&mut self.ws).start_send(msg).map(|_| data.len()).map_err(io_err))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(io_err)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(io_err)
    }
}
