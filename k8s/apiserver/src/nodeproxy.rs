//! `pods/log` (and, through the same client, the streaming subresources):
//! the API server finds the pod's node and asks that node's agent, over
//! TLS with its own client certificate (`kube-apiserver-kubelet-client`)
//! and the agent's certificate checked against the cluster CA.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;

use crate::api::Ctx;
use crate::status::ApiError;

/// The API server's identity towards node agents.
#[derive(Clone, Default)]
pub struct KubeletClient {
    /// Its client certificate (replaceable while it runs); none: agents
    /// are not reached (no logs, exec, port-forward).
    pub certificate: Option<lichen_client::LiveCertificate>,
    /// The CA agents' serving certificates come from.
    pub ca_pem: String,
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// A connection pool to agents (plain requests), and the TLS config for
/// the one-off connections upgraded requests need.
pub struct NodeClient {
    http: Client<Https, Empty<Bytes>>,
    tls: Arc<rustls::ClientConfig>,
}

impl NodeClient {
    pub fn new(k: &KubeletClient) -> Result<Option<NodeClient>, String> {
        let Some(certificate) = &k.certificate else {
            return Ok(None);
        };
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(k.ca_pem.as_bytes()) {
            roots.add(c.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        }
        let tls =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_client_cert_resolver(certificate.client_resolver());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_only()
            .enable_http1()
            .build();
        Ok(Some(NodeClient { http: Client::builder(TokioExecutor::new()).build(https), tls: Arc::new(tls) }))
    }
}

/// Whether the request is for a subresource the node serves.
pub fn is_node_proxy(ctx: &Ctx) -> bool {
    ctx.is("", "pods")
        && matches!(ctx.req.subresource.as_deref(), Some("log" | "exec" | "attach" | "portforward"))
}

fn bad(msg: String) -> ApiError {
    ApiError::BadRequest(msg)
}

/// The container a request means: the one named, or the only one.
fn container_of(ctx: &Ctx, pod: &Value, name: &str) -> Result<String, ApiError> {
    let names = |k: &str| -> Vec<String> {
        pod["spec"][k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect()
    };
    let (regular, init) = (names("containers"), names("initContainers"));
    match ctx.params.get("container").filter(|c| !c.is_empty()) {
        Some(c) if regular.iter().chain(&init).any(|n| n == c) => Ok(c.to_owned()),
        Some(c) => Err(bad(format!("container {c} is not valid for pod {name}"))),
        None if regular.len() == 1 => Ok(regular[0].clone()),
        None => {
            let mut msg = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                regular.join(" ")
            );
            if !init.is_empty() {
                msg.push_str(&format!(" or one of the init containers: [{}]", init.join(" ")));
            }
            Err(bad(msg))
        }
    }
}

/// `https://<address>:<port>` of a node's agent.
async fn node_location(ctx: &Ctx, node_name: &str) -> Result<String, ApiError> {
    let res = ctx.api.find("", "v1", "nodes").ok_or(ApiError::NoRoute)?;
    let key = crate::objects::key(&res, "", node_name);
    let kv = ctx
        .store(node_name, move |s| s.get(&key, None))
        .await?
        .ok_or_else(|| bad(format!("node {node_name:?} not found")))?;
    let node: Value = serde_json::from_slice(&kv.value).map_err(|e| ApiError::Internal(e.to_string()))?;
    let addrs = node["status"]["addresses"].as_array().cloned().unwrap_or_default();
    let pick = |t: &str| {
        addrs.iter().find(|a| a["type"] == t).and_then(|a| a["address"].as_str()).map(str::to_owned)
    };
    let addr = pick("InternalIP")
        .or_else(|| pick("ExternalIP"))
        .or_else(|| pick("Hostname"))
        .ok_or_else(|| bad(format!("node {node_name:?} has no address")))?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_u64().unwrap_or(10250);
    let host = if addr.contains(':') { format!("[{addr}]") } else { addr };
    Ok(format!("https://{host}:{port}"))
}

/// Serves `pods/log`, `exec`, `attach` and `portforward` through the
/// pod's node agent. Upgraded requests (WebSocket, SPDY) are relayed
/// byte for byte once the agent agrees to the upgrade, as upstream's
/// upgrade-aware proxy does, so every protocol kubectl speaks passes.
pub async fn handle(
    ctx: &Ctx,
    method: &hyper::Method,
    raw_query: &str,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response, ApiError> {
    let name = ctx.req.name.clone().ok_or(ApiError::NoRoute)?;
    let (pod, _) = crate::crud::current(ctx, &name).await?;
    let sub = ctx.req.subresource.as_deref().unwrap_or("");
    let node = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty());
    let Some(node) = node else {
        return Err(bad(format!("pod {name} does not have a host assigned")));
    };
    let client = ctx
        .api
        .node_client()
        .ok_or_else(|| ApiError::ServiceUnavailable("no client for node agents is configured".into()))?;
    let base = node_location(ctx, node).await?;
    let ns = &ctx.req.namespace;
    if sub == "portforward" {
        let url = format!("{base}/portForward/{ns}/{name}?{raw_query}");
        return relay_upgrade(&client, method, &url, &ctx.headers, upgrade).await;
    }
    let container = container_of(ctx, &pod, &name)?;
    if sub == "exec" || sub == "attach" {
        let url = format!("{base}/{sub}/{ns}/{name}/{container}?{raw_query}");
        return relay_upgrade(&client, method, &url, &ctx.headers, upgrade).await;
    }
    let mut query: Vec<(String, String)> = ctx.params.pairs().filter(|(k, _)| k != "container").collect();
    query.sort();
    let q = serde_urlencoded::to_string(&query).unwrap_or_default();
    let url = format!("{base}/containerLogs/{ns}/{name}/{container}?{q}");
    let uri: hyper::Uri = url.parse().map_err(|e| ApiError::Internal(format!("{url}: {e}")))?;
    let resp = client.http.get(uri).await.map_err(|e| {
        ApiError::ServiceUnavailable(format!("error trying to reach the node agent of {node}: {e}"))
    })?;
    let (parts, body) = resp.into_parts();
    let mut out = Response::new(Body::new(body));
    *out.status_mut() = parts.status;
    if let Some(ct) = parts.headers.get("content-type") {
        out.headers_mut().insert("content-type", ct.clone());
    }
    Ok(out)
}

/// Headers of an upgrade request that the agent must see.
const UPGRADE_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
];

fn unreachable(url: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::ServiceUnavailable(format!("error dialing the node agent at {url}: {e}"))
}

/// Sends an upgrade request to the agent on a connection of its own; on
/// 101 both upgraded connections are spliced, otherwise the agent's answer
/// (a Status) goes back as it is.
async fn relay_upgrade(
    client: &NodeClient,
    method: &hyper::Method,
    url: &str,
    headers: &hyper::HeaderMap,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response, ApiError> {
    let uri: hyper::Uri = url.parse().map_err(|e| ApiError::Internal(format!("{url}: {e}")))?;
    let host = uri.host().unwrap_or("").trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(10250);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| unreachable(url, e))?;
    let server_name =
        rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| unreachable(url, e))?;
    let tls = tokio_rustls::TlsConnector::from(client.tls.clone())
        .connect(server_name, tcp)
        .await
        .map_err(|e| unreachable(url, e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .map_err(|e| unreachable(url, e))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
    let mut req =
        hyper::Request::builder().method(method.clone()).uri(path).header("host", format!("{host}:{port}"));
    for name in UPGRADE_HEADERS {
        for v in headers.get_all(*name) {
            req = req.header(*name, v.clone());
        }
    }
    let req = req.body(Empty::<Bytes>::new()).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut resp = sender.send_request(req).await.map_err(|e| unreachable(url, e))?;
    let status = resp.status();
    let mut out_headers = hyper::HeaderMap::new();
    for (k, v) in resp.headers() {
        let name = k.as_str();
        if UPGRADE_HEADERS.contains(&name) || name == "sec-websocket-accept" || name == "content-type" {
            out_headers.append(k.clone(), v.clone());
        }
    }
    if status != hyper::StatusCode::SWITCHING_PROTOCOLS {
        let (_, body) = resp.into_parts();
        let mut out = Response::new(Body::new(body));
        *out.status_mut() = status;
        *out.headers_mut() = out_headers;
        return Ok(out);
    }
    let Some(client_upgrade) = upgrade else {
        return Err(bad("the request asked for a protocol upgrade the server cannot perform".into()));
    };
    let agent_upgrade = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        let (Ok(a), Ok(b)) = (client_upgrade.await, agent_upgrade.await) else { return };
        let mut a = hyper_util::rt::TokioIo::new(a);
        let mut b = hyper_util::rt::TokioIo::new(b);
        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
    });
    let mut out = Response::new(Body::empty());
    *out.status_mut() = status;
    *out.headers_mut() = out_headers;
    Ok(out)
}
