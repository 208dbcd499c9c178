//! `lichen server` on this host: starts in well under a second, makes its
//! PKI, answers `/version` and `/readyz` over TLS that verifies against the
//! cluster CA, works with the real kubectl (`LICHEN_KUBECTL`, set by `make
//! test`), and reuses its PKI on restart.

#![allow(clippy::unwrap_used)] // test code: a failed setup step should panic with its error

mod common;

use common::{Server, get_anonymous as get, get_as_admin};

#[test]
fn serves_version_and_health_over_tls_and_keeps_its_pki() {
    let mut server = Server::start();
    let data = server.data.clone();
    for f in ["ca.crt", "ca.key", "server.crt", "admin.crt", "sa.key", "admin.kubeconfig"] {
        assert!(data.join("pki").join(f).exists(), "{f} missing");
    }
    let (code, body) = get(&data, server.port, "/version");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"gitVersion\":\"v1.37.0+lichen-"), "{body}");
    let (code, body) = get(&data, server.port, "/readyz?verbose");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("[+]datastore ok") && body.contains("readyz check passed"), "{body}");
    // The API needs a client certificate; with one, unknown paths are 404.
    let (code, body) = get(&data, server.port, "/api/v1/namespaces");
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("\"reason\":\"Unauthorized\""), "{body}");
    let (code, body) = get_as_admin(&data, server.port, "/api/v1/nowhere");
    assert_eq!(code, 404);
    assert!(body.contains("\"reason\":\"NotFound\""), "{body}");

    if let Some(k) = server.kubectl() {
        let out = k.run(&["version", "-o", "json"]);
        assert!(out.ok().contains("\"gitVersion\": \"v1.37.0+lichen-"), "{}", out.stdout);
    }

    let ca = std::fs::read(data.join("pki/ca.crt")).unwrap();
    let serving = std::fs::read(data.join("pki/server.crt")).unwrap();
    server.restart();
    assert_eq!(std::fs::read(data.join("pki/ca.crt")).unwrap(), ca, "CA kept");
    assert_eq!(std::fs::read(data.join("pki/server.crt")).unwrap(), serving, "serving cert kept");
    let (code, _) = get(&data, server.port, "/version");
    assert_eq!(code, 200);
}
