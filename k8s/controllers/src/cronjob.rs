//! The CronJob controller, as upstream's (`pkg/controller/cronjob`,
//! ControllerV2): at each time of `spec.schedule` (in `spec.timeZone`) it
//! creates a Job named for that time, unless the time was missed by more
//! than `startingDeadlineSeconds`, and honours `concurrencyPolicy` (Allow,
//! Forbid, Replace) and `suspend`. It tracks its Jobs in `status.active`,
//! `lastScheduleTime` and `lastSuccessfulTime`, keeps
//! `successfulJobsHistoryLimit`/`failedJobsHistoryLimit` finished Jobs, and
//! looks again at the next schedule time.

mod jobs;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lichen_apimachinery::cron::{self, Schedule, TimeZone};
use lichen_client::Client;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::clock::{Clock, SystemClock, Timers};
use crate::events::Recorder;
use crate::informer::{Change, Informer};
use crate::queue::Queue;
use crate::{Error, Informers, meta};

pub use jobs::SCHEDULED_TIMESTAMP;

/// Upstream's `nextScheduleDelta`: look again just after the schedule time.
const NEXT_DELTA: Duration = Duration::from_millis(100);

#[derive(Clone)]
struct Controller {
    client: Client,
    cronjobs: Informer,
    jobs: Informer,
    recorder: Recorder,
    timers: Timers,
    clock: Arc<dyn Clock>,
}

/// What a sync changes in `status`.
#[derive(Debug, Clone, PartialEq)]
struct Status {
    active: Vec<Value>,
    last_schedule: Option<String>,
    last_successful: Option<String>,
}

impl Status {
    fn of(cj: &Value) -> Status {
        let s = &cj["status"];
        Status {
            active: s["active"].as_array().cloned().unwrap_or_default(),
            last_schedule: s["lastScheduleTime"].as_str().map(str::to_owned),
            last_successful: s["lastSuccessfulTime"].as_str().map(str::to_owned),
        }
    }

    fn to_json(&self, old: &Value) -> Value {
        let mut s = old.as_object().cloned().unwrap_or_default();
        let mut set = |k: &str, v: Option<Value>| match v {
            Some(v) => {
                s.insert(k.into(), v);
            }
            None => {
                s.remove(k);
            }
        };
        set("active", (!self.active.is_empty()).then(|| json!(self.active)));
        set("lastScheduleTime", self.last_schedule.as_ref().map(|t| json!(t)));
        set("lastSuccessfulTime", self.last_successful.as_ref().map(|t| json!(t)));
        Value::Object(s)
    }

    fn has_uid(&self, uid: &str) -> bool {
        self.active.iter().any(|r| r["uid"] == uid)
    }

    fn has_name(&self, name: &str) -> bool {
        self.active.iter().any(|r| r["name"] == name)
    }

    fn drop_uid(&mut self, uid: &str) {
        self.active.retain(|r| r["uid"] != uid);
    }
}

pub fn start(tasks: &mut JoinSet<()>, client: &Client, informers: &Informers) {
    start_with(tasks, client, informers, Arc::new(SystemClock));
}

/// The key of the CronJob controlling `job`.
fn owner_key(obj: &Value) -> Option<String> {
    crate::informer::owner_key(obj, "CronJob")
}

pub fn start_with(tasks: &mut JoinSet<()>, client: &Client, informers: &Informers, clock: Arc<dyn Clock>) {
    let queue = Queue::new();
    let c = Controller {
        client: client.clone(),
        cronjobs: informers.cronjobs.clone(),
        jobs: informers.jobs.clone(),
        recorder: Recorder::new(client.clone(), "cronjob-controller"),
        timers: Timers::new(clock.clone(), queue.clone()),
        clock,
    };
    let q = queue.clone();
    informers.cronjobs.on_change(move |ch| {
        if !matches!(ch, Change::Deleted(_)) {
            q.add(&meta::key_of(ch.object()));
        }
    });
    let q = queue.clone();
    informers.jobs.on_change(move |ch| {
        if let Change::Updated { old, .. } = ch
            && let Some(k) = owner_key(old)
        {
            q.add(&k);
        }
        if let Some(k) = owner_key(ch.object()) {
            q.add(&k);
        }
    });
    let synced = vec![informers.cronjobs.clone(), informers.jobs.clone()];
    crate::spawn_workers(tasks, "cronjob", &queue, synced, 2, move |key| {
        let c = c.clone();
        async move { c.sync(&key).await.map(|()| None) }
    });
}

impl Controller {
    #[tracing::instrument(level = "debug", skip(self))]
    async fn sync(&self, key: &str) -> Result<(), Error> {
        let Some(cj) = self.cronjobs.get(key) else { return Ok(()) };
        let cj = (*cj).clone();
        let children: Vec<Arc<Value>> = self
            .jobs
            .list_in(meta::namespace(&cj))
            .into_iter()
            .filter(|j| meta::controller_uid(j) == meta::uid(&cj))
            .collect();
        let mut status = Status::of(&cj);
        self.cleanup_finished(&cj, &mut status, &children).await;
        let (again, result) = self.reconcile(&cj, &mut status, &children).await;
        let new_status = status.to_json(&cj["status"]);
        if new_status != cj["status"] {
            let mut updated = cj.clone();
            updated["status"] = new_status;
            let path = format!(
                "{}/status",
                meta::path("batch/v1", "cronjobs", meta::namespace(&cj), meta::name(&cj))
            );
            match self.client.replace(&path, &updated).await {
                Ok(v) => self.cronjobs.assume(&v),
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        match again {
            // As upstream: a time to look again wins over an error.
            Some(at) => {
                self.timers.add_at(key, at);
                Ok(())
            }
            None => result,
        }
    }

    /// Deletes finished Jobs beyond the history limits.
    async fn cleanup_finished(&self, cj: &Value, status: &mut Status, children: &[Arc<Value>]) {
        let spec = &cj["spec"];
        for (kind, limit) in
            [("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")]
        {
            let Some(limit) = spec[limit].as_u64() else { continue };
            let done: Vec<Arc<Value>> =
                children.iter().filter(|j| jobs::finished_as(j) == Some(kind)).cloned().collect();
            for job in jobs::beyond_limit(done, usize::try_from(limit).unwrap_or(usize::MAX)) {
                self.delete_job(cj, status, &job).await;
            }
        }
    }

    /// Deletes a Job and its pods (background); false if that failed.
    async fn delete_job(&self, cj: &Value, status: &mut Status, job: &Value) -> bool {
        let path = meta::path("batch/v1", "jobs", meta::namespace(job), meta::name(job));
        let opts = json!({"propagationPolicy": "Background"});
        match self.client.delete(&path, &opts).await {
            Ok(_) => self.jobs.assume_deleted(&meta::key_of(job)),
            Err(e) if e.is_not_found() => self.jobs.assume_deleted(&meta::key_of(job)),
            Err(e) => {
                self.recorder.warning(cj, "FailedDelete", format!("Deleted job: {e}"));
                return false;
            }
        }
        status.drop_uid(meta::uid(job));
        self.recorder.normal(cj, "SuccessfulDelete", format!("Deleted job {}", meta::name(job)));
        true
    }

    /// Upstream's `syncCronJob`: brings `status.active` up to date, then
    /// starts the Job of the most recent unmet schedule time. Returns when
    /// to look again.
    async fn reconcile(
        &self,
        cj: &Value,
        status: &mut Status,
        children: &[Arc<Value>],
    ) -> (Option<SystemTime>, Result<(), Error>) {
        let now = self.clock.now();
        let mut child_uids = HashSet::new();
        for j in children {
            child_uids.insert(meta::uid(j).to_owned());
            let found = status.has_uid(meta::uid(j));
            let finished = jobs::finished_as(j);
            match finished {
                None if !found => self.recorder.warning(
                    cj,
                    "UnexpectedJob",
                    format!("Saw a job that the controller did not create or forgot: {}", meta::name(j)),
                ),
                Some(condition) if found => {
                    status.drop_uid(meta::uid(j));
                    self.recorder.normal(
                        cj,
                        "SawCompletedJob",
                        format!("Saw completed job: {}, condition: {condition}", meta::name(j)),
                    );
                }
                _ => {}
            }
            if finished == Some("Complete")
                && let Some(done) = j["status"]["completionTime"].as_str()
            {
                let later = status.last_successful.as_deref().and_then(|t| meta::time(&json!(t)));
                if later.is_none_or(|l| meta::time(&json!(done)).is_some_and(|d| d > l)) {
                    status.last_successful = Some(done.to_owned());
                }
            }
        }
        // Active Jobs that are gone.
        for r in status.active.clone() {
            let uid = r["uid"].as_str().unwrap_or("");
            if child_uids.contains(uid) {
                continue;
            }
            let name = r["name"].as_str().unwrap_or("");
            let path = meta::path("batch/v1", "jobs", meta::namespace(cj), name);
            match self.client.get_opt(&path).await {
                Ok(None) => {
                    self.recorder.normal(cj, "MissingJob", format!("Active job went missing: {name}"));
                    status.drop_uid(uid);
                }
                Ok(Some(_)) => {}
                Err(e) => return (None, Err(e.into())),
            }
        }
        if meta::is_terminating(cj) {
            return (None, Ok(()));
        }
        let tz_name = cj["spec"]["timeZone"].as_str();
        let tz = match TimeZone::for_cronjob(tz_name) {
            Ok(tz) => tz,
            Err(e) => {
                let name = tz_name.unwrap_or("");
                self.recorder.warning(cj, "UnknownTimeZone", format!("invalid timeZone: {name:?}: {e}"));
                return (None, Ok(()));
            }
        };
        if cj["spec"]["suspend"] == true {
            return (None, Ok(()));
        }
        let text = cj["spec"]["schedule"].as_str().unwrap_or("");
        let schedule = match Schedule::parse(text) {
            Ok(s) => s,
            Err(e) => {
                self.recorder.warning(
                    cj,
                    "UnparseableSchedule",
                    format!("unparseable schedule: {text:?} : {e}"),
                );
                return (None, Ok(()));
            }
        };
        let created = meta::creation(cj).unwrap_or(now);
        let last = status.last_schedule.as_deref().and_then(|t| meta::time(&json!(t)));
        let deadline = cj["spec"]["startingDeadlineSeconds"].as_i64();
        let earliest = cron::earliest_time(created, last, deadline, now);
        let missed = match cron::most_recent_schedule_time(&schedule, &tz, earliest, now) {
            Ok(m) => m,
            Err(e) => {
                self.recorder.warning(cj, "InvalidSchedule", format!("invalid schedule: {text} : {e}"));
                return (None, Ok(()));
            }
        };
        if missed.too_many() {
            self.recorder.warning(cj, cron::TOO_MANY_MISSED_REASON, cron::TOO_MANY_MISSED_MESSAGE);
        }
        let next = |status: &Status| next_time(&schedule, &tz, created, status, now);
        let Some(scheduled) = missed.most_recent.filter(|t| *t <= now) else {
            return (next(status), Ok(()));
        };
        let too_late = deadline.is_some_and(|d| {
            let by = Duration::from_secs(d.unsigned_abs());
            if d >= 0 { scheduled + by < now } else { scheduled.checked_sub(by).is_some_and(|t| t < now) }
        });
        if too_late {
            let when = jobs::rfc1123z(scheduled);
            self.recorder.warning(
                cj,
                "MissSchedule",
                format!("Missed scheduled time to start a job: {when}"),
            );
            return (next(status), Ok(()));
        }
        let name = jobs::name(meta::name(cj), scheduled);
        if status.has_name(&name) || last == Some(scheduled) {
            return (next(status), Ok(()));
        }
        let policy = cj["spec"]["concurrencyPolicy"].as_str().unwrap_or("Allow");
        if policy == "Forbid" && !status.active.is_empty() {
            self.recorder.normal(
                cj,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            );
            return (next(status), Ok(()));
        }
        if policy == "Replace" {
            for r in status.active.clone() {
                let path =
                    meta::path("batch/v1", "jobs", meta::namespace(cj), r["name"].as_str().unwrap_or(""));
                let job = match self.client.get(&path).await {
                    Ok(j) => j,
                    Err(e) => {
                        self.recorder.warning(cj, "FailedGet", format!("Get job: {e}"));
                        return (None, Err(e.into()));
                    }
                };
                if !self.delete_job(cj, status, &job).await {
                    let what =
                        format!("could not replace job {}/{}", meta::namespace(&job), meta::name(&job));
                    return (None, Err(Error::Invalid(what)));
                }
            }
        }
        let job = jobs::from_template(cj, scheduled, &tz);
        let path = meta::path("batch/v1", "jobs", meta::namespace(cj), "");
        let created_job = match self.client.create(&path, &job).await {
            Ok(j) => {
                self.jobs.assume(&j);
                self.recorder.normal(cj, "SuccessfulCreate", format!("Created job {}", meta::name(&j)));
                j
            }
            Err(e) if e.is_conflict() => {
                // Made before, and the status update was lost?
                let path = meta::path("batch/v1", "jobs", meta::namespace(cj), &name);
                let existing = match self.client.get(&path).await {
                    Ok(j) => j,
                    Err(e) => return (None, Err(e.into())),
                };
                if meta::controller_uid(&existing) != meta::uid(cj) || status.has_uid(meta::uid(&existing)) {
                    return (None, Ok(()));
                }
                existing
            }
            Err(e) => {
                self.recorder.warning(cj, "FailedCreate", format!("Error creating job: {e}"));
                return (None, Err(e.into()));
            }
        };
        status.active.push(jobs::reference(&created_job));
        status.last_schedule = Some(meta::rfc3339(scheduled));
        (next(status), Ok(()))
    }
}

/// Just after the next schedule time (upstream's `nextScheduleTimeDuration`);
/// `None` if the schedule never fires again.
fn next_time(
    schedule: &Schedule,
    tz: &TimeZone,
    created: SystemTime,
    status: &Status,
    now: SystemTime,
) -> Option<SystemTime> {
    let last = status.last_schedule.as_deref().and_then(|t| meta::time(&json!(t)));
    let earliest = cron::earliest_time(created, last, None, now);
    let from = match cron::most_recent_schedule_time(schedule, tz, earliest, now) {
        Ok(m) => m.most_recent.unwrap_or(earliest),
        Err(_) => now,
    };
    let next = schedule.next_after(from, tz)?;
    Some((next + NEXT_DELTA).max(now + NEXT_DELTA))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn requeue_is_just_after_the_next_schedule_time() {
        let s = Schedule::parse("*/5 * * * *").unwrap();
        let tz = TimeZone::utc();
        let status =
            Status { active: vec![], last_schedule: Some(meta::rfc3339(at(600))), last_successful: None };
        // Last run at 00:10, now 00:12:30: next at 00:15.
        let t = next_time(&s, &tz, at(0), &status, at(750)).unwrap();
        assert_eq!(t, at(900) + NEXT_DELTA);
        // A missed time (00:15 not run, now 00:16): the one after it, 00:20.
        let t = next_time(&s, &tz, at(0), &status, at(960)).unwrap();
        assert_eq!(t, at(1200) + NEXT_DELTA);
    }

    #[test]
    fn status_keeps_other_fields_and_drops_an_empty_active_list() {
        let cj = json!({"status": {"active": [{"uid": "a", "name": "x"}], "other": 1}});
        let mut s = Status::of(&cj);
        assert!(s.has_uid("a") && s.has_name("x"));
        s.drop_uid("a");
        s.last_schedule = Some("2024-01-01T00:00:00Z".into());
        assert_eq!(s.to_json(&cj["status"]), json!({"other": 1, "lastScheduleTime": "2024-01-01T00:00:00Z"}));
    }
}
