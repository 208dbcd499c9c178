//! The finalizers the API server itself owns, processed by one background
//! thread: `kubernetes` on namespaces (the namespace's content is deleted,
//! then the namespace), `foregroundDeletion` (dependents go first) and
//! `orphan` (dependents lose their owner reference), CRD cleanup; and
//! background garbage collection through the ownership graph (`gc`).

use std::sync::Arc;
use std::time::Duration;

use lichen_store::{EventKind, Store, StoreError, WatchMessage};
use serde_json::{Value, json};

use crate::api::Api;
use crate::gc::Graph;
use crate::objects;

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";
const NAMESPACE: &str = "kubernetes";

/// Starts the thread; it runs for the life of the process.
pub fn spawn(api: Arc<Api>) {
    let _ = std::thread::Builder::new().name("finalizers".into()).spawn(move || run(&api));
}

fn run(api: &Api) {
    loop {
        if let Err(e) = watch_loop(api) {
            tracing::warn!(error = %e, "finalizer worker restarting");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn watch_loop(api: &Api) -> Result<(), StoreError> {
    let store = api.store.as_ref();
    // Everything already waiting, then every change; a full pass again every
    // few seconds retries what could not finish yet.
    let (rev, mut pending, mut graph) = sweep(api)?;
    for key in graph.all_orphans() {
        delete_or_mark(store, &key, None)?;
    }
    let mut w = store.watch("/registry/", rev)?;
    let mut last_sweep = std::time::Instant::now();
    loop {
        match w.blocking_next(Duration::from_secs(2)) {
            Ok(Some(WatchMessage::Events(events))) => {
                for ev in events {
                    match ev.kind {
                        EventKind::Put => {
                            let Ok(obj) = objects::decode(&ev.kv) else { continue };
                            graph.put(&ev.kv.key, &obj);
                            // Made after its owners went (a controller's
                            // write racing the owner's deletion): collect it.
                            if graph.orphaned(&ev.kv.key) && !deleting(&obj) {
                                delete_or_mark(store, &ev.kv.key, None)?;
                            }
                            if ours(&obj) {
                                process(api, &graph, &ev.kv.key, &obj)?;
                                pending = true;
                            }
                        }
                        EventKind::Delete => {
                            let Some(uid) = graph.remove(&ev.kv.key) else { continue };
                            for dep in graph.dependents_of(&uid) {
                                if graph.orphaned(&dep) {
                                    delete_or_mark(store, &dep, None)?;
                                }
                            }
                        }
                    }
                }
            }
            Ok(Some(WatchMessage::Closed(e))) => return Err(e),
            Ok(Some(WatchMessage::Progress(_)) | None) => {}
            Err(_) => return Ok(()),
        }
        if pending && last_sweep.elapsed() > Duration::from_secs(2) {
            pending = sweep(api)?.1;
            last_sweep = std::time::Instant::now();
        }
    }
}

/// The grace period a pod gets when collected: scheduled and not finished
/// pods stop gracefully, as upstream's garbage collector's DELETE gives
/// them; anything else goes at once.
fn pod_grace(key: &str, obj: &Value) -> i64 {
    if !key.starts_with("/registry/core/pods/") {
        return 0;
    }
    let scheduled = obj["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
    let done = matches!(obj["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
    if !scheduled || done {
        return 0;
    }
    obj["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap_or(30).max(0)
}

/// Being deleted and held by a finalizer this worker handles. (A pod held
/// by its grace period is the agent's to finish, and is left alone.)
fn ours(obj: &Value) -> bool {
    const OURS: [&str; 4] = [NAMESPACE, FOREGROUND, ORPHAN, crate::crds::CLEANUP_FINALIZER];
    deleting(obj) && finalizers(obj).iter().any(|f| OURS.contains(&f.as_str()))
}

fn deleting(obj: &Value) -> bool {
    objects::meta(obj).get("deletionTimestamp").is_some_and(|t| !t.is_null())
}

fn finalizers(obj: &Value) -> Vec<String> {
    let m = objects::meta(obj);
    let mut f: Vec<String> = m["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    if obj["kind"] == "Namespace"
        && obj["spec"]["finalizers"].as_array().is_some_and(|a| a.iter().any(|x| x == NAMESPACE))
    {
        f.push(NAMESPACE.into());
    }
    f
}

/// Builds the ownership graph and handles every object that is being
/// deleted; returns the revision read, whether anything was waiting, and the
/// graph.
fn sweep(api: &Api) -> Result<(i64, bool, Graph), StoreError> {
    let all = api.store.list("/registry/", None, None, None)?;
    let mut graph = Graph::default();
    let mut waiting = Vec::new();
    for kv in &all.items {
        if let Ok(obj) = objects::decode(kv) {
            graph.put(&kv.key, &obj);
            if ours(&obj) {
                waiting.push((kv.key.clone(), obj));
            }
        }
    }
    for (key, obj) in &waiting {
        process(api, &graph, key, obj)?;
    }
    Ok((all.revision, !waiting.is_empty(), graph))
}

fn process(api: &Api, graph: &Graph, key: &str, obj: &Value) -> Result<(), StoreError> {
    let fs = finalizers(obj);
    if fs.iter().any(|f| f == NAMESPACE) && empty_namespace(api, obj)? {
        update(api.store.as_ref(), key, |o| {
            if let Some(a) = o["spec"]["finalizers"].as_array_mut() {
                a.retain(|x| x != NAMESPACE);
            }
        })?;
    }
    if fs.iter().any(|f| f == crate::crds::CLEANUP_FINALIZER) && remove_custom_resources(api, obj)? {
        remove_finalizer(api.store.as_ref(), key, crate::crds::CLEANUP_FINALIZER)?;
    }
    let uid = objects::meta_str(obj, "uid").unwrap_or("").to_string();
    if fs.iter().any(|f| f == ORPHAN) {
        // The finalizer goes only once every dependent let go of the owner:
        // a dependent still naming it would be collected with it.
        let mut all = true;
        for (dkey, _) in dependents(api, graph, &uid)? {
            all &= update(api.store.as_ref(), &dkey, |o| {
                if let Some(refs) = o["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"] != uid.as_str());
                }
            })?;
        }
        if !all {
            return Ok(());
        }
        remove_finalizer(api.store.as_ref(), key, ORPHAN)?;
    }
    if fs.iter().any(|f| f == FOREGROUND) {
        let deps = dependents(api, graph, &uid)?;
        if deps.is_empty() {
            remove_finalizer(api.store.as_ref(), key, FOREGROUND)?;
        } else {
            for (dkey, dep) in deps {
                if !deleting(&dep) {
                    delete_or_mark(api.store.as_ref(), &dkey, Some(FOREGROUND))?;
                }
            }
        }
    }
    // An object whose last finalizer this removed goes now (a grace period
    // still running keeps it: the agent deletes it).
    if let Some(cur) = api.store.get(key, None)? {
        let obj = objects::decode(&cur).unwrap_or(Value::Null);
        let grace = objects::meta(&obj)["deletionGracePeriodSeconds"].as_i64().unwrap_or(0);
        if deleting(&obj) && finalizers(&obj).is_empty() && grace == 0 {
            match api.store.delete(key, Some(cur.mod_revision)) {
                Ok(_) | Err(StoreError::NotFound { .. } | StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Deletes the objects of a CRD being deleted; true once none is left.
fn remove_custom_resources(api: &Api, crd: &Value) -> Result<bool, StoreError> {
    let info = lichen_apimachinery::crd::CrdInfo::read(crd);
    if info.group.is_empty() || info.names.plural.is_empty() {
        return Ok(true);
    }
    let prefix = format!("/registry/{}/{}/", info.group, info.names.plural);
    let items = api.store.list(&prefix, None, None, None)?.items;
    for kv in &items {
        let obj = objects::decode(kv).unwrap_or(Value::Null);
        if !deleting(&obj) {
            delete_or_mark(api.store.as_ref(), &kv.key, None)?;
        }
    }
    Ok(items.is_empty())
}

/// Deletes what is left in a terminating namespace; true once it is empty.
fn empty_namespace(api: &Api, ns_obj: &Value) -> Result<bool, StoreError> {
    let ns = objects::meta_str(ns_obj, "name").unwrap_or("");
    if ns.is_empty() {
        return Ok(true);
    }
    let mut empty = true;
    for res in api.resources().iter().filter(|r| r.namespaced) {
        let prefix = objects::prefix(res, ns);
        for kv in api.store.list(&prefix, None, None, None)?.items {
            empty = false;
            let obj = objects::decode(&kv).unwrap_or(Value::Null);
            if !deleting(&obj) {
                delete_or_mark(api.store.as_ref(), &kv.key, None)?;
            }
        }
    }
    Ok(empty)
}

/// Objects that name `uid` as an owner, as stored now.
fn dependents(api: &Api, graph: &Graph, uid: &str) -> Result<Vec<(String, Value)>, StoreError> {
    let mut out = Vec::new();
    for key in graph.dependents_of(uid) {
        if let Some(kv) = api.store.get(&key, None)?
            && let Ok(obj) = objects::decode(&kv)
        {
            out.push((key, obj));
        }
    }
    Ok(out)
}

/// Deletes an object, or, when finalizers hold it (or `add` asks for one),
/// sets its deletionTimestamp.
fn delete_or_mark(store: &dyn Store, key: &str, add: Option<&str>) -> Result<(), StoreError> {
    let Some(kv) = store.get(key, None)? else { return Ok(()) };
    let obj = objects::decode(&kv).unwrap_or(Value::Null);
    // A running pod is deleted as a DELETE without options would: its node
    // stops it within its grace period (preStop hooks run) and removes it.
    let grace = pod_grace(key, &obj);
    if grace > 0 && add.is_none() {
        if deleting(&obj) {
            return Ok(());
        }
        let mut marked = obj;
        let at = std::time::SystemTime::now() + Duration::from_secs(grace.unsigned_abs());
        let m = objects::meta_mut(&mut marked);
        m.insert("deletionTimestamp".into(), json!(objects::rfc3339(at)));
        m.insert("deletionGracePeriodSeconds".into(), json!(grace));
        let bytes =
            serde_json::to_vec(&strip(marked)).map_err(|e| StoreError::Corrupt { reason: e.to_string() })?;
        return match store.update(key, &bytes, kv.mod_revision) {
            Ok(_) | Err(StoreError::NotFound { .. } | StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        };
    }
    let held = !finalizers(&obj).is_empty() || add.is_some();
    let result = if held {
        let mut marked = obj;
        let m = objects::meta_mut(&mut marked);
        if let Some(f) = add {
            let list = m.entry("finalizers").or_insert(json!([]));
            if let Some(a) = list.as_array_mut()
                && !a.iter().any(|x| x == f)
            {
                a.push(json!(f));
            }
        }
        // A running pod keeps its grace period in a foreground cascade too:
        // its node stops it, then the finalizer is what is left.
        let at = std::time::SystemTime::now() + Duration::from_secs(grace.unsigned_abs());
        m.insert("deletionTimestamp".into(), json!(objects::rfc3339(at)));
        m.insert("deletionGracePeriodSeconds".into(), json!(grace));
        let bytes =
            serde_json::to_vec(&strip(marked)).map_err(|e| StoreError::Corrupt { reason: e.to_string() })?;
        store.update(key, &bytes, kv.mod_revision).map(|_| ())
    } else {
        store.delete(key, Some(kv.mod_revision)).map(|_| ())
    };
    match result {
        Ok(()) | Err(StoreError::NotFound { .. } | StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn remove_finalizer(store: &dyn Store, key: &str, name: &str) -> Result<(), StoreError> {
    update(store, key, |o| {
        if let Some(a) = o["metadata"]["finalizers"].as_array_mut() {
            a.retain(|x| x != name);
            if a.is_empty()
                && let Some(m) = o["metadata"].as_object_mut()
            {
                m.remove("finalizers");
            }
        }
    })
    .map(|_| ())
}

fn strip(mut obj: Value) -> Value {
    objects::normalize(&mut obj);
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    obj
}

/// Read-modify-CAS; a lost race is left for the next pass.
/// Applies `change` to the object at `key`, re-reading and retrying when
/// another writer got there first. False when it still lost after a few
/// attempts (the caller tries again on its next pass); true when applied,
/// not needed, or the object is gone.
fn update(store: &dyn Store, key: &str, change: impl Fn(&mut Value)) -> Result<bool, StoreError> {
    for _ in 0..5 {
        let Some(kv) = store.get(key, None)? else { return Ok(true) };
        let Ok(mut obj) = objects::decode(&kv) else { return Ok(true) };
        let before = obj.clone();
        change(&mut obj);
        if obj == before {
            return Ok(true);
        }
        let bytes =
            serde_json::to_vec(&strip(obj)).map_err(|e| StoreError::Corrupt { reason: e.to_string() })?;
        match store.update(key, &bytes, kv.mod_revision) {
            Ok(_) | Err(StoreError::NotFound { .. }) => return Ok(true),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}
