//! The TTL-after-finished controller, as upstream's
//! (`pkg/controller/ttlafterfinished`): a finished Job with
//! `ttlSecondsAfterFinished` is deleted that long after its Complete or
//! Failed condition turned True, with foreground propagation (its pods go
//! first) and a uid precondition, after a fresh read confirms the TTL.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lichen_client::Client;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::clock::{Clock, SystemClock, Timers};
use crate::informer::Informer;
use crate::queue::Queue;
use crate::{Error, Informers, meta};

#[derive(Clone)]
struct Controller {
    client: Client,
    jobs: Informer,
    timers: Timers,
}

pub fn start(tasks: &mut JoinSet<()>, client: &Client, informers: &Informers) {
    start_with(tasks, client, informers, Arc::new(SystemClock));
}

pub fn start_with(tasks: &mut JoinSet<()>, client: &Client, informers: &Informers, clock: Arc<dyn Clock>) {
    let queue = Queue::new();
    let c = Controller {
        client: client.clone(),
        jobs: informers.jobs.clone(),
        timers: Timers::new(clock, queue.clone()),
    };
    let q = queue.clone();
    informers.jobs.on_change(move |ch| {
        let job = ch.object();
        if !matches!(ch, crate::informer::Change::Deleted(_)) && needs_cleanup(job) {
            q.add(&meta::key_of(job));
        }
    });
    crate::spawn_workers(tasks, "ttl-after-finished", &queue, vec![informers.jobs.clone()], 2, move |key| {
        let c = c.clone();
        async move { c.sync(&key).await.map(|()| None) }
    });
}

/// Finished, with a TTL, not being deleted.
fn needs_cleanup(job: &Value) -> bool {
    job["spec"]["ttlSecondsAfterFinished"].is_i64() && crate::job::finished(job) && !meta::is_terminating(job)
}

/// When the TTL of a finished Job runs out.
pub fn expires_at(job: &Value) -> Option<SystemTime> {
    let ttl = job["spec"]["ttlSecondsAfterFinished"].as_u64()?;
    let finished = job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")?;
    Some(meta::time(&finished["lastTransitionTime"])? + Duration::from_secs(ttl))
}

impl Controller {
    /// Time left, or `None` when the TTL has run out; requeues if left.
    fn left(&self, key: &str, job: &Value) -> Option<Option<Duration>> {
        if !needs_cleanup(job) {
            return None;
        }
        let at = expires_at(job)?;
        match at.duration_since(self.timers.clock().now()) {
            Ok(d) if !d.is_zero() => {
                self.timers.add_at(key, at);
                Some(Some(d))
            }
            _ => Some(None),
        }
    }

    async fn sync(&self, key: &str) -> Result<(), Error> {
        let Some(job) = self.jobs.get(key) else { return Ok(()) };
        if !matches!(self.left(key, &job), Some(None)) {
            return Ok(());
        }
        // The cache may be stale: the TTL is checked again on a fresh read.
        let path = meta::path("batch/v1", "jobs", meta::namespace(&job), meta::name(&job));
        let Some(fresh) = self.client.get_opt(&path).await? else { return Ok(()) };
        if !matches!(self.left(key, &fresh), Some(None)) {
            return Ok(());
        }
        tracing::debug!(job = %key, "deleting finished job after its ttl");
        let opts = json!({"propagationPolicy": "Foreground", "preconditions": {"uid": meta::uid(&fresh)}});
        match self.client.delete(&path, &opts).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ttl_counts_from_the_finished_condition() {
        let job = json!({"spec": {"ttlSecondsAfterFinished": 30}, "status": {"conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"},
            {"type": "Complete", "status": "True", "lastTransitionTime": "2024-01-01T00:00:05Z"}]}});
        let at = expires_at(&job).unwrap();
        assert_eq!(meta::rfc3339(at), "2024-01-01T00:00:35Z");
        assert!(needs_cleanup(&job));
        let running = json!({"spec": {"ttlSecondsAfterFinished": 30}, "status": {}});
        assert!(!needs_cleanup(&running));
        assert!(expires_at(&running).is_none());
    }
}
