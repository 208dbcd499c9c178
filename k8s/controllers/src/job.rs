//! The Job controller, as upstream's (`pkg/controller/job`, v1.3x): run
//! pods from the template until `completions` succeed (or, without
//! completions, until one does), at most `parallelism` at a time; Indexed
//! jobs give each pod a completion index. Finished pods are counted through
//! the `batch.kubernetes.io/job-tracking` finalizer and
//! `status.uncountedTerminatedPods`, so none is counted twice or lost:
//! the pod's uid is written to the status first, then its finalizer goes,
//! then the counters move. Failures are replaced after an exponential
//! back-off until `backoffLimit`; `activeDeadlineSeconds` and `suspend` as
//! upstream. A finishing Job gets `SuccessCriteriaMet` or `FailureTarget`
//! first and `Complete` or `Failed` once no pod is left terminating.

mod backoff;
mod indexes;
mod pods;
mod status;
mod tracking;
mod writes;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use lichen_client::Client;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::clock::{Clock, SystemClock, Timers};
use crate::events::Recorder;
use crate::informer::{Change, Informer};
use crate::queue::Queue;
use crate::{Error, Informers, meta};
use indexes::Intervals;
use status::{Cond, FAILED, FAILURE_TARGET, SUCCESS_CRITERIA_MET, SUSPENDED, Status};

pub use status::finished;

/// At most this many pod creations or deletions per sync (upstream's
/// `MaxPodCreateDeletePerSync`).
const MAX_WRITES: usize = 500;
/// At most this many pods in `uncountedTerminatedPods` (upstream's `MaxUncountedPods`).
const MAX_UNCOUNTED: usize = 500;

/// How the controller runs; the defaults are upstream's.
#[derive(Clone)]
pub struct Options {
    /// The first delay before replacing a failed pod (`DefaultJobPodFailureBackOff`, 10 s).
    pub backoff_base: Duration,
    /// The longest such delay (`MaxJobPodFailureBackOff`, 6 min).
    pub backoff_max: Duration,
    pub clock: Arc<dyn Clock>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(360),
            clock: Arc::new(SystemClock),
        }
    }
}

#[derive(Clone)]
struct Controller {
    client: Client,
    jobs: Informer,
    pods: Informer,
    recorder: Recorder,
    timers: Timers,
    opts: Options,
    /// Per job: the back-off of pod failures (upstream's `backoffStore`).
    backoff: Arc<Mutex<HashMap<String, backoff::Record>>>,
    /// Per job: pods whose finalizer this removed and whose cache entry
    /// may still show it (upstream's `finalizerExpectations`).
    removed: Arc<Mutex<HashMap<String, HashSet<String>>>>,
}

pub fn start(tasks: &mut JoinSet<()>, client: &Client, informers: &Informers) {
    start_with(tasks, client, informers, Options::default());
}

/// The job key of the pod's controlling Job.
fn owner_key(pod: &Value) -> Option<String> {
    let r = meta::controller_ref(pod)?;
    (r["kind"] == "Job" && r["apiVersion"] == "batch/v1")
        .then(|| meta::key(meta::namespace(pod), r["name"].as_str().unwrap_or("")))
}

pub fn start_with(tasks: &mut JoinSet<()>, client: &Client, informers: &Informers, opts: Options) {
    let queue = Queue::new();
    let orphans = Queue::new();
    let c = Controller {
        client: client.clone(),
        jobs: informers.jobs.clone(),
        pods: informers.pods.clone(),
        recorder: Recorder::new(client.clone(), "job-controller"),
        timers: Timers::new(opts.clock.clone(), queue.clone()),
        opts,
        backoff: Arc::default(),
        removed: Arc::default(),
    };
    let (q, o, pods) = (queue.clone(), orphans.clone(), informers.pods.clone());
    informers.jobs.on_change(move |ch| {
        let job = ch.object();
        q.add(&meta::key_of(job));
        if let Change::Deleted(job) = ch {
            // Its pods lose their tracking finalizer.
            for p in pods.list_in(meta::namespace(job)) {
                if meta::controller_uid(&p) == meta::uid(job) && pods::has_tracking(&p) {
                    o.add(&meta::key_of(&p));
                }
            }
        }
    });
    let (q, o, jobs, ctl) = (queue.clone(), orphans.clone(), informers.jobs.clone(), c.clone());
    informers.pods.on_change(move |ch| {
        let pod = ch.object();
        if let Change::Updated { old, .. } = ch
            && let Some(k) = owner_key(old)
        {
            q.add(&k);
        }
        let gone = matches!(ch, Change::Deleted(_));
        if gone || !pods::has_tracking(pod) {
            ctl.observed_removal(pod);
        }
        let owner = owner_key(pod);
        let job =
            owner.as_deref().and_then(|k| jobs.get(k)).filter(|j| meta::uid(j) == meta::controller_uid(pod));
        match (&owner, job) {
            (Some(k), Some(_)) => q.add(k),
            (None, _) if !gone && meta::controller_ref(pod).is_none() => {
                for j in jobs.list_in(meta::namespace(pod)) {
                    if meta::selector(&j).matches_object(pod) {
                        q.add(&meta::key_of(&j));
                    }
                }
            }
            _ => {}
        }
        // A pod keeping our finalizer without a Job to count it.
        let orphaned = match &owner {
            Some(_) => jobs_gone_or_finished(&jobs, owner.as_deref(), pod),
            None => meta::controller_ref(pod).is_none(),
        };
        if !gone && pods::has_tracking(pod) && orphaned {
            o.add(&meta::key_of(pod));
        }
    });
    let synced = vec![informers.jobs.clone(), informers.pods.clone()];
    let ctl = c.clone();
    crate::spawn_workers(tasks, "job", &queue, synced.clone(), 4, move |key| {
        let c = ctl.clone();
        async move { c.sync(&key).await.map(|()| None) }
    });
    crate::spawn_workers(tasks, "job-orphan-pods", &orphans, synced, 1, move |key| {
        let c = c.clone();
        async move { c.sync_orphan(&key).await.map(|()| None) }
    });
}

fn jobs_gone_or_finished(jobs: &Informer, key: Option<&str>, pod: &Value) -> bool {
    match key.and_then(|k| jobs.get(k)) {
        Some(j) if meta::uid(&j) == meta::controller_uid(pod) => finished(&j),
        _ => true,
    }
}

/// What one sync knows (upstream's `syncJobCtx`).
struct Ctx {
    key: String,
    job: Value,
    pods: Vec<Arc<Value>>,
    active: Vec<Arc<Value>>,
    status: Status,
    now: SystemTime,
    completions: Option<u64>,
    indexed: bool,
    removed: HashSet<String>,
    uncounted_succeeded: HashSet<String>,
    uncounted_failed: HashSet<String>,
    succeeded: i64,
    failed: i64,
    ready: i64,
    terminating: i64,
    prev_succeeded_indexes: Intervals,
    succeeded_indexes: Intervals,
    finished: Option<Cond>,
    backoff: backoff::Record,
    /// The earliest time to look again.
    again: Option<SystemTime>,
}

impl Ctx {
    /// The pod still carries our finalizer, as far as this sync knows.
    fn tracked(&self, pod: &Value) -> bool {
        pods::has_tracking(pod) && !self.removed.contains(meta::uid(pod))
    }

    fn valid_index(&self, pod: &Value) -> bool {
        !self.indexed || indexes::valid(pod, self.completions.unwrap_or(0)).is_some()
    }

    fn suspended(&self) -> bool {
        self.job["spec"]["suspend"] == true
    }

    fn look_again(&mut self, after: Duration) {
        let at = self.now + after;
        self.again = Some(self.again.map_or(at, |a| a.min(at)));
    }
}

impl Controller {
    fn observed_removal(&self, pod: &Value) {
        let Some(k) = owner_key(pod) else { return };
        if let Ok(mut r) = self.removed.lock()
            && let Some(set) = r.get_mut(&k)
        {
            set.remove(meta::uid(pod));
            if set.is_empty() {
                r.remove(&k);
            }
        }
    }

    fn forget(&self, key: &str) {
        if let Ok(mut b) = self.backoff.lock() {
            b.remove(key);
        }
        if let Ok(mut r) = self.removed.lock() {
            r.remove(key);
        }
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn sync(&self, key: &str) -> Result<(), Error> {
        let Some(job) = self.jobs.get(key) else {
            self.forget(key);
            return Ok(());
        };
        if finished(&job) {
            self.forget(key);
            // Pods still holding our finalizer (none, normally) are released.
            for p in self.pods.list_in(meta::namespace(&job)) {
                if meta::controller_uid(&p) == meta::uid(&job) && pods::has_tracking(&p) {
                    self.remove_finalizer(key, &p).await?;
                }
            }
            return Ok(());
        }
        let mode = job["spec"]["completionMode"].as_str().unwrap_or("NonIndexed");
        if mode != "NonIndexed" && mode != "Indexed" {
            self.recorder.warning(
                &job,
                "UnknownCompletionMode",
                "Skipped Job sync because completion mode is unknown",
            );
            return Ok(());
        }
        let job = (*job).clone();
        let pods = self.claim(&job).await?;
        let now = self.opts.clock.now();
        let status = Status::of(&job);
        let active: Vec<Arc<Value>> = pods.iter().filter(|p| meta::pod_active(p)).cloned().collect();
        let removed = self.removed.lock().ok().and_then(|r| r.get(key).cloned()).unwrap_or_default();
        let mut ctx = Ctx {
            key: key.to_owned(),
            completions: job["spec"]["completions"].as_u64(),
            indexed: mode == "Indexed",
            ready: i64::try_from(active.iter().filter(|p| meta::pod_ready(p)).count()).unwrap_or(0),
            terminating: i64::try_from(pods.iter().filter(|p| pods::terminating(p)).count()).unwrap_or(0),
            uncounted_succeeded: status.uncounted_succeeded.iter().cloned().collect(),
            uncounted_failed: status.uncounted_failed.iter().cloned().collect(),
            job,
            pods,
            active,
            status,
            now,
            removed,
            succeeded: 0,
            failed: 0,
            prev_succeeded_indexes: Intervals::default(),
            succeeded_indexes: Intervals::default(),
            finished: None,
            backoff: backoff::Record::default(),
            again: None,
        };
        let result = self.reconcile(&mut ctx).await;
        if let Some(at) = ctx.again {
            self.timers.add_at(key, at);
        }
        result
    }

    async fn reconcile(&self, ctx: &mut Ctx) -> Result<(), Error> {
        let job = ctx.job.clone();
        // Finished pods not counted yet.
        let new_succeeded: Vec<&Value> = ctx
            .pods
            .iter()
            .map(|p| &**p)
            .filter(|p| {
                ctx.tracked(p)
                    && !ctx.uncounted_succeeded.contains(meta::uid(p))
                    && ctx.valid_index(p)
                    && pods::succeeded(p)
            })
            .collect();
        let new_failed: Vec<&Value> = ctx
            .pods
            .iter()
            .map(|p| &**p)
            .filter(|p| {
                ctx.tracked(p)
                    && !ctx.uncounted_failed.contains(meta::uid(p))
                    && ctx.valid_index(p)
                    && pods::failed(p, &job)
            })
            .collect();
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        ctx.succeeded =
            ctx.status.succeeded + count(new_succeeded.len()) + count(ctx.uncounted_succeeded.len());
        ctx.failed = ctx.status.failed + count(new_failed.len()) + count(ctx.uncounted_failed.len());
        if ctx.status.start_time.is_none() && !ctx.suspended() {
            ctx.status.start_time = Some(meta::rfc3339(ctx.now));
        }
        let record = self.backoff.lock().ok().and_then(|b| b.get(&ctx.key).copied()).unwrap_or_default();
        ctx.backoff = record.next(&new_succeeded, &new_failed);

        let backoff_limit = job["spec"]["backoffLimit"].as_i64().unwrap_or(6);
        ctx.finished = Cond::from_status(&ctx.status, SUCCESS_CRITERIA_MET)
            .or_else(|| Cond::from_status(&ctx.status, FAILURE_TARGET).map(|c| c.retyped(FAILED)));
        if ctx.finished.is_none() {
            if ctx.failed > backoff_limit || past_backoff_limit_on_failure(&job, &ctx.pods) {
                ctx.finished = Some(Cond::new(
                    FAILURE_TARGET,
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ));
            } else if let Some(left) = self.deadline_left(ctx) {
                if left.is_zero() {
                    ctx.finished = Some(Cond::new(
                        FAILURE_TARGET,
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline",
                    ));
                } else {
                    ctx.look_again(left);
                }
            }
        }
        if ctx.indexed {
            let completions = ctx.completions.unwrap_or(0);
            ctx.prev_succeeded_indexes = Intervals::parse(&ctx.status.completed_indexes, completions);
            let done = ctx
                .pods
                .iter()
                .filter(|p| pods::succeeded(p) && pods::has_tracking(p))
                .filter_map(|p| indexes::valid(p, completions));
            ctx.succeeded_indexes = ctx.prev_succeeded_indexes.with(done.collect::<Vec<_>>());
            ctx.succeeded = i64::try_from(ctx.succeeded_indexes.total()).unwrap_or(i64::MAX);
        }

        let mut active = count(ctx.active.len());
        let mut result = Ok(());
        if ctx.finished.is_some() {
            let victims = ctx.active.clone();
            let (deleted, deleted_ready, err) = self.delete_pods(ctx, &victims, false).await;
            if deleted != active {
                // Not finished until every pod is gone.
                ctx.finished = None;
            }
            active -= deleted;
            ctx.terminating += deleted;
            ctx.ready -= deleted_ready;
            result = err;
        } else {
            let mut managed = false;
            if !meta::is_terminating(&job) {
                let (a, err) = self.manage(ctx).await;
                active = a;
                result = err;
                managed = true;
            }
            let complete = match ctx.completions {
                None => ctx.succeeded > 0 && active == 0,
                Some(c) => ctx.succeeded >= i64::try_from(c).unwrap_or(i64::MAX) && active == 0,
            };
            if complete {
                ctx.finished = Some(Cond::new(
                    SUCCESS_CRITERIA_MET,
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ));
            } else if managed {
                if ctx.suspended() {
                    let c = Cond::new(SUSPENDED, "JobSuspended", "Job suspended");
                    if ctx.status.ensure(&c, "True", ctx.now) {
                        self.recorder.normal(&job, "Suspended", "Job suspended");
                    }
                } else {
                    let c = Cond::new(SUSPENDED, "JobResumed", "Job resumed");
                    if ctx.status.ensure(&c, "False", ctx.now) {
                        self.recorder.normal(&job, "Resumed", "Job resumed");
                        // The deadline counts from the resumption.
                        ctx.status.start_time = Some(meta::rfc3339(ctx.now));
                    }
                }
            }
        }
        ctx.status.active = active;
        ctx.status.ready = ctx.ready;
        ctx.status.terminating = ctx.terminating;
        self.track(ctx).await?;
        result
    }

    /// Time left before `activeDeadlineSeconds`, if it applies.
    fn deadline_left(&self, ctx: &Ctx) -> Option<Duration> {
        let secs = ctx.job["spec"]["activeDeadlineSeconds"].as_u64()?;
        if ctx.suspended() {
            return None;
        }
        let start = meta::time(&json!(ctx.status.start_time.as_deref()?))?;
        let deadline = start + Duration::from_secs(secs);
        Some(deadline.duration_since(ctx.now).unwrap_or(Duration::ZERO))
    }

    /// Creates or deletes pods towards the wanted number of active pods;
    /// returns the active count and the first error.
    async fn manage(&self, ctx: &mut Ctx) -> (i64, Result<(), Error>) {
        let job = ctx.job.clone();
        let active = i64::try_from(ctx.active.len()).unwrap_or(0);
        if ctx.suspended() {
            let victims = ctx.active.clone();
            let (deleted, deleted_ready, err) = self.delete_pods(ctx, &victims, true).await;
            ctx.terminating += deleted;
            ctx.ready -= deleted_ready;
            return (active - deleted, err);
        }
        let parallelism = job["spec"]["parallelism"].as_i64().unwrap_or(1).max(0);
        let want = match ctx.completions {
            None if ctx.succeeded > 0 => active,
            None => parallelism,
            Some(c) => (i64::try_from(c).unwrap_or(i64::MAX) - ctx.succeeded).clamp(0, parallelism),
        };
        let surplus = usize::try_from((active - want).max(0)).unwrap_or(0);
        let mut victims = pods::for_removal(&ctx.active, ctx.completions, ctx.indexed, surplus);
        victims.truncate(MAX_WRITES);
        if !victims.is_empty() {
            let (deleted, deleted_ready, err) = self.delete_pods(ctx, &victims, true).await;
            ctx.terminating += deleted;
            ctx.ready -= deleted_ready;
            return (active - deleted, err);
        }
        let waiting = if pods::only_replace_failed(&job) { ctx.terminating } else { 0 };
        let missing = want - waiting - active;
        if missing <= 0 {
            return (active, Ok(()));
        }
        let wait = ctx.backoff.remaining(ctx.now, self.opts.backoff_base, self.opts.backoff_max);
        if !wait.is_zero() {
            ctx.look_again(wait);
            return (active, Ok(()));
        }
        let n = usize::try_from(missing).unwrap_or(0).min(MAX_WRITES);
        let mut wanted: Vec<Option<u64>> = vec![None; n];
        if ctx.indexed {
            let busy = ctx.succeeded_indexes.with(indexes::set_of(ctx.active.iter().map(|p| &**p)));
            wanted = busy.first_missing(n, ctx.completions.unwrap_or(0)).into_iter().map(Some).collect();
        }
        let (created, err) = self.create_pods(&job, wanted).await;
        (active + created, err)
    }
}

/// restartPolicy OnFailure: container restarts of running pods reach the
/// backoff limit (upstream's `pastBackoffLimitOnFailure`).
fn past_backoff_limit_on_failure(job: &Value, pods: &[Arc<Value>]) -> bool {
    if job["spec"]["template"]["spec"]["restartPolicy"] != "OnFailure" {
        return false;
    }
    let restarts: i64 = pods
        .iter()
        .filter(|p| matches!(p["status"]["phase"].as_str(), Some("Running" | "Pending")))
        .flat_map(|p| {
            let s = &p["status"];
            let init = s["initContainerStatuses"].as_array().cloned().unwrap_or_default();
            let main = s["containerStatuses"].as_array().cloned().unwrap_or_default();
            init.into_iter().chain(main)
        })
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum();
    let limit = job["spec"]["backoffLimit"].as_i64().unwrap_or(6);
    if limit == 0 { restarts > 0 } else { restarts >= limit }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_count_against_the_limit_with_on_failure() {
        let job = |limit: i64| json!({"spec": {"backoffLimit": limit, "template": {"spec": {"restartPolicy": "OnFailure"}}}});
        let pod =
            Arc::new(json!({"status": {"phase": "Running", "containerStatuses": [{"restartCount": 2}]}}));
        assert!(past_backoff_limit_on_failure(&job(2), std::slice::from_ref(&pod)));
        assert!(!past_backoff_limit_on_failure(&job(3), std::slice::from_ref(&pod)));
        let never = json!({"spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never"}}}});
        assert!(!past_backoff_limit_on_failure(&never, &[pod]));
    }
}
