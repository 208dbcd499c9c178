//! The ownership graph for garbage collection: which objects name which
//! owners, kept from the finalizer worker's watch of all objects. When an
//! owner goes, dependents with no owner left are deleted (background
//! propagation, upstream's garbage collector). It lives in the API server
//! until the controllers take it over.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::objects;

#[derive(Debug, Default)]
pub struct Graph {
    /// uid -> key of every live object.
    keys: HashMap<String, String>,
    /// key -> (uid, owner uids).
    nodes: HashMap<String, (String, Vec<String>)>,
    /// owner uid -> keys of the objects that name it.
    dependents: HashMap<String, BTreeSet<String>>,
}

impl Graph {
    /// Records the current version of the object at `key`.
    pub fn put(&mut self, key: &str, obj: &Value) {
        self.remove(key);
        let uid = objects::meta_str(obj, "uid").unwrap_or("").to_string();
        let owners: Vec<String> = objects::meta(obj)["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["uid"].as_str().map(String::from))
            .collect();
        for o in &owners {
            self.dependents.entry(o.clone()).or_default().insert(key.to_string());
        }
        if !uid.is_empty() {
            self.keys.insert(uid.clone(), key.to_string());
        }
        self.nodes.insert(key.to_string(), (uid, owners));
    }

    /// Forgets the object at `key`; returns its uid.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let (uid, owners) = self.nodes.remove(key)?;
        for o in owners {
            if let Some(d) = self.dependents.get_mut(&o) {
                d.remove(key);
                if d.is_empty() {
                    self.dependents.remove(&o);
                }
            }
        }
        if self.keys.get(&uid).is_some_and(|k| k == key) {
            self.keys.remove(&uid);
        }
        Some(uid)
    }

    /// Keys of the objects that name `uid` as an owner.
    pub fn dependents_of(&self, uid: &str) -> Vec<String> {
        self.dependents.get(uid).map(|d| d.iter().cloned().collect()).unwrap_or_default()
    }

    /// Whether every owner the object at `key` names is gone.
    pub fn orphaned(&self, key: &str) -> bool {
        self.nodes.get(key).is_some_and(|(_, owners)| {
            !owners.is_empty() && owners.iter().all(|o| !self.keys.contains_key(o))
        })
    }

    /// Every object whose owners are all gone.
    pub fn all_orphans(&self) -> Vec<String> {
        self.nodes.keys().filter(|k| self.orphaned(k)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(uid: &str, owners: &[&str]) -> Value {
        let refs: Vec<Value> = owners.iter().map(|o| json!({"uid": o})).collect();
        json!({"metadata": {"uid": uid, "ownerReferences": refs}})
    }

    #[test]
    fn dependents_are_orphaned_when_all_owners_go() {
        let mut g = Graph::default();
        g.put("/a", &obj("A", &[]));
        g.put("/b", &obj("B", &[]));
        g.put("/c", &obj("C", &["A", "B"]));
        assert_eq!(g.dependents_of("A"), ["/c"]);
        assert_eq!(g.remove("/a").as_deref(), Some("A"));
        assert!(!g.orphaned("/c"));
        g.remove("/b");
        assert!(g.orphaned("/c"));
        assert_eq!(g.all_orphans(), ["/c"]);
        g.put("/c", &obj("C", &[]));
        assert!(g.all_orphans().is_empty() && g.dependents_of("B").is_empty());
    }
}
