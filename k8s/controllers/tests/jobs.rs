//! The Job and TTL-after-finished controllers on the real API server.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{Cluster, condition};
use lichen_controllers::clock::ManualClock;
use lichen_controllers::{job, scheduler, ttl};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(20);
const NS: &str = "default";
const TRACKING: &str = "batch.kubernetes.io/job-tracking";

fn job(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["template"] = json!({"spec": {"restartPolicy": "Never",
        "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}});
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NS}, "spec": spec})
}

/// Scheduler, Job and TTL controllers, all on `clock`.
fn cluster_with(clock: Arc<ManualClock>) -> Cluster {
    Cluster::start_with(move |tasks, client, informers| {
        scheduler::start(tasks, client, informers);
        let opts = job::Options { clock: clock.clone(), ..job::Options::default() };
        job::start_with(tasks, client, informers, opts);
        ttl::start_with(tasks, client, informers, clock);
    })
}

async fn get_job(c: &Cluster, name: &str) -> Value {
    c.get(&format!("/apis/batch/v1/namespaces/{NS}/jobs/{name}")).await
}

fn is_true(obj: &Value, kind: &str) -> bool {
    condition(obj, kind).is_some_and(|c| c["status"] == "True")
}

/// The job's pods that are neither finished nor being deleted.
fn live(pods: &[Value]) -> Vec<&Value> {
    pods.iter()
        .filter(|p| {
            !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
                && p["metadata"]["deletionTimestamp"].is_null()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_run_at_most_parallelism_pods_at_a_time() {
    let c = Cluster::start(true);
    c.node("n1", 8, 16, json!({}), json!([])).await;
    c.create(
        "/apis/batch/v1/namespaces/default/jobs",
        job("pi", json!({"completions": 3, "parallelism": 2})),
    )
    .await;
    let most = std::sync::atomic::AtomicUsize::new(0);
    let done = c
        .until("the job to complete", T, || async {
            let pods = c.pods(NS).await;
            most.fetch_max(live(&pods).len(), std::sync::atomic::Ordering::Relaxed);
            c.start_pods(NS).await;
            c.finish_pods(NS, "Succeeded", 1).await;
            let j = get_job(&c, "pi").await;
            is_true(&j, "Complete").then_some(j)
        })
        .await;
    let most = most.into_inner();
    assert_eq!(most, 2, "never more than parallelism pods, and that many at once");
    assert_eq!(done["status"]["succeeded"], 3);
    assert_eq!(done["status"]["active"], Value::Null);
    assert_eq!(done["status"]["ready"], 0);
    assert!(is_true(&done, "SuccessCriteriaMet"));
    assert_eq!(condition(&done, "Complete").unwrap()["reason"], "CompletionsReached");
    assert!(done["status"]["completionTime"].is_string() && done["status"]["startTime"].is_string());
    assert_eq!(done["status"]["uncountedTerminatedPods"], json!({}));
    let pods = c.pods(NS).await;
    assert_eq!(pods.len(), 3, "one pod per completion");
    for p in &pods {
        assert_eq!(p["metadata"]["labels"]["batch.kubernetes.io/job-name"], "pi");
        assert_eq!(p["metadata"]["labels"]["job-name"], "pi");
        assert_eq!(p["metadata"]["labels"]["batch.kubernetes.io/controller-uid"], done["metadata"]["uid"]);
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Job");
        assert!(p["metadata"]["finalizers"].as_array().is_none_or(|f| !f.iter().any(|x| x == TRACKING)));
    }
    assert_eq!(c.events(NS, "pi", "SuccessfulCreate").await.len(), 3);
    c.until("the Completed event", T, || async {
        (c.events(NS, "pi", "Completed").await == ["Job completed"]).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_jobs_complete_every_index() {
    let c = cluster_with(ManualClock::new(SystemTime::now()));
    c.node("n1", 8, 16, json!({}), json!([])).await;
    let spec = json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"});
    c.create("/apis/batch/v1/namespaces/default/jobs", job("idx", spec)).await;
    let pods = c
        .until("3 bound pods", T, || async {
            let pods = c.pods(NS).await;
            (pods.iter().filter(|p| p["spec"]["nodeName"].is_string()).count() == 3).then_some(pods)
        })
        .await;
    let key = "batch.kubernetes.io/job-completion-index";
    let indexes: BTreeSet<&str> =
        pods.iter().map(|p| p["metadata"]["annotations"][key].as_str().unwrap()).collect();
    assert_eq!(indexes, ["0", "1", "2"].into());
    for p in &pods {
        let ix = p["metadata"]["annotations"][key].as_str().unwrap();
        assert_eq!(p["metadata"]["labels"][key], ix);
        assert_eq!(p["spec"]["hostname"], format!("idx-{ix}"));
        assert!(p["metadata"]["name"].as_str().unwrap().starts_with(&format!("idx-{ix}-")));
        let env = &p["spec"]["containers"][0]["env"][0];
        assert_eq!(env["name"], "JOB_COMPLETION_INDEX");
        assert_eq!(env["valueFrom"]["fieldRef"]["fieldPath"], format!("metadata.labels['{key}']"));
    }
    c.start_pods(NS).await;
    // Index 1 first: the status names it alone.
    let one = pods.iter().find(|p| p["metadata"]["annotations"][key] == "1").unwrap();
    let mut p =
        c.get(&format!("/api/v1/namespaces/{NS}/pods/{}", one["metadata"]["name"].as_str().unwrap())).await;
    p["status"]["phase"] = json!("Succeeded");
    c.client
        .replace(
            &format!("/api/v1/namespaces/{NS}/pods/{}/status", p["metadata"]["name"].as_str().unwrap()),
            &p,
        )
        .await
        .unwrap();
    c.until("completedIndexes 1", T, || async {
        let j = get_job(&c, "idx").await;
        (j["status"]["completedIndexes"] == "1" && j["status"]["succeeded"] == 1).then_some(())
    })
    .await;
    c.finish_pods(NS, "Succeeded", 2).await;
    let done = c
        .until("the job to complete", T, || async {
            let j = get_job(&c, "idx").await;
            is_true(&j, "Complete").then_some(j)
        })
        .await;
    assert_eq!(done["status"]["completedIndexes"], "0-2");
    assert_eq!(done["status"]["succeeded"], 3);
    assert_eq!(c.pods(NS).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_pods_are_replaced_after_a_backoff_until_the_limit() {
    let clock = ManualClock::new(SystemTime::now());
    let c = cluster_with(clock.clone());
    c.node("n1", 8, 16, json!({}), json!([])).await;
    c.create("/apis/batch/v1/namespaces/default/jobs", job("flaky", json!({"backoffLimit": 1}))).await;
    c.until("a running pod", T, || async {
        c.start_pods(NS).await;
        (live(&c.pods(NS).await).iter().any(|p| p["status"]["phase"] == "Running")).then_some(())
    })
    .await;
    assert_eq!(c.finish_pods(NS, "Failed", 1).await.len(), 1);
    c.until("failed 1", T, || async { (get_job(&c, "flaky").await["status"]["failed"] == 1).then_some(()) })
        .await;
    // The first back-off is 10 s on the job's clock, which stands still.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.pods(NS).await.len(), 1, "no replacement during the back-off");
    assert!(!is_true(&get_job(&c, "flaky").await, "Failed"));
    clock.advance(Duration::from_secs(30));
    c.until("a replacement pod running", T, || async {
        c.start_pods(NS).await;
        let pods = c.pods(NS).await;
        (pods.len() == 2 && live(&pods).iter().any(|p| p["status"]["phase"] == "Running")).then_some(())
    })
    .await;
    assert_eq!(c.finish_pods(NS, "Failed", 1).await.len(), 1);
    let failed = c
        .until("the job to fail", T, || async {
            let j = get_job(&c, "flaky").await;
            is_true(&j, "Failed").then_some(j)
        })
        .await;
    let cond = condition(&failed, "Failed").unwrap();
    assert_eq!(cond["reason"], "BackoffLimitExceeded");
    assert_eq!(cond["message"], "Job has reached the specified backoff limit");
    assert!(is_true(&failed, "FailureTarget"));
    assert_eq!(failed["status"]["failed"], 2);
    assert!(failed["status"]["completionTime"].is_null());
    assert_eq!(c.pods(NS).await.len(), 2, "no pod after the limit");
    c.until("the event", T, || async {
        (c.events(NS, "flaky", "BackoffLimitExceeded").await
            == ["Job has reached the specified backoff limit"])
        .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_deadline_fails_the_job_and_removes_its_pods() {
    let clock = ManualClock::new(SystemTime::now());
    let c = cluster_with(clock.clone());
    c.node("n1", 8, 16, json!({}), json!([])).await;
    let spec = json!({"parallelism": 2, "completions": 4, "activeDeadlineSeconds": 60});
    c.create("/apis/batch/v1/namespaces/default/jobs", job("slow", spec)).await;
    c.until("2 ready pods", T, || async {
        c.start_pods(NS).await;
        (get_job(&c, "slow").await["status"]["ready"] == 2).then_some(())
    })
    .await;
    clock.advance(Duration::from_secs(59));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(condition(&get_job(&c, "slow").await, "FailureTarget").is_none(), "not before the deadline");
    clock.advance(Duration::from_secs(2));
    let failed = c
        .until("the job to fail", T, || async {
            let j = get_job(&c, "slow").await;
            is_true(&j, "Failed").then_some(j)
        })
        .await;
    let cond = condition(&failed, "Failed").unwrap();
    assert_eq!(cond["reason"], "DeadlineExceeded");
    assert_eq!(cond["message"], "Job was active longer than specified deadline");
    assert_eq!(failed["status"]["failed"], 2, "the removed pods count as failed");
    assert_eq!(failed["status"]["active"], Value::Null);
    assert!(live(&c.pods(NS).await).is_empty(), "no pod left running");
    c.until("the event", T, || async {
        (!c.events(NS, "slow", "DeadlineExceeded").await.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_job_is_deleted_after_its_ttl() {
    let clock = ManualClock::new(SystemTime::now());
    let c = cluster_with(clock.clone());
    c.node("n1", 8, 16, json!({}), json!([])).await;
    c.create("/apis/batch/v1/namespaces/default/jobs", job("short", json!({"ttlSecondsAfterFinished": 100})))
        .await;
    c.until("the job to complete", T, || async {
        c.start_pods(NS).await;
        c.finish_pods(NS, "Succeeded", 1).await;
        is_true(&get_job(&c, "short").await, "Complete").then_some(())
    })
    .await;
    clock.advance(Duration::from_secs(90));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(c.client.get_opt("/apis/batch/v1/namespaces/default/jobs/short").await.unwrap().is_some());
    clock.advance(Duration::from_secs(11));
    c.until("the job and its pod to go", T, || async {
        let job = c.client.get_opt("/apis/batch/v1/namespaces/default/jobs/short").await.unwrap();
        (job.is_none() && c.pods(NS).await.is_empty()).then_some(())
    })
    .await;
}
