//! `networking.k8s.io` and `discovery.k8s.io` printers: Ingress,
//! IngressClass, NetworkPolicy, ServiceCIDR, IPAddress, EndpointSlice.

use serde_json::Value;

use super::core::load_balancer_ingress;
use super::docs;
use super::fields::{age, arr_at, get, is_set, name, opt_int, opt_str, str_at};
use super::format::{format_label_selector, list_with_more};
use super::{CellsFn, Column, Printer};

const INGRESS: &[Column] = &[
    Column::name(),
    Column::string(
        "Class",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    Column::string("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
    Column::string("Address", "Address is a list containing ingress points for the load-balancer"),
    Column::string("Ports", "Ports of TLS configurations that open"),
    Column::age(),
];

const INGRESS_CLASS: &[Column] = &[
    Column::name(),
    Column::string("Controller", "Controller that is responsible for handling this class"),
    Column::string("Parameters", "A reference to a resource with additional parameters"),
    Column::age(),
];

const NETWORK_POLICY: &[Column] =
    &[Column::name(), Column::string("Pod-Selector", docs::NETPOL_POD_SELECTOR), Column::age()];

const SERVICE_CIDR: &[Column] =
    &[Column::name(), Column::string("CIDRs", docs::SERVICE_CIDRS), Column::age()];

// Upstream declares two columns but prints an Age cell too.
const IP_ADDRESS: &[Column] = &[Column::name(), Column::string("ParentRef", docs::IPADDRESS_PARENT_REF)];

const ENDPOINT_SLICE: &[Column] = &[
    Column::name(),
    Column::string("AddressType", docs::EPS_ADDRESS_TYPE),
    Column::string("Ports", docs::EPS_PORTS),
    Column::string("Endpoints", docs::EPS_ENDPOINTS),
    Column::age(),
];

pub(super) fn printer(group: &str, kind: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Column], CellsFn) = match (group, kind) {
        ("networking.k8s.io", "Ingress") => (INGRESS, ingress),
        ("networking.k8s.io", "IngressClass") => (INGRESS_CLASS, ingress_class),
        ("networking.k8s.io", "NetworkPolicy") => (NETWORK_POLICY, |o, now| {
            cells![name(o), format_label_selector(get(o, &["spec", "podSelector"])), age(o, now)]
        }),
        ("networking.k8s.io", "ServiceCIDR") => (SERVICE_CIDR, |o, now| {
            let cidrs: Vec<&str> = arr_at(o, &["spec", "cidrs"]).iter().filter_map(Value::as_str).collect();
            cells![name(o), cidrs.join(","), age(o, now)]
        }),
        ("networking.k8s.io", "IPAddress") => (IP_ADDRESS, ip_address),
        ("discovery.k8s.io", "EndpointSlice") => (ENDPOINT_SLICE, endpoint_slice),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

fn ingress(o: &Value, now: i64) -> Vec<Value> {
    // `formatHosts`: up to three hosts; the count of the rest includes
    // rules without a host.
    const MAX: usize = 3;
    let rules = arr_at(o, &["spec", "rules"]);
    let (mut hosts, mut more) = (Vec::new(), false);
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            hosts.push(host);
        }
    }
    let hosts = match (hosts.is_empty(), more) {
        (true, _) => "*".to_string(),
        (false, true) => format!("{} + {} more...", hosts.join(","), rules.len() - MAX),
        (false, false) => hosts.join(","),
    };
    let ports = if arr_at(o, &["spec", "tls"]).is_empty() { "80" } else { "80, 443" };
    cells![
        name(o),
        opt_str(o, &["spec", "ingressClassName"]).unwrap_or("<none>"),
        hosts,
        load_balancer_ingress(arr_at(o, &["status", "loadBalancer", "ingress"])).join(","),
        ports,
        age(o, now),
    ]
}

fn ingress_class(o: &Value, now: i64) -> Vec<Value> {
    let parameters = if is_set(o, &["spec", "parameters"]) {
        let p = |f: &str| str_at(o, &["spec", "parameters", f]);
        match opt_str(o, &["spec", "parameters", "apiGroup"]) {
            Some(group) => format!("{}.{group}/{}", p("kind"), p("name")),
            None => format!("{}/{}", p("kind"), p("name")),
        }
    } else {
        "<none>".to_string()
    };
    cells![name(o), str_at(o, &["spec", "controller"]), parameters, age(o, now)]
}

fn ip_address(o: &Value, now: i64) -> Vec<Value> {
    let parent = if is_set(o, &["spec", "parentRef"]) {
        let p = |f: &str| str_at(o, &["spec", "parentRef", f]);
        // `schema.GroupResource.String()`, lowercased.
        let mut s = match p("group") {
            "" => p("resource").to_lowercase(),
            g => format!("{}.{}", p("resource"), g).to_lowercase(),
        };
        if !p("namespace").is_empty() {
            s = format!("{s}/{}", p("namespace"));
        }
        format!("{s}/{}", p("name"))
    } else {
        "<none>".to_string()
    };
    cells![name(o), parent, age(o, now)]
}

fn endpoint_slice(o: &Value, now: i64) -> Vec<Value> {
    let ports: Vec<String> = arr_at(o, &["ports"])
        .iter()
        .map(|p| match (opt_int(p, &["port"]), opt_str(p, &["name"])) {
            (Some(port), _) => port.to_string(),
            (None, Some(n)) => n.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let addresses: Vec<String> = arr_at(o, &["endpoints"])
        .iter()
        .flat_map(|e| arr_at(e, &["addresses"]).iter().filter_map(Value::as_str).map(str::to_string))
        .collect();
    cells![
        name(o),
        str_at(o, &["addressType"]),
        list_with_more(&ports, 3),
        list_with_more(&addresses, 3),
        age(o, now)
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::printers::testing::{ago, names, row};

    #[test]
    fn ingress_hosts_address_ports() {
        assert_eq!(
            names("networking.k8s.io", "Ingress"),
            ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
        );
        let ing = json!({"metadata": {"name": "web", "creationTimestamp": ago(30)},
            "spec": {"ingressClassName": "traefik", "tls": [{"hosts": ["a.example.com"]}],
                     "rules": [{"host": "a.example.com"}, {}, {"host": "b.example.com"}, {"host": "c.example.com"}, {"host": "d.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}, {"hostname": "lb.example.com"}]}}});
        assert_eq!(
            row("networking.k8s.io", "Ingress", &ing),
            cells![
                "web",
                "traefik",
                "a.example.com,b.example.com,c.example.com + 2 more...",
                "192.0.2.10,lb.example.com",
                "80, 443",
                "30s"
            ]
        );
        let bare = json!({"metadata": {"name": "x"}, "spec": {"defaultBackend": {}}});
        assert_eq!(row("networking.k8s.io", "Ingress", &bare)[1..5], cells!["<none>", "*", "", "80"]);
    }

    #[test]
    fn ingress_class_network_policy_service_cidr_ip_address() {
        let ic = json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
        assert_eq!(
            row("networking.k8s.io", "IngressClass", &ic)[1..3],
            cells!["k8s.io/ingress-nginx", "IngressParameters.k8s.example.com/external-lb"]
        );
        let np = json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {}}});
        assert_eq!(row("networking.k8s.io", "NetworkPolicy", &np)[1], "<none>");
        let np =
            json!({"metadata": {"name": "db"}, "spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
        assert_eq!(row("networking.k8s.io", "NetworkPolicy", &np)[1], "role=db");
        let cidr =
            json!({"metadata": {"name": "kubernetes"}, "spec": {"cidrs": ["10.43.0.0/16", "fd00:43::/112"]}});
        assert_eq!(row("networking.k8s.io", "ServiceCIDR", &cidr)[1], "10.43.0.0/16,fd00:43::/112");
        let ip = json!({"metadata": {"name": "10.43.0.1"}, "spec": {"parentRef": {"group": "", "resource": "services", "namespace": "default", "name": "kubernetes"}}});
        let cells =
            crate::printers::cells("networking.k8s.io", "IPAddress", &ip, crate::printers::testing::NOW);
        assert_eq!(cells, cells!["10.43.0.1", "services/default/kubernetes", "<unknown>"]);
    }

    #[test]
    fn endpoint_slice_ports_and_endpoints() {
        let eps = json!({"metadata": {"name": "web-abc"}, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80}, {"name": "named"}, {}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]}, {"addresses": ["10.0.0.4"]}]});
        assert_eq!(
            row("discovery.k8s.io", "EndpointSlice", &eps),
            cells!["web-abc", "IPv4", "80,named,*", "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...", "<unknown>"]
        );
        let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv6"});
        assert_eq!(row("discovery.k8s.io", "EndpointSlice", &empty)[2..4], cells!["<unset>", "<unset>"]);
    }
}
