//! The proxy's sync loop against the real API server (in-process) and a
//! fake `nft` (a shell script recording each transaction, failing on
//! demand): no root needed.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lichen_client::Client;
use lichen_net::proxy::{self, Config};
use serde_json::json;

fn api_server() -> (lichen_apiserver::Server, Client) {
    common::api_server("system:kube-proxy")
}

/// A fake nft in `dir`: each `-f -` run writes its input to `runs/<n>`;
/// it fails with nft's kind of message while `dir/fail` exists.
fn fake_nft(dir: &Path) -> PathBuf {
    let script = dir.join("nft");
    std::fs::create_dir(dir.join("runs")).unwrap();
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
d={}
[ "$1" = --version ] && {{ echo "nftables v1.0.6 (fake)"; exit 0; }}
n=$(ls "$d/runs" | wc -l)
# Whole or not at all: the test reads runs/ while this writes.
cat > "$d/run.tmp"
mv "$d/run.tmp" "$d/runs/$(printf %04d "$n")"
[ -e "$d/fail" ] && {{ echo "Error: Could not process rule: No such file or directory" >&2; exit 1; }}
exit 0
"#,
            dir.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&script).status().unwrap();
    script
}

fn runs(dir: &Path) -> Vec<String> {
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(dir.join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    names.iter().map(|p| std::fs::read_to_string(p).unwrap_or_default()).collect()
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn slice(svc: &str, ips: &[&str]) -> serde_json::Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{svc}-abc"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": ips.iter().map(|ip| json!({"addresses": [ip]})).collect::<Vec<_>>(),
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    })
}

const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
const SERVICES: &str = "/api/v1/namespaces/default/services";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_replace_once_then_update_coalesce_and_survive_nft_failures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut cfg = Config::new("node-a", vec![]);
    cfg.nft = fake_nft(d);
    cfg.min_sync = Duration::from_millis(500);
    let (_server, client) = api_server();
    let proxy = tokio::spawn(proxy::run(client.clone(), cfg.clone()));

    // The first sync replaces the table whole.
    wait_for("the first sync", || !runs(d).is_empty()).await;
    let first = &runs(d)[0];
    assert!(first.starts_with("add table ip lichen\ndelete table ip lichen\ntable ip lichen {\n"), "{first}");

    // Twenty Services and their slices in a burst: a sync per min_sync at
    // most (a couple of them, not forty, however slow the machine), and
    // only updates.
    let burst = Instant::now();
    for i in 0..20 {
        let svc = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("s{i}"), "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}});
        client.create(SERVICES, &svc).await.unwrap();
        client.create(SLICES, &slice(&format!("s{i}"), &[&format!("10.42.0.{}", i + 1)])).await.unwrap();
    }
    wait_for("all twenty services", || runs(d).concat().contains("dnat to 10.42.0.20:8080")).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let after_burst = runs(d);
    let windows = burst.elapsed().as_millis() / cfg.min_sync.as_millis() + 1;
    let syncs = after_burst.len() - 1;
    assert!(syncs as u128 <= windows, "{syncs} syncs for one burst in {windows} min_sync windows");
    assert!(syncs < 20, "{syncs} syncs for one burst");
    for update in &after_burst[1..] {
        assert!(!update.contains("delete table"), "an update replaced the table:\n{update}");
        assert!(update.contains("add rule ip lichen "), "{update}");
    }

    // nft fails: retried with back-off, the proxy keeps going, and once
    // nft works again the table is replaced whole with the latest state.
    std::fs::write(d.join("fail"), "").unwrap();
    client
        .replace(&format!("{SLICES}/s0-abc"), &{
            let mut s = client.get(&format!("{SLICES}/s0-abc")).await.unwrap();
            s["endpoints"] = slice("s0", &["10.42.1.1"])["endpoints"].clone();
            s
        })
        .await
        .unwrap();
    let before = after_burst.len();
    wait_for("a failed sync", || runs(d).len() > before).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // No retry within the first back-off (2 s; checked within 0.9 s) after the failure, which
    // the failed run's file dates (the test may be slower than that).
    let failed_at = std::fs::metadata(d.join(format!("runs/{before:04}"))).unwrap().modified().unwrap();
    let count = runs(d).len();
    if failed_at.elapsed().unwrap() < Duration::from_millis(900) {
        assert!(count <= before + 1, "retried without back-off");
    }
    std::fs::remove_file(d.join("fail")).unwrap();
    wait_for("a whole replacement after the failure", || {
        runs(d)[before + 1..]
            .iter()
            .any(|r| r.contains("delete table ip lichen") && r.contains("dnat to 10.42.1.1:8080"))
    })
    .await;
    assert!(!proxy.is_finished());
    proxy.abort();
}

#[tokio::test]
async fn a_missing_nft_leaves_the_proxy_waiting() {
    let mut cfg = Config::new("node-a", vec![]);
    cfg.nft = PathBuf::from("/nonexistent/nft");
    let (_server, client) = api_server();
    let proxy = tokio::spawn(proxy::run(client, cfg.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!proxy.is_finished(), "the proxy gave up");
    assert!(proxy::cleanup(&cfg).unwrap_err().is_missing());
    proxy.abort();
}
