//! A shared, watched cache of one resource, as client-go's informers: a
//! list, then a watch from the list's resourceVersion; on `410 Gone` or a
//! broken stream it lists again and reports the difference. Controllers
//! read the cache and register handlers that turn changes into queue keys.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lichen_client::Client;
use serde_json::Value;
use tokio::sync::watch;

use crate::meta;

/// What changed in the cache.
pub enum Change<'a> {
    Added(&'a Value),
    Updated { old: &'a Value, new: &'a Value },
    Deleted(&'a Value),
}

impl Change<'_> {
    /// The object as it is now (or was, for a deletion).
    pub fn object(&self) -> &Value {
        match self {
            Change::Added(o) | Change::Deleted(o) => o,
            Change::Updated { new, .. } => new,
        }
    }
}

type Handler = Arc<dyn Fn(&Change<'_>) + Send + Sync>;

/// The cache of one resource; cheap to clone.
#[derive(Clone)]
pub struct Informer {
    inner: Arc<Inner>,
}

struct Inner {
    /// The collection, e.g. `/api/v1/pods`.
    path: String,
    objects: RwLock<HashMap<String, Arc<Value>>>,
    handlers: RwLock<Vec<Handler>>,
    synced: watch::Sender<bool>,
    needed: std::sync::atomic::AtomicBool,
}

impl Informer {
    /// A cache of the collection at `path` (all namespaces), e.g.
    /// `/apis/apps/v1/deployments`; nothing happens until [`Informer::run`].
    pub fn new(path: &str) -> Informer {
        Informer {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                objects: RwLock::default(),
                handlers: RwLock::default(),
                synced: watch::Sender::new(false),
                needed: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// Marks the cache as used by some controller, so it is filled.
    pub fn needed(&self) {
        self.inner.needed.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_needed(&self) -> bool {
        self.inner.needed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Calls `f` for every change; `f` must not block (enqueue keys).
    pub fn on_change(&self, f: impl Fn(&Change<'_>) + Send + Sync + 'static) {
        self.needed();
        if let Ok(mut h) = self.inner.handlers.write() {
            h.push(Arc::new(f));
        }
    }

    /// Waits until the first list is in the cache.
    pub async fn synced(&self) {
        let mut rx = self.inner.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    pub fn has_synced(&self) -> bool {
        *self.inner.synced.borrow()
    }

    /// The object with `key` (`ns/name`, or `name` for cluster objects).
    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.inner.objects.read().ok()?.get(key).cloned()
    }

    pub fn get_in(&self, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.get(&meta::key(namespace, name))
    }

    /// Every object.
    pub fn list(&self) -> Vec<Arc<Value>> {
        self.inner.objects.read().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    /// Every object in `namespace`.
    pub fn list_in(&self, namespace: &str) -> Vec<Arc<Value>> {
        let prefix = format!("{namespace}/");
        self.inner
            .objects
            .read()
            .map(|m| m.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(_, v)| v.clone()).collect())
            .unwrap_or_default()
    }

    pub fn keys(&self) -> Vec<String> {
        self.inner.objects.read().map(|m| m.keys().cloned().collect()).unwrap_or_default()
    }

    /// Puts an object a controller just wrote into the cache, so its next
    /// decision sees it before the watch delivers it (client-go's
    /// "expectations" and the scheduler's "assume" serve the same end). An
    /// older version never replaces a newer one. Handlers are not called.
    pub fn assume(&self, obj: &Value) {
        let key = meta::key_of(obj);
        if let Ok(mut m) = self.inner.objects.write() {
            let newer = m.get(&key).is_none_or(|old| !meta::older(obj, old));
            if newer {
                m.insert(key, Arc::new(obj.clone()));
            }
        }
    }

    /// Removes an object a controller just deleted for good.
    pub fn assume_deleted(&self, key: &str) {
        if let Ok(mut m) = self.inner.objects.write() {
            m.remove(key);
        }
    }

    fn notify(&self, change: &Change<'_>) {
        let handlers = self.inner.handlers.read().map(|h| h.clone()).unwrap_or_default();
        for h in handlers {
            h(change);
        }
    }

    /// Applies a watch event, ignoring versions older than what the cache
    /// holds (the cache may hold an assumed write).
    fn apply(&self, kind: &str, obj: Value) {
        let key = meta::key_of(&obj);
        let obj = Arc::new(obj);
        let old = {
            let Ok(mut m) = self.inner.objects.write() else { return };
            match kind {
                "DELETED" => m.remove(&key),
                _ => {
                    if let Some(old) = m.get(&key)
                        && meta::older(&obj, old)
                    {
                        return;
                    }
                    m.insert(key, obj.clone())
                }
            }
        };
        match (kind, old) {
            ("DELETED", Some(old)) => self.notify(&Change::Deleted(&old)),
            ("DELETED", None) => self.notify(&Change::Deleted(&obj)),
            (_, Some(old)) => self.notify(&Change::Updated { old: &old, new: &obj }),
            (_, None) => self.notify(&Change::Added(&obj)),
        }
    }

    /// Replaces the cache with a fresh list (read at `list_rv`) and reports
    /// the difference. Done under one lock, so readers never see an empty
    /// cache; a write assumed after the list was read (newer than it, or
    /// absent from it but newer than `list_rv`) survives.
    fn replace(&self, items: Vec<Value>, list_rv: &str) {
        let list_rv = list_rv.parse::<u64>().ok();
        let mut fresh: HashMap<String, Arc<Value>> =
            items.into_iter().map(|o| (meta::key_of(&o), Arc::new(o))).collect();
        let old = {
            let Ok(mut m) = self.inner.objects.write() else { return };
            let old = std::mem::take(&mut *m);
            for (k, o) in &old {
                let keep = match fresh.get(k) {
                    Some(f) => meta::older(f, o),
                    None => {
                        let rv = meta::resource_version(o).parse::<u64>().ok();
                        matches!((rv, list_rv), (Some(a), Some(b)) if a > b)
                    }
                };
                if keep {
                    fresh.insert(k.clone(), o.clone());
                }
            }
            *m = fresh.clone();
            old
        };
        for (k, o) in &fresh {
            match old.get(k) {
                None => self.notify(&Change::Added(o)),
                Some(prev) if meta::resource_version(prev) != meta::resource_version(o) => {
                    self.notify(&Change::Updated { old: prev, new: o })
                }
                Some(_) => {}
            }
        }
        for (k, o) in &old {
            if !fresh.contains_key(k) {
                self.notify(&Change::Deleted(o));
            }
        }
    }

    /// Lists and watches for the life of the task.
    pub async fn run(self, client: Client) {
        let mut failures = 0u32;
        loop {
            match self.list_and_watch(&client).await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    if failures > 2 {
                        tracing::warn!(path = %self.inner.path, error = %e, "informer relisting");
                    }
                }
            }
            let backoff = Duration::from_millis(200u64 << failures.min(5));
            tokio::time::sleep(backoff).await;
        }
    }

    async fn list_and_watch(&self, client: &Client) -> Result<(), lichen_client::ClientError> {
        let list = client.get(&self.inner.path).await?;
        let mut rv = list["metadata"]["resourceVersion"].as_str().unwrap_or("0").to_owned();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        self.replace(items, &rv);
        self.inner.synced.send_replace(true);
        loop {
            let path = format!(
                "{}?watch=true&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=600",
                self.inner.path
            );
            let mut events = client.watch(&path).await?;
            while let Some(ev) = events.recv().await {
                let ev = ev?;
                match ev.kind.as_str() {
                    "ADDED" | "MODIFIED" | "DELETED" => {
                        if let Some(v) = ev.object["metadata"]["resourceVersion"].as_str() {
                            rv = v.to_owned();
                        }
                        self.apply(&ev.kind, ev.object);
                    }
                    "BOOKMARK" => {
                        if let Some(v) = ev.object["metadata"]["resourceVersion"].as_str() {
                            rv = v.to_owned();
                        }
                    }
                    // 410 Gone (history compacted) and other errors: list again.
                    _ => return Ok(()),
                }
            }
        }
    }
}

/// The key of the object's controller if it is a `kind`.
pub fn owner_key(obj: &Value, kind: &str) -> Option<String> {
    let r = meta::controller_ref(obj)?;
    (r["kind"] == kind).then(|| meta::key(meta::namespace(obj), r["name"].as_str().unwrap_or("")))
}

/// Wakes owners of `kind` when their dependents change: the controller
/// named before and after the change and, for an orphan, each owner in its
/// namespace that `adopts` it (and would adopt it on its next sync).
pub fn enqueue_owners(
    dependents: &Informer,
    owners: &Informer,
    kind: &'static str,
    queue: &crate::queue::Queue,
    adopts: impl Fn(&Value, &Value) -> bool + Send + Sync + 'static,
) {
    let (q, owners) = (queue.clone(), owners.clone());
    dependents.on_change(move |ch| {
        if let Change::Updated { old, .. } = ch
            && let Some(k) = owner_key(old, kind)
        {
            q.add(&k);
        }
        let obj = ch.object();
        match owner_key(obj, kind) {
            Some(k) => q.add(&k),
            None if meta::controller_ref(obj).is_none() && !matches!(ch, Change::Deleted(_)) => {
                for owner in owners.list_in(meta::namespace(obj)) {
                    if adopts(&owner, obj) {
                        q.add(&meta::key_of(&owner));
                    }
                }
            }
            None => {}
        }
    });
}

/// The usual adoption rule: the owner's `spec.selector` matches.
pub fn selector_matches(owner: &Value, obj: &Value) -> bool {
    meta::selector(owner).matches_object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    fn pod(name: &str, rv: &str) -> Value {
        json!({"metadata": {"namespace": "ns", "name": name, "resourceVersion": rv}})
    }

    fn recorder(inf: &Informer) -> Arc<Mutex<Vec<String>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        inf.on_change(move |c| {
            let what = match c {
                Change::Added(o) => format!("add {}", meta::name(o)),
                Change::Updated { new, .. } => format!("update {}", meta::name(new)),
                Change::Deleted(o) => format!("delete {}", meta::name(o)),
            };
            s.lock().unwrap().push(what);
        });
        seen
    }

    #[test]
    fn relist_reports_the_difference() {
        let inf = Informer::new("/api/v1/pods");
        let seen = recorder(&inf);
        inf.replace(vec![pod("a", "1"), pod("b", "2")], "2");
        inf.replace(vec![pod("a", "1"), pod("b", "3"), pod("c", "4")], "4");
        inf.replace(vec![pod("c", "4")], "6");
        let mut got = seen.lock().unwrap().clone();
        // Within one relist the order is unspecified.
        got[..2].sort();
        got[2..4].sort();
        got[4..].sort();
        assert_eq!(got, ["add a", "add b", "add c", "update b", "delete a", "delete b"]);
    }

    #[test]
    fn an_assumed_write_is_not_replaced_by_an_older_event() {
        let inf = Informer::new("/api/v1/pods");
        inf.apply("ADDED", pod("a", "5"));
        inf.assume(&pod("a", "9"));
        inf.apply("MODIFIED", pod("a", "7"));
        assert_eq!(meta::resource_version(&inf.get("ns/a").unwrap()), "9");
        inf.apply("MODIFIED", pod("a", "10"));
        assert_eq!(meta::resource_version(&inf.get("ns/a").unwrap()), "10");
        inf.apply("DELETED", pod("a", "11"));
        assert!(inf.get("ns/a").is_none());
        assert_eq!(inf.list_in("ns").len(), 0);
    }

    #[test]
    fn a_relist_keeps_writes_assumed_after_the_list_was_read() {
        let inf = Informer::new("/api/v1/pods");
        inf.replace(vec![pod("a", "1")], "1");
        // Created and assumed at 5; the list served at 4 does not have it.
        inf.assume(&pod("b", "5"));
        inf.replace(vec![pod("a", "1")], "4");
        assert!(inf.get("ns/b").is_some());
        // A list at 6 without it means it is gone.
        inf.replace(vec![pod("a", "1")], "6");
        assert!(inf.get("ns/b").is_none());
    }
}
