use serde_json::{Value, json};

use super::*;

fn value(group: &str, kind: &str, object: &Value, field: &str) -> String {
    field_value(group, kind, object, field).expect(field)
}

fn rejected(group: &str, kind: &str, field: &str) -> String {
    field_value(group, kind, &json!({}), field).expect_err(field).to_string()
}

fn matcher(group: &str, kind: &str, selector: &str) -> FieldMatcher {
    FieldSelector::parse(selector)
        .expect(selector)
        .bind(&SelectableFields::built_in(group, kind))
        .expect(selector)
}

#[test]
fn pod_fields_and_defaults() {
    let pod = json!({
        "metadata": {"name": "web", "namespace": "prod"},
        "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                 "serviceAccountName": "sa", "hostNetwork": true},
        "status": {"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
                   "nominatedNodeName": "n2"}
    });
    assert_eq!(value("", "Pod", &pod, "metadata.name"), "web");
    assert_eq!(value("", "Pod", &pod, "metadata.namespace"), "prod");
    assert_eq!(value("", "Pod", &pod, "spec.nodeName"), "n1");
    assert_eq!(value("", "Pod", &pod, "spec.host"), "n1");
    assert_eq!(value("", "Pod", &pod, "spec.restartPolicy"), "Always");
    assert_eq!(value("", "Pod", &pod, "spec.schedulerName"), "default-scheduler");
    assert_eq!(value("", "Pod", &pod, "spec.serviceAccountName"), "sa");
    assert_eq!(value("", "Pod", &pod, "spec.hostNetwork"), "true");
    assert_eq!(value("", "Pod", &pod, "status.phase"), "Running");
    assert_eq!(value("", "Pod", &pod, "status.podIP"), "10.0.0.1");
    assert_eq!(value("", "Pod", &pod, "status.podIPs"), "");
    assert_eq!(value("", "Pod", &pod, "status.nominatedNodeName"), "n2");

    let pending = json!({"metadata": {"name": "p"}, "spec": {}, "status": {"podIP": "10.1.1.1"}});
    assert_eq!(value("", "Pod", &pending, "spec.nodeName"), "");
    assert_eq!(value("", "Pod", &pending, "spec.hostNetwork"), "false");
    assert_eq!(value("", "Pod", &pending, "status.podIP"), "10.1.1.1");
    assert_eq!(rejected("", "Pod", "spec.foo"), "field label not supported: spec.foo");
}

#[test]
fn kubelet_style_selectors_match() {
    let on_n1 =
        json!({"metadata": {"name": "a"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
    let unscheduled = json!({"metadata": {"name": "b"}, "spec": {}, "status": {"phase": "Pending"}});
    let node = matcher("", "Pod", "spec.nodeName=n1");
    assert!(node.matches(&on_n1));
    assert!(!node.matches(&unscheduled));
    let scheduler = matcher("", "Pod", "spec.nodeName=,status.phase!=Succeeded,status.phase!=Failed");
    assert!(scheduler.matches(&unscheduled));
    assert!(!scheduler.matches(&on_n1));
}

#[test]
fn cluster_scoped_and_metadata_only_kinds() {
    let node = json!({"metadata": {"name": "n1"}, "spec": {}});
    assert_eq!(value("", "Node", &node, "spec.unschedulable"), "false");
    assert_eq!(rejected("", "Node", "metadata.namespace"), "field label not supported: metadata.namespace");
    let role = json!({"metadata": {"name": "admin"}});
    assert_eq!(value("rbac.authorization.k8s.io", "ClusterRole", &role, "metadata.namespace"), "");
    assert_eq!(
        rejected("apps", "ReplicaSet", "status.replicas"),
        r#""status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace""#
    );
    assert_eq!(value("apps", "Deployment", &json!({"metadata": {"name": "d"}}), "metadata.name"), "d");
}

#[test]
fn counters_and_types() {
    assert_eq!(
        value("", "ReplicationController", &json!({"status": {"replicas": 3}}), "status.replicas"),
        "3"
    );
    assert_eq!(value("", "ReplicationController", &json!({}), "status.replicas"), "0");
    assert_eq!(value("batch", "Job", &json!({"status": {"succeeded": 2}}), "status.successful"), "2");
    assert_eq!(value("batch", "Job", &json!({}), "status.successful"), "0");
    assert_eq!(
        rejected("batch", "Job", "status.succeeded"),
        r#"field label "status.succeeded" not supported for batchv1.Job"#
    );
    assert_eq!(value("", "Secret", &json!({"type": "kubernetes.io/tls"}), "type"), "kubernetes.io/tls");
    assert_eq!(value("", "Namespace", &json!({"status": {"phase": "Active"}}), "status.phase"), "Active");
    assert_eq!(
        rejected("", "Namespace", "metadata.namespace"),
        "field label not supported: metadata.namespace"
    );
    let service = json!({"spec": {"clusterIP": "None", "type": "ClusterIP"}});
    assert_eq!(value("", "Service", &service, "spec.clusterIP"), "None");
    assert_eq!(value("", "Service", &service, "spec.type"), "ClusterIP");
}

#[test]
fn certificates_and_resource_slices() {
    let csr = json!({"metadata": {"name": "c"}, "spec": {"signerName": "kubernetes.io/kubelet-serving"}});
    let signer = "spec.signerName";
    assert_eq!(
        value("certificates.k8s.io", "CertificateSigningRequest", &csr, signer),
        "kubernetes.io/kubelet-serving"
    );
    assert_eq!(
        value("certificates.k8s.io", "ClusterTrustBundle", &csr, signer),
        "kubernetes.io/kubelet-serving"
    );
    assert_eq!(
        value(
            "certificates.k8s.io",
            "PodCertificateRequest",
            &json!({"spec": {"podName": "p"}}),
            "spec.podName"
        ),
        "p"
    );
    assert_eq!(
        rejected("certificates.k8s.io", "PodCertificateRequest", "metadata.namespace"),
        "field label not supported: metadata.namespace"
    );
    let slice = json!({"spec": {"driver": "gpu.example.com", "nodeName": "n1"}});
    assert_eq!(value("resource.k8s.io", "ResourceSlice", &slice, "spec.driver"), "gpu.example.com");
    assert_eq!(
        rejected("resource.k8s.io", "ResourceSlice", "spec.pool.name"),
        "field label not supported for resource.k8s.io/v1, Kind=ResourceSlice: spec.pool.name"
    );
}

#[test]
fn core_events() {
    let event = json!({
        "metadata": {"name": "e", "namespace": "ns"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "ns", "uid": "u1", "apiVersion": "v1",
                           "resourceVersion": "7", "fieldPath": "spec.containers{c}"},
        "reason": "Scheduled", "type": "Normal", "reportingComponent": "default-scheduler"
    });
    for (field, expected) in [
        ("involvedObject.kind", "Pod"),
        ("involvedObject.name", "web"),
        ("involvedObject.namespace", "ns"),
        ("involvedObject.uid", "u1"),
        ("involvedObject.apiVersion", "v1"),
        ("involvedObject.resourceVersion", "7"),
        ("involvedObject.fieldPath", "spec.containers{c}"),
        ("reason", "Scheduled"),
        ("type", "Normal"),
        ("reportingComponent", "default-scheduler"),
        ("source", "default-scheduler"),
    ] {
        assert_eq!(value("", "Event", &event, field), expected, "{field}");
    }
    let with_source = json!({"source": {"component": "kubelet"}, "reportingComponent": "x"});
    assert_eq!(value("", "Event", &with_source, "source"), "kubelet");
    assert_eq!(rejected("", "Event", "regarding.kind"), "field label not supported: regarding.kind");
}

#[test]
fn events_k8s_io_use_the_new_names() {
    let event = json!({
        "metadata": {"name": "e", "namespace": "ns"},
        "regarding": {"kind": "Pod", "name": "web", "uid": "u1"},
        "reason": "Started", "type": "Normal", "reportingController": "kubelet"
    });
    assert_eq!(value("events.k8s.io", "Event", &event, "regarding.kind"), "Pod");
    assert_eq!(value("events.k8s.io", "Event", &event, "regarding.name"), "web");
    assert_eq!(value("events.k8s.io", "Event", &event, "regarding.uid"), "u1");
    assert_eq!(value("events.k8s.io", "Event", &event, "regarding.namespace"), "");
    assert_eq!(value("events.k8s.io", "Event", &event, "reportingController"), "kubelet");
    assert_eq!(value("events.k8s.io", "Event", &event, "source"), "kubelet");
    assert_eq!(value("events.k8s.io", "Event", &event, "reason"), "Started");
    assert_eq!(
        rejected("events.k8s.io", "Event", "involvedObject.kind"),
        "field label not supported: involvedObject.kind"
    );
    assert_eq!(
        rejected("events.k8s.io", "Event", "reportingComponent"),
        "field label not supported: reportingComponent"
    );
}

#[test]
fn custom_resources_select_on_declared_fields() {
    let fields = SelectableFields::custom(true, [".spec.color", ".spec.size", ".status.ready"]);
    let object = json!({"metadata": {"name": "w", "namespace": "ns"},
                        "spec": {"color": "blue", "size": 3}, "status": {"ready": true}});
    assert_eq!(fields.value(&object, "spec.color"), Ok("blue".to_owned()));
    assert_eq!(fields.value(&object, "spec.size"), Ok("3".to_owned()));
    assert_eq!(fields.value(&object, "status.ready"), Ok("true".to_owned()));
    assert_eq!(fields.value(&object, "metadata.namespace"), Ok("ns".to_owned()));
    let err = fields.value(&object, "spec.shape").unwrap_err();
    assert_eq!(err.to_string(), "field label not supported: spec.shape");
    assert_eq!(err.field(), "spec.shape");

    let cluster = SelectableFields::custom(false, Vec::<String>::new());
    assert_eq!(
        cluster.value(&object, "metadata.namespace").unwrap_err().to_string(),
        "field label not supported: metadata.namespace"
    );
}

#[test]
fn bind_reports_the_first_unsupported_field_in_upstream_order() {
    let selector = FieldSelector::parse("spec.zzz=1,spec.aaa=2,metadata.name=x").expect("parses");
    let err = selector.bind(&SelectableFields::built_in("", "Pod")).unwrap_err();
    assert_eq!(err.field(), "spec.aaa");
}
