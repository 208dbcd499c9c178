//! What each of upstream's signers accepts and what the approver
//! recognizes (`pkg/apis/certificates/v1/helpers.go`, the signer's
//! `isRequestForSignerFn`s and `sarapprove.go`), as pure functions over a
//! parsed request, its `spec.usages` and the CSR object.

use std::collections::BTreeSet;
use std::time::Duration;

use lichen_pki::{CertificateRequest, Usage};
use serde_json::Value;

use crate::meta;

pub const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
pub const KUBELET_CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";
pub const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";

const NODE_PREFIX: &str = "system:node:";
const NODES_GROUP: &str = "system:nodes";

/// Lifetime of a certificate when the request names none, and the most a
/// request may ask for (upstream's `--cluster-signing-duration`).
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// The least a request may ask for; shorter requests get this (upstream
/// clamps to twice its five-minute backdate).
pub const MIN_VALIDITY: Duration = Duration::from_secs(600);

/// `Approved` is true and `Denied` is not.
pub fn approved(csr: &Value) -> bool {
    meta::condition_true(csr, "Approved") && !meta::condition_true(csr, "Denied")
}

pub fn denied(csr: &Value) -> bool {
    meta::condition_true(csr, "Denied")
}

pub fn failed(csr: &Value) -> bool {
    meta::condition_true(csr, "Failed")
}

/// Whether a certificate was issued.
pub fn issued(csr: &Value) -> bool {
    csr["status"]["certificate"].as_str().is_some_and(|c| !c.is_empty())
}

/// `spec.usages` as a set.
pub fn usages(csr: &Value) -> BTreeSet<String> {
    csr["spec"]["usages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// How long a certificate for `spec.expirationSeconds` lasts.
pub fn validity(expiration_seconds: Option<i64>) -> Duration {
    match expiration_seconds.and_then(|s| u64::try_from(s).ok()) {
        None => DEFAULT_VALIDITY,
        Some(s) => Duration::from_secs(s).clamp(MIN_VALIDITY, DEFAULT_VALIDITY),
    }
}

/// Whether `signer` is one of the signers this controller serves.
pub fn serves(signer: &str) -> bool {
    matches!(signer, KUBE_APISERVER_CLIENT | KUBELET_CLIENT | KUBELET_SERVING)
}

/// For a signer this controller serves, the usage to issue with, or why the
/// request breaks the signer's rules; `None` for any other signer.
pub fn check(
    signer: &str,
    req: &CertificateRequest,
    usages: &BTreeSet<String>,
) -> Option<Result<Usage, String>> {
    let checked = match signer {
        KUBE_APISERVER_CLIENT => apiserver_client(req, usages).map(|()| Usage::ClientAuth),
        KUBELET_CLIENT => kubelet_client(req, usages).map(|()| Usage::ClientAuth),
        KUBELET_SERVING => kubelet_serving(req, usages).map(|()| Usage::ServerAuth),
        _ => return None,
    };
    Some(checked)
}

/// Names the certificate cannot carry for any of these signers.
fn no_email_uri_or_other(req: &CertificateRequest) -> Result<(), String> {
    if !req.emails.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !req.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    if req.other_names > 0 {
        return Err("only DNS and IP subjectAltNames are allowed".into());
    }
    Ok(())
}

/// `kubernetes.io/kube-apiserver-client`: any subject with a common name;
/// usages `client auth`, optionally `digital signature`, `key encipherment`.
pub fn apiserver_client(req: &CertificateRequest, usages: &BTreeSet<String>) -> Result<(), String> {
    for u in usages {
        if !matches!(u.as_str(), "digital signature" | "key encipherment" | "client auth") {
            return Err(format!("invalid usage for client certificate: {u}"));
        }
    }
    if !usages.contains("client auth") {
        return Err("missing required usage for client certificate: client auth".into());
    }
    if req.common_name.is_empty() {
        return Err("subject common name is empty: the certificate would name no user".into());
    }
    no_email_uri_or_other(req)
}

/// Upstream's `ValidateKubeletClientCSR`.
pub fn kubelet_client(req: &CertificateRequest, usages: &BTreeSet<String>) -> Result<(), String> {
    if req.organizations != [NODES_GROUP] {
        return Err("subject organization is not system:nodes".into());
    }
    if !req.dns_names.is_empty() {
        return Err("DNS subjectAltNames are not allowed".into());
    }
    if !req.ip_addresses.is_empty() {
        return Err("IP subjectAltNames are not allowed".into());
    }
    no_email_uri_or_other(req)?;
    node_name(req)?;
    let full = set(&["digital signature", "key encipherment", "client auth"]);
    if *usages != full && *usages != set(&["digital signature", "client auth"]) {
        return Err("usages did not match [client auth digital signature key encipherment]".into());
    }
    Ok(())
}

/// Upstream's `ValidateKubeletServingCSR`.
pub fn kubelet_serving(req: &CertificateRequest, usages: &BTreeSet<String>) -> Result<(), String> {
    if req.organizations != [NODES_GROUP] {
        return Err("subject organization is not system:nodes".into());
    }
    if req.dns_names.is_empty() && req.ip_addresses.is_empty() {
        return Err("DNS or IP subjectAltName is required".into());
    }
    no_email_uri_or_other(req)?;
    let full = set(&["digital signature", "key encipherment", "server auth"]);
    if *usages != full && *usages != set(&["digital signature", "server auth"]) {
        return Err("usages did not match [digital signature key encipherment server auth]".into());
    }
    node_name(req)?;
    Ok(())
}

fn node_name(req: &CertificateRequest) -> Result<&str, String> {
    match req.common_name.strip_prefix(NODE_PREFIX) {
        Some(name) if !name.is_empty() => Ok(name),
        _ => Err(format!("subject common name does not begin with {NODE_PREFIX}")),
    }
}

/// A permission the approver checks with a SubjectAccessReview, in the
/// order upstream tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recognized {
    /// A node renewing its own client certificate.
    SelfNodeClient,
    /// Any valid kubelet client request (a node bootstrapping).
    NodeClient,
}

impl Recognized {
    /// The `certificatesigningrequests` subresource the review asks about.
    pub fn subresource(self) -> &'static str {
        match self {
            Recognized::SelfNodeClient => "selfnodeclient",
            Recognized::NodeClient => "nodeclient",
        }
    }

    /// The approval condition's message.
    pub fn message(self) -> &'static str {
        match self {
            Recognized::SelfNodeClient => {
                "Auto approving self kubelet client certificate after SubjectAccessReview."
            }
            Recognized::NodeClient => "Auto approving kubelet client certificate after SubjectAccessReview.",
        }
    }
}

/// What the approver may approve `csr` as, pending the reviews; empty when
/// it is not a valid kubelet client request.
pub fn recognize(csr: &Value, req: &CertificateRequest) -> Vec<Recognized> {
    if csr["spec"]["signerName"] != KUBELET_CLIENT || kubelet_client(req, &usages(csr)).is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    if csr["spec"]["username"].as_str() == Some(req.common_name.as_str()) {
        out.push(Recognized::SelfNodeClient);
    }
    out.push(Recognized::NodeClient);
    out
}

/// A node asking for its own serving certificate: a valid
/// `kubernetes.io/kubelet-serving` request from `system:node:<n>` (in
/// `system:nodes`) for CN `system:node:<n>`, with no DNS name but `<n>`.
/// Returns `<n>`; the approver then checks the IP addresses against the
/// Node objects ([`addresses_are_the_nodes`]).
///
/// Upstream approves no serving requests by itself (a cluster operator or
/// an add-on does); k3s has its server sign agents' serving certificates
/// for the names and addresses the agent states. This is the same trust as
/// k3s's, expressed as an approval.
pub fn self_node_serving<'a>(csr: &Value, req: &'a CertificateRequest) -> Option<&'a str> {
    if csr["spec"]["signerName"] != KUBELET_SERVING || kubelet_serving(req, &usages(csr)).is_err() {
        return None;
    }
    if csr["spec"]["username"].as_str() != Some(req.common_name.as_str()) {
        return None;
    }
    let groups = csr["spec"]["groups"].as_array();
    if !groups.into_iter().flatten().any(|g| g == NODES_GROUP) {
        return None;
    }
    let node = node_name(req).ok()?;
    req.dns_names.iter().all(|d| d.eq_ignore_ascii_case(node)).then_some(node)
}

/// The first name or address in a serving request that no node may have
/// in its certificate, since the cluster CA also vouches for the API
/// server with it: one of `reserved` (the API server's certificate's
/// names), `localhost`, `kubernetes` and its Service names (`kubernetes.*`,
/// anything under `.svc`), a loopback, unspecified or multicast address.
pub fn reserved_name(req: &CertificateRequest, reserved: &[String]) -> Option<String> {
    let dns = req.dns_names.iter().map(|d| d.to_ascii_lowercase()).find(|d| {
        reserved.contains(d)
            || d == "localhost"
            || d == "kubernetes"
            || d.starts_with("kubernetes.")
            || d.ends_with(".svc")
            || d.contains(".svc.")
    });
    let ip = || {
        req.ip_addresses
            .iter()
            .find(|ip| {
                reserved.contains(&ip.to_string())
                    || ip.is_loopback()
                    || ip.is_unspecified()
                    || ip.is_multicast()
            })
            .map(ToString::to_string)
    };
    dns.or_else(ip)
}

/// Whether every IP address of a self-serving request for `node` is one of
/// that Node's InternalIP/ExternalIP addresses and of no other Node's
/// (`nodes`: all of them); else why not.
pub fn addresses_are_the_nodes(node: &str, ips: &[std::net::IpAddr], nodes: &[Value]) -> Result<(), String> {
    let addresses = |n: &Value| -> Vec<std::net::IpAddr> {
        n["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["type"] == "InternalIP" || a["type"] == "ExternalIP")
            .filter_map(|a| a["address"].as_str()?.parse().ok())
            .collect()
    };
    let Some(own) = nodes.iter().find(|n| meta::name(n) == node) else {
        return Err(format!("node {node} is not registered"));
    };
    let own = addresses(own);
    for ip in ips {
        if !own.contains(ip) {
            return Err(format!("{ip} is not an address of node {node}"));
        }
        if let Some(other) = nodes.iter().find(|n| meta::name(n) != node && addresses(n).contains(ip)) {
            return Err(format!("{ip} is also an address of node {}", meta::name(other)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
