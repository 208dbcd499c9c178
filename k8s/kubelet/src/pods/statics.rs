//! Static pods: Pod manifests (YAML or JSON) in the manifest directory run
//! on this node without the API server, as upstream's `staticPodPath`.
//! Each is named `<name>-<node>` and shown in the API as a mirror pod
//! (annotation `kubernetes.io/config.mirror`), which the agent recreates
//! when it is deleted and removes when the file goes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::{MIRROR_ANNOTATION, Source};
use crate::Agent;
use crate::spec::{Pod, parse_pod};

pub const SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";
pub const HASH_ANNOTATION: &str = "kubernetes.io/config.hash";

const SCAN_EVERY: Duration = Duration::from_secs(5);

/// A static pod read from a file: its API form and its parsed form.
#[derive(Clone)]
struct Manifest {
    object: Value,
    pod: Pod,
}

/// Reads one manifest; the error names the file and the problem.
fn read(path: &Path, node: &str) -> Result<Manifest, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut obj: Value = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    };
    if obj["kind"] != "Pod" || obj["apiVersion"] != "v1" {
        return Err(format!(
            "{}: not a v1 Pod (kind {}, apiVersion {})",
            path.display(),
            obj["kind"],
            obj["apiVersion"]
        ));
    }
    let name = obj["metadata"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{}: metadata.name is missing", path.display()))?;
    if obj["spec"]["containers"].as_array().is_none_or(Vec::is_empty) {
        return Err(format!("{}: spec.containers: at least one container is required", path.display()));
    }
    let full_name = format!("{name}-{node}");
    // The UID is the hash of what the file says for this node: a changed
    // file is a new pod, as upstream.
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{node}\n{text}").as_bytes());
    let hash: String = digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
    let meta = &mut obj["metadata"];
    meta["name"] = json!(full_name);
    if meta["namespace"].as_str().is_none_or(str::is_empty) {
        meta["namespace"] = json!("default");
    }
    meta["uid"] = json!(hash);
    if !meta["annotations"].is_object() {
        meta["annotations"] = json!({});
    }
    meta["annotations"][SOURCE_ANNOTATION] = json!("file");
    meta["annotations"][HASH_ANNOTATION] = json!(hash);
    obj["spec"]["nodeName"] = json!(node);
    let pod = parse_pod(&obj).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Manifest { object: obj, pod })
}

/// The manifests in the directory, by UID.
fn scan(dir: &Path, node: &str, errors: &mut HashMap<String, String>) -> BTreeMap<String, Manifest> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let is_manifest = p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json");
        let hidden = p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !is_manifest || hidden {
            continue;
        }
        let key = p.display().to_string();
        match read(&p, node) {
            Ok(m) => {
                errors.remove(&key);
                out.insert(m.pod.metadata.uid.clone(), m);
            }
            Err(e) => {
                // Reported once per distinct problem, not every scan.
                if errors.get(&key) != Some(&e) {
                    tracing::error!(error = %e, "static pod manifest ignored");
                    errors.insert(key, e);
                }
            }
        }
    }
    out
}

fn mirror_of(agent: &Agent, m: &Manifest) -> Value {
    let mut obj = m.object.clone();
    let meta = &mut obj["metadata"];
    let hash = meta["uid"].clone();
    if let Some(o) = meta.as_object_mut() {
        o.remove("uid");
        o.remove("resourceVersion");
    }
    meta["annotations"][MIRROR_ANNOTATION] = hash;
    if let Some(node) = agent.node_object.borrow().as_ref() {
        meta["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "Node", "name": agent.cfg.node_name,
            "uid": node["metadata"]["uid"], "controller": true,
        }]);
    }
    if let Some(o) = obj.as_object_mut() {
        o.remove("status");
    }
    obj
}

fn pod_path(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/pods/{name}")
}

async fn delete_now(agent: &Agent, ns: &str, name: &str, uid: Option<&str>) {
    let mut opts = json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0});
    if let Some(u) = uid {
        opts["preconditions"] = json!({"uid": u});
    }
    if let Err(e) = agent.client.delete(&pod_path(ns, name), &opts).await
        && !e.is_not_found()
    {
        tracing::warn!(pod = %name, error = %e, "cannot delete mirror pod");
    }
}

/// Makes the API's mirror match the static pod.
async fn ensure_mirror(agent: &Agent, m: &Manifest) {
    let (ns, name) = (&m.pod.metadata.namespace, &m.pod.metadata.name);
    match agent.client.get_opt(&pod_path(ns, name)).await {
        Ok(Some(existing)) => {
            let current = existing["metadata"]["annotations"][MIRROR_ANNOTATION].as_str()
                == Some(m.pod.metadata.uid.as_str());
            let deleting = !existing["metadata"]["deletionTimestamp"].is_null();
            if !current || deleting {
                // A stale mirror (older file) or one a user deleted: replace it.
                delete_now(agent, ns, name, existing["metadata"]["uid"].as_str()).await;
            }
            if current && !deleting {
                return;
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::debug!(error = %e, "mirror pod lookup failed");
            return;
        }
    }
    let path = format!("/api/v1/namespaces/{ns}/pods");
    match agent.client.create(&path, &mirror_of(agent, m)).await {
        Ok(_) => tracing::info!(pod = %name, "mirror pod created"),
        Err(e) if e.is_conflict() => {}
        Err(e) => tracing::warn!(pod = %name, error = %e, "cannot create mirror pod"),
    }
}

/// A mirror pod seen on the watch: a deleted one goes at once (the static
/// pod keeps running and the next scan recreates the mirror); one whose
/// static pod is gone is removed.
pub async fn mirror_event(agent: &Agent, obj: &Value) {
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default").to_owned();
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let uid = obj["metadata"]["uid"].as_str().map(str::to_owned);
    let hash = obj["metadata"]["annotations"][MIRROR_ANNOTATION].as_str().unwrap_or("");
    let orphan = !agent.pods.contains(hash) && *agent.statics_scanned.borrow();
    if !obj["metadata"]["deletionTimestamp"].is_null() || orphan {
        delete_now(agent, &ns, &name, uid.as_deref()).await;
    }
}

/// Watches the manifest directory forever.
pub async fn run(agent: Agent) {
    let Some(dir) = agent.cfg.manifests_dir.clone() else {
        agent.statics_scanned.send_replace(true);
        return;
    };
    let mut errors = HashMap::new();
    let mut running: BTreeMap<String, Manifest> = BTreeMap::new();
    loop {
        let found = scan(&dir, &agent.cfg.node_name, &mut errors);
        for (uid, m) in &found {
            if !running.contains_key(uid) {
                tracing::info!(pod = %m.pod.metadata.name, uid = %uid, "static pod");
            }
            agent.pods.update(&agent, uid, Some(m.pod.clone()), Source::Static);
        }
        for (uid, m) in &running {
            if !found.contains_key(uid) {
                tracing::info!(pod = %m.pod.metadata.name, "static pod removed");
                agent.pods.update(&agent, uid, None, Source::Static);
                // Unless a newer file took the name, the mirror goes too.
                if !found.values().any(|f| f.pod.metadata.name == m.pod.metadata.name) {
                    delete_now(&agent, &m.pod.metadata.namespace, &m.pod.metadata.name, None).await;
                }
            }
        }
        running = found;
        agent.statics_scanned.send_replace(true);
        for m in running.values() {
            ensure_mirror(&agent, m).await;
        }
        tokio::time::sleep(SCAN_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_become_node_named_pods_with_stable_uids() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("web.yaml");
        std::fs::write(&p, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("bad.yaml"), "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("broken.json"), "{").unwrap_or_else(|e| panic!("{e}"));
        let mut errors = HashMap::new();
        let found = scan(dir.path(), "n1", &mut errors);
        assert_eq!(found.len(), 1);
        let m = found.values().next().map(|m| m.pod.clone()).unwrap_or_default();
        assert_eq!(m.metadata.name, "web-n1");
        assert_eq!(m.metadata.namespace, "default");
        assert_eq!(m.spec.node_name, "n1");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.values().any(|e| e.contains("not a v1 Pod")), "{errors:?}");
        // Same file, same UID; another node, another UID.
        let again = scan(dir.path(), "n1", &mut errors);
        assert_eq!(again.keys().collect::<Vec<_>>(), found.keys().collect::<Vec<_>>());
        let other = scan(dir.path(), "n2", &mut errors);
        assert_ne!(other.keys().collect::<Vec<_>>(), found.keys().collect::<Vec<_>>());
    }
}
