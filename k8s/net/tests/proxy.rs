//! The proxy against the real API server (in-process, in-memory store)
//! and the real kernel, in network namespaces the test makes: a "node"
//! namespace with a bridge, two "pod" namespaces serving HTTP with busybox
//! on it, and a "client" namespace routed through the node. Needs root,
//! `ip`, `nft` and busybox; skipped (with a message) otherwise.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use lichen_client::Client;
use lichen_net::proxy::{self, Config};
use serde_json::{Value, json};

fn missing_prerequisite() -> Option<String> {
    if !is_root() {
        return Some("not root".into());
    }
    missing_binary(&[("ip", "-V"), ("nft", "--version"), (BUSYBOX, "true")])
}

struct Topology {
    node: Netns,
    client: Netns,
    _pods: Vec<Netns>,
    _httpd: Vec<Daemon>,
    _dir: tempfile::TempDir,
    nft_wrapper: PathBuf,
}

/// node (bridge br0 10.99.0.1/24, vc 10.98.0.1/24) <- pods 10.99.0.11, .12
/// serving "pod1"/"pod2" on :8080; client 10.98.0.2 routed via the node.
fn topology(tag: &str) -> Topology {
    let dir = tempfile::tempdir().unwrap();
    let node = Netns::new(format!("{tag}-node"));
    node.ip("link add br0 type bridge");
    node.ip("addr add 10.99.0.1/24 dev br0");
    node.ip("link set br0 up");
    run(&["ip", "netns", "exec", &node.0, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let mut pods = Vec::new();
    let mut httpd = Vec::new();
    for i in 1..=2 {
        let pod = Netns::new(format!("{tag}-p{i}"));
        node.ip(&format!("link add vp{i} type veth peer name eth0 netns {}", pod.0));
        node.ip(&format!("link set vp{i} master br0 up"));
        pod.ip(&format!("addr add 10.99.0.1{i}/24 dev eth0"));
        pod.ip("link set eth0 up");
        pod.ip("route add default via 10.99.0.1");
        let root = dir.path().join(format!("www{i}"));
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("index.html"), format!("pod{i}\n")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &pod.0, BUSYBOX, "httpd", "-f", "-p", "8080", "-h"])
            .arg(&root)
            .spawn()
            .unwrap();
        httpd.push(Daemon(child));
        pods.push(pod);
    }
    let client = Netns::new(format!("{tag}-c"));
    node.ip(&format!("link add vc type veth peer name eth0 netns {}", client.0));
    node.ip("addr add 10.98.0.1/24 dev vc");
    node.ip("link set vc up");
    client.ip("addr add 10.98.0.2/24 dev eth0");
    client.ip("link set eth0 up");
    client.ip("route add default via 10.98.0.1");
    // The node's own connections to cluster IPs need a route to leave by.
    node.ip("route add default via 10.98.0.2");
    // The proxy's nft runs in the node namespace.
    let nft_wrapper = nft_in(&node, dir.path());
    Topology { node, client, _pods: pods, _httpd: httpd, _dir: dir, nft_wrapper }
}

async fn fetch(ns: &str, addr: &str) -> Result<String, String> {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "80"));
    http_get(ns, host, port, "/", 2).await
}

/// The bodies `n` fetches returned (errors included as `error: ...`).
async fn bodies(ns: &str, url: &str, n: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        seen.insert(fetch(ns, url).await.unwrap_or_else(|e| format!("error: {e}")));
    }
    seen
}

fn api_server() -> (lichen_apiserver::Server, Client) {
    common::api_server("system:kube-proxy")
}

fn endpoint_slice(svc: &str, ips: &[&str]) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{svc}-abc"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": ips.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}, "nodeName": "node-a"})).collect::<Vec<_>>(),
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    })
}

const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
const SERVICES: &str = "/api/v1/namespaces/default/services";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_reach_their_pods_through_the_proxy() {
    if let Some(why) = missing_prerequisite() {
        eprintln!("skipped: {why}");
        return;
    }
    let _ = tracing_subscriber::fmt().with_test_writer().with_max_level(tracing::Level::DEBUG).try_init();
    let tag = format!("lnp{}", std::process::id());
    let topo = topology(&tag);
    // The network itself works: the client reaches a pod directly.
    wait_for("pod1's httpd", Duration::from_secs(5), || async {
        fetch(&topo.client.0, "10.99.0.11:8080").await.as_deref() == Ok("pod1")
    })
    .await;
    let (_server, client) = api_server();
    let mut cfg = Config::new("node-a", vec!["10.98.0.1".parse().unwrap()]);
    cfg.nft = topo.nft_wrapper.clone();
    cfg.resync = Duration::from_secs(2);
    let proxy = tokio::spawn(proxy::run(client.clone(), cfg.clone()));

    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    });
    let svc = client.create(SERVICES, &svc).await.unwrap();
    let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap().to_owned();
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    client.create(SLICES, &endpoint_slice("web", &["10.99.0.11", "10.99.0.12"])).await.unwrap();
    let programmed = wait_for("the service's rules", Duration::from_secs(10), || async {
        proxy::observe(&cfg).unwrap().is_some_and(|t| t.contains("dnat to 10.99.0.12:8080"))
    })
    .await;
    println!(
        "[proxy] service programmed {} ms after its EndpointSlice was created (min_sync {:?})",
        programmed.as_millis(),
        cfg.min_sync
    );
    let url = format!("{cluster_ip}:80");
    wait_for("the ClusterIP to answer", Duration::from_secs(5), || async {
        fetch(&topo.client.0, &url).await.is_ok()
    })
    .await;

    // Both backends, from the client namespace (forwarded) and from the
    // node itself (output hook).
    let both: BTreeSet<String> = ["pod1".into(), "pod2".into()].into();
    assert_eq!(bodies(&topo.client.0, &url, 24).await, both, "ClusterIP from the client");
    assert_eq!(bodies(&topo.node.0, &url, 24).await, both, "ClusterIP from the node");
    let node_url = format!("10.98.0.1:{node_port}");
    assert_eq!(bodies(&topo.client.0, &node_url, 24).await, both, "NodePort from the client");

    // A Service without endpoints is refused at once, not left to time out.
    let empty = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "empty", "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": 80}]},
    });
    let empty = client.create(SERVICES, &empty).await.unwrap();
    let empty_url = format!("{}:80", empty["spec"]["clusterIP"].as_str().unwrap());
    wait_for("the empty service to be rejected", Duration::from_secs(5), || async {
        let t = Instant::now();
        matches!(fetch(&topo.client.0, &empty_url).await, Err(e) if e.contains("refused") && t.elapsed() < Duration::from_secs(1))
    })
    .await;

    // One endpoint removed: only the other answers, soon.
    let mut slice = client.get(&format!("{SLICES}/web-abc")).await.unwrap();
    slice["endpoints"] = endpoint_slice("web", &["10.99.0.11"])["endpoints"].clone();
    client.replace(&format!("{SLICES}/web-abc"), &slice).await.unwrap();
    let only1: BTreeSet<String> = ["pod1".into()].into();
    let took = wait_for("pod2 to leave the service", Duration::from_secs(5), || async {
        // 24 answers in a row from pod1 alone: with both endpoints still
        // in the rules, that happens by chance once in 2^24 polls (6 in a
        // row did, once in 64, before the update reached the kernel).
        bodies(&topo.client.0, &url, 24).await == only1
    })
    .await;
    println!("[proxy] endpoint removal effective within {} ms", took.as_millis());
    assert_eq!(bodies(&topo.client.0, &url, 12).await, only1);

    // Rules deleted by hand come back at the next resync.
    run(&["ip", "netns", "exec", &topo.node.0, "nft", "flush", "chain", "ip", "lichen", "services"]);
    let took = wait_for("the rules deleted by hand to come back", Duration::from_secs(10), || async {
        fetch(&topo.client.0, &url).await.as_deref() == Ok("pod1")
    })
    .await;
    println!(
        "[proxy] rules deleted by hand restored within {} ms (resync {:?})",
        took.as_millis(),
        cfg.resync
    );

    // Deleting the Service removes its rules.
    client.delete(&format!("{SERVICES}/web"), &json!({})).await.unwrap();
    wait_for("the service's rules to go", Duration::from_secs(5), || async {
        let table = proxy::observe(&cfg).unwrap().unwrap_or_default();
        !table.contains("default/web/") && !table.contains(&cluster_ip)
    })
    .await;
    assert!(fetch(&topo.client.0, &url).await.is_err(), "the deleted service still answers");

    proxy.abort();
    proxy::cleanup(&cfg).unwrap();
    assert_eq!(proxy::observe(&cfg).unwrap(), None, "cleanup leaves the table");
    proxy::cleanup(&cfg).unwrap(); // idempotent
}

/// Render and apply 1,000 Services with 10 endpoints each in a namespace
/// of the test's own; prints `[proxy]` timings.
#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn benchmark_thousand_services() {
    if let Some(why) = missing_prerequisite() {
        eprintln!("skipped: {why}");
        return;
    }
    let ns = Netns::new(format!("lnpb{}", std::process::id()));
    let dir = tempfile::tempdir().unwrap();
    let wrapper = nft_in(&ns, dir.path());
    let mut cfg = Config::new("node-a", vec!["10.98.0.1".parse().unwrap()]);
    cfg.nft = wrapper;

    let (services, slices) = synthetic(1000, 10);
    let t = Instant::now();
    let full = proxy::desired(&cfg, &services, &slices);
    let text = full.definition();
    println!(
        "[proxy] render 1000 services x 10 endpoints: {} ms, {} KiB, {} chains, {} rules",
        t.elapsed().as_millis(),
        text.len() / 1024,
        full.counts().0,
        full.counts().1
    );
    timed(&cfg, &proxy::nft::transaction(&cfg.table, &text), "first sync (whole table)");
    timed(&cfg, &proxy::nft::transaction(&cfg.table, &text), "whole-table replacement (same rules)");

    // One Service loses an endpoint.
    let mut one = slices.clone();
    one[500]["endpoints"].as_array_mut().unwrap().pop();
    let t = Instant::now();
    let after_one = proxy::desired(&cfg, &services, &one);
    let update = after_one.update_from(&full).unwrap();
    let diff_ms = t.elapsed().as_millis();
    timed(&cfg, &update, &format!("update: one service lost an endpoint (render+diff {diff_ms} ms)"));

    // A new Service.
    let (mut more_svcs, mut more_slices) = (services.clone(), one.clone());
    let (s, e) = synthetic(1001, 10);
    more_svcs.push(s[1000].clone());
    more_slices.push(e[1000].clone());
    let with_new = proxy::desired(&cfg, &more_svcs, &more_slices);
    timed(&cfg, &with_new.update_from(&after_one).unwrap(), "update: one service added");

    // Every Service loses an endpoint.
    let (services9, slices9) = synthetic(1000, 9);
    let all9 = proxy::desired(&cfg, &services9, &slices9);
    timed(&cfg, &all9.update_from(&with_new).unwrap(), "update: every service lost an endpoint");

    let t = Instant::now();
    let listed = proxy::observe(&cfg).unwrap().unwrap();
    println!("[proxy] observe (nft list table, {} KiB): {} ms", listed.len() / 1024, t.elapsed().as_millis());
    assert_eq!(proxy::ruleset::listed_counts(&listed), all9.counts());
    assert_eq!(listed.matches("dnat to").count(), 9000);
    let t = Instant::now();
    proxy::cleanup(&cfg).unwrap();
    println!("[proxy] cleanup: {} ms", t.elapsed().as_millis());
}

fn timed(cfg: &Config, commands: &str, what: &str) {
    let t = Instant::now();
    proxy::nft::run_file(&cfg.nft, commands).unwrap();
    println!("[proxy] {what}: {} ms", t.elapsed().as_millis());
}

fn synthetic(n: usize, per: usize) -> (Vec<Value>, Vec<Value>) {
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for i in 0..n {
        let name = format!("svc-{i}");
        services.push(json!({
            "metadata": {"namespace": "bench", "name": name},
            "spec": {"type": "NodePort", "clusterIP": format!("10.43.{}.{}", i / 250, i % 250 + 1),
                     "ports": [{"name": "http", "port": 80, "nodePort": 30000 + i}]},
        }));
        let ips: Vec<String> =
            (0..per).map(|j| format!("10.42.{}.{}", (i * per + j) / 250, (i * per + j) % 250 + 1)).collect();
        let mut slice = endpoint_slice(&name, &ips.iter().map(String::as_str).collect::<Vec<_>>());
        slice["metadata"]["namespace"] = json!("bench");
        slices.push(slice);
    }
    (services, slices)
}
