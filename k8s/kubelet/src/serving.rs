//! The agent endpoint's certificate on an agent that joined a cluster
//! (`lichen agent --server … --token K10…`), where no server beside it can
//! issue one.
//!
//! Once the Node is registered, the agent asks for a certificate with a
//! `kubernetes.io/kubelet-serving` CertificateSigningRequest: CN
//! `system:node:<name>`, O `system:nodes`, the node's name and InternalIP
//! as subject alternative names (the API server reaches the endpoint at the
//! InternalIP and checks the certificate against the cluster CA). The
//! controllers approve it when the names are the requesting node's own
//! (`lichen-controllers`' csr approver). Key and certificate are kept in the
//! agent's `pki/` directory beside its client credentials and reused
//! across restarts while they still name the node and its address; the
//! endpoint starts once a certificate is in hand. Until then `kubectl
//! logs/exec` to the node's pods answer that the agent cannot be reached.
//! 80 % into its lifetime it is renewed the same way and swapped into the
//! running endpoint ([`keep_renewed`]).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lichen_pki::join::{NODE_SERVING_CERT, NODE_SERVING_KEY, check_node_serving, node_serving_request};

use crate::join::{JoinError, Request, request_certificate};
use crate::{Agent, Serving};

pub const SIGNER: &str = "kubernetes.io/kubelet-serving";
const RETRY_MIN: Duration = Duration::from_secs(10);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// Waits until the Node is registered, then returns the saved certificate
/// if it still serves, else asks for one (retrying with back-off until it
/// is issued).
pub async fn obtain(agent: &Agent, dir: &Path, ca_pem: &str) -> Serving {
    let mut registered = agent.node_object.subscribe();
    let _ = registered.wait_for(Option::is_some).await;
    let node = &agent.cfg.node_name;
    let ips = [agent.cfg.node_ip];
    if let Some(saved) = saved(dir, ca_pem, node, &ips) {
        tracing::info!(dir = %dir.display(), "using the saved serving certificate");
        return saved;
    }
    let mut wait = RETRY_MIN;
    loop {
        match request(agent, ca_pem, &ips).await {
            Ok(serving) => {
                save(dir, &serving);
                return serving;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?wait, "no serving certificate for the agent endpoint yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_MAX);
            }
        }
    }
}

fn saved(dir: &Path, ca_pem: &str, node: &str, ips: &[IpAddr]) -> Option<Serving> {
    let (cert_pem, key_pem) = lichen_pki::join::load_pair(dir, NODE_SERVING_CERT, NODE_SERVING_KEY)?;
    let now = crate::unix_now();
    match check_node_serving(ca_pem, &cert_pem, &key_pem, node, ips, now) {
        Ok(_) if crate::join::renewal_due(&cert_pem).is_some_and(|due| now < due) => {
            Some(Serving { cert_pem, key_pem, client_ca_pem: ca_pem.to_owned() })
        }
        Ok(_) => {
            tracing::info!(dir = %dir.display(), "the saved serving certificate is due for renewal: asking for a new one");
            None
        }
        Err(problem) => {
            tracing::info!(dir = %dir.display(), %problem, "the saved serving certificate does not serve: asking for a new one");
            None
        }
    }
}

/// Saves a new certificate; a failure is logged (the endpoint has it
/// either way, and a restart asks again).
fn save(dir: &Path, s: &Serving) {
    match lichen_pki::join::save_node_serving(dir, &s.cert_pem, &s.key_pem) {
        Ok(()) => tracing::info!(dir = %dir.display(), "serving certificate issued and saved"),
        Err(e) => tracing::error!(error = %e, "the serving certificate is in use but could not be saved"),
    }
}

async fn request(agent: &Agent, ca_pem: &str, ips: &[IpAddr]) -> Result<Serving, JoinError> {
    let node = &agent.cfg.node_name;
    let (key_pem, csr_pem) = node_serving_request(node, ips).map_err(|e| JoinError::Pki(e.to_string()))?;
    let request = Request {
        name_prefix: format!("node-serving-{node}-"),
        signer: SIGNER,
        usages: &["digital signature", "server auth"],
        csr_pem,
    };
    let cert_pem = request_certificate(&agent.client, &request, crate::join::RENEW_TIMEOUT).await?;
    let now = crate::unix_now();
    check_node_serving(ca_pem, &cert_pem, &key_pem, node, ips, now)
        .map_err(|problem| JoinError::Pki(format!("the issued serving certificate {problem}")))?;
    Ok(Serving { cert_pem, key_pem, client_ca_pem: ca_pem.to_owned() })
}

/// Renews the endpoint's certificate (`cert_pem`, in use through `live`)
/// whenever it is due: each new one is swapped into the running endpoint,
/// then saved in `dir`. Never returns (an expired serving certificate is
/// still renewed: the request authenticates with the client certificate).
pub async fn keep_renewed(
    agent: Agent,
    dir: PathBuf,
    ca_pem: String,
    live: lichen_client::LiveCertificate,
    cert_pem: String,
) {
    let ips = [agent.cfg.node_ip];
    let renew = || async {
        let s = request(&agent, &ca_pem, &ips).await?;
        live.replace(&s.cert_pem, &s.key_pem).map_err(|e| JoinError::Pki(e.to_string()))?;
        save(&dir, &s);
        Ok(s.cert_pem)
    };
    crate::join::renew_when_due(cert_pem, "serving certificate", false, renew).await;
}

/// Where the agent endpoint's certificate comes from.
#[derive(Clone)]
pub enum ServingCert {
    /// No endpoint: no logs, exec, attach or port-forward to this node.
    Off,
    /// Issued by the server running beside the agent, which renews it in
    /// place.
    Given { certificate: lichen_client::LiveCertificate, client_ca_pem: String },
    /// Asked for from the cluster once the Node is registered, and kept in
    /// `dir`; the endpoint's clients must come from `ca_pem` (the cluster
    /// CA, which also issues the certificate).
    Requested { dir: PathBuf, ca_pem: String },
}
