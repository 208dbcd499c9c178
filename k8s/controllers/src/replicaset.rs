//! The ReplicaSet controller, as upstream's: keep `spec.replicas` active
//! pods matching the selector, adopting orphans and releasing pods that no
//! longer match; create in slow-start batches (1, 2, 4, ...), delete the
//! least valuable pods first; report replicas, fullyLabeled, ready and
//! available replicas and the ReplicaFailure condition.

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lichen_client::Client;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::informer::Informer;
use crate::queue::Queue;
use crate::{Error, Informers, meta};

/// Upstream's `burstReplicas`: at most this many creates or deletes per sync.
const BURST: usize = 500;

#[derive(Clone)]
struct Controller {
    client: Client,
    sets: Informer,
    pods: Informer,
    recorder: Recorder,
}

pub fn start(tasks: &mut JoinSet<()>, client: &Client, informers: &Informers) {
    let queue = Queue::new();
    let c = Controller {
        client: client.clone(),
        sets: informers.replicasets.clone(),
        pods: informers.pods.clone(),
        recorder: Recorder::new(client.clone(), "replicaset-controller"),
    };
    let q = queue.clone();
    informers.replicasets.on_change(move |ch| q.add(&meta::key_of(ch.object())));
    crate::informer::enqueue_owners(
        &informers.pods,
        &informers.replicasets,
        "ReplicaSet",
        &queue,
        crate::informer::selector_matches,
    );
    let synced = vec![informers.replicasets.clone(), informers.pods.clone()];
    crate::spawn_workers(tasks, "replicaset", &queue, synced, 4, move |key| {
        let c = c.clone();
        async move { c.sync(&key).await }
    });
}

/// Upstream's deletion order (`ActivePods` less): unassigned, pending,
/// not ready, ready for less time, more restarts, newer.
type Rank = (bool, u8, bool, Option<Reverse<SystemTime>>, Reverse<i64>, Option<Reverse<SystemTime>>);

fn deletion_rank(pod: &Value) -> Rank {
    let assigned = pod["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
    let phase = match pod["status"]["phase"].as_str() {
        Some("Pending") => 0,
        Some("Running") => 2,
        _ => 1,
    };
    let ready = meta::pod_ready(pod);
    let ready_since =
        meta::condition(pod, "Ready").and_then(|c| meta::time(&c["lastTransitionTime"])).map(Reverse);
    let restarts: i64 = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["restartCount"].as_i64().unwrap_or(0))
        .sum();
    let created = meta::creation(pod).map(Reverse);
    (assigned, phase, ready, ready_since, Reverse(restarts), created)
}

/// A new pod from the set's template.
pub fn pod_from_template(template: &Value, namespace: &str, generate_name: &str, owner: Value) -> Value {
    let meta_t = &template["metadata"];
    let mut metadata = json!({
        "generateName": generate_name,
        "namespace": namespace,
        "ownerReferences": [owner],
    });
    for f in ["labels", "annotations", "finalizers"] {
        if !meta_t[f].is_null() {
            metadata[f] = meta_t[f].clone();
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]})
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Option<Duration>, Error> {
        let Some(rs) = self.sets.get(key) else { return Ok(None) };
        let ns = meta::namespace(&rs).to_owned();
        let selector = meta::selector(&rs);
        let uid = meta::uid(&rs).to_owned();
        let deleting = meta::is_terminating(&rs);
        let owner = crate::claim::Owner { obj: &rs, api_version: "apps/v1", kind: "ReplicaSet" };
        let mut owned = crate::claim::claim(&self.client, &self.pods, owner, ("v1", "pods"), |p| {
            selector.matches_object(p)
        })
        .await?;
        let mut failure = None;
        if !deleting {
            failure = self.manage(&rs, &owned).await;
            // The caches hold what was just written.
            owned = self.pods.list_in(&ns).into_iter().filter(|p| meta::controller_uid(p) == uid).collect();
        }
        let failed = failure.as_ref().map(|(_, message)| message.clone());
        let again = self.update_status(&rs, &owned, failure).await?;
        match failed {
            // Retried with back-off; the condition already says why.
            Some(message) => Err(Error::Invalid(message)),
            None => Ok(again),
        }
    }

    /// Creates or deletes pods towards `spec.replicas`; the error of a
    /// failed create or delete, for the ReplicaFailure condition.
    async fn manage(&self, rs: &Value, owned: &[Arc<Value>]) -> Option<(String, String)> {
        let want = usize::try_from(rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0)).unwrap_or(0);
        let mut active: Vec<&Arc<Value>> = owned.iter().filter(|p| meta::pod_active(p)).collect();
        let ns = meta::namespace(rs);
        if active.len() < want {
            let mut left = (want - active.len()).min(BURST);
            let mut batch = 1;
            let template = &rs["spec"]["template"];
            let owner = meta::owner_ref(rs, "apps/v1", "ReplicaSet");
            let pod = pod_from_template(template, ns, &format!("{}-", meta::name(rs)), owner);
            while left > 0 {
                let n = batch.min(left);
                let mut creates = JoinSet::new();
                for _ in 0..n {
                    let (client, pod) = (self.client.clone(), pod.clone());
                    let path = meta::path("v1", "pods", ns, "");
                    creates.spawn(async move { client.create(&path, &pod).await });
                }
                let mut failed = None;
                while let Some(r) = creates.join_next().await {
                    match r {
                        Ok(Ok(p)) => {
                            self.pods.assume(&p);
                            self.recorder.normal(
                                rs,
                                "SuccessfulCreate",
                                format!("Created pod: {}", meta::name(&p)),
                            );
                        }
                        Ok(Err(e)) => failed = Some(e.to_string()),
                        Err(e) => failed = Some(e.to_string()),
                    }
                }
                if let Some(e) = failed {
                    let message = format!("Error creating: {e}");
                    self.recorder.warning(rs, "FailedCreate", message.clone());
                    return Some(("FailedCreate".into(), message));
                }
                left -= n;
                batch *= 2;
            }
        } else if active.len() > want {
            active.sort_by_key(|p| deletion_rank(p));
            let victims = &active[..(active.len() - want).min(BURST)];
            for pod in victims {
                let path = meta::path("v1", "pods", ns, meta::name(pod));
                let opts = json!({"preconditions": {"uid": meta::uid(pod)}});
                match self.client.delete(&path, &opts).await {
                    Ok(p) => {
                        if p["kind"] == "Pod" && meta::is_terminating(&p) {
                            self.pods.assume(&p);
                        } else {
                            self.pods.assume_deleted(&meta::key_of(pod));
                        }
                        self.recorder.normal(
                            rs,
                            "SuccessfulDelete",
                            format!("Deleted pod: {}", meta::name(pod)),
                        );
                    }
                    Err(e) if e.is_not_found() => self.pods.assume_deleted(&meta::key_of(pod)),
                    Err(e) => {
                        let message = format!("Error deleting: {e}");
                        self.recorder.warning(rs, "FailedDelete", message.clone());
                        return Some(("FailedDelete".into(), message));
                    }
                }
            }
        }
        None
    }

    async fn update_status(
        &self,
        rs: &Value,
        owned: &[Arc<Value>],
        failure: Option<(String, String)>,
    ) -> Result<Option<Duration>, Error> {
        let now = SystemTime::now();
        let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        let template_labels = meta::labels(&rs["spec"]["template"]);
        let active: Vec<&Arc<Value>> = owned.iter().filter(|p| meta::pod_active(p)).collect();
        let fully_labeled = active
            .iter()
            .filter(|p| {
                let l = meta::labels(p);
                template_labels.iter().all(|(k, v)| l.get(k) == Some(v))
            })
            .count();
        let ready = active.iter().filter(|p| meta::pod_ready(p)).count();
        let available = active.iter().filter(|p| meta::pod_available(p, min_ready, now)).count();
        let terminating = owned.iter().filter(|p| meta::is_terminating(p)).count();
        let mut status = json!({
            "replicas": active.len(),
            "fullyLabeledReplicas": fully_labeled,
            "readyReplicas": ready,
            "availableReplicas": available,
            "terminatingReplicas": terminating,
            "observedGeneration": meta::generation(rs),
        });
        let mut conditions: Vec<Value> = rs["status"]["conditions"].as_array().cloned().unwrap_or_default();
        match failure {
            Some((reason, message)) => {
                meta::touch_condition(&mut conditions, "ReplicaFailure", "True", &reason, &message);
                conditions.iter_mut().for_each(|c| {
                    if let Some(m) = c.as_object_mut() {
                        m.remove("lastUpdateTime");
                    }
                });
            }
            None => conditions.retain(|c| c["type"] != "ReplicaFailure"),
        }
        if !conditions.is_empty() {
            status["conditions"] = json!(conditions);
        }
        // Pods that are ready but not yet available: look again when they are.
        let again = (ready > available && min_ready > 0).then(|| Duration::from_secs(1));
        if meta::same_status(&rs["status"], &status) {
            return Ok(again);
        }
        let mut updated = (*rs).clone();
        updated["status"] = status;
        let path =
            format!("{}/status", meta::path("apps/v1", "replicasets", meta::namespace(rs), meta::name(rs)));
        match self.client.replace(&path, &updated).await {
            Ok(v) => self.sets.assume(&v),
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        Ok(again)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_prefers_unassigned_pending_unready_new_pods() {
        let pod = |node: &str, phase: &str, ready: bool, created: &str| {
            json!({"metadata": {"creationTimestamp": created}, "spec": {"nodeName": node},
                "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}, "lastTransitionTime": created}]}})
        };
        let mut pods = [
            pod("n", "Running", true, "2020-01-01T00:00:00Z"),
            pod("n", "Running", true, "2021-01-01T00:00:00Z"),
            pod("n", "Running", false, "2020-01-01T00:00:00Z"),
            pod("n", "Pending", false, "2020-01-01T00:00:00Z"),
            pod("", "Pending", false, "2020-01-01T00:00:00Z"),
        ];
        pods.sort_by_key(deletion_rank);
        let order: Vec<(&str, &str, bool, &str)> = pods
            .iter()
            .map(|p| {
                (
                    p["spec"]["nodeName"].as_str().unwrap(),
                    p["status"]["phase"].as_str().unwrap(),
                    meta::pod_ready(p),
                    p["metadata"]["creationTimestamp"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                ("", "Pending", false, "2020-01-01T00:00:00Z"),
                ("n", "Pending", false, "2020-01-01T00:00:00Z"),
                ("n", "Running", false, "2020-01-01T00:00:00Z"),
                ("n", "Running", true, "2021-01-01T00:00:00Z"),
                ("n", "Running", true, "2020-01-01T00:00:00Z"),
            ]
        );
    }
}
