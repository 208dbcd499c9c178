//! The scheduler: pods without a node get one. Filters and scores as
//! upstream's default profile (see [`filters`] and [`score`]), one pod at a
//! time; the choice is assumed in the cache at once and bound through
//! `pods/binding` in the background, so the next decision already counts
//! it. Pods that fit nowhere get upstream's FailedScheduling event and
//! `PodScheduled=False` condition, and are tried again when a node or a pod
//! changes (or every 30 s).

mod cache;
mod filters;
mod resources;
mod score;

pub use filters::{UNSCHEDULABLE_TAINT, node_affinity_matches, tolerated, tolerates};

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lichen_client::{Client, PatchType};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::informer::Change;
use crate::queue::Queue;
use crate::{Informers, meta};

use cache::Cache;

pub const NAME: &str = "default-scheduler";

/// How many bindings may be in flight.
const BINDERS: usize = 16;

#[derive(Clone)]
struct Scheduler {
    client: Client,
    informers: Informers,
    cache: Arc<Mutex<Cache>>,
    queue: Queue,
    unschedulable: Arc<Mutex<HashSet<String>>>,
    /// Pods assumed on a node whose binding has not shown up in the watch
    /// yet: their unbound updates must not undo the assumption.
    binding: Arc<Mutex<HashSet<String>>>,
    recorder: Recorder,
    binders: Arc<Semaphore>,
}

/// Whether this scheduler should place the pod now.
fn wants_node(pod: &Value) -> bool {
    let spec = &pod["spec"];
    let unbound = spec["nodeName"].as_str().unwrap_or("").is_empty();
    let ours = matches!(spec["schedulerName"].as_str(), None | Some("") | Some(NAME));
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    let gated = spec["schedulingGates"].as_array().is_some_and(|g| !g.is_empty());
    unbound && ours && !gated && !meta::is_terminating(pod) && phase != "Succeeded" && phase != "Failed"
}

pub fn start(tasks: &mut JoinSet<()>, client: &Client, informers: &Informers) {
    let s = Scheduler {
        client: client.clone(),
        informers: informers.clone(),
        cache: Arc::default(),
        queue: Queue::new(),
        unschedulable: Arc::default(),
        binding: Arc::default(),
        recorder: Recorder::new(client.clone(), NAME),
        binders: Arc::new(Semaphore::new(BINDERS)),
    };
    let h = s.clone();
    informers.pods.on_change(move |c| h.on_pod(c));
    let h = s.clone();
    informers.nodes.on_change(move |c| {
        if let Ok(mut cache) = h.cache.lock() {
            match c {
                Change::Deleted(n) => cache.remove_node(meta::name(n)),
                _ => cache.set_node(Arc::new(c.object().clone())),
            }
        }
        h.flush();
    });
    informers.namespaces.needed();
    let periodic = s.clone();
    tasks.spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            periodic.flush();
        }
    });
    tasks.spawn(async move {
        s.informers.pods.synced().await;
        s.informers.nodes.synced().await;
        loop {
            let key = s.queue.next().await;
            s.schedule_one(&key).await;
            s.queue.done(&key);
        }
    });
}

impl Scheduler {
    fn on_pod(&self, c: &Change<'_>) {
        let pod = c.object();
        let key = meta::key_of(pod);
        let freed = match c {
            Change::Deleted(_) => {
                if let Ok(mut b) = self.binding.lock() {
                    b.remove(&key);
                }
                let placed = self.cache.lock().map(|mut cache| {
                    let placed = cache.is_placed(&key);
                    cache.remove_pod(&key);
                    placed
                });
                if let Ok(mut u) = self.unschedulable.lock() {
                    u.remove(&key);
                }
                placed.unwrap_or(false)
            }
            _ => {
                let unbound = pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty();
                let in_flight = self.binding.lock().is_ok_and(|mut b| {
                    if unbound {
                        b.contains(&key)
                    } else {
                        // The binding has landed: the watch is the truth now.
                        b.remove(&key);
                        false
                    }
                });
                if in_flight && !meta::is_terminating(pod) {
                    // Still being bound: keep the assumption.
                    return;
                }
                let was = self.cache.lock().map(|mut cache| {
                    let was = cache.is_placed(&key);
                    cache.set_pod(Arc::new(pod.clone()));
                    was && !cache.is_placed(&key)
                });
                if wants_node(pod) {
                    let changed = match c {
                        Change::Updated { old, new } => {
                            old["spec"] != new["spec"]
                                || old["metadata"]["labels"] != new["metadata"]["labels"]
                        }
                        _ => true,
                    };
                    let parked = self.unschedulable.lock().map(|u| u.contains(&key)).unwrap_or(false);
                    if !parked || changed {
                        self.queue.add(&key);
                    }
                }
                was.unwrap_or(false)
            }
        };
        if freed {
            self.flush();
        }
    }

    /// Something changed that may let parked pods fit: try them again.
    fn flush(&self) {
        let parked: Vec<String> = match self.unschedulable.lock() {
            Ok(mut u) => u.drain().collect(),
            Err(_) => return,
        };
        for k in parked {
            self.queue.add(&k);
        }
    }

    async fn schedule_one(&self, key: &str) {
        let Some(pod) = self.informers.pods.get(key) else { return };
        if !wants_node(&pod) {
            return;
        }
        let decision = {
            let Ok(mut cache) = self.cache.lock() else { return };
            if cache.is_placed(key) {
                return;
            }
            let ns_labels = self
                .informers
                .namespaces
                .list()
                .iter()
                .map(|n| (meta::name(n).to_owned(), n["metadata"]["labels"].clone()))
                .collect();
            let requests = resources::pod_requests(&pod);
            let ports = resources::host_ports(&pod);
            let mut feasible = Vec::new();
            let mut reasons = Vec::new();
            for info in cache.nodes.values().filter(|n| n.node.is_some()) {
                match filters::check(&pod, &requests, &ports, info, &cache, &ns_labels) {
                    Ok(()) => feasible.push(info),
                    Err(r) => reasons.push(r),
                }
            }
            if feasible.is_empty() {
                Err(filters::fit_error(cache.node_count(), &reasons))
            } else {
                let scores = score::score(&pod, resources::non_zero_requests(&pod), &feasible);
                let best = scores.iter().copied().max().unwrap_or(0);
                let ties: Vec<usize> = (0..scores.len()).filter(|&i| scores[i] == best).collect();
                let pick = ties[random(ties.len())];
                let node = feasible[pick].name().to_owned();
                let mut assumed = (*pod).clone();
                assumed["spec"]["nodeName"] = json!(node);
                cache.set_pod(Arc::new(assumed));
                if let Ok(mut b) = self.binding.lock() {
                    b.insert(key.to_owned());
                }
                Ok(node)
            }
        };
        match decision {
            Ok(node) => self.bind(key, pod, node).await,
            Err(message) => self.unschedulable(key, &pod, message).await,
        }
    }

    async fn bind(&self, key: &str, pod: Arc<Value>, node: String) {
        let Ok(permit) = self.binders.clone().acquire_owned().await else { return };
        let s = self.clone();
        let key = key.to_owned();
        tokio::spawn(async move {
            let _permit = permit;
            let (ns, name) = (meta::namespace(&pod), meta::name(&pod));
            let binding = json!({
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name, "namespace": ns, "uid": meta::uid(&pod)},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            let path = format!("{}/binding", meta::path("v1", "pods", ns, name));
            match s.client.create(&path, &binding).await {
                Ok(_) => {
                    s.queue.forget(&key);
                    s.recorder.normal(
                        &pod,
                        "Scheduled",
                        format!("Successfully assigned {ns}/{name} to {node}"),
                    );
                }
                Err(e) => {
                    tracing::debug!(pod = %key, error = %e, "binding failed");
                    // Undo the assumption, unless the watch has meanwhile
                    // shown the pod bound (then the cache holds the truth).
                    let assumed = s.binding.lock().is_ok_and(|mut b| b.remove(&key));
                    if assumed {
                        if let Ok(mut cache) = s.cache.lock() {
                            cache.remove_pod(&key);
                        }
                        if !e.is_not_found() {
                            s.queue.retry(&key);
                        }
                    }
                }
            }
        });
    }

    async fn unschedulable(&self, key: &str, pod: &Value, message: String) {
        if let Ok(mut u) = self.unschedulable.lock() {
            u.insert(key.to_owned());
        }
        self.recorder.warning(pod, "FailedScheduling", message.clone());
        let current = meta::condition(pod, "PodScheduled");
        if current.is_some_and(|c| c["status"] == "False" && c["message"] == message.as_str()) {
            return;
        }
        let patch = json!({"status": {"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": meta::now_rfc3339(),
        }]}});
        let path = format!("{}/status", meta::path("v1", "pods", meta::namespace(pod), meta::name(pod)));
        if let Err(e) = self.client.patch(&path, PatchType::Strategic, &patch).await {
            tracing::debug!(pod = %key, error = %e, "PodScheduled condition not written");
        }
    }
}

/// A cheap random index below `n` (tie-breaking only).
fn random(n: usize) -> usize {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let mut x = STATE.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    usize::try_from(x % (n.max(1) as u64)).unwrap_or(0)
}
