//! A small Kubernetes REST client: JSON objects over HTTPS with the cluster
//! CA pinned and a client certificate or bearer token, or in-process to the
//! API server's router when both run in one process (the controllers, the
//! in-process agent, and unit tests on an in-memory store).
//!
//! Written here instead of using kube-rs + k8s-openapi: the agent and the
//! controllers need a dozen calls on a few kinds, and those crates would add
//! more compile time and binary size than the rest of the agent together
//! (the image's footprint budget). Objects are `serde_json::Value`; callers
//! read the fields they need through typed views of their own.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tokio::sync::mpsc;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// Errors of the transport below HTTP.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body, whatever the transport.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_builder() -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, ClientError> {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Config(e.to_string()))
}

/// Accepts any server certificate (signatures are still checked, so the
/// handshake is with the key the certificate names); see
/// [`Client::fetch_unverified`].
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// An in-process HTTP service (the API server's router).
pub type LocalService = BoxCloneSyncService<Request<Full<Bytes>>, Response<Body>, BoxError>;

/// How the agent proves who it is to the API server.
#[derive(Clone)]
pub enum Credentials {
    /// A client certificate and key (PEM), e.g. CN `system:node:<name>`.
    Certificate { cert_pem: String, key_pem: String },
    /// A bearer token.
    Token(String),
}

/// A certificate and key that can be replaced while TLS configurations use
/// them: as a client certificate ([`Client`] and its clones share one) or
/// as a server's ([`LiveCertificate::server_resolver`]). Connections made
/// after [`LiveCertificate::replace`] present the new one; an agent renews
/// its certificates so, without a restart.
#[derive(Clone, Debug)]
pub struct LiveCertificate(Arc<CertificateResolver>);

#[derive(Debug)]
struct CertificateResolver(std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>);

impl CertificateResolver {
    fn current(&self) -> Arc<rustls::sign::CertifiedKey> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl rustls::client::ResolvesClientCert for CertificateResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl rustls::server::ResolvesServerCert for CertificateResolver {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.current())
    }
}

impl LiveCertificate {
    pub fn new(cert_pem: &str, key_pem: &str) -> Result<LiveCertificate, ClientError> {
        let key = certified_key(cert_pem, key_pem)?;
        Ok(LiveCertificate(Arc::new(CertificateResolver(std::sync::RwLock::new(key)))))
    }

    /// For `rustls::ConfigBuilder::with_cert_resolver` of a server.
    pub fn server_resolver(&self) -> Arc<dyn rustls::server::ResolvesServerCert> {
        self.0.clone()
    }

    /// For `rustls::ConfigBuilder::with_client_cert_resolver`.
    pub fn client_resolver(&self) -> Arc<dyn rustls::client::ResolvesClientCert> {
        self.0.clone()
    }

    /// Presents `cert_pem` with `key_pem` from the next connection on.
    pub fn replace(&self, cert_pem: &str, key_pem: &str) -> Result<(), ClientError> {
        let key = certified_key(cert_pem, key_pem)?;
        *self.0.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = key;
        Ok(())
    }
}

fn certified_key(cert_pem: &str, key_pem: &str) -> Result<Arc<rustls::sign::CertifiedKey>, ClientError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| ClientError::Config(format!("certificate: {e}")))?;
    if certs.is_empty() {
        return Err(ClientError::Config("certificate: no certificate in the PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| ClientError::Config(format!("key: {e}")))?;
    let key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| ClientError::Config(format!("key: {e}")))?;
    let certified = rustls::sign::CertifiedKey::new(certs, key);
    certified.keys_match().map_err(|e| ClientError::Config(format!("certificate and key: {e}")))?;
    Ok(Arc::new(certified))
}

/// Where the API server is and how to trust and reach it.
#[derive(Clone)]
pub struct ClientConfig {
    /// `https://host:port`, no trailing slash.
    pub server: String,
    /// The cluster CA (PEM): the only root trusted.
    pub ca_pem: String,
    pub credentials: Credentials,
}

/// An error from the API server (with its HTTP status and the Status
/// message) or from getting there.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{method} {path}: {code}: {message}")]
    Api { method: Method, path: String, code: StatusCode, reason: String, message: String },
    #[error("{method} {path}: {source}")]
    Transport {
        method: Method,
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{0}")]
    Config(String),
}

impl ClientError {
    pub fn code(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(StatusCode::NOT_FOUND)
    }
    pub fn is_conflict(&self) -> bool {
        self.code() == Some(StatusCode::CONFLICT)
    }
    pub fn is_gone(&self) -> bool {
        self.code() == Some(StatusCode::GONE)
    }
}

/// One event of a watch.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.
    pub kind: String,
    pub object: Value,
}

const DEFAULT_USER_AGENT: &str = concat!("lichen-agent/", env!("CARGO_PKG_VERSION"));

/// The client; cheap to clone.
#[derive(Clone)]
pub struct Client {
    transport: Transport,
    server: Arc<str>,
    token: Option<Arc<str>>,
    user_agent: Arc<str>,
    certificate: Option<LiveCertificate>,
}

#[derive(Clone)]
enum Transport {
    Https(Box<HyperClient<Https, Full<Bytes>>>),
    Local(LocalService),
}

/// Patch flavours, by content type.
#[derive(Debug, Clone, Copy)]
pub enum PatchType {
    Merge,
    Strategic,
    Json,
}

impl PatchType {
    fn content_type(self) -> &'static str {
        match self {
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
            PatchType::Json => "application/json-patch+json",
        }
    }
}

impl Client {
    pub fn new(cfg: &ClientConfig) -> Result<Client, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(cfg.ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| ClientError::Config(format!("cluster CA: {e}")))?;
            roots.add(cert).map_err(|e| ClientError::Config(format!("cluster CA: {e}")))?;
        }
        let builder = tls_builder()?.with_root_certificates(roots);
        let (tls, token) = match &cfg.credentials {
            Credentials::Certificate { cert_pem, key_pem } => {
                let certificate = LiveCertificate::new(cert_pem, key_pem)?;
                let tls = builder.with_client_cert_resolver(certificate.client_resolver());
                let mut client = Client::over_tls(tls, &cfg.server, None);
                client.certificate = Some(certificate);
                return Ok(client);
            }
            Credentials::Token(t) => (builder.with_no_client_auth(), Some(Arc::from(t.as_str()))),
        };
        Ok(Client::over_tls(tls, &cfg.server, token))
    }

    /// The client certificate, when the client authenticates with one; it
    /// can be replaced while the client (and its clones) run.
    pub fn certificate(&self) -> Option<&LiveCertificate> {
        self.certificate.as_ref()
    }

    fn over_tls(tls: rustls::ClientConfig, server: &str, token: Option<Arc<str>>) -> Client {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .enable_http2()
            .build();
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .timer(hyper_util::rt::TokioTimer::new())
            .http2_keep_alive_interval(Duration::from_secs(30))
            .build(https);
        Client {
            transport: Transport::Https(Box::new(http)),
            server: Arc::from(server.trim_end_matches('/')),
            token,
            user_agent: Arc::from(DEFAULT_USER_AGENT),
            certificate: None,
        }
    }

    /// The body of `GET <server><path>` over TLS WITHOUT checking the
    /// server's certificate, for the one thing that needs it: fetching the
    /// cluster CA (`/cacerts`) before it is known. The caller must check
    /// what it gets against something it already trusts (a join token's
    /// CA hash) before it believes a byte of it.
    pub async fn fetch_unverified(server: &str, path: &str) -> Result<String, ClientError> {
        let tls = tls_builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(provider())))
            .with_no_client_auth();
        let client = Client::over_tls(tls, server, None);
        let resp = client.send(Method::GET, path, "", None).await?;
        let bytes = resp.into_body().collect().await.map_err(|source| ClientError::Transport {
            method: Method::GET,
            path: path.to_owned(),
            source,
        })?;
        String::from_utf8(bytes.to_bytes().to_vec())
            .map_err(|_| ClientError::Config(format!("GET {path}: the answer is not text")))
    }

    /// A client that calls `service` directly: no socket, no TLS. Who the
    /// caller is was decided when the service was made.
    pub fn local(service: LocalService) -> Client {
        Client {
            transport: Transport::Local(service),
            server: Arc::from("http://local"),
            token: None,
            user_agent: Arc::from(DEFAULT_USER_AGENT),
            certificate: None,
        }
    }

    /// The same client introducing itself as `agent` (the API server names
    /// field managers after the User-Agent's first word, e.g.
    /// `kube-controller-manager/v1.34`).
    pub fn with_user_agent(&self, agent: &str) -> Client {
        Client { user_agent: Arc::from(agent), ..self.clone() }
    }

    /// Wraps any tower service answering HTTP requests, e.g. an axum
    /// `Router` with the caller's identity as an extension.
    pub fn from_service<S, B>(service: S) -> Client
    where
        S: tower::Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let service = service
            .map_err(Into::into)
            .map_response(|r: Response<B>| r.map(|b| b.map_err(Into::into).boxed_unsync()));
        Client::local(BoxCloneSyncService::new(service))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Body>, ClientError> {
        let transport = |source: Box<dyn std::error::Error + Send + Sync>| ClientError::Transport {
            method: method.clone(),
            path: path.to_owned(),
            source,
        };
        let mut req = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.server))
            .header("accept", "application/json")
            .header("user-agent", &*self.user_agent);
        if body.is_some() {
            req = req.header("content-type", content_type);
        }
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req =
            req.body(Full::new(Bytes::from(body.unwrap_or_default()))).map_err(|e| transport(e.into()))?;
        let resp = match &self.transport {
            Transport::Https(http) => http
                .request(req)
                .await
                .map_err(|e| transport(e.into()))?
                .map(|b| b.map_err(BoxError::from).boxed_unsync()),
            Transport::Local(service) => service.clone().oneshot(req).await.map_err(transport)?,
        };
        if resp.status().is_success() {
            return Ok(resp);
        }
        let code = resp.status();
        let bytes = resp.into_body().collect().await.map_err(transport)?.to_bytes();
        let status: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Err(ClientError::Api {
            method,
            path: path.to_owned(),
            code,
            reason: status["reason"].as_str().unwrap_or("").to_owned(),
            message: status["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned()),
        })
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        ct: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Value, ClientError> {
        let resp = self.send(method.clone(), path, ct, body).await?;
        let bytes = resp.into_body().collect().await.map_err(|e| ClientError::Transport {
            method: method.clone(),
            path: path.to_owned(),
            source: e,
        })?;
        serde_json::from_slice(&bytes.to_bytes()).map_err(|e| ClientError::Transport {
            method,
            path: path.to_owned(),
            source: e.into(),
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.json(Method::GET, path, "", None).await
    }

    /// GET, with 404 as `None`.
    pub async fn get_opt(&self, path: &str) -> Result<Option<Value>, ClientError> {
        match self.get(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn create(&self, path: &str, obj: &Value) -> Result<Value, ClientError> {
        self.json(Method::POST, path, "application/json", Some(obj.to_string().into_bytes())).await
    }

    pub async fn replace(&self, path: &str, obj: &Value) -> Result<Value, ClientError> {
        self.json(Method::PUT, path, "application/json", Some(obj.to_string().into_bytes())).await
    }

    pub async fn patch(&self, path: &str, kind: PatchType, patch: &Value) -> Result<Value, ClientError> {
        self.json(Method::PATCH, path, kind.content_type(), Some(patch.to_string().into_bytes())).await
    }

    pub async fn delete(&self, path: &str, options: &Value) -> Result<Value, ClientError> {
        self.json(Method::DELETE, path, "application/json", Some(options.to_string().into_bytes())).await
    }

    /// Starts a watch (`path` must carry `watch=true` and usually a
    /// `resourceVersion`); events arrive on the channel until the stream
    /// ends or fails, then the channel closes (the error, if any, is the
    /// last item).
    pub async fn watch(
        &self,
        path: &str,
    ) -> Result<mpsc::Receiver<Result<WatchEvent, ClientError>>, ClientError> {
        let resp = self.send(Method::GET, path, "", None).await?;
        let (tx, rx) = mpsc::channel(64);
        let path = path.to_owned();
        tokio::spawn(async move {
            let broken = |source: Box<dyn std::error::Error + Send + Sync>| ClientError::Transport {
                method: Method::GET,
                path: path.clone(),
                source,
            };
            let mut body = resp.into_body();
            let mut buf: Vec<u8> = Vec::new();
            loop {
                let frame = match body.frame().await {
                    None => break,
                    Some(Err(e)) => {
                        let _ = tx.send(Err(broken(e))).await;
                        break;
                    }
                    Some(Ok(f)) => f,
                };
                let Ok(data) = frame.into_data() else { continue };
                buf.extend_from_slice(&data);
                while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let ev = match serde_json::from_slice::<Value>(&line) {
                        Ok(v) => WatchEvent {
                            kind: v["type"].as_str().unwrap_or("").to_owned(),
                            object: v.get("object").cloned().unwrap_or(Value::Null),
                        },
                        Err(e) => {
                            let _ = tx.send(Err(broken(e.into()))).await;
                            return;
                        }
                    };
                    if tx.send(Ok(ev)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// Percent-encodes a query value.
pub fn q(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).map(|e| e[1..].to_owned()).unwrap_or_default()
}
