//! `kubectl exec` and `attach` on the node. kubectl (through the API
//! server's relay) speaks the WebSocket remote-command protocol
//! (`v5.channel.k8s.io`, or v4); the agent asks CRI for a streaming URL
//! and bridges the messages to containerd's streaming server, which
//! speaks the same channel framing (`v4.channel.k8s.io`).
//!
//! Known limit: v4 has no "stdin closed" message, so the v5 CLOSE from
//! kubectl (`echo x | kubectl exec -i … cat`, `kubectl cp` into a pod)
//! cannot reach the process until the agent talks SPDY to containerd.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{ClientRequestBuilder, Message};

use crate::Agent;
use crate::cri::{api, describe};
use crate::server::{Body, status};

pub const V5: &str = "v5.channel.k8s.io";
pub const V4: &str = "v4.channel.k8s.io";
/// The v5 channel that says "this stream is closed".
const CLOSE_CHANNEL: u8 = 255;

/// The `PodExecOptions`/`PodAttachOptions` of a request.
#[derive(Debug, Default, PartialEq)]
pub struct Options {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

pub fn parse_options(query: &str) -> Options {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let flag = |k: &str| pairs.iter().any(|(n, v)| n == k && matches!(v.as_str(), "true" | "1" | "True"));
    Options {
        command: pairs.iter().filter(|(n, _)| n == "command").map(|(_, v)| v.clone()).collect(),
        stdin: flag("stdin"),
        stdout: flag("stdout"),
        stderr: flag("stderr"),
        tty: flag("tty"),
    }
}

/// The subprotocol to answer with: v5 when offered, else v4.
fn pick_protocol(req: &Request<Incoming>) -> Option<&'static str> {
    let offered: Vec<String> = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_owned()).collect::<Vec<_>>())
        .collect();
    [V5, V4].into_iter().find(|p| offered.iter().any(|o| o == p))
}

/// The running container's id, by pod and container name.
fn running_container(agent: &Agent, ns: &str, pod: &str, container: &str) -> Result<String, (u16, String)> {
    let Some(p) = agent.pods.find(ns, pod) else {
        return Err((404, format!("pod {pod:?} not found on this node")));
    };
    let statuses = p.status["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(p.status["initContainerStatuses"].as_array().into_iter().flatten());
    for s in statuses {
        if s["name"] == container {
            if s["state"]["running"].is_null() {
                return Err((400, format!("container {container} is not running")));
            }
            if let Some(id) = s["containerID"].as_str() {
                return Ok(id.trim_start_matches("containerd://").to_owned());
            }
        }
    }
    Err((400, format!("container not found ({container:?})")))
}

pub async fn handle(
    agent: Agent,
    attach: bool,
    ns: &str,
    pod: &str,
    container: &str,
    query: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    let opts = parse_options(query);
    let Some(protocol) = pick_protocol(&req) else {
        return status(
            400,
            "BadRequest",
            "this node speaks the WebSocket remote-command protocol (v5.channel.k8s.io or v4.channel.k8s.io) only",
        );
    };
    if !attach && opts.command.is_empty() {
        return status(400, "BadRequest", "you must specify at least 1 command");
    }
    if !(opts.stdin || opts.stdout || opts.stderr) {
        return status(400, "BadRequest", "you must specify at least one of stdin, stdout, stderr");
    }
    let id = match running_container(&agent, ns, pod, container) {
        Ok(id) => id,
        Err((code, msg)) => return status(code, if code == 404 { "NotFound" } else { "BadRequest" }, &msg),
    };
    let mut rt = agent.cri.runtime.clone();
    let url = if attach {
        let r = api::AttachRequest {
            container_id: id,
            stdin: opts.stdin,
            tty: opts.tty,
            stdout: opts.stdout,
            stderr: opts.stderr && !opts.tty,
        };
        rt.attach(r).await.map(|r| r.into_inner().url)
    } else {
        let r = api::ExecRequest {
            container_id: id,
            cmd: opts.command.clone(),
            tty: opts.tty,
            stdin: opts.stdin,
            stdout: opts.stdout,
            stderr: opts.stderr && !opts.tty,
        };
        rt.exec(r).await.map(|r| r.into_inner().url)
    };
    let url = match url {
        Ok(u) => u,
        Err(e) => return status(500, "InternalError", &describe(&e)),
    };
    let Some(key) = req.headers().get("sec-websocket-key").map(|k| derive_accept_key(k.as_bytes())) else {
        return status(400, "BadRequest", "missing Sec-WebSocket-Key");
    };
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let client = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        if let Err(e) = bridge(client, &url).await {
            tracing::debug!(error = %e, "exec stream ended");
        }
    });
    let mut r = Response::new(crate::server::full(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert("upgrade", hyper::header::HeaderValue::from_static("websocket"));
    h.insert("connection", hyper::header::HeaderValue::from_static("Upgrade"));
    h.insert("sec-websocket-protocol", hyper::header::HeaderValue::from_static(protocol));
    if let Ok(v) = hyper::header::HeaderValue::from_str(&key) {
        h.insert("sec-websocket-accept", v);
    }
    r
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Relays channel messages between kubectl and containerd until either
/// side closes; containerd's close (after its error-channel Status) ends
/// kubectl's stream with a normal close.
async fn bridge<S>(client: WebSocketStream<S>, url: &str) -> Result<(), Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let ws_url = url.replacen("http://", "ws://", 1);
    let uri: hyper::Uri = ws_url.parse()?;
    let host = uri.host().unwrap_or("127.0.0.1").to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    let request = ClientRequestBuilder::new(uri).with_sub_protocol(V4);
    let (runtime, _) = tokio_tungstenite::client_async(request, tcp).await?;
    let (mut to_client, mut from_client) = client.split();
    let (mut to_runtime, mut from_runtime) = runtime.split();
    let upstream = async {
        while let Some(msg) = from_client.next().await {
            match msg? {
                Message::Binary(b) if b.first() == Some(&CLOSE_CHANNEL) => {
                    // v5 "stdin closed": v4 cannot say it (see the module doc).
                }
                Message::Binary(b) => to_runtime.send(Message::Binary(b)).await?,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = to_runtime.close().await;
        Ok::<(), Error>(())
    };
    let downstream = async {
        while let Some(msg) = from_runtime.next().await {
            match msg? {
                m @ Message::Binary(_) => to_client.send(m).await?,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
        let _ = to_client.send(Message::Close(Some(frame))).await;
        let _ = to_client.close().await;
        Ok::<(), Error>(())
    };
    tokio::select! {
        r = downstream => r,
        r = upstream => {
            r?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_queries() {
        let o = parse_options("command=ls&command=-l&container=c&stderr=true&stdout=true");
        assert_eq!(o.command, ["ls", "-l"]);
        assert!(o.stdout && o.stderr && !o.stdin && !o.tty);
        let o = parse_options("command=sh&container=c&stdin=true&stdout=true&tty=true");
        assert!(o.stdin && o.tty && !o.stderr);
    }
}
