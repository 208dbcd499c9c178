//! The DaemonSet controller on the real API server, with the scheduler
//! binding its pods and a hollow agent running them.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::Cluster;
use lichen_client::PatchType;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);
const DS: &str = "/apis/apps/v1/namespaces/default/daemonsets/agent";

fn live(pods: &[Value]) -> Vec<&Value> {
    pods.iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).collect()
}

fn node_of(p: &Value) -> &str {
    p["spec"]["nodeName"].as_str().unwrap_or("")
}

fn image(p: &Value) -> &str {
    p["spec"]["containers"][0]["image"].as_str().unwrap_or("")
}

/// Live pods per node, bound ones only.
fn per_node(pods: &[Value]) -> HashMap<String, Vec<&Value>> {
    let mut m: HashMap<String, Vec<&Value>> = HashMap::new();
    for p in live(pods) {
        if !node_of(p).is_empty() {
            m.entry(node_of(p).to_owned()).or_default().push(p);
        }
    }
    m
}

/// What `kubectl rollout status daemonset/agent` waits for, and every
/// node in `nodes` running one pod of `image`.
async fn rolled_out(c: &Cluster, nodes: &[&str], img: &str) {
    c.until(&format!("daemon pods of {img} on {nodes:?}"), T, || async {
        let ds = c.get(DS).await;
        let s = &ds["status"];
        let desired = s["desiredNumberScheduled"].as_i64()?;
        let status_done = ds["metadata"]["generation"].as_i64() <= s["observedGeneration"].as_i64()
            && s["updatedNumberScheduled"].as_i64().unwrap_or(0) >= desired
            && s["numberAvailable"].as_i64().unwrap_or(0) >= desired
            && desired == i64::try_from(nodes.len()).unwrap();
        let pods = c.pods("default").await;
        let m = per_node(&pods);
        let placed = m.len() == nodes.len()
            && nodes.iter().all(|n| m.get(*n).is_some_and(|ps| ps.len() == 1 && image(ps[0]) == img));
        (status_done && placed && live(&pods).len() == nodes.len()).then_some(())
    })
    .await;
}

async fn revisions(c: &Cluster) -> Vec<Value> {
    let mut revs = c.get("/apis/apps/v1/namespaces/default/controllerrevisions").await["items"]
        .as_array()
        .cloned()
        .unwrap();
    revs.sort_by_key(|r| r["revision"].as_i64());
    revs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_pods_follow_nodes_taints_and_roll_node_by_node() {
    let c = Cluster::start(true);
    c.node("n1", 4, 8, json!({}), json!([])).await;
    c.node("n2", 4, 8, json!({}), json!([])).await;
    let taint = json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
    c.node("gpu", 4, 8, json!({}), taint).await;
    let _agent = c.hollow("default");
    let ds = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "c", "image": "agent:1"}]},
            },
        },
    });
    c.create("/apis/apps/v1/namespaces/default/daemonsets", ds).await;
    rolled_out(&c, &["n1", "n2"], "agent:1").await;
    // Still none on the tainted node a while later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pods = c.pods("default").await;
    assert_eq!(live(&pods).len(), 2);
    let p = live(&pods)[0].clone();
    // Pinned by node affinity (the scheduler bound it), with the daemon
    // tolerations and the revision labels.
    let terms = &p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    assert_eq!(terms[0]["matchFields"][0]["key"], "metadata.name");
    assert_eq!(terms[0]["matchFields"][0]["values"][0], node_of(&p));
    let tolerations = p["spec"]["tolerations"].as_array().unwrap();
    for key in
        ["not-ready", "unreachable", "disk-pressure", "memory-pressure", "pid-pressure", "unschedulable"]
    {
        let t = tolerations.iter().find(|t| t["key"] == format!("node.kubernetes.io/{key}"));
        assert!(t.is_some(), "no {key} toleration in {tolerations:?}");
    }
    let not_ready = tolerations.iter().find(|t| t["key"] == "node.kubernetes.io/not-ready").unwrap();
    assert!(not_ready["tolerationSeconds"].is_null(), "{not_ready}");
    let revs = revisions(&c).await;
    assert_eq!(revs.len(), 1);
    let hash = p["metadata"]["labels"]["controller-revision-hash"].as_str().unwrap();
    assert_eq!(revs[0]["metadata"]["name"], format!("agent-{hash}"));
    assert_eq!(revs[0]["metadata"]["labels"]["controller-revision-hash"], hash);
    assert_eq!(revs[0]["revision"], 1);
    assert_eq!(revs[0]["data"]["spec"]["template"]["$patch"], "replace");
    assert_eq!(revs[0]["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
    assert!(p["metadata"]["labels"]["pod-template-generation"].is_string());
    let events = c.get("/api/v1/namespaces/default/events").await;
    let created = common::events_for(&events, "agent", "SuccessfulCreate");
    assert!(created.iter().any(|m| m.starts_with("Created pod: agent-")), "{created:?}");

    // Tolerating the taint puts a pod there.
    let tolerate = json!({"spec": {"template": {"spec": {"tolerations": [{"key": "dedicated", "operator": "Exists"}]}}}});
    c.client.patch(DS, PatchType::Strategic, &tolerate).await.unwrap();
    rolled_out(&c, &["n1", "n2", "gpu"], "agent:1").await;

    // A node added later gets one.
    c.node("n3", 4, 8, json!({}), json!([])).await;
    rolled_out(&c, &["n1", "n2", "gpu", "n3"], "agent:1").await;
    assert_eq!(revisions(&c).await.len(), 2);

    // A new image rolls node by node: never more than maxUnavailable (1)
    // nodes without an available pod, never two pods on a node.
    let watcher = {
        let client = c.client.clone();
        tokio::spawn(async move {
            let (mut worst_gap, mut most_on_a_node) = (0usize, 0usize);
            loop {
                let pods = client.get("/api/v1/namespaces/default/pods").await.unwrap()["items"]
                    .as_array()
                    .cloned()
                    .unwrap();
                let m = per_node(&pods);
                let available = |n: &str| {
                    m.get(n).is_some_and(|ps| {
                        ps.iter().any(|p| {
                            p["status"]["conditions"].as_array().is_some_and(|cs| {
                                cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")
                            })
                        })
                    })
                };
                let gap = ["n1", "n2", "gpu", "n3"].iter().filter(|n| !available(n)).count();
                worst_gap = worst_gap.max(gap);
                most_on_a_node = most_on_a_node.max(m.values().map(Vec::len).max().unwrap_or(0));
                let done =
                    live(&pods).len() == 4 && live(&pods).iter().all(|p| image(p) == "agent:2") && gap == 0;
                if done {
                    return (worst_gap, most_on_a_node);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let new_image =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}});
    c.client.patch(DS, PatchType::Strategic, &new_image).await.unwrap();
    rolled_out(&c, &["n1", "n2", "gpu", "n3"], "agent:2").await;
    let (worst_gap, most_on_a_node) = tokio::time::timeout(T, watcher).await.unwrap().unwrap();
    assert!(worst_gap <= 1, "{worst_gap} nodes without an available pod with maxUnavailable 1");
    assert_eq!(most_on_a_node, 1, "two pods on a node with maxSurge 0");
    let events = c.get("/api/v1/namespaces/default/events").await;
    assert!(common::events_for(&events, "agent", "SuccessfulDelete").len() >= 4);

    // `kubectl rollout undo --to-revision=2`: the revision's data patched
    // back; that revision becomes the newest, no new one is made.
    let revs = revisions(&c).await;
    assert_eq!(revs.iter().map(|r| r["revision"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
    let second = revs[1].clone();
    c.client.patch(DS, PatchType::Strategic, &second["data"]).await.unwrap();
    rolled_out(&c, &["n1", "n2", "gpu", "n3"], "agent:1").await;
    c.until("revision renumbered", T, || async {
        let revs = revisions(&c).await;
        let back = revs.iter().find(|r| r["metadata"]["name"] == second["metadata"]["name"])?;
        (revs.len() == 3 && back["revision"] == 4).then_some(())
    })
    .await;

    // A node that stops fitting loses its pod.
    let taint = json!({"spec": {"taints": [{"key": "evict", "effect": "NoExecute"}]}});
    c.client.patch("/api/v1/nodes/n3", PatchType::Merge, &taint).await.unwrap();
    rolled_out(&c, &["n1", "n2", "gpu"], "agent:1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_daemon_pods_are_replaced_and_on_delete_waits_for_the_user() {
    let c = Cluster::start(true);
    c.node("n1", 4, 8, json!({"role": "edge"}), json!([])).await;
    c.node("n2", 4, 8, json!({}), json!([])).await;
    let _agent = c.hollow("default");
    let ds = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"type": "OnDelete"},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"nodeSelector": {"role": "edge"}, "containers": [{"name": "c", "image": "agent:1"}]},
            },
        },
    });
    c.create("/apis/apps/v1/namespaces/default/daemonsets", ds).await;
    rolled_out(&c, &["n1"], "agent:1").await;

    // A failed pod is deleted (with an event) and replaced.
    let mut failed = live(&c.pods("default").await)[0].clone();
    failed["status"]["phase"] = json!("Failed");
    let name = failed["metadata"]["name"].as_str().unwrap().to_owned();
    c.client.replace(&format!("/api/v1/namespaces/default/pods/{name}/status"), &failed).await.unwrap();
    c.until("failed pod replaced", T, || async {
        let pods = c.pods("default").await;
        let l = live(&pods);
        (l.len() == 1 && l[0]["metadata"]["name"] != name.as_str() && node_of(l[0]) == "n1").then_some(())
    })
    .await;
    let events = c.get("/api/v1/namespaces/default/events").await;
    let found = common::events_for(&events, "agent", "FailedDaemonPod");
    assert_eq!(found, [format!("Found failed daemon pod default/{name} on node n1, will try to kill it")]);

    // OnDelete: a new template changes nothing until the pod is deleted.
    let new_image =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}});
    c.client.patch(DS, PatchType::Strategic, &new_image).await.unwrap();
    c.until("status observed", T, || async {
        let ds = c.get(DS).await;
        (ds["status"]["observedGeneration"] == ds["metadata"]["generation"]).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pods = c.pods("default").await;
    assert_eq!(image(live(&pods)[0]), "agent:1");
    assert_eq!(c.get(DS).await["status"]["updatedNumberScheduled"].as_i64().unwrap_or(0), 0);
    let old = live(&pods)[0]["metadata"]["name"].as_str().unwrap().to_owned();
    c.client.delete(&format!("/api/v1/namespaces/default/pods/{old}"), &json!({})).await.unwrap();
    rolled_out(&c, &["n1"], "agent:2").await;

    // A node that starts matching the selector gets a pod.
    let label = json!({"metadata": {"labels": {"role": "edge"}}});
    c.client.patch("/api/v1/nodes/n2", PatchType::Merge, &label).await.unwrap();
    rolled_out(&c, &["n1", "n2"], "agent:2").await;
}
