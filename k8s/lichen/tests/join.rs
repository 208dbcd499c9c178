//! Joining with a token against a real `lichen server` (with the
//! controllers, which approve and sign node client CSRs): the cluster
//! token and bootstrap tokens from `lichen token create` get an agent its
//! own client certificate; a wrong secret, a revoked or expired token, and
//! a server with another CA are refused with messages that say so.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::Server;
use lichen_kubelet::join::{self, JoinError, JoinOptions};
use lichen_pki::join::{Credential, JoinToken};

fn lichen_token(server: &Server, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(common::lichen_bin())
        .arg("token")
        .args(args)
        .args(["--data-dir", &server.data.display().to_string()])
        .args(["--server", &format!("https://127.0.0.1:{}", server.port)])
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn options(server: &Server, token: &str, node: &str, dir: &std::path::Path) -> JoinOptions {
    JoinOptions {
        server: format!("https://127.0.0.1:{}", server.port),
        token: token.to_owned(),
        ca_file: None,
        node_name: node.to_owned(),
        dir: dir.to_owned(),
        timeout: Duration::from_secs(30),
    }
}

/// A client with the server's admin certificate.
fn server_admin(server: &Server) -> lichen_kubelet::client::Client {
    let read = |f: &str| std::fs::read_to_string(server.data.join("pki").join(f)).unwrap();
    lichen_kubelet::client::Client::new(&lichen_kubelet::client::ClientConfig {
        server: format!("https://127.0.0.1:{}", server.port),
        ca_pem: read(lichen_pki::file::CA_CERT),
        credentials: lichen_kubelet::client::Credentials::Certificate {
            cert_pem: read(lichen_pki::file::ADMIN_CERT),
            key_pem: read(lichen_pki::file::ADMIN_KEY),
        },
    })
    .unwrap()
}

fn refused(r: Result<lichen_kubelet::client::ClientConfig, JoinError>) -> String {
    match r {
        Ok(_) => panic!("joined, but should have been refused"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_join_with_tokens_and_bad_tokens_are_refused() {
    let server = Server::start_with_controllers(&[]);
    let cluster_token = std::fs::read_to_string(server.data.join("pki/token")).unwrap();
    let scratch = tempfile::tempdir().unwrap();

    // The cluster's own token: a client certificate for the node, saved.
    let dir1 = scratch.path().join("n1");
    let started = std::time::Instant::now();
    let cfg = join::credentials(&options(&server, &cluster_token, "n1", &dir1)).await.unwrap();
    println!("[join] cluster token: certificate issued in {} ms", started.elapsed().as_millis());
    let lichen_kubelet::client::Credentials::Certificate { cert_pem, .. } = &cfg.credentials else {
        panic!("joined without a certificate")
    };
    assert!(dir1.join("client.key").exists() && dir1.join("ca.crt").exists());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir1.join("client.key")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // The certificate is the node's: it may read nodes (system:node rules).
    let client = lichen_kubelet::client::Client::new(&cfg).unwrap();
    client.get("/api/v1/nodes").await.unwrap();
    client.get("/apis/discovery.k8s.io/v1/endpointslices").await.unwrap();
    client.get("/apis/networking.k8s.io/v1/networkpolicies").await.unwrap();
    let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nope"}});
    let created = client.create("/api/v1/namespaces", &ns).await;
    assert!(
        created.is_err_and(|e| e.code().map(|c| c.as_u16()) == Some(403)),
        "a node may not create namespaces"
    );
    // A restart reuses the saved certificate, even with the token revoked.
    let again = join::credentials(&options(&server, "K10ffff::bad", "n1", &dir1)).await;
    assert!(again.is_err(), "a malformed token is refused before anything");
    let again = join::credentials(&options(&server, &cluster_token, "n1", &dir1)).await.unwrap();
    let lichen_kubelet::client::Credentials::Certificate { cert_pem: reused, .. } = &again.credentials else {
        panic!()
    };
    assert_eq!(reused, cert_pem, "the saved certificate is reused");

    // Renewal: a certificate 80 % through its life is replaced, with a new
    // key, through the node's own request (upstream's selfnodeclient).
    // The old one is signed here with the server's CA (a copy of its PKI).
    let ca_pem = std::fs::read_to_string(server.data.join("pki/ca.crt")).unwrap();
    let copy = scratch.path().join("server-pki");
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["ca.crt", "ca.key"] {
        std::fs::copy(server.data.join("pki").join(f), copy.join(f)).unwrap();
    }
    let (pki, _) = lichen_pki::Pki::load_or_create(&lichen_pki::PkiOptions::new(&copy, "copy")).unwrap();
    assert_eq!(pki.ca_cert_pem, ca_pem);
    let (old_key, csr) = lichen_pki::join::node_client_request("n1").unwrap();
    // Valid from an hour before "issued" (the signer backdates) to an hour
    // after it: 50 minutes after, 80 % of it has passed.
    let issued = std::time::SystemTime::now() - Duration::from_secs(50 * 60);
    let hour = Duration::from_secs(3600);
    let old = pki.sign_csr(csr.as_bytes(), lichen_pki::Usage::ClientAuth, hour, issued).unwrap();
    lichen_pki::join::save_node_credentials(&dir1, &ca_pem, &old, &old_key).unwrap();
    let cfg = join::credentials(&options(&server, &cluster_token, "n1", &dir1)).await.unwrap();
    let client = lichen_kubelet::client::Client::new(&cfg).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!(join::renewal_due(&old).unwrap() <= now, "due for renewal");
    let renewed = join::renew(&client, "n1", &dir1, &ca_pem, Duration::from_secs(30)).await.unwrap();
    assert_eq!(std::fs::read_to_string(dir1.join("client.crt")).unwrap(), renewed, "saved");
    assert_ne!(std::fs::read_to_string(dir1.join("client.key")).unwrap(), old_key, "a new key");
    let (start, end) = lichen_pki::join::validity_of_pem(&renewed).unwrap();
    assert!(end - start > 300 * 86_400, "a full lifetime: {start}..{end}");
    assert!(join::renewal_due(&renewed).unwrap() > now + 200 * 86_400);
    client.get("/api/v1/nodes").await.unwrap();
    // A replaced certificate is what new connections present: one from
    // another CA is refused, the renewed one accepted.
    let stranger = scratch.path().join("stranger");
    let (other, _) = lichen_pki::Pki::load_or_create(&lichen_pki::PkiOptions::new(&stranger, "x")).unwrap();
    let (other_key, csr) = lichen_pki::join::node_client_request("n1").unwrap();
    let other_cert = other.sign_csr(csr.as_bytes(), lichen_pki::Usage::ClientAuth, hour, issued).unwrap();
    let fresh = lichen_kubelet::client::Client::new(&cfg).unwrap();
    fresh.certificate().unwrap().replace(&other_cert, &other_key).unwrap();
    assert!(fresh.get("/api/v1/nodes").await.is_err(), "a certificate from another CA");
    let new_key = std::fs::read_to_string(dir1.join("client.key")).unwrap();
    fresh.certificate().unwrap().replace(&renewed, &new_key).unwrap();
    fresh.get("/api/v1/nodes").await.unwrap();
    let csrs =
        server_admin(&server).get("/apis/certificates.k8s.io/v1/certificatesigningrequests").await.unwrap();
    let messages: Vec<&str> = csrs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["spec"]["username"] == "system:node:n1")
        .filter_map(|c| c["status"]["conditions"][0]["message"].as_str())
        .collect();
    assert_eq!(messages, ["Auto approving self kubelet client certificate after SubjectAccessReview."]);

    // A bootstrap token from `lichen token create`.
    let (ok, out, err) = lichen_token(&server, &["create", "--ttl", "1h", "--description", "edge rollout"]);
    assert!(ok, "{err}");
    let token = out.trim().to_owned();
    let parsed = JoinToken::parse(&token).unwrap();
    let Credential::Bootstrap { id, .. } = &parsed.credential else {
        panic!("not a bootstrap token: {token}")
    };
    let (ok, list, err) = lichen_token(&server, &["list"]);
    assert!(ok, "{err}");
    assert!(
        list.lines().any(|l| l.starts_with(id.as_str())
            && l.contains("authentication,signing")
            && l.contains("edge rollout")),
        "{list}"
    );
    assert!(!list.contains(token.rsplit('.').next().unwrap()), "list never shows the secret:\n{list}");
    join::credentials(&options(&server, &token, "n2", &scratch.path().join("n2"))).await.unwrap();

    // A wrong secret for a known id.
    let wrong = token.replace(&token[token.len() - 4..], "zzzz");
    let e = refused(join::credentials(&options(&server, &wrong, "n3", &scratch.path().join("n3"))).await);
    assert!(e.contains("refused the join token") && e.contains("wrong secret"), "{e}");
    // Revoked.
    let (ok, out, err) = lichen_token(&server, &["delete", &token]);
    assert!(ok && out.contains(id.as_str()), "{out}{err}");
    let e = refused(join::credentials(&options(&server, &token, "n3", &scratch.path().join("n3"))).await);
    assert!(e.contains(&format!("bootstrap token {id} is unknown")), "{e}");
    let (ok, _, err) = lichen_token(&server, &["delete", id]);
    assert!(!ok && err.contains(&format!("no bootstrap token {id}")), "{err}");
    // Expired.
    let (ok, out, err) = lichen_token(&server, &["create", "--ttl", "1s"]);
    assert!(ok, "{err}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let e = refused(join::credentials(&options(&server, out.trim(), "n4", &scratch.path().join("n4"))).await);
    assert!(e.contains("expired at"), "{e}");
    let (ok, _, err) = lichen_token(&server, &["create", "--ttl", "soon"]);
    assert!(!ok && err.contains("--ttl \"soon\""), "{err}");

    // A token pinning another CA: refused before the token is sent.
    let other = JoinToken { ca_hash: "0".repeat(64), credential: parsed.credential.clone() };
    let e = refused(
        join::credentials(&options(&server, &other.render(), "n5", &scratch.path().join("n5"))).await,
    );
    assert!(e.contains("refusing to join") && e.contains(&format!("sha256:{}", "0".repeat(64))), "{e}");
    assert!(!scratch.path().join("n5").exists());
    // The cluster token's secret with another CA hash is refused by the
    // server too (an agent that skipped the check).
    let raw = lichen_kubelet::client::Client::new(&lichen_kubelet::client::ClientConfig {
        server: format!("https://127.0.0.1:{}", server.port),
        ca_pem: std::fs::read_to_string(server.data.join("pki/ca.crt")).unwrap(),
        credentials: lichen_kubelet::client::Credentials::Token(
            JoinToken { ca_hash: "0".repeat(64), ..JoinToken::parse(&cluster_token).unwrap() }.render(),
        ),
    })
    .unwrap();
    let e = raw.get("/api/v1/nodes").await.unwrap_err().to_string();
    assert!(e.contains("401") && e.contains("pins cluster CA"), "{e}");
}
