//! `lichen server` on this host: starts in well under a second, makes its
//! PKI, answers `/version` and `/readyz` over TLS that verifies against the
//! cluster CA, works with the real kubectl (`LICHEN_KUBECTL`, set by `make
//! test`), and reuses its PKI on restart.

#![allow(clippy::unwrap_used)] // test code: a failed setup step should panic with its error

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(data: &Path) -> Server {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lichen"))
        .args(["server", "--data-dir"])
        .arg(data)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::piped())
        .spawn()
        .expect("lichen binary");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if line.contains("server ready") {
                let _ = tx.send(());
            }
        }
    });
    let t = Instant::now();
    rx.recv_timeout(Duration::from_secs(30)).expect("lichen server did not get ready");
    eprintln!("ready after {} ms", t.elapsed().as_millis());
    Server { child, port }
}

/// GET over TLS, verifying the server against the cluster CA.
fn get(data: &Path, port: u16, path: &str) -> (u16, String) {
    let ca = std::fs::read(data.join("pki/ca.crt")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    write!(tls, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

#[test]
fn serves_version_and_health_over_tls_and_keeps_its_pki() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let server = start(data);
    for f in ["ca.crt", "ca.key", "server.crt", "admin.crt", "sa.key", "admin.kubeconfig"] {
        assert!(data.join("pki").join(f).exists(), "{f} missing");
    }
    let (code, body) = get(data, server.port, "/version");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"gitVersion\":\"v1.37.0+lichen-"), "{body}");
    let (code, body) = get(data, server.port, "/readyz?verbose");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("[+]datastore ok") && body.contains("readyz check passed"), "{body}");
    // Without credentials only /version and the health endpoints answer.
    let (code, body) = get(data, server.port, "/api/v1/nowhere");
    assert_eq!(code, 401);
    assert!(body.contains("\"reason\":\"Unauthorized\""), "{body}");

    if let Some(kubectl) = std::env::var_os("LICHEN_KUBECTL") {
        let out = Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(data.join("pki/admin.kubeconfig"))
            .args(["version", "-o", "json"])
            .output()
            .expect("LICHEN_KUBECTL is set but cannot run");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "kubectl version: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("\"gitVersion\": \"v1.37.0+lichen-"), "{text}");
    } else {
        eprintln!("LICHEN_KUBECTL not set: kubectl check skipped (make test sets it)");
    }

    let ca = std::fs::read(data.join("pki/ca.crt")).unwrap();
    let serving = std::fs::read(data.join("pki/server.crt")).unwrap();
    drop(server);
    let again = start(data);
    assert_eq!(std::fs::read(data.join("pki/ca.crt")).unwrap(), ca, "CA kept");
    assert_eq!(std::fs::read(data.join("pki/server.crt")).unwrap(), serving, "serving cert kept");
    let (code, _) = get(data, again.port, "/version");
    assert_eq!(code, 200);
}
