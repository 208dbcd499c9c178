//! Volumes and `storage.k8s.io`: PersistentVolume, PersistentVolumeClaim,
//! StorageClass, VolumeAttributesClass, VolumeAttachment, CSINode,
//! CSIDriver. CSIStorageCapacity is served with the default table upstream.

use serde_json::Value;

use super::docs;
use super::fields::{
    age, annotation, arr_at, bool_at, get, is_deleting, is_set, len_at, name, opt_bool, opt_str, str_at,
};
use super::{CellsFn, Column, Printer, count};

const PERSISTENT_VOLUME: &[Column] = &[
    Column::name(),
    Column::string("Capacity", docs::PV_CAPACITY),
    Column::string("Access Modes", docs::PV_ACCESS_MODES),
    Column::string("Reclaim Policy", docs::PV_RECLAIM_POLICY),
    Column::string("Status", docs::PV_PHASE),
    Column::string("Claim", docs::PV_CLAIM_REF),
    Column::string("StorageClass", "StorageClass of the pv"),
    Column::string("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
    Column::string("Reason", docs::PV_REASON),
    Column::age(),
    Column::string("VolumeMode", docs::PV_VOLUME_MODE).wide(),
];

const PERSISTENT_VOLUME_CLAIM: &[Column] = &[
    Column::name(),
    Column::string("Status", docs::PVC_PHASE),
    Column::string("Volume", docs::PVC_VOLUME_NAME),
    Column::string("Capacity", docs::PVC_CAPACITY),
    Column::string("Access Modes", docs::PVC_ACCESS_MODES),
    Column::string("StorageClass", "StorageClass of the pvc"),
    Column::string("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
    Column::age(),
    Column::string("VolumeMode", docs::PVC_VOLUME_MODE).wide(),
];

const STORAGE_CLASS: &[Column] = &[
    Column::name(),
    Column::string("Provisioner", docs::SC_PROVISIONER),
    Column::string("ReclaimPolicy", docs::SC_RECLAIM_POLICY),
    Column::string("VolumeBindingMode", docs::SC_BINDING_MODE),
    Column::string("AllowVolumeExpansion", docs::SC_ALLOW_EXPANSION),
    Column::age(),
];

const VOLUME_ATTRIBUTES_CLASS: &[Column] =
    &[Column::name(), Column::string("DriverName", docs::VAC_DRIVER_NAME), Column::age()];

const VOLUME_ATTACHMENT: &[Column] = &[
    Column::name(),
    Column::string("Attacher", docs::VA_ATTACHER).format("name"),
    Column::string("PV", docs::VA_PV),
    Column::string("Node", docs::VA_NODE),
    Column::typed("Attached", "boolean", docs::VA_ATTACHED),
    Column::age(),
];

const CSI_NODE: &[Column] = &[
    Column::name(),
    Column::typed("Drivers", "integer", "Drivers indicates the number of CSI drivers registered on the node"),
    Column::age(),
];

const CSI_DRIVER: &[Column] = &[
    Column::name(),
    Column::typed("AttachRequired", "boolean", docs::CSI_ATTACH_REQUIRED),
    Column::typed("PodInfoOnMount", "boolean", docs::CSI_POD_INFO),
    Column::typed("StorageCapacity", "boolean", docs::CSI_STORAGE_CAPACITY),
    Column::string("TokenRequests", docs::CSI_TOKEN_REQUESTS),
    Column::typed("RequiresRepublish", "boolean", docs::CSI_REQUIRES_REPUBLISH),
    Column::string("Modes", docs::CSI_MODES),
    Column::age(),
];

pub(super) fn printer(group: &str, kind: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Column], CellsFn) = match (group, kind) {
        ("", "PersistentVolume") => (PERSISTENT_VOLUME, persistent_volume),
        ("", "PersistentVolumeClaim") => (PERSISTENT_VOLUME_CLAIM, persistent_volume_claim),
        ("storage.k8s.io", "StorageClass") => (STORAGE_CLASS, storage_class),
        ("storage.k8s.io", "VolumeAttributesClass") => (VOLUME_ATTRIBUTES_CLASS, |o, now| {
            let default =
                annotation(o, "volumeattributesclass.alpha.kubernetes.io/is-default-class") == Some("true");
            cells![with_default_suffix(o, default), str_at(o, &["driverName"]), age(o, now)]
        }),
        ("storage.k8s.io", "VolumeAttachment") => (VOLUME_ATTACHMENT, |o, now| {
            cells![
                name(o),
                str_at(o, &["spec", "attacher"]),
                str_at(o, &["spec", "source", "persistentVolumeName"]),
                str_at(o, &["spec", "nodeName"]),
                bool_at(o, &["status", "attached"]),
                age(o, now),
            ]
        }),
        ("storage.k8s.io", "CSINode") => {
            (CSI_NODE, |o, now| cells![name(o), count(len_at(o, &["spec", "drivers"])), age(o, now)])
        }
        ("storage.k8s.io", "CSIDriver") => (CSI_DRIVER, csi_driver),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

/// `helper.GetAccessModesAsString`: fixed order, duplicates dropped.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The legacy class annotation wins over `storageClassName`.
fn storage_class_name<'a>(o: &'a Value, spec_field: Option<&'a str>) -> &'a str {
    annotation(o, "volume.beta.kubernetes.io/storage-class").or(spec_field).unwrap_or("")
}

/// A quantity as `Quantity.String()` prints it; an unset one is zero.
fn quantity(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).map_or_else(|| "0".to_string(), super::quantity::canonical)
}

fn phase(o: &Value) -> &str {
    if is_deleting(o) { "Terminating" } else { str_at(o, &["status", "phase"]) }
}

fn persistent_volume(o: &Value, now: i64) -> Vec<Value> {
    let claim = if is_set(o, &["spec", "claimRef"]) {
        format!(
            "{}/{}",
            str_at(o, &["spec", "claimRef", "namespace"]),
            str_at(o, &["spec", "claimRef", "name"])
        )
    } else {
        String::new()
    };
    cells![
        name(o),
        quantity(get(o, &["spec", "capacity", "storage"])),
        access_modes(arr_at(o, &["spec", "accessModes"])),
        str_at(o, &["spec", "persistentVolumeReclaimPolicy"]),
        phase(o),
        claim,
        storage_class_name(o, opt_str(o, &["spec", "storageClassName"])),
        opt_str(o, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>"),
        str_at(o, &["status", "reason"]),
        age(o, now),
        opt_str(o, &["spec", "volumeMode"]).unwrap_or("<unset>"),
    ]
}

fn persistent_volume_claim(o: &Value, now: i64) -> Vec<Value> {
    let volume = str_at(o, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(get(o, &["status", "capacity", "storage"])),
            access_modes(arr_at(o, &["status", "accessModes"])),
        )
    };
    cells![
        name(o),
        phase(o),
        volume,
        capacity,
        modes,
        storage_class_name(o, opt_str(o, &["spec", "storageClassName"])),
        opt_str(o, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>"),
        age(o, now),
        opt_str(o, &["spec", "volumeMode"]).unwrap_or("<unset>"),
    ]
}

fn with_default_suffix(o: &Value, default: bool) -> String {
    if default { format!("{} (default)", name(o)) } else { name(o).to_string() }
}

fn storage_class(o: &Value, now: i64) -> Vec<Value> {
    let default =
        ["storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class"]
            .iter()
            .any(|key| annotation(o, key) == Some("true"));
    cells![
        with_default_suffix(o, default),
        str_at(o, &["provisioner"]),
        opt_str(o, &["reclaimPolicy"]).unwrap_or("Delete"),
        opt_str(o, &["volumeBindingMode"]).unwrap_or("Immediate"),
        opt_bool(o, &["allowVolumeExpansion"]).unwrap_or(false),
        age(o, now),
    ]
}

fn csi_driver(o: &Value, now: i64) -> Vec<Value> {
    let spec = |f: &str| opt_bool(o, &["spec", f]);
    let modes: Vec<&str> =
        arr_at(o, &["spec", "volumeLifecycleModes"]).iter().filter_map(Value::as_str).collect();
    let token_requests = match get(o, &["spec", "tokenRequests"]).and_then(Value::as_array) {
        Some(reqs) => reqs.iter().map(|t| str_at(t, &["audience"])).collect::<Vec<_>>().join(","),
        None => "<unset>".to_string(),
    };
    cells![
        name(o),
        spec("attachRequired").unwrap_or(true),
        spec("podInfoOnMount").unwrap_or(false),
        spec("storageCapacity").unwrap_or(false),
        token_requests,
        spec("requiresRepublish").unwrap_or(false),
        if modes.is_empty() { "<none>".to_string() } else { modes.join(",") },
        age(o, now),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::printers::testing::{ago, names, row};

    #[test]
    fn persistent_volume_bound_and_terminating() {
        let pv = json!({"metadata": {"name": "pv-1", "creationTimestamp": ago(86_400 * 10)},
            "spec": {"capacity": {"storage": "10240Mi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "local",
                     "claimRef": {"namespace": "db", "name": "data-db-0"}, "volumeMode": "Filesystem"},
            "status": {"phase": "Bound"}});
        assert_eq!(
            row("", "PersistentVolume", &pv),
            cells![
                "pv-1",
                "10Gi",
                "RWO,RWX",
                "Retain",
                "Bound",
                "db/data-db-0",
                "local",
                "<unset>",
                "",
                "10d",
                "Filesystem"
            ]
        );
        let mut deleting = pv.clone();
        deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
        deleting["metadata"]["annotations"] = json!({"volume.beta.kubernetes.io/storage-class": "legacy"});
        let cells = row("", "PersistentVolume", &deleting);
        assert_eq!((&cells[4], &cells[6]), (&json!("Terminating"), &json!("legacy")));
    }

    #[test]
    fn persistent_volume_claim_pending_and_bound() {
        assert_eq!(
            names("", "PersistentVolumeClaim"),
            [
                "Name",
                "Status",
                "Volume",
                "Capacity",
                "Access Modes",
                "StorageClass",
                "VolumeAttributesClass",
                "Age",
                "VolumeMode"
            ]
        );
        let pending = json!({"metadata": {"name": "data"}, "spec": {"storageClassName": "local", "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Pending"}});
        assert_eq!(
            row("", "PersistentVolumeClaim", &pending),
            cells!["data", "Pending", "", "", "", "local", "<unset>", "<unknown>", "<unset>"]
        );
        let bound = json!({"metadata": {"name": "data"}, "spec": {"volumeName": "pv-1", "volumeMode": "Block"},
            "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOncePod"]}});
        assert_eq!(
            row("", "PersistentVolumeClaim", &bound),
            cells!["data", "Bound", "pv-1", "10Gi", "RWOP", "", "<unset>", "<unknown>", "Block"]
        );
    }

    #[test]
    fn storage_class_defaults() {
        let sc = json!({"metadata": {"name": "local-path", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
        assert_eq!(
            row("storage.k8s.io", "StorageClass", &sc),
            cells![
                "local-path (default)",
                "rancher.io/local-path",
                "Delete",
                "WaitForFirstConsumer",
                false,
                "<unknown>"
            ]
        );
    }

    #[test]
    fn csi_objects() {
        let driver = json!({"metadata": {"name": "csi.example.com"}, "spec": {"attachRequired": false, "tokenRequests": [{"audience": "vault"}]}});
        assert_eq!(
            row("storage.k8s.io", "CSIDriver", &driver),
            cells!["csi.example.com", false, false, false, "vault", false, "<none>", "<unknown>"]
        );
        let node = json!({"metadata": {"name": "n1"}, "spec": {"drivers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(row("storage.k8s.io", "CSINode", &node)[1], 2);
        let va = json!({"metadata": {"name": "va"}, "spec": {"attacher": "csi.example.com", "nodeName": "n1", "source": {"persistentVolumeName": "pv-1"}},
            "status": {"attached": true}});
        assert_eq!(
            row("storage.k8s.io", "VolumeAttachment", &va),
            cells!["va", "csi.example.com", "pv-1", "n1", true, "<unknown>"]
        );
    }
}
