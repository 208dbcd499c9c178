//! The Job controller's writes to pods: creation in slow-start batches,
//! deletion, the tracking finalizer's removal, adoption of orphans.

use std::sync::Arc;

use lichen_client::PatchType;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::{Controller, Ctx, jobs_gone_or_finished, owner_key, pods};
use crate::{Error, meta};

impl Controller {
    /// Creates pods in slow-start batches (1, 2, 4, ...), stopping at the
    /// first batch with a failure; returns how many were created.
    pub(super) async fn create_pods(
        &self,
        job: &Value,
        mut wanted: Vec<Option<u64>>,
    ) -> (i64, Result<(), Error>) {
        let ns = meta::namespace(job).to_owned();
        let mut created = 0;
        let mut batch = 1;
        while !wanted.is_empty() {
            let rest = wanted.split_off(batch.min(wanted.len()));
            let mut creates = JoinSet::new();
            for ix in std::mem::replace(&mut wanted, rest) {
                let (client, pod) = (self.client.clone(), pods::from_template(job, ix));
                let path = meta::path("v1", "pods", &ns, "");
                creates.spawn(async move { client.create(&path, &pod).await });
            }
            let mut failed = None;
            while let Some(r) = creates.join_next().await {
                match r {
                    Ok(Ok(p)) => {
                        self.pods.assume(&p);
                        created += 1;
                        self.recorder.normal(
                            job,
                            "SuccessfulCreate",
                            format!("Created pod: {}", meta::name(&p)),
                        );
                    }
                    Ok(Err(e)) => {
                        self.recorder.warning(job, "FailedCreate", format!("Error creating: {e}"));
                        failed = Some(Error::from(e));
                    }
                    Err(e) => failed = Some(Error::Invalid(format!("pod creation task: {e}"))),
                }
            }
            if let Some(e) = failed {
                return (created, Err(e));
            }
            batch *= 2;
        }
        (created, Ok(()))
    }

    /// Deletes pods (for suspension and surplus, after removing their
    /// finalizer: they are not counted). Returns how many were deleted,
    /// how many of those were ready, and the first error.
    pub(super) async fn delete_pods(
        &self,
        ctx: &mut Ctx,
        victims: &[Arc<Value>],
        release: bool,
    ) -> (i64, i64, Result<(), Error>) {
        let (mut deleted, mut ready, mut result) = (0, 0, Ok(()));
        for pod in victims {
            if release
                && pods::has_tracking(pod)
                && let Err(e) = self.remove_finalizer(&ctx.key, pod).await
            {
                result = Err(e);
                continue;
            }
            if release {
                ctx.removed.insert(meta::uid(pod).to_owned());
            }
            let path = meta::path("v1", "pods", meta::namespace(pod), meta::name(pod));
            let opts = json!({"preconditions": {"uid": meta::uid(pod)}});
            match self.client.delete(&path, &opts).await {
                Ok(p) => {
                    self.assume_pod(pod, &p);
                    self.recorder.normal(
                        &ctx.job,
                        "SuccessfulDelete",
                        format!("Deleted pod: {}", meta::name(pod)),
                    );
                }
                Err(e) if e.is_not_found() => self.pods.assume_deleted(&meta::key_of(pod)),
                Err(e) => {
                    self.recorder.warning(&ctx.job, "FailedDelete", format!("Error deleting: {e}"));
                    result = Err(e.into());
                    continue;
                }
            }
            deleted += 1;
            if meta::pod_ready(pod) {
                ready += 1;
            }
        }
        (deleted, ready, result)
    }

    /// Puts the answer to a pod write into the cache: a pod that is being
    /// deleted and has no finalizer left is gone.
    pub(super) fn assume_pod(&self, before: &Value, answer: &Value) {
        let gone = answer["kind"] != "Pod"
            || (meta::is_terminating(answer)
                && answer["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty));
        if gone {
            self.pods.assume_deleted(&meta::key_of(before));
        } else {
            self.pods.assume(answer);
        }
    }

    /// Removes the tracking finalizer; a pod already gone counts as done.
    pub(super) async fn remove_finalizer(&self, job_key: &str, pod: &Value) -> Result<(), Error> {
        let Some(patch) = pods::remove_tracking_patch(pod) else { return Ok(()) };
        let path = meta::path("v1", "pods", meta::namespace(pod), meta::name(pod));
        match self.client.patch(&path, PatchType::Json, &patch).await {
            Ok(p) => self.assume_pod(pod, &p),
            Err(e) if e.is_not_found() => self.pods.assume_deleted(&meta::key_of(pod)),
            Err(e) => return Err(e.into()),
        }
        if let Ok(mut r) = self.removed.lock() {
            r.entry(job_key.to_owned()).or_default().insert(meta::uid(pod).to_owned());
        }
        Ok(())
    }

    /// The pods this job owns, adopting orphans its selector matches.
    pub(super) async fn claim(&self, job: &Value) -> Result<Vec<Arc<Value>>, Error> {
        let uid = meta::uid(job);
        let selector = meta::selector(job);
        let mut owned = Vec::new();
        for pod in self.pods.list_in(meta::namespace(job)) {
            if meta::controller_uid(&pod) == uid {
                owned.push(pod);
            } else if meta::controller_ref(&pod).is_none()
                && !meta::is_terminating(job)
                && !meta::is_terminating(&pod)
                && selector.matches_object(&pod)
            {
                let mut refs = pod["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default();
                refs.push(meta::owner_ref(job, "batch/v1", "Job"));
                let mut fins = pod["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
                if !pods::has_tracking(&pod) {
                    fins.push(json!(pods::TRACKING));
                }
                let patch = json!({"metadata": {"ownerReferences": refs, "finalizers": fins,
                    "uid": meta::uid(&pod), "resourceVersion": meta::resource_version(&pod)}});
                let path = meta::path("v1", "pods", meta::namespace(&pod), meta::name(&pod));
                match self.client.patch(&path, PatchType::Merge, &patch).await {
                    Ok(p) => {
                        self.pods.assume(&p);
                        owned.push(Arc::new(p));
                    }
                    Err(e) if e.is_not_found() || e.is_conflict() => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(owned)
    }

    /// Removes the tracking finalizer from a pod no running Job counts.
    pub(super) async fn sync_orphan(&self, key: &str) -> Result<(), Error> {
        let Some(pod) = self.pods.get(key) else { return Ok(()) };
        if !pods::has_tracking(&pod) {
            return Ok(());
        }
        if let Some(r) = meta::controller_ref(&pod) {
            if r["kind"] != "Job" || r["apiVersion"] != "batch/v1" {
                return Ok(());
            }
            if !jobs_gone_or_finished(&self.jobs, owner_key(&pod).as_deref(), &pod) {
                return Ok(());
            }
        }
        let job_key = owner_key(&pod).unwrap_or_default();
        self.remove_finalizer(&job_key, &pod).await
    }
}
