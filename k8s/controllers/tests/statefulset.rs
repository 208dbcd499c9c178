//! The StatefulSet controller on the real API server, with the scheduler
//! binding its pods; readiness is played by hand where the order matters,
//! then by a hollow agent.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Cluster;
use lichen_client::PatchType;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);
const STS: &str = "/apis/apps/v1/namespaces/default/statefulsets/web";

fn pod_path(name: &str) -> String {
    format!("/api/v1/namespaces/default/pods/{name}")
}

async fn pod(c: &Cluster, name: &str) -> Option<Value> {
    c.client.get_opt(&pod_path(name)).await.unwrap()
}

fn image(p: &Value) -> &str {
    p["spec"]["containers"][0]["image"].as_str().unwrap_or("")
}

fn running_ready(p: &Value) -> bool {
    p["status"]["phase"] == "Running"
        && p["metadata"]["deletionTimestamp"].is_null()
        && p["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// What `kubectl rollout status statefulset/web` waits for (a partitioned
/// rollout is done when the pods above the partition are updated).
async fn rolled_out(c: &Cluster) -> Value {
    c.until("statefulset rollout", T, || async {
        let s = c.get(STS).await;
        let st = &s["status"];
        let replicas = s["spec"]["replicas"].as_i64()?;
        let observed = st["observedGeneration"].as_i64().unwrap_or(0);
        if observed == 0 || s["metadata"]["generation"].as_i64()? > observed {
            return None;
        }
        if st["readyReplicas"].as_i64().unwrap_or(0) < replicas {
            return None;
        }
        let partition = s["spec"]["updateStrategy"]["rollingUpdate"]["partition"].as_i64().unwrap_or(0);
        if partition > 0 {
            return (st["updatedReplicas"].as_i64().unwrap_or(0) >= replicas - partition).then_some(s);
        }
        (st["updateRevision"] == st["currentRevision"]).then_some(s)
    })
    .await
}

async fn live_names(c: &Cluster) -> Vec<String> {
    let mut names: Vec<String> = c
        .pods("default")
        .await
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulsets_create_in_order_keep_names_and_roll_by_partition() {
    let c = Cluster::start(true);
    c.node("n1", 4, 8, json!({}), json!([])).await;
    c.node("n2", 4, 8, json!({}), json!([])).await;
    let sts = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "serviceName": "nginx",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "web:1"}]},
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }],
        },
    });
    c.create("/apis/apps/v1/namespaces/default/statefulsets", sts).await;

    // web-0 first; web-1 waits until web-0 is Running and Ready.
    let web0 = c
        .until("web-0 bound", T, || async {
            pod(&c, "web-0").await.filter(|p| p["spec"]["nodeName"].is_string())
        })
        .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(live_names(&c).await, ["web-0"], "web-1 created before web-0 was ready");
    assert_eq!(web0["spec"]["hostname"], "web-0");
    assert_eq!(web0["spec"]["subdomain"], "nginx");
    assert_eq!(web0["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"], "web-0");
    assert_eq!(web0["metadata"]["labels"]["apps.kubernetes.io/pod-index"], "0");
    let vol =
        web0["spec"]["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "data").unwrap().clone();
    assert_eq!(vol["persistentVolumeClaim"]["claimName"], "data-web-0");
    let claim = c.get("/api/v1/namespaces/default/persistentvolumeclaims/data-web-0").await;
    assert_eq!(claim["metadata"]["labels"]["app"], "web");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "1Gi");
    c.run_pods("default").await;
    c.until("web-1 bound", T, || async {
        pod(&c, "web-1").await.filter(|p| p["spec"]["nodeName"].is_string())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(live_names(&c).await, ["web-0", "web-1"], "web-2 created before web-1 was ready");

    let _agent = c.hollow("default");
    let s = rolled_out(&c).await;
    assert_eq!(live_names(&c).await, ["web-0", "web-1", "web-2"]);
    for i in 0..3 {
        c.get(&format!("/api/v1/namespaces/default/persistentvolumeclaims/data-web-{i}")).await;
    }
    let st = &s["status"];
    assert_eq!((st["replicas"].as_i64(), st["readyReplicas"].as_i64()), (Some(3), Some(3)));
    assert_eq!((st["currentReplicas"].as_i64(), st["updatedReplicas"].as_i64()), (Some(3), Some(3)));
    assert_eq!(st["availableReplicas"], 3);
    let first_rev = st["currentRevision"].as_str().unwrap().to_owned();
    assert!(first_rev.starts_with("web-"));
    let rev = c.get(&format!("/apis/apps/v1/namespaces/default/controllerrevisions/{first_rev}")).await;
    assert_eq!(rev["revision"], 1);
    assert_eq!(rev["data"]["spec"]["template"]["$patch"], "replace");
    let hash = rev["metadata"]["labels"]["controller.kubernetes.io/hash"].as_str().unwrap();
    assert_eq!(first_rev, format!("web-{hash}"));
    assert_eq!(pod(&c, "web-2").await.unwrap()["metadata"]["labels"]["controller-revision-hash"], first_rev);
    let events = c.get("/api/v1/namespaces/default/events").await;
    let created = common::events_for(&events, "web", "SuccessfulCreate");
    assert!(created.contains(&"create Pod web-0 in StatefulSet web successful".to_owned()), "{created:?}");
    assert!(
        created.contains(&"create Claim data-web-0 Pod web-0 in StatefulSet web success".to_owned()),
        "{created:?}"
    );

    // Partition 2: only web-2 moves to the new template.
    let patch = json!({"spec": {
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
        "template": {"spec": {"containers": [{"name": "c", "image": "web:2"}]}},
    }});
    c.client.patch(STS, PatchType::Strategic, &patch).await.unwrap();
    let s = rolled_out(&c).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut images = Vec::new();
    for n in ["web-0", "web-1", "web-2"] {
        images.push(image(&pod(&c, n).await.unwrap()).to_owned());
    }
    assert_eq!(images, ["web:1", "web:1", "web:2"]);
    assert_eq!(s["status"]["updatedReplicas"], 1);
    assert_eq!(s["status"]["currentRevision"], first_rev.as_str());
    assert_ne!(s["status"]["updateRevision"], first_rev.as_str());

    // Partition 0: the rest follow, highest ordinal first.
    let patch = json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}});
    c.client.patch(STS, PatchType::Strategic, &patch).await.unwrap();
    let s = rolled_out(&c).await;
    for n in ["web-0", "web-1", "web-2"] {
        assert_eq!(image(&pod(&c, n).await.unwrap()), "web:2", "{n}");
    }
    assert_eq!(s["status"]["currentRevision"], s["status"]["updateRevision"]);
    assert_eq!(s["status"]["updatedReplicas"], 3);

    // A deleted pod comes back under its name; so does a failed one.
    let old = pod(&c, "web-1").await.unwrap();
    c.client.delete(&pod_path("web-1"), &json!({})).await.unwrap();
    c.until("web-1 back", T, || async {
        pod(&c, "web-1").await.filter(|p| p["metadata"]["uid"] != old["metadata"]["uid"] && running_ready(p))
    })
    .await;
    let mut failed = pod(&c, "web-0").await.unwrap();
    failed["status"]["phase"] = json!("Failed");
    c.client.replace(&format!("{}/status", pod_path("web-0")), &failed).await.unwrap();
    c.until("web-0 recreated", T, || async {
        pod(&c, "web-0")
            .await
            .filter(|p| p["metadata"]["uid"] != failed["metadata"]["uid"] && running_ready(p))
    })
    .await;
    let events = c.get("/api/v1/namespaces/default/events").await;
    assert!(!common::events_for(&events, "web", "RecreatingFailedPod").is_empty());

    // Scale down: web-2 goes first, web-1 only after it.
    let watcher = {
        let client = c.client.clone();
        tokio::spawn(async move {
            loop {
                let pods = client.get("/api/v1/namespaces/default/pods").await.unwrap();
                let items = pods["items"].as_array().unwrap();
                let present = |n: &str| items.iter().any(|p| p["metadata"]["name"] == n);
                let going = |n: &str| {
                    items
                        .iter()
                        .any(|p| p["metadata"]["name"] == n && p["metadata"]["deletionTimestamp"].is_string())
                };
                if (going("web-1") || !present("web-1")) && present("web-2") {
                    return false;
                }
                if !present("web-1") && !present("web-2") {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    c.client.patch(STS, PatchType::Merge, &json!({"spec": {"replicas": 1}})).await.unwrap();
    let in_order = tokio::time::timeout(T, watcher).await.unwrap().unwrap();
    assert!(in_order, "web-1 went before web-2");
    rolled_out(&c).await;
    assert_eq!(live_names(&c).await, ["web-0"]);
    // The status catches up with the pods.
    c.until("status.replicas 1", T, || async { (c.get(STS).await["status"]["replicas"] == 1).then_some(()) })
        .await;
    // Claims are retained by default.
    c.get("/api/v1/namespaces/default/persistentvolumeclaims/data-web-2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_statefulsets_start_together_and_delete_claims_as_their_policy_says() {
    let c = Cluster::start(true);
    c.node("n1", 4, 8, json!({}), json!([])).await;
    let sts = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "podManagementPolicy": "Parallel",
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"},
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "web:1"}]},
            },
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}],
        },
    });
    c.create("/apis/apps/v1/namespaces/default/statefulsets", sts).await;
    // No pod is ready, yet all three exist.
    c.until("three pods at once", T, || async { (live_names(&c).await.len() == 3).then_some(()) }).await;
    let claim = |i: i64| format!("/api/v1/namespaces/default/persistentvolumeclaims/data-web-{i}");
    let owners = c.get(&claim(0)).await["metadata"]["ownerReferences"].clone();
    assert_eq!(owners[0]["kind"], "StatefulSet", "{owners}");
    let _agent = c.hollow("default");
    rolled_out(&c).await;

    // Scaled away: the pod owned the claim, so the claim goes with it.
    c.client.patch(STS, PatchType::Merge, &json!({"spec": {"replicas": 1}})).await.unwrap();
    c.until("claims of web-1 and web-2 deleted", T, || async {
        let gone1 = c.client.get_opt(&claim(1)).await.unwrap().is_none();
        let gone2 = c.client.get_opt(&claim(2)).await.unwrap().is_none();
        (gone1 && gone2).then_some(())
    })
    .await;
    assert!(c.client.get_opt(&claim(0)).await.unwrap().is_some());

    // Deleted: the set owned the rest.
    c.client.delete(STS, &json!({})).await.unwrap();
    c.until("claim of web-0 deleted", T, || async {
        c.client.get_opt(&claim(0)).await.unwrap().is_none().then_some(())
    })
    .await;
}
