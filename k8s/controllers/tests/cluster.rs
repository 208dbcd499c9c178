//! Endpoints, node lifecycle, node IPAM and per-namespace defaults on the
//! real API server, in-process.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Cluster;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(20);

fn pod(name: &str, labels: Value, ports: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": ports}]},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_endpoints_and_slices_from_ready_pods() {
    let c = Cluster::start(true);
    c.node("n1", 8, 8, json!({}), json!([])).await;
    let http = json!([{"name": "http", "containerPort": 8080}]);
    c.create("/api/v1/namespaces/default/pods", pod("a", json!({"app": "web"}), http.clone())).await;
    c.create("/api/v1/namespaces/default/pods", pod("b", json!({"app": "web"}), http)).await;
    c.create("/api/v1/namespaces/default/pods", pod("other", json!({"app": "db"}), json!([]))).await;
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    });
    c.create("/api/v1/namespaces/default/services", svc).await;
    let _agent = c.hollow("default");
    let ep = c
        .until("two ready addresses", T, || async {
            let ep = c.client.get_opt("/api/v1/namespaces/default/endpoints/web").await.unwrap()?;
            let n = ep["subsets"][0]["addresses"].as_array().map(Vec::len);
            let slices = c.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices").await;
            let ready = slices["items"][0]["endpoints"]
                .as_array()
                .map(|e| e.iter().filter(|e| e["conditions"]["ready"] == true).count());
            (n == Some(2) && ready == Some(2)).then_some(ep)
        })
        .await;
    assert_eq!(ep["subsets"][0]["ports"], json!([{"name": "http", "port": 8080, "protocol": "TCP"}]));
    let names: Vec<&str> = ep["subsets"][0]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["targetRef"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"a") && names.contains(&"b"), "{names:?}");
    let slices = c.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb").await;
    let slice = &slices["items"][0];
    assert_eq!(slices["items"].as_array().unwrap().len(), 1);
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(slice["endpoints"].as_array().unwrap().len(), 2);
    assert!(slice["endpoints"].as_array().unwrap().iter().all(|e| e["conditions"]["ready"] == true));
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");

    // A pod going away leaves both.
    c.client.delete("/api/v1/namespaces/default/pods/a", &json!({})).await.unwrap();
    c.until("one address", T, || async {
        let ep = c.get("/api/v1/namespaces/default/endpoints/web").await;
        let slices = c.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices").await;
        let in_slice: usize = slices["items"]
            .as_array()?
            .iter()
            .map(|s| s["endpoints"].as_array().map(Vec::len).unwrap_or(0))
            .sum();
        (ep["subsets"][0]["addresses"].as_array().map(Vec::len) == Some(1) && in_slice == 1).then_some(())
    })
    .await;
    // The service going away takes them along.
    c.client.delete("/api/v1/namespaces/default/services/web", &json!({})).await.unwrap();
    c.until("endpoints gone", T, || async {
        let ep = c.client.get_opt("/api/v1/namespaces/default/endpoints/web").await.unwrap();
        ep.is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_nodes_turn_unknown_get_tainted_and_lose_their_pods_after_the_toleration() {
    let c = Cluster::start(true);
    c.silent_node("quiet", 8, 8, json!({}), json!([])).await;
    // Nodes get pod ranges.
    let cidr = c
        .until("podCIDR", T, || async {
            c.get("/api/v1/nodes/quiet").await["spec"]["podCIDR"].as_str().map(String::from)
        })
        .await;
    assert_eq!(cidr, "10.42.0.0/24");
    c.node("other", 8, 8, json!({}), json!([])).await;
    let cidr = c
        .until("podCIDR", T, || async {
            c.get("/api/v1/nodes/other").await["spec"]["podCIDR"].as_str().map(String::from)
        })
        .await;
    assert_eq!(cidr, "10.42.1.0/24");
    let mut short = pod("short", json!({}), json!([]));
    short["spec"]["nodeName"] = json!("quiet");
    short["spec"]["tolerations"] = json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}]);
    let mut forever = pod("forever", json!({}), json!([]));
    forever["spec"]["nodeName"] = json!("quiet");
    forever["spec"]["tolerations"] = json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}]);
    c.create("/api/v1/namespaces/default/pods", short).await;
    c.create("/api/v1/namespaces/default/pods", forever).await;
    // No heartbeats: after the 3 s grace the node is Unknown and tainted.
    let node = c
        .until("Ready=Unknown", T, || async {
            let n = c.get("/api/v1/nodes/quiet").await;
            let ready = n["status"]["conditions"].as_array()?.iter().find(|x| x["type"] == "Ready")?.clone();
            (ready["status"] == "Unknown").then_some(n)
        })
        .await;
    let ready = node["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["reason"], "NodeStatusUnknown");
    assert_eq!(ready["message"], "Kubelet stopped posting node status.");
    c.until("unreachable taints", T, || async {
        let n = c.get("/api/v1/nodes/quiet").await;
        let taints: Vec<String> = n["spec"]["taints"]
            .as_array()?
            .iter()
            .map(|t| format!("{}:{}", t["key"].as_str().unwrap(), t["effect"].as_str().unwrap()))
            .collect();
        (taints.contains(&"node.kubernetes.io/unreachable:NoExecute".to_owned())
            && taints.contains(&"node.kubernetes.io/unreachable:NoSchedule".to_owned()))
        .then_some(())
    })
    .await;
    c.until("short evicted", T, || async {
        let p = c.client.get_opt("/api/v1/namespaces/default/pods/short").await.unwrap();
        p.is_none_or(|p| p["metadata"]["deletionTimestamp"].is_string()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let forever = c.get("/api/v1/namespaces/default/pods/forever").await;
    assert!(forever["metadata"]["deletionTimestamp"].is_null(), "a pod tolerating forever was evicted");
    let events = c.get("/api/v1/namespaces/default/events").await;
    assert_eq!(
        common::events_for(&events, "short", "TaintManagerEviction"),
        ["Marking for deletion Pod default/short"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_get_a_default_service_account_and_the_root_ca() {
    let c = Cluster::start(true);
    c.create(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
    )
    .await;
    c.until("default SA", T, || async {
        c.client.get_opt("/api/v1/namespaces/team/serviceaccounts/default").await.unwrap()
    })
    .await;
    let cm = c
        .until("root CA", T, || async {
            c.client.get_opt("/api/v1/namespaces/team/configmaps/kube-root-ca.crt").await.unwrap()
        })
        .await;
    assert!(cm["data"]["ca.crt"].as_str().unwrap().contains("BEGIN CERTIFICATE"));
    // Deleted, it comes back.
    c.client.delete("/api/v1/namespaces/team/serviceaccounts/default", &json!({})).await.unwrap();
    c.until("default SA again", T, || async {
        c.client.get_opt("/api/v1/namespaces/team/serviceaccounts/default").await.unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collected_pods_on_a_node_stop_within_their_grace_period() {
    let c = Cluster::start(true);
    c.node("n1", 8, 8, json!({}), json!([])).await;
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"terminationGracePeriodSeconds": 7, "containers": [{"name": "c", "image": "i"}]}}},
    });
    c.create("/apis/apps/v1/namespaces/default/replicasets", rs).await;
    let pod = c
        .until("a bound pod", T, || async {
            c.pods("default").await.into_iter().find(|p| p["spec"]["nodeName"] == "n1")
        })
        .await;
    let name = pod["metadata"]["name"].as_str().unwrap().to_owned();
    c.client.delete("/apis/apps/v1/namespaces/default/replicasets/web", &json!({})).await.unwrap();
    // The garbage collector deletes it as a plain DELETE would: marked,
    // with the pod's grace period, for its node to stop.
    let marked = c
        .until("pod marked for deletion", T, || async {
            let p = c.client.get_opt(&format!("/api/v1/namespaces/default/pods/{name}")).await.unwrap()?;
            p["metadata"]["deletionTimestamp"].is_string().then_some(p)
        })
        .await;
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreground_cascade_waits_for_pods_stopped_within_their_grace_period() {
    let c = Cluster::start(true);
    c.node("n1", 8, 8, json!({}), json!([])).await;
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "fg", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "fg"}},
                 "template": {"metadata": {"labels": {"app": "fg"}},
                              "spec": {"terminationGracePeriodSeconds": 9, "containers": [{"name": "c", "image": "i"}]}}},
    });
    c.create("/apis/apps/v1/namespaces/default/replicasets", rs).await;
    let pod = c
        .until("a bound pod", T, || async {
            c.pods("default").await.into_iter().find(|p| p["spec"]["nodeName"] == "n1")
        })
        .await;
    let name = pod["metadata"]["name"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/namespaces/default/pods/{name}");
    c.client
        .delete(
            "/apis/apps/v1/namespaces/default/replicasets/fg",
            &json!({"propagationPolicy": "Foreground"}),
        )
        .await
        .unwrap();
    let marked = c
        .until("pod marked", T, || async {
            let p = c.client.get_opt(&path).await.unwrap()?;
            p["metadata"]["deletionTimestamp"].is_string().then_some(p)
        })
        .await;
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 9);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(c.client.get_opt(&path).await.unwrap().is_some(), "the pod went before its node stopped it");
    assert!(
        c.client.get_opt("/apis/apps/v1/namespaces/default/replicasets/fg").await.unwrap().is_some(),
        "the owner went before its dependents"
    );
    // The node stops it and deletes it for good; then the owner goes.
    c.client.delete(&path, &json!({"gracePeriodSeconds": 0})).await.unwrap();
    c.until("pod and owner gone", T, || async {
        let pod = c.client.get_opt(&path).await.unwrap();
        let rs = c.client.get_opt("/apis/apps/v1/namespaces/default/replicasets/fg").await.unwrap();
        (pod.is_none() && rs.is_none()).then_some(())
    })
    .await;
}
