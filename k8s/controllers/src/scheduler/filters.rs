//! Filters: can this pod run on this node? Each returns upstream's reason
//! when it cannot, so the FailedScheduling message reads like upstream's.
//! Order as upstream's default plugins: NodeUnschedulable, TaintToleration,
//! NodeAffinity, NodePorts, NodeResourcesFit, InterPodAffinity.

use std::collections::HashMap;

use lichen_apimachinery::selector::Selector;
use serde_json::Value;

use super::cache::{Cache, NodeInfo};
use crate::meta;

pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Why a node does not fit: one or more upstream reasons.
pub type Reasons = Vec<String>;

/// Upstream's `ToleratesTaint`.
pub fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let t_effect = toleration["effect"].as_str().unwrap_or("");
    if !t_effect.is_empty() && t_effect != taint["effect"].as_str().unwrap_or("") {
        return false;
    }
    let key = toleration["key"].as_str().unwrap_or("");
    if !key.is_empty() && key != taint["key"].as_str().unwrap_or("") {
        return false;
    }
    match toleration["operator"].as_str().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty()
                && toleration["value"].as_str().unwrap_or("") == taint["value"].as_str().unwrap_or("")
        }
        _ => false,
    }
}

pub fn tolerated(pod: &Value, taint: &Value) -> bool {
    pod["spec"]["tolerations"].as_array().into_iter().flatten().any(|t| tolerates(t, taint))
}

pub fn taints(node: &Value) -> impl Iterator<Item = &Value> {
    node["spec"]["taints"].as_array().into_iter().flatten()
}

fn node_unschedulable(pod: &Value, node: &Value) -> Option<String> {
    if node["spec"]["unschedulable"] != true {
        return None;
    }
    let taint = serde_json::json!({"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"});
    (!tolerated(pod, &taint)).then(|| "node(s) were unschedulable".to_owned())
}

fn taint_toleration(pod: &Value, node: &Value) -> Option<String> {
    let blocking = taints(node)
        .find(|t| matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute")) && !tolerated(pod, t))?;
    Some(format!(
        "node(s) had untolerated taint {{{}: {}}}",
        blocking["key"].as_str().unwrap_or(""),
        blocking["value"].as_str().unwrap_or("")
    ))
}

/// A `nodeSelectorTerm`: all its expressions and fields match.
fn term_matches(term: &Value, node: &Value) -> bool {
    let labels = &node["metadata"]["labels"];
    let exprs = term["matchExpressions"].as_array().into_iter().flatten();
    let fields = term["matchFields"].as_array().into_iter().flatten();
    let mut any = false;
    for e in exprs {
        any = true;
        let key = e["key"].as_str().unwrap_or("");
        if !expression_matches(e, labels[key].as_str()) {
            return false;
        }
    }
    for f in fields {
        any = true;
        let value = (f["key"] == "metadata.name").then(|| meta::name(node));
        if !expression_matches(f, value) {
            return false;
        }
    }
    // A term without requirements matches nothing, as upstream.
    any
}

fn expression_matches(e: &Value, value: Option<&str>) -> bool {
    let values: Vec<&str> = e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    match e["operator"].as_str().unwrap_or("") {
        "In" => value.is_some_and(|v| values.contains(&v)),
        "NotIn" => value.is_none_or(|v| !values.contains(&v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if op == "Gt" { v > bound } else { v < bound }
        }
        _ => false,
    }
}

/// nodeSelector and required node affinity.
pub fn node_affinity_matches(pod: &Value, node: &Value) -> bool {
    let labels = &node["metadata"]["labels"];
    for (k, v) in pod["spec"]["nodeSelector"].as_object().into_iter().flatten() {
        if labels[k] != *v {
            return false;
        }
    }
    let required = &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    match required["nodeSelectorTerms"].as_array() {
        Some(terms) if !required.is_null() => terms.iter().any(|t| term_matches(t, node)),
        _ => true,
    }
}

fn node_affinity(pod: &Value, node: &Value) -> Option<String> {
    (!node_affinity_matches(pod, node))
        .then(|| "node(s) didn't match Pod's node affinity/selector".to_owned())
}

fn ports_conflict(a: &(String, String, i64), b: &(String, String, i64)) -> bool {
    a.0 == b.0 && a.2 == b.2 && (a.1 == b.1 || a.1 == "0.0.0.0" || b.1 == "0.0.0.0")
}

fn node_ports(wanted: &[(String, String, i64)], info: &NodeInfo) -> Option<String> {
    if wanted.is_empty() || info.with_ports == 0 {
        return None;
    }
    let taken = info.pods.values().flat_map(|p| p.ports.iter());
    let mut conflict = false;
    for t in taken {
        conflict |= wanted.iter().any(|w| ports_conflict(w, t));
    }
    conflict.then(|| "node(s) didn't have free ports for the requested pod ports".to_owned())
}

fn resources_fit(requests: &super::resources::Resources, info: &NodeInfo) -> Reasons {
    let alloc = info.allocatable();
    let mut reasons = Vec::new();
    let max_pods = alloc.0.get("pods").copied().unwrap_or(110);
    if i64::try_from(info.pods.len()).unwrap_or(i64::MAX) + 1 > max_pods {
        reasons.push("Too many pods".to_owned());
    }
    for (name, want) in &requests.0 {
        if *want <= 0 || name == "pods" {
            continue;
        }
        let free = alloc.get(name) - info.requested.get(name);
        if *want > free {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

/// A pod affinity term: which pods it selects and over which topology.
struct Term<'a> {
    selector: Selector,
    namespaces: Option<Vec<String>>,
    topology_key: &'a str,
}

impl<'a> Term<'a> {
    fn parse(term: &'a Value, own_namespace: &str, ns_labels: &HashMap<String, Value>) -> Term<'a> {
        let selector = Selector::from_label_selector(term.get("labelSelector"), "labelSelector")
            .unwrap_or_else(|_| Selector::nothing());
        let mut listed: Vec<String> = term["namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(String::from))
            .collect();
        let namespaces = match term.get("namespaceSelector") {
            None | Some(Value::Null) => {
                if listed.is_empty() {
                    listed.push(own_namespace.to_owned());
                }
                Some(listed)
            }
            Some(sel) => {
                let sel = Selector::from_label_selector(Some(sel), "namespaceSelector")
                    .unwrap_or_else(|_| Selector::nothing());
                if sel.is_empty() {
                    None
                } else {
                    for (ns, labels) in ns_labels {
                        if sel.matches_object(&serde_json::json!({"metadata": {"labels": labels}})) {
                            listed.push(ns.clone());
                        }
                    }
                    Some(listed)
                }
            }
        };
        Term { selector, namespaces, topology_key: term["topologyKey"].as_str().unwrap_or("") }
    }

    fn selects(&self, pod: &Value) -> bool {
        let ns = meta::namespace(pod);
        self.namespaces.as_ref().is_none_or(|l| l.iter().any(|n| n == ns))
            && self.selector.matches_object(pod)
    }
}

fn required_terms<'a>(pod: &'a Value, kind: &str) -> impl Iterator<Item = &'a Value> {
    pod["spec"]["affinity"][kind]["requiredDuringSchedulingIgnoredDuringExecution"]
        .as_array()
        .into_iter()
        .flatten()
}

fn topology<'a>(node: Option<&'a Value>, key: &str) -> Option<&'a str> {
    node?["metadata"]["labels"][key].as_str()
}

/// Inter-pod affinity and anti-affinity, required terms only.
fn inter_pod_affinity(
    pod: &Value,
    info: &NodeInfo,
    cache: &Cache,
    ns_labels: &HashMap<String, Value>,
) -> Option<String> {
    let node = info.node.as_deref();
    let own_ns = meta::namespace(pod);
    // Existing pods whose anti-affinity rejects this pod in this domain
    // (only the few pods that have such terms are visited).
    for other in cache.nodes.values().filter(|n| n.with_anti_affinity > 0) {
        for p in other.pods.values().filter(|p| p.anti_affinity) {
            for t in required_terms(&p.pod, "podAntiAffinity") {
                let term = Term::parse(t, meta::namespace(&p.pod), ns_labels);
                if !term.selects(pod) {
                    continue;
                }
                let here = topology(node, term.topology_key);
                if here.is_some() && here == topology(other.node.as_deref(), term.topology_key) {
                    return Some("node(s) didn't satisfy existing pods anti-affinity rules".to_owned());
                }
            }
        }
    }
    for t in required_terms(pod, "podAntiAffinity") {
        let term = Term::parse(t, own_ns, ns_labels);
        let Some(here) = topology(node, term.topology_key) else { continue };
        let clash = cache.nodes.values().any(|other| {
            topology(other.node.as_deref(), term.topology_key) == Some(here)
                && other.pods.values().any(|p| term.selects(&p.pod))
        });
        if clash {
            return Some("node(s) didn't match pod anti-affinity rules".to_owned());
        }
    }
    for t in required_terms(pod, "podAffinity") {
        let term = Term::parse(t, own_ns, ns_labels);
        let here = topology(node, term.topology_key);
        let satisfied = here.is_some()
            && cache.nodes.values().any(|other| {
                topology(other.node.as_deref(), term.topology_key) == here
                    && other.pods.values().any(|p| term.selects(&p.pod))
            });
        // The first pod of a group that selects itself may go anywhere the
        // topology key exists, as upstream.
        let first_of_group = here.is_some()
            && term.selects(pod)
            && !cache.nodes.values().any(|o| o.pods.values().any(|p| term.selects(&p.pod)));
        if !satisfied && !first_of_group {
            return Some("node(s) didn't match pod affinity rules".to_owned());
        }
    }
    None
}

/// Runs the filters in upstream's order; the first that fails decides.
pub fn check(
    pod: &Value,
    requests: &super::resources::Resources,
    ports: &[(String, String, i64)],
    info: &NodeInfo,
    cache: &Cache,
    ns_labels: &HashMap<String, Value>,
) -> Result<(), Reasons> {
    let Some(node) = info.node.as_deref() else { return Err(vec!["node(s) not found".into()]) };
    let single = [node_unschedulable(pod, node), taint_toleration(pod, node), node_affinity(pod, node)];
    if let Some(r) = single.into_iter().flatten().next() {
        return Err(vec![r]);
    }
    if let Some(r) = node_ports(ports, info) {
        return Err(vec![r]);
    }
    let fit = resources_fit(requests, info);
    if !fit.is_empty() {
        return Err(fit);
    }
    if let Some(r) = inter_pod_affinity(pod, info, cache, ns_labels) {
        return Err(vec![r]);
    }
    Ok(())
}

/// Upstream's FitError text: "0/3 nodes are available: 1 node(s) had
/// untolerated taint {a: b}, 2 Insufficient cpu." (counts per reason,
/// sorted as strings).
pub fn fit_error(total: usize, reasons: &[Reasons]) -> String {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for rs in reasons {
        for r in rs {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    let mut parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    let mut msg = format!("0/{total} nodes are available");
    if parts.is_empty() {
        msg.push('.');
    } else {
        msg.push_str(&format!(": {}.", parts.join(", ")));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tolerations_match_as_upstream() {
        let taint = json!({"key": "k", "value": "v", "effect": "NoSchedule"});
        assert!(tolerates(&json!({"key": "k", "operator": "Equal", "value": "v"}), &taint));
        assert!(tolerates(&json!({"key": "k", "value": "v", "effect": "NoSchedule"}), &taint));
        assert!(!tolerates(&json!({"key": "k", "value": "w"}), &taint));
        assert!(!tolerates(&json!({"key": "k", "value": "v", "effect": "NoExecute"}), &taint));
        assert!(tolerates(&json!({"operator": "Exists"}), &taint));
        assert!(tolerates(&json!({"key": "k", "operator": "Exists"}), &taint));
        assert!(!tolerates(&json!({"key": "", "operator": "Equal"}), &taint));
    }

    #[test]
    fn node_affinity_terms_are_ored_and_expressions_anded() {
        let node = json!({"metadata": {"name": "n1", "labels": {"zone": "a", "size": "8"}}});
        let pod = |aff: Value| json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": aff}}}}});
        assert!(node_affinity_matches(
            &pod(json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}])),
            &node
        ));
        assert!(!node_affinity_matches(
            &pod(
                json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}, {"key": "size", "operator": "Gt", "values": ["8"]}]}])
            ),
            &node
        ));
        assert!(node_affinity_matches(
            &pod(
                json!([{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}, {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}])
            ),
            &node
        ));
        assert!(!node_affinity_matches(&pod(json!([{}])), &node));
        assert!(!node_affinity_matches(&json!({"spec": {"nodeSelector": {"zone": "b"}}}), &node));
    }

    #[test]
    fn fit_error_reads_like_upstream() {
        let reasons = vec![
            vec!["node(s) had untolerated taint {dedicated: gpu}".to_owned()],
            vec!["Insufficient cpu".to_owned()],
            vec!["Insufficient cpu".to_owned(), "Insufficient memory".to_owned()],
        ];
        assert_eq!(
            fit_error(3, &reasons),
            "0/3 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu."
        );
        assert_eq!(fit_error(0, &[]), "0/0 nodes are available.");
    }
}
