#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use lichen_client::Client;

use super::model::{self, Cidr, Entries, Mac, Op};
use super::*;

fn node(name: &str, cidr: Option<&str>, mac: Option<&str>, ip: Option<&str>) -> Value {
    let mut n = json!({"metadata": {"name": name, "annotations": {}}, "spec": {}});
    if let Some(c) = cidr {
        n["spec"]["podCIDR"] = json!(c);
    }
    if let Some(m) = mac {
        n["metadata"]["annotations"][model::MAC_ANNOTATION] = json!(m);
    }
    if let Some(i) = ip {
        n["metadata"]["annotations"][model::IP_ANNOTATION] = json!(i);
    }
    n
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

fn mac(s: &str) -> Mac {
    s.parse().unwrap()
}

#[test]
fn cidrs_parse_and_reject_host_bits() {
    assert_eq!(cidr("10.42.0.0/16"), Cidr { addr: ip("10.42.0.0"), prefix: 16 });
    assert_eq!(cidr("10.42.3.0/24").to_string(), "10.42.3.0/24");
    for bad in ["10.42.3.1/24", "10.42.0.0", "10.42.0.0/33", "x/8", "::/0"] {
        assert!(bad.parse::<Cidr>().is_err(), "{bad}");
    }
    assert!(cidr("10.42.0.0/16").contains(ip("10.42.200.7")));
    assert!(!cidr("10.42.0.0/16").contains(ip("10.43.0.1")));
    assert!(cidr("0.0.0.0/0").contains(ip("1.2.3.4")));
}

#[test]
fn vtep_macs_are_stable_unicast_locally_administered_and_distinct() {
    let a = vtep_mac("node-a");
    assert_eq!(a, vtep_mac("node-a"), "same name, same MAC");
    assert_ne!(a, vtep_mac("node-b"));
    assert_eq!(a.0[0] & 0x03, 0x02, "locally administered unicast: {a}");
    // Pinned: a change would make every peer's entries stale after an upgrade.
    assert_eq!(a.to_string(), "4a:e8:66:29:c1:52");
    let many: std::collections::BTreeSet<Mac> = (0..1000).map(|i| vtep_mac(&format!("node-{i}"))).collect();
    assert_eq!(many.len(), 1000);
    assert_eq!(mac(&a.to_string()), a, "round trip");
    for bad in ["", "d2:46:1a:76:1f", "d2:46:1a:76:1f:a5:00", "zz:46:1a:76:1f:a5", "d2-46-1a-76-1f-a5"] {
        assert!(bad.parse::<Mac>().is_err(), "{bad}");
    }
}

#[test]
fn mtu_leaves_room_for_the_vxlan_headers() {
    assert_eq!(mtu_for(1500), 1450);
    assert_eq!(mtu_for(9000), 8950);
    assert_eq!(mtu_for(20), 0);
}

#[test]
fn desired_entries_come_from_other_nodes_that_are_ready_for_the_overlay() {
    let nodes = [
        node("node-a", Some("10.42.1.0/24"), Some("02:00:00:00:00:0a"), Some("192.168.1.10")),
        node("node-b", Some("10.42.2.0/24"), Some("02:00:00:00:00:0b"), Some("192.168.1.11")),
        node("node-c", Some("10.42.3.0/24"), Some("02:00:00:00:00:0c"), Some("172.16.5.9")),
        // Not ready: no pod CIDR, no annotations, a bad MAC, a bad CIDR.
        node("node-d", None, Some("02:00:00:00:00:0d"), Some("192.168.1.13")),
        node("node-e", Some("10.42.5.0/24"), None, None),
        node("node-f", Some("10.42.6.0/24"), Some("nonsense"), Some("192.168.1.15")),
        node("node-g", Some("10.42.7.1/24"), Some("02:00:00:00:00:0f"), Some("192.168.1.16")),
    ];
    let (e, peers) = model::desired(&nodes, "node-a");
    assert_eq!(peers.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["node-b", "node-c"]);
    let want = Entries {
        fdb: [(mac("02:00:00:00:00:0b"), ip("192.168.1.11")), (mac("02:00:00:00:00:0c"), ip("172.16.5.9"))]
            .into(),
        neigh: [(ip("10.42.2.0"), mac("02:00:00:00:00:0b")), (ip("10.42.3.0"), mac("02:00:00:00:00:0c"))]
            .into(),
        routes: [(cidr("10.42.2.0/24"), ip("10.42.2.0")), (cidr("10.42.3.0/24"), ip("10.42.3.0"))].into(),
    };
    assert_eq!(e, want);
}

#[test]
fn a_duplicate_mac_or_pod_cidr_is_not_programmed_twice() {
    let nodes = [
        node("node-b", Some("10.42.2.0/24"), Some("02:00:00:00:00:0b"), Some("192.168.1.11")),
        node("node-c", Some("10.42.2.0/24"), Some("02:00:00:00:00:0c"), Some("192.168.1.12")),
        node("node-d", Some("10.42.4.0/24"), Some("02:00:00:00:00:0b"), Some("192.168.1.13")),
    ];
    let (e, peers) = model::desired(&nodes, "node-a");
    assert_eq!(peers.len(), 1);
    assert_eq!(e.routes.len(), 1);
    assert_eq!(e.fdb[&mac("02:00:00:00:00:0b")], ip("192.168.1.11"));
}

#[test]
fn diff_removes_stale_replaces_changed_and_adds_missing_in_order() {
    let b = mac("02:00:00:00:00:0b");
    let c = mac("02:00:00:00:00:0c");
    let stale = mac("02:00:00:00:00:99");
    let current = Entries {
        // b moved to another underlay address; a stale peer is left.
        fdb: [(b, ip("192.168.1.11")), (stale, ip("192.168.1.99"))].into(),
        neigh: [(ip("10.42.2.0"), b), (ip("10.42.9.0"), stale)].into(),
        routes: [(cidr("10.42.2.0/24"), ip("10.42.2.0")), (cidr("10.42.9.0/24"), ip("10.42.9.0"))].into(),
    };
    let want = Entries {
        fdb: [(b, ip("192.168.7.11")), (c, ip("192.168.1.12"))].into(),
        neigh: [(ip("10.42.2.0"), b), (ip("10.42.3.0"), c)].into(),
        routes: [(cidr("10.42.2.0/24"), ip("10.42.2.0")), (cidr("10.42.3.0/24"), ip("10.42.3.0"))].into(),
    };
    let ops = model::diff(&current, &want);
    assert_eq!(
        ops,
        [
            Op::DelRoute(cidr("10.42.9.0/24"), ip("10.42.9.0")),
            Op::DelNeigh(ip("10.42.9.0"), stale),
            Op::DelFdb(b, ip("192.168.1.11")),
            Op::DelFdb(stale, ip("192.168.1.99")),
            Op::AddFdb(b, ip("192.168.7.11")),
            Op::AddFdb(c, ip("192.168.1.12")),
            Op::AddNeigh(ip("10.42.3.0"), c),
            Op::AddRoute(cidr("10.42.3.0/24"), ip("10.42.3.0")),
        ]
    );
    assert!(model::diff(&want, &want).is_empty(), "in sync: nothing to do");
    // Everything gone (the last peer deleted): only removals.
    let gone = model::diff(&want, &Entries::default());
    assert_eq!(gone.len(), 6);
    assert!(gone.iter().all(|o| matches!(o, Op::DelFdb(..) | Op::DelNeigh(..) | Op::DelRoute(..))));
}

#[test]
fn the_table_masquerades_only_traffic_leaving_the_cluster() {
    let cfg = Config::new("node-a", ip("192.168.1.10"), cidr("10.42.0.0/16"));
    let text = cfg.ruleset();
    assert!(text.starts_with("table ip lichen-overlay {\n"), "{text}");
    assert!(
        text.contains("ip saddr 10.42.0.0/16 ip daddr != 10.42.0.0/16 masquerade fully-random"),
        "{text}"
    );
    assert_eq!(text.matches("masquerade").count(), 1, "{text}");
    assert!(text.contains("type filter hook forward priority filter; policy accept;"), "{text}");
    // nft lists it with blank lines between chains; that still matches.
    let listed = text.replace("\t}\n\tchain forward", "\t}\n\n\tchain forward");
    assert!(rules::listed_matches(&listed, &text));
    assert!(!rules::listed_matches(&text.replace("masquerade fully-random", "masquerade"), &text));
    assert!(!rules::listed_matches("table ip lichen-overlay {\n}\n", &text));
}

#[test]
fn the_table_is_valid_nft() {
    let ok = std::process::Command::new("unshare").args(["-rn", "nft", "--version"]).output();
    if !matches!(&ok, Ok(o) if o.status.success()) {
        eprintln!("skipped: `unshare -rn nft` does not run here ({ok:?})");
        return;
    }
    let cfg = Config::new("node-a", ip("192.168.1.10"), cidr("10.42.0.0/16"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.nft");
    std::fs::write(&file, cfg.ruleset()).unwrap();
    let out =
        std::process::Command::new("unshare").args(["-rn", "nft", "-c", "-f"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "nft -c: {}", String::from_utf8_lossy(&out.stderr));
    // And as listed by the kernel, it matches what was applied.
    let script = "nft -f t.nft && nft list table ip lichen-overlay";
    let out = std::process::Command::new("unshare")
        .args(["-rn", "sh", "-ec", script])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(rules::listed_matches(&String::from_utf8_lossy(&out.stdout), &cfg.ruleset()));
}

/// A kernel that keeps the device's entries in memory and records calls.
#[derive(Default)]
struct FakeKernel {
    entries: std::sync::Mutex<Entries>,
    calls: std::sync::Mutex<Vec<String>>,
    /// The next this many changes fail.
    fail: std::sync::Mutex<usize>,
    /// Removals answer success but change nothing.
    deaf_to_removals: bool,
}

impl kernel::Kernel for FakeKernel {
    async fn underlay(&self, _ip: Ipv4Addr) -> Result<(u32, u32), NetlinkError> {
        Ok((2, 1500))
    }
    async fn ensure_device(&self, spec: &kernel::DeviceSpec) -> Result<u32, NetlinkError> {
        let call = format!(
            "device {} vni {} port {} mtu {} mac {} underlay {}",
            spec.name, spec.vni, spec.port, spec.mtu, spec.mac, spec.underlay_index
        );
        self.calls.lock().unwrap().push(call);
        Ok(7)
    }
    async fn ensure_address(&self, index: u32, _name: &str, addr: Ipv4Addr) -> Result<(), NetlinkError> {
        self.calls.lock().unwrap().push(format!("address {index} {addr}"));
        Ok(())
    }
    async fn observe(&self, _index: u32, _name: &str) -> Result<Entries, NetlinkError> {
        Ok(self.entries.lock().unwrap().clone())
    }
    async fn apply(&self, _index: u32, name: &str, op: &Op) -> Result<(), NetlinkError> {
        let mut fail = self.fail.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return Err(NetlinkError::Request {
                what: format!("{op:?}"),
                device: name.into(),
                source: rtnetlink::Error::RequestFailed,
            });
        }
        let mut e = self.entries.lock().unwrap();
        match *op {
            Op::AddFdb(m, ip) => drop(e.fdb.insert(m, ip)),
            Op::AddNeigh(ip, m) => drop(e.neigh.insert(ip, m)),
            Op::AddRoute(c, gw) => drop(e.routes.insert(c, gw)),
            _ if self.deaf_to_removals => {}
            Op::DelFdb(m, _) => drop(e.fdb.remove(&m)),
            Op::DelNeigh(ip, _) => drop(e.neigh.remove(&ip)),
            Op::DelRoute(c, _) => drop(e.routes.remove(&c)),
        }
        Ok(())
    }
}

fn api_client() -> (lichen_apiserver::Server, Client) {
    let store: std::sync::Arc<dyn lichen_store::Store> =
        std::sync::Arc::new(lichen_store::MemoryStore::new());
    let opts = lichen_apiserver::Options::new(lichen_apiserver::version::Info::new("0.0.0", "test"));
    let server = lichen_apiserver::Server::new(store, opts).unwrap();
    let client = Client::from_service(server.local(lichen_apiserver::Identity::master("system:node")));
    (server, client)
}

async fn sync_fake(client: &Client, cfg: &Config, k: &FakeKernel) -> Result<(), SyncError> {
    let nodes = client.get("/api/v1/nodes").await.unwrap()["items"].as_array().unwrap().clone();
    let me = nodes.iter().find(|n| n["metadata"]["name"] == cfg.node_name.as_str()).unwrap().clone();
    let (mut table_ok, mut said) = (false, false);
    sync_with(client, cfg, &nodes, &me, k, &mut table_ok, &mut said).await
}

#[tokio::test]
async fn a_sync_publishes_the_vtep_programs_peers_removes_stale_entries_and_retries_failures() {
    let (_server, client) = api_client();
    for n in [
        node("node-a", Some("10.42.1.0/24"), None, None),
        node("node-b", Some("10.42.2.0/24"), Some("02:00:00:00:00:0b"), Some("192.168.1.11")),
        node("node-c", None, None, None),
    ] {
        client.create("/api/v1/nodes", &n).await.unwrap();
    }
    let mut cfg = Config::new("node-a", ip("192.168.1.10"), cidr("10.42.0.0/16"));
    cfg.nft = "/bin/true".into();
    let k = FakeKernel::default();
    let stale = mac("02:00:00:00:00:99");
    k.entries.lock().unwrap().fdb.insert(stale, ip("192.168.1.99"));
    k.entries.lock().unwrap().routes.insert(cidr("10.42.9.0/24"), ip("10.42.9.0"));

    sync_fake(&client, &cfg, &k).await.unwrap();
    let mac_a = vtep_mac("node-a");
    assert_eq!(
        *k.calls.lock().unwrap(),
        [
            format!("device lichen.1 vni 1 port 8472 mtu 1450 mac {mac_a} underlay 2"),
            "address 7 10.42.1.0".into()
        ]
    );
    let nodes = client.get("/api/v1/nodes").await.unwrap()["items"].as_array().unwrap().clone();
    let (want, _) = model::desired(&nodes, "node-a");
    assert_eq!(*k.entries.lock().unwrap(), want, "node B's entries only; the stale ones gone");
    assert_eq!(want.routes.len(), 1);
    let a = client.get("/api/v1/nodes/node-a").await.unwrap();
    assert_eq!(a["metadata"]["annotations"][model::MAC_ANNOTATION], mac_a.to_string());
    assert_eq!(a["metadata"]["annotations"][model::IP_ANNOTATION], "192.168.1.10");

    // Node B moves: a failed change fails the sync (run() backs off and
    // retries); the next sync finishes the job.
    let patch = json!({"metadata": {"annotations": {model::IP_ANNOTATION: "192.168.7.11"}}});
    client.patch("/api/v1/nodes/node-b", lichen_client::PatchType::Merge, &patch).await.unwrap();
    *k.fail.lock().unwrap() = 1;
    assert!(matches!(sync_fake(&client, &cfg, &k).await, Err(SyncError::Entries { failed: 1, .. })));
    sync_fake(&client, &cfg, &k).await.unwrap();
    assert_eq!(k.entries.lock().unwrap().fdb[&mac("02:00:00:00:00:0b")], ip("192.168.7.11"));
    assert_eq!(k.entries.lock().unwrap().fdb.len(), 1);
}

#[tokio::test]
async fn a_change_the_kernel_ignored_fails_the_sync() {
    let (_server, client) = api_client();
    client.create("/api/v1/nodes", &node("node-a", Some("10.42.1.0/24"), None, None)).await.unwrap();
    let mut cfg = Config::new("node-a", ip("192.168.1.10"), cidr("10.42.0.0/16"));
    cfg.nft = "/bin/true".into();
    let k = FakeKernel { deaf_to_removals: true, ..FakeKernel::default() };
    k.entries.lock().unwrap().routes.insert(cidr("10.42.9.0/24"), ip("10.42.9.0"));
    assert!(matches!(sync_fake(&client, &cfg, &k).await, Err(SyncError::Entries { failed: 1, total: 1 })));
}
