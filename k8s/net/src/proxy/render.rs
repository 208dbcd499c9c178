//! The nftables table for a set of service ports. A pure function of its
//! input: same input, same ruleset, same bytes.
//!
//! The layout follows kube-proxy's nftables mode (`pkg/proxy/nftables`):
//! base chains for the nat and filter hooks jump to `services` (verdict maps
//! `service-ips` keyed by `daddr . l4proto . dport` and `service-nodeports`
//! keyed by `l4proto . dport`), one `service-<port>` chain load-balancing
//! with `numgen random` over one `endpoint-<port>__<ip>/<port>` chain per
//! endpoint (`dnat`), `external-<port>` chains for node ports and external
//! IPs, a masquerade mark, and `reject` for services without endpoints.

use std::net::Ipv4Addr;

use super::model::{Endpoint, ServicePort};
use super::ruleset::Ruleset;

/// The mark bit asking `masquerading` to SNAT a connection (upstream's).
const MASQ_MARK: &str = "0x00004000";

const IPS_MAP: &str = "type ipv4_addr . inet_proto . inet_service : verdict;";
const PORTS_MAP: &str = "type inet_proto . inet_service : verdict;";

/// The whole table. `node_ips` are the addresses node ports answer on;
/// empty means every local address but loopback.
pub fn ruleset(table: &str, node_ips: &[Ipv4Addr], ports: &[ServicePort]) -> Ruleset {
    let mut rs = Ruleset::new(table);
    base_chains(&mut rs, node_ips);
    rs.set("set", "cluster-ips", "type ipv4_addr;");
    let nodeport_ips = rs.set("set", "nodeport-ips", "type ipv4_addr;");
    for ip in node_ips {
        nodeport_ips.insert(ip.to_string(), None);
    }
    for name in ["service-ips", "no-endpoint-services"] {
        rs.set("map", name, IPS_MAP);
    }
    for name in ["service-nodeports", "no-endpoint-nodeports"] {
        rs.set("map", name, PORTS_MAP);
    }
    for p in ports {
        service(&mut rs, p);
    }
    rs
}

fn base_chains(rs: &mut Ruleset, node_ips: &[Ipv4Addr]) {
    // Priorities as numbers: dstnat is -100, srcnat 100; nft 1.0.6 refuses
    // the names in some hooks (`dstnat` in nat output). The filter chains
    // run just before DNAT (upstream's dstnat - 10), and after it in output.
    let base = |rs: &mut Ruleset, name: &str, kind: &str, hook: &str, prio: i32, jumps: &[&str]| {
        let header = format!("type {kind} hook {hook} priority {prio}; policy accept;");
        let prefix = if kind == "filter" { "ct state new " } else { "" };
        rs.chain(name, Some(&header), jumps.iter().map(|j| format!("{prefix}jump {j}")).collect());
    };
    base(
        rs,
        "filter-input",
        "filter",
        "input",
        -110,
        &["nodeport-endpoints-check", "service-endpoints-check"],
    );
    base(rs, "filter-forward", "filter", "forward", -110, &["service-endpoints-check", "cluster-ips-check"]);
    base(rs, "filter-output", "filter", "output", -110, &["service-endpoints-check"]);
    base(rs, "filter-output-post-dnat", "filter", "output", -90, &["cluster-ips-check"]);
    base(rs, "nat-prerouting", "nat", "prerouting", -100, &["services"]);
    base(rs, "nat-output", "nat", "output", -100, &["services"]);
    base(rs, "nat-postrouting", "nat", "postrouting", 100, &["masquerading"]);

    let node_port_daddr = if node_ips.is_empty() {
        "fib daddr type local ip daddr != 127.0.0.0/8"
    } else {
        "ip daddr @nodeport-ips"
    };
    let chain = |rs: &mut Ruleset, name: &str, rules: &[&str]| {
        rs.chain(name, None, rules.iter().map(|r| (*r).to_owned()).collect());
    };
    chain(
        rs,
        "services",
        &[
            "ip daddr . meta l4proto . th dport vmap @service-ips",
            &format!("{node_port_daddr} meta l4proto . th dport vmap @service-nodeports"),
        ],
    );
    chain(rs, "service-endpoints-check", &["ip daddr . meta l4proto . th dport vmap @no-endpoint-services"]);
    chain(
        rs,
        "nodeport-endpoints-check",
        &[&format!("{node_port_daddr} meta l4proto . th dport vmap @no-endpoint-nodeports")],
    );
    // Traffic to a cluster IP that no rule rewrote: a port the Service
    // does not have.
    chain(rs, "cluster-ips-check", &["ip daddr @cluster-ips reject"]);
    chain(rs, "reject-chain", &["meta l4proto tcp reject with tcp reset", "reject"]);
    chain(rs, "mark-for-masquerade", &[&format!("meta mark set meta mark | {MASQ_MARK}")]);
    chain(
        rs,
        "masquerading",
        &[
            &format!("meta mark & {MASQ_MARK} == 0 return"),
            &format!("meta mark set meta mark ^ {MASQ_MARK}"),
            "masquerade fully-random",
        ],
    );
}

fn endpoint_chain(id: &str, ep: &Endpoint) -> String {
    format!("endpoint-{id}__{}/{}", ep.ip, ep.port)
}

fn affinity_set(id: &str, ep: &Endpoint) -> String {
    format!("affinity-{id}__{}/{}", ep.ip, ep.port)
}

fn service(rs: &mut Ruleset, p: &ServicePort) {
    let id = p.id();
    let proto = p.protocol.nft();
    rs.set("set", "cluster-ips", "").insert(p.cluster_ip.to_string(), None);
    let ip_keys: Vec<String> = std::iter::once(p.cluster_ip)
        .chain(p.external_ips.iter().copied())
        .map(|ip| format!("{ip} . {proto} . {}", p.port))
        .collect();
    let node_port_key = p.node_port.map(|np| format!("{proto} . {np}"));
    if p.endpoints.is_empty() {
        let reject = Some("goto reject-chain".to_owned());
        let map = rs.set("map", "no-endpoint-services", IPS_MAP);
        for key in ip_keys {
            map.insert(key, reject.clone());
        }
        if let Some(key) = node_port_key {
            rs.set("map", "no-endpoint-nodeports", PORTS_MAP).insert(key, reject);
        }
        return;
    }
    let service_ips = rs.set("map", "service-ips", IPS_MAP);
    for (i, key) in ip_keys.into_iter().enumerate() {
        let target = if i == 0 { "service" } else { "external" };
        service_ips.insert(key, Some(format!("goto {target}-{id}")));
    }
    if let Some(key) = node_port_key {
        rs.set("map", "service-nodeports", PORTS_MAP).insert(key, Some(format!("goto external-{id}")));
    }

    let all: Vec<&Endpoint> = p.endpoints.iter().collect();
    rs.chain(&format!("service-{id}"), None, balance(p, &id, &all, "goto reject-chain"));
    if p.external() {
        let rules = if p.external_local {
            // Keep the client's address, except for the node's own
            // traffic, which takes the cluster-wide path (upstream).
            let local: Vec<&Endpoint> = p.endpoints.iter().filter(|e| e.local).collect();
            rs.chain(&format!("local-{id}"), None, balance(p, &id, &local, "drop"));
            vec![
                "fib saddr type local jump mark-for-masquerade".to_owned(),
                format!("fib saddr type local goto service-{id}"),
                format!("goto local-{id}"),
            ]
        } else {
            vec!["jump mark-for-masquerade".to_owned(), format!("goto service-{id}")]
        };
        rs.chain(&format!("external-{id}"), None, rules);
    }
    for ep in &p.endpoints {
        // Hairpin: a pod reaching itself through its service.
        let mut rules = vec![format!("ip saddr {} jump mark-for-masquerade", ep.ip)];
        if let Some(seconds) = p.affinity_seconds {
            let set = affinity_set(&id, ep);
            rs.set("set", &set, &format!("type ipv4_addr; flags dynamic,timeout; timeout {seconds}s;"));
            rules.push(format!("update @{set} {{ ip saddr }}"));
        }
        rules.push(format!("meta l4proto {proto} dnat to {}:{}", ep.ip, ep.port));
        rs.chain(&endpoint_chain(&id, ep), None, rules);
    }
}

/// `numgen` over `eps` (after the session-affinity lookups), or
/// `fallback` when there are none.
fn balance(p: &ServicePort, id: &str, eps: &[&Endpoint], fallback: &str) -> Vec<String> {
    if eps.is_empty() {
        return vec![fallback.to_owned()];
    }
    let mut rules = Vec::new();
    if p.affinity_seconds.is_some() {
        for ep in eps {
            rules.push(format!("ip saddr @{} goto {}", affinity_set(id, ep), endpoint_chain(id, ep)));
        }
    }
    let arms: Vec<String> =
        eps.iter().enumerate().map(|(i, ep)| format!("{i} : goto {}", endpoint_chain(id, ep))).collect();
    rules.push(format!("numgen random mod {} vmap {{ {} }}", eps.len(), arms.join(", ")));
    rules
}
