//! A Job's status as the controller computes it, and its conditions with
//! upstream's rules (`ensureJobConditionStatus`).

use std::time::SystemTime;

use serde_json::{Map, Value, json};

use crate::meta;

pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
pub const FAILURE_TARGET: &str = "FailureTarget";
pub const SUSPENDED: &str = "Suspended";

/// The fields of `status` this controller owns; others are kept.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Status {
    pub active: i64,
    pub ready: i64,
    pub terminating: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub start_time: Option<String>,
    pub completion_time: Option<String>,
    pub completed_indexes: String,
    pub uncounted_succeeded: Vec<String>,
    pub uncounted_failed: Vec<String>,
    pub conditions: Vec<Value>,
}

fn uids(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|u| u.as_str().map(str::to_owned)).collect()
}

impl Status {
    pub fn of(job: &Value) -> Status {
        let s = &job["status"];
        let int = |k: &str| s[k].as_i64().unwrap_or(0);
        let text = |k: &str| s[k].as_str().map(str::to_owned);
        Status {
            active: int("active"),
            ready: int("ready"),
            terminating: int("terminating"),
            succeeded: int("succeeded"),
            failed: int("failed"),
            start_time: text("startTime"),
            completion_time: text("completionTime"),
            completed_indexes: text("completedIndexes").unwrap_or_default(),
            uncounted_succeeded: uids(&s["uncountedTerminatedPods"]["succeeded"]),
            uncounted_failed: uids(&s["uncountedTerminatedPods"]["failed"]),
            conditions: s["conditions"].as_array().cloned().unwrap_or_default(),
        }
    }

    /// `old` (a status) with these fields; zero counters are left out as
    /// upstream's `omitempty` does, `ready` and `terminating` always set.
    pub fn to_json(&self, old: &Value) -> Value {
        let mut s: Map<String, Value> = old.as_object().cloned().unwrap_or_default();
        for (k, v) in [("active", self.active), ("succeeded", self.succeeded), ("failed", self.failed)] {
            if v == 0 {
                s.remove(k);
            } else {
                s.insert(k.into(), json!(v));
            }
        }
        s.insert("ready".into(), json!(self.ready));
        s.insert("terminating".into(), json!(self.terminating));
        let mut set_text = |k: &str, v: Option<&str>| match v {
            Some(v) if !v.is_empty() => {
                s.insert(k.into(), json!(v));
            }
            _ => {
                s.remove(k);
            }
        };
        set_text("startTime", self.start_time.as_deref());
        set_text("completionTime", self.completion_time.as_deref());
        set_text("completedIndexes", Some(&self.completed_indexes));
        let mut uncounted = Map::new();
        if !self.uncounted_succeeded.is_empty() {
            uncounted.insert("succeeded".into(), json!(self.uncounted_succeeded));
        }
        if !self.uncounted_failed.is_empty() {
            uncounted.insert("failed".into(), json!(self.uncounted_failed));
        }
        s.insert("uncountedTerminatedPods".into(), Value::Object(uncounted));
        if self.conditions.is_empty() {
            s.remove("conditions");
        } else {
            s.insert("conditions".into(), json!(self.conditions));
        }
        Value::Object(s)
    }

    pub fn condition(&self, kind: &str) -> Option<&Value> {
        self.conditions.iter().find(|c| c["type"] == kind)
    }

    /// Sets a condition as upstream: a change of status, reason or message
    /// rewrites it with fresh times; a False one is never added. Returns
    /// whether anything changed.
    pub fn ensure(&mut self, cond: &Cond, status: &str, now: SystemTime) -> bool {
        let fresh = cond.json(status, now);
        if let Some(c) = self.conditions.iter_mut().find(|c| c["type"] == cond.kind) {
            let same = c["status"] == status
                && c["reason"].as_str().unwrap_or("") == cond.reason
                && c["message"].as_str().unwrap_or("") == cond.message;
            if same {
                return false;
            }
            *c = fresh;
            return true;
        }
        if status == "False" {
            return false;
        }
        self.conditions.push(fresh);
        true
    }
}

/// A condition to set: its type, reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    pub kind: &'static str,
    pub reason: String,
    pub message: String,
}

impl Cond {
    pub fn new(kind: &'static str, reason: &str, message: &str) -> Cond {
        Cond { kind, reason: reason.to_owned(), message: message.to_owned() }
    }

    /// The same reason and message under another type.
    pub fn retyped(&self, kind: &'static str) -> Cond {
        Cond { kind, ..self.clone() }
    }

    pub fn json(&self, status: &str, now: SystemTime) -> Value {
        let t = meta::rfc3339(now);
        let mut c = json!({"type": self.kind, "status": status, "lastProbeTime": t, "lastTransitionTime": t});
        if !self.reason.is_empty() {
            c["reason"] = json!(self.reason);
        }
        if !self.message.is_empty() {
            c["message"] = json!(self.message);
        }
        c
    }

    /// The condition `kind` of a status, as a `Cond`.
    pub fn from_status(s: &Status, kind: &'static str) -> Option<Cond> {
        let c = s.condition(kind).filter(|c| c["status"] == "True")?;
        Some(Cond::new(kind, c["reason"].as_str().unwrap_or(""), c["message"].as_str().unwrap_or("")))
    }
}

/// Complete or Failed is True (upstream's `IsJobFinished`).
pub fn finished(job: &Value) -> bool {
    meta::condition_true(job, COMPLETE) || meta::condition_true(job, FAILED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_and_omits_zero_counters() {
        let job = json!({"status": {"active": 2, "ready": 1, "failedIndexes": "3",
            "uncountedTerminatedPods": {"succeeded": ["a"]}}});
        let mut s = Status::of(&job);
        assert_eq!(s.uncounted_succeeded, ["a"]);
        s.active = 0;
        s.succeeded = 3;
        s.uncounted_succeeded.clear();
        let out = s.to_json(&job["status"]);
        assert_eq!(
            out,
            json!({"ready": 1, "terminating": 0, "succeeded": 3, "failedIndexes": "3", "uncountedTerminatedPods": {}})
        );
    }

    #[test]
    fn conditions_change_only_on_a_different_status_reason_or_message() {
        let mut s = Status::default();
        let t0 = SystemTime::UNIX_EPOCH;
        let suspended = Cond::new(SUSPENDED, "JobResumed", "Job resumed");
        assert!(!s.ensure(&suspended, "False", t0), "a False condition is not added");
        let suspended = Cond::new(SUSPENDED, "JobSuspended", "Job suspended");
        assert!(s.ensure(&suspended, "True", t0));
        assert!(!s.ensure(&suspended, "True", t0 + std::time::Duration::from_secs(5)));
        assert_eq!(s.conditions[0]["lastTransitionTime"], "1970-01-01T00:00:00Z");
        assert!(s.ensure(&Cond::new(SUSPENDED, "JobResumed", "Job resumed"), "False", t0));
        assert_eq!(s.conditions[0]["status"], "False");
    }
}
