//! Hand-written patch metadata for tests, copied from upstream's struct tags.

use std::collections::HashMap;

use super::meta::{FieldMeta, PatchMeta};

/// Metadata looked up by the dotted field path.
pub(crate) struct TableMeta(HashMap<String, FieldMeta>);

impl PatchMeta for TableMeta {
    fn field(&self, path: &[&str]) -> FieldMeta {
        self.0.get(&path.join(".")).cloned().unwrap_or_default()
    }
}

pub(crate) fn merge_on(key: &str) -> FieldMeta {
    FieldMeta { merge: true, merge_key: Some(key.to_string()), ..FieldMeta::default() }
}

pub(crate) fn set() -> FieldMeta {
    FieldMeta { merge: true, ..FieldMeta::default() }
}

pub(crate) fn map() -> FieldMeta {
    FieldMeta { is_map: true, ..FieldMeta::default() }
}

pub(crate) fn retain_keys() -> FieldMeta {
    FieldMeta { retain_keys: true, ..FieldMeta::default() }
}

pub(crate) fn replace() -> FieldMeta {
    FieldMeta { replace: true, ..FieldMeta::default() }
}

/// `ObjectMeta` fields under `prefix` (`metadata`, `spec.template.metadata`).
fn object_meta(prefix: &str) -> Vec<(String, FieldMeta)> {
    vec![
        (format!("{prefix}.labels"), map()),
        (format!("{prefix}.annotations"), map()),
        // `patchStrategy:"merge"`, no key: a set of strings.
        (format!("{prefix}.finalizers"), set()),
        (format!("{prefix}.ownerReferences"), merge_on("uid")),
    ]
}

/// `PodSpec` fields under `prefix` (`spec` for a Pod, `spec.template.spec`
/// for a Deployment). `tolerations`, `args` and `command` carry no strategy
/// upstream, so they are replaced.
fn pod_spec(prefix: &str) -> Vec<(String, FieldMeta)> {
    let mut fields = vec![
        (format!("{prefix}.volumes"), FieldMeta { retain_keys: true, ..merge_on("name") }),
        (format!("{prefix}.imagePullSecrets"), merge_on("name")),
        (format!("{prefix}.nodeSelector"), map()),
    ];
    for containers in ["containers", "initContainers"] {
        let at = format!("{prefix}.{containers}");
        fields.push((at.clone(), merge_on("name")));
        fields.push((format!("{at}.ports"), merge_on("containerPort")));
        fields.push((format!("{at}.env"), merge_on("name")));
        fields.push((format!("{at}.volumeMounts"), merge_on("mountPath")));
        fields.push((format!("{at}.resources.limits"), map()));
        fields.push((format!("{at}.resources.requests"), map()));
    }
    fields
}

/// Pods and Deployments.
pub(crate) fn workloads() -> TableMeta {
    let mut fields = object_meta("metadata");
    fields.extend(object_meta("spec.template.metadata"));
    fields.extend(pod_spec("spec"));
    fields.extend(pod_spec("spec.template.spec"));
    fields.push(("spec.selector.matchLabels".to_string(), map()));
    // `DeploymentSpec.Strategy` is `patchStrategy:"retainKeys"`.
    fields.push(("spec.strategy".to_string(), retain_keys()));
    TableMeta(fields.into_iter().collect())
}

/// Upstream's test type `MergeItem`, which nests itself: metadata by the
/// last field name.
pub(crate) struct MergeItemMeta;

impl PatchMeta for MergeItemMeta {
    fn field(&self, path: &[&str]) -> FieldMeta {
        match path.last().copied().unwrap_or_default() {
            "mergingList" | "mergeItemPtr" => merge_on("name"),
            "retainKeysMergingList" => FieldMeta { retain_keys: true, ..merge_on("name") },
            "mergingIntList" => set(),
            "simpleMap" => map(),
            "replacingItem" => replace(),
            "retainKeysMap" => retain_keys(),
            _ => FieldMeta::default(),
        }
    }
}
