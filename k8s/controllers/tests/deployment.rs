//! The Deployment controller on the real API server, with pods played by
//! a hollow agent.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Cluster;
use lichen_client::PatchType;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);
const D: &str = "/apis/apps/v1/namespaces/default/deployments/web";

async fn deployment(c: &Cluster) -> Value {
    c.get(D).await
}

async fn sets(c: &Cluster) -> Vec<Value> {
    c.get("/apis/apps/v1/namespaces/default/replicasets").await["items"].as_array().cloned().unwrap()
}

fn revision(rs: &Value) -> &str {
    rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str().unwrap_or("")
}

fn image(obj: &Value) -> &str {
    obj["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap()
}

async fn rolled_out(c: &Cluster, replicas: i64) {
    c.until("rollout complete", T, || async {
        let d = deployment(c).await;
        let s = &d["status"];
        let progressing =
            d["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Progressing")?.clone();
        let done = s["observedGeneration"] == d["metadata"]["generation"]
            && s["updatedReplicas"] == replicas
            && s["replicas"] == replicas
            && s["availableReplicas"] == replicas
            && progressing["reason"] == "NewReplicaSetAvailable";
        done.then_some(())
    })
    .await;
}

async fn set_image(c: &Cluster, image: &str) {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
    c.client.patch(D, PatchType::Strategic, &patch).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_roll_within_surge_roll_back_pause_scale_and_trim_history() {
    let c = Cluster::start(true);
    c.node("n1", 32, 64, json!({}), json!([])).await;
    c.node("n2", 32, 64, json!({}), json!([])).await;
    let _agent = c.hollow("default");
    let d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"kubernetes.io/change-cause": "first"}},
        "spec": {
            "replicas": 4,
            "revisionHistoryLimit": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "web:1"}]},
            },
        },
    });
    c.create("/apis/apps/v1/namespaces/default/deployments", d).await;
    rolled_out(&c, 4).await;
    let first = sets(&c).await;
    assert_eq!(first.len(), 1);
    assert_eq!(revision(&first[0]), "1");
    assert_eq!(first[0]["metadata"]["annotations"]["kubernetes.io/change-cause"], "first");
    let hash = first[0]["metadata"]["labels"]["pod-template-hash"].as_str().unwrap().to_owned();
    assert_eq!(first[0]["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(revision(&deployment(&c).await), "1");

    // A new image rolls with at most 4 + maxSurge pods and never fewer than
    // 4 available (maxUnavailable 0).
    let watcher = {
        let client = c.client.clone();
        tokio::spawn(async move {
            let (mut most, mut fewest_ready) = (0usize, usize::MAX);
            loop {
                let pods = client.get("/api/v1/namespaces/default/pods").await.unwrap();
                let live: Vec<&Value> = pods["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                    .collect();
                most = most.max(live.len());
                let ready = live.iter().filter(|p| p["status"]["phase"] == "Running").count();
                fewest_ready = fewest_ready.min(ready);
                if most > 100 {
                    return (most, fewest_ready);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                if client.get(D).await.unwrap()["status"]["updatedReplicas"] == 4
                    && client.get(D).await.unwrap()["status"]["replicas"] == 4
                    && ready == 4
                    && live.iter().all(|p| p["spec"]["containers"][0]["image"] == "web:2")
                {
                    return (most, fewest_ready);
                }
            }
        })
    };
    set_image(&c, "web:2").await;
    rolled_out(&c, 4).await;
    let (most, fewest_ready) = watcher.await.unwrap();
    assert!(most <= 5, "{most} pods at once with maxSurge 1");
    assert!(fewest_ready >= 4, "only {fewest_ready} ready with maxUnavailable 0");
    let rs = sets(&c).await;
    assert_eq!(rs.len(), 2);
    let new = rs.iter().find(|r| image(r) == "web:2").unwrap();
    let old = rs.iter().find(|r| image(r) == "web:1").unwrap();
    assert_eq!((revision(new), revision(old)), ("2", "1"));
    assert_eq!((new["spec"]["replicas"].as_i64(), old["spec"]["replicas"].as_i64()), (Some(4), Some(0)));
    let events = c.get("/api/v1/namespaces/default/events").await;
    let scaled = common::events_for(&events, "web", "ScalingReplicaSet");
    assert!(
        scaled.iter().any(|m| m.starts_with("Scaled up replica set web-") && m.ends_with("from 0 to 1")),
        "{scaled:?}"
    );

    // Back to the first template (what `kubectl rollout undo` does): the old
    // set becomes revision 3, no new set is made.
    set_image(&c, "web:1").await;
    rolled_out(&c, 4).await;
    let rs = sets(&c).await;
    assert_eq!(rs.len(), 2);
    let back = rs.iter().find(|r| image(r) == "web:1").unwrap();
    assert_eq!(revision(back), "3");
    assert_eq!(back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"], "1");
    assert_eq!(back["metadata"]["name"], format!("web-{hash}"));

    // Paused: a template change does nothing until resumed.
    c.client.patch(D, PatchType::Merge, &json!({"spec": {"paused": true}})).await.unwrap();
    set_image(&c, "web:3").await;
    c.until("paused condition", T, || async {
        let d = deployment(&c).await;
        let p = d["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Progressing")?.clone();
        (p["reason"] == "DeploymentPaused"
            && d["status"]["observedGeneration"] == d["metadata"]["generation"])
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sets(&c).await.iter().all(|r| image(r) != "web:3"), "a paused deployment rolled");
    // Scaling works while paused.
    c.client.patch(D, PatchType::Merge, &json!({"spec": {"replicas": 6}})).await.unwrap();
    c.until("6 replicas while paused", T, || async {
        let live =
            c.pods("default").await.iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).count();
        (live == 6).then_some(())
    })
    .await;
    c.client.patch(D, PatchType::Merge, &json!({"spec": {"paused": false}})).await.unwrap();
    rolled_out(&c, 6).await;
    // History limit 1: of the two old sets, only the newest is kept.
    c.until("history trimmed", T, || async {
        let rs = sets(&c).await;
        let mut revs: Vec<String> = rs.iter().map(|r| revision(r).to_owned()).collect();
        revs.sort();
        (revs == ["3", "4"]).then_some(())
    })
    .await;
}
