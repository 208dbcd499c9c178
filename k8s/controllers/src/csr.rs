//! CertificateSigningRequests, as upstream's `csrapproving` and
//! `csrsigning` controllers.
//!
//! - The approver ([`approver`]) approves kubelet client requests
//!   (`kubernetes.io/kube-apiserver-client-kubelet`) whose requester may have
//!   them approved, which it asks the API server with a SubjectAccessReview
//!   for `create` on `certificatesigningrequests/selfnodeclient` (a node
//!   renewing its own certificate) or `.../nodeclient` (a node
//!   bootstrapping), and a node's request for its own serving certificate
//!   (`kubernetes.io/kubelet-serving`) when it names the node and addresses
//!   no other Node has. Nothing else is approved: the rest waits for
//!   `kubectl certificate approve`.
//! - The signer ([`signing`]) issues certificates for approved requests to
//!   upstream's three signers from the cluster CA, through a [`Signer`] the
//!   binary hands in (the controllers never read the CA key), or marks a
//!   request that breaks its signer's rules ([`rules`]) `Failed`. Other
//!   signer names are left to other signers.
//! - The cleaner ([`cleaner`]) deletes requests an hour after they were
//!   decided, and pending ones after a day, as upstream's `csrcleaner`.

mod approver;
pub mod cleaner;
pub mod rules;
mod signing;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use lichen_client::Client;
use lichen_pki::{CertificateRequest, PkiError, Usage};
use serde_json::Value;
use tokio::task::JoinSet;

use crate::informer::Informer;
use crate::meta;
use crate::queue::Queue;

/// The collection both controllers watch.
pub const PATH: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

type SignFn = dyn Fn(&[u8], Usage, Duration) -> Result<String, PkiError> + Send + Sync;

/// Signs a PEM request for a usage and a lifetime with the cluster CA,
/// returning the certificate PEM; e.g. `lichen_pki::Pki::sign_csr` at the
/// current time.
#[derive(Clone)]
pub struct Signer(Arc<SignFn>);

impl Signer {
    pub fn new(
        f: impl Fn(&[u8], Usage, Duration) -> Result<String, PkiError> + Send + Sync + 'static,
    ) -> Signer {
        Signer(Arc::new(f))
    }

    fn sign(&self, csr_pem: &[u8], usage: Usage, validity: Duration) -> Result<String, PkiError> {
        (self.0)(csr_pem, usage, validity)
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer")
    }
}

/// How the CSR controllers run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Issues certificates (`None`: no signing controller).
    pub signer: Option<Signer>,
    /// How often finished requests are looked for ([`cleaner`]).
    pub clean_every: Duration,
    /// Names and addresses no node's serving certificate may carry: the
    /// API server's own (its certificate's subject alternative names),
    /// which the same CA vouches for.
    pub reserved_names: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config { signer: None, clean_every: cleaner::INTERVAL, reserved_names: Vec::new() }
    }
}

/// Starts the approver, and the signer when there is a [`Signer`], on a
/// cache of CertificateSigningRequests of their own.
pub fn start(tasks: &mut JoinSet<()>, client: &Client, cfg: Config) {
    let Config { signer, clean_every, reserved_names } = cfg;
    let csrs = Informer::new(PATH);
    let approve = Queue::new();
    let sign = signer.as_ref().map(|_| Queue::new());
    let (a, s) = (approve.clone(), sign.clone());
    csrs.on_change(move |ch| {
        let name = meta::name(ch.object());
        a.add(name);
        if let Some(s) = &s {
            s.add(name);
        }
    });
    let reserved = Arc::new(reserved_names);
    let c = approver::Approver { client: client.clone(), csrs: csrs.clone(), reserved };
    crate::spawn_workers(tasks, "csrapproving", &approve, vec![csrs.clone()], 1, move |name| {
        let c = c.clone();
        async move { c.sync(&name).await }
    });
    if let (Some(signer), Some(sign)) = (signer, sign) {
        let c = signing::Signing { client: client.clone(), csrs: csrs.clone(), signer };
        crate::spawn_workers(tasks, "csrsigning", &sign, vec![csrs.clone()], 1, move |name| {
            let c = c.clone();
            async move { c.sync(&name).await }
        });
    }
    tasks.spawn(cleaner::run(client.clone(), csrs.clone(), clean_every));
    tasks.spawn(csrs.run(client.clone()));
}

/// `spec.request`: base64 of the PEM, as the API carries `[]byte`.
fn request_pem(csr: &Value) -> Result<Vec<u8>, String> {
    let b64 = csr["spec"]["request"].as_str().unwrap_or("");
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("spec.request is not base64 ({e})"))
}

/// The parsed request and its PEM, or why it cannot be read.
fn parse(csr: &Value) -> Result<(CertificateRequest, Vec<u8>), String> {
    let pem = request_pem(csr)?;
    let req = CertificateRequest::parse(&pem).map_err(|e| e.to_string())?;
    Ok((req, pem))
}

/// Appends a true condition, stamped now, to `status.conditions`.
fn add_condition(csr: &mut Value, kind: &str, reason: &str, message: &str) {
    let mut conditions = csr["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let now = meta::now_rfc3339();
    conditions.push(serde_json::json!({
        "type": kind, "status": "True", "reason": reason, "message": message,
        "lastUpdateTime": now, "lastTransitionTime": now,
    }));
    csr["status"]["conditions"] = serde_json::json!(conditions);
}

fn object_path(name: &str, sub: &str) -> String {
    format!("{PATH}/{name}/{sub}")
}
