//! The nftables table enforcing the policies of this node's pods. A pure
//! function of its input: same input, same ruleset, same bytes.
//!
//! Layout (`table ip <table>`):
//! - `forward`, a filter chain on the forward hook: replies to allowed
//!   connections pass (`ct state established,related`), then the source's
//!   egress chain and the destination's ingress chain are entered through
//!   the verdict maps `egress-pods` and `ingress-pods`, keyed by pod IP.
//!   Only isolated pods are in the maps: other traffic passes.
//! - `ingress-<ns>/<pod>` and `egress-<ns>/<pod>`: one rule per allowed
//!   (peers, ports) that `return`s (so the other direction is checked too),
//!   then `drop`.
//! - `peers-<ns>/<policy>/<direction>/<rule>`: an interval set of the
//!   rule's peer addresses (pods' IPs and ipBlocks less their excepts);
//!   `named-<...>`: (address, protocol, port) of the destination pods of an
//!   egress rule with named ports.
//!
//! Only the forward hook is used: the node's own traffic to its pods
//! (kubelet probes) goes through output and the pods' traffic to the node
//! through input, and both are always allowed, as upstream says.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;

use super::model::{Direction, Enforced, Isolation, PortSpec, Protocol, Ranges, Rule};
use crate::proxy::ruleset::Ruleset;

const FORWARD: &str = "type filter hook forward priority filter; policy accept;";
const PODS_MAP: &str = "type ipv4_addr : verdict;";
const PEERS_SET: &str = "type ipv4_addr; flags interval;";
const NAMED_SET: &str = "type ipv4_addr . inet_proto . inet_service;";

/// Longest name we give a chain or set (the kernel takes 256 bytes).
const NAME_MAX: usize = 200;

/// `name`, or when too long its start and a hash of the whole.
fn nft_name(name: String) -> String {
    if name.len() <= NAME_MAX {
        return name;
    }
    // FNV-1a: stable across runs and Rust versions.
    let hash = name
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let mut cut = NAME_MAX - 18;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_h{hash:016x}", &name[..cut])
}

fn range_element((a, b): (u32, u32)) -> String {
    if a == b {
        Ipv4Addr::from(a).to_string()
    } else {
        format!("{}-{}", Ipv4Addr::from(a), Ipv4Addr::from(b))
    }
}

/// The whole table for these enforced pods.
pub fn ruleset(table: &str, pods: &[Enforced<'_>]) -> Ruleset {
    let mut rs = Ruleset::new(table);
    rs.chain(
        "forward",
        Some(FORWARD),
        vec![
            "ct state established,related accept".into(),
            "ip saddr vmap @egress-pods".into(),
            "ip daddr vmap @ingress-pods".into(),
        ],
    );
    rs.set("map", "ingress-pods", PODS_MAP);
    rs.set("map", "egress-pods", PODS_MAP);
    for e in pods {
        for (dir, iso) in [(Direction::Ingress, &e.ingress), (Direction::Egress, &e.egress)] {
            let Some(iso) = iso else { continue };
            let chain = nft_name(format!("{}-{}/{}", dir.name(), e.pod.namespace, e.pod.name));
            let rules = pod_rules(&mut rs, dir, e, iso);
            rs.chain(&chain, None, rules);
            let map = rs.set("map", &format!("{}-pods", dir.name()), PODS_MAP);
            for ip in &e.pod.ips {
                map.insert(ip.to_string(), Some(format!("jump {chain}")));
            }
        }
    }
    rs
}

/// The rules of one pod's chain in `dir`; declares the sets they use.
fn pod_rules(rs: &mut Ruleset, dir: Direction, e: &Enforced<'_>, iso: &Isolation<'_>) -> Vec<String> {
    let addr = if dir == Direction::Ingress { "saddr" } else { "daddr" };
    let mut rules: Vec<String> = Vec::new();
    let mut push = |r: String| {
        if !rules.contains(&r) {
            rules.push(r);
        }
    };
    for (policy, i, rule) in &iso.rules {
        let base = format!("{}/{}/{}/{i}", policy.namespace, policy.name, dir.name());
        let peers = match &rule.peers {
            super::model::Peers::Any => String::new(),
            super::model::Peers::Ranges(r) => {
                let name = nft_name(format!("peers-{base}"));
                peer_set(rs, &name, r);
                format!("ip {addr} @{name} ")
            }
        };
        if rule.ports.is_empty() {
            push(format!("{peers}return"));
            continue;
        }
        // Numeric ports by protocol; named ones resolved (ingress: on this
        // pod; egress: per destination, in a set).
        let mut by_proto: BTreeMap<Protocol, Vec<String>> = BTreeMap::new();
        let mut all_ports: Vec<Protocol> = Vec::new();
        let mut named_egress = false;
        for spec in &rule.ports {
            match spec {
                PortSpec::All(p) => all_ports.push(*p),
                PortSpec::Range(p, a, b) => by_proto.entry(*p).or_default().push(port_range(*a, *b)),
                PortSpec::Named(p, name) if dir == Direction::Ingress => {
                    if let Some(n) =
                        e.pod.named_ports.iter().find(|(nm, pr, _)| nm == name && pr == p).map(|x| x.2)
                    {
                        by_proto.entry(*p).or_default().push(n.to_string());
                    }
                }
                PortSpec::Named(..) => named_egress = true,
            }
        }
        for p in &all_ports {
            push(format!("{peers}meta l4proto {} return", p.nft()));
        }
        for (p, mut ports) in by_proto {
            if all_ports.contains(&p) {
                continue;
            }
            ports.sort();
            ports.dedup();
            push(format!("{peers}meta l4proto {} th dport {{ {} }} return", p.nft(), ports.join(", ")));
        }
        if named_egress {
            let name = nft_name(format!("named-{base}"));
            named_set(rs, &name, rule);
            push(format!("ip daddr . meta l4proto . th dport @{name} return"));
        }
    }
    rules.push("counter drop".into());
    rules
}

fn port_range(a: u16, b: u16) -> String {
    if a == b { a.to_string() } else { format!("{a}-{b}") }
}

fn peer_set(rs: &mut Ruleset, name: &str, ranges: &Ranges) {
    let set = rs.set("set", name, PEERS_SET);
    for r in &ranges.0 {
        set.insert(range_element(*r), None);
    }
}

fn named_set(rs: &mut Ruleset, name: &str, rule: &Rule) {
    let set = rs.set("set", name, NAMED_SET);
    for (ip, p, port) in &rule.named_destinations {
        let mut key = String::new();
        let _ = write!(key, "{ip} . {} . {port}", p.nft());
        set.insert(key, None);
    }
}
