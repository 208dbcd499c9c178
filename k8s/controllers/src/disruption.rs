//! The disruption controller, as upstream's: each PodDisruptionBudget's
//! status — expected pods, desired and current healthy pods, and the
//! `disruptionsAllowed` the eviction subresource spends. For percentages
//! and `maxUnavailable` the expected count is the scale of the pods'
//! controllers (Deployment, ReplicaSet, StatefulSet), else the number of
//! selected pods. Evicted pods recorded in `disruptedPods` do not count as
//! healthy until they are gone (or two minutes pass).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime};

use lichen_client::Client;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::deployment::int_or_percent;
use crate::informer::{Change, Informer};
use crate::queue::Queue;
use crate::{Error, Informers, meta};

/// How long an eviction may take before its pod counts again.
const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone)]
struct Controller {
    client: Client,
    budgets: Informer,
    pods: Informer,
    sets: Informer,
    deployments: Informer,
    statefulsets: Informer,
}

pub fn start(tasks: &mut JoinSet<()>, client: &Client, informers: &Informers) {
    let queue = Queue::new();
    let c = Controller {
        client: client.clone(),
        budgets: informers.pdbs.clone(),
        pods: informers.pods.clone(),
        sets: informers.replicasets.clone(),
        deployments: informers.deployments.clone(),
        statefulsets: informers.statefulsets.clone(),
    };
    informers.replicasets.needed();
    informers.deployments.needed();
    informers.statefulsets.needed();
    let q = queue.clone();
    informers.pdbs.on_change(move |ch| q.add(&meta::key_of(ch.object())));
    let (q, budgets) = (queue.clone(), informers.pdbs.clone());
    informers.pods.on_change(move |ch| {
        let mut pods = vec![ch.object()];
        if let Change::Updated { old, .. } = ch {
            pods.push(old);
        }
        for pdb in budgets.list_in(meta::namespace(ch.object())) {
            let sel = meta::selector(&pdb);
            // policy/v1: `{}` selects every pod, a missing selector none.
            if pods.iter().any(|p| sel.matches_object(p)) {
                q.add(&meta::key_of(&pdb));
            }
        }
    });
    let synced = vec![informers.pdbs.clone(), informers.pods.clone()];
    crate::spawn_workers(tasks, "disruption", &queue, synced, 2, move |key| {
        let c = c.clone();
        async move { c.sync(&key).await }
    });
}

fn is_percent(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.ends_with('%'))
}

impl Controller {
    /// The scale of the controllers owning `pods` (each counted once).
    fn controllers_scale(&self, pods: &[&Value]) -> Option<i64> {
        let mut seen = HashSet::new();
        let mut total = 0;
        for pod in pods {
            let r = meta::controller_ref(pod)?;
            let (kind, name) = (r["kind"].as_str()?, r["name"].as_str()?);
            let ns = meta::namespace(pod);
            let scale = match kind {
                "ReplicaSet" => {
                    let rs = self.sets.get_in(ns, name)?;
                    match meta::controller_ref(&rs) {
                        Some(d) if d["kind"] == "Deployment" => {
                            let d = self.deployments.get_in(ns, d["name"].as_str()?)?;
                            (
                                format!("Deployment/{}", meta::uid(&d)),
                                d["spec"]["replicas"].as_i64().unwrap_or(1),
                            )
                        }
                        _ => (
                            format!("ReplicaSet/{}", meta::uid(&rs)),
                            rs["spec"]["replicas"].as_i64().unwrap_or(1),
                        ),
                    }
                }
                "StatefulSet" => {
                    let s = self.statefulsets.get_in(ns, name)?;
                    (format!("StatefulSet/{}", meta::uid(&s)), s["spec"]["replicas"].as_i64().unwrap_or(1))
                }
                _ => return None,
            };
            if seen.insert(scale.0) {
                total += scale.1;
            }
        }
        Some(total)
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, Error> {
        let Some(pdb) = self.budgets.get(key) else { return Ok(None) };
        let sel = meta::selector(&pdb);
        let pods: Vec<std::sync::Arc<Value>> =
            self.pods.list_in(meta::namespace(&pdb)).into_iter().filter(|p| sel.matches_object(p)).collect();
        let refs: Vec<&Value> = pods.iter().map(|p| &**p).collect();
        let spec = &pdb["spec"];
        let (expected, desired) = match (spec.get("maxUnavailable"), spec.get("minAvailable")) {
            (Some(max), _) if !max.is_null() => {
                let expected = self.controllers_scale(&refs).unwrap_or(refs.len() as i64);
                (expected, (expected - int_or_percent(max, expected, true)).max(0))
            }
            (_, Some(min)) if is_percent(min) => {
                let expected = self.controllers_scale(&refs).unwrap_or(refs.len() as i64);
                (expected, int_or_percent(min, expected, true))
            }
            (_, Some(min)) => (refs.len() as i64, min.as_i64().unwrap_or(0)),
            _ => (refs.len() as i64, 0),
        };
        // Recent evictions whose pods still exist.
        let now = SystemTime::now();
        let mut disrupted = BTreeMap::new();
        let mut again = None;
        for (name, at) in pdb["status"]["disruptedPods"].as_object().into_iter().flatten() {
            let alive = refs.iter().any(|p| meta::name(p) == name && !meta::is_terminating(p));
            let Some(t) = meta::time(at) else { continue };
            let expires = t + DELETION_TIMEOUT;
            if alive && expires > now {
                disrupted.insert(name.clone(), at.clone());
                let wait = expires.duration_since(now).unwrap_or_default();
                again = Some(again.map_or(wait, |a: Duration| a.min(wait)));
            }
        }
        let healthy = refs
            .iter()
            .filter(|p| {
                meta::pod_ready(p) && !meta::is_terminating(p) && !disrupted.contains_key(meta::name(p))
            })
            .count() as i64;
        let allowed = (healthy - desired).max(0);
        let mut conditions: Vec<Value> = pdb["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let (status, reason) =
            if allowed > 0 { ("True", "SufficientPods") } else { ("False", "InsufficientPods") };
        meta::set_condition(&mut conditions, "DisruptionAllowed", status, reason, "");
        for c in &mut conditions {
            if let Some(m) = c.as_object_mut() {
                m.remove("lastUpdateTime");
                m.insert("observedGeneration".into(), json!(meta::generation(&pdb)));
            }
        }
        let mut new_status = json!({
            "observedGeneration": meta::generation(&pdb),
            "expectedPods": expected,
            "desiredHealthy": desired,
            "currentHealthy": healthy,
            "disruptionsAllowed": allowed,
            "conditions": conditions,
        });
        if !disrupted.is_empty() {
            new_status["disruptedPods"] = json!(disrupted);
        }
        if pdb["status"] == new_status {
            return Ok(again);
        }
        let mut v = (*pdb).clone();
        v["status"] = new_status;
        let path = format!(
            "{}/status",
            meta::path("policy/v1", "poddisruptionbudgets", meta::namespace(&pdb), meta::name(&pdb))
        );
        match self.client.replace(&path, &v).await {
            Ok(v) => self.budgets.assume(&v),
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        Ok(again)
    }
}
