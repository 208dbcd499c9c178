//! Joining a cluster with a token: how a standalone agent (`lichen agent
//! --server URL --token K10...`) gets the credentials it runs with.
//!
//! 1. Saved credentials in `<dir>` (`ca.crt`, `client.crt`, `client.key`)
//!    that still check out (issued by the CA the token pins, for this node,
//!    not expired) are used as they are: a restart needs no token round
//!    trip and works while the token is revoked.
//! 2. Otherwise the cluster CA is fetched from `/cacerts` without trusting
//!    the server yet, and believed only if its SHA-256 is the one the token
//!    pins: a server with another CA is refused before anything is sent.
//! 3. With the token as its bearer credential (the server maps it to a
//!    `system:bootstrap:*` identity that may only ask for node client
//!    certificates), the agent makes a new key and a
//!    CertificateSigningRequest for `system:node:<name>` with signer
//!    `kubernetes.io/kube-apiserver-client-kubelet`, which the controllers
//!    approve and sign; it waits for the certificate, saves key,
//!    certificate and CA (written atomically, the key 0600) and from then
//!    on authenticates with the certificate.
//!
//! A token that is not join-shaped (no `K10` prefix) is a plain bearer
//! token used as it is, with the CA from `--ca-file`, as before joining
//! existed.
//!
//! The agent endpoint's certificate comes the same way, once the Node is
//! registered (`serving.rs`).
//!
//! Renewal ([`keep_renewed`]): once 80 % of the client certificate's
//! lifetime has passed (upstream's kubelet picks 70–90 %), the agent asks
//! for a new one with a new key, authenticated by the current certificate
//! (upstream's `selfnodeclient` approval), saves it and hands it to its
//! running clients; new connections present it. A failed attempt is
//! retried with back-off (1 min to 1 h). A certificate that expired while
//! the agent was off is replaced by joining again with the token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use lichen_client::{Client, ClientConfig, Credentials};
use lichen_pki::join::{JoinToken, check_node_credentials, node_client_request};
use serde_json::json;

use lichen_pki::join::{NODE_CA as CA_FILE, NODE_CERT as CERT_FILE, NODE_KEY as KEY_FILE};
/// The signer node client certificates come from.
pub const SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

/// What joining needs.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// `https://host:port`.
    pub server: String,
    /// `K10<ca hash>::<credential>`, or a plain bearer token.
    pub token: String,
    /// The CA to trust for a plain bearer token (required then).
    pub ca_file: Option<PathBuf>,
    pub node_name: String,
    /// Where the credentials are kept (`<agent-dir>/pki`).
    pub dir: PathBuf,
    /// How long to wait for the certificate to be issued.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("{0}")]
    Token(String),
    #[error("fetching the cluster CA from {server}/cacerts: {source}")]
    FetchCa { server: String, source: Box<lichen_client::ClientError> },
    #[error(
        "refusing to join {server}: its CA has sha256:{actual}, but the join token pins sha256:{pinned} (a token for another cluster, or a server impersonating this one)"
    )]
    CaMismatch { server: String, pinned: String, actual: String },
    #[error("the API server refused the join token: {0}")]
    Refused(String),
    #[error("{what}: {source}")]
    Api { what: String, source: Box<lichen_client::ClientError> },
    #[error("CertificateSigningRequest {name} was {condition}: {message}")]
    NotIssued { name: String, condition: String, message: String },
    #[error("no certificate for CertificateSigningRequest {name} after {waited:?}: is it approved?")]
    Timeout { name: String, waited: Duration },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Pki(String),
}

/// The client configuration the agent runs with (joining first when it
/// must).
pub async fn credentials(opts: &JoinOptions) -> Result<ClientConfig, JoinError> {
    if !opts.token.trim_start().starts_with("K10") {
        let ca_file = opts.ca_file.as_ref().ok_or_else(|| {
            JoinError::Token(
                "a token that is not a K10... join token needs --ca-file to trust the server".into(),
            )
        })?;
        let ca_pem = read(ca_file)?;
        let credentials = Credentials::Token(opts.token.trim().to_owned());
        return Ok(ClientConfig { server: opts.server.clone(), ca_pem, credentials });
    }
    let token = JoinToken::parse(&opts.token).map_err(|e| JoinError::Token(format!("--token: {e}")))?;
    if let Some(saved) = saved(opts, &token) {
        return Ok(saved);
    }
    let ca_pem = Client::fetch_unverified(&opts.server, "/cacerts")
        .await
        .map_err(|source| JoinError::FetchCa { server: opts.server.clone(), source: Box::new(source) })?;
    let actual = lichen_pki::join::ca_hash_of_pem(&ca_pem).unwrap_or_else(|| "(no certificate)".into());
    if actual != token.ca_hash {
        return Err(JoinError::CaMismatch { server: opts.server.clone(), pinned: token.ca_hash, actual });
    }
    let bootstrap = ClientConfig {
        server: opts.server.clone(),
        ca_pem: ca_pem.clone(),
        credentials: Credentials::Token(token.render()),
    };
    let client = Client::new(&bootstrap).map_err(|e| JoinError::Pki(e.to_string()))?;
    let (key_pem, csr_pem) =
        node_client_request(&opts.node_name).map_err(|e| JoinError::Pki(e.to_string()))?;
    let request = Request {
        name_prefix: format!("node-csr-{}-", opts.node_name),
        signer: SIGNER,
        usages: &["digital signature", "client auth"],
        csr_pem,
    };
    let cert_pem = request_certificate(&client, &request, opts.timeout).await?;
    lichen_pki::join::save_node_credentials(&opts.dir, &ca_pem, &cert_pem, &key_pem)
        .map_err(|e| JoinError::Pki(e.to_string()))?;
    tracing::info!(node = %opts.node_name, dir = %opts.dir.display(), "joined: client certificate issued and saved");
    Ok(ClientConfig {
        server: opts.server.clone(),
        ca_pem,
        credentials: Credentials::Certificate { cert_pem, key_pem },
    })
}

/// Asks for a client certificate for `node` with a new key and checks it;
/// returns (certificate, key) PEM.
async fn new_client_certificate(
    client: &Client,
    node: &str,
    ca_pem: &str,
    timeout: Duration,
) -> Result<(String, String), JoinError> {
    let (key_pem, csr_pem) = node_client_request(node).map_err(|e| JoinError::Pki(e.to_string()))?;
    let request = Request {
        name_prefix: format!("node-csr-{node}-"),
        signer: SIGNER,
        usages: &["digital signature", "client auth"],
        csr_pem,
    };
    let cert_pem = request_certificate(client, &request, timeout).await?;
    check_node_credentials(ca_pem, &cert_pem, &key_pem, node, crate::unix_now())
        .map_err(|problem| JoinError::Pki(format!("the issued client certificate {problem}")))?;
    Ok((cert_pem, key_pem))
}

/// When a certificate is due for renewal: 80 % into its lifetime (seconds
/// since the epoch).
pub fn renewal_due(cert_pem: &str) -> Option<i64> {
    let (not_before, not_after) = lichen_pki::join::validity_of_pem(cert_pem)?;
    Some(not_before + (not_after - not_before) / 5 * 4)
}

/// Renews the client certificate of `client` now: a new key and
/// certificate, presented from then on by `client` and its clones, then
/// saved in `dir` (a failed save is logged: the running agent has the new
/// certificate either way). Returns the new certificate PEM.
pub async fn renew(
    client: &Client,
    node: &str,
    dir: &Path,
    ca_pem: &str,
    timeout: Duration,
) -> Result<String, JoinError> {
    let Some(current) = client.certificate() else {
        return Err(JoinError::Pki("the agent authenticates without a client certificate".into()));
    };
    let (cert_pem, key_pem) = new_client_certificate(client, node, ca_pem, timeout).await?;
    current.replace(&cert_pem, &key_pem).map_err(|e| JoinError::Pki(e.to_string()))?;
    if let Err(e) = lichen_pki::join::save_node_credentials(dir, ca_pem, &cert_pem, &key_pem) {
        tracing::error!(error = %e, "the renewed client certificate is in use but could not be saved");
    }
    Ok(cert_pem)
}

/// Keeps the client certificate (`cert_pem`, the one `client` presents)
/// renewed for ever (see the module's notes). Returns only when it has
/// expired without a renewal (the server was out of reach for the last
/// fifth of its life): the agent can no longer authenticate with it, and
/// must join again with its token (a restart does that).
pub async fn keep_renewed(client: Client, node: String, dir: PathBuf, ca_pem: String, cert_pem: String) {
    let renew = || renew(&client, &node, &dir, &ca_pem, RENEW_TIMEOUT);
    renew_when_due(cert_pem, "client certificate", true, renew).await;
}

/// How long one renewal request may wait for its certificate.
pub(crate) const RENEW_TIMEOUT: Duration = Duration::from_secs(300);

/// Calls `renew` each time the certificate in use (`current`, then what
/// `renew` returns) is due ([`renewal_due`]), retrying failures with
/// back-off (1 min to 1 h). Returns only when `stop_when_expired` and the
/// certificate in use has expired.
pub(crate) async fn renew_when_due<F, Fut>(
    mut current: String,
    what: &str,
    stop_when_expired: bool,
    mut renew: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, JoinError>>,
{
    const RETRY_MIN: Duration = Duration::from_secs(60);
    const RETRY_MAX: Duration = Duration::from_secs(3600);
    const LOOK_AGAIN: Duration = Duration::from_secs(3600);
    let mut retry = RETRY_MIN;
    loop {
        let (Some(due), Some((_, end))) =
            (renewal_due(&current), lichen_pki::join::validity_of_pem(&current))
        else {
            tracing::error!(what, "the certificate in use cannot be read; renewing it now");
            current.clear();
            retry = RETRY_MIN;
            match renew().await {
                Ok(cert) => current = cert,
                Err(e) => {
                    tracing::warn!(what, error = %e, retry_in = ?LOOK_AGAIN, "renewing a certificate failed");
                    tokio::time::sleep(LOOK_AGAIN).await;
                }
            }
            continue;
        };
        let now = crate::unix_now();
        if stop_when_expired && now >= end {
            tracing::error!(what, "the certificate expired before it could be renewed");
            return;
        }
        if due > now {
            // Looked at again at least hourly: the clock may be set later
            // (SNTP after boot) or jump.
            let wait = Duration::from_secs(u64::try_from(due - now).unwrap_or(0)).min(LOOK_AGAIN);
            tokio::time::sleep(wait).await;
            continue;
        }
        match renew().await {
            Ok(cert) => {
                let until = lichen_pki::join::validity_of_pem(&cert).map(|(_, end)| end).unwrap_or_default();
                let until = lichen_apimachinery::timestamp::format_rfc3339(until);
                tracing::info!(what, %until, "certificate renewed");
                current = cert;
                retry = RETRY_MIN;
            }
            Err(e) => {
                tracing::warn!(what, error = %e, retry_in = ?retry, "renewing a certificate failed");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Saved credentials that still check out against the token's CA.
fn saved(opts: &JoinOptions, token: &JoinToken) -> Option<ClientConfig> {
    let ca_pem = std::fs::read_to_string(opts.dir.join(CA_FILE)).ok()?;
    let (cert_pem, key_pem) = lichen_pki::join::load_pair(&opts.dir, CERT_FILE, KEY_FILE)?;
    if lichen_pki::join::ca_hash_of_pem(&ca_pem).as_deref() != Some(token.ca_hash.as_str()) {
        tracing::warn!(dir = %opts.dir.display(), "saved credentials belong to another cluster CA than the token's: joining again");
        return None;
    }
    let now = crate::unix_now();
    match check_node_credentials(&ca_pem, &cert_pem, &key_pem, &opts.node_name, now) {
        Ok(_) => {
            tracing::info!(dir = %opts.dir.display(), "using the saved client certificate");
            Some(ClientConfig {
                server: opts.server.clone(),
                ca_pem,
                credentials: Credentials::Certificate { cert_pem, key_pem },
            })
        }
        Err(problem) => {
            tracing::warn!(dir = %opts.dir.display(), %problem, "saved client certificate unusable: joining again");
            None
        }
    }
}

/// A CertificateSigningRequest to make.
pub(crate) struct Request {
    /// `metadata.generateName`.
    pub name_prefix: String,
    pub signer: &'static str,
    pub usages: &'static [&'static str],
    /// The PKCS#10 request, PEM.
    pub csr_pem: String,
}

/// Creates the CertificateSigningRequest and waits until its certificate
/// is issued (PEM), it is denied or failed, or `timeout` passes.
pub(crate) async fn request_certificate(
    client: &Client,
    request: &Request,
    timeout: Duration,
) -> Result<String, JoinError> {
    let csr = json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"generateName": request.name_prefix},
        "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(&request.csr_pem),
            "signerName": request.signer,
            "usages": request.usages,
        },
    });
    const PATH: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
    let created = client.create(PATH, &csr).await.map_err(|source| match source.code() {
        Some(c) if c.as_u16() == 401 => JoinError::Refused(api_message(&source)),
        _ => {
            JoinError::Api { what: "creating the CertificateSigningRequest".into(), source: Box::new(source) }
        }
    })?;
    let name = created["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let path = format!("{PATH}/{name}");
    let start = std::time::Instant::now();
    loop {
        let obj = client.get(&path).await.map_err(|source| JoinError::Api {
            what: format!("reading CertificateSigningRequest {name}"),
            source: Box::new(source),
        })?;
        for c in obj["status"]["conditions"].as_array().into_iter().flatten() {
            let kind = c["type"].as_str().unwrap_or_default();
            if matches!(kind, "Denied" | "Failed") && c["status"].as_str() != Some("False") {
                let message = c["message"].as_str().unwrap_or_default().to_owned();
                return Err(JoinError::NotIssued { name, condition: kind.to_lowercase(), message });
            }
        }
        if let Some(cert) = obj["status"]["certificate"].as_str().filter(|c| !c.is_empty()) {
            let cert = base64::engine::general_purpose::STANDARD
                .decode(cert)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    JoinError::Pki(format!("CertificateSigningRequest {name}: certificate is not base64 PEM"))
                })?;
            return Ok(cert);
        }
        if start.elapsed() >= timeout {
            return Err(JoinError::Timeout { name, waited: timeout });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn api_message(e: &lichen_client::ClientError) -> String {
    match e {
        lichen_client::ClientError::Api { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn read(path: &Path) -> Result<String, JoinError> {
    std::fs::read_to_string(path).map_err(|source| JoinError::Io { path: path.to_owned(), source })
}
