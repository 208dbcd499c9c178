//! The DaemonSet controller, as upstream's: one pod on every node that
//! passes the pod's node selector, required node affinity and taints
//! (with the daemon tolerations added); pods are pinned to their node by
//! `metadata.name` node affinity and bound by the scheduler. Extra, failed
//! (with back-off) and misplaced pods are deleted. Templates are kept as
//! ControllerRevisions ([`crate::history`]); RollingUpdate replaces pods
//! node by node within maxUnavailable/maxSurge, OnDelete waits for the
//! user. Status counts scheduled, misscheduled, ready, available and
//! updated nodes.

mod placement;
mod rolling;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use lichen_client::{Client, PatchType};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::history::{self, History};
use crate::informer::{Change, Informer};
use crate::queue::Queue;
use crate::{Error, Informers, meta};

pub use placement::{GENERATION_LABEL, HASH_LABEL, should_run};

/// Upstream's `burstReplicas`.
const BURST: usize = 250;
/// Failed daemon pods are recreated after 1 s, doubling up to 15 min.
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(900);

#[derive(Clone)]
struct Controller {
    client: Client,
    sets: Informer,
    pods: Informer,
    nodes: Informer,
    history: History,
    recorder: Recorder,
    /// Failed-pod back-off per `uid/node`: (current delay, last failure).
    backoff: Arc<Mutex<HashMap<String, (Duration, Instant)>>>,
}

fn owner_key(obj: &Value) -> Option<String> {
    crate::informer::owner_key(obj, "DaemonSet")
}

/// Whether a node change may change where daemon pods belong.
fn node_changed(old: &Value, new: &Value) -> bool {
    let statuses = |n: &Value| -> Vec<(Value, Value)> {
        n["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| (c["type"].clone(), c["status"].clone()))
            .collect()
    };
    old["metadata"]["labels"] != new["metadata"]["labels"]
        || old["spec"] != new["spec"]
        || statuses(old) != statuses(new)
}

pub fn start(tasks: &mut JoinSet<()>, client: &Client, informers: &Informers) {
    let queue = Queue::new();
    let c = Controller {
        client: client.clone(),
        sets: informers.daemonsets.clone(),
        pods: informers.pods.clone(),
        nodes: informers.nodes.clone(),
        history: History { client: client.clone(), revisions: informers.controllerrevisions.clone() },
        recorder: Recorder::new(client.clone(), "daemonset-controller"),
        backoff: Arc::default(),
    };
    let q = queue.clone();
    informers.daemonsets.on_change(move |ch| q.add(&meta::key_of(ch.object())));
    crate::informer::enqueue_owners(
        &informers.pods,
        &informers.daemonsets,
        "DaemonSet",
        &queue,
        crate::informer::selector_matches,
    );
    let (q, sets) = (queue.clone(), informers.daemonsets.clone());
    informers.nodes.on_change(move |ch| {
        if let Change::Updated { old, new } = ch
            && !node_changed(old, new)
        {
            return;
        }
        for k in sets.keys() {
            q.add(&k);
        }
    });
    let q = queue.clone();
    informers.controllerrevisions.on_change(move |ch| {
        if let Some(k) = owner_key(ch.object()) {
            q.add(&k);
        }
    });
    let synced = vec![
        informers.daemonsets.clone(),
        informers.pods.clone(),
        informers.nodes.clone(),
        informers.controllerrevisions.clone(),
    ];
    crate::spawn_workers(tasks, "daemonset", &queue, synced, 2, move |key| {
        let c = c.clone();
        async move { c.sync(&key).await }
    });
}

/// The DaemonSet's pods by the node they target; pods targeting no node
/// under `""`. Deleted pods that already finished are left out.
fn by_node(pods: &[Arc<Value>]) -> BTreeMap<String, Vec<Arc<Value>>> {
    let mut m: BTreeMap<String, Vec<Arc<Value>>> = BTreeMap::new();
    for p in pods {
        let finished = matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
        if meta::is_terminating(p) && finished {
            continue;
        }
        m.entry(placement::target_node(p).unwrap_or("").to_owned()).or_default().push(p.clone());
    }
    m
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Option<Duration>, Error> {
        let Some(ds) = self.sets.get(key) else {
            if let Ok(mut b) = self.backoff.lock() {
                b.retain(|_, (_, at)| at.elapsed() < 2 * BACKOFF_MAX);
            }
            return Ok(None);
        };
        if meta::selector(&ds).is_empty() {
            self.recorder.warning(
                &ds,
                "SelectingAll",
                "This daemon set is selecting all pods. A non-empty selector is required.",
            );
            return Ok(None);
        }
        if meta::is_terminating(&ds) {
            return Ok(None);
        }
        let (cur, old) = self.construct_history(&ds).await?;
        let hash = meta::label(&cur, HASH_LABEL).unwrap_or(meta::name(&cur)).to_owned();
        let generation = placement::template_generation(&ds);
        let pod_generation = generation.unwrap_or_else(|| history::number(&cur));
        let owner = crate::claim::Owner { obj: &ds, api_version: "apps/v1", kind: "DaemonSet" };
        let selector = meta::selector(&ds);
        let pods = crate::claim::claim(&self.client, &self.pods, owner, ("v1", "pods"), |p| {
            selector.matches_object(p)
        })
        .await?;
        let (acted, mut again) = self.manage(&ds, &pods, &hash, pod_generation).await?;
        if !acted && ds["spec"]["updateStrategy"]["type"] != "OnDelete" {
            let pods = self.owned(&ds);
            self.roll(&ds, &pods, &hash, generation, pod_generation).await?;
        }
        let pods = self.owned(&ds);
        self.cleanup_history(&ds, old, &pods).await?;
        let status_again = self.update_status(&ds, &pods, &hash, generation).await?;
        again = match (again, status_again) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(again)
    }

    /// The pods this DaemonSet controls now (from the cache).
    fn owned(&self, ds: &Value) -> Vec<Arc<Value>> {
        let uid = meta::uid(ds);
        self.pods
            .list_in(meta::namespace(ds))
            .into_iter()
            .filter(|p| meta::controller_uid(p) == uid)
            .collect()
    }

    /// Creates missing daemon pods and deletes extra, failed and misplaced
    /// ones. Returns whether it wrote anything and when to look again.
    async fn manage(
        &self,
        ds: &Value,
        pods: &[Arc<Value>],
        hash: &str,
        generation: i64,
    ) -> Result<(bool, Option<Duration>), Error> {
        let mut grouped = by_node(pods);
        let surge = rolling::budgets(ds, 1).0 > 0;
        let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        let now = SystemTime::now();
        let mut create_on = Vec::new();
        let mut delete = Vec::new();
        let mut again: Option<Duration> = None;
        for node in self.nodes.list() {
            let name = meta::name(&node).to_owned();
            let on_node = grouped.remove(&name).unwrap_or_default();
            let (run, keep) = should_run(&node, ds);
            let state = placement::NodeState {
                should_run: run,
                should_continue: keep,
                pods: on_node.iter().map(|p| &**p).collect(),
            };
            let plan = placement::plan_node(&state, hash, surge, min_ready, now);
            if plan.create {
                create_on.push(name.clone());
            }
            delete.extend(plan.delete);
            for failed in plan.failed {
                match self.failed_backoff(ds, &name) {
                    Some(wait) => again = Some(again.map_or(wait, |a| a.min(wait))),
                    None => {
                        let ns = meta::namespace(ds);
                        self.recorder.warning(
                            ds,
                            "FailedDaemonPod",
                            format!(
                                "Found failed daemon pod {ns}/{failed} on node {name}, will try to kill it"
                            ),
                        );
                        delete.push(failed);
                    }
                }
            }
        }
        // What is left targets nodes that do not exist (any more). Upstream
        // leaves bound ones to the pod garbage collector; there is none here.
        for p in grouped.into_values().flatten() {
            if !meta::is_terminating(&p) {
                delete.push(meta::name(&p).to_owned());
            }
        }
        let acted = !create_on.is_empty() || !delete.is_empty();
        self.sync_nodes(ds, &delete, &create_on, hash, generation).await?;
        Ok((acted, again))
    }

    /// `None` when a failed pod on `node` may be deleted now (and counts
    /// the failure); otherwise how long its back-off still runs.
    fn failed_backoff(&self, ds: &Value, node: &str) -> Option<Duration> {
        let key = format!("{}/{node}", meta::uid(ds));
        let Ok(mut b) = self.backoff.lock() else { return None };
        let now = Instant::now();
        match b.get(&key).copied() {
            Some((delay, at)) if now.duration_since(at) < delay => Some(delay - now.duration_since(at)),
            Some((delay, at)) if now.duration_since(at) <= 2 * BACKOFF_MAX => {
                b.insert(key, ((delay * 2).min(BACKOFF_MAX), now));
                None
            }
            _ => {
                b.insert(key, (BACKOFF_INITIAL, now));
                None
            }
        }
    }

    /// Deletes `delete` and creates a pod on each of `create_on`, in
    /// slow-start batches (upstream's `syncNodes`).
    async fn sync_nodes(
        &self,
        ds: &Value,
        delete: &[String],
        create_on: &[String],
        hash: &str,
        generation: i64,
    ) -> Result<(), Error> {
        let ns = meta::namespace(ds);
        let mut failure: Option<Error> = None;
        if !create_on.is_empty() {
            let template = placement::pod_template(ds, hash, generation);
            let mut batch = 1;
            let mut pending: Vec<&String> = create_on.iter().take(BURST).collect();
            while !pending.is_empty() && failure.is_none() {
                let rest = pending.split_off(batch.min(pending.len()));
                let mut creates = JoinSet::new();
                for node in &pending {
                    let pod = placement::pod_for_node(ds, &template, node);
                    let (client, path) = (self.client.clone(), meta::path("v1", "pods", ns, ""));
                    creates.spawn(async move { client.create(&path, &pod).await });
                }
                while let Some(r) = creates.join_next().await {
                    match r {
                        Ok(Ok(p)) => {
                            self.pods.assume(&p);
                            self.recorder.normal(
                                ds,
                                "SuccessfulCreate",
                                format!("Created pod: {}", meta::name(&p)),
                            );
                        }
                        Ok(Err(e)) => {
                            self.recorder.warning(ds, "FailedCreate", format!("Error creating: {e}"));
                            failure = Some(e.into());
                        }
                        Err(e) => failure = Some(Error::Invalid(e.to_string())),
                    }
                }
                pending = rest;
                batch *= 2;
            }
        }
        for name in delete.iter().take(BURST) {
            let Some(pod) = self.pods.get_in(ns, name) else { continue };
            let path = meta::path("v1", "pods", ns, name);
            let opts = json!({"preconditions": {"uid": meta::uid(&pod)}});
            match self.client.delete(&path, &opts).await {
                Ok(p) => {
                    if p["kind"] == "Pod" && meta::is_terminating(&p) {
                        self.pods.assume(&p);
                    } else {
                        self.pods.assume_deleted(&meta::key_of(&pod));
                    }
                    self.recorder.normal(ds, "SuccessfulDelete", format!("Deleted pod: {name}"));
                }
                Err(e) if e.is_not_found() => self.pods.assume_deleted(&meta::key_of(&pod)),
                Err(e) => {
                    self.recorder.warning(ds, "FailedDelete", format!("Error deleting: {e}"));
                    failure = Some(e.into());
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// One RollingUpdate step.
    async fn roll(
        &self,
        ds: &Value,
        pods: &[Arc<Value>],
        hash: &str,
        generation: Option<i64>,
        pod_generation: i64,
    ) -> Result<(), Error> {
        let mut grouped = by_node(pods);
        grouped.remove("");
        let nodes = self.nodes.list();
        let fits: HashMap<&str, bool> = nodes.iter().map(|n| (meta::name(n), should_run(n, ds).0)).collect();
        let desired = i64::try_from(fits.values().filter(|r| **r).count()).unwrap_or(0);
        let (max_surge, max_unavailable) = rolling::budgets(ds, desired);
        for (name, run) in &fits {
            if *run {
                grouped.entry((*name).to_owned()).or_default();
            }
        }
        let mut view: Vec<rolling::Node<'_>> = grouped
            .iter()
            .map(|(name, pods)| rolling::Node {
                name,
                should_run: fits.get(name.as_str()).copied().unwrap_or(false),
                pods: pods.iter().map(|p| &**p).collect(),
            })
            .collect();
        let rollout = rolling::Rollout {
            hash: hash.to_owned(),
            generation,
            max_surge,
            max_unavailable,
            desired,
            min_ready: ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
            now: SystemTime::now(),
        };
        let step = rollout.step(&mut view);
        self.sync_nodes(ds, &step.delete, &step.create_on, hash, pod_generation).await
    }

    /// The current revision (created or renumbered as needed) and the old
    /// ones (upstream's `constructHistory`).
    async fn construct_history(&self, ds: &Arc<Value>) -> Result<(Arc<Value>, Vec<Arc<Value>>), Error> {
        let revs = self.history.owned(ds, "DaemonSet").await?;
        let patch = history::template_patch(ds);
        let (mut current, old): (Vec<Arc<Value>>, Vec<Arc<Value>>) =
            revs.into_iter().partition(|r| r["data"] == patch);
        let next = history::next_number(&old);
        let Some(cur) = current.pop() else {
            return Ok((Arc::new(self.snapshot(ds, next, &patch).await?), old));
        };
        // Duplicates of the current template: the newest stays.
        for dup in current {
            self.history.delete(&dup).await?;
        }
        let cur = if history::number(&cur) < next {
            Arc::new(self.history.renumber(&cur, next).await?)
        } else {
            cur
        };
        Ok((cur, old))
    }

    /// A revision for the current template (upstream's `snapshot`), named
    /// after the template's hash.
    async fn snapshot(&self, ds: &Value, number: i64, patch: &Value) -> Result<Value, Error> {
        let collisions = ds["status"]["collisionCount"].as_i64().unwrap_or(0);
        let hash = crate::deployment::template_hash(&ds["spec"]["template"], collisions);
        let mut rev = history::new_revision(ds, "DaemonSet", patch.clone(), number, collisions);
        let labels = &mut rev["metadata"]["labels"];
        if let Some(l) = labels.as_object_mut() {
            l.remove(history::HASH_LABEL);
            l.insert(HASH_LABEL.into(), json!(hash));
        }
        let name = history::revision_name(meta::name(ds), &hash);
        rev["metadata"]["name"] = json!(name);
        let ns = meta::namespace(ds);
        match self.client.create(&meta::path("apps/v1", "controllerrevisions", ns, ""), &rev).await {
            Ok(v) => {
                self.history.revisions.assume(&v);
                Ok(v)
            }
            Err(e) if e.is_conflict() => {
                let path = meta::path("apps/v1", "controllerrevisions", ns, &name);
                if let Some(existing) = self.client.get_opt(&path).await?
                    && existing["data"] == *patch
                {
                    self.history.revisions.assume(&existing);
                    return Ok(existing);
                }
                // Another template has this name: count the collision so the
                // next hash differs.
                let path = format!("{}/status", meta::path("apps/v1", "daemonsets", ns, meta::name(ds)));
                let status = json!({"status": {"collisionCount": collisions + 1}});
                let v = self.client.patch(&path, PatchType::Merge, &status).await?;
                self.sets.assume(&v);
                Err(Error::Invalid(format!("controller revision {name} exists with another template")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes old revisions beyond `revisionHistoryLimit`, oldest first,
    /// never one a pod still runs (upstream's `cleanupHistory`).
    async fn cleanup_history(
        &self,
        ds: &Value,
        mut old: Vec<Arc<Value>>,
        pods: &[Arc<Value>],
    ) -> Result<(), Error> {
        let limit = ds["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10).max(0);
        let mut extra = i64::try_from(old.len()).unwrap_or(0) - limit;
        if extra <= 0 {
            return Ok(());
        }
        let live: HashSet<&str> = pods.iter().filter_map(|p| meta::label(p, HASH_LABEL)).collect();
        history::sort(&mut old);
        for rev in &old {
            if extra <= 0 {
                break;
            }
            if live.contains(meta::label(rev, HASH_LABEL).unwrap_or("")) {
                continue;
            }
            self.history.delete(rev).await?;
            extra -= 1;
        }
        Ok(())
    }

    async fn update_status(
        &self,
        ds: &Value,
        pods: &[Arc<Value>],
        hash: &str,
        generation: Option<i64>,
    ) -> Result<Option<Duration>, Error> {
        let grouped = by_node(pods);
        let now = SystemTime::now();
        let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        let (mut desired, mut current, mut misscheduled, mut ready, mut available, mut updated) =
            (0, 0, 0, 0, 0, 0);
        for node in self.nodes.list() {
            let (run, _) = should_run(&node, ds);
            let on_node = grouped.get(meta::name(&node)).filter(|p| !p.is_empty());
            match (run, on_node) {
                (true, None) => desired += 1,
                (true, Some(on_node)) => {
                    desired += 1;
                    current += 1;
                    let mut sorted: Vec<&Value> = on_node.iter().map(|p| &**p).collect();
                    placement::oldest_first(&mut sorted);
                    let pod = sorted[0];
                    if meta::pod_ready(pod) {
                        ready += 1;
                        if meta::pod_available(pod, min_ready, now) {
                            available += 1;
                        }
                    }
                    if rolling::is_updated(pod, hash, generation) {
                        updated += 1;
                    }
                }
                (false, Some(_)) => misscheduled += 1,
                (false, None) => {}
            }
        }
        let mut status = json!({
            "currentNumberScheduled": current,
            "numberMisscheduled": misscheduled,
            "desiredNumberScheduled": desired,
            "numberReady": ready,
            "observedGeneration": meta::generation(ds),
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
            "numberUnavailable": desired - available,
        });
        for kept in ["collisionCount", "conditions"] {
            if !ds["status"][kept].is_null() {
                status[kept] = ds["status"][kept].clone();
            }
        }
        let again = (min_ready > 0 && ready != available)
            .then(|| Duration::from_secs(u64::try_from(min_ready).unwrap_or(1)));
        if meta::same_status(&ds["status"], &status) {
            return Ok(again);
        }
        let mut v = ds.clone();
        v["status"] = status;
        let path =
            format!("{}/status", meta::path("apps/v1", "daemonsets", meta::namespace(ds), meta::name(ds)));
        match self.client.replace(&path, &v).await {
            Ok(v) => self.sets.assume(&v),
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        Ok(again)
    }
}
