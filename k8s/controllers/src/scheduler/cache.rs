//! The scheduler's view of the cluster: every node with the pods bound or
//! assumed on it and what they use.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::resources::{Resources, host_ports, non_zero_requests, pod_requests};
use crate::meta;

pub struct PodInfo {
    pub pod: Arc<Value>,
    pub requests: Resources,
    pub non_zero: (i64, i64),
    pub ports: Vec<(String, String, i64)>,
    /// The uid of its controller, "" for none.
    pub owner: String,
    /// Whether it has required pod anti-affinity terms (few pods do; the
    /// filter only visits those).
    pub anti_affinity: bool,
}

impl PodInfo {
    pub fn new(pod: Arc<Value>) -> PodInfo {
        let anti =
            &pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
        PodInfo {
            requests: pod_requests(&pod),
            non_zero: non_zero_requests(&pod),
            ports: host_ports(&pod),
            owner: meta::controller_uid(&pod).to_owned(),
            anti_affinity: anti.as_array().is_some_and(|a| !a.is_empty()),
            pod,
        }
    }
}

#[derive(Default)]
pub struct NodeInfo {
    pub node: Option<Arc<Value>>,
    /// `status.allocatable`, parsed once per node update.
    pub allocatable: Resources,
    pub pods: HashMap<String, PodInfo>,
    pub requested: Resources,
    pub non_zero: (i64, i64),
    /// Pods per controller uid (for spreading).
    pub owners: HashMap<String, i64>,
    /// How many pods with host ports or required anti-affinity it has.
    pub with_ports: usize,
    pub with_anti_affinity: usize,
}

impl NodeInfo {
    pub fn name(&self) -> &str {
        self.node.as_deref().map(meta::name).unwrap_or("")
    }

    pub fn allocatable(&self) -> &Resources {
        &self.allocatable
    }

    fn add(&mut self, key: String, info: PodInfo) {
        self.requested.add(&info.requests);
        self.non_zero.0 += info.non_zero.0;
        self.non_zero.1 += info.non_zero.1;
        if !info.owner.is_empty() {
            *self.owners.entry(info.owner.clone()).or_default() += 1;
        }
        self.with_ports += usize::from(!info.ports.is_empty());
        self.with_anti_affinity += usize::from(info.anti_affinity);
        self.pods.insert(key, info);
    }

    fn remove(&mut self, key: &str) {
        if let Some(info) = self.pods.remove(key) {
            self.requested.sub(&info.requests);
            self.non_zero.0 -= info.non_zero.0;
            self.non_zero.1 -= info.non_zero.1;
            if let Some(n) = self.owners.get_mut(&info.owner) {
                *n -= 1;
                if *n <= 0 {
                    self.owners.remove(&info.owner);
                }
            }
            self.with_ports -= usize::from(!info.ports.is_empty());
            self.with_anti_affinity -= usize::from(info.anti_affinity);
        }
    }
}

#[derive(Default)]
pub struct Cache {
    pub nodes: HashMap<String, NodeInfo>,
    /// pod key -> node it is on.
    placed: HashMap<String, String>,
}

/// Whether a pod holds resources on its node: bound and not finished.
pub fn occupies(pod: &Value) -> bool {
    let bound = pod["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    bound && phase != "Succeeded" && phase != "Failed"
}

impl Cache {
    pub fn set_node(&mut self, node: Arc<Value>) {
        let name = meta::name(&node).to_owned();
        let info = self.nodes.entry(name).or_default();
        info.allocatable = Resources::from_list(&node["status"]["allocatable"]);
        info.node = Some(node);
    }

    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.get_mut(name) {
            info.node = None;
            if info.pods.is_empty() {
                self.nodes.remove(name);
            }
        }
    }

    /// Records a pod's current state (bound, assumed, finished or gone).
    pub fn set_pod(&mut self, pod: Arc<Value>) {
        let key = meta::key_of(&pod);
        if !occupies(&pod) {
            return self.remove_pod(&key);
        }
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("").to_owned();
        self.remove_pod(&key);
        self.nodes.entry(node.clone()).or_default().add(key.clone(), PodInfo::new(pod));
        self.placed.insert(key, node);
    }

    pub fn remove_pod(&mut self, key: &str) {
        if let Some(node) = self.placed.remove(key)
            && let Some(info) = self.nodes.get_mut(&node)
        {
            info.remove(key);
            if info.node.is_none() && info.pods.is_empty() {
                self.nodes.remove(&node);
            }
        }
    }

    /// Whether the pod is bound or assumed.
    pub fn is_placed(&self, key: &str) -> bool {
        self.placed.contains_key(key)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.values().filter(|n| n.node.is_some()).count()
    }
}
