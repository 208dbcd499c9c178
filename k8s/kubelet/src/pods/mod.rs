//! The pods bound to this node: a list+watch on the API server feeds one
//! [`worker::Worker`] per pod; sandboxes of pods the API no longer has are
//! removed.

pub mod backoff;
pub mod config;
pub mod dns;
pub mod env;
pub mod probes;
pub mod runtime;
pub mod statics;
pub mod status;
pub mod volumes;
pub mod worker;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use crate::Agent;
use crate::client::q;
use crate::cri::api;
use crate::spec::{Pod, parse_pod};

/// The pods this node runs, by UID, with the channel to each worker.
#[derive(Default)]
pub struct Registry {
    workers: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    tx: watch::Sender<Option<Pod>>,
    /// A static pod (from the manifest directory), not from the API.
    is_static: bool,
    /// The status the worker last computed (fresher than the API's copy,
    /// and the only copy for a static pod whose mirror is missing).
    status: Option<serde_json::Value>,
}

/// Where a pod comes from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Source {
    Api,
    Static,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.workers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The latest spec of a pod by namespace and name, with the status
    /// the agent last computed for it.
    pub fn find(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.lock().values().find_map(|e| {
            let p = e.tx.borrow();
            let mut pod = p
                .as_ref()
                .filter(|p| p.metadata.namespace == namespace && p.metadata.name == name)
                .cloned()?;
            if let Some(st) = &e.status {
                pod.status = st.clone();
            }
            Some(pod)
        })
    }

    /// Records the status a worker computed.
    pub fn set_status(&self, uid: &str, status: &serde_json::Value) {
        if let Some(e) = self.lock().get_mut(uid) {
            e.status = Some(status.clone());
        }
    }

    /// UIDs of the pods from one source.
    pub fn uids(&self, source: Source) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.is_static == (source == Source::Static))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Whether a UID is known at all (any source).
    pub fn contains(&self, uid: &str) -> bool {
        self.lock().contains_key(uid)
    }

    /// Hands a pod (or its disappearance) to its worker, starting one.
    pub(crate) fn update(&self, agent: &Agent, uid: &str, pod: Option<Pod>, source: Source) {
        let mut workers = self.lock();
        if let Some(e) = workers.get(uid)
            && !e.tx.is_closed()
        {
            e.tx.send_replace(pod);
            return;
        }
        let Some(pod) = pod else {
            workers.remove(uid);
            return;
        };
        let (tx, rx) = watch::channel(Some(pod));
        workers.insert(uid.to_owned(), Entry { tx, is_static: source == Source::Static, status: None });
        let agent = agent.clone();
        let uid = uid.to_owned();
        tokio::spawn(async move {
            worker::Worker::new(agent.clone(), uid.clone()).run(rx).await;
            let mut w = agent.pods.lock();
            if w.get(&uid).is_some_and(|e| e.tx.is_closed()) {
                w.remove(&uid);
            }
        });
    }
}

/// The annotation marking a mirror pod (its value: the static pod's hash).
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

fn is_mirror(v: &serde_json::Value) -> bool {
    v["metadata"]["annotations"].get(MIRROR_ANNOTATION).is_some()
}

fn uid_of(v: &serde_json::Value) -> String {
    v["metadata"]["uid"].as_str().unwrap_or("").to_owned()
}

/// Lists and watches this node's pods forever.
pub async fn run(agent: Agent) {
    let selector = q(&format!("spec.nodeName={}", agent.cfg.node_name));
    tokio::spawn(housekeeping(agent.clone()));
    tokio::spawn(statics::run(agent.clone()));
    loop {
        let list = match agent.client.get(&format!("/api/v1/pods?fieldSelector={selector}")).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list pods; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        let rv = list["metadata"]["resourceVersion"].as_str().unwrap_or("").to_owned();
        let mut seen = std::collections::HashSet::new();
        for item in list["items"].as_array().into_iter().flatten() {
            if is_mirror(item) {
                statics::mirror_event(&agent, item).await;
                continue;
            }
            let uid = uid_of(item);
            // Seen even when unreadable: a pod the agent cannot parse now is
            // not a pod to kill.
            seen.insert(uid.clone());
            match parse_pod(item) {
                Ok(p) => agent.pods.update(&agent, &uid, Some(p), Source::Api),
                Err(e) => tracing::error!(uid = %uid, error = %e, "unreadable pod"),
            }
        }
        for uid in agent.pods.uids(Source::Api) {
            if !seen.contains(&uid) {
                agent.pods.update(&agent, &uid, None, Source::Api);
            }
        }
        agent.pods_listed.send_replace(true);
        let path = format!(
            "/api/v1/pods?fieldSelector={selector}&watch=true&allowWatchBookmarks=true&resourceVersion={rv}"
        );
        let mut rx = match agent.client.watch(&path).await {
            Ok(rx) => rx,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch pods; listing again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        while let Some(ev) = rx.recv().await {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::debug!(error = %e, "pod watch ended");
                    break;
                }
            };
            if is_mirror(&ev.object) {
                if ev.kind != "DELETED" {
                    statics::mirror_event(&agent, &ev.object).await;
                }
                continue;
            }
            match ev.kind.as_str() {
                "ADDED" | "MODIFIED" => match parse_pod(&ev.object) {
                    Ok(p) => agent.pods.update(&agent, &uid_of(&ev.object), Some(p), Source::Api),
                    Err(e) => tracing::error!(error = %e, "unreadable pod"),
                },
                "DELETED" => agent.pods.update(&agent, &uid_of(&ev.object), None, Source::Api),
                "ERROR" => break,
                _ => {}
            }
        }
    }
}

/// Every minute: sandboxes whose pod this node no longer has are stopped
/// and removed (pods deleted while the agent was down).
async fn housekeeping(agent: Agent) {
    let mut listed = agent.pods_listed.subscribe();
    let _ = listed.wait_for(|l| *l).await;
    let mut scanned = agent.statics_scanned.subscribe();
    let _ = scanned.wait_for(|l| *l).await;
    loop {
        let mut rt = agent.cri.runtime.clone();
        if let Ok(resp) = rt.list_pod_sandbox(api::ListPodSandboxRequest { filter: None }).await {
            for s in resp.into_inner().items {
                let Some(uid) = s.labels.get(runtime::LABEL_POD_UID) else { continue };
                if agent.pods.contains(uid) {
                    continue;
                }
                tracing::info!(uid = %uid, sandbox = %s.id, "removing sandbox of a pod this node no longer runs");
                let _ =
                    rt.stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id: s.id.clone() }).await;
                let _ = rt.remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id: s.id }).await;
                volumes::remove_pod_dir(&agent.cfg.root_dir, uid);
            }
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}
