//! Counting finished pods exactly once (upstream's
//! `trackJobStatusAndRemoveFinalizers`), and the Job's terminal condition.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::indexes;
use super::status::{COMPLETE, FAILED, FAILURE_TARGET, SUCCESS_CRITERIA_MET, Status};
use super::{Controller, Ctx, MAX_UNCOUNTED, pods};
use crate::{Error, meta};

impl Controller {
    /// Upstream's `trackJobStatusAndRemoveFinalizers`: finished pods go to
    /// `uncountedTerminatedPods` (written first), lose their finalizer, then
    /// move to the counters; the Job finishes once nothing is left uncounted
    /// or terminating.
    pub(super) async fn track(&self, ctx: &mut Ctx) -> Result<(), Error> {
        let job = ctx.job.clone();
        let completions = ctx.completions.unwrap_or(0);
        if ctx.indexed {
            ctx.pods.sort_by_key(|p| indexes::of(p));
        }
        let mut with_finalizer: HashSet<String> =
            ctx.pods.iter().filter(|p| ctx.tracked(p)).map(|p| meta::uid(p).to_owned()).collect();
        clean_uncounted(&mut ctx.status, &with_finalizer);
        let mut to_release: Vec<Arc<Value>> = Vec::new();
        let mut new_indexes: Vec<u64> = Vec::new();
        let mut reached_max = false;
        let pods = ctx.pods.clone();
        for pod in &pods {
            if !ctx.tracked(pod) {
                continue;
            }
            let uid = meta::uid(pod).to_owned();
            let failed = pods::failed(pod, &job);
            let releasable =
                meta::is_terminating(&job) || ctx.finished.is_some() || pods::succeeded(pod) || failed;
            if !releasable {
                continue;
            }
            to_release.push(pod.clone());
            if pods::succeeded(pod) && !ctx.uncounted_failed.contains(&uid) {
                if ctx.indexed {
                    if let Some(ix) = indexes::valid(pod, completions)
                        && !ctx.prev_succeeded_indexes.has(ix)
                    {
                        new_indexes.push(ix);
                    }
                } else if ctx.uncounted_succeeded.insert(uid.clone()) {
                    ctx.status.uncounted_succeeded.push(uid);
                }
            } else if (failed || ctx.finished.as_ref().is_some_and(|c| c.kind != SUCCESS_CRITERIA_MET))
                && ctx.valid_index(pod)
                && ctx.uncounted_failed.insert(uid.clone())
            {
                ctx.status.uncounted_failed.push(uid);
            }
            let uncounted =
                new_indexes.len() + ctx.status.uncounted_succeeded.len() + ctx.status.uncounted_failed.len();
            if uncounted >= MAX_UNCOUNTED {
                reached_max = true;
                break;
            }
        }
        if ctx.indexed {
            ctx.succeeded_indexes = ctx.succeeded_indexes.with(new_indexes);
            ctx.status.completed_indexes = ctx.succeeded_indexes.to_string();
            ctx.status.succeeded = i64::try_from(ctx.succeeded_indexes.total()).unwrap_or(i64::MAX);
        }
        // The interim condition is written before any finalizer goes.
        if let Some(c) = ctx.finished.clone() {
            if c.kind == FAILURE_TARGET {
                ctx.status.ensure(&c, "True", ctx.now);
                ctx.finished = Some(c.retyped(FAILED));
            } else if c.kind == SUCCESS_CRITERIA_MET {
                ctx.status.ensure(&c, "True", ctx.now);
                ctx.finished = Some(c.retyped(COMPLETE));
            }
        }
        // 1. Record the pods about to be released.
        self.write_status(ctx).await?;
        if let Ok(mut b) = self.backoff.lock() {
            b.insert(ctx.key.clone(), ctx.backoff);
        }
        // 2. Release them.
        let mut result = Ok(());
        for pod in &to_release {
            match self.remove_finalizer(&ctx.key, pod).await {
                Ok(()) => {
                    with_finalizer.remove(meta::uid(pod));
                }
                Err(e) => result = Err(e),
            }
        }
        // 3. Count them.
        clean_uncounted(&mut ctx.status, &with_finalizer);
        let finished_now = !reached_max && self.enact_finished(ctx);
        self.write_status(ctx).await?;
        if finished_now && let Some(c) = &ctx.finished {
            self.forget(&ctx.key);
            if c.kind == COMPLETE {
                let over =
                    ctx.completions.is_some_and(|n| ctx.status.succeeded > i64::try_from(n).unwrap_or(0));
                if over {
                    self.recorder.warning(
                        &job,
                        "TooManySucceededPods",
                        "Too many succeeded pods running after completion count reached",
                    );
                }
                self.recorder.normal(&job, "Completed", "Job completed");
            } else {
                self.recorder.warning(&job, &c.reason, c.message.clone());
            }
        }
        result
    }

    /// Sets Complete or Failed if nothing is left to count or terminating.
    pub(super) fn enact_finished(&self, ctx: &mut Ctx) -> bool {
        let Some(c) = ctx.finished.clone() else { return false };
        if !ctx.status.uncounted_succeeded.is_empty() || !ctx.status.uncounted_failed.is_empty() {
            return false;
        }
        if ctx.terminating > 0 {
            return false;
        }
        ctx.status.ensure(&c, "True", ctx.now);
        if c.kind == COMPLETE {
            ctx.status.completion_time = Some(meta::rfc3339(ctx.now));
        }
        true
    }

    /// Writes the status if it changed; the cache and `ctx.job` follow.
    pub(super) async fn write_status(&self, ctx: &mut Ctx) -> Result<(), Error> {
        let status = ctx.status.to_json(&ctx.job["status"]);
        if status == ctx.job["status"] {
            return Ok(());
        }
        let mut updated = ctx.job.clone();
        updated["status"] = status;
        let path = format!(
            "{}/status",
            meta::path("batch/v1", "jobs", meta::namespace(&updated), meta::name(&updated))
        );
        let written = self.client.replace(&path, &updated).await?;
        self.jobs.assume(&written);
        ctx.job = written;
        Ok(())
    }
}

/// Moves uncounted pods whose finalizer is gone into the counters.
fn clean_uncounted(status: &mut Status, with_finalizer: &HashSet<String>) {
    let before = status.uncounted_succeeded.len();
    status.uncounted_succeeded.retain(|u| with_finalizer.contains(u));
    status.succeeded += i64::try_from(before - status.uncounted_succeeded.len()).unwrap_or(0);
    let before = status.uncounted_failed.len();
    status.uncounted_failed.retain(|u| with_finalizer.contains(u));
    status.failed += i64::try_from(before - status.uncounted_failed.len()).unwrap_or(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncounted_pods_move_to_the_counters_once_released() {
        let mut s = Status {
            succeeded: 1,
            uncounted_succeeded: vec!["a".into(), "b".into()],
            uncounted_failed: vec!["c".into()],
            ..Status::default()
        };
        let still: HashSet<String> = ["b".to_owned()].into();
        clean_uncounted(&mut s, &still);
        assert_eq!((s.succeeded, s.failed), (2, 1));
        assert_eq!(s.uncounted_succeeded, ["b"]);
        assert!(s.uncounted_failed.is_empty());
        // Released again: nothing is counted twice.
        clean_uncounted(&mut s, &still);
        assert_eq!((s.succeeded, s.failed), (2, 1));
    }
}
