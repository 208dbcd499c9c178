//! The agent's HTTPS endpoint (port 10250, as the kubelet's): container
//! logs now; exec, attach and port-forward come through the same door.
//!
//! Only the API server may call it: TLS requires a client certificate from
//! the cluster CA, and the certificate must name the API server's
//! kubelet-client identity or a cluster admin (`system:masters`). Nodes'
//! own certificates are refused, so one node cannot read another's pods.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_stream::wrappers::ReceiverStream;

use crate::Agent;

/// The CN of the API server's client certificate for agents.
pub const APISERVER_CLIENT_CN: &str = "kube-apiserver-kubelet-client";

pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// TLS for the endpoint: our serving certificate, clients verified
/// against the cluster CA.
pub fn tls_config(
    certificate: &lichen_client::LiveCertificate,
    ca_pem: &str,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c?)?;
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(certificate.server_resolver());
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Whether the client certificate may use the endpoint.
fn allowed(cert: &CertificateDer<'_>) -> bool {
    let Ok((_, x509)) = x509_parser::parse_x509_certificate(cert.as_ref()) else { return false };
    let subject = x509.subject();
    let cn_ok = subject.iter_common_name().any(|c| c.as_str() == Ok(APISERVER_CLIENT_CN));
    let admin = subject.iter_organization().any(|o| o.as_str() == Ok("system:masters"));
    cn_ok || admin
}

/// Serves until the process ends.
pub async fn serve(agent: Agent, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "agent endpoint: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let agent = agent.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
            let stream = match handshake
                .await
                .unwrap_or_else(|_| Err(std::io::Error::other("TLS handshake timed out")))
            {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "agent endpoint: TLS handshake failed");
                    return;
                }
            };
            let ok = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).is_some_and(allowed);
            let service = hyper::service::service_fn(move |req| {
                let agent = agent.clone();
                async move { Ok::<_, Infallible>(route(agent, ok, req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}

pub(crate) fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

/// A `metav1.Status` response.
pub fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    let mut r = Response::new(full(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    r
}

async fn route(agent: Agent, allowed: bool, req: Request<Incoming>) -> Response<Body> {
    if !allowed {
        return status(403, "Forbidden", "only the API server may use the agent endpoint");
    }
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["healthz"] => Response::new(full("ok")),
        ["containerLogs", ns, pod, container] => container_logs(agent, ns, pod, container, &query).await,
        ["exec", ns, pod, container] => {
            crate::exec::handle(agent, false, ns, pod, container, &query, req).await
        }
        ["attach", ns, pod, container] => {
            crate::exec::handle(agent, true, ns, pod, container, &query, req).await
        }
        ["portForward", ns, pod] => crate::portforward::handle(agent, ns, pod, req).await,
        _ => status(404, "NotFound", &format!("no handler for {path}")),
    }
}

async fn container_logs(agent: Agent, ns: &str, pod: &str, container: &str, query: &str) -> Response<Body> {
    let (opts, previous) = match crate::logs::parse_query(query) {
        Ok(x) => x,
        Err(e) => return status(e.code, e.reason, &e.message),
    };
    let (path, id) = match crate::logs::locate(&agent, ns, pod, container, previous).await {
        Ok(x) => x,
        Err(e) => return status(e.code, e.reason, &e.message),
    };
    let rx = crate::logs::stream(agent, path, id, opts);
    let frames = tokio_stream::StreamExt::map(ReceiverStream::new(rx), |b| Ok(Frame::data(b)));
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(frames)));
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("text/plain"));
    r
}
