use serde_json::{Value, json};

use crate::printers::testing::{ago, names, row};

fn svc(spec: Value, status: Value) -> Value {
    json!({"metadata": {"name": "web", "creationTimestamp": ago(300)}, "spec": spec, "status": status})
}

#[test]
fn service_columns_match_upstream() {
    assert_eq!(
        names("", "Service"),
        ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]
    );
    let cols = crate::printers::columns("", "Service");
    assert_eq!(cols[6].priority, 1);
}

#[test]
fn service_of_each_type() {
    let cluster_ip = svc(
        json!({"type": "ClusterIP", "clusterIPs": ["10.96.0.10"], "selector": {"k8s-app": "kube-dns"},
               "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}, {"port": 9153, "protocol": "TCP"}]}),
        json!({}),
    );
    assert_eq!(
        row("", "Service", &cluster_ip),
        cells![
            "web",
            "ClusterIP",
            "10.96.0.10",
            "<none>",
            "53/UDP,53/TCP,9153/TCP",
            "5m",
            "k8s-app=kube-dns"
        ]
    );

    let node_port = svc(
        json!({"type": "NodePort", "clusterIPs": ["10.96.1.1"], "externalIPs": ["192.0.2.7"],
               "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
        json!({}),
    );
    let cells = row("", "Service", &node_port);
    assert_eq!(
        (&cells[3], &cells[4], &cells[6]),
        (&json!("192.0.2.7"), &json!("80:30080/TCP"), &json!("<none>"))
    );

    let pending = svc(json!({"type": "LoadBalancer", "clusterIPs": ["10.96.2.2"], "ports": []}), json!({}));
    let cells = row("", "Service", &pending);
    assert_eq!((&cells[3], &cells[4]), (&json!("<pending>"), &json!("<none>")));

    let lb = svc(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.96.2.2"], "externalIPs": ["192.0.2.9"],
               "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}),
        json!({"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}, {"ip": "203.0.113.5"}, {"ip": "203.0.113.5"}]}}),
    );
    assert_eq!(row("", "Service", &lb)[3], "203.0.113.5,lb.example.com,192.0.2.9");

    let external = svc(json!({"type": "ExternalName", "externalName": "db.example.com"}), json!({}));
    let cells = row("", "Service", &external);
    assert_eq!((&cells[2], &cells[3]), (&json!("<none>"), &json!("db.example.com")));

    let headless = svc(
        json!({"type": "ClusterIP", "clusterIPs": ["None"], "ports": [{"port": 5432, "protocol": "TCP"}]}),
        json!({}),
    );
    assert_eq!(row("", "Service", &headless)[2], "None");
}

#[test]
fn node_not_ready_cordoned_with_roles() {
    let node = json!({
        "metadata": {"name": "n1", "creationTimestamp": ago(3 * 86_400 + 5 * 3600), "labels": {
            "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "true",
            "kubernetes.io/role": "master", "kubernetes.io/hostname": "n1"}},
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "Unknown"}],
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "192.168.1.10"}],
            "nodeInfo": {"kubeletVersion": "v1.37.1", "osImage": "Lichen", "kernelVersion": "6.12.0", "containerRuntimeVersion": ""}
        }
    });
    assert_eq!(
        row("", "Node", &node),
        cells![
            "n1",
            "NotReady,SchedulingDisabled",
            "control-plane,etcd,master",
            "3d5h",
            "v1.37.1",
            "192.168.1.10",
            "<none>",
            "Lichen",
            "6.12.0",
            "<unknown>"
        ]
    );
    let bare = json!({"metadata": {"name": "n2"}});
    assert_eq!(row("", "Node", &bare)[1..4], cells!["Unknown", "<none>", "<unknown>"]);
    let ready =
        json!({"metadata": {"name": "n3"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    assert_eq!(row("", "Node", &ready)[1], "Ready");
}

#[test]
fn endpoints_list_three_then_count_the_rest() {
    let eps = json!({"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]},
        {"addresses": [{"ip": "fd00::5"}]}
    ]});
    assert_eq!(row("", "Endpoints", &eps)[1], "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more...");
    let headless = json!({"metadata": {"name": "h"}, "subsets": [{"addresses": [{"ip": "fd00::5"}]}]});
    assert_eq!(row("", "Endpoints", &headless)[1], "fd00::5");
    assert_eq!(row("", "Endpoints", &json!({"metadata": {"name": "e"}}))[1], "<none>");
}

#[test]
fn config_data_counts_are_numbers() {
    let cm = json!({"metadata": {"name": "c", "creationTimestamp": ago(90)}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(row("", "ConfigMap", &cm), cells!["c", 3, "90s"]);
    let secret = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}, "stringData": {"tls.key": "x", "ca.crt": "y"}});
    assert_eq!(row("", "Secret", &secret), cells!["s", "kubernetes.io/tls", 3, "<unknown>"]);
    let sa = json!({"metadata": {"name": "default"}, "secrets": [{"name": "t"}]});
    assert_eq!(row("", "ServiceAccount", &sa)[1], 1);
    let ns = json!({"metadata": {"name": "kube-system", "creationTimestamp": ago(2 * 86_400)}, "status": {"phase": "Active"}});
    assert_eq!(row("", "Namespace", &ns), cells!["kube-system", "Active", "2d"]);
}

#[test]
fn replication_controller_and_pod_template() {
    let rc = json!({"metadata": {"name": "rc"}, "spec": {"replicas": 3, "selector": {"app": "x"},
        "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}]}}},
        "status": {"replicas": 3, "readyReplicas": 2}});
    assert_eq!(
        row("", "ReplicationController", &rc),
        cells!["rc", 3, 3, 2, "<unknown>", "a,b", "nginx,busybox", "app=x"]
    );
    let tmpl = json!({"metadata": {"name": "t"}, "template": rc["spec"]["template"].clone()});
    assert_eq!(row("", "PodTemplate", &tmpl), cells!["t", "a,b", "nginx,busybox", "app=x"]);
}

#[test]
fn resource_quota_splits_requests_and_limits() {
    let quota = json!({"metadata": {"name": "q"}, "status": {
        "hard": {"requests.cpu": "1", "limits.memory": "2048Mi", "pods": "10", "limits.cpu": "2"},
        "used": {"requests.cpu": "0.5", "limits.memory": "1Gi", "pods": "3"}}});
    assert_eq!(
        row("", "ResourceQuota", &quota),
        cells![
            "q",
            "pods: 3/10, requests.cpu: 500m/1",
            "limits.cpu: 0/2, limits.memory: 1Gi/2Gi",
            "<unknown>"
        ]
    );
}

#[test]
fn component_status_reads_the_healthy_condition() {
    let cs = json!({"metadata": {"name": "etcd-0"}, "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]});
    assert_eq!(row("", "ComponentStatus", &cs), cells!["etcd-0", "Healthy", "ok", ""]);
}
