use serde_json::json;

use crate::printers::testing::{ago, names, row};

#[test]
fn pod_disruption_budget() {
    assert_eq!(
        names("policy", "PodDisruptionBudget"),
        ["Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"]
    );
    let pdb = json!({"metadata": {"name": "web", "creationTimestamp": ago(90)}, "spec": {"minAvailable": 2}, "status": {"disruptionsAllowed": 1}});
    assert_eq!(row("policy", "PodDisruptionBudget", &pdb), cells!["web", "2", "N/A", 1, "90s"]);
    let pct = json!({"metadata": {"name": "db"}, "spec": {"maxUnavailable": "25%"}});
    assert_eq!(row("policy", "PodDisruptionBudget", &pct)[1..4], cells!["N/A", "25%", 0]);
}

#[test]
fn horizontal_pod_autoscaler_v2_targets() {
    let hpa = json!({"metadata": {"name": "web"},
    "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 10, "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "512000Ki"}}},
        {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}}
    ]},
    "status": {"currentReplicas": 3, "currentMetrics": [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45, "averageValue": "90m"}}}
    ]}});
    assert_eq!(
        row("autoscaling", "HorizontalPodAutoscaler", &hpa),
        cells![
            "web",
            "Deployment/web",
            "cpu: 45%/80%, memory: <unknown>/500Mi + 1 more...",
            "2",
            10,
            3,
            "<unknown>"
        ]
    );
}

#[test]
fn horizontal_pod_autoscaler_other_metric_kinds() {
    let hpa = json!({"metadata": {"name": "q"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "worker"}, "maxReplicas": 5, "metrics": [
            {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "30"}}},
            {"type": "Object", "object": {"metric": {"name": "hits"}, "target": {"type": "AverageValue", "averageValue": "10"}}}
        ]},
        "status": {"currentMetrics": [{"type": "External", "external": {"current": {"value": "12"}}}]}});
    assert_eq!(
        row("autoscaling", "HorizontalPodAutoscaler", &hpa)[2..4],
        cells!["12/30, <unknown>/10 (avg)", "<unset>"]
    );

    let none = json!({"metadata": {"name": "n"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "n"}, "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}]}});
    assert_eq!(row("autoscaling", "HorizontalPodAutoscaler", &none)[2], "cpu: <unknown>/<auto>");
    let empty = json!({"metadata": {"name": "e"}, "spec": {"metrics": []}});
    assert_eq!(row("autoscaling", "HorizontalPodAutoscaler", &empty)[2], "<none>");
}

#[test]
fn horizontal_pod_autoscaler_v1_cpu_target() {
    let hpa = json!({"metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
        "minReplicas": 1, "maxReplicas": 4, "targetCPUUtilizationPercentage": 50}, "status": {"currentReplicas": 1, "currentCPUUtilizationPercentage": 12}});
    assert_eq!(row("autoscaling", "HorizontalPodAutoscaler", &hpa)[2], "cpu: 12%/50%");
}

#[test]
fn flow_control_objects() {
    let fs = json!({"metadata": {"name": "system-leader-election"}, "spec": {"priorityLevelConfiguration": {"name": "leader-election"},
        "matchingPrecedence": 100, "distinguisherMethod": {"type": "ByUser"}}, "status": {"conditions": [{"type": "Dangling", "status": "False"}]}});
    assert_eq!(
        row("flowcontrol.apiserver.k8s.io", "FlowSchema", &fs),
        cells!["system-leader-election", "leader-election", 100, "ByUser", "<unknown>", "False"]
    );
    let pl = json!({"metadata": {"name": "workload-low"}, "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 100,
        "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}}}});
    assert_eq!(
        row("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration", &pl),
        cells!["workload-low", "Limited", 100, 128, 6, 50, "<unknown>"]
    );
    let exempt = json!({"metadata": {"name": "exempt"}, "spec": {"type": "Exempt"}});
    assert_eq!(
        row("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration", &exempt)[2..6],
        cells!["<none>", "<none>", "<none>", "<none>"]
    );
}

#[test]
fn admission_configurations_and_policies() {
    let g = "admissionregistration.k8s.io";
    let wh = json!({"metadata": {"name": "cert-manager"}, "webhooks": [{"name": "a"}, {"name": "b"}]});
    assert_eq!(row(g, "ValidatingWebhookConfiguration", &wh), cells!["cert-manager", 2, "<unknown>"]);
    assert_eq!(row(g, "MutatingWebhookConfiguration", &json!({"metadata": {"name": "m"}}))[1], 0);
    let vap = json!({"metadata": {"name": "replicas"}, "spec": {"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}, "validations": [{"expression": "true"}]}});
    assert_eq!(row(g, "ValidatingAdmissionPolicy", &vap), cells!["replicas", 1, "v1/ConfigMap", "<unknown>"]);
    let binding = |param: serde_json::Value| json!({"metadata": {"name": "b"}, "spec": {"policyName": "replicas", "paramRef": param}});
    assert_eq!(
        row(g, "ValidatingAdmissionPolicyBinding", &binding(json!({"name": "limits", "namespace": "ops"})))
            [2],
        "ops/limits"
    );
    assert_eq!(
        row(g, "ValidatingAdmissionPolicyBinding", &binding(json!({"name": "limits"})))[2],
        "*/limits"
    );
    assert_eq!(row(g, "MutatingAdmissionPolicyBinding", &binding(json!(null)))[2], "<unset>");
    assert_eq!(
        row(
            g,
            "ValidatingAdmissionPolicyBinding",
            &binding(json!({"selector": {"matchLabels": {"env": "prod"}}}))
        )[2],
        "&LabelSelector{MatchLabels:map[string]string{env: prod,},MatchExpressions:[]LabelSelectorRequirement{},}"
    );
}

#[test]
fn scale_subresource() {
    let cols = crate::printers::columns("autoscaling", "Scale");
    assert_eq!((cols[0].name.as_str(), cols[0].format.as_str()), ("Name", ""));
    let scale = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3}, "status": {"replicas": 2}});
    assert_eq!(row("autoscaling", "Scale", &scale), cells!["web", 3, 2, "<unknown>"]);
}
