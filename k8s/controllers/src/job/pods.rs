//! What the Job controller reads from and writes to its pods: the tracking
//! finalizer, what counts as failed, creation from the template, and the
//! order in which surplus pods go.

use std::cmp::Reverse;
use std::sync::Arc;

use serde_json::{Value, json};

use super::indexes;
use crate::meta;

/// Keeps a finished pod until the Job has counted it.
pub const TRACKING: &str = "batch.kubernetes.io/job-tracking";

pub fn has_tracking(pod: &Value) -> bool {
    pod["metadata"]["finalizers"].as_array().is_some_and(|f| f.iter().any(|x| x == TRACKING))
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

pub fn succeeded(pod: &Value) -> bool {
    phase(pod) == "Succeeded"
}

/// Being deleted and not finished (upstream's `CountTerminatingPods`).
pub fn terminating(pod: &Value) -> bool {
    meta::is_terminating(pod) && !matches!(phase(pod), "Succeeded" | "Failed")
}

/// Only Failed pods are replaced (podReplacementPolicy Failed, or a pod
/// failure policy); otherwise a deleted pod counts as failed at once.
pub fn only_replace_failed(job: &Value) -> bool {
    job["spec"]["podReplacementPolicy"] == "Failed" || !job["spec"]["podFailurePolicy"].is_null()
}

/// Upstream's `isPodFailed`.
pub fn failed(pod: &Value, job: &Value) -> bool {
    if phase(pod) == "Failed" {
        return true;
    }
    !only_replace_failed(job) && meta::is_terminating(pod) && phase(pod) != "Succeeded"
}

/// The JSON patch that removes the tracking finalizer, if the pod has it;
/// the `test` makes it fail rather than remove another finalizer.
pub fn remove_tracking_patch(pod: &Value) -> Option<Value> {
    let i = pod["metadata"]["finalizers"].as_array()?.iter().position(|f| f == TRACKING)?;
    let path = format!("/metadata/finalizers/{i}");
    Some(json!([{"op": "test", "path": path, "value": TRACKING}, {"op": "remove", "path": path}]))
}

/// A new pod for `job`, with the index (Indexed jobs) and the finalizer.
pub fn from_template(job: &Value, index: Option<u64>) -> Value {
    let name = meta::name(job);
    let mut t = job["spec"]["template"].clone();
    if !t["metadata"].is_object() {
        t["metadata"] = json!({});
    }
    let generate_name = match index {
        Some(ix) => {
            indexes::add_env(&mut t);
            indexes::stamp(&mut t, name, ix);
            indexes::generate_name(name, ix)
        }
        None => format!("{name}-"),
    };
    let mut finalizers: Vec<Value> = t["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
    if !finalizers.iter().any(|f| f == TRACKING) {
        finalizers.push(json!(TRACKING));
    }
    let mut metadata = json!({
        "generateName": generate_name,
        "namespace": meta::namespace(job),
        "ownerReferences": [meta::owner_ref(job, "batch/v1", "Job")],
        "finalizers": finalizers,
    });
    for f in ["labels", "annotations"] {
        if !t["metadata"][f].is_null() {
            metadata[f] = t["metadata"][f].clone();
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": t["spec"]})
}

/// Upstream's `controller.ActivePods` order, least valuable first:
/// unassigned, pending, not ready, newer.
type Rank = (bool, u8, bool, Reverse<Option<std::time::SystemTime>>);

fn rank(pod: &Value) -> Rank {
    let assigned = pod["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
    let phase = match phase(pod) {
        "Pending" => 0,
        "Running" => 2,
        _ => 1,
    };
    (assigned, phase, meta::pod_ready(pod), Reverse(meta::creation(pod)))
}

/// The active pods to delete: for Indexed jobs first those without a valid
/// index and all but the best of each repeated index, then the least
/// valuable until `at_least` are chosen.
pub fn for_removal(
    active: &[Arc<Value>],
    completions: Option<u64>,
    indexed: bool,
    at_least: usize,
) -> Vec<Arc<Value>> {
    let mut rm: Vec<Arc<Value>> = Vec::new();
    let mut left: Vec<Arc<Value>> = Vec::new();
    if indexed {
        let completions = completions.unwrap_or(0);
        let mut by_index: std::collections::BTreeMap<u64, Vec<Arc<Value>>> = Default::default();
        for p in active {
            match indexes::valid(p, completions) {
                Some(ix) => by_index.entry(ix).or_default().push(p.clone()),
                None => rm.push(p.clone()),
            }
        }
        for (_, mut same) in by_index {
            same.sort_by_key(|p| rank(p));
            if let Some(best) = same.pop() {
                left.push(best);
            }
            rm.extend(same);
        }
    } else {
        left = active.to_vec();
    }
    if rm.len() < at_least {
        left.sort_by_key(|p| rank(p));
        let more = at_least - rm.len();
        rm.extend(left.into_iter().take(more));
    }
    rm
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ix: Option<u64>, node: &str, phase: &str, created: &str) -> Arc<Value> {
        let mut p = json!({"metadata": {"creationTimestamp": created, "annotations": {}},
            "spec": {"nodeName": node}, "status": {"phase": phase}});
        if let Some(ix) = ix {
            p["metadata"]["annotations"][indexes::COMPLETION_INDEX] = json!(ix.to_string());
        }
        Arc::new(p)
    }

    #[test]
    fn surplus_pods_go_least_valuable_first() {
        let pods = [
            pod(None, "n", "Running", "2020-01-01T00:00:00Z"),
            pod(None, "", "Pending", "2020-01-01T00:00:00Z"),
            pod(None, "n", "Running", "2021-01-01T00:00:00Z"),
        ];
        let rm = for_removal(&pods, Some(3), false, 2);
        assert_eq!(rm.len(), 2);
        assert!(Arc::ptr_eq(&rm[0], &pods[1]));
        assert!(Arc::ptr_eq(&rm[1], &pods[2]));
        assert!(for_removal(&pods, None, false, 0).is_empty());
    }

    #[test]
    fn indexed_jobs_drop_repeated_and_invalid_indexes() {
        let pods = [
            pod(Some(0), "n", "Running", "2020-01-01T00:00:00Z"),
            pod(Some(0), "", "Pending", "2020-01-01T00:00:00Z"),
            pod(Some(7), "n", "Running", "2020-01-01T00:00:00Z"),
            pod(None, "n", "Running", "2020-01-01T00:00:00Z"),
            pod(Some(1), "n", "Running", "2020-01-01T00:00:00Z"),
        ];
        let rm = for_removal(&pods, Some(3), true, 0);
        assert_eq!(rm.len(), 3);
        for kept in [&pods[0], &pods[4]] {
            assert!(!rm.iter().any(|p| Arc::ptr_eq(p, kept)));
        }
    }

    #[test]
    fn pods_carry_owner_finalizer_and_index() {
        let job = json!({"metadata": {"name": "pi", "namespace": "ns", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"batch.kubernetes.io/job-name": "pi"}},
                "spec": {"containers": [{"name": "c"}]}}}});
        let p = from_template(&job, Some(2));
        assert_eq!(p["metadata"]["generateName"], "pi-2-");
        assert_eq!(p["metadata"]["finalizers"], json!([TRACKING]));
        assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(p["metadata"]["labels"]["batch.kubernetes.io/job-name"], "pi");
        assert_eq!(p["metadata"]["labels"][indexes::COMPLETION_INDEX], "2");
        assert_eq!(from_template(&job, None)["metadata"]["generateName"], "pi-");
        assert!(has_tracking(&p));
        let patch = remove_tracking_patch(&p).unwrap();
        assert_eq!(patch[1]["path"], "/metadata/finalizers/0");
    }

    #[test]
    fn deleted_pods_count_as_failed_unless_only_failed_pods_are_replaced() {
        let job = json!({"spec": {}});
        let deleting = json!({"metadata": {"deletionTimestamp": "2020-01-01T00:00:00Z"}, "status": {"phase": "Running"}});
        assert!(failed(&deleting, &job));
        assert!(terminating(&deleting));
        let strict = json!({"spec": {"podReplacementPolicy": "Failed"}});
        assert!(!failed(&deleting, &strict));
        assert!(failed(&json!({"status": {"phase": "Failed"}}), &strict));
    }
}
