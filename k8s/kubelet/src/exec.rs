//! `kubectl exec` and `attach` on the node. kubectl (through the API
//! server's relay) speaks the WebSocket remote-command protocol
//! (`v5.channel.k8s.io`, or v4); the agent asks CRI for a streaming URL
//! and talks SPDY (`v4.channel.k8s.io`) to containerd's streaming server:
//! one stream per channel, so the v5 "stdin closed" message becomes a FIN
//! on the stdin stream (`kubectl cp` into a pod, `echo x | kubectl exec -i`).
//! containerd 1.6 knows no v5 and its WebSocket v4 cannot close stdin.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use crate::Agent;
use crate::cri::{api, describe};
use crate::server::{Body, status};
use crate::spdy;

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
        if let Err(e) = bridge(client, &url, &opts).await {
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

const CH_STDIN: u8 = 0;
const CH_STDOUT: u8 = 1;
const CH_STDERR: u8 = 2;
const CH_ERROR: u8 = 3;
const CH_RESIZE: u8 = 4;

/// Opens the SPDY session to containerd's streaming URL.
async fn dial_runtime(url: &str) -> Result<spdy::Connection, Error> {
    let uri: hyper::Uri = url.parse()?;
    let host = uri.host().unwrap_or("127.0.0.1").to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
    let req = hyper::Request::post(path)
        .header("host", format!("{host}:{port}"))
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", V4)
        .body(http_body_util::Empty::<Bytes>::new())?;
    let mut resp = sender.send_request(req).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(format!("the runtime's streaming server answered {}", resp.status()).into());
    }
    let upgraded = hyper::upgrade::on(&mut resp).await?;
    Ok(spdy::Connection::new(TokioIo::new(upgraded), spdy::Role::Client)?)
}

/// Relays kubectl's channel messages to one SPDY stream per channel and
/// back; when the process's output ends, the runtime's verdict (a Status)
/// goes on the error channel and the WebSocket closes normally.
async fn bridge<S>(client: WebSocketStream<S>, url: &str, opts: &Options) -> Result<(), Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let conn = dial_runtime(url).await?;
    let open = |kind: &str| {
        let headers = spdy::Headers::new().with("streamtype", kind);
        conn.open_stream(headers, spdy::OpenOptions::new().wait_reply(false))
    };
    let mut error = open("error").await?;
    error.close_write()?;
    let stdin = if opts.stdin { Some(open("stdin").await?) } else { None };
    let stdout = if opts.stdout { Some(open("stdout").await?) } else { None };
    let stderr = if opts.stderr && !opts.tty { Some(open("stderr").await?) } else { None };
    let resize = if opts.tty { Some(open("resize").await?) } else { None };

    let (mut to_client, mut from_client) = client.split();
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<(u8, Bytes)>(16);
    let pump = |stream: Option<spdy::Stream>, channel: u8| {
        let tx = out_tx.clone();
        async move {
            let Some(mut s) = stream else { return };
            while let Ok(Some(chunk)) = s.read().await {
                let mut msg = Vec::with_capacity(chunk.len() + 1);
                msg.push(channel);
                msg.extend_from_slice(&chunk);
                if tx.send((channel, Bytes::from(msg))).await.is_err() {
                    return;
                }
            }
        }
    };
    let outputs = async {
        tokio::join!(pump(stdout, CH_STDOUT), pump(stderr, CH_STDERR));
        let mut verdict = Vec::new();
        while let Ok(Some(chunk)) = error.read().await {
            verdict.extend_from_slice(&chunk);
        }
        if verdict.is_empty() {
            verdict = br#"{"metadata":{},"status":"Success"}"#.to_vec();
        }
        let mut msg = vec![CH_ERROR];
        msg.extend_from_slice(&verdict);
        let _ = out_tx.send((CH_ERROR, Bytes::from(msg))).await;
    };
    let writer = async {
        while let Some((channel, msg)) = out_rx.recv().await {
            to_client.send(Message::Binary(msg)).await?;
            if channel == CH_ERROR {
                break;
            }
        }
        let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
        let _ = to_client.send(Message::Close(Some(frame))).await;
        let _ = to_client.close().await;
        Ok::<(), Error>(())
    };
    let reader = async {
        while let Some(msg) = from_client.next().await {
            let Message::Binary(b) = msg? else { continue };
            let Some((&channel, payload)) = b.split_first() else { continue };
            match channel {
                CH_STDIN => {
                    if let Some(s) = &stdin {
                        s.write(payload).await?;
                    }
                }
                CH_RESIZE => {
                    if let Some(s) = &resize {
                        s.write(payload).await?;
                    }
                }
                CLOSE_CHANNEL if payload.first() == Some(&CH_STDIN) => {
                    if let Some(s) = &stdin {
                        s.close_write()?;
                    }
                }
                _ => {}
            }
        }
        // kubectl went away: end the process's input.
        if let Some(s) = &stdin {
            let _ = s.close_write();
        }
        Ok::<(), Error>(())
    };
    let main = async { tokio::join!(outputs, writer).1 };
    tokio::pin!(main);
    tokio::pin!(reader);
    tokio::select! {
        w = &mut main => {
            // Give kubectl a moment to answer the close, then let go.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut reader).await;
            w
        }
        _ = &mut reader => {
            // kubectl is gone: the verdict has nobody to go to. Give the
            // process a moment to end with its stdin, then let go (the
            // runtime session closes with the connection).
            tokio::time::timeout(std::time::Duration::from_secs(5), &mut main).await.unwrap_or(Ok(()))
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
