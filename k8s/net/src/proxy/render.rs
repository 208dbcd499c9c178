//! The nftables table for a set of service ports, as `nft -f` text.
//! A pure function of its input: same input, same bytes.
//!
//! The layout follows kube-proxy's nftables mode (`pkg/proxy/nftables`):
//! base chains for the nat and filter hooks jump to `services` (verdict maps
//! `service-ips` keyed by `daddr . l4proto . dport` and `service-nodeports`
//! keyed by `l4proto . dport`), one `service-<port>` chain load-balancing
//! with `numgen random` over one `endpoint-<port>__<ip>/<port>` chain per
//! endpoint (`dnat`), `external-<port>` chains for node ports and external
//! IPs, a masquerade mark, and `reject` for services without endpoints.

use std::fmt::Write;
use std::net::Ipv4Addr;

use super::model::{Endpoint, ServicePort};

/// The mark bit asking `masquerading` to SNAT a connection (upstream's).
const MASQ_MARK: &str = "0x00004000";

/// Renders one whole `table ip <table>` definition (without the
/// add/delete preamble of the transaction). `node_ips` are the addresses
/// node ports answer on; empty means every local address but loopback.
pub fn table(table: &str, node_ips: &[Ipv4Addr], ports: &[ServicePort]) -> String {
    let mut o = String::with_capacity(1024 + ports.len() * 512);
    // `write!` to a String cannot fail.
    let w = &mut o;
    let _ = writeln!(w, "table ip {table} {{");
    base_chains(w, node_ips);

    // Maps and sets, with their elements.
    let mut service_ips = Vec::new();
    let mut service_nodeports = Vec::new();
    let mut no_ep_services = Vec::new();
    let mut no_ep_nodeports = Vec::new();
    let mut cluster_ips: Vec<Ipv4Addr> = Vec::new();
    for p in ports {
        let id = p.id();
        let proto = p.protocol.nft();
        cluster_ips.push(p.cluster_ip);
        if p.endpoints.is_empty() {
            no_ep_services.push(format!("{} . {proto} . {} : goto reject-chain", p.cluster_ip, p.port));
            for ip in &p.external_ips {
                no_ep_services.push(format!("{ip} . {proto} . {} : goto reject-chain", p.port));
            }
            if let Some(np) = p.node_port {
                no_ep_nodeports.push(format!("{proto} . {np} : goto reject-chain"));
            }
            continue;
        }
        service_ips.push(format!("{} . {proto} . {} : goto service-{id}", p.cluster_ip, p.port));
        for ip in &p.external_ips {
            service_ips.push(format!("{ip} . {proto} . {} : goto external-{id}", p.port));
        }
        if let Some(np) = p.node_port {
            service_nodeports.push(format!("{proto} . {np} : goto external-{id}"));
        }
    }
    cluster_ips.sort();
    cluster_ips.dedup();
    let v4 = |ips: &[Ipv4Addr]| ips.iter().map(Ipv4Addr::to_string).collect::<Vec<_>>();
    set(w, "cluster-ips", "ipv4_addr", "", &v4(&cluster_ips));
    set(w, "nodeport-ips", "ipv4_addr", "", &v4(node_ips));
    map(w, "service-ips", "ipv4_addr . inet_proto . inet_service : verdict", &service_ips);
    map(w, "service-nodeports", "inet_proto . inet_service : verdict", &service_nodeports);
    map(w, "no-endpoint-services", "ipv4_addr . inet_proto . inet_service : verdict", &no_ep_services);
    map(w, "no-endpoint-nodeports", "inet_proto . inet_service : verdict", &no_ep_nodeports);

    for p in ports.iter().filter(|p| !p.endpoints.is_empty()) {
        service_chains(w, p);
    }
    o.push_str("}\n");
    o
}

fn base_chains(w: &mut String, node_ips: &[Ipv4Addr]) {
    let base = |w: &mut String, name: &str, kind: &str, hook: &str, prio: &str, body: &[&str]| {
        let _ = writeln!(w, "\tchain {name} {{\n\t\ttype {kind} hook {hook} priority {prio}; policy accept;");
        for line in body {
            let _ = writeln!(w, "\t\t{line}");
        }
        w.push_str("\t}\n");
    };
    // Priorities as numbers: dstnat is -100, srcnat 100; nft 1.0.6 refuses
    // the names in some hooks (`dstnat` in nat output). The filter chains
    // run just before DNAT (upstream's dstnat - 10), and after it in output.
    let new = "ct state new jump";
    base(
        w,
        "filter-input",
        "filter",
        "input",
        "-110",
        &[&format!("{new} nodeport-endpoints-check"), &format!("{new} service-endpoints-check")],
    );
    base(
        w,
        "filter-forward",
        "filter",
        "forward",
        "-110",
        &[&format!("{new} service-endpoints-check"), &format!("{new} cluster-ips-check")],
    );
    base(w, "filter-output", "filter", "output", "-110", &[&format!("{new} service-endpoints-check")]);
    base(w, "filter-output-post-dnat", "filter", "output", "-90", &[&format!("{new} cluster-ips-check")]);
    base(w, "nat-prerouting", "nat", "prerouting", "-100", &["jump services"]);
    base(w, "nat-output", "nat", "output", "-100", &["jump services"]);
    base(w, "nat-postrouting", "nat", "postrouting", "100", &["jump masquerading"]);

    let chain = |w: &mut String, name: &str, body: &[&str]| {
        let _ = writeln!(w, "\tchain {name} {{");
        for line in body {
            let _ = writeln!(w, "\t\t{line}");
        }
        w.push_str("\t}\n");
    };
    let node_port_daddr = if node_ips.is_empty() {
        "fib daddr type local ip daddr != 127.0.0.0/8"
    } else {
        "ip daddr @nodeport-ips"
    };
    chain(
        w,
        "services",
        &[
            "ip daddr . meta l4proto . th dport vmap @service-ips",
            &format!("{node_port_daddr} meta l4proto . th dport vmap @service-nodeports"),
        ],
    );
    chain(w, "service-endpoints-check", &["ip daddr . meta l4proto . th dport vmap @no-endpoint-services"]);
    chain(
        w,
        "nodeport-endpoints-check",
        &[&format!("{node_port_daddr} meta l4proto . th dport vmap @no-endpoint-nodeports")],
    );
    // Traffic to a cluster IP that no rule rewrote: a port the Service
    // does not have.
    chain(w, "cluster-ips-check", &["ip daddr @cluster-ips reject"]);
    chain(w, "reject-chain", &["meta l4proto tcp reject with tcp reset", "reject"]);
    chain(w, "mark-for-masquerade", &[&format!("meta mark set meta mark | {MASQ_MARK}")]);
    chain(
        w,
        "masquerading",
        &[
            &format!("meta mark & {MASQ_MARK} == 0 return"),
            &format!("meta mark set meta mark ^ {MASQ_MARK}"),
            "masquerade fully-random",
        ],
    );
}

fn elements(w: &mut String, elems: &[String]) {
    if elems.is_empty() {
        return;
    }
    w.push_str("\t\telements = {\n");
    for (i, e) in elems.iter().enumerate() {
        let sep = if i + 1 == elems.len() { "" } else { "," };
        let _ = writeln!(w, "\t\t\t{e}{sep}");
    }
    w.push_str("\t\t}\n");
}

fn set(w: &mut String, name: &str, ty: &str, flags: &str, elems: &[String]) {
    let _ = writeln!(w, "\tset {name} {{\n\t\ttype {ty};{flags}");
    elements(w, elems);
    w.push_str("\t}\n");
}

fn map(w: &mut String, name: &str, ty: &str, elems: &[String]) {
    let _ = writeln!(w, "\tmap {name} {{\n\t\ttype {ty};");
    elements(w, elems);
    w.push_str("\t}\n");
}

fn endpoint_chain(id: &str, ep: &Endpoint) -> String {
    format!("endpoint-{id}__{}/{}", ep.ip, ep.port)
}

fn affinity_set(id: &str, ep: &Endpoint) -> String {
    format!("affinity-{id}__{}/{}", ep.ip, ep.port)
}

/// `numgen` over `eps` (with session affinity first), or `fallback` when
/// there are none.
fn balance(w: &mut String, p: &ServicePort, id: &str, eps: &[&Endpoint], fallback: &str) {
    if eps.is_empty() {
        let _ = writeln!(w, "\t\t{fallback}");
        return;
    }
    if p.affinity_seconds.is_some() {
        for ep in eps {
            let _ = writeln!(w, "\t\tip saddr @{} goto {}", affinity_set(id, ep), endpoint_chain(id, ep));
        }
    }
    let _ = write!(w, "\t\tnumgen random mod {} vmap {{ ", eps.len());
    for (i, ep) in eps.iter().enumerate() {
        let sep = if i + 1 == eps.len() { " }" } else { ", " };
        let _ = write!(w, "{i} : goto {}{sep}", endpoint_chain(id, ep));
    }
    w.push('\n');
}

fn service_chains(w: &mut String, p: &ServicePort) {
    let id = p.id();
    let all: Vec<&Endpoint> = p.endpoints.iter().collect();
    let _ = writeln!(w, "\tchain service-{id} {{");
    balance(w, p, &id, &all, "goto reject-chain");
    w.push_str("\t}\n");

    if p.external() {
        let _ = writeln!(w, "\tchain external-{id} {{");
        if p.external_local {
            // Keep the client's address, except for the node's own
            // traffic, which takes the cluster-wide path (upstream).
            w.push_str("\t\tfib saddr type local jump mark-for-masquerade\n");
            let _ = writeln!(w, "\t\tfib saddr type local goto service-{id}");
            let _ = writeln!(w, "\t\tgoto local-{id}");
        } else {
            w.push_str("\t\tjump mark-for-masquerade\n");
            let _ = writeln!(w, "\t\tgoto service-{id}");
        }
        w.push_str("\t}\n");
        if p.external_local {
            let local: Vec<&Endpoint> = p.endpoints.iter().filter(|e| e.local).collect();
            let _ = writeln!(w, "\tchain local-{id} {{");
            balance(w, p, &id, &local, "drop");
            w.push_str("\t}\n");
        }
    }

    for ep in &p.endpoints {
        if let Some(seconds) = p.affinity_seconds {
            set(
                w,
                &affinity_set(&id, ep),
                "ipv4_addr",
                &format!(" flags dynamic,timeout; timeout {seconds}s;"),
                &[],
            );
        }
        let _ = writeln!(w, "\tchain {} {{", endpoint_chain(&id, ep));
        // Hairpin: a pod reaching itself through its service.
        let _ = writeln!(w, "\t\tip saddr {} jump mark-for-masquerade", ep.ip);
        if p.affinity_seconds.is_some() {
            let _ = writeln!(w, "\t\tupdate @{} {{ ip saddr }}", affinity_set(&id, ep));
        }
        let _ = writeln!(w, "\t\tmeta l4proto {} dnat to {}:{}", p.protocol.nft(), ep.ip, ep.port);
        w.push_str("\t}\n");
    }
}
