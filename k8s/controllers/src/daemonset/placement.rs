//! Which nodes run a daemon pod and what that pod looks like, as
//! upstream's `nodeShouldRunDaemonPod`, `podsShouldBeOnNode` and
//! `CreatePodTemplate`. Pure functions over JSON.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::meta;
use crate::scheduler::{node_affinity_matches, tolerated};

/// The label carrying the template's hash (upstream's
/// `DefaultDaemonSetUniqueLabelKey`).
pub const HASH_LABEL: &str = "controller-revision-hash";
/// The label carrying the DaemonSet's template generation.
pub const GENERATION_LABEL: &str = "pod-template-generation";
/// Where the API server keeps the template generation (apps/v1).
pub const GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// Upstream's `AddOrUpdateDaemonPodTolerations`: daemon pods stay on
/// nodes that are not ready, unreachable, under pressure or cordoned.
pub fn add_default_tolerations(spec: &mut Value) {
    let mut wanted = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec["hostNetwork"] == true {
        wanted.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let mut tolerations: Vec<Value> = spec["tolerations"].as_array().cloned().unwrap_or_default();
    for (key, effect) in wanted {
        // Upstream's AddOrUpdateTolerationInPodSpec: a toleration with the
        // same key, operator, value and effect is replaced.
        tolerations.retain(|t| {
            !(t["key"] == key
                && t["operator"] == "Exists"
                && t["effect"] == effect
                && t["value"].as_str().unwrap_or("").is_empty())
        });
        tolerations.push(json!({"key": key, "operator": "Exists", "effect": effect}));
    }
    spec["tolerations"] = json!(tolerations);
}

/// The template daemon pods are made from (upstream's `CreatePodTemplate`).
pub fn pod_template(ds: &Value, hash: &str, generation: i64) -> Value {
    let mut t = ds["spec"]["template"].clone();
    if !t["spec"].is_object() {
        t["spec"] = json!({});
    }
    add_default_tolerations(&mut t["spec"]);
    if !t["metadata"]["labels"].is_object() {
        t["metadata"]["labels"] = json!({});
    }
    t["metadata"]["labels"][GENERATION_LABEL] = json!(generation.to_string());
    if !hash.is_empty() {
        t["metadata"]["labels"][HASH_LABEL] = json!(hash);
    }
    t
}

/// The DaemonSet's template generation, where the API server keeps one.
pub fn template_generation(ds: &Value) -> Option<i64> {
    meta::annotation(ds, GENERATION_ANNOTATION).and_then(|g| g.parse().ok())
}

/// Upstream's `ReplaceDaemonSetPodNodeNameNodeAffinity`: the pod requires
/// exactly `node` (by `metadata.name`), replacing any required terms (the
/// controller has checked them already); the scheduler then binds it.
pub fn pin_to_node(spec: &mut Value, node: &str) {
    let term = json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]});
    if !spec["affinity"].is_object() {
        spec["affinity"] = json!({});
    }
    if !spec["affinity"]["nodeAffinity"].is_object() {
        spec["affinity"]["nodeAffinity"] = json!({});
    }
    spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
        json!({"nodeSelectorTerms": [term]});
}

/// A daemon pod for `node` from `template`.
pub fn pod_for_node(ds: &Value, template: &Value, node: &str) -> Value {
    let mut pod = crate::replicaset::pod_from_template(
        template,
        meta::namespace(ds),
        &format!("{}-", meta::name(ds)),
        meta::owner_ref(ds, "apps/v1", "DaemonSet"),
    );
    pin_to_node(&mut pod["spec"], node);
    pod
}

/// The node a daemon pod is on or meant for: its `nodeName`, or the node
/// its affinity pins it to (upstream's `GetTargetNodeName`).
pub fn target_node(pod: &Value) -> Option<&str> {
    if let Some(n) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    let terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"]
        .as_array()?;
    terms.iter().find_map(|t| {
        t["matchFields"].as_array()?.iter().find_map(|f| {
            let values = f["values"].as_array()?;
            (f["key"] == "metadata.name" && f["operator"] == "In" && values.len() == 1)
                .then(|| values[0].as_str())
                .flatten()
        })
    })
}

/// Upstream's `NodeShouldRunDaemonPod`: (should run a pod there, may keep
/// one running there). A node whose taints are only NoSchedule keeps the
/// pods it has.
pub fn should_run(node: &Value, ds: &Value) -> (bool, bool) {
    let mut pod = json!({"spec": ds["spec"]["template"]["spec"].clone()});
    if !pod["spec"].is_object() {
        pod["spec"] = json!({});
    }
    add_default_tolerations(&mut pod["spec"]);
    let name = meta::name(node);
    if let Some(n) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())
        && n != name
    {
        return (false, false);
    }
    if !node_affinity_matches(&pod, node) {
        return (false, false);
    }
    let taints: Vec<&Value> = node["spec"]["taints"].as_array().into_iter().flatten().collect();
    let untolerated = |effects: &[&str]| {
        taints.iter().any(|t| effects.contains(&t["effect"].as_str().unwrap_or("")) && !tolerated(&pod, t))
    };
    if untolerated(&["NoSchedule", "NoExecute"]) {
        return (false, !untolerated(&["NoExecute"]));
    }
    (true, true)
}

/// Upstream's `podByCreationTimestampAndPhase`: bound pods first, then
/// oldest, then by name.
pub fn oldest_first(pods: &mut [&Value]) {
    pods.sort_by(|a, b| {
        let unbound = |p: &Value| p["spec"]["nodeName"].as_str().unwrap_or("").is_empty();
        (unbound(a), meta::creation(a), meta::name(a)).cmp(&(unbound(b), meta::creation(b), meta::name(b)))
    });
}

/// What one node needs (upstream's `podsShouldBeOnNode`, the failed pods
/// left to the caller's back-off).
#[derive(Debug, Default, PartialEq)]
pub struct NodePlan {
    /// A daemon pod should be created on the node.
    pub create: bool,
    /// Pods to delete (names).
    pub delete: Vec<String>,
    /// Failed pods, to delete unless in back-off (names).
    pub failed: Vec<String>,
}

pub struct NodeState<'a> {
    pub should_run: bool,
    pub should_continue: bool,
    /// The daemon pods targeting the node (terminal deleting ones excluded).
    pub pods: Vec<&'a Value>,
}

pub fn plan_node(n: &NodeState<'_>, hash: &str, surge: bool, min_ready: i64, now: SystemTime) -> NodePlan {
    let mut plan = NodePlan::default();
    if n.should_run && n.pods.is_empty() {
        plan.create = true;
        return plan;
    }
    if !n.should_continue {
        plan.delete =
            n.pods.iter().filter(|p| !meta::is_terminating(p)).map(|p| meta::name(p).to_owned()).collect();
        return plan;
    }
    let mut running = Vec::new();
    for p in n.pods.iter().filter(|p| !meta::is_terminating(p)) {
        match p["status"]["phase"].as_str() {
            Some("Failed") => plan.failed.push(meta::name(p).to_owned()),
            Some("Succeeded") => plan.delete.push(meta::name(p).to_owned()),
            _ => running.push(*p),
        }
    }
    if running.len() <= 1 {
        return plan;
    }
    oldest_first(&mut running);
    if !surge {
        // One pod per node: the oldest stays.
        plan.delete.extend(running[1..].iter().map(|p| meta::name(p).to_owned()));
        return plan;
    }
    // With surge, an old and a new pod may overlap while the new one
    // becomes available; everything else goes.
    let (mut oldest_new, mut oldest_old) = (None, None);
    for p in running {
        let slot = if meta::label(p, HASH_LABEL) == Some(hash) { &mut oldest_new } else { &mut oldest_old };
        if slot.is_none() {
            *slot = Some(p);
        } else {
            plan.delete.push(meta::name(p).to_owned());
        }
    }
    if let (Some(new), Some(old)) = (oldest_new, oldest_old)
        && (!meta::pod_ready(old) || meta::pod_available(new, min_ready, now))
    {
        plan.delete.push(meta::name(old).to_owned());
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labels: Value, taints: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}})
    }

    fn ds(spec: Value) -> Value {
        json!({"metadata": {"name": "agent", "namespace": "kube-system", "uid": "u"},
            "spec": {"template": {"metadata": {"labels": {"app": "agent"}}, "spec": spec}}})
    }

    #[test]
    fn nodes_are_chosen_by_selector_affinity_and_taints() {
        let plain = ds(json!({"containers": []}));
        assert_eq!(should_run(&node("a", json!({}), json!([])), &plain), (true, true));
        let gpu = node("g", json!({}), json!([{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]));
        // Untolerated NoSchedule: no new pod, but a running one may stay.
        assert_eq!(should_run(&gpu, &plain), (false, true));
        let evict = node("e", json!({}), json!([{"key": "gpu", "effect": "NoExecute"}]));
        assert_eq!(should_run(&evict, &plain), (false, false));
        let tolerant = ds(json!({"tolerations": [{"key": "gpu", "operator": "Exists"}], "containers": []}));
        assert_eq!(should_run(&gpu, &tolerant), (true, true));
        assert_eq!(should_run(&evict, &tolerant), (true, true));
        // The default tolerations cover cordoned and not-ready nodes.
        let cordoned = node(
            "c",
            json!({}),
            json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                   {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]),
        );
        assert_eq!(should_run(&cordoned, &plain), (true, true));
        let selective = ds(json!({"nodeSelector": {"role": "edge"}}));
        assert_eq!(should_run(&node("a", json!({}), json!([])), &selective), (false, false));
        assert_eq!(should_run(&node("a", json!({"role": "edge"}), json!([])), &selective), (true, true));
        let named = ds(json!({"nodeName": "b"}));
        assert_eq!(should_run(&node("a", json!({}), json!([])), &named), (false, false));
    }

    #[test]
    fn daemon_pods_are_pinned_by_affinity_and_carry_default_tolerations() {
        let d = ds(json!({"hostNetwork": true, "containers": [],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "role", "operator": "In", "values": ["edge"]}]}]}}},
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}));
        let t = pod_template(&d, "abc", 3);
        let pod = pod_for_node(&d, &t, "n1");
        assert!(pod["spec"]["nodeName"].is_null());
        assert_eq!(target_node(&pod), Some("n1"));
        let terms = &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"];
        assert_eq!(terms.as_array().unwrap().len(), 1);
        assert_eq!(pod["metadata"]["labels"][HASH_LABEL], "abc");
        assert_eq!(pod["metadata"]["labels"][GENERATION_LABEL], "3");
        assert_eq!(pod["metadata"]["generateName"], "agent-");
        let tol = pod["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(tol.len(), 7, "{tol:?}");
        let not_ready: Vec<&Value> =
            tol.iter().filter(|t| t["key"] == "node.kubernetes.io/not-ready").collect();
        assert_eq!(not_ready.len(), 1);
        assert!(not_ready[0]["tolerationSeconds"].is_null());
        assert!(tol.iter().any(|t| t["key"] == "node.kubernetes.io/network-unavailable"));
        let bound = json!({"spec": {"nodeName": "n2"}});
        assert_eq!(target_node(&bound), Some("n2"));
    }

    fn pod(name: &str, created: &str, phase: &str, hash: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name, "creationTimestamp": created, "labels": {HASH_LABEL: hash}},
            "spec": {"nodeName": "n"},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}, "lastTransitionTime": created}]}})
    }

    #[test]
    fn a_node_keeps_one_pod_and_loses_failed_and_misplaced_ones() {
        let now = SystemTime::now();
        let (a, b) = (
            pod("a", "2020-01-01T00:00:00Z", "Running", "h", true),
            pod("b", "2021-01-01T00:00:00Z", "Running", "h", true),
        );
        let f = pod("f", "2020-01-01T00:00:00Z", "Failed", "h", false);
        let n = NodeState { should_run: true, should_continue: true, pods: vec![&b, &a, &f] };
        let plan = plan_node(&n, "h", false, 0, now);
        assert_eq!(plan, NodePlan { create: false, delete: vec!["b".into()], failed: vec!["f".into()] });
        let empty = NodeState { should_run: true, should_continue: true, pods: vec![] };
        assert!(plan_node(&empty, "h", false, 0, now).create);
        let gone = NodeState { should_run: false, should_continue: false, pods: vec![&a] };
        assert_eq!(plan_node(&gone, "h", false, 0, now).delete, ["a"]);
        // Surge: the old pod goes once the new one is available.
        let old = pod("old", "2020-01-01T00:00:00Z", "Running", "h1", true);
        let new_unready = pod("new", "2021-01-01T00:00:00Z", "Running", "h2", false);
        let n = NodeState { should_run: true, should_continue: true, pods: vec![&old, &new_unready] };
        assert!(plan_node(&n, "h2", true, 0, now).delete.is_empty());
        let new_ready = pod("new", "2021-01-01T00:00:00Z", "Running", "h2", true);
        let n = NodeState { should_run: true, should_continue: true, pods: vec![&old, &new_ready] };
        assert_eq!(plan_node(&n, "h2", true, 0, now).delete, ["old"]);
    }
}
