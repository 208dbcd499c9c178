//! The overlay against the real API server (in-process, in-memory store)
//! and the real kernel, in network namespaces the test makes: two "node"
//! namespaces on different subnets joined by a "router" namespace (a
//! routed underlay, no shared L2), each node with a bridge `cni0` and one
//! "pod" namespace on it. One `overlay::run` per node runs on its own
//! thread that first enters the node's namespace (netlink sockets belong
//! to the namespace of the thread that opens them). Needs root, `ip`,
//! `bridge`, `nft` and busybox; skipped (with a message) otherwise.
//!
//! ```text
//!  pod-a 10.42.1.10            pod-b 10.42.2.10
//!     | cni0 10.42.1.1            | cni0 10.42.2.1
//!  node-a 10.201.1.2 --- router --- node-b 10.201.2.2
//!              10.201.1.1     10.201.2.1
//! ```

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lichen_client::Client;
use lichen_net::overlay::{self, Config};
use serde_json::json;

fn missing_prerequisite(extra: &[&str]) -> Option<String> {
    if !is_root() {
        return Some("not root".into());
    }
    let mut bins = vec![("ip", "-V"), ("bridge", "-V"), ("nft", "--version"), (BUSYBOX, "true")];
    bins.extend(extra.iter().map(|b| (*b, "--version")));
    missing_binary(&bins)
}

struct Node {
    name: &'static str,
    ns: Netns,
    pod: Netns,
    underlay_ip: &'static str,
    pod_ip: String,
    nft: PathBuf,
}

struct Topology {
    // Dropped first: the pods before their nodes.
    _httpd: Vec<Daemon>,
    a: Node,
    b: Node,
    router: Netns,
    dir: tempfile::TempDir,
}

/// A node namespace linked to the router, with `cni0` and one pod.
fn node(tag: &str, name: &'static str, n: u8, router: &Netns, dir: &Path, pod_mtu: u32) -> Node {
    let ns = Netns::new(format!("{tag}-n{n}"));
    router.ip(&format!("link add r{n} type veth peer name eth0 netns {}", ns.0));
    router.ip(&format!("addr add 10.201.{n}.1/24 dev r{n}"));
    router.ip(&format!("link set r{n} up"));
    ns.ip(&format!("addr add 10.201.{n}.2/24 dev eth0"));
    ns.ip("link set eth0 up");
    ns.ip(&format!("route add default via 10.201.{n}.1"));
    ns.sysctl("net.ipv4.ip_forward=1");
    ns.ip("link add cni0 type bridge");
    ns.ip(&format!("addr add 10.42.{n}.1/24 dev cni0"));
    ns.ip(&format!("link set cni0 mtu {pod_mtu} up"));
    let pod = Netns::new(format!("{tag}-p{n}"));
    ns.ip(&format!("link add vp type veth peer name eth0 netns {}", pod.0));
    ns.ip(&format!("link set vp mtu {pod_mtu} master cni0 up"));
    pod.ip(&format!("addr add 10.42.{n}.10/24 dev eth0"));
    pod.ip(&format!("link set eth0 mtu {pod_mtu} up"));
    pod.ip(&format!("route add default via 10.42.{n}.1"));
    let nft = nft_in(&ns, dir);
    let underlay_ip = if n == 1 { "10.201.1.2" } else { "10.201.2.2" };
    Node { name, ns, pod, underlay_ip, pod_ip: format!("10.42.{n}.10"), nft }
}

/// busybox httpd in `ns` on :8080 answering `/cgi-bin/ip` with the
/// client's address as it arrives.
fn httpd(ns: &Netns, dir: &Path) -> Daemon {
    let root = dir.join(format!("www-{}", ns.0));
    std::fs::create_dir_all(root.join("cgi-bin")).unwrap();
    let cgi = root.join("cgi-bin/ip");
    std::fs::write(&cgi, "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' \"$REMOTE_ADDR\"\n")
        .unwrap();
    run(&["chmod", "+x", cgi.to_str().unwrap()]);
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.0, BUSYBOX, "httpd", "-f", "-p", "8080", "-h"])
        .arg(&root)
        .spawn()
        .unwrap();
    Daemon(child)
}

fn topology(tag: &str, pod_mtu: u32) -> Topology {
    let dir = tempfile::tempdir().unwrap();
    let router = Netns::new(format!("{tag}-r"));
    router.sysctl("net.ipv4.ip_forward=1");
    let a = node(tag, "node-a", 1, &router, dir.path(), pod_mtu);
    let b = node(tag, "node-b", 2, &router, dir.path(), pod_mtu);
    let httpd = vec![httpd(&b.pod, dir.path()), httpd(&router, dir.path())];
    Topology { _httpd: httpd, a, b, router, dir }
}

/// The address the server at `addr` (`ip:port`) saw the request from, as
/// fetched from namespace `ns`; or the error.
async fn remote_addr(ns: &str, addr: &str) -> Result<String, String> {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let body = http_get(ns, host, port, "/cgi-bin/ip", 2).await?;
    // busybox httpd listens on IPv6: `[::ffff:10.42.1.10]`.
    Ok(body.trim_start_matches('[').trim_end_matches(']').trim_start_matches("::ffff:").to_owned())
}

fn api_server() -> (lichen_apiserver::Server, Client) {
    common::api_server("system:node")
}

async fn create_node(client: &Client, n: &Node, cidr: &str) {
    let obj = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": n.name},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {"addresses": [{"type": "InternalIP", "address": n.underlay_ip}]},
    });
    client.create("/api/v1/nodes", &obj).await.unwrap();
}

fn config(n: &Node) -> Config {
    let mut cfg = Config::new(n.name, n.underlay_ip.parse().unwrap(), "10.42.0.0/16".parse().unwrap());
    cfg.nft = n.nft.clone();
    cfg.resync = Duration::from_secs(2);
    cfg
}

/// Runs `f` to completion on a thread of its own inside network namespace
/// `ns`, on a current-thread runtime.
fn in_netns<F, Fut, T>(ns: &str, f: F) -> std::thread::JoinHandle<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
    T: Send + 'static,
{
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(f())
    })
}

/// `overlay::run` for one node, in its namespace, until dropped.
struct Overlay {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Overlay {
    fn start(n: &Node, client: &Client) -> Overlay {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (client, cfg) = (client.clone(), config(n));
        let thread = in_netns(&n.ns.0, move || async move {
            tokio::select! {
                () = overlay::run(client, cfg) => {}
                _ = rx => {}
            }
        });
        Overlay { stop: Some(tx), thread: Some(thread) }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn cleanup(n: &Node) {
    let cfg = config(n);
    in_netns(&n.ns.0, move || async move { overlay::cleanup(&cfg).await }).join().unwrap().unwrap();
}

/// `ip`/`bridge` output of the overlay's entries in a node namespace.
fn entries(n: &Node) -> (String, String, String) {
    let fdb = run(&["bridge", "-n", &n.ns.0, "fdb", "show", "dev", "lichen.1"]);
    let neigh = n.ns.ip("neigh show dev lichen.1");
    let routes = n.ns.ip("route show dev lichen.1");
    (fdb, neigh, routes)
}

fn ifindex(n: &Node) -> Option<String> {
    let out = Command::new("ip").args(["-n", &n.ns.0, "-o", "link", "show", "lichen.1"]).output().unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).split(':').next().unwrap_or("").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_on_two_nodes_reach_each_other_over_the_overlay() {
    if let Some(why) = missing_prerequisite(&[]) {
        eprintln!("skipped: {why}");
        return;
    }
    let _ = tracing_subscriber::fmt().with_test_writer().with_max_level(tracing::Level::INFO).try_init();
    let tag = format!("lno{}", std::process::id());
    let topo = topology(&tag, 1450);
    let (a, b) = (&topo.a, &topo.b);
    // The underlay routes between the nodes' subnets.
    wait_for("the router from node A", Duration::from_secs(5), || async {
        remote_addr(&a.ns.0, "10.201.2.1:8080").await.as_deref() == Ok("10.201.1.2")
    })
    .await;
    assert!(remote_addr(&a.pod.0, "10.42.2.10:8080").await.is_err(), "pod B reachable before the overlay");

    // The pods' MTU from the underlay's, as the agent asks for it.
    b.ns.ip("link set eth0 mtu 1400");
    let ip_b = b.underlay_ip.parse().unwrap();
    let mtu = in_netns(&b.ns.0, move || async move { overlay::pod_mtu(ip_b).await }).join().unwrap();
    assert_eq!(mtu.unwrap(), 1350);
    b.ns.ip("link set eth0 mtu 1500");

    // A wrong device on node B (another VNI) is replaced.
    b.ns.ip("link add lichen.1 type vxlan id 7 dstport 4789 local 10.201.2.2");

    let (_server, client) = api_server();
    create_node(&client, a, "10.42.1.0/24").await;
    create_node(&client, b, "10.42.2.0/24").await;
    let started = Instant::now();
    let oa = Overlay::start(a, &client);
    let ob = Overlay::start(b, &client);

    let b_url = format!("{}:8080", b.pod_ip);
    wait_for("pod A to reach pod B", Duration::from_secs(15), || async {
        remote_addr(&a.pod.0, &b_url).await.is_ok()
    })
    .await;
    println!("[overlay] pod A reaches pod B {} ms after the overlays started", started.elapsed().as_millis());
    assert_eq!(remote_addr(&a.pod.0, &b_url).await.unwrap(), a.pod_ip, "pod B sees pod A's own address");
    assert_eq!(
        remote_addr(&a.pod.0, "10.201.1.1:8080").await.unwrap(),
        a.underlay_ip,
        "leaving the cluster CIDR, pod A is masqueraded to its node's address"
    );
    // ICMP across too, from B to A.
    b.pod.exec(&format!("{BUSYBOX} ping -c 1 -W 2 {}", a.pod_ip));

    // The device and the Node annotations.
    let link = a.ns.ip("-d link show lichen.1");
    let mac_a = overlay::vtep_mac("node-a").to_string();
    let mac_b = overlay::vtep_mac("node-b").to_string();
    for want in ["vxlan id 1 ", "local 10.201.1.2", "dstport 8472", "nolearning", "mtu 1450", &mac_a] {
        assert!(link.contains(want), "{want:?} missing: {link}");
    }
    assert!(a.ns.ip("-4 addr show dev lichen.1").contains("inet 10.42.1.0/32"));
    let link_b = b.ns.ip("-d link show lichen.1");
    assert!(
        link_b.contains("vxlan id 1 ") && link_b.contains("dstport 8472"),
        "B's device replaced: {link_b}"
    );
    let node_a = client.get("/api/v1/nodes/node-a").await.unwrap();
    assert_eq!(node_a["metadata"]["annotations"]["lichen.dev/vtep-mac"], mac_a.as_str());
    assert_eq!(node_a["metadata"]["annotations"]["lichen.dev/public-ip"], "10.201.1.2");

    // The entries on node A for node B.
    let (fdb, neigh, routes) = entries(a);
    assert!(fdb.contains(&format!("{mac_b} dst 10.201.2.2 self permanent")), "{fdb}");
    assert!(neigh.contains(&format!("10.42.2.0 lladdr {mac_b} PERMANENT")), "{neigh}");
    assert!(routes.contains("10.42.2.0/24 via 10.42.2.0 ") && routes.contains(" onlink"), "{routes}");
    let table = run(&[a.nft.to_str().unwrap(), "list", "table", "ip", "lichen-overlay"]);
    assert!(table.contains("masquerade fully-random"), "{table}");

    // Entries removed by hand come back at the next resync.
    a.ns.ip("route del 10.42.2.0/24");
    run(&["bridge", "-n", &a.ns.0, "fdb", "del", &mac_b, "dev", "lichen.1", "dst", "10.201.2.2", "self"]);
    run(&[a.nft.to_str().unwrap(), "delete", "table", "ip", "lichen-overlay"]);
    // A stale entry of no Node goes.
    a.ns.ip("route add 10.42.9.0/24 via 10.42.9.0 dev lichen.1 onlink");
    let took = wait_for("the entries removed by hand to come back", Duration::from_secs(10), || async {
        let (fdb, _, routes) = entries(a);
        fdb.contains(&mac_b)
            && routes.contains("10.42.2.0/24")
            && !routes.contains("10.42.9.0")
            && Command::new(&a.nft)
                .args(["list", "table", "ip", "lichen-overlay"])
                .output()
                .unwrap()
                .status
                .success()
    })
    .await;
    println!("[overlay] entries removed by hand restored within {} ms (resync 2 s)", took.as_millis());
    assert_eq!(remote_addr(&a.pod.0, &b_url).await.unwrap(), a.pod_ip);

    // A restart keeps the device (same index) and the path.
    // (A route removed while it was down shows that it has synced.)
    let index = ifindex(a);
    drop(oa);
    a.ns.ip("route del 10.42.2.0/24");
    let oa = Overlay::start(a, &client);
    wait_for("the restarted overlay's first sync", Duration::from_secs(5), || async {
        entries(a).2.contains("10.42.2.0/24")
    })
    .await;
    assert_eq!(ifindex(a), index, "the device was recreated on restart");
    assert_eq!(remote_addr(&a.pod.0, &b_url).await.unwrap(), a.pod_ip);

    // Node B deleted: its entries leave node A.
    client.delete("/api/v1/nodes/node-b", &json!({})).await.unwrap();
    let took = wait_for("node B's entries to go", Duration::from_secs(5), || async {
        let (fdb, neigh, routes) = entries(a);
        !fdb.contains(&mac_b) && !neigh.contains("10.42.2.0") && !routes.contains("10.42.2.0")
    })
    .await;
    println!("[overlay] a deleted Node's entries removed within {} ms", took.as_millis());
    assert!(remote_addr(&a.pod.0, &b_url).await.is_err(), "pod B still reachable after node B left");

    drop(oa);
    drop(ob);
    cleanup(a);
    assert_eq!(ifindex(a), None, "cleanup leaves the device");
    assert!(
        !Command::new(&a.nft)
            .args(["list", "table", "ip", "lichen-overlay"])
            .output()
            .unwrap()
            .status
            .success(),
        "cleanup leaves the table"
    );
    assert!(!a.ns.ip("route show").contains("10.42.2.0"));
    cleanup(a); // idempotent
    let _ = &topo.router;
    let _ = &topo.dir;
}

/// Pod-to-pod TCP throughput (iperf3, 5 s) across the overlay and over
/// the same path routed without VXLAN (host-gw style routes on a direct
/// node-to-node link); prints both in Gbit/s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --ignored --nocapture"]
async fn measure_overlay_throughput() {
    if let Some(why) = missing_prerequisite(&["iperf3"]) {
        eprintln!("skipped: {why}");
        return;
    }
    let tag = format!("lnb{}", std::process::id());
    let topo = topology(&tag, 1500);
    let (a, b) = (&topo.a, &topo.b);
    let _server = Daemon(
        Command::new("ip")
            .args(["netns", "exec", &b.pod.0, "iperf3", "-s", "-1", "--forceflush"])
            .spawn()
            .unwrap(),
    );
    // Bare: the router routes the pod CIDRs to the nodes.
    topo.router.ip("route add 10.42.1.0/24 via 10.201.1.2");
    topo.router.ip("route add 10.42.2.0/24 via 10.201.2.2");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bare = iperf(&a.pod.0, &b.pod_ip);
    topo.router.ip("route del 10.42.1.0/24");
    topo.router.ip("route del 10.42.2.0/24");

    // Overlay: pods at the overlay's MTU, as the CNI config sets it.
    for n in [a, b] {
        n.ns.ip("link set cni0 mtu 1450");
        n.ns.ip("link set vp mtu 1450");
        n.pod.ip("link set eth0 mtu 1450");
    }
    let _server = Daemon(
        Command::new("ip")
            .args(["netns", "exec", &b.pod.0, "iperf3", "-s", "-1", "--forceflush"])
            .spawn()
            .unwrap(),
    );
    let (_s, client) = api_server();
    create_node(&client, a, "10.42.1.0/24").await;
    create_node(&client, b, "10.42.2.0/24").await;
    let _oa = Overlay::start(a, &client);
    let _ob = Overlay::start(b, &client);
    let b_url = format!("{}:8080", b.pod_ip);
    wait_for("the overlay", Duration::from_secs(15), || async {
        remote_addr(&a.pod.0, &b_url).await.is_ok()
    })
    .await;
    let over = iperf(&a.pod.0, &b.pod_ip);
    println!(
        "[overlay] pod-to-pod TCP (iperf3, 5 s, 1 stream, through a router namespace): bare {bare:.2} Gbit/s, \
         VXLAN overlay {over:.2} Gbit/s ({:.0}%)",
        over / bare * 100.0
    );
    cleanup(a);
    cleanup(b);
}

/// iperf3 from namespace `ns` to `server`: the receiver's Gbit/s.
fn iperf(ns: &str, server: &str) -> f64 {
    let mut out = None;
    for _ in 0..20 {
        let o = Command::new("ip")
            .args(["netns", "exec", ns, "iperf3", "-c", server, "-t", "5", "-J"])
            .output()
            .unwrap();
        if o.status.success() {
            out = Some(o);
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let out = out.expect("iperf3 never connected");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["end"]["sum_received"]["bits_per_second"].as_f64().unwrap() / 1e9
}
