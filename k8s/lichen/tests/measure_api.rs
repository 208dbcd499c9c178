//! `make bench` numbers for the API server (ignored by `cargo test`): idle
//! RSS, creates per second, list latency at 10,000 objects, watch fan-out
//! to 100 watchers, datastore size after 100,000 updates and after
//! compaction, SQLite against the in-memory store. Drives the real binary
//! over HTTPS/2 with the admin client certificate.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)] // a benchmark: failures should panic loudly

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

type Https = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, extra: &[&str]) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lichen"))
        .args(["server", "--disable-agent", "--disable-controllers", "--data-dir"])
        .arg(dir)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("server ready") {
                let _ = tx.send(line);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).unwrap();
    Server { child, port, dir: dir.to_path_buf() }
}

fn client(pki: &Path) -> Client<Https, Full<Bytes>> {
    let read = |f: &str| std::fs::read(pki.join(f)).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(&read("ca.crt")).unwrap()).unwrap();
    let certs = vec![CertificateDer::from_pem_slice(&read("admin.crt")).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(&read("admin.key")).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap();
    let https =
        hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(cfg).https_only().enable_http2().build();
    Client::builder(TokioExecutor::new()).http2_only(true).build(https)
}

async fn call(
    c: &Client<Https, Full<Bytes>>,
    port: u16,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Bytes) {
    let mut req = hyper::Request::builder().method(method).uri(format!("https://127.0.0.1:{port}{path}"));
    let body = match body {
        Some(b) => {
            let ct = if method == "PATCH" { "application/merge-patch+json" } else { "application/json" };
            req = req.header("content-type", ct);
            Full::new(Bytes::from(b.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let resp = c.request(req.body(body).unwrap()).await.unwrap();
    let code = resp.status().as_u16();
    (code, resp.into_body().collect().await.unwrap().to_bytes())
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap()
}

fn db_bytes(dir: &Path) -> u64 {
    ["state.db", "state.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join("db").join(f)).ok())
        .map(|m| m.len())
        .sum()
}

fn cm(name: &str, ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
           "data": {"payload": "x".repeat(400)}})
}

/// `n` POSTs from `conc` concurrent tasks; returns the rate per second.
async fn creates(c: &Client<Https, Full<Bytes>>, port: u16, ns: &str, n: usize, conc: usize) -> f64 {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..conc {
        let (c, ns) = (c.clone(), ns.to_string());
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(conc) {
                let (code, body) = call(
                    &c,
                    port,
                    "POST",
                    &format!("/api/v1/namespaces/{ns}/configmaps"),
                    Some(cm(&format!("c{i:05}"), &ns)),
                )
                .await;
                assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn list_ms(c: &Client<Https, Full<Bytes>>, port: u16, path: &str, expect: usize) -> f64 {
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (code, body) = call(c, port, "GET", path, None).await;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(code, 200);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["items"].as_array().unwrap().len(), expect);
    }
    median(times)
}

/// 100 watchers on one namespace, 100 creates: every watcher must see every
/// event. Returns (ms until all delivered, deliveries per second).
async fn fan_out(c: &Client<Https, Full<Bytes>>, port: u16) -> (f64, f64) {
    let (_, body) = call(c, port, "GET", "/api/v1/namespaces/watch/configmaps", None).await;
    let rv = serde_json::from_slice::<Value>(&body).unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel(100);
    for _ in 0..100 {
        let (c, rv, done) = (c.clone(), rv.clone(), done_tx.clone());
        tokio::spawn(async move {
            let req = hyper::Request::builder()
                .uri(format!("https://127.0.0.1:{port}/api/v1/namespaces/watch/configmaps?watch=true&resourceVersion={rv}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let mut body = c.request(req).await.unwrap().into_body();
            let mut seen = 0;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.unwrap().into_data() {
                    seen += data.iter().filter(|b| **b == b'\n').count();
                }
                if seen >= 100 {
                    let _ = done.send(Instant::now()).await;
                    return;
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    creates(c, port, "watch", 100, 4).await;
    let mut last = t;
    for _ in 0..100 {
        last =
            last.max(tokio::time::timeout(Duration::from_secs(60), done_rx.recv()).await.unwrap().unwrap());
    }
    let ms = (last - t).as_secs_f64() * 1000.0;
    (ms, 10_000.0 / (ms / 1000.0))
}

async fn ensure_ns(c: &Client<Https, Full<Bytes>>, port: u16, ns: &str) {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    let (code, _) = call(c, port, "POST", "/api/v1/namespaces", Some(body)).await;
    assert_eq!(code, 201);
}

#[test]
#[ignore = "benchmark: make bench"]
fn measure_api() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for backend in ["sqlite", "memory"] {
        let dir = tmp.path().join(backend);
        let s = start(&dir, &["--datastore", backend, "--compact-interval", "5", "--compact-keep", "1000"]);
        std::thread::sleep(Duration::from_secs(2));
        let idle = rss_kib(s.child.id());
        let c = client(&dir.join("pki"));
        rt.block_on(async {
            for ns in ["bench", "watch"] {
                ensure_ns(&c, s.port, ns).await;
            }
            let rate = creates(&c, s.port, "bench", 10_000, 32).await;
            let all = list_ms(&c, s.port, "/api/v1/namespaces/bench/configmaps", 10_000).await;
            let page = list_ms(&c, s.port, "/api/v1/namespaces/bench/configmaps?limit=500", 500).await;
            println!("[{backend}] idle RSS after start: {} KiB", idle);
            println!("[{backend}] creates: {rate:.0}/s (10,000 ConfigMaps of 400 B, 32 concurrent over HTTP/2)");
            println!("[{backend}] list 10,000: {all:.0} ms (median of 5); page of 500: {page:.1} ms");
            let (ms, rate) = fan_out(&c, s.port).await;
            println!("[{backend}] watch fan-out: 100 watchers x 100 creates delivered in {ms:.0} ms ({rate:.0} events/s)");
            println!("[{backend}] RSS after 10,000 objects and 100 watches: {} KiB", rss_kib(s.child.id()));
            if backend == "sqlite" {
                let t = Instant::now();
                let mut tasks = Vec::new();
                for w in 0..32usize {
                    let c = c.clone();
                    let port = s.port;
                    tasks.push(tokio::spawn(async move {
                        for i in (w..100_000).step_by(32) {
                            let path = format!("/api/v1/namespaces/bench/configmaps/c{:05}", i % 100);
                            let patch = json!({"data": {"n": i.to_string()}});
                            let (code, _) = call(&c, port, "PATCH", &path, Some(patch)).await;
                            assert_eq!(code, 200);
                        }
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
                let secs = t.elapsed().as_secs_f64();
                println!("[sqlite] 100,000 updates: {:.0}/s; datastore {} KiB", 100_000.0 / secs, db_bytes(&s.dir) / 1024);
                tokio::time::sleep(Duration::from_secs(12)).await;
                println!("[sqlite] after compaction (keep 1,000 revisions): datastore {} KiB", db_bytes(&s.dir) / 1024);
            }
        });
    }
}
