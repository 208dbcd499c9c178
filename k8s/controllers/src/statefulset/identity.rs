//! A StatefulSet pod's identity, as upstream's `stateful_set_utils.go`:
//! the name `<set>-<ordinal>`, hostname and subdomain, the identity
//! labels, and its claims `<template>-<set>-<ordinal>` with the owner
//! references the retention policy asks for. Pure functions over JSON.

use serde_json::{Value, json};

use crate::meta;

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// The revision (name) a pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

pub fn replicas(set: &Value) -> i64 {
    set["spec"]["replicas"].as_i64().unwrap_or(1).max(0)
}

/// The first ordinal (`spec.ordinals.start`).
pub fn start_ordinal(set: &Value) -> i64 {
    set["spec"]["ordinals"]["start"].as_i64().unwrap_or(0).max(0)
}

/// The ordinals the set should have, in order.
pub fn ordinal_range(set: &Value) -> std::ops::Range<i64> {
    let start = start_ordinal(set);
    start..start + replicas(set)
}

/// Splits `<parent>-<ordinal>` (upstream's `getParentNameAndOrdinal`).
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i64)> {
    let (parent, ord) = name.rsplit_once('-')?;
    if ord.is_empty() || !ord.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, ord.parse().ok()?))
}

pub fn ordinal(pod: &Value) -> Option<i64> {
    parent_and_ordinal(meta::name(pod)).map(|(_, o)| o)
}

/// Whether the pod's name makes it one of the set's (upstream's `isMemberOf`).
pub fn is_member(set: &Value, pod: &Value) -> bool {
    parent_and_ordinal(meta::name(pod)).is_some_and(|(p, _)| p == meta::name(set))
}

pub fn pod_name(set: &Value, ordinal: i64) -> String {
    format!("{}-{ordinal}", meta::name(set))
}

pub fn claim_name(template: &str, set: &str, ordinal: i64) -> String {
    format!("{template}-{set}-{ordinal}")
}

pub fn revision(pod: &Value) -> &str {
    meta::label(pod, REVISION_LABEL).unwrap_or("")
}

/// The pod template a revision holds (its `data` is the patch that
/// replaces `spec.template`).
pub fn template_of(revision: &Value) -> Value {
    let mut t = revision["data"]["spec"]["template"].clone();
    if let Some(o) = t.as_object_mut() {
        o.remove("$patch");
    }
    t
}

/// The claims of the pod with `ordinal`: (volume name, claim), named
/// `<template>-<set>-<ordinal>` and labelled with the set's matchLabels.
pub fn claims(set: &Value, ordinal: i64) -> Vec<(String, Value)> {
    let match_labels = set["spec"]["selector"]["matchLabels"].as_object().cloned().unwrap_or_default();
    set["spec"]["volumeClaimTemplates"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let template = meta::name(t).to_owned();
            let mut claim = json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": t["metadata"].clone(),
                "spec": t["spec"].clone(),
            });
            claim["metadata"]["name"] = json!(claim_name(&template, meta::name(set), ordinal));
            claim["metadata"]["namespace"] = json!(meta::namespace(set));
            let mut labels = claim["metadata"]["labels"].as_object().cloned().unwrap_or_default();
            labels.extend(match_labels.clone());
            claim["metadata"]["labels"] = Value::Object(labels);
            (template, claim)
        })
        .collect()
}

/// A new pod for `ordinal` from `template` (of revision `revision`), with
/// its identity and its claims as volumes (upstream's `newStatefulSetPod`).
pub fn new_pod(set: &Value, template: &Value, ordinal: i64, revision: &str) -> Value {
    let mut pod = crate::replicaset::pod_from_template(
        template,
        meta::namespace(set),
        "",
        meta::owner_ref(set, "apps/v1", "StatefulSet"),
    );
    let name = pod_name(set, ordinal);
    if let Some(m) = pod["metadata"].as_object_mut() {
        m.remove("generateName");
    }
    pod["metadata"]["name"] = json!(name);
    if !pod["metadata"]["labels"].is_object() {
        pod["metadata"]["labels"] = json!({});
    }
    pod["metadata"]["labels"][POD_NAME_LABEL] = json!(name);
    pod["metadata"]["labels"][POD_INDEX_LABEL] = json!(ordinal.to_string());
    pod["metadata"]["labels"][REVISION_LABEL] = json!(revision);
    if !pod["spec"].is_object() {
        pod["spec"] = json!({});
    }
    pod["spec"]["hostname"] = json!(name);
    if let Some(service) = set["spec"]["serviceName"].as_str().filter(|s| !s.is_empty()) {
        pod["spec"]["subdomain"] = json!(service);
    }
    let claims = claims(set, ordinal);
    let mut volumes: Vec<Value> = claims
        .iter()
        .map(|(vol, c)| json!({"name": vol, "persistentVolumeClaim": {"claimName": meta::name(c)}}))
        .collect();
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        if !claims.iter().any(|(vol, _)| v["name"] == vol.as_str()) {
            volumes.push(v.clone());
        }
    }
    if !volumes.is_empty() {
        pod["spec"]["volumes"] = json!(volumes);
    }
    pod
}

/// Whether the pod carries its identity (upstream's `identityMatches`).
pub fn identity_matches(set: &Value, pod: &Value) -> bool {
    let Some(ord) = ordinal(pod) else { return false };
    is_member(set, pod)
        && meta::namespace(pod) == meta::namespace(set)
        && meta::label(pod, POD_NAME_LABEL) == Some(meta::name(pod))
        && meta::label(pod, POD_INDEX_LABEL) == Some(ord.to_string().as_str())
}

fn plain_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": meta::name(owner), "uid": meta::uid(owner)})
}

/// The owner references `claim` should have under the set's
/// `persistentVolumeClaimRetentionPolicy` (upstream's
/// `updateClaimOwnerRefForSetAndPod`): owned by the set when it is
/// deleted with its claims, by the pod when scaled down with them; `None`
/// when they are right already.
pub fn claim_owners(claim: &Value, set: &Value, pod: Option<&Value>) -> Option<Vec<Value>> {
    let policy = &set["spec"]["persistentVolumeClaimRetentionPolicy"];
    let delete = |k: &str| policy[k] == "Delete";
    let scaled_down = pod.and_then(ordinal).is_some_and(|o| !ordinal_range(set).contains(&o));
    let by_set = delete("whenDeleted") && !(delete("whenScaled") && scaled_down);
    let by_pod = delete("whenScaled") && scaled_down;
    let current: Vec<Value> = claim["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default();
    let mut refs = current.clone();
    let has = |refs: &[Value], uid: &str| refs.iter().any(|r| r["uid"] == uid);
    let set_uid = meta::uid(set);
    if by_set && !has(&refs, set_uid) {
        refs.push(plain_ref(set, "apps/v1", "StatefulSet"));
    } else if !by_set {
        refs.retain(|r| r["uid"] != set_uid);
    }
    if let Some(pod) = pod {
        let pod_uid = meta::uid(pod);
        if by_pod && !pod_uid.is_empty() && !has(&refs, pod_uid) {
            refs.push(plain_ref(pod, "v1", "Pod"));
        } else if !by_pod {
            refs.retain(|r| r["uid"] != pod_uid);
        }
    }
    (refs != current).then_some(refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "s1"},
            "spec": {
                "replicas": 3,
                "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                    "containers": [{"name": "c", "image": "i"}],
                    "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "x"}}],
                }},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}],
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            },
        })
    }

    #[test]
    fn names_parse_back_into_parent_and_ordinal() {
        assert_eq!(parent_and_ordinal("web-0"), Some(("web", 0)));
        assert_eq!(parent_and_ordinal("my-web-12"), Some(("my-web", 12)));
        assert_eq!(parent_and_ordinal("web-"), None);
        assert_eq!(parent_and_ordinal("web-x1"), None);
        assert_eq!(parent_and_ordinal("web"), None);
        let s = set();
        assert!(is_member(&s, &json!({"metadata": {"name": "web-4"}})));
        assert!(!is_member(&s, &json!({"metadata": {"name": "webby-4"}})));
        let mut shifted = set();
        shifted["spec"]["ordinals"] = json!({"start": 5});
        assert_eq!(ordinal_range(&shifted), 5..8);
        assert_eq!(ordinal_range(&s), 0..3);
    }

    #[test]
    fn a_new_pod_has_its_identity_and_its_claims() {
        let s = set();
        let pod = new_pod(&s, &s["spec"]["template"], 2, "web-abc");
        assert_eq!(pod["metadata"]["name"], "web-2");
        assert!(pod["metadata"]["generateName"].is_null());
        assert_eq!(pod["metadata"]["labels"][POD_NAME_LABEL], "web-2");
        assert_eq!(pod["metadata"]["labels"][POD_INDEX_LABEL], "2");
        assert_eq!(pod["metadata"]["labels"][REVISION_LABEL], "web-abc");
        assert_eq!(pod["metadata"]["labels"]["app"], "web");
        assert_eq!(
            (pod["spec"]["hostname"].as_str(), pod["spec"]["subdomain"].as_str()),
            (Some("web-2"), Some("nginx"))
        );
        // The claim replaces the template's volume of the same name.
        let vols = pod["spec"]["volumes"].as_array().unwrap();
        assert_eq!(vols.len(), 2);
        assert_eq!(vols[0], json!({"name": "data", "persistentVolumeClaim": {"claimName": "data-web-2"}}));
        assert_eq!(vols[1]["name"], "cfg");
        assert!(identity_matches(&s, &pod));
        let (vol, claim) = &claims(&s, 2)[0];
        assert_eq!((vol.as_str(), meta::name(claim)), ("data", "data-web-2"));
        assert_eq!(claim["metadata"]["labels"]["app"], "web");
        assert_eq!(claim["spec"]["accessModes"][0], "ReadWriteOnce");
    }

    #[test]
    fn claims_are_owned_as_the_retention_policy_says() {
        let mut s = set();
        let claim = json!({"metadata": {"name": "data-web-1"}});
        let pod = |ord: i64| json!({"metadata": {"name": format!("web-{ord}"), "uid": format!("p{ord}")}});
        // Retain/Retain: nobody owns it.
        assert_eq!(claim_owners(&claim, &s, Some(&pod(1))), None);
        s["spec"]["persistentVolumeClaimRetentionPolicy"] =
            json!({"whenDeleted": "Delete", "whenScaled": "Delete"});
        let refs = claim_owners(&claim, &s, Some(&pod(1))).unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!((refs[0]["kind"].as_str(), refs[0]["uid"].as_str()), (Some("StatefulSet"), Some("s1")));
        // Scaled away (ordinal 4 of 3 replicas): the pod owns it, the set lets go.
        let owned_by_set = json!({"metadata": {"ownerReferences": refs}});
        let refs = claim_owners(&owned_by_set, &s, Some(&pod(4))).unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!((refs[0]["kind"].as_str(), refs[0]["uid"].as_str()), (Some("Pod"), Some("p4")));
        // Retain when deleted, Delete when scaled: an in-range pod's claim has no owner.
        s["spec"]["persistentVolumeClaimRetentionPolicy"] =
            json!({"whenDeleted": "Retain", "whenScaled": "Delete"});
        assert_eq!(claim_owners(&claim, &s, Some(&pod(1))), None);
    }
}
