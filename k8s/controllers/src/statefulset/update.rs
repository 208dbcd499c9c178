//! What a StatefulSet sync does next, as upstream's `updateStatefulSet`:
//! recreate failed pods, create missing ordinals (in order and one at a
//! time under OrderedReady, all at once under Parallel), delete ordinals
//! past `replicas` from the highest down, then roll pods at or above the
//! partition to the update revision from the highest ordinal down. Pure:
//! it returns the actions; the controller performs them in order.

use std::time::SystemTime;

use serde_json::Value;

use super::identity::{self, ordinal, ordinal_range, revision};
use crate::meta;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the pod with this ordinal at the update (`true`) or the
    /// current revision.
    Create { ordinal: i64, update: bool },
    /// Delete a pod; `failed` when it is recreated because it failed.
    Delete { name: String, failed: bool },
    /// Put back the pod's identity labels.
    FixIdentity { name: String },
}

pub struct Input<'a> {
    pub set: &'a Value,
    /// The set's pods (members, any ordinal).
    pub pods: Vec<&'a Value>,
    pub update_revision: &'a str,
    pub now: SystemTime,
}

fn running_ready(p: &Value) -> bool {
    p["status"]["phase"] == "Running" && meta::pod_ready(p)
}

fn running_available(p: &Value, min_ready: i64, now: SystemTime) -> bool {
    p["status"]["phase"] == "Running" && meta::pod_available(p, min_ready, now)
}

/// Upstream's `isHealthy`: running, ready and not terminating.
pub fn healthy(p: &Value) -> bool {
    running_ready(p) && !meta::is_terminating(p)
}

/// The partition of a RollingUpdate (0 otherwise).
pub fn partition(set: &Value) -> i64 {
    set["spec"]["updateStrategy"]["rollingUpdate"]["partition"].as_i64().unwrap_or(0).max(0)
}

/// Whether a new pod at `ordinal` gets the update revision: yes, unless
/// a RollingUpdate's partition holds it at the current one (upstream's
/// `newVersionedStatefulSetPod`).
pub fn at_update_revision(set: &Value, ordinal: i64) -> bool {
    set["spec"]["updateStrategy"]["type"] == "OnDelete"
        || ordinal - identity::start_ordinal(set) >= partition(set)
}

/// A RollingUpdate's maxUnavailable when set: rounded up, at least 1.
pub fn max_unavailable(set: &Value) -> Option<i64> {
    let v = set["spec"]["updateStrategy"]["rollingUpdate"].get("maxUnavailable")?;
    if v.is_null() {
        return None;
    }
    Some(crate::meta::int_or_percent(v, identity::replicas(set), true).max(1))
}

pub fn plan(input: &Input<'_>) -> Vec<Action> {
    let set = input.set;
    let mut actions = Vec::new();
    if meta::is_terminating(set) {
        return actions;
    }
    let range = ordinal_range(set);
    let min_ready = set["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let monotonic = set["spec"]["podManagementPolicy"] != "Parallel";
    let mut slots: Vec<Option<&Value>> = range.clone().map(|_| None).collect();
    let mut condemned: Vec<&Value> = Vec::new();
    for p in &input.pods {
        match ordinal(p) {
            Some(o) if range.contains(&o) => slots[usize::try_from(o - range.start).unwrap_or(0)] = Some(*p),
            Some(_) => condemned.push(p),
            None => {}
        }
    }
    // Highest ordinal first.
    condemned.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
    let first_unhealthy: Option<&str> = slots
        .iter()
        .find_map(|s| match s {
            None => Some(None),
            Some(p) if !healthy(p) => Some(Some(meta::name(p))),
            Some(_) => None,
        })
        .map(|n| n.unwrap_or(""))
        .or_else(|| condemned.iter().rev().find(|p| !healthy(p)).map(|p| meta::name(p)));

    for (i, slot) in slots.iter_mut().enumerate() {
        let ord = range.start + i64::try_from(i).unwrap_or(0);
        if let Some(p) = *slot
            && p["status"]["phase"] == "Failed"
            && !meta::is_terminating(p)
        {
            actions.push(Action::Delete { name: meta::name(p).to_owned(), failed: true });
            *slot = None;
        }
        let Some(p) = *slot else {
            actions.push(Action::Create { ordinal: ord, update: at_update_revision(set, ord) });
            if monotonic {
                return actions;
            }
            continue;
        };
        if monotonic && (meta::is_terminating(p) || !running_available(p, min_ready, input.now)) {
            return actions;
        }
        if !identity::identity_matches(set, p) {
            actions.push(Action::FixIdentity { name: meta::name(p).to_owned() });
        }
    }
    // Scale down, highest ordinal first; under OrderedReady one at a time
    // and only while the others are healthy.
    for p in &condemned {
        if meta::is_terminating(p) {
            if monotonic {
                return actions;
            }
            continue;
        }
        let first = first_unhealthy == Some(meta::name(p));
        if monotonic && !first && !running_available(p, min_ready, input.now) {
            return actions;
        }
        actions.push(Action::Delete { name: meta::name(p).to_owned(), failed: false });
        if monotonic {
            return actions;
        }
    }
    if set["spec"]["updateStrategy"]["type"] == "OnDelete" {
        return actions;
    }
    // Roll: ordinals at or above the partition, highest first.
    let update_min = usize::try_from(partition(set)).unwrap_or(0);
    let pods: Vec<&Value> = slots.iter().flatten().copied().collect();
    if pods.len() < slots.len() {
        // Parallel creations are still on their way.
        return actions;
    }
    if let Some(max) = max_unavailable(set) {
        let unavailable = i64::try_from(pods.iter().filter(|p| !healthy(p)).count()).unwrap_or(0);
        let mut budget = max - unavailable;
        for p in pods.iter().skip(update_min).rev() {
            if budget <= 0 {
                break;
            }
            if revision(p) != input.update_revision && !meta::is_terminating(p) {
                actions.push(Action::Delete { name: meta::name(p).to_owned(), failed: false });
                budget -= 1;
            }
        }
        return actions;
    }
    for p in pods.iter().skip(update_min).rev() {
        if revision(p) != input.update_revision && !meta::is_terminating(p) {
            actions.push(Action::Delete { name: meta::name(p).to_owned(), failed: false });
            return actions;
        }
        if !healthy(p) {
            return actions;
        }
    }
    actions
}

/// The counts of upstream's `computeReplicaStatus`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i64,
    pub ready: i64,
    pub available: i64,
    pub current: i64,
    pub updated: i64,
}

pub fn count(pods: &[&Value], current: &str, update: &str, min_ready: i64, now: SystemTime) -> Counts {
    let mut c = Counts::default();
    for p in pods {
        c.replicas += 1;
        if running_ready(p) {
            c.ready += 1;
            if running_available(p, min_ready, now) {
                c.available += 1;
            }
        }
        if !meta::is_terminating(p) {
            c.current += i64::from(revision(p) == current);
            c.updated += i64::from(revision(p) == update);
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(replicas: i64, extra: Value) -> Value {
        let mut s = json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"replicas": replicas, "podManagementPolicy": "OrderedReady",
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}});
        for (k, v) in extra.as_object().unwrap() {
            s["spec"][k] = v.clone();
        }
        s
    }

    fn pod(ord: i64, rev: &str, state: &str) -> Value {
        let name = format!("web-{ord}");
        let (phase, ready) = match state {
            "ready" => ("Running", "True"),
            "failed" => ("Failed", "False"),
            _ => ("Pending", "False"),
        };
        json!({"metadata": {"name": name, "namespace": "ns", "labels": {
                identity::POD_NAME_LABEL: name, identity::POD_INDEX_LABEL: ord.to_string(), identity::REVISION_LABEL: rev}},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]}})
    }

    fn run(set: &Value, pods: &[Value]) -> Vec<Action> {
        plan(&Input { set, pods: pods.iter().collect(), update_revision: "r2", now: SystemTime::now() })
    }

    fn create(ordinal: i64) -> Action {
        Action::Create { ordinal, update: true }
    }

    fn delete(name: &str) -> Action {
        Action::Delete { name: name.into(), failed: false }
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time_in_order() {
        let s = set(3, json!({}));
        assert_eq!(run(&s, &[]), [create(0)]);
        // web-0 not ready: nothing else happens.
        assert_eq!(run(&s, &[pod(0, "r2", "pending")]), []);
        assert_eq!(run(&s, &[pod(0, "r2", "ready")]), [create(1)]);
        // A missing lower ordinal comes first.
        assert_eq!(run(&s, &[pod(1, "r2", "ready")]), [create(0)]);
        let par = set(3, json!({"podManagementPolicy": "Parallel"}));
        assert_eq!(run(&par, &[]), [create(0), create(1), create(2)]);
        let shifted = set(2, json!({"ordinals": {"start": 3}}));
        assert_eq!(run(&shifted, &[]), [create(3)]);
    }

    #[test]
    fn scale_down_goes_from_the_highest_ordinal_one_at_a_time() {
        let s = set(1, json!({}));
        let pods = [pod(0, "r2", "ready"), pod(1, "r2", "ready"), pod(2, "r2", "ready")];
        assert_eq!(run(&s, &pods), [delete("web-2")]);
        let mut terminating = pods.clone();
        terminating[2]["metadata"]["deletionTimestamp"] = json!("2020-01-01T00:00:00Z");
        assert_eq!(run(&s, &terminating), []);
        let par = set(1, json!({"podManagementPolicy": "Parallel"}));
        assert_eq!(run(&par, &pods), [delete("web-2"), delete("web-1")]);
    }

    #[test]
    fn failed_pods_are_deleted_and_recreated() {
        let s = set(2, json!({}));
        let pods = [pod(0, "r2", "failed"), pod(1, "r2", "ready")];
        assert_eq!(run(&s, &pods), [Action::Delete { name: "web-0".into(), failed: true }, create(0)]);
    }

    #[test]
    fn rolling_update_respects_the_partition_from_the_top_down() {
        let p = |n| {
            set(3, json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": n}}}))
        };
        let old = [pod(0, "r1", "ready"), pod(1, "r1", "ready"), pod(2, "r1", "ready")];
        assert_eq!(run(&p(2), &old), [delete("web-2")]);
        assert_eq!(run(&p(0), &old), [delete("web-2")]);
        let mut mid = old.clone();
        mid[2] = pod(2, "r2", "ready");
        assert_eq!(run(&p(2), &mid), []);
        assert_eq!(run(&p(0), &mid), [delete("web-1")]);
        // The updated web-2 is not ready yet: wait.
        mid[2] = pod(2, "r2", "pending");
        assert_eq!(run(&p(0), &mid), []);
        // Recreated below the partition: the current revision.
        assert_eq!(run(&p(2), &old[1..]), [Action::Create { ordinal: 0, update: false }]);
        let on_delete = set(3, json!({"updateStrategy": {"type": "OnDelete"}}));
        assert_eq!(run(&on_delete, &old), []);
        assert!(at_update_revision(&on_delete, 0));
    }

    #[test]
    fn max_unavailable_rolls_several_at_once() {
        let s = set(
            4,
            json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": "50%"}}}),
        );
        assert_eq!(max_unavailable(&s), Some(2));
        let old: Vec<Value> = (0..4).map(|i| pod(i, "r1", "ready")).collect();
        assert_eq!(run(&s, &old), [delete("web-3"), delete("web-2")]);
        let mut mid = old.clone();
        mid[3] = pod(3, "r2", "pending");
        // OrderedReady waits for web-3; Parallel spends the rest of the budget.
        assert_eq!(run(&s, &mid), []);
        let mut par = s.clone();
        par["spec"]["podManagementPolicy"] = json!("Parallel");
        assert_eq!(run(&par, &mid), [delete("web-2")]);
        assert_eq!(max_unavailable(&set(4, json!({}))), None);
    }

    #[test]
    fn counts_follow_revisions_and_readiness() {
        let pods = [pod(0, "r1", "ready"), pod(1, "r2", "ready"), pod(2, "r2", "pending")];
        let refs: Vec<&Value> = pods.iter().collect();
        let c = count(&refs, "r1", "r2", 0, SystemTime::now());
        assert_eq!(c, Counts { replicas: 3, ready: 2, available: 2, current: 1, updated: 2 });
    }
}
