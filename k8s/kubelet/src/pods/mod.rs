//! The pods bound to this node: a list+watch on the API server feeds one
//! [`worker::Worker`] per pod; sandboxes of pods the API no longer has are
//! removed.

pub mod backoff;
pub mod config;
pub mod env;
pub mod probes;
pub mod runtime;
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
    workers: Mutex<HashMap<String, watch::Sender<Option<Pod>>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Option<Pod>>>> {
        self.workers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The latest spec of a pod by namespace and name.
    pub fn find(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.lock().values().find_map(|tx| {
            let p = tx.borrow();
            p.as_ref().filter(|p| p.metadata.namespace == namespace && p.metadata.name == name).cloned()
        })
    }

    pub fn uids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Hands a pod (or its disappearance) to its worker, starting one.
    fn update(&self, agent: &Agent, uid: &str, pod: Option<Pod>) {
        let mut workers = self.lock();
        if let Some(tx) = workers.get(uid)
            && !tx.is_closed()
        {
            tx.send_replace(pod);
            return;
        }
        let Some(pod) = pod else {
            workers.remove(uid);
            return;
        };
        let (tx, rx) = watch::channel(Some(pod));
        workers.insert(uid.to_owned(), tx);
        let agent = agent.clone();
        let uid = uid.to_owned();
        tokio::spawn(async move {
            worker::Worker::new(agent.clone(), uid.clone()).run(rx).await;
            let mut w = agent.pods.lock();
            if w.get(&uid).is_some_and(watch::Sender::is_closed) {
                w.remove(&uid);
            }
        });
    }
}

fn uid_of(v: &serde_json::Value) -> String {
    v["metadata"]["uid"].as_str().unwrap_or("").to_owned()
}

/// Lists and watches this node's pods forever.
pub async fn run(agent: Agent) {
    let selector = q(&format!("spec.nodeName={}", agent.cfg.node_name));
    tokio::spawn(housekeeping(agent.clone()));
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
            let uid = uid_of(item);
            match parse_pod(item) {
                Ok(p) => {
                    seen.insert(uid.clone());
                    agent.pods.update(&agent, &uid, Some(p));
                }
                Err(e) => tracing::error!(uid = %uid, error = %e, "unreadable pod"),
            }
        }
        for uid in agent.pods.uids() {
            if !seen.contains(&uid) {
                agent.pods.update(&agent, &uid, None);
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
            match ev.kind.as_str() {
                "ADDED" | "MODIFIED" => match parse_pod(&ev.object) {
                    Ok(p) => agent.pods.update(&agent, &uid_of(&ev.object), Some(p)),
                    Err(e) => tracing::error!(error = %e, "unreadable pod"),
                },
                "DELETED" => agent.pods.update(&agent, &uid_of(&ev.object), None),
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
    loop {
        let mut rt = agent.cri.runtime.clone();
        if let Ok(resp) = rt.list_pod_sandbox(api::ListPodSandboxRequest { filter: None }).await {
            let known = agent.pods.uids();
            for s in resp.into_inner().items {
                let Some(uid) = s.labels.get(runtime::LABEL_POD_UID) else { continue };
                if known.contains(uid) {
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
