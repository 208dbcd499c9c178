//! The delay before a Job replaces failed pods, as upstream's
//! `backoff_utils.go`: failures since the last success double a base delay
//! (10 s) up to a cap (6 min), counted from the last failure.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::meta;

/// Failures since the last success and when the last one happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record {
    pub failures_after_last_success: u32,
    pub last_failure: Option<SystemTime>,
}

impl Record {
    /// The record after pods newly seen succeeded and failed.
    pub fn next(self, new_succeeded: &[&Value], new_failed: &[&Value]) -> Record {
        let mut failed: Vec<SystemTime> = new_failed.iter().map(|p| finished_at(p)).collect();
        failed.sort_unstable();
        let last_success = new_succeeded.iter().map(|p| finished_at(p)).max();
        match last_success {
            None if failed.is_empty() => self,
            None => Record {
                failures_after_last_success: self.failures_after_last_success
                    + u32::try_from(failed.len()).unwrap_or(u32::MAX),
                last_failure: failed.last().copied(),
            },
            Some(success) => {
                let after: Vec<&SystemTime> = failed.iter().filter(|t| **t > success).collect();
                Record {
                    failures_after_last_success: u32::try_from(after.len()).unwrap_or(u32::MAX),
                    last_failure: after.last().map(|t| **t),
                }
            }
        }
    }

    /// How long to wait at `now` before creating pods.
    pub fn remaining(&self, now: SystemTime, base: Duration, max: Duration) -> Duration {
        let Some(last) = self.last_failure else { return Duration::ZERO };
        if self.failures_after_last_success == 0 {
            return Duration::ZERO;
        }
        let delay = delay(self.failures_after_last_success, base, max);
        match now.duration_since(last) {
            Ok(elapsed) => delay.saturating_sub(elapsed),
            // A failure "in the future" (clock skew): wait the delay and the skew.
            Err(e) => delay + e.duration(),
        }
    }
}

/// The delay after `failures` consecutive failures.
pub fn delay(failures: u32, base: Duration, max: Duration) -> Duration {
    let mut d = base;
    for _ in 1..failures {
        d = d.saturating_mul(2);
        if d >= max {
            return max;
        }
    }
    d
}

/// When a pod finished: its containers' last finish, else the Ready=False
/// transition, else its deletion less the grace period, else its creation.
pub fn finished_at(pod: &Value) -> SystemTime {
    from_containers(pod)
        .or_else(|| {
            meta::condition(pod, "Ready")
                .filter(|c| c["status"] == "False")
                .and_then(|c| meta::time(&c["lastTransitionTime"]))
        })
        .or_else(|| {
            let deleted = meta::time(&pod["metadata"]["deletionTimestamp"])?;
            let grace = pod["metadata"]["deletionGracePeriodSeconds"].as_u64().unwrap_or(0);
            deleted.checked_sub(Duration::from_secs(grace))
        })
        .or_else(|| meta::creation(pod))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn from_containers(pod: &Value) -> Option<SystemTime> {
    let statuses = pod["status"]["containerStatuses"].as_array()?;
    let mut last = None;
    for s in statuses {
        let t = meta::time(&s["state"]["terminated"]["finishedAt"])?;
        last = last.max(Some(t));
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BASE: Duration = Duration::from_secs(10);
    const MAX: Duration = Duration::from_secs(360);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn failed_at(secs: u64) -> Value {
        let t = meta::rfc3339(at(secs));
        json!({"status": {"phase": "Failed", "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": t}]}})
    }

    #[test]
    fn delays_double_up_to_six_minutes() {
        let d: Vec<u64> = (1..=8).map(|n| delay(n, BASE, MAX).as_secs()).collect();
        assert_eq!(d, [10, 20, 40, 80, 160, 320, 360, 360]);
        assert_eq!(delay(1000, BASE, MAX), MAX);
    }

    #[test]
    fn remaining_time_counts_from_the_last_failure() {
        let r = Record::default().next(&[], &[&failed_at(100), &failed_at(90)]);
        assert_eq!(r, Record { failures_after_last_success: 2, last_failure: Some(at(100)) });
        assert_eq!(r.remaining(at(105), BASE, MAX), Duration::from_secs(15));
        assert_eq!(r.remaining(at(125), BASE, MAX), Duration::ZERO);
        assert_eq!(Record::default().remaining(at(0), BASE, MAX), Duration::ZERO);
    }

    #[test]
    fn a_success_resets_the_count() {
        let r = Record { failures_after_last_success: 3, last_failure: Some(at(50)) };
        let ok = json!({"status": {"phase": "Succeeded", "containerStatuses": [
            {"state": {"terminated": {"finishedAt": meta::rfc3339(at(100))}}}]}});
        assert_eq!(r.next(&[&ok], &[]), Record::default());
        let after = r.next(&[&ok], &[&failed_at(90), &failed_at(110), &failed_at(120)]);
        assert_eq!(after.failures_after_last_success, 2);
        // Upstream keeps the first failure after the success walking back from the newest.
        assert_eq!(after.last_failure, Some(at(120)));
    }
}
