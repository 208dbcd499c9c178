//! CertificateSigningRequests through the real API server with the approver
//! and the signer, signing with a real test CA.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use common::{Cluster, condition};
use lichen_apiserver::Identity;
use lichen_client::Client;
use lichen_controllers::csr;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use serde_json::{Value, json};
use x509_parser::prelude::{FromDer, X509Certificate};

const T: Duration = Duration::from_secs(20);
const CSRS: &str = csr::PATH;
const CLIENT_USAGES: &[&str] = &["digital signature", "key encipherment", "client auth"];

struct Setup {
    cluster: Cluster,
    pki: Arc<lichen_pki::Pki>,
    _dir: tempfile::TempDir,
}

/// The API server with only the CSR controllers, signing with a fresh CA.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (pki, _) = lichen_pki::Pki::load_or_create(&lichen_pki::PkiOptions::new(dir.path(), "test")).unwrap();
    let pki = Arc::new(pki);
    let signing = pki.clone();
    let signer = csr::Signer::new(move |pem, usage, validity| {
        signing.sign_csr(pem, usage, validity, std::time::SystemTime::now())
    });
    let cluster = Cluster::start_with(move |tasks, client, _| {
        let reserved_names = vec!["10.43.0.1".to_owned(), "server.example.com".to_owned()];
        csr::start(tasks, client, csr::Config { signer: Some(signer), reserved_names, ..Default::default() })
    });
    Setup { cluster, pki, _dir: dir }
}

fn identity(user: &str, group: &str) -> Identity {
    Identity {
        user: user.into(),
        uid: format!("uid-{user}"),
        groups: vec![group.into(), "system:authenticated".into()],
        extra: BTreeMap::new(),
    }
}

fn bootstrapper(s: &Setup) -> Client {
    s.cluster.client_as(identity("system:bootstrap:abcdef", "system:bootstrappers"))
}

fn node(s: &Setup, name: &str) -> Client {
    s.cluster.client_as(identity(&format!("system:node:{name}"), "system:nodes"))
}

/// A PEM request for CN `cn` and the organizations `orgs` (at most two).
fn request(cn: &str, orgs: &[&str]) -> String {
    request_with_names(cn, orgs, vec![])
}

fn request_with_names(cn: &str, orgs: &[&str], sans: Vec<rcgen::SanType>) -> String {
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans;
    params.distinguished_name = DistinguishedName::new();
    for (i, o) in orgs.iter().enumerate() {
        // rcgen keeps one value per type; a second O uses organizationName's OID.
        let ty = if i == 0 { DnType::OrganizationName } else { DnType::CustomDnType(vec![2, 5, 4, 10]) };
        params.distinguished_name.push(ty, *o);
    }
    params.distinguished_name.push(DnType::CommonName, cn);
    params.serialize_request(&KeyPair::generate().unwrap()).unwrap().pem().unwrap()
}

fn csr_object(name: &str, signer: &str, pem: &str, usages: &[&str], expiration: Option<i64>) -> Value {
    let mut o = json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(pem),
            "signerName": signer, "usages": usages,
            // Whatever the body says, the server records who asked.
            "username": "system:admin", "groups": ["system:masters"],
        },
    });
    if let Some(e) = expiration {
        o["spec"]["expirationSeconds"] = json!(e);
    }
    o
}

async fn create(client: &Client, name: &str, signer: &str, pem: &str, usages: &[&str], exp: Option<i64>) {
    client.create(CSRS, &csr_object(name, signer, pem, usages, exp)).await.unwrap();
}

async fn get(s: &Setup, name: &str) -> Value {
    s.cluster.get(&format!("{CSRS}/{name}")).await
}

/// Waits for the certificate and returns it parsed, as DER.
async fn certificate(s: &Setup, name: &str) -> Vec<u8> {
    let path = format!("{CSRS}/{name}");
    let c = &s.cluster;
    let b64 = c
        .until(&format!("a certificate for {name}"), T, || async {
            let v = c.get(&path).await;
            v["status"]["certificate"].as_str().filter(|c| !c.is_empty()).map(str::to_owned)
        })
        .await;
    let pem = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    assert_eq!(block.label, "CERTIFICATE");
    block.contents
}

/// Waits until `name` has the condition `kind`.
async fn wait_condition(s: &Setup, name: &str, kind: &str) -> Value {
    let path = format!("{CSRS}/{name}");
    let c = &s.cluster;
    c.until(&format!("{kind} on {name}"), T, || async { condition(&c.get(&path).await, kind).cloned() }).await
}

/// Approves by hand, as `kubectl certificate approve`.
async fn approve(s: &Setup, name: &str) {
    let mut v = get(s, name).await;
    let mut conditions = v["status"]["conditions"].as_array().cloned().unwrap_or_default();
    conditions.push(json!({"type": "Approved", "status": "True", "reason": "KubectlApprove",
        "message": "This CSR was approved by kubectl certificate approve."}));
    v["status"]["conditions"] = json!(conditions);
    s.cluster.client.replace(&format!("{CSRS}/{name}/approval"), &v).await.unwrap();
}

/// The approver works through requests in order: once a later, approvable
/// request is approved, it has made up its mind about the earlier ones.
async fn approver_caught_up(s: &Setup, tag: &str) {
    let name = format!("sentinel-{tag}");
    create(
        &bootstrapper(s),
        &name,
        csr::rules::KUBELET_CLIENT,
        &request("system:node:x", &["system:nodes"]),
        CLIENT_USAGES,
        None,
    )
    .await;
    wait_condition(s, &name, "Approved").await;
}

struct Cert {
    cn: Vec<String>,
    orgs: Vec<String>,
    client_auth: bool,
    server_auth: bool,
    lifetime: i64,
}

fn inspect(s: &Setup, der: &[u8]) -> Cert {
    let cert = X509Certificate::from_der(der).unwrap().1;
    let (_, ca_block) = x509_parser::pem::parse_x509_pem(s.pki.ca_cert_pem.as_bytes()).unwrap();
    let ca = X509Certificate::from_der(&ca_block.contents).unwrap().1;
    assert_eq!(cert.issuer(), ca.subject(), "issued by the cluster CA");
    cert.verify_signature(Some(ca.public_key())).expect("signed by the cluster CA");
    let text = |a: &x509_parser::x509::AttributeTypeAndValue<'_>| a.as_str().unwrap().to_owned();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    Cert {
        cn: cert.subject().iter_common_name().map(text).collect(),
        orgs: cert.subject().iter_organization().map(text).collect(),
        client_auth: eku.client_auth,
        server_auth: eku.server_auth,
        lifetime: cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrapping_node_gets_a_client_certificate() {
    let s = setup();
    let pem = request("system:node:n1", &["system:nodes"]);
    create(&bootstrapper(&s), "node-csr-n1", csr::rules::KUBELET_CLIENT, &pem, CLIENT_USAGES, None).await;

    let der = certificate(&s, "node-csr-n1").await;
    let v = get(&s, "node-csr-n1").await;
    assert_eq!(v["spec"]["username"], "system:bootstrap:abcdef", "the requester, not the body");
    assert_eq!(v["spec"]["uid"], "uid-system:bootstrap:abcdef");
    assert_eq!(v["spec"]["groups"], json!(["system:bootstrappers", "system:authenticated"]));
    let approved = condition(&v, "Approved").unwrap();
    assert_eq!(approved["status"], "True");
    assert_eq!(approved["reason"], "AutoApproved");
    assert_eq!(approved["message"], "Auto approving kubelet client certificate after SubjectAccessReview.");
    let c = inspect(&s, &der);
    assert_eq!(c.cn, ["system:node:n1"]);
    assert_eq!(c.orgs, ["system:nodes"]);
    assert!(c.client_auth && !c.server_auth);
    assert_eq!(c.lifetime, 365 * 86_400 + 3600, "a year, backdated an hour");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubelet_request_for_system_masters_is_neither_approved_nor_signed() {
    let s = setup();
    let pem = request("system:node:n1", &["system:masters"]);
    create(&bootstrapper(&s), "sneaky", csr::rules::KUBELET_CLIENT, &pem, CLIENT_USAGES, None).await;
    approver_caught_up(&s, "masters").await;
    let v = get(&s, "sneaky").await;
    assert!(condition(&v, "Approved").is_none(), "not auto-approved: {v}");

    // Approved by hand, the signer still refuses it.
    approve(&s, "sneaky").await;
    let failed = wait_condition(&s, "sneaky", "Failed").await;
    assert_eq!(failed["status"], "True");
    assert_eq!(failed["reason"], "SignerValidationFailure");
    assert_eq!(failed["message"], "subject organization is not system:nodes");
    assert!(get(&s, "sneaky").await["status"]["certificate"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_renews_its_own_certificate_but_not_another_nodes() {
    let s = setup();
    let n1 = node(&s, "n1");
    create(
        &n1,
        "renew-n1",
        csr::rules::KUBELET_CLIENT,
        &request("system:node:n1", &["system:nodes"]),
        CLIENT_USAGES,
        None,
    )
    .await;
    create(
        &n1,
        "steal-n2",
        csr::rules::KUBELET_CLIENT,
        &request("system:node:n2", &["system:nodes"]),
        CLIENT_USAGES,
        None,
    )
    .await;

    let der = certificate(&s, "renew-n1").await;
    assert_eq!(inspect(&s, &der).cn, ["system:node:n1"]);
    let approved = condition(&get(&s, "renew-n1").await, "Approved").cloned().unwrap();
    assert_eq!(
        approved["message"],
        "Auto approving self kubelet client certificate after SubjectAccessReview."
    );

    approver_caught_up(&s, "renewal").await;
    let v = get(&s, "steal-n2").await;
    assert!(condition(&v, "Approved").is_none(), "another node's certificate: {v}");
    assert!(v["status"]["certificate"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_gets_a_serving_certificate_for_its_own_name_and_addresses_only() {
    let s = setup();
    for (name, ip) in [("n1", "10.0.0.1"), ("n2", "10.0.0.2"), ("server.example.com", "10.0.0.3")] {
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]}});
        s.cluster.create("/api/v1/nodes", node).await;
    }
    let serving = |dns: &str, ip: &str| {
        let sans = vec![
            rcgen::SanType::DnsName(dns.try_into().unwrap()),
            rcgen::SanType::IpAddress(ip.parse().unwrap()),
        ];
        request_with_names("system:node:n1", &["system:nodes"], sans)
    };
    let n1 = node(&s, "n1");
    let usages = &["digital signature", "server auth"];
    let signer = csr::rules::KUBELET_SERVING;
    create(&n1, "own", signer, &serving("n1", "10.0.0.1"), usages, None).await;
    create(&n1, "n2s-address", signer, &serving("n1", "10.0.0.2"), usages, None).await;
    create(&n1, "other-name", signer, &serving("api.example.com", "10.0.0.1"), usages, None).await;

    // A node named as the API server's certificate is (a reserved name)
    // gets nothing, though the name and address are its own.
    let impostor = node(&s, "server.example.com");
    let sans = vec![
        rcgen::SanType::DnsName("server.example.com".try_into().unwrap()),
        rcgen::SanType::IpAddress("10.0.0.3".parse().unwrap()),
    ];
    let pem = request_with_names("system:node:server.example.com", &["system:nodes"], sans);
    create(&impostor, "reserved-name", signer, &pem, usages, None).await;

    let c = inspect(&s, &certificate(&s, "own").await);
    assert_eq!(c.cn, ["system:node:n1"]);
    assert!(c.server_auth && !c.client_auth);
    let approved = condition(&get(&s, "own").await, "Approved").cloned().unwrap();
    assert_eq!(approved["reason"], "AutoApproved");

    approver_caught_up(&s, "serving").await;
    for name in ["n2s-address", "other-name", "reserved-name"] {
        let v = get(&s, name).await;
        assert!(condition(&v, "Approved").is_none(), "{name} approved: {v}");
        assert!(v["status"]["certificate"].is_null());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apiserver_client_request_waits_for_a_human() {
    let s = setup();
    let pem = request("jane", &["dev", "ops"]);
    create(&s.cluster.client, "jane", csr::rules::KUBE_APISERVER_CLIENT, &pem, &["client auth"], Some(3600))
        .await;
    // Even an admin's request for a kubelet-serving certificate waits.
    let serving = request("system:node:n1", &["system:nodes"]);
    create(
        &s.cluster.client,
        "serving",
        csr::rules::KUBELET_SERVING,
        &serving,
        &["digital signature", "server auth"],
        None,
    )
    .await;
    approver_caught_up(&s, "human").await;
    for name in ["jane", "serving"] {
        let v = get(&s, name).await;
        assert!(condition(&v, "Approved").is_none(), "{name} approved without a human: {v}");
        assert!(v["status"]["certificate"].is_null());
    }

    approve(&s, "jane").await;
    let c = inspect(&s, &certificate(&s, "jane").await);
    assert_eq!(c.cn, ["jane"]);
    assert_eq!(c.orgs, ["dev", "ops"]);
    assert!(c.client_auth && !c.server_auth);
    assert_eq!(c.lifetime, 3600 + 3600, "expirationSeconds, backdated an hour");
    assert!(condition(&get(&s, "jane").await, "Failed").is_none());

    // The serving request has no names: approved by hand, it fails.
    approve(&s, "serving").await;
    let failed = wait_condition(&s, "serving", "Failed").await;
    assert_eq!(failed["message"], "DNS or IP subjectAltName is required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lifetimes_are_raised_to_ten_minutes_and_other_signers_are_left_alone() {
    let s = setup();
    let pem = request("bob", &[]);
    create(&s.cluster.client, "short", csr::rules::KUBE_APISERVER_CLIENT, &pem, &["client auth"], Some(60))
        .await;
    create(&s.cluster.client, "custom", "example.com/custom", &pem, &["client auth"], None).await;
    approve(&s, "custom").await;
    approve(&s, "short").await;
    assert_eq!(inspect(&s, &certificate(&s, "short").await).lifetime, 600 + 3600);
    // "short" was approved after "custom": the signer has seen both.
    let v = get(&s, "custom").await;
    assert!(v["status"]["certificate"].is_null() && condition(&v, "Failed").is_none(), "{v}");
}

/// Expired bootstrap tokens are deleted; live and never-expiring ones stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_bootstrap_tokens_are_cleaned_up() {
    let c = Cluster::start(true);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let secret = |id: &str, expiration: Option<&str>| {
        let mut data = json!({"token-id": b64(id), "token-secret": b64("0123456789abcdef")});
        if let Some(e) = expiration {
            data["expiration"] = json!(b64(e));
        }
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"},
            "data": data,
        })
    };
    const SECRETS: &str = "/api/v1/namespaces/kube-system/secrets";
    c.create(SECRETS, secret("expird", Some("2020-01-01T00:00:00Z"))).await;
    c.create(SECRETS, secret("future", Some("2999-01-01T00:00:00Z"))).await;
    c.create(SECRETS, secret("noexpy", None)).await;
    c.until("the expired token deleted", Duration::from_secs(10), || async {
        c.client.get_opt(&format!("{SECRETS}/bootstrap-token-expird")).await.unwrap().is_none().then_some(())
    })
    .await;
    for id in ["future", "noexpy"] {
        assert!(
            c.client.get_opt(&format!("{SECRETS}/bootstrap-token-{id}")).await.unwrap().is_some(),
            "{id} kept"
        );
    }
}
