//! The CronJob controller on the real API server, on a manual clock.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Cluster;
use lichen_controllers::clock::ManualClock;
use lichen_controllers::cronjob;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(20);
const NS: &str = "default";

fn rfc3339(t: SystemTime) -> String {
    lichen_apimachinery::timestamp::format_rfc3339(
        i64::try_from(t.duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap(),
    )
}

async fn job_names(c: &Cluster) -> Vec<String> {
    let mut names: Vec<String> = c.get("/apis/batch/v1/namespaces/default/jobs").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Marks a Job Complete, as the Job controller would.
async fn complete(c: &Cluster, name: &str, at: SystemTime) {
    let path = format!("/apis/batch/v1/namespaces/{NS}/jobs/{name}");
    let mut j = c.get(&path).await;
    j["status"] = json!({"startTime": rfc3339(at), "completionTime": rfc3339(at), "succeeded": 1,
        "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": rfc3339(at)}]});
    c.client.replace(&format!("{path}/status"), &j).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbid_skips_while_a_job_runs_and_history_is_trimmed() {
    let clock = ManualClock::new(SystemTime::now());
    let clk = clock.clone();
    let c = Cluster::start_with(move |tasks, client, informers| {
        cronjob::start_with(tasks, client, informers, clk);
    });
    let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick", "namespace": NS},
        "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Forbid", "successfulJobsHistoryLimit": 2,
            "jobTemplate": {"metadata": {"labels": {"app": "tick"}}, "spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    let cj = c.create("/apis/batch/v1/namespaces/default/cronjobs", cj).await;
    let created =
        lichen_apimachinery::timestamp::parse_rfc3339(cj["metadata"]["creationTimestamp"].as_str().unwrap())
            .unwrap();
    let minute = |n: i64| (created / 60 + n) * 60;
    let at = |secs: i64| UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(job_names(&c).await.is_empty(), "nothing before the first schedule time");

    // The first minute: one job, named for it.
    clock.set(at(minute(1) + 1));
    let first = format!("tick-{}", minute(1) / 60);
    c.until("the first job", T, || async { (job_names(&c).await == [first.clone()]).then_some(()) }).await;
    let job = c.get(&format!("/apis/batch/v1/namespaces/{NS}/jobs/{first}")).await;
    assert_eq!(
        job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"],
        rfc3339(at(minute(1)))
    );
    assert_eq!(job["metadata"]["labels"]["app"], "tick");
    assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], cj["metadata"]["uid"]);
    let status = c
        .until("status.active", T, || async {
            let s = c.get("/apis/batch/v1/namespaces/default/cronjobs/tick").await["status"].clone();
            (s["active"][0]["name"] == first.as_str()).then_some(s)
        })
        .await;
    assert_eq!(status["lastScheduleTime"], rfc3339(at(minute(1))));
    assert_eq!(status["active"][0]["kind"], "Job");

    // The next minute while it runs: Forbid skips.
    clock.set(at(minute(2) + 1));
    c.until("JobAlreadyActive", T, || async {
        (!c.events(NS, "tick", "JobAlreadyActive").await.is_empty()).then_some(())
    })
    .await;
    assert_eq!(job_names(&c).await, std::slice::from_ref(&first));

    // It finishes: the missed time starts at once.
    complete(&c, &first, at(minute(2) + 1)).await;
    let second = format!("tick-{}", minute(2) / 60);
    c.until("the second job", T, || async { job_names(&c).await.contains(&second).then_some(()) }).await;
    let s = c
        .until("lastSuccessfulTime", T, || async {
            let s = c.get("/apis/batch/v1/namespaces/default/cronjobs/tick").await["status"].clone();
            (s["lastSuccessfulTime"].is_string() && s["active"].as_array().map(Vec::len) == Some(1))
                .then_some(s)
        })
        .await;
    assert_eq!(s["active"][0]["name"], second.as_str());
    assert_eq!(s["lastSuccessfulTime"], rfc3339(at(minute(2) + 1)));

    // Two more runs: only the two newest finished jobs are kept.
    let mut names = vec![first.clone(), second.clone()];
    for n in 3..=4 {
        complete(&c, names.last().unwrap(), at(minute(n - 1) + 2)).await;
        clock.set(at(minute(n) + 1));
        let name = format!("tick-{}", minute(n) / 60);
        c.until("the next job", T, || async { job_names(&c).await.contains(&name).then_some(()) }).await;
        names.push(name);
    }
    let kept: Vec<String> = names[1..].to_vec();
    c.until("history trimmed", T, || async { (job_names(&c).await == kept).then_some(()) }).await;
    let deleted: Vec<String> = c.events(NS, "tick", "SuccessfulDelete").await;
    assert_eq!(deleted, [format!("Deleted job {first}")]);
    let created: Vec<String> = c.events(NS, "tick", "SuccessfulCreate").await;
    assert_eq!(created.len(), 4);
    assert!(!c.events(NS, "tick", "SawCompletedJob").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_deletes_the_running_job_and_suspend_stops_new_ones() {
    let clock = ManualClock::new(SystemTime::now());
    let clk = clock.clone();
    let c = Cluster::start_with(move |tasks, client, informers| {
        cronjob::start_with(tasks, client, informers, clk);
    });
    let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "swap", "namespace": NS},
        "spec": {"schedule": "*/2 * * * *", "concurrencyPolicy": "Replace", "timeZone": "Europe/Berlin",
            "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    let cj: Value = c.create("/apis/batch/v1/namespaces/default/cronjobs", cj).await;
    let created =
        lichen_apimachinery::timestamp::parse_rfc3339(cj["metadata"]["creationTimestamp"].as_str().unwrap())
            .unwrap();
    let slot = |n: i64| (created / 120 + n) * 120;
    let at = |secs: i64| UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap());
    clock.set(at(slot(1) + 5));
    let first = format!("swap-{}", slot(1) / 60);
    c.until("the first job", T, || async { (job_names(&c).await == [first.clone()]).then_some(()) }).await;
    let job = c.get(&format!("/apis/batch/v1/namespaces/{NS}/jobs/{first}")).await;
    let stamp =
        job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"].as_str().unwrap();
    assert!(stamp.ends_with("+01:00") || stamp.ends_with("+02:00"), "in the CronJob's zone: {stamp}");
    clock.set(at(slot(2) + 5));
    let second = format!("swap-{}", slot(2) / 60);
    c.until("the job replaced", T, || async { (job_names(&c).await == [second.clone()]).then_some(()) })
        .await;
    assert_eq!(c.events(NS, "swap", "SuccessfulDelete").await, [format!("Deleted job {first}")]);
    c.client
        .patch(
            "/apis/batch/v1/namespaces/default/cronjobs/swap",
            lichen_client::PatchType::Merge,
            &json!({"spec": {"suspend": true}}),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    clock.set(at(slot(3) + 5));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(job_names(&c).await, [second], "no job while suspended");
}
