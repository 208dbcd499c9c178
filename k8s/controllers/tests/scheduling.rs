//! The scheduler and the ReplicaSet controller on the real API server.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Cluster;
use serde_json::json;

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_pods_are_created_and_spread_over_fitting_nodes() {
    let c = Cluster::start(true);
    c.node("small", 1, 1, json!({"size": "small"}), json!([])).await;
    c.node("big-1", 8, 16, json!({"size": "big"}), json!([])).await;
    c.node("big-2", 8, 16, json!({"size": "big"}), json!([])).await;
    c.node(
        "tainted",
        8,
        16,
        json!({"size": "big"}),
        json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
    )
    .await;
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "2"}}}]},
            },
        },
    });
    c.create("/apis/apps/v1/namespaces/default/replicasets", rs).await;
    let pods = c
        .until("4 bound pods", T, || async {
            let pods = c.pods("default").await;
            let bound = pods.iter().filter(|p| p["spec"]["nodeName"].is_string()).count();
            (bound == 4).then_some(pods)
        })
        .await;
    let mut nodes: Vec<&str> = pods.iter().map(|p| p["spec"]["nodeName"].as_str().unwrap()).collect();
    nodes.sort();
    // 2 cpu does not fit on "small"; the taint keeps "tainted" out;
    // spreading puts two on each big node.
    assert_eq!(nodes, ["big-1", "big-1", "big-2", "big-2"]);
    for p in &pods {
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
        assert!(p["metadata"]["name"].as_str().unwrap().starts_with("web-"));
    }

    // Status follows the pods.
    c.run_pods("default").await;
    c.until("readyReplicas 4", T, || async {
        let rs = c.get("/apis/apps/v1/namespaces/default/replicasets/web").await;
        (rs["status"]["readyReplicas"] == 4 && rs["status"]["availableReplicas"] == 4).then_some(())
    })
    .await;

    // Scale down: two pods go.
    c.client
        .patch(
            "/apis/apps/v1/namespaces/default/replicasets/web",
            lichen_client::PatchType::Merge,
            &json!({"spec": {"replicas": 2}}),
        )
        .await
        .unwrap();
    c.until("2 pods left", T, || async {
        let live =
            c.pods("default").await.iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).count();
        (live == 2).then_some(())
    })
    .await;

    // At most 6 cpu are left on a big node: 7 cpu and 32Gi fit nowhere.
    let big = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "huge", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "7", "memory": "32Gi"}}}]},
    });
    c.create("/api/v1/namespaces/default/pods", big).await;
    let message = c
        .until("PodScheduled=False", T, || async {
            let p = c.get("/api/v1/namespaces/default/pods/huge").await;
            let cond =
                p["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "PodScheduled")?.clone();
            Some(cond["message"].as_str()?.to_owned())
        })
        .await;
    assert_eq!(
        message,
        "0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 3 Insufficient cpu, 3 Insufficient memory."
    );
    let events = c.get("/api/v1/namespaces/default/events").await;
    assert_eq!(common::events_for(&events, "huge", "FailedScheduling"), [message]);

    // A node that fits arrives: the pod is placed.
    c.node("bigger", 16, 64, json!({}), json!([])).await;
    c.until("huge bound to bigger", T, || async {
        let p = c.get("/api/v1/namespaces/default/pods/huge").await;
        (p["spec"]["nodeName"] == "bigger").then_some(())
    })
    .await;
}
