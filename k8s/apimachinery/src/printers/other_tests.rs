use serde_json::json;

use crate::printers::testing::{NOW, ago, names, row};

#[test]
fn lease_and_priority_class() {
    let lease = json!({"metadata": {"name": "kube-scheduler", "creationTimestamp": ago(86_400 * 400)}, "spec": {"holderIdentity": "cp-1_4f2a"}});
    assert_eq!(row("coordination.k8s.io", "Lease", &lease), cells!["kube-scheduler", "cp-1_4f2a", "400d"]);
    assert_eq!(row("coordination.k8s.io", "Lease", &json!({"metadata": {"name": "l"}}))[1], "");

    assert_eq!(
        names("scheduling.k8s.io", "PriorityClass"),
        ["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"]
    );
    let pc = json!({"metadata": {"name": "system-node-critical"}, "value": 2_000_001_000, "preemptionPolicy": "PreemptLowerPriority"});
    assert_eq!(
        row("scheduling.k8s.io", "PriorityClass", &pc),
        cells!["system-node-critical", 2_000_001_000, false, "<unknown>", "PreemptLowerPriority"]
    );
    let rc = json!({"metadata": {"name": "gvisor"}, "handler": "runsc"});
    assert_eq!(row("node.k8s.io", "RuntimeClass", &rc), cells!["gvisor", "runsc", "<unknown>"]);
}

#[test]
fn certificate_signing_requests() {
    assert_eq!(
        names("certificates.k8s.io", "CertificateSigningRequest"),
        ["Name", "Age", "SignerName", "Requestor", "RequestedDuration", "Condition"]
    );
    let csr = json!({"metadata": {"name": "csr-8x2", "creationTimestamp": ago(20)},
        "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet", "username": "system:node:n1", "expirationSeconds": 86_400},
        "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}});
    assert_eq!(
        row("certificates.k8s.io", "CertificateSigningRequest", &csr),
        cells![
            "csr-8x2",
            "20s",
            "kubernetes.io/kube-apiserver-client-kubelet",
            "system:node:n1",
            "24h",
            "Approved,Issued"
        ]
    );
    let denied = json!({"metadata": {"name": "d"}, "spec": {}, "status": {"conditions": [{"type": "Approved"}, {"type": "Denied"}, {"type": "Failed"}]}});
    assert_eq!(
        row("certificates.k8s.io", "CertificateSigningRequest", &denied)[2..],
        cells!["<none>", "", "<none>", "Denied,Failed"]
    );
    let pending = json!({"metadata": {"name": "p"}});
    assert_eq!(row("certificates.k8s.io", "CertificateSigningRequest", &pending)[5], "Pending");
    let bundle = json!({"metadata": {"name": "b"}});
    assert_eq!(row("certificates.k8s.io", "ClusterTrustBundle", &bundle), cells!["b", "<none>"]);
}

#[test]
fn api_services() {
    let local = json!({"metadata": {"name": "v1.apps"}, "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}});
    assert_eq!(
        row("apiregistration.k8s.io", "APIService", &local),
        cells!["v1.apps", "Local", "True", "<unknown>"]
    );
    let broken = json!({"metadata": {"name": "v1beta1.metrics.k8s.io"}, "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}},
        "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}});
    assert_eq!(
        row("apiregistration.k8s.io", "APIService", &broken)[1..3],
        cells!["kube-system/metrics-server", "False (MissingEndpoints)"]
    );
    assert_eq!(
        row("apiregistration.k8s.io", "APIService", &json!({"metadata": {"name": "x"}}))[2],
        "Unknown"
    );
}

#[test]
fn dynamic_resources_and_internal_kinds() {
    let claim = |status: serde_json::Value| json!({"metadata": {"name": "gpu"}, "status": status});
    assert_eq!(row("resource.k8s.io", "ResourceClaim", &claim(json!({})))[1], "pending");
    assert_eq!(
        row(
            "resource.k8s.io",
            "ResourceClaim",
            &claim(json!({"allocation": {}, "reservedFor": [{"name": "p"}]}))
        )[1],
        "allocated,reserved"
    );
    let mut deleting = claim(json!({"allocation": {}}));
    deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
    assert_eq!(row("resource.k8s.io", "ResourceClaim", &deleting)[1], "deleted,allocated");
    let slice = json!({"metadata": {"name": "s"}, "spec": {"nodeName": "n1", "driver": "gpu.example.com", "pool": {"name": "n1"}}});
    assert_eq!(
        row("resource.k8s.io", "ResourceSlice", &slice),
        cells!["s", "n1", "gpu.example.com", "n1", "<unknown>"]
    );
    assert_eq!(names("resource.k8s.io", "DeviceClass"), ["Name", "Age"]);

    let sv = json!({"metadata": {"name": "apps.deployments"}, "status": {"commonEncodingVersion": "apps/v1",
        "storageVersions": [{"apiServerID": "a", "encodingVersion": "apps/v1"}]}});
    assert_eq!(row("internal.apiserver.k8s.io", "StorageVersion", &sv)[1..3], cells!["apps/v1", "a=apps/v1"]);
    let svm = json!({"metadata": {"name": "m"}, "spec": {"resource": {"group": "apps", "resource": "deployments"}}});
    assert_eq!(
        crate::printers::cells("storagemigration.k8s.io", "StorageVersionMigration", &svm, NOW),
        cells!["m", "deployments.apps"]
    );
    let old = json!({"metadata": {"name": "m"}, "spec": {"resource": {"group": "apps", "version": "v1", "resource": "deployments"}}});
    assert_eq!(row("storagemigration.k8s.io", "StorageVersionMigration", &old)[1], "deployments.v1.apps");
}
