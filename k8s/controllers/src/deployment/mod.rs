//! The Deployment controller, as upstream's: one ReplicaSet per pod
//! template (named `<deployment>-<pod-template-hash>`), rolled with
//! RollingUpdate (maxSurge/maxUnavailable) or Recreate; revisions in the
//! `deployment.kubernetes.io/revision` annotation (so `kubectl rollout
//! history|undo` work), `revisionHistoryLimit`, pause/resume, proportional
//! scaling, progressDeadlineSeconds and the Progressing/Available
//! conditions.

mod rollout;
mod status;

use std::sync::Arc;
use std::time::Duration;

use lichen_client::Client;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::informer::{Change, Informer};
use crate::queue::Queue;
use crate::{Error, Informers, meta};

pub use rollout::{int_or_percent, template_hash};

pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Annotations of the Deployment not copied to its ReplicaSets.
const NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

#[derive(Clone)]
struct Controller {
    client: Client,
    deployments: Informer,
    sets: Informer,
    pods: Informer,
    recorder: Recorder,
}

fn owner_key(obj: &Value) -> Option<String> {
    crate::informer::owner_key(obj, "Deployment")
}

pub fn start(tasks: &mut JoinSet<()>, client: &Client, informers: &Informers) {
    let queue = Queue::new();
    let c = Controller {
        client: client.clone(),
        deployments: informers.deployments.clone(),
        sets: informers.replicasets.clone(),
        pods: informers.pods.clone(),
        recorder: Recorder::new(client.clone(), "deployment-controller"),
    };
    let q = queue.clone();
    informers.deployments.on_change(move |ch| q.add(&meta::key_of(ch.object())));
    crate::informer::enqueue_owners(
        &informers.replicasets,
        &informers.deployments,
        "Deployment",
        &queue,
        crate::informer::selector_matches,
    );
    // Recreate waits for the old pods to be gone.
    let (q, sets) = (queue.clone(), informers.replicasets.clone());
    informers.pods.on_change(move |ch| {
        if let Change::Deleted(pod) = ch
            && let Some(r) = meta::controller_ref(pod)
            && r["kind"] == "ReplicaSet"
            && let Some(rs) = sets.get_in(meta::namespace(pod), r["name"].as_str().unwrap_or(""))
            && let Some(k) = owner_key(&rs)
        {
            q.add(&k);
        }
    });
    let synced = vec![informers.deployments.clone(), informers.replicasets.clone(), informers.pods.clone()];
    crate::spawn_workers(tasks, "deployment", &queue, synced, 4, move |key| {
        let c = c.clone();
        async move { c.sync(&key).await }
    });
}

fn replicas(obj: &Value) -> i64 {
    obj["spec"]["replicas"].as_i64().unwrap_or(1)
}

fn revision(rs: &Value) -> i64 {
    meta::annotation(rs, REVISION).and_then(|r| r.parse().ok()).unwrap_or(0)
}

/// A pod template without the hash label, for comparing templates.
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH_LABEL);
        if labels.is_empty() {
            t["metadata"].as_object_mut().map(|m| m.remove("labels"));
        }
    }
    if t["metadata"].as_object().is_some_and(|m| m.is_empty()) {
        t.as_object_mut().map(|m| m.remove("metadata"));
    }
    t
}

/// What one sync works with.
struct State {
    d: Arc<Value>,
    new: Option<Arc<Value>>,
    /// Oldest first.
    old: Vec<Arc<Value>>,
}

impl State {
    fn all(&self) -> impl Iterator<Item = &Arc<Value>> {
        self.new.iter().chain(self.old.iter())
    }
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Option<Duration>, Error> {
        let Some(d) = self.deployments.get(key) else { return Ok(None) };
        let selector = meta::selector(&d);
        if selector.is_empty() {
            self.recorder.warning(
                &d,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            );
            return Ok(None);
        }
        let owner = crate::claim::Owner { obj: &d, api_version: "apps/v1", kind: "Deployment" };
        let sets = crate::claim::claim(&self.client, &self.sets, owner, ("apps/v1", "replicasets"), |rs| {
            selector.matches_object(rs)
        })
        .await?;
        if meta::is_terminating(&d) {
            let st = self.split(&d, sets);
            return self.sync_status(&st, false).await;
        }
        let paused = d["spec"]["paused"] == true;
        let st = self.split(&d, sets);
        let scaling = st.all().any(|rs| {
            replicas(rs) > 0 && meta::annotation(rs, DESIRED).is_some_and(|v| v != replicas(&d).to_string())
        });
        if paused || scaling {
            let st = self.ensure_revision(st, false).await?;
            self.scale(&st).await?;
            if paused {
                self.cleanup(&st).await?;
            }
            return self.sync_status(&st, false).await;
        }
        if d["spec"]["strategy"]["type"] == "Recreate" {
            self.recreate(st).await
        } else {
            self.rolling(st).await
        }
    }

    /// Splits into the new ReplicaSet (same template, oldest if several)
    /// and the old ones, oldest first.
    fn split(&self, d: &Arc<Value>, mut sets: Vec<Arc<Value>>) -> State {
        sets.sort_by_key(|rs| (meta::creation(rs), meta::name(rs).to_owned()));
        let template = without_hash(&d["spec"]["template"]);
        let new_at = sets.iter().position(|rs| without_hash(&rs["spec"]["template"]) == template);
        let new = new_at.map(|i| sets.remove(i));
        State { d: d.clone(), new, old: sets }
    }

    /// Makes sure the new ReplicaSet exists (when `create`) and carries the
    /// next revision; the Deployment's revision annotation follows.
    async fn ensure_revision(&self, mut st: State, create: bool) -> Result<State, Error> {
        let max_old = st.old.iter().map(|rs| revision(rs)).max().unwrap_or(0);
        let d = st.d.clone();
        let (surge, _) = rollout::fenceposts(&d);
        match st.new.clone() {
            Some(rs) => {
                let mut want = (*rs).clone();
                let current = revision(&rs);
                let mut ann = rs["metadata"]["annotations"].as_object().cloned().unwrap_or_default();
                copy_annotations(&d, &mut ann);
                if current <= max_old {
                    // A rollback to this template: it becomes the newest revision.
                    let mut history: Vec<String> = ann
                        .get(REVISION_HISTORY)
                        .and_then(Value::as_str)
                        .map(|h| h.split(',').map(String::from).collect())
                        .unwrap_or_default();
                    if current > 0 {
                        history.push(current.to_string());
                    }
                    ann.insert(REVISION.into(), json!((max_old + 1).to_string()));
                    if !history.is_empty() {
                        ann.insert(REVISION_HISTORY.into(), json!(history.join(",")));
                    }
                }
                want["metadata"]["annotations"] = Value::Object(ann);
                want["spec"]["minReadySeconds"] = d["spec"]["minReadySeconds"].clone();
                if want["spec"]["minReadySeconds"].is_null() {
                    want["spec"].as_object_mut().map(|s| s.remove("minReadySeconds"));
                }
                if want != *rs {
                    let v = self.write_rs(&want).await?;
                    st.new = Some(Arc::new(v));
                }
                if meta::condition(&d, "Progressing").is_none() {
                    let name = meta::name(&rs).to_owned();
                    self.set_progressing(
                        &d,
                        "FoundNewReplicaSet",
                        &format!("Found new replica set \"{name}\""),
                    )
                    .await?;
                }
            }
            None if create => {
                let rs = self.create_rs(&d, max_old + 1, surge, st.all().map(|r| replicas(r)).sum()).await?;
                st.new = Some(Arc::new(rs));
            }
            None => {}
        }
        if let Some(new) = &st.new {
            let rev = revision(new).to_string();
            if meta::annotation(&d, REVISION) != Some(rev.as_str()) {
                let path = meta::path("apps/v1", "deployments", meta::namespace(&d), meta::name(&d));
                let patch = json!({"metadata": {"annotations": {REVISION: rev}}});
                let v = self.client.patch(&path, lichen_client::PatchType::Merge, &patch).await?;
                self.deployments.assume(&v);
                st.d = Arc::new(v);
            }
        }
        Ok(st)
    }

    async fn create_rs(&self, d: &Value, rev: i64, surge: i64, total_spec: i64) -> Result<Value, Error> {
        let mut collisions = d["status"]["collisionCount"].as_i64().unwrap_or(0);
        let ns = meta::namespace(d);
        loop {
            let hash = template_hash(&d["spec"]["template"], collisions);
            let name = format!("{}-{hash}", meta::name(d));
            let mut template = d["spec"]["template"].clone();
            template["metadata"]["labels"][HASH_LABEL] = json!(hash);
            let mut selector = d["spec"]["selector"].clone();
            selector["matchLabels"][HASH_LABEL] = json!(hash);
            let mut labels = d["spec"]["template"]["metadata"]["labels"].clone();
            labels[HASH_LABEL] = json!(hash);
            let want = replicas(d);
            let size = if d["spec"]["strategy"]["type"] == "Recreate" {
                want
            } else {
                rollout::new_rs_replicas(want, surge, total_spec, 0)
            };
            let mut ann = serde_json::Map::new();
            copy_annotations(d, &mut ann);
            ann.insert(REVISION.into(), json!(rev.to_string()));
            ann.insert(DESIRED.into(), json!(want.to_string()));
            ann.insert(MAX_REPLICAS.into(), json!((want + surge).to_string()));
            let mut spec = json!({"replicas": size, "selector": selector, "template": template});
            if let Some(m) = d["spec"]["minReadySeconds"].as_i64() {
                spec["minReadySeconds"] = json!(m);
            }
            let rs = json!({
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "labels": labels,
                    "annotations": ann,
                    "ownerReferences": [meta::owner_ref(d, "apps/v1", "Deployment")],
                },
                "spec": spec,
            });
            match self.client.create(&meta::path("apps/v1", "replicasets", ns, ""), &rs).await {
                Ok(v) => {
                    self.sets.assume(&v);
                    if size > 0 {
                        self.recorder.normal(
                            d,
                            "ScalingReplicaSet",
                            format!("Scaled up replica set {name} from 0 to {size}"),
                        );
                    }
                    self.set_progressing(
                        d,
                        "NewReplicaSetCreated",
                        &format!("Created new replica set \"{name}\""),
                    )
                    .await?;
                    return Ok(v);
                }
                Err(e) if e.is_conflict() => {
                    // A ReplicaSet of that name with another template: a hash
                    // collision. Count it and try the next name.
                    let path = meta::path("apps/v1", "replicasets", ns, &name);
                    if let Some(existing) = self.client.get_opt(&path).await?
                        && meta::controller_uid(&existing) == meta::uid(d)
                        && without_hash(&existing["spec"]["template"]) == without_hash(&d["spec"]["template"])
                    {
                        self.sets.assume(&existing);
                        return Ok(existing);
                    }
                    collisions += 1;
                    let path = format!("{}/status", meta::path("apps/v1", "deployments", ns, meta::name(d)));
                    let patch = json!({"status": {"collisionCount": collisions}});
                    let _ = self.client.patch(&path, lichen_client::PatchType::Merge, &patch).await;
                    if collisions > 20 {
                        return Err(Error::Invalid(format!("replica set name {name} keeps colliding")));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn write_rs(&self, rs: &Value) -> Result<Value, Error> {
        let path = meta::path("apps/v1", "replicasets", meta::namespace(rs), meta::name(rs));
        let v = self.client.replace(&path, rs).await?;
        self.sets.assume(&v);
        Ok(v)
    }

    /// Sets a ReplicaSet's size and the desired/max annotations.
    async fn scale_rs(&self, d: &Value, rs: &Arc<Value>, size: i64) -> Result<Arc<Value>, Error> {
        let (surge, _) = rollout::fenceposts(d);
        let want = replicas(d);
        let old = replicas(rs);
        let mut v = (**rs).clone();
        v["spec"]["replicas"] = json!(size);
        v["metadata"]["annotations"][DESIRED] = json!(want.to_string());
        v["metadata"]["annotations"][MAX_REPLICAS] = json!((want + surge).to_string());
        if v == **rs {
            return Ok(rs.clone());
        }
        let v = Arc::new(self.write_rs(&v).await?);
        if size != old {
            let how = if size > old { "up" } else { "down" };
            self.recorder.normal(
                d,
                "ScalingReplicaSet",
                format!("Scaled {how} replica set {} from {old} to {size}", meta::name(rs)),
            );
        }
        Ok(v)
    }

    async fn rolling(&self, st: State) -> Result<Option<Duration>, Error> {
        let mut st = self.ensure_revision(st, true).await?;
        let d = st.d.clone();
        let want = replicas(&d);
        let (surge, unavailable) = rollout::fenceposts(&d);
        let Some(new) = st.new.clone() else { return self.sync_status(&st, false).await };
        // Grow (or trim) the new set.
        let total: i64 = st.all().map(|r| replicas(r)).sum();
        let target = if replicas(&new) > want {
            want
        } else {
            rollout::new_rs_replicas(want, surge, total, replicas(&new))
        };
        if target != replicas(&new) {
            st.new = Some(self.scale_rs(&d, &new, target).await?);
            return self.sync_status(&st, true).await;
        }
        // Shrink the old ones.
        let available = |rs: &Value| rs["status"]["availableReplicas"].as_i64().unwrap_or(0);
        let new_rs = rollout::Rs { spec: replicas(&new), available: available(&new) };
        let olds: Vec<rollout::Rs> =
            st.old.iter().map(|r| rollout::Rs { spec: replicas(r), available: available(r) }).collect();
        let sizes = rollout::scale_down_old(want, unavailable, new_rs, &olds);
        let mut scaled = false;
        for (i, size) in sizes.into_iter().enumerate() {
            if size != olds[i].spec {
                let rs = st.old[i].clone();
                st.old[i] = self.scale_rs(&d, &rs, size).await?;
                scaled = true;
            }
        }
        if scaled {
            return self.sync_status(&st, true).await;
        }
        if status::complete(&d, &st) {
            self.cleanup(&st).await?;
        }
        self.sync_status(&st, true).await
    }

    async fn recreate(&self, st: State) -> Result<Option<Duration>, Error> {
        let mut st = self.ensure_revision(st, false).await?;
        let d = st.d.clone();
        let mut scaled = false;
        for i in 0..st.old.len() {
            if replicas(&st.old[i]) > 0 {
                let rs = st.old[i].clone();
                st.old[i] = self.scale_rs(&d, &rs, 0).await?;
                scaled = true;
            }
        }
        if scaled {
            return self.sync_status(&st, true).await;
        }
        // Old pods must be gone (terminating ones too) before new ones start.
        let old_uids: Vec<&str> = st.old.iter().map(|r| meta::uid(r)).collect();
        let old_running = self.pods.list_in(meta::namespace(&d)).iter().any(|p| {
            old_uids.contains(&meta::controller_uid(p))
                && !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
        });
        if old_running {
            return self.sync_status(&st, true).await;
        }
        let mut st = self.ensure_revision(st, true).await?;
        if let Some(new) = st.new.clone()
            && replicas(&new) != replicas(&d)
        {
            st.new = Some(self.scale_rs(&d, &new, replicas(&d)).await?);
        }
        if status::complete(&d, &st) {
            self.cleanup(&st).await?;
        }
        self.sync_status(&st, true).await
    }

    /// Scaling without a template change (or while paused), as upstream's
    /// `scale`: one active set takes the new size; otherwise the change is
    /// spread over the active sets in proportion to their sizes.
    async fn scale(&self, st: &State) -> Result<(), Error> {
        let d = &st.d;
        let want = replicas(d);
        let active: Vec<&Arc<Value>> = st.all().filter(|r| replicas(r) > 0).collect();
        let only = match active.len() {
            0 => st.new.as_ref().or(st.old.last()),
            1 => active.first().copied(),
            _ => None,
        };
        if let Some(rs) = only {
            self.scale_rs(d, rs, want).await?;
            return Ok(());
        }
        let (surge, _) = rollout::fenceposts(d);
        let allowed = if want > 0 { want + surge } else { 0 };
        let current: i64 = active.iter().map(|r| replicas(r)).sum();
        let delta = allowed - current;
        if delta == 0 {
            // Sizes are right; only the annotations need the new count.
            for rs in active {
                self.scale_rs(d, rs, replicas(rs)).await?;
            }
            return Ok(());
        }
        // Newest first when growing, oldest first when shrinking.
        let mut ordered = active.clone();
        ordered.sort_by_key(|r| meta::creation(r));
        if delta > 0 {
            ordered.reverse();
        }
        let sizes = rollout::proportional(&ordered.iter().map(|r| replicas(r)).collect::<Vec<_>>(), delta);
        for (rs, size) in ordered.into_iter().zip(sizes) {
            self.scale_rs(d, rs, size).await?;
        }
        Ok(())
    }

    /// Deletes the oldest empty ReplicaSets beyond `revisionHistoryLimit`.
    async fn cleanup(&self, st: &State) -> Result<(), Error> {
        let limit = st.d["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10).max(0);
        let mut empty: Vec<&Arc<Value>> = st
            .old
            .iter()
            .filter(|r| {
                replicas(r) == 0
                    && r["status"]["replicas"].as_i64().unwrap_or(0) == 0
                    && !meta::is_terminating(r)
            })
            .collect();
        let extra = usize::try_from(i64::try_from(empty.len()).unwrap_or(0) - limit).unwrap_or(0);
        empty.sort_by_key(|r| revision(r));
        for rs in empty.into_iter().take(extra) {
            let path = meta::path("apps/v1", "replicasets", meta::namespace(rs), meta::name(rs));
            let opts = json!({"preconditions": {"uid": meta::uid(rs)}});
            match self.client.delete(&path, &opts).await {
                Ok(_) => self.sets.assume_deleted(&meta::key_of(rs)),
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn set_progressing(&self, d: &Value, reason: &str, message: &str) -> Result<(), Error> {
        let Some(current) = self.deployments.get(&meta::key_of(d)) else { return Ok(()) };
        let mut conditions: Vec<Value> =
            current["status"]["conditions"].as_array().cloned().unwrap_or_default();
        meta::set_condition(&mut conditions, "Progressing", "True", reason, message);
        let mut v = (*current).clone();
        v["status"]["conditions"] = json!(conditions);
        self.write_status(&v).await
    }

    async fn write_status(&self, d: &Value) -> Result<(), Error> {
        let path =
            format!("{}/status", meta::path("apps/v1", "deployments", meta::namespace(d), meta::name(d)));
        match self.client.replace(&path, d).await {
            Ok(v) => {
                self.deployments.assume(&v);
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Copies the Deployment's annotations onto a ReplicaSet's, except the
/// controller's own.
fn copy_annotations(d: &Value, into: &mut serde_json::Map<String, Value>) {
    for (k, v) in d["metadata"]["annotations"].as_object().into_iter().flatten() {
        if !NOT_COPIED.contains(&k.as_str()) {
            into.insert(k.clone(), v.clone());
        }
    }
}
