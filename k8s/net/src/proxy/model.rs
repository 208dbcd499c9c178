//! Desired state: the service ports this node must proxy, read from
//! Services and EndpointSlices (`serde_json::Value`, as the client hands
//! them over). Pure functions, no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde_json::Value;

/// Transport protocols a Service port may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    fn parse(s: Option<&str>) -> Option<Protocol> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The name nft uses (`meta l4proto tcp`).
    pub fn nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One backend of a service port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    /// On this node (for `externalTrafficPolicy: Local`).
    pub local: bool,
}

/// One port of one Service, with what it needs to be proxied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub namespace: String,
    pub service: String,
    /// The port's name ("" for a Service's single unnamed port).
    pub port_name: String,
    pub protocol: Protocol,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    /// For `type: NodePort` and `LoadBalancer`.
    pub node_port: Option<u16>,
    /// `spec.externalIPs` and load-balancer ingress IPs (IPv4).
    pub external_ips: Vec<Ipv4Addr>,
    /// `sessionAffinity: ClientIP`: seconds a client sticks to its endpoint.
    pub affinity_seconds: Option<u32>,
    /// `externalTrafficPolicy: Local`: external traffic goes only to
    /// endpoints on this node, keeping the client's address.
    pub external_local: bool,
    /// Ready endpoints (or, when none is ready, the serving terminating
    /// ones, as upstream), sorted and without duplicates.
    pub endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// `ns/name/proto/port`: names the port's chains, as upstream.
    pub fn id(&self) -> String {
        format!("{}/{}/{}/{}", self.namespace, self.service, self.protocol.nft(), self.port_name)
    }

    /// Has node ports or external addresses.
    pub fn external(&self) -> bool {
        self.node_port.is_some() || !self.external_ips.is_empty()
    }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn port_number(v: &Value) -> Option<u16> {
    v.as_u64().and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0)
}

/// The IPv4 cluster IP of a Service, or `None` for headless, ExternalName
/// and IPv6-only Services (they get no rules).
fn cluster_ip(svc: &Value) -> Option<Ipv4Addr> {
    if str_at(svc, "/spec/type") == "ExternalName" {
        return None;
    }
    let mut ips: Vec<&str> = svc
        .pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    ips.push(str_at(svc, "/spec/clusterIP"));
    ips.into_iter().find_map(|ip| ip.parse().ok())
}

/// Endpoints of each `(namespace, service, port name, protocol)`, from the
/// IPv4 EndpointSlices.
type Backends = BTreeMap<(String, String, String, Protocol), Candidates>;

#[derive(Default)]
struct Candidates {
    ready: BTreeSet<Endpoint>,
    serving_terminating: BTreeSet<Endpoint>,
}

fn backends(slices: &[Value], node_name: &str) -> Backends {
    let mut out = Backends::new();
    for slice in slices {
        if slice["addressType"].as_str() != Some("IPv4") {
            continue;
        }
        let ns = str_at(slice, "/metadata/namespace");
        let svc = str_at(slice, "/metadata/labels/kubernetes.io~1service-name");
        if svc.is_empty() {
            continue;
        }
        let ports = slice["ports"].as_array().map(Vec::as_slice).unwrap_or_default();
        let endpoints = slice["endpoints"].as_array().map(Vec::as_slice).unwrap_or_default();
        for port in ports {
            let (Some(number), Some(protocol)) =
                (port_number(&port["port"]), Protocol::parse(port["protocol"].as_str()))
            else {
                continue;
            };
            let name = port["name"].as_str().unwrap_or("");
            let entry = out.entry((ns.into(), svc.into(), name.into(), protocol)).or_default();
            for ep in endpoints {
                let Some(ip) =
                    ep.pointer("/addresses/0").and_then(Value::as_str).and_then(|a| a.parse().ok())
                else {
                    continue;
                };
                // Unset conditions mean ready and serving, as upstream.
                let cond = |c: &str, default: bool| ep["conditions"][c].as_bool().unwrap_or(default);
                let ready = cond("ready", true);
                let serving = cond("serving", ready);
                let terminating = cond("terminating", false);
                let local = !node_name.is_empty() && ep["nodeName"].as_str() == Some(node_name);
                let endpoint = Endpoint { ip, port: number, local };
                if ready {
                    entry.ready.insert(endpoint);
                } else if serving && terminating {
                    entry.serving_terminating.insert(endpoint);
                }
            }
        }
    }
    out
}

/// Every service port to proxy on node `node_name` (Services labelled
/// `lichen.dev/node-local: "true"` are answered by each node itself and
/// left out), sorted by
/// namespace, service, protocol and port name.
pub fn desired(services: &[Value], slices: &[Value], node_name: &str) -> Vec<ServicePort> {
    let mut backends = backends(slices, node_name);
    let mut out = Vec::new();
    for svc in services {
        // Served on every node itself (cluster DNS): no DNAT, no reject.
        if str_at(svc, "/metadata/labels/lichen.dev~1node-local") == "true" {
            continue;
        }
        let Some(cluster_ip) = cluster_ip(svc) else { continue };
        let spec = &svc["spec"];
        let kind = spec["type"].as_str().unwrap_or("ClusterIP");
        let with_node_ports = matches!(kind, "NodePort" | "LoadBalancer");
        let mut external_ips: Vec<Ipv4Addr> = spec["externalIPs"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                svc.pointer("/status/loadBalancer/ingress")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|i| &i["ip"]),
            )
            .filter_map(|ip| ip.as_str()?.parse().ok())
            .collect();
        external_ips.sort();
        external_ips.dedup();
        let affinity_seconds = (spec["sessionAffinity"].as_str() == Some("ClientIP")).then(|| {
            spec.pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
                .and_then(Value::as_u64)
                .and_then(|s| u32::try_from(s).ok())
                .unwrap_or(10_800)
        });
        let external_local = spec["externalTrafficPolicy"].as_str() == Some("Local");
        let ns = str_at(svc, "/metadata/namespace");
        let name = str_at(svc, "/metadata/name");
        for port in spec["ports"].as_array().into_iter().flatten() {
            let (Some(number), Some(protocol)) =
                (port_number(&port["port"]), Protocol::parse(port["protocol"].as_str()))
            else {
                continue;
            };
            let port_name = port["name"].as_str().unwrap_or("").to_owned();
            let key = (ns.to_owned(), name.to_owned(), port_name.clone(), protocol);
            let candidates = backends.remove(&key).unwrap_or_default();
            let endpoints =
                if candidates.ready.is_empty() { candidates.serving_terminating } else { candidates.ready };
            out.push(ServicePort {
                namespace: ns.to_owned(),
                service: name.to_owned(),
                port_name,
                protocol,
                cluster_ip,
                port: number,
                node_port: if with_node_ports { port_number(&port["nodePort"]) } else { None },
                external_ips: external_ips.clone(),
                affinity_seconds,
                external_local,
                endpoints: endpoints.into_iter().collect(),
            });
        }
    }
    out.sort_by(|a, b| {
        (&a.namespace, &a.service, a.protocol, &a.port_name).cmp(&(
            &b.namespace,
            &b.service,
            b.protocol,
            &b.port_name,
        ))
    });
    out
}

#[cfg(test)]
mod node_local_tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::desired;

    #[test]
    fn node_local_services_are_not_proxied() {
        let dns = crate::dns::kube_dns_service("10.43.0.10".parse().unwrap());
        let mut plain = dns.clone();
        plain["metadata"]["labels"] = json!({"k8s-app": "kube-dns"});
        plain["metadata"]["name"] = json!("other-dns");
        plain["spec"]["clusterIP"] = json!("10.43.0.11");
        let ports = desired(&[dns, plain], &[], "node-a");
        // Without the label the same Service gets both ports (and, having
        // no endpoints, the reject); with it, nothing at all.
        let ips: Vec<String> = ports.iter().map(|p| p.cluster_ip.to_string()).collect();
        assert_eq!(ips, ["10.43.0.11", "10.43.0.11"]);
        let text = crate::proxy::render(
            &crate::proxy::Config::new("node-a", vec![]),
            &[crate::dns::kube_dns_service("10.43.0.10".parse().unwrap())],
            &[],
        );
        assert!(!text.contains("10.43.0.10"), "{text}");
    }
}
