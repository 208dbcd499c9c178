//! Desired state: for every pod this node enforces, whether it is isolated
//! for ingress and egress and, if so, what the selecting NetworkPolicies
//! allow. Read from NetworkPolicies, Pods and Namespaces as the API returns
//! them (`serde_json::Value`). Pure functions, no I/O.
//!
//! Semantics are upstream's `networking.k8s.io/v1`: a pod is isolated in a
//! direction when a policy of its namespace selects it and lists that
//! direction in `policyTypes` (default: `Ingress`, plus `Egress` when the
//! policy has `egress` rules); an isolated pod gets the union of the
//! selecting policies' rules. Peers are resolved to IPv4 address ranges
//! here, so the kernel only matches addresses. IPv6 addresses are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use lichen_apimachinery::selector::Selector;
use serde_json::{Map, Value};

pub use crate::proxy::model::Protocol;

fn protocol(s: Option<&str>) -> Option<Protocol> {
    match s.unwrap_or("TCP") {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        "SCTP" => Some(Protocol::Sctp),
        _ => None,
    }
}

/// Traffic direction, as seen from the enforced pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// A pod as far as policy is concerned.
#[derive(Debug, Clone)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub labels: Map<String, Value>,
    pub node: String,
    pub host_network: bool,
    /// IPv4 addresses of `status.podIPs` (or `status.podIP`).
    pub ips: Vec<Ipv4Addr>,
    /// Named container ports: (name, protocol, number).
    pub named_ports: Vec<(String, Protocol, u16)>,
}

impl Pod {
    /// `None` for pods that have finished (their IPs may be reused) or
    /// carry no metadata.
    pub fn from_json(pod: &Value) -> Option<Pod> {
        let meta = &pod["metadata"];
        if matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
            return None;
        }
        let mut ips: Vec<Ipv4Addr> = pod["status"]["podIPs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|ip| ip["ip"].as_str()?.parse().ok())
            .collect();
        if ips.is_empty()
            && let Some(ip) = pod["status"]["podIP"].as_str().and_then(|s| s.parse().ok())
        {
            ips.push(ip);
        }
        let named_ports = ["initContainers", "containers"]
            .iter()
            .flat_map(|k| pod["spec"][k].as_array().into_iter().flatten())
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .filter_map(|p| {
                let name = p["name"].as_str().filter(|n| !n.is_empty())?;
                let number = u16::try_from(p["containerPort"].as_u64()?).ok()?;
                Some((name.to_owned(), protocol(p["protocol"].as_str())?, number))
            })
            .collect();
        Some(Pod {
            namespace: meta["namespace"].as_str()?.to_owned(),
            name: meta["name"].as_str()?.to_owned(),
            labels: meta["labels"].as_object().cloned().unwrap_or_default(),
            node: pod["spec"]["nodeName"].as_str().unwrap_or("").to_owned(),
            host_network: pod["spec"]["hostNetwork"].as_bool().unwrap_or(false),
            ips,
            named_ports,
        })
    }

    /// The number of the named port `name` for `proto`.
    fn named_port(&self, name: &str, proto: Protocol) -> Option<u16> {
        self.named_ports.iter().find(|(n, p, _)| n == name && *p == proto).map(|(_, _, port)| *port)
    }
}

/// The cluster's pods and namespace labels: what peers resolve against.
#[derive(Debug, Default)]
pub struct Cluster {
    /// Pods with IPs, not on the host network (hostNetwork pods share the
    /// node's address and are no policy peers).
    pub pods: Vec<Pod>,
    pub namespaces: BTreeMap<String, Map<String, Value>>,
}

impl Cluster {
    pub fn new(pods: &[Value], namespaces: &[Value]) -> Cluster {
        let mut pods: Vec<Pod> =
            pods.iter().filter_map(Pod::from_json).filter(|p| !p.host_network && !p.ips.is_empty()).collect();
        pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let namespaces = namespaces
            .iter()
            .filter_map(|ns| {
                let meta = &ns["metadata"];
                Some((
                    meta["name"].as_str()?.to_owned(),
                    meta["labels"].as_object().cloned().unwrap_or_default(),
                ))
            })
            .collect();
        Cluster { pods, namespaces }
    }

    fn namespace_labels(&self, name: &str) -> Map<String, Value> {
        let mut labels = self.namespaces.get(name).cloned().unwrap_or_default();
        // Set by the API server on every namespace since 1.22; present
        // here even when the object lacks it.
        labels.entry("kubernetes.io/metadata.name").or_insert_with(|| Value::String(name.to_owned()));
        labels
    }
}

/// A `metav1.LabelSelector`; invalid ones match nothing (the API server
/// validates policies, so this only guards against garbage).
fn selector(v: Option<&Value>) -> Selector {
    Selector::from_label_selector(v, "").unwrap_or_else(|_| Selector::nothing())
}

/// Inclusive IPv4 ranges, sorted, merged, not overlapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranges(pub Vec<(u32, u32)>);

impl Ranges {
    fn from_unmerged(mut v: Vec<(u32, u32)>) -> Ranges {
        v.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        Ranges(out)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        // The last range starting at or before `ip`.
        let i = self.0.partition_point(|&(a, _)| a <= ip);
        i > 0 && self.0[i - 1].1 >= ip
    }
}

/// `a.b.c.d/n` as an inclusive range.
fn cidr(s: &str) -> Option<(u32, u32)> {
    let (ip, len) = s.split_once('/')?;
    let ip = u32::from(ip.parse::<Ipv4Addr>().ok()?);
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((ip & mask, (ip & mask) | !mask))
}

/// `[a, b]` less every range of `holes`.
fn subtract(range: (u32, u32), holes: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut pieces = vec![range];
    for &(ha, hb) in holes {
        pieces = pieces
            .into_iter()
            .flat_map(|(a, b)| {
                let mut left = Vec::new();
                if hb < a || ha > b {
                    left.push((a, b));
                } else {
                    if ha > a {
                        left.push((a, ha - 1));
                    }
                    if hb < b {
                        left.push((hb + 1, b));
                    }
                }
                left
            })
            .collect();
    }
    pieces
}

/// One `ports` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSpec {
    /// Every port of the protocol (`port` absent).
    All(Protocol),
    /// `port` .. `endPort` (inclusive; equal without `endPort`).
    Range(Protocol, u16, u16),
    /// A container port name.
    Named(Protocol, String),
}

/// Where allowed traffic may come from (ingress) or go to (egress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peers {
    /// `from`/`to` absent or empty.
    Any,
    Ranges(Ranges),
}

impl Peers {
    fn contains(&self, ip: Ipv4Addr) -> bool {
        match self {
            Peers::Any => true,
            Peers::Ranges(r) => r.contains(ip),
        }
    }
}

/// One ingress or egress rule of a policy, peers resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub peers: Peers,
    /// Empty: every port and protocol.
    pub ports: Vec<PortSpec>,
    /// For egress rules with named ports: the (destination IP, protocol,
    /// port) of every peer pod that has such a port (upstream resolves an
    /// egress named port against each destination pod).
    pub named_destinations: BTreeSet<(Ipv4Addr, Protocol, u16)>,
}

/// A NetworkPolicy, its peers resolved against the cluster.
#[derive(Debug, Clone)]
pub struct Policy {
    pub namespace: String,
    pub name: String,
    pod_selector: Selector,
    pub ingress: Option<Vec<Rule>>,
    pub egress: Option<Vec<Rule>>,
}

impl Policy {
    pub fn from_json(policy: &Value, cluster: &Cluster) -> Option<Policy> {
        let meta = &policy["metadata"];
        let namespace = meta["namespace"].as_str()?.to_owned();
        let spec = &policy["spec"];
        let pod_selector = pod_selector(spec);
        let types: Vec<&str> = match spec["policyTypes"].as_array() {
            Some(t) if !t.is_empty() => t.iter().filter_map(Value::as_str).collect(),
            _ if spec["egress"].is_array() => vec!["Ingress", "Egress"],
            _ => vec!["Ingress"],
        };
        let rules = |dir: Direction| -> Option<Vec<Rule>> {
            types.contains(&if dir == Direction::Ingress { "Ingress" } else { "Egress" }).then(|| {
                spec[dir.name()]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| rule(r, dir, &namespace, cluster))
                    .collect()
            })
        };
        Some(Policy {
            name: meta["name"].as_str()?.to_owned(),
            ingress: rules(Direction::Ingress),
            egress: rules(Direction::Egress),
            pod_selector,
            namespace,
        })
    }

    pub fn selects(&self, pod: &Pod) -> bool {
        pod.namespace == self.namespace && self.pod_selector.matches(&pod.labels)
    }

    /// The rules for `dir`; `None` when the policy does not isolate in it.
    pub fn rules(&self, dir: Direction) -> Option<&[Rule]> {
        match dir {
            Direction::Ingress => self.ingress.as_deref(),
            Direction::Egress => self.egress.as_deref(),
        }
    }
}

/// `spec.podSelector`; absent is Go's zero LabelSelector: every pod.
fn pod_selector(spec: &Value) -> Selector {
    selector(Some(spec.get("podSelector").unwrap_or(&Value::Object(Map::new()))))
}

/// Whether `policy` selects any of `pods`: a cheap test, before resolving
/// its peers, that it matters to them at all.
pub fn selects_any(policy: &Value, pods: &[&Pod]) -> bool {
    let Some(namespace) = policy["metadata"]["namespace"].as_str() else { return false };
    let selector = pod_selector(&policy["spec"]);
    pods.iter().any(|p| p.namespace == namespace && selector.matches(&p.labels))
}

fn rule(r: &Value, dir: Direction, namespace: &str, cluster: &Cluster) -> Rule {
    let key = if dir == Direction::Ingress { "from" } else { "to" };
    let peers = match r[key].as_array() {
        Some(list) if !list.is_empty() => Peers::Ranges(Ranges::from_unmerged(
            list.iter().flat_map(|p| peer(p, namespace, cluster)).collect(),
        )),
        _ => Peers::Any,
    };
    let listed = r["ports"].as_array().map_or(0, Vec::len);
    let ports: Vec<PortSpec> = r["ports"].as_array().into_iter().flatten().filter_map(port_spec).collect();
    // Ports we cannot read (an unknown protocol) match nothing: a rule
    // whose every port is such must not become "all ports".
    let peers = if listed > 0 && ports.is_empty() { Peers::Ranges(Ranges::default()) } else { peers };
    let mut named_destinations = BTreeSet::new();
    if dir == Direction::Egress {
        for spec in &ports {
            let PortSpec::Named(proto, name) = spec else { continue };
            for pod in &cluster.pods {
                let Some(number) = pod.named_port(name, *proto) else { continue };
                for ip in pod.ips.iter().filter(|ip| peers.contains(**ip)) {
                    named_destinations.insert((*ip, *proto, number));
                }
            }
        }
    }
    Rule { peers, ports, named_destinations }
}

/// The address ranges of one `NetworkPolicyPeer`.
fn peer(p: &Value, namespace: &str, cluster: &Cluster) -> Vec<(u32, u32)> {
    if let Some(block) = p.get("ipBlock").filter(|b| b.is_object()) {
        let Some(range) = block["cidr"].as_str().and_then(cidr) else { return Vec::new() };
        let holes: Vec<(u32, u32)> = block["except"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str().and_then(cidr))
            .collect();
        return subtract(range, &holes);
    }
    let pods = p.get("podSelector").filter(|s| !s.is_null()).map(|s| selector(Some(s)));
    let namespaces = p.get("namespaceSelector").filter(|s| !s.is_null()).map(|s| selector(Some(s)));
    if pods.is_none() && namespaces.is_none() {
        return Vec::new();
    }
    // Each namespace is matched once, not once per pod.
    let mut matched: BTreeMap<&str, bool> = BTreeMap::new();
    cluster
        .pods
        .iter()
        .filter(|pod| match &namespaces {
            None => pod.namespace == namespace,
            Some(ns) => *matched
                .entry(&pod.namespace)
                .or_insert_with(|| ns.matches(&cluster.namespace_labels(&pod.namespace))),
        })
        .filter(|pod| pods.as_ref().is_none_or(|s| s.matches(&pod.labels)))
        .flat_map(|pod| pod.ips.iter().map(|ip| (u32::from(*ip), u32::from(*ip))))
        .collect()
}

fn port_spec(p: &Value) -> Option<PortSpec> {
    let proto = protocol(p["protocol"].as_str())?;
    Some(match &p["port"] {
        Value::Null => PortSpec::All(proto),
        Value::String(name) => match name.parse::<u16>() {
            Ok(n) => PortSpec::Range(proto, n, n),
            Err(_) => PortSpec::Named(proto, name.clone()),
        },
        v => {
            let start = u16::try_from(v.as_u64()?).ok()?;
            let end = p["endPort"].as_u64().and_then(|e| u16::try_from(e).ok()).unwrap_or(start).max(start);
            PortSpec::Range(proto, start, end)
        }
    })
}

/// What one enforced pod may receive or send in one direction: the rules
/// of every policy selecting it, in order, with the policy's name.
#[derive(Debug, Clone)]
pub struct Isolation<'a> {
    pub rules: Vec<(&'a Policy, usize, &'a Rule)>,
}

/// A pod this node enforces, with its isolation per direction (`None`:
/// not isolated, everything passes).
#[derive(Debug, Clone)]
pub struct Enforced<'a> {
    pub pod: &'a Pod,
    pub ingress: Option<Isolation<'a>>,
    pub egress: Option<Isolation<'a>>,
}

/// The isolation of `pod` in `dir` under `policies`.
pub fn isolation<'a>(pod: &Pod, dir: Direction, policies: &'a [Policy]) -> Option<Isolation<'a>> {
    let mut isolated = false;
    let mut rules = Vec::new();
    for policy in policies.iter().filter(|p| p.selects(pod)) {
        if let Some(rs) = policy.rules(dir) {
            isolated = true;
            rules.extend(rs.iter().enumerate().map(|(i, r)| (policy, i, r)));
        }
    }
    isolated.then_some(Isolation { rules })
}

/// The pods of `node` (with IPv4 addresses, not on the host network) and
/// their isolation.
pub fn enforced<'a>(cluster: &'a Cluster, policies: &'a [Policy], node: &str) -> Vec<Enforced<'a>> {
    cluster
        .pods
        .iter()
        .filter(|p| p.node == node)
        .map(|pod| Enforced {
            pod,
            ingress: isolation(pod, Direction::Ingress, policies),
            egress: isolation(pod, Direction::Egress, policies),
        })
        .collect()
}

/// Whether `iso` (of pod `target`, in `dir`) lets traffic with `peer`
/// (the source for ingress, the destination for egress) on `proto`/`port`
/// through: the user-space reading of what `render` asks the kernel to do.
pub fn allows(
    iso: &Isolation<'_>,
    dir: Direction,
    target: &Pod,
    peer: Ipv4Addr,
    proto: Protocol,
    port: u16,
) -> bool {
    iso.rules.iter().any(|(_, _, rule)| {
        if !rule.peers.contains(peer) {
            return false;
        }
        if rule.ports.is_empty() {
            return true;
        }
        rule.ports.iter().any(|spec| match spec {
            PortSpec::All(p) => *p == proto,
            PortSpec::Range(p, a, b) => *p == proto && (*a..=*b).contains(&port),
            PortSpec::Named(p, name) => {
                *p == proto
                    && match dir {
                        Direction::Ingress => target.named_port(name, *p) == Some(port),
                        Direction::Egress => rule.named_destinations.contains(&(peer, proto, port)),
                    }
            }
        })
    })
}
