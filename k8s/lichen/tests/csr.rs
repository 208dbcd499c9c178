//! CertificateSigningRequests with the real kubectl: a user's request is
//! created, approved by hand, signed by the controllers, and the
//! certificate logs in as the request's subject; a denied request stays
//! unsigned.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{Kubectl, Server, eventually, table};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);

/// A key and a PEM request for CN `cn` in the organizations `orgs` (at most two).
fn key_and_request(cn: &str, orgs: &[&str]) -> (KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    for (i, o) in orgs.iter().enumerate() {
        // rcgen keeps one value per type; a second O uses organizationName's OID.
        let ty = if i == 0 { DnType::OrganizationName } else { DnType::CustomDnType(vec![2, 5, 4, 10]) };
        params.distinguished_name.push(ty, *o);
    }
    params.distinguished_name.push(DnType::CommonName, cn);
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    (key, pem)
}

fn create_csr(server: &Server, k: &Kubectl, name: &str, pem: &str) {
    let csr = json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(pem),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"],
            "expirationSeconds": 86400,
        },
    });
    let file = server.write(&format!("{name}.csr.json"), &csr.to_string());
    k.run(&["create", "-f", file.to_str().unwrap()])
        .prints(&format!("certificatesigningrequest.certificates.k8s.io/{name} created"));
}

/// The CONDITION column of `kubectl get csr <name>`.
fn condition(k: &Kubectl, name: &str) -> String {
    let rows = table(k.run(&["get", "csr", name]).ok());
    let col = rows[0].iter().position(|h| h == "CONDITION").unwrap();
    // Columns before CONDITION have no spaces; count from the end instead.
    let from_end = rows[0].len() - col;
    rows[1][rows[1].len() - from_end].clone()
}

fn certificate(k: &Kubectl, name: &str) -> String {
    k.run(&["get", "csr", name, "-o", "jsonpath={.status.certificate}"]).ok().trim().to_owned()
}

#[test]
fn an_approved_request_becomes_a_working_client_certificate() {
    let Some(_) = common::kubectl_bin() else { return };
    let server = Server::start_with_controllers(&[]);
    let k = server.kubectl().unwrap();

    let (key, pem) = key_and_request("jane", &["dev", "ops"]);
    let (_, other) = key_and_request("mallory", &["system:masters"]);
    create_csr(&server, &k, "mallory", &other);
    create_csr(&server, &k, "jane", &pem);
    assert_eq!(condition(&k, "jane"), "Pending");
    let requester = k.run(&["get", "csr", "jane", "-o", "jsonpath={.spec.username}"]).ok().to_owned();
    assert_eq!(requester, "system:admin", "the server records who asked");

    // Denied first: by the time jane's certificate exists, the signer has
    // seen mallory's request too.
    k.run(&["certificate", "deny", "mallory"])
        .prints("certificatesigningrequest.certificates.k8s.io/mallory denied");
    k.run(&["certificate", "approve", "jane"])
        .prints("certificatesigningrequest.certificates.k8s.io/jane approved");
    assert!(eventually(T, || !certificate(&k, "jane").is_empty()), "jane's request was never signed");
    assert_eq!(condition(&k, "jane"), "Approved,Issued");
    assert_eq!(condition(&k, "mallory"), "Denied");
    assert_eq!(certificate(&k, "mallory"), "", "a denied request is not signed");

    let cert_pem = base64::engine::general_purpose::STANDARD.decode(certificate(&k, "jane")).unwrap();
    let cert = server.write("jane.crt", std::str::from_utf8(&cert_pem).unwrap());
    let key_file = server.write("jane.key", &key.serialize_pem());
    let kubeconfig = server.path("jane.kubeconfig");
    std::fs::copy(server.kubeconfig(), &kubeconfig).unwrap();
    let jane = k.with_kubeconfig(&kubeconfig, &server.path("home-jane"));
    jane.run(&[
        "config",
        "set-credentials",
        "jane",
        "--client-certificate",
        cert.to_str().unwrap(),
        "--client-key",
        key_file.to_str().unwrap(),
        "--embed-certs",
    ])
    .ok();
    let context = jane.run(&["config", "current-context"]).ok().trim().to_owned();
    jane.run(&["config", "set-context", &context, "--user", "jane"]).ok();

    let who: Value = serde_json::from_str(jane.run(&["auth", "whoami", "-o", "json"]).ok()).unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "jane");
    assert_eq!(who["status"]["userInfo"]["groups"], json!(["dev", "ops", "system:authenticated"]));
    // Only what RBAC grants jane: nothing beyond the basics.
    jane.run(&["get", "pods"]).fails();
}
