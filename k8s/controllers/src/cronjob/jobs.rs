//! The Jobs a CronJob makes and keeps: their names, their objects, the
//! times written on them, and which finished ones history limits drop.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use lichen_apimachinery::cron::TimeZone;
use serde_json::{Value, json};

use crate::meta;

pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// `<cronjob>-<scheduled time in minutes since the epoch>`: one name per
/// schedule time, so a time is never run twice.
pub fn name(cronjob: &str, scheduled: SystemTime) -> String {
    let minutes = scheduled.duration_since(UNIX_EPOCH).map(|d| d.as_secs() / 60).unwrap_or(0);
    format!("{cronjob}-{minutes}")
}

/// The Job for the schedule time `scheduled` (upstream's `getJobFromTemplate2`).
pub fn from_template(cj: &Value, scheduled: SystemTime, tz: &TimeZone) -> Value {
    let template = &cj["spec"]["jobTemplate"];
    let mut annotations = template["metadata"]["annotations"].as_object().cloned().unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), json!(rfc3339_in(scheduled, tz)));
    let mut metadata = json!({
        "name": name(meta::name(cj), scheduled),
        "namespace": meta::namespace(cj),
        "annotations": annotations,
        "ownerReferences": [meta::owner_ref(cj, "batch/v1", "CronJob")],
    });
    if let Some(labels) = template["metadata"]["labels"].as_object() {
        metadata["labels"] = json!(labels);
    }
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": template["spec"]})
}

/// An `ObjectReference` to a Job, for `status.active`.
pub fn reference(job: &Value) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "namespace": meta::namespace(job),
        "name": meta::name(job),
        "uid": meta::uid(job),
        "resourceVersion": meta::resource_version(job),
    })
}

/// "Complete" or "Failed", whichever is True first (upstream's `FinishedCondition`).
pub fn finished_as(job: &Value) -> Option<&'static str> {
    let conditions = job["status"]["conditions"].as_array()?;
    conditions.iter().find_map(|c| match (c["type"].as_str(), c["status"] == "True") {
        (Some("Complete"), true) => Some("Complete"),
        (Some("Failed"), true) => Some("Failed"),
        _ => None,
    })
}

/// The finished jobs of one kind beyond `limit`, oldest start first
/// (unstarted last, then by name), as upstream's `removeOldestJobs`.
pub fn beyond_limit(mut jobs: Vec<Arc<Value>>, limit: usize) -> Vec<Arc<Value>> {
    if jobs.len() <= limit {
        return Vec::new();
    }
    jobs.sort_by(|a, b| {
        let start = |j: &Value| meta::time(&j["status"]["startTime"]);
        match (start(a), start(b)) {
            (Some(x), Some(y)) if x != y => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            _ => meta::name(a).cmp(meta::name(b)),
        }
    });
    let n = jobs.len() - limit;
    jobs.truncate(n);
    jobs
}

fn zone(tz: &TimeZone) -> jiff::tz::TimeZone {
    if tz.name() == "UTC" {
        return jiff::tz::TimeZone::UTC;
    }
    jiff::tz::db()
        .get(tz.name())
        .or_else(|_| jiff::tz::TimeZoneDatabase::bundled().get(tz.name()))
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

/// RFC 3339 in the CronJob's zone, "Z" for a zero offset (Go's `time.RFC3339`).
pub fn rfc3339_in(t: SystemTime, tz: &TimeZone) -> String {
    let Ok(ts) = jiff::Timestamp::try_from(t) else { return meta::rfc3339(t) };
    let z = ts.to_zoned_datetime(zone(tz));
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// Go's `time.RFC1123Z` in UTC, as upstream's MissSchedule event prints.
pub fn rfc1123z(t: SystemTime) -> String {
    match jiff::Timestamp::try_from(t) {
        Ok(ts) => {
            ts.to_zoned_datetime(jiff::tz::TimeZone::UTC).strftime("%a, %d %b %Y %H:%M:%S %z").to_string()
        }
        Err(_) => meta::rfc3339(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn names_are_minutes_since_the_epoch() {
        // 2024-01-01T00:00:00Z
        assert_eq!(name("backup", at(1_704_067_200)), "backup-28401120");
        assert_eq!(name("backup", at(1_704_067_259)), "backup-28401120");
        assert_eq!(name("backup", at(1_704_067_260)), "backup-28401121");
    }

    #[test]
    fn jobs_carry_template_owner_and_scheduled_time() {
        let cj = json!({"metadata": {"name": "nightly", "namespace": "ns", "uid": "u"},
            "spec": {"jobTemplate": {"metadata": {"labels": {"app": "x"}, "annotations": {"a": "b"}},
                "spec": {"backoffLimit": 2, "template": {"spec": {"containers": []}}}}}});
        let tz = TimeZone::load("Europe/Berlin").unwrap();
        let j = from_template(&cj, at(1_704_067_200), &tz);
        assert_eq!(j["metadata"]["name"], "nightly-28401120");
        assert_eq!(j["metadata"]["labels"]["app"], "x");
        assert_eq!(j["metadata"]["annotations"]["a"], "b");
        assert_eq!(j["metadata"]["annotations"][SCHEDULED_TIMESTAMP], "2024-01-01T01:00:00+01:00");
        assert_eq!(j["metadata"]["ownerReferences"][0]["kind"], "CronJob");
        assert_eq!(j["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(j["spec"]["backoffLimit"], 2);
        assert_eq!(rfc3339_in(at(1_704_067_200), &TimeZone::utc()), "2024-01-01T00:00:00Z");
        assert_eq!(rfc1123z(at(1_704_067_200)), "Mon, 01 Jan 2024 00:00:00 +0000");
    }

    #[test]
    fn history_drops_the_oldest_started_first() {
        let job = |name: &str, start: Option<&str>| {
            Arc::new(json!({"metadata": {"name": name}, "status": {"startTime": start}}))
        };
        let jobs = vec![
            job("d", None),
            job("c", Some("2024-01-01T00:03:00Z")),
            job("a", Some("2024-01-01T00:01:00Z")),
            job("b", Some("2024-01-01T00:01:00Z")),
        ];
        let names = |v: Vec<Arc<Value>>| v.iter().map(|j| meta::name(j).to_owned()).collect::<Vec<_>>();
        assert_eq!(names(beyond_limit(jobs.clone(), 1)), ["a", "b", "c"]);
        assert_eq!(names(beyond_limit(jobs.clone(), 3)), ["a"]);
        assert!(beyond_limit(jobs, 4).is_empty());
    }

    #[test]
    fn finished_is_the_first_true_terminal_condition() {
        let j = json!({"status": {"conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
            {"type": "Complete", "status": "True"}]}});
        assert_eq!(finished_as(&j), Some("Complete"));
        assert_eq!(
            finished_as(&json!({"status": {"conditions": [{"type": "Failed", "status": "False"}]}})),
            None
        );
    }
}
