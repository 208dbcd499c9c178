//! Core-group printers other than Pod, Event and volumes: Namespace,
//! ConfigMap, Secret, ServiceAccount, Service, Endpoints, Node,
//! ReplicationController, PodTemplate, ResourceQuota, ComponentStatus.

use std::collections::BTreeSet;

use serde_json::Value;

use super::docs;
use super::fields::{age, arr_at, get, int_at, len_at, name, opt_int, str_at};
use super::format::{container_cells, format_labels, join_host_port};
use super::quantity::canonical;
use super::{CellsFn, Column, Printer, count};

const NAMESPACE: &[Column] =
    &[Column::name(), Column::string("Status", "The status of the namespace"), Column::age()];

const CONFIG_MAP: &[Column] = &[Column::name(), Column::string("Data", docs::CONFIGMAP_DATA), Column::age()];

const SECRET: &[Column] = &[
    Column::name(),
    Column::string("Type", docs::SECRET_TYPE),
    Column::string("Data", docs::SECRET_DATA),
    Column::age(),
];

const SERVICE_ACCOUNT: &[Column] =
    &[Column::name(), Column::string("Secrets", docs::SA_SECRETS), Column::age()];

const SERVICE: &[Column] = &[
    Column::name(),
    Column::string("Type", docs::SVC_TYPE),
    Column::string("Cluster-IP", docs::SVC_CLUSTER_IP),
    Column::string("External-IP", docs::SVC_EXTERNAL_IPS),
    Column::string("Port(s)", docs::SVC_PORTS),
    Column::age(),
    Column::string("Selector", docs::SVC_SELECTOR).wide(),
];

const ENDPOINTS: &[Column] =
    &[Column::name(), Column::string("Endpoints", docs::ENDPOINTS_SUBSETS), Column::age()];

const NODE: &[Column] = &[
    Column::name(),
    Column::string("Status", "The status of the node"),
    Column::string("Roles", "The roles of the node"),
    Column::age(),
    Column::string("Version", docs::NODE_KUBELET_VERSION),
    Column::string("Internal-IP", docs::NODE_ADDRESSES).wide(),
    Column::string("External-IP", docs::NODE_ADDRESSES).wide(),
    Column::string("OS-Image", docs::NODE_OS_IMAGE).wide(),
    Column::string("Kernel-Version", docs::NODE_KERNEL_VERSION).wide(),
    Column::string("Container-Runtime", docs::NODE_CONTAINER_RUNTIME).wide(),
];

pub(crate) const CONTAINERS_DOC: &str = "Names of each container in the template.";
pub(crate) const IMAGES_DOC: &str = "Images referenced by each container in the template.";

const REPLICATION_CONTROLLER: &[Column] = &[
    Column::name(),
    Column::typed("Desired", "integer", docs::RC_SPEC_REPLICAS),
    Column::typed("Current", "integer", docs::RC_STATUS_REPLICAS),
    Column::typed("Ready", "integer", docs::RC_READY_REPLICAS),
    Column::age(),
    Column::string("Containers", CONTAINERS_DOC).wide(),
    Column::string("Images", IMAGES_DOC).wide(),
    Column::string("Selector", docs::RC_SELECTOR).wide(),
];

const POD_TEMPLATE: &[Column] = &[
    Column::name(),
    Column::string("Containers", "Names of each container in the template."),
    Column::string("Images", "Images referenced by each container in the template."),
    Column::string("Pod Labels", "The labels for the pod template."),
];

const RESOURCE_QUOTA: &[Column] = &[
    Column::name(),
    Column::string(
        "Request",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    Column::string(
        "Limit",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    Column::age(),
];

const COMPONENT_STATUS: &[Column] = &[
    Column::name(),
    Column::string("Status", "Status of the component conditions"),
    Column::string("Message", "Message of the component conditions"),
    Column::string("Error", "Error of the component conditions"),
];

pub(super) fn printer(kind: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Column], CellsFn) = match kind {
        "Namespace" => (NAMESPACE, |o, now| cells![name(o), str_at(o, &["status", "phase"]), age(o, now)]),
        "ConfigMap" => (CONFIG_MAP, |o, now| {
            cells![name(o), count(len_at(o, &["data"]) + len_at(o, &["binaryData"])), age(o, now)]
        }),
        "Secret" => (SECRET, secret),
        "ServiceAccount" => {
            (SERVICE_ACCOUNT, |o, now| cells![name(o), count(len_at(o, &["secrets"])), age(o, now)])
        }
        "Service" => (SERVICE, service),
        "Endpoints" => (ENDPOINTS, |o, now| cells![name(o), format_endpoints(o), age(o, now)]),
        "Node" => (NODE, node),
        "ReplicationController" => (REPLICATION_CONTROLLER, replication_controller),
        "PodTemplate" => (POD_TEMPLATE, |o, _| {
            let (names, images) = container_cells(arr_at(o, &["template", "spec", "containers"]));
            cells![name(o), names, images, format_labels(get(o, &["template", "metadata", "labels"]))]
        }),
        "ResourceQuota" => (RESOURCE_QUOTA, resource_quota),
        "ComponentStatus" => (COMPONENT_STATUS, component_status),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

fn secret(o: &Value, now: i64) -> Vec<Value> {
    // The internal Secret merges write-only `stringData` into `data`.
    let keys: BTreeSet<&String> = ["data", "stringData"]
        .iter()
        .filter_map(|f| get(o, &[f]).and_then(Value::as_object))
        .flat_map(|m| m.keys())
        .collect();
    cells![name(o), str_at(o, &["type"]), count(keys.len()), age(o, now)]
}

fn service(o: &Value, now: i64) -> Vec<Value> {
    let cluster_ip = arr_at(o, &["spec", "clusterIPs"]).first().and_then(Value::as_str).unwrap_or("<none>");
    let ports: Vec<String> = arr_at(o, &["spec", "ports"])
        .iter()
        .map(|p| {
            let (port, proto) = (int_at(p, &["port"]), str_at(p, &["protocol"]));
            match int_at(p, &["nodePort"]) {
                n if n > 0 => format!("{port}:{n}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect();
    let ports = if ports.is_empty() { "<none>".to_string() } else { ports.join(",") };
    cells![
        name(o),
        str_at(o, &["spec", "type"]),
        cluster_ip,
        service_external_ip(o),
        ports,
        age(o, now),
        format_labels(get(o, &["spec", "selector"])),
    ]
}

/// Upstream's `getServiceExternalIP` (wide, so never clipped).
fn service_external_ip(o: &Value) -> String {
    let external: Vec<&str> = arr_at(o, &["spec", "externalIPs"]).iter().filter_map(Value::as_str).collect();
    match str_at(o, &["spec", "type"]) {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".to_string(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let mut all: Vec<String> =
                load_balancer_ingress(arr_at(o, &["status", "loadBalancer", "ingress"]));
            all.extend(external.iter().map(|s| s.to_string()));
            if all.is_empty() { "<pending>".to_string() } else { all.join(",") }
        }
        "ExternalName" => str_at(o, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// The sorted, de-duplicated IPs (or hostnames) of load balancer ingress
/// points (`loadBalancerStatusStringer`).
pub(crate) fn load_balancer_ingress(ingress: &[Value]) -> Vec<String> {
    let set: BTreeSet<&str> = ingress
        .iter()
        .filter_map(|i| match (str_at(i, &["ip"]), str_at(i, &["hostname"])) {
            ("", "") => None,
            ("", host) => Some(host),
            (ip, _) => Some(ip),
        })
        .collect();
    set.into_iter().map(str::to_string).collect()
}

/// `formatEndpoints`: up to three `ip:port`, then `+ N more...`.
fn format_endpoints(o: &Value) -> String {
    let subsets = arr_at(o, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let (mut list, mut count, mut more) = (Vec::new(), 0usize, false);
    for ss in subsets {
        let addrs = arr_at(ss, &["addresses"]);
        let ports = arr_at(ss, &["ports"]);
        let port_numbers: Vec<Option<i64>> = if ports.is_empty() {
            vec![None]
        } else {
            ports.iter().map(|p| Some(int_at(p, &["port"]))).collect()
        };
        for port in port_numbers {
            count += addrs.len();
            for addr in addrs {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                let ip = str_at(addr, &["ip"]);
                list.push(port.map_or_else(|| ip.to_string(), |p| join_host_port(ip, p)));
            }
        }
    }
    let joined = list.join(",");
    if more { format!("{joined} + {} more...", count - MAX) } else { joined }
}

fn node(o: &Value, now: i64) -> Vec<Value> {
    // The last condition of a type wins, as in upstream's condition map.
    let ready = arr_at(o, &["status", "conditions"]).iter().rev().find(|c| str_at(c, &["type"]) == "Ready");
    let mut status = vec![match ready.map(|c| str_at(c, &["status"])) {
        Some("True") => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if super::fields::bool_at(o, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }
    let info = |field: &str| match str_at(o, &["status", "nodeInfo", field]) {
        "" => "<unknown>".to_string(),
        s => s.to_string(),
    };
    cells![
        name(o),
        status.join(","),
        node_roles(o),
        age(o, now),
        str_at(o, &["status", "nodeInfo", "kubeletVersion"]),
        node_address(o, "InternalIP"),
        node_address(o, "ExternalIP"),
        info("osImage"),
        info("kernelVersion"),
        info("containerRuntimeVersion"),
    ]
}

/// `findNodeRoles`: `node-role.kubernetes.io/<role>` label keys and the
/// value of `kubernetes.io/role`, sorted and de-duplicated.
fn node_roles(o: &Value) -> String {
    let Some(Value::Object(labels)) = get(o, &["metadata", "labels"]) else { return "<none>".to_string() };
    let roles: BTreeSet<&str> = labels
        .iter()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => Some(role),
            Some(_) => None,
            None if k == "kubernetes.io/role" => v.as_str().filter(|s| !s.is_empty()),
            None => None,
        })
        .collect();
    if roles.is_empty() { "<none>".to_string() } else { roles.into_iter().collect::<Vec<_>>().join(",") }
}

fn node_address(o: &Value, type_: &str) -> String {
    arr_at(o, &["status", "addresses"])
        .iter()
        .find(|a| str_at(a, &["type"]) == type_)
        .map_or_else(|| "<none>".to_string(), |a| str_at(a, &["address"]).to_string())
}

fn replication_controller(o: &Value, now: i64) -> Vec<Value> {
    let (names, images) = container_cells(arr_at(o, &["spec", "template", "spec", "containers"]));
    cells![
        name(o),
        opt_int(o, &["spec", "replicas"]).unwrap_or(1),
        int_at(o, &["status", "replicas"]),
        int_at(o, &["status", "readyReplicas"]),
        age(o, now),
        names,
        images,
        format_labels(get(o, &["spec", "selector"])),
    ]
}

fn resource_quota(o: &Value, now: i64) -> Vec<Value> {
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    if let Some(Value::Object(hard)) = get(o, &["status", "hard"]) {
        let mut resources: Vec<&String> = hard.keys().collect();
        resources.sort();
        for resource in resources {
            let quantity =
                |v: Option<&Value>| v.and_then(Value::as_str).map_or_else(|| "0".to_string(), canonical);
            let used = quantity(get(o, &["status", "used", resource]));
            let limit = quantity(hard.get(resource));
            let entry = format!("{resource}: {used}/{limit}");
            let pieces: Vec<&str> = resource.split('.').collect();
            if pieces.len() > 1 && pieces[0] == "limits" { limits.push(entry) } else { requests.push(entry) }
        }
    }
    cells![name(o), requests.join(", "), limits.join(", "), age(o, now)]
}

fn component_status(o: &Value, _: i64) -> Vec<Value> {
    let healthy = arr_at(o, &["conditions"]).iter().find(|c| str_at(c, &["type"]) == "Healthy");
    let status = match healthy.map(|c| str_at(c, &["status"])) {
        Some("True") => "Healthy",
        Some(_) => "Unhealthy",
        None => "Unknown",
    };
    let field = |f: &str| healthy.map_or("", |c| str_at(c, &[f]));
    cells![name(o), status, field("message"), field("error")]
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
