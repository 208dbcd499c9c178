//! A Deployment's status from its ReplicaSets, and the Available and
//! Progressing conditions with upstream's reasons and messages.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::{Controller, State, replicas, rollout};
use crate::{Error, meta};

fn count(rs: &Value, field: &str) -> i64 {
    rs["status"][field].as_i64().unwrap_or(0)
}

/// The status the ReplicaSets add up to (upstream's `calculateStatus`).
fn calculate(st: &State) -> Value {
    let d = &st.d;
    let sum = |f: &str| st.all().map(|r| count(r, f)).sum::<i64>();
    let available = sum("availableReplicas");
    let want = replicas(d);
    let mut status = json!({
        "observedGeneration": meta::generation(d),
        "replicas": sum("replicas"),
        "updatedReplicas": st.new.as_ref().map(|r| count(r, "replicas")).unwrap_or(0),
        "readyReplicas": sum("readyReplicas"),
        "availableReplicas": available,
        // As upstream: the sets' desired total, not the Deployment's.
        "unavailableReplicas": (st.all().map(|r| replicas(r)).sum::<i64>() - available).max(0),
    });
    if let Some(c) = d["status"]["collisionCount"].as_i64() {
        status["collisionCount"] = json!(c);
    }
    let mut conditions: Vec<Value> = d["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let (_, max_unavailable) = rollout::fenceposts(d);
    if available >= want - max_unavailable {
        meta::set_condition(
            &mut conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        );
    } else {
        meta::set_condition(
            &mut conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        );
    }
    // The new set's creation failures show on the Deployment.
    match st.new.as_ref().and_then(|r| meta::condition(r, "ReplicaFailure")) {
        Some(f) => meta::set_condition(
            &mut conditions,
            "ReplicaFailure",
            "True",
            f["reason"].as_str().unwrap_or(""),
            f["message"].as_str().unwrap_or(""),
        ),
        None => conditions.retain(|c| c["type"] != "ReplicaFailure"),
    }
    status["conditions"] = json!(conditions);
    status
}

/// Upstream's `DeploymentComplete`.
pub(super) fn complete(d: &Value, st: &State) -> bool {
    let status = calculate(st);
    let want = replicas(d);
    status["updatedReplicas"] == want
        && status["replicas"] == want
        && status["availableReplicas"] == want
        && status["observedGeneration"].as_i64() >= Some(meta::generation(d))
}

fn progress_deadline(d: &Value) -> Option<Duration> {
    let s = d["spec"]["progressDeadlineSeconds"].as_i64()?;
    (s < i64::from(i32::MAX)).then(|| Duration::from_secs(u64::try_from(s).unwrap_or(0)))
}

/// Whether the new status shows progress over the old one (upstream's
/// `DeploymentProgressing`).
fn progressing(old: &Value, new: &Value) -> bool {
    let f = |s: &Value, k: &str| s[k].as_i64().unwrap_or(0);
    f(new, "updatedReplicas") > f(old, "updatedReplicas")
        || f(new, "replicas") - f(new, "updatedReplicas") < f(old, "replicas") - f(old, "updatedReplicas")
        || f(new, "readyReplicas") > f(old, "readyReplicas")
        || f(new, "availableReplicas") > f(old, "availableReplicas")
}

impl Controller {
    /// Writes the status (with the Progressing condition when `rollout`);
    /// returns when to check the progress deadline again.
    pub(super) async fn sync_status(&self, st: &State, rollout: bool) -> Result<Option<Duration>, Error> {
        let d = &st.d;
        let mut status = calculate(st);
        let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
        let new_name = st.new.as_ref().map(|r| meta::name(r).to_owned()).unwrap_or_default();
        let mut again = None;
        let paused = d["spec"]["paused"] == true;
        let current = meta::condition(d, "Progressing").cloned();
        let current_reason = current.as_ref().and_then(|c| c["reason"].as_str()).unwrap_or("");
        if paused {
            if current_reason != "DeploymentPaused" {
                meta::set_condition(
                    &mut conditions,
                    "Progressing",
                    "Unknown",
                    "DeploymentPaused",
                    "Deployment is paused",
                );
            }
        } else if current_reason == "DeploymentPaused" {
            meta::set_condition(
                &mut conditions,
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed",
            );
        } else if let Some(deadline) = progress_deadline(d).filter(|_| rollout) {
            let done = status["updatedReplicas"] == replicas(d)
                && status["availableReplicas"] == replicas(d)
                && status["replicas"] == replicas(d);
            if done {
                meta::set_condition(
                    &mut conditions,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &format!("ReplicaSet \"{new_name}\" has successfully progressed."),
                );
            } else if progressing(&d["status"], &status) {
                // Progress resets the deadline (lastUpdateTime).
                meta::touch_condition(
                    &mut conditions,
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    &format!("ReplicaSet \"{new_name}\" is progressing."),
                );
                again = Some(deadline);
            } else if current_reason != "ProgressDeadlineExceeded" {
                let since = current.as_ref().and_then(|c| meta::time(&c["lastUpdateTime"]));
                let elapsed =
                    since.and_then(|t| SystemTime::now().duration_since(t).ok()).unwrap_or_default();
                if since.is_some() && elapsed > deadline {
                    meta::set_condition(
                        &mut conditions,
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        &format!("ReplicaSet \"{new_name}\" has timed out progressing."),
                    );
                    self.recorder.warning(
                        d,
                        "ProgressDeadlineExceeded",
                        format!("ReplicaSet \"{new_name}\" has timed out progressing."),
                    );
                } else {
                    again = Some(deadline.saturating_sub(elapsed) + Duration::from_secs(1));
                }
            }
        }
        status["conditions"] = json!(conditions);
        if meta::same_status(&d["status"], &status) {
            return Ok(again);
        }
        let mut v = (**d).clone();
        v["status"] = status;
        self.write_status(&v).await?;
        Ok(again)
    }
}
