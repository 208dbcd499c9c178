//! The StatefulSet controller, as upstream's: pods with stable names
//! `<set>-<ordinal>`, hostnames under `spec.serviceName` and claims from
//! `volumeClaimTemplates` made before their pod; OrderedReady or Parallel
//! pod management; RollingUpdate (partition, maxUnavailable) or OnDelete
//! between ControllerRevisions ([`crate::history`]); the claims' owners
//! follow `persistentVolumeClaimRetentionPolicy`. The decisions are in
//! [`update`], the identity in [`identity`]; this module reads the caches
//! and writes through the API.

mod identity;
mod update;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lichen_client::{Client, PatchType};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::history::{self, History};
use crate::informer::Informer;
use crate::queue::Queue;
use crate::{Error, Informers, meta};

pub use identity::{POD_INDEX_LABEL, POD_NAME_LABEL, REVISION_LABEL};
use update::Action;

#[derive(Clone)]
struct Controller {
    client: Client,
    sets: Informer,
    pods: Informer,
    claims: Informer,
    history: History,
    recorder: Recorder,
}

fn owner_key(obj: &Value) -> Option<String> {
    crate::informer::owner_key(obj, "StatefulSet")
}

pub fn start(tasks: &mut JoinSet<()>, client: &Client, informers: &Informers) {
    let queue = Queue::new();
    let c = Controller {
        client: client.clone(),
        sets: informers.statefulsets.clone(),
        pods: informers.pods.clone(),
        claims: informers.pvcs.clone(),
        history: History { client: client.clone(), revisions: informers.controllerrevisions.clone() },
        recorder: Recorder::new(client.clone(), "statefulset-controller"),
    };
    let q = queue.clone();
    informers.statefulsets.on_change(move |ch| q.add(&meta::key_of(ch.object())));
    crate::informer::enqueue_owners(
        &informers.pods,
        &informers.statefulsets,
        "StatefulSet",
        &queue,
        |set, pod| identity::is_member(set, pod) && meta::selector(set).matches_object(pod),
    );
    let q = queue.clone();
    informers.controllerrevisions.on_change(move |ch| {
        if let Some(k) = owner_key(ch.object()) {
            q.add(&k);
        }
    });
    informers.pvcs.needed();
    let synced = vec![
        informers.statefulsets.clone(),
        informers.pods.clone(),
        informers.controllerrevisions.clone(),
        informers.pvcs.clone(),
    ];
    crate::spawn_workers(tasks, "statefulset", &queue, synced, 2, move |key| {
        let c = c.clone();
        async move { c.sync(&key).await }
    });
}

/// The revisions a sync works between.
struct Revisions {
    current: Arc<Value>,
    update: Arc<Value>,
    collision_count: i64,
    all: Vec<Arc<Value>>,
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Option<Duration>, Error> {
        let Some(set) = self.sets.get(key) else { return Ok(None) };
        let owner = crate::claim::Owner { obj: &set, api_version: "apps/v1", kind: "StatefulSet" };
        let selector = meta::selector(&set);
        let pods = crate::claim::claim(&self.client, &self.pods, owner, ("v1", "pods"), |p| {
            selector.matches_object(p) && identity::is_member(&set, p)
        })
        .await?;
        let revs = self.revisions(&set).await?;
        let mut again = None;
        if !meta::is_terminating(&set) {
            self.retain_claims(&set, &pods).await?;
            self.create_missing_claims(&set, &pods).await?;
            let input = update::Input {
                set: &set,
                pods: pods.iter().map(|p| &**p).collect(),
                update_revision: meta::name(&revs.update),
                now: SystemTime::now(),
            };
            let actions = update::plan(&input);
            again = self.perform(&set, &revs, actions).await?;
        }
        let pods = self.members(&set);
        let status_again = self.update_status(&set, &revs, &pods).await?;
        self.truncate_history(&set, &revs, &pods).await?;
        Ok(match (again, status_again) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// The set's pods in the cache.
    fn members(&self, set: &Value) -> Vec<Arc<Value>> {
        let uid = meta::uid(set);
        self.pods
            .list_in(meta::namespace(set))
            .into_iter()
            .filter(|p| meta::controller_uid(p) == uid && identity::is_member(set, p))
            .collect()
    }

    /// The current and update revisions (upstream's
    /// `getStatefulSetRevisions`): the update revision is the one equal to
    /// the template, created (or renumbered, on a rollback) as needed.
    async fn revisions(&self, set: &Value) -> Result<Revisions, Error> {
        let mut all = self.history.owned(set, "StatefulSet").await?;
        let mut collision_count = set["status"]["collisionCount"].as_i64().unwrap_or(0);
        let next = history::next_number(&all);
        let candidate =
            history::new_revision(set, "StatefulSet", history::template_patch(set), next, collision_count);
        let equal: Vec<&Arc<Value>> = all.iter().filter(|r| history::equal(r, &candidate)).collect();
        let update = match (equal.last(), all.last()) {
            (Some(e), Some(last)) if meta::name(e) == meta::name(last) => (*e).clone(),
            (Some(e), _) => {
                let v = Arc::new(self.history.renumber(e, next).await?);
                let name = meta::name(&v).to_owned();
                all.retain(|r| meta::name(r) != name);
                all.push(v.clone());
                v
            }
            (None, _) => {
                let v = Arc::new(self.history.create(set, &candidate, &mut collision_count).await?);
                all.push(v.clone());
                v
            }
        };
        let current_name = set["status"]["currentRevision"].as_str().unwrap_or("");
        let current =
            all.iter().find(|r| meta::name(r) == current_name).cloned().unwrap_or_else(|| update.clone());
        Ok(Revisions { current, update, collision_count, all })
    }

    /// Performs the planned actions in order; stops at the first that
    /// must be waited for.
    async fn perform(
        &self,
        set: &Value,
        revs: &Revisions,
        actions: Vec<Action>,
    ) -> Result<Option<Duration>, Error> {
        let ns = meta::namespace(set);
        for action in actions {
            match action {
                Action::Create { ordinal, update } => {
                    let rev = if update { &revs.update } else { &revs.current };
                    let template = identity::template_of(rev);
                    let pod = identity::new_pod(set, &template, ordinal, meta::name(rev));
                    if !self.create_claims(set, &pod, ordinal).await? {
                        // A claim is still going away with its old pod.
                        return Ok(Some(Duration::from_secs(1)));
                    }
                    match self.client.create(&meta::path("v1", "pods", ns, ""), &pod).await {
                        Ok(p) => {
                            self.pods.assume(&p);
                            self.recorder.normal(
                                set,
                                "SuccessfulCreate",
                                format!(
                                    "create Pod {} in StatefulSet {} successful",
                                    meta::name(&p),
                                    meta::name(set)
                                ),
                            );
                        }
                        // The old pod of that name is still terminating.
                        Err(e) if e.is_conflict() => return Ok(Some(Duration::from_secs(1))),
                        Err(e) => {
                            self.recorder.warning(
                                set,
                                "FailedCreate",
                                format!(
                                    "create Pod {} in StatefulSet {} failed error: {e}",
                                    meta::name(&pod),
                                    meta::name(set)
                                ),
                            );
                            return Err(e.into());
                        }
                    }
                }
                Action::Delete { name, failed } => {
                    let Some(pod) = self.pods.get_in(ns, &name) else { continue };
                    if failed {
                        self.recorder.warning(
                            set,
                            "RecreatingFailedPod",
                            format!("StatefulSet {ns}/{} is recreating failed Pod {name}", meta::name(set)),
                        );
                    }
                    let opts = json!({"preconditions": {"uid": meta::uid(&pod)}});
                    let gone = match self.client.delete(&pod_path(&pod), &opts).await {
                        Ok(p) if p["kind"] == "Pod" && meta::is_terminating(&p) => {
                            self.pods.assume(&p);
                            false
                        }
                        Ok(_) => {
                            self.pods.assume_deleted(&meta::key_of(&pod));
                            true
                        }
                        Err(e) if e.is_not_found() => {
                            self.pods.assume_deleted(&meta::key_of(&pod));
                            true
                        }
                        Err(e) => {
                            self.recorder.warning(
                                set,
                                "FailedDelete",
                                format!(
                                    "delete Pod {name} in StatefulSet {} failed error: {e}",
                                    meta::name(set)
                                ),
                            );
                            return Err(e.into());
                        }
                    };
                    self.recorder.normal(
                        set,
                        "SuccessfulDelete",
                        format!("delete Pod {name} in StatefulSet {} successful", meta::name(set)),
                    );
                    if failed && !gone {
                        // Recreated once it is gone (its deletion wakes us).
                        return Ok(None);
                    }
                }
                Action::FixIdentity { name } => {
                    let Some(pod) = self.pods.get_in(ns, &name) else { continue };
                    let ord = identity::ordinal(&pod).unwrap_or(0);
                    let patch = json!({"metadata": {"uid": meta::uid(&pod), "labels": {
                        POD_NAME_LABEL: name, POD_INDEX_LABEL: ord.to_string()}}});
                    match self.client.patch(&pod_path(&pod), PatchType::Merge, &patch).await {
                        Ok(p) => self.pods.assume(&p),
                        Err(e) if e.is_not_found() || e.is_conflict() => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(None)
    }

    /// Creates the pod's missing claims; `false` when one of them still
    /// belongs to a previous pod of that name (upstream's `PodClaimIsStale`).
    async fn create_claims(&self, set: &Value, pod: &Value, ordinal: i64) -> Result<bool, Error> {
        let ns = meta::namespace(set);
        for (_, mut claim) in identity::claims(set, ordinal) {
            if let Some(existing) = self.claims.get_in(ns, meta::name(&claim)) {
                let stale = meta::is_terminating(&existing)
                    || existing["metadata"]["ownerReferences"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|r| r["kind"] == "Pod");
                if stale {
                    return Ok(false);
                }
                continue;
            }
            if let Some(refs) = identity::claim_owners(&claim, set, None) {
                claim["metadata"]["ownerReferences"] = json!(refs);
            }
            let name = meta::name(&claim).to_owned();
            match self.client.create(&meta::path("v1", "persistentvolumeclaims", ns, ""), &claim).await {
                Ok(v) => {
                    self.claims.assume(&v);
                    self.recorder.normal(
                        set,
                        "SuccessfulCreate",
                        format!(
                            "create Claim {name} Pod {} in StatefulSet {} success",
                            meta::name(pod),
                            meta::name(set)
                        ),
                    );
                }
                Err(e) if e.is_conflict() => {}
                Err(e) => {
                    self.recorder.warning(
                        set,
                        "FailedCreate",
                        format!(
                            "create Claim {name} for Pod {} in StatefulSet {} failed error: {e}",
                            meta::name(pod),
                            meta::name(set)
                        ),
                    );
                    return Err(e.into());
                }
            }
        }
        Ok(true)
    }

    /// Pending pods whose claims went missing get them back.
    async fn create_missing_claims(&self, set: &Value, pods: &[Arc<Value>]) -> Result<(), Error> {
        for p in pods {
            if p["status"]["phase"] == "Pending"
                && !meta::is_terminating(p)
                && let Some(ord) = identity::ordinal(p)
            {
                self.create_claims(set, p, ord).await?;
            }
        }
        Ok(())
    }

    /// Sets the claims' owner references as the retention policy says.
    async fn retain_claims(&self, set: &Value, pods: &[Arc<Value>]) -> Result<(), Error> {
        let ns = meta::namespace(set);
        for p in pods {
            let Some(ord) = identity::ordinal(p) else { continue };
            for (_, want) in identity::claims(set, ord) {
                let Some(claim) = self.claims.get_in(ns, meta::name(&want)) else { continue };
                if meta::is_terminating(&claim) {
                    continue;
                }
                let Some(refs) = identity::claim_owners(&claim, set, Some(p)) else { continue };
                let patch = json!({"metadata": {"ownerReferences": refs, "uid": meta::uid(&claim)}});
                let path = meta::path("v1", "persistentvolumeclaims", ns, meta::name(&claim));
                match self.client.patch(&path, PatchType::Merge, &patch).await {
                    Ok(v) => self.claims.assume(&v),
                    Err(e) if e.is_not_found() || e.is_conflict() => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    async fn update_status(
        &self,
        set: &Value,
        revs: &Revisions,
        pods: &[Arc<Value>],
    ) -> Result<Option<Duration>, Error> {
        let min_ready = set["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        let refs: Vec<&Value> = pods.iter().map(|p| &**p).collect();
        let (current, update) = (meta::name(&revs.current), meta::name(&revs.update));
        let c = update::count(&refs, current, update, min_ready, SystemTime::now());
        // A finished rollout makes the update revision current
        // (upstream's `completeRollingUpdate`).
        let done = set["spec"]["updateStrategy"]["type"] != "OnDelete"
            && c.updated == c.replicas
            && c.ready == c.replicas;
        let (current, current_replicas) = if done { (update, c.updated) } else { (current, c.current) };
        let mut status = json!({
            "observedGeneration": meta::generation(set),
            "replicas": c.replicas,
            "readyReplicas": c.ready,
            "currentReplicas": current_replicas,
            "updatedReplicas": c.updated,
            "availableReplicas": c.available,
            "currentRevision": current,
            "updateRevision": update,
            "collisionCount": revs.collision_count,
        });
        if !set["status"]["conditions"].is_null() {
            status["conditions"] = set["status"]["conditions"].clone();
        }
        let again = (min_ready > 0 && c.ready != c.available)
            .then(|| Duration::from_secs(u64::try_from(min_ready).unwrap_or(1)));
        if meta::same_status(&set["status"], &status) {
            return Ok(again);
        }
        let mut v = set.clone();
        v["status"] = status;
        let path = format!(
            "{}/status",
            meta::path("apps/v1", "statefulsets", meta::namespace(set), meta::name(set))
        );
        match self.client.replace(&path, &v).await {
            Ok(v) => self.sets.assume(&v),
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        Ok(again)
    }

    /// Deletes revisions no pod uses beyond `revisionHistoryLimit`
    /// (upstream's `truncateHistory`).
    async fn truncate_history(
        &self,
        set: &Value,
        revs: &Revisions,
        pods: &[Arc<Value>],
    ) -> Result<(), Error> {
        let mut live: HashSet<String> = pods.iter().map(|p| identity::revision(p).to_owned()).collect();
        live.insert(meta::name(&revs.current).to_owned());
        live.insert(meta::name(&revs.update).to_owned());
        if let Some(c) = self
            .sets
            .get(&meta::key_of(set))
            .and_then(|s| s["status"]["currentRevision"].as_str().map(String::from))
        {
            live.insert(c);
        }
        let mut all = revs.all.clone();
        history::sort(&mut all);
        let limit = set["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10);
        for rev in history::to_trim(&all, limit, &live) {
            self.history.delete(rev).await?;
        }
        Ok(())
    }
}

fn pod_path(pod: &Value) -> String {
    meta::path("v1", "pods", meta::namespace(pod), meta::name(pod))
}
