//! The node lifecycle controller, as upstream's: a node whose Lease (or
//! status heartbeat) has not been renewed for the grace period gets its
//! conditions set to Unknown ("Kubelet stopped posting node status."), its
//! pods marked not Ready, and the `node.kubernetes.io/unreachable` taints;
//! a NotReady node gets `node.kubernetes.io/not-ready`. Conditions and
//! cordoning map to NoSchedule taints. The taint manager then evicts pods
//! that do not tolerate a NoExecute taint, at once or after their
//! `tolerationSeconds`.
//!
//! Freshness is judged by when this process saw a heartbeat change, not
//! by comparing the agent's clock with ours.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use lichen_client::{Client, PatchType};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::informer::Informer;
use crate::scheduler::tolerates;
use crate::{Informers, meta};

pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// Condition type -> the NoSchedule taint it brings when "True" (or, for
/// Ready, not "True").
const CONDITION_TAINTS: [(&str, &str); 3] = [
    ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "node.kubernetes.io/pid-pressure"),
];

#[derive(Clone, Debug)]
pub struct Config {
    /// How long a node may go without a heartbeat before it is Unknown.
    pub grace: Duration,
    /// How often nodes are checked.
    pub period: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config { grace: Duration::from_secs(40), period: Duration::from_secs(5) }
    }
}

#[derive(Clone)]
struct Controller {
    client: Client,
    nodes: Informer,
    leases: Informer,
    pods: Informer,
    recorder: Recorder,
    cfg: Config,
    /// node -> (last heartbeat record, when we saw it change).
    seen: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

pub fn start(tasks: &mut JoinSet<()>, client: &Client, informers: &Informers, cfg: Config) {
    informers.nodes.needed();
    informers.node_leases.needed();
    informers.pods.needed();
    let c = Controller {
        client: client.clone(),
        nodes: informers.nodes.clone(),
        leases: informers.node_leases.clone(),
        pods: informers.pods.clone(),
        recorder: Recorder::new(client.clone(), "node-controller"),
        cfg,
        seen: Arc::default(),
    };
    // Node changes (a condition, cordoning) are acted on at once; silence
    // is noticed on the next period.
    let changed = Arc::new(tokio::sync::Notify::new());
    let notify = changed.clone();
    informers.nodes.on_change(move |_| notify.notify_one());
    tasks.spawn(async move {
        c.nodes.synced().await;
        c.leases.synced().await;
        c.pods.synced().await;
        loop {
            c.monitor().await;
            c.evict().await;
            let _ = tokio::time::timeout(c.cfg.period, changed.notified()).await;
        }
    });
}

/// The Ready condition's status; "" for a node that never posted one.
fn ready_status(node: &Value) -> &str {
    meta::condition(node, "Ready").and_then(|c| c["status"].as_str()).unwrap_or("")
}

/// The NoSchedule and NoExecute taints the node's state calls for.
fn wanted_taints(node: &Value) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    match ready_status(node) {
        "False" => out.extend([(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")]),
        "Unknown" => out.extend([(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]),
        _ => {}
    }
    for (cond, taint) in CONDITION_TAINTS {
        if meta::condition(node, cond).is_some_and(|c| c["status"] == "True") {
            out.push((taint, "NoSchedule"));
        }
    }
    if node["spec"]["unschedulable"] == true {
        out.push((crate::scheduler::UNSCHEDULABLE_TAINT, "NoSchedule"));
    }
    out
}

/// Keys of the taints this controller manages.
fn managed(key: &str) -> bool {
    key == UNREACHABLE
        || key == NOT_READY
        || key == crate::scheduler::UNSCHEDULABLE_TAINT
        || CONDITION_TAINTS.iter().any(|(_, t)| *t == key)
}

impl Controller {
    /// The latest heartbeat record: the Lease's renewTime and the Ready
    /// condition's heartbeat.
    fn heartbeat(&self, node: &Value) -> String {
        let lease = self.leases.get_in("kube-node-lease", meta::name(node));
        let renew = lease.as_deref().and_then(|l| l["spec"]["renewTime"].as_str()).unwrap_or("").to_owned();
        let beat = meta::condition(node, "Ready").and_then(|c| c["lastHeartbeatTime"].as_str()).unwrap_or("");
        format!("{renew}|{beat}")
    }

    async fn monitor(&self) {
        for node in self.nodes.list() {
            let name = meta::name(&node).to_owned();
            let record = self.heartbeat(&node);
            let stale = {
                let Ok(mut seen) = self.seen.lock() else { return };
                let entry = seen.entry(name.clone()).or_insert_with(|| (record.clone(), Instant::now()));
                if entry.0 != record {
                    *entry = (record, Instant::now());
                }
                entry.1.elapsed() > self.cfg.grace
            };
            let mut node = (*node).clone();
            if stale && self.mark_unknown(&mut node).await.is_err() {
                continue;
            }
            if let Err(e) = self.sync_taints(&node).await {
                tracing::debug!(node = %name, error = %e, "node taints not updated");
            }
        }
        if let Ok(mut seen) = self.seen.lock() {
            seen.retain(|n, _| self.nodes.get(n).is_some());
        }
    }

    /// Sets every condition to Unknown and the node's pods not Ready.
    async fn mark_unknown(&self, node: &mut Value) -> Result<(), lichen_client::ClientError> {
        let name = meta::name(node).to_owned();
        let now = meta::now_rfc3339();
        let mut changed = false;
        let mut conditions: Vec<Value> = node["status"]["conditions"].as_array().cloned().unwrap_or_default();
        if conditions.is_empty() {
            conditions.push(json!({"type": "Ready"}));
        }
        for c in &mut conditions {
            if c["status"] == "Unknown" && c["reason"] == "NodeStatusUnknown" {
                continue;
            }
            changed = true;
            c["status"] = json!("Unknown");
            c["reason"] = json!("NodeStatusUnknown");
            c["message"] = json!("Kubelet stopped posting node status.");
            c["lastTransitionTime"] = json!(now);
        }
        if !changed {
            return Ok(());
        }
        node["status"]["conditions"] = json!(conditions);
        let v = self.client.replace(&format!("/api/v1/nodes/{name}/status"), node).await?;
        self.nodes.assume(&v);
        *node = v;
        self.recorder.normal(node, "NodeNotReady", format!("Node {name} status is now: NodeNotReady"));
        // Its pods cannot be trusted to serve: not Ready (endpoints drop them).
        for pod in self.pods.list() {
            if pod["spec"]["nodeName"] != name.as_str() || !meta::pod_ready(&pod) {
                continue;
            }
            let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}]}});
            let path =
                format!("{}/status", meta::path("v1", "pods", meta::namespace(&pod), meta::name(&pod)));
            let _ = self.client.patch(&path, PatchType::Strategic, &patch).await;
        }
        Ok(())
    }

    async fn sync_taints(&self, node: &Value) -> Result<(), lichen_client::ClientError> {
        let wanted = wanted_taints(node);
        let current: Vec<Value> = node["spec"]["taints"].as_array().cloned().unwrap_or_default();
        let mut next: Vec<Value> = current
            .iter()
            .filter(|t| {
                let key = t["key"].as_str().unwrap_or("");
                !managed(key) || wanted.iter().any(|(k, e)| *k == key && t["effect"] == *e)
            })
            .cloned()
            .collect();
        for (k, e) in &wanted {
            if !next.iter().any(|t| t["key"] == *k && t["effect"] == *e) {
                let mut t = json!({"key": k, "effect": e});
                if *e == "NoExecute" {
                    t["timeAdded"] = json!(meta::now_rfc3339());
                }
                next.push(t);
            }
        }
        if next == current {
            return Ok(());
        }
        let mut v = node.clone();
        v["spec"]["taints"] = json!(next);
        match self.client.replace(&format!("/api/v1/nodes/{}", meta::name(node)), &v).await {
            Ok(v) => {
                self.nodes.assume(&v);
                Ok(())
            }
            Err(e) if e.is_conflict() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The taint manager: pods on NoExecute-tainted nodes leave when a
    /// taint is not tolerated, or once the shortest tolerationSeconds of
    /// the tolerations used has passed since the taint was added.
    async fn evict(&self) {
        let now = SystemTime::now();
        let mut tainted: HashMap<String, Vec<Value>> = HashMap::new();
        for node in self.nodes.list() {
            let no_execute: Vec<Value> = node["spec"]["taints"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| t["effect"] == "NoExecute")
                .cloned()
                .collect();
            if !no_execute.is_empty() {
                tainted.insert(meta::name(&node).to_owned(), no_execute);
            }
        }
        if tainted.is_empty() {
            return;
        }
        for pod in self.pods.list() {
            let Some(taints) = pod["spec"]["nodeName"].as_str().and_then(|n| tainted.get(n)) else {
                continue;
            };
            if meta::is_terminating(&pod) {
                continue;
            }
            if let Some(due) = eviction_time(&pod, taints)
                && due <= now
            {
                self.delete(&pod).await;
            }
        }
    }

    async fn delete(&self, pod: &Value) {
        let (ns, name) = (meta::namespace(pod), meta::name(pod));
        self.recorder.normal(pod, "TaintManagerEviction", format!("Marking for deletion Pod {ns}/{name}"));
        let opts = json!({"preconditions": {"uid": meta::uid(pod)}});
        match self.client.delete(&meta::path("v1", "pods", ns, name), &opts).await {
            Ok(v) if v["kind"] == "Pod" => self.pods.assume(&v),
            Ok(_) => self.pods.assume_deleted(&meta::key_of(pod)),
            Err(e) => tracing::debug!(pod = %name, error = %e, "eviction failed"),
        }
    }
}

/// When the pod must leave a node with these NoExecute taints: the epoch
/// for an untolerated taint, never (`None`) when all are tolerated
/// forever, else the earliest taint time plus tolerationSeconds.
fn eviction_time(pod: &Value, taints: &[Value]) -> Option<SystemTime> {
    let tolerations: Vec<&Value> = pod["spec"]["tolerations"].as_array().into_iter().flatten().collect();
    let mut due: Option<SystemTime> = None;
    for taint in taints {
        let used: Vec<&&Value> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if used.is_empty() {
            return Some(SystemTime::UNIX_EPOCH);
        }
        // Among the tolerations that match, the shortest bound wins;
        // one without tolerationSeconds tolerates forever.
        let seconds = used.iter().filter_map(|t| t["tolerationSeconds"].as_i64()).min();
        if let Some(s) = seconds {
            let added = meta::time(&taint["timeAdded"]).unwrap_or_else(SystemTime::now);
            let at = added + Duration::from_secs(u64::try_from(s.max(0)).unwrap_or(0));
            due = Some(due.map_or(at, |d| d.min(at)));
        }
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_follows_tolerations() {
        let taint = json!({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2020-01-01T00:00:00Z"});
        let t0 = meta::time(&json!("2020-01-01T00:00:00Z")).unwrap();
        let none = json!({"spec": {}});
        assert_eq!(eviction_time(&none, std::slice::from_ref(&taint)), Some(SystemTime::UNIX_EPOCH));
        let forever = json!({"spec": {"tolerations": [{"key": UNREACHABLE, "operator": "Exists"}]}});
        assert_eq!(eviction_time(&forever, std::slice::from_ref(&taint)), None);
        let bounded = json!({"spec": {"tolerations": [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]}});
        assert_eq!(eviction_time(&bounded, std::slice::from_ref(&taint)), Some(t0 + Duration::from_secs(30)));
    }

    #[test]
    fn taints_follow_conditions() {
        let node = |ready: &str| json!({"status": {"conditions": [{"type": "Ready", "status": ready}, {"type": "DiskPressure", "status": "True"}]}, "spec": {"unschedulable": true}});
        assert_eq!(
            wanted_taints(&node("Unknown")),
            [
                (UNREACHABLE, "NoSchedule"),
                (UNREACHABLE, "NoExecute"),
                ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                ("node.kubernetes.io/unschedulable", "NoSchedule")
            ]
        );
        assert_eq!(wanted_taints(&node("False"))[..2], [(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")]);
        assert!(!wanted_taints(&node("True")).iter().any(|(k, _)| *k == NOT_READY || *k == UNREACHABLE));
    }
}
