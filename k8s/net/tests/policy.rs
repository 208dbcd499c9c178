//! NetworkPolicy enforcement against the real API server (in-process,
//! in-memory store) and the real kernel, in network namespaces the test
//! makes: a "node" namespace with a bridge `cni0` and three "pod"
//! namespaces on it (a busybox httpd server and two clients), so pod to
//! pod traffic is bridged and reaches the forward hook through
//! br_netfilter (`bridge-nf-call-iptables=1`, set in the node namespace
//! as Lichen's init sets it on a real node). Needs root, `ip`, `nft`,
//! busybox and the br_netfilter module; skipped (with a message)
//! otherwise.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use lichen_client::Client;
use lichen_net::policy::{self, Config};
use serde_json::{Value, json};

fn missing_prerequisite() -> Option<String> {
    if !is_root() {
        return Some("not root".into());
    }
    if let Some(missing) = missing_binary(&[("ip", "-V"), ("nft", "--version"), (BUSYBOX, "true")]) {
        return Some(missing);
    }
    if !std::path::Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists() {
        return Some("br_netfilter is not loaded (modprobe br_netfilter)".into());
    }
    None
}

/// Field order matters: the httpd dies before the namespaces go.
struct Topology {
    _httpd: Daemon,
    node: Netns,
    pods: Vec<Netns>,
    _dir: tempfile::TempDir,
    nft_wrapper: PathBuf,
}

const SERVER_IP: &str = "10.99.0.11";
const ALLOWED_IP: &str = "10.99.0.12";
const OTHER_IP: &str = "10.99.0.13";

/// node (bridge cni0 10.99.0.1/24) <- server 10.99.0.11 (httpd :8080),
/// allowed 10.99.0.12, other 10.99.0.13.
fn topology(tag: &str) -> Topology {
    let dir = tempfile::tempdir().unwrap();
    let node = Netns::new(format!("{tag}-node"));
    node.ip("link add cni0 type bridge");
    node.ip("addr add 10.99.0.1/24 dev cni0");
    node.ip("link set cni0 up");
    for setting in ["net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1"] {
        run(&["ip", "netns", "exec", &node.0, "sysctl", "-qw", setting]);
    }
    let mut pods = Vec::new();
    for (i, ip) in [SERVER_IP, ALLOWED_IP, OTHER_IP].iter().enumerate() {
        let pod = Netns::new(format!("{tag}-p{i}"));
        node.ip(&format!("link add veth{i} type veth peer name eth0 netns {}", pod.0));
        node.ip(&format!("link set veth{i} master cni0 up"));
        pod.ip(&format!("addr add {ip}/24 dev eth0"));
        pod.ip("link set eth0 up");
        pod.ip("route add default via 10.99.0.1");
        pods.push(pod);
    }
    let root = dir.path().join("www");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("index.html"), "server\n").unwrap();
    let httpd = Command::new("ip")
        .args(["netns", "exec", &pods[0].0, BUSYBOX, "httpd", "-f", "-p", "8080", "-h"])
        .arg(&root)
        .spawn()
        .unwrap();
    let nft_wrapper = nft_in(&node, dir.path());
    Topology { _httpd: Daemon(httpd), node, pods, _dir: dir, nft_wrapper }
}

/// The server pod's page from namespace `ns` (1 s to answer).
async fn fetch(ns: &str) -> Result<String, String> {
    http_get(ns, SERVER_IP, "8080", "/", 1).await
}

async fn reaches(ns: &str) -> bool {
    fetch(ns).await.as_deref() == Ok("server")
}

fn api_server() -> (lichen_apiserver::Server, Client) {
    common::api_server("system:kube-proxy")
}

const PODS: &str = "/api/v1/namespaces/default/pods";
const POLICIES: &str = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies";

/// Creates a pod on node-a and sets its IP through the status subresource,
/// as the kubelet does.
async fn create_pod(client: &Client, name: &str, labels: Value, ip: &str) {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "busybox",
                  "ports": [{"name": "http", "containerPort": 8080}]}]},
    });
    let mut pod = client.create(PODS, &pod).await.unwrap();
    pod["status"] = json!({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]});
    client.replace(&format!("{PODS}/{name}/status"), &pod).await.unwrap();
}

fn network_policy(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_allow_deny_and_come_back() {
    if let Some(why) = missing_prerequisite() {
        eprintln!("skipped: {why}");
        return;
    }
    let _ = tracing_subscriber::fmt().with_test_writer().with_max_level(tracing::Level::DEBUG).try_init();
    let tag = format!("lnpol{}", std::process::id());
    let topo = topology(&tag);
    let (allowed, other) = (topo.pods[1].0.clone(), topo.pods[2].0.clone());
    wait_for("the server's httpd", Duration::from_secs(5), || reaches(&allowed)).await;

    let (_server, client) = api_server();
    create_pod(&client, "server", json!({"app": "server"}), SERVER_IP).await;
    create_pod(&client, "allowed", json!({"role": "allowed"}), ALLOWED_IP).await;
    create_pod(&client, "other", json!({}), OTHER_IP).await;
    let mut cfg = Config::new("node-a");
    cfg.nft = topo.nft_wrapper.clone();
    cfg.resync = Duration::from_secs(3);
    let task = tokio::spawn(policy::run(client.clone(), cfg.clone()));

    // No policies: the (empty) table is there and both clients fetch.
    wait_for("the policy table", Duration::from_secs(10), || async {
        policy::observe(&cfg).unwrap().is_some()
    })
    .await;
    assert!(reaches(&allowed).await, "allowed client, no policy");
    assert!(reaches(&other).await, "other client, no policy");

    // Ingress to the server from role=allowed pods only.
    let ingress = network_policy(
        "server-ingress",
        json!({
            "podSelector": {"matchLabels": {"app": "server"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "allowed"}}}],
                         "ports": [{"port": "http"}]}],
        }),
    );
    let created = Instant::now();
    client.create(POLICIES, &ingress).await.unwrap();
    wait_for("the other client to be refused", Duration::from_secs(5), || async { !reaches(&other).await })
        .await;
    println!("[policy] ingress policy effective within {} ms of its creation", created.elapsed().as_millis());
    assert!(reaches(&allowed).await, "the allowed client is refused");
    assert!(!reaches(&other).await, "the other client got through");

    // The table flushed by hand comes back at the next resync.
    run(&["ip", "netns", "exec", &topo.node.0, "nft", "flush", "table", "ip", &cfg.table]);
    // (Racy only if a resync falls in the few ms between the flush and
    // this fetch: resync is 3 s.)
    assert!(reaches(&other).await, "flushing the table did not lift the policy (test is wrong)");
    let took = wait_for("the flushed table to be repaired", Duration::from_secs(10), || async {
        !reaches(&other).await
    })
    .await;
    println!("[policy] flushed table repaired within {} ms (resync {:?})", took.as_millis(), cfg.resync);
    assert!(reaches(&allowed).await, "the allowed client is refused after the repair");

    // Egress deny-all on the allowed client.
    let deny = network_policy(
        "deny-egress",
        json!({"podSelector": {"matchLabels": {"role": "allowed"}}, "policyTypes": ["Egress"]}),
    );
    client.create(POLICIES, &deny).await.unwrap();
    let took = wait_for("the allowed client's egress to be denied", Duration::from_secs(5), || async {
        !reaches(&allowed).await
    })
    .await;
    println!("[policy] egress deny effective within {} ms", took.as_millis());

    // Deleting the policies restores access.
    for name in ["server-ingress", "deny-egress"] {
        client.delete(&format!("{POLICIES}/{name}"), &json!({})).await.unwrap();
    }
    let took = wait_for("both clients to fetch again", Duration::from_secs(5), || async {
        reaches(&allowed).await && reaches(&other).await
    })
    .await;
    println!("[policy] access restored within {} ms of deleting the policies", took.as_millis());
    let table = policy::observe(&cfg).unwrap().unwrap();
    assert!(!table.contains("jump"), "{table}");

    // Egress by named port, resolved against the destination pod: the
    // other client may reach app=server pods on their "http" port (8080)...
    let mut egress = network_policy(
        "other-egress",
        json!({
            "podSelector": {"matchExpressions": [{"key": "role", "operator": "DoesNotExist"},
                                                 {"key": "app", "operator": "DoesNotExist"}]},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "server"}}}], "ports": [{"port": "http"}]}],
        }),
    );
    client.create(POLICIES, &egress).await.unwrap();
    wait_for("the named-port egress rule", Duration::from_secs(5), || async {
        policy::observe(&cfg).unwrap().unwrap_or_default().contains(&format!("{SERVER_IP} . tcp . 8080"))
    })
    .await;
    assert!(reaches(&other).await, "egress to the server's named port is refused");
    // ... and not on a port name the server does not have.
    egress["spec"]["egress"][0]["ports"][0]["port"] = json!("metrics");
    let path = format!("{POLICIES}/other-egress");
    egress["metadata"] = client.get(&path).await.unwrap()["metadata"].clone();
    client.replace(&path, &egress).await.unwrap();
    wait_for("egress to an unknown port name to be denied", Duration::from_secs(5), || async {
        !reaches(&other).await
    })
    .await;
    assert!(reaches(&allowed).await, "the allowed client has no policy");
    client.delete(&path, &json!({})).await.unwrap();
    wait_for("the egress policy to go", Duration::from_secs(5), || reaches(&other)).await;

    // ipBlock with except, in the kernel's interval set.
    let block = network_policy(
        "server-block",
        json!({
            "podSelector": {"matchLabels": {"app": "server"}},
            "ingress": [{"from": [{"ipBlock": {"cidr": "10.99.0.0/24", "except": [format!("{OTHER_IP}/32")]}}],
                         "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8100}]}],
        }),
    );
    client.create(POLICIES, &block).await.unwrap();
    wait_for("the ipBlock except to refuse the other client", Duration::from_secs(5), || async {
        !reaches(&other).await
    })
    .await;
    assert!(reaches(&allowed).await, "the allowed client is outside the except");

    task.abort();
    policy::cleanup(&cfg).unwrap();
    assert_eq!(policy::observe(&cfg).unwrap(), None, "cleanup leaves the table");
    policy::cleanup(&cfg).unwrap(); // idempotent
}

/// Render and apply a cluster of 2,000 pods in 20 namespaces, 40 of them
/// on this node, under 200 policies (peers: a label in the namespace, a
/// namespace label, an ipBlock; named ports both ways), in a namespace of
/// the test's own; prints `[policy]` timings.
#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn benchmark_two_thousand_pods() {
    if let Some(why) = missing_prerequisite() {
        eprintln!("skipped: {why}");
        return;
    }
    let ns = Netns::new(format!("lnpolb{}", std::process::id()));
    let dir = tempfile::tempdir().unwrap();
    let wrapper = nft_in(&ns, dir.path());
    let mut cfg = Config::new("node-a");
    cfg.nft = wrapper;

    let (pods, namespaces, policies) = synthetic(2000, 20, 200);
    let t = Instant::now();
    let rs = policy::desired(&cfg, &policies, &pods, &namespaces);
    let text = rs.definition();
    let elements: usize = rs.sets.values().map(|s| s.elements.len()).sum();
    println!(
        "[policy] render 2000 pods, 200 policies (debug build): {} ms, {} KiB, {} chains, {} rules, {} sets, {} elements",
        t.elapsed().as_millis(),
        text.len() / 1024,
        rs.counts().0,
        rs.counts().1,
        rs.sets.len(),
        elements
    );
    let whole = lichen_net::proxy::nft::transaction(&cfg.table, &text);
    timed(&cfg, &whole, "first sync (whole table)");
    timed(&cfg, &whole, "whole-table replacement (same rules)");
    // One pod changes its labels: peers sets change.
    let mut changed = pods.clone();
    changed[7]["metadata"]["labels"]["tier"] = json!("back");
    let t = Instant::now();
    let after = policy::desired(&cfg, &policies, &changed, &namespaces);
    let update = after.update_from(&rs).unwrap();
    let diff_ms = t.elapsed().as_millis();
    timed(&cfg, &update, &format!("update: one pod relabelled (render+diff {diff_ms} ms)"));
    let listed = policy::observe(&cfg).unwrap().unwrap();
    assert_eq!(lichen_net::proxy::ruleset::listed_counts(&listed), after.counts());
    policy::cleanup(&cfg).unwrap();
}

fn timed(cfg: &Config, commands: &str, what: &str) {
    let t = Instant::now();
    lichen_net::proxy::nft::run_file(&cfg.nft, commands).unwrap();
    println!("[policy] {what}: {} ms", t.elapsed().as_millis());
}

fn synthetic(n: u32, namespaces: u32, policies: u32) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let base = u32::from("10.42.0.1".parse::<std::net::Ipv4Addr>().unwrap());
    let pods = (0..n)
        .map(|i| {
            let ip = std::net::Ipv4Addr::from(base + i).to_string();
            json!({
                "metadata": {"namespace": format!("ns{}", i % namespaces), "name": format!("pod{i}"),
                             "labels": {"app": format!("app{}", i % 10), "tier": if i % 2 == 0 { "front" } else { "back" }}},
                "spec": {"nodeName": if i % 50 == 7 { "node-a" } else { "node-b" },
                         "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
                "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
            })
        })
        .collect();
    let nss = (0..namespaces)
        .map(|i| json!({"metadata": {"name": format!("ns{i}"), "labels": {"team": format!("t{}", i % 5)}}}))
        .collect();
    let pols = (0..policies)
        .map(|i| {
            json!({
                "metadata": {"namespace": format!("ns{}", i % namespaces), "name": format!("pol{i}")},
                "spec": {
                    "podSelector": {"matchLabels": {"app": format!("app{}", i % 10)}},
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"tier": "front"}}},
                                          {"namespaceSelector": {"matchLabels": {"team": format!("t{}", i % 5)}},
                                           "podSelector": {"matchLabels": {"app": "app1"}}}],
                                 "ports": [{"port": "http"}, {"port": 443}]}],
                    "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.42.0.0/16"]}}]},
                               {"to": [{"podSelector": {"matchLabels": {"tier": "back"}}}], "ports": [{"port": "http"}]}],
                },
            })
        })
        .collect();
    (pods, nss, pols)
}

/// A failing `nft` is logged and retried, and never stops `run`: a fake
/// `nft` (no root needed) refuses the first transaction and takes the
/// second, which must replace the table whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nft_failures_are_retried() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let fake = dir.path().join("nft");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nlog={}\n[ \"$1\" = --version ] && {{ echo fake; exit 0; }}\n\
             [ \"$1\" = -f ] || exit 1\n\
             n=$(grep -c '^transaction' $log 2>/dev/null || true)\n\
             {{ echo transaction; cat; }} >> $log\n\
             [ \"${{n:-0}}\" -ge 1 ] || {{ echo 'Error: kaputt' >&2; exit 1; }}\n",
            log.display()
        ),
    )
    .unwrap();
    run(&["chmod", "+x", fake.to_str().unwrap()]);
    let (_server, client) = api_server();
    let mut cfg = Config::new("node-a");
    cfg.nft = fake;
    let task = tokio::spawn(policy::run(client, cfg));
    wait_for("a second transaction", Duration::from_secs(10), || async {
        std::fs::read_to_string(&log).unwrap_or_default().matches("transaction").count() >= 2
    })
    .await;
    assert!(!task.is_finished(), "run stopped");
    let text = std::fs::read_to_string(&log).unwrap();
    let second = text.rsplit("transaction\n").next().unwrap();
    assert!(second.starts_with("add table ip lichen-policy\ndelete table ip lichen-policy\n"), "{second}");
    task.abort();
}
