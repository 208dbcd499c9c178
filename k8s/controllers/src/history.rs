//! ControllerRevisions, as upstream's `pkg/controller/history`: an
//! immutable snapshot of a DaemonSet's or StatefulSet's pod template,
//! stored as the strategic merge patch that puts it back
//! (`{"spec":{"template":{..., "$patch":"replace"}}}`), numbered by
//! `revision`. `kubectl rollout history` reads them (owned by the object,
//! matching its selector) and `kubectl rollout undo` applies a revision's
//! `data` to the object.

use std::collections::HashSet;
use std::sync::Arc;

use lichen_client::Client;
use serde_json::{Value, json};

use crate::informer::Informer;
use crate::{Error, meta};

/// Upstream's `ControllerRevisionHashLabel`: the hash of the revision's data.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// The patch that restores `obj`'s pod template (upstream's `getPatch`).
pub fn template_patch(obj: &Value) -> Value {
    let mut template = obj["spec"]["template"].clone();
    if !template.is_object() {
        template = json!({});
    }
    template["$patch"] = json!("replace");
    json!({"spec": {"template": template}})
}

/// Upstream's `rand.SafeEncodeString` of a number's decimal digits: no
/// vowels, no look-alike characters.
pub fn safe_encode(n: u32) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    n.to_string().bytes().map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char).collect()
}

/// Upstream's `HashControllerRevision`: FNV-1 (32 bit) of the data as
/// compact JSON (keys sorted, as Go marshals maps) and, when probing after
/// a name collision, the collision count's decimal digits.
pub fn hash(data: &Value, collision_count: Option<i64>) -> String {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h = h.wrapping_mul(0x0100_0193);
            h ^= u32::from(*b);
        }
    };
    feed(data.to_string().as_bytes());
    if let Some(c) = collision_count {
        feed(c.to_string().as_bytes());
    }
    safe_encode(h)
}

/// Upstream's `ControllerRevisionName`: `<owner>-<hash>`, the owner's
/// name cut to 223 characters so the result is a valid name.
pub fn revision_name(owner: &str, hash: &str) -> String {
    let prefix: String = owner.chars().take(223).collect();
    format!("{prefix}-{hash}")
}

pub fn number(rev: &Value) -> i64 {
    rev["revision"].as_i64().unwrap_or(0)
}

/// Oldest revision first (upstream's `SortControllerRevisions`).
pub fn sort(revs: &mut [Arc<Value>]) {
    revs.sort_by(|a, b| {
        (number(a), meta::creation(a), meta::name(a)).cmp(&(number(b), meta::creation(b), meta::name(b)))
    });
}

/// The number after the highest.
pub fn next_number(revs: &[Arc<Value>]) -> i64 {
    revs.iter().map(|r| number(r)).max().unwrap_or(0) + 1
}

/// Upstream's `EqualRevision`: differing hash labels mean different
/// revisions; otherwise the data decides.
pub fn equal(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (meta::label(a, HASH_LABEL), meta::label(b, HASH_LABEL))
        && x != y
    {
        return false;
    }
    a["data"] == b["data"]
}

/// A new revision of `owner` (upstream's `NewControllerRevision`): the
/// template's labels plus the hash label, the owner as controller, its
/// annotations, named after the hash of `data`.
pub fn new_revision(owner: &Value, kind: &str, data: Value, revision: i64, collision_count: i64) -> Value {
    let mut labels = owner["spec"]["template"]["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    let h = hash(&data, Some(collision_count));
    labels.insert(HASH_LABEL.into(), json!(h));
    let mut metadata = json!({
        "name": revision_name(meta::name(owner), &h),
        "namespace": meta::namespace(owner),
        "labels": labels,
        "ownerReferences": [meta::owner_ref(owner, "apps/v1", kind)],
    });
    let mut annotations = owner["metadata"]["annotations"].as_object().cloned().unwrap_or_default();
    annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    if !annotations.is_empty() {
        metadata["annotations"] = Value::Object(annotations);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": metadata,
        "data": data,
        "revision": revision,
    })
}

/// Old revisions to delete so at most `limit` remain, oldest first,
/// skipping those still `live` (in use by a pod or as current/update).
pub fn to_trim<'a>(old: &'a [Arc<Value>], limit: i64, live: &HashSet<String>) -> Vec<&'a Arc<Value>> {
    let candidates: Vec<&Arc<Value>> = old.iter().filter(|r| !live.contains(meta::name(r))).collect();
    let extra = usize::try_from(i64::try_from(candidates.len()).unwrap_or(0) - limit.max(0)).unwrap_or(0);
    candidates.into_iter().take(extra).collect()
}

/// Reads and writes the revisions of one kind of owner.
#[derive(Clone)]
pub struct History {
    pub client: Client,
    pub revisions: Informer,
}

impl History {
    /// The revisions `owner` controls, after adopting orphans that match
    /// its selector (upstream's `adoptOrphanRevisions`), oldest first.
    pub async fn owned(&self, owner: &Value, kind: &str) -> Result<Vec<Arc<Value>>, Error> {
        let selector = meta::selector(owner);
        let uid = meta::uid(owner);
        let mut owned = Vec::new();
        for rev in self.revisions.list_in(meta::namespace(owner)) {
            if meta::controller_uid(&rev) == uid {
                owned.push(rev);
            } else if meta::controller_ref(&rev).is_none()
                && !selector.is_empty()
                && selector.matches_object(&rev)
                && !meta::is_terminating(owner)
            {
                let mut refs = rev["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default();
                refs.push(meta::owner_ref(owner, "apps/v1", kind));
                let patch = json!({"metadata": {"ownerReferences": refs, "uid": meta::uid(&rev)}});
                match self.client.patch(&path_of(&rev), lichen_client::PatchType::Merge, &patch).await {
                    Ok(v) => {
                        self.revisions.assume(&v);
                        owned.push(Arc::new(v));
                    }
                    Err(e) if e.is_not_found() || e.is_conflict() => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        sort(&mut owned);
        Ok(owned)
    }

    /// Creates `rev`; on a name taken by other data, bumps
    /// `collision_count` and tries the next name (upstream's
    /// `CreateControllerRevision`).
    pub async fn create(
        &self,
        owner: &Value,
        rev: &Value,
        collision_count: &mut i64,
    ) -> Result<Value, Error> {
        let ns = meta::namespace(owner);
        let mut rev = rev.clone();
        for _ in 0..20 {
            let h = hash(&rev["data"], Some(*collision_count));
            rev["metadata"]["name"] = json!(revision_name(meta::name(owner), &h));
            match self.client.create(&meta::path("apps/v1", "controllerrevisions", ns, ""), &rev).await {
                Ok(v) => {
                    self.revisions.assume(&v);
                    return Ok(v);
                }
                Err(e) if e.is_conflict() => {
                    let path = path_of(&rev);
                    if let Some(existing) = self.client.get_opt(&path).await?
                        && existing["data"] == rev["data"]
                    {
                        self.revisions.assume(&existing);
                        return Ok(existing);
                    }
                    *collision_count += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Invalid(format!("controller revision names of {} keep colliding", meta::name(owner))))
    }

    /// Gives an existing revision a new number (a rollback to it).
    pub async fn renumber(&self, rev: &Value, number: i64) -> Result<Value, Error> {
        let patch = json!({"revision": number, "metadata": {"uid": meta::uid(rev)}});
        let v = self.client.patch(&path_of(rev), lichen_client::PatchType::Merge, &patch).await?;
        self.revisions.assume(&v);
        Ok(v)
    }

    pub async fn delete(&self, rev: &Value) -> Result<(), Error> {
        let opts = json!({"preconditions": {"uid": meta::uid(rev)}});
        match self.client.delete(&path_of(rev), &opts).await {
            Ok(_) => {
                self.revisions.assume_deleted(&meta::key_of(rev));
                Ok(())
            }
            Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn path_of(rev: &Value) -> String {
    meta::path("apps/v1", "controllerrevisions", meta::namespace(rev), meta::name(rev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(image: &str) -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "annotations": {"kubernetes.io/change-cause": "x"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            }},
        })
    }

    #[test]
    fn the_patch_replaces_the_template_and_serializes_with_sorted_keys() {
        let p = template_patch(&set("a"));
        assert_eq!(p["spec"]["template"]["$patch"], "replace");
        assert_eq!(p["spec"]["template"]["spec"]["containers"][0]["image"], "a");
        // As Go marshals a map: keys sorted, "$patch" first.
        assert!(p.to_string().starts_with(r#"{"spec":{"template":{"$patch":"replace","metadata""#));
    }

    #[test]
    fn fnv1_hash_is_upstreams() {
        // FNV-1 (not 1a) of "" is the offset basis; of "a" it is 0x050c5d7e.
        let mut h: u32 = 0x811c_9dc5;
        h = h.wrapping_mul(0x0100_0193);
        h ^= u32::from(b'a');
        assert_eq!(h, 0x050c_5d7e);
        assert_eq!(safe_encode(0x050c_5d7e), safe_encode(h));
        // Each digit's byte value picks a letter: '1' (49) -> '5', '0' (48) -> '4'.
        assert_eq!(safe_encode(10), "54");
    }

    #[test]
    fn revisions_are_named_by_the_hash_of_their_data() {
        let a = new_revision(&set("a"), "StatefulSet", template_patch(&set("a")), 1, 0);
        let b = new_revision(&set("b"), "StatefulSet", template_patch(&set("b")), 2, 0);
        let h = meta::label(&a, HASH_LABEL).unwrap();
        assert_eq!(meta::name(&a), format!("web-{h}"));
        assert_eq!(h, hash(&a["data"], Some(0)));
        assert_ne!(meta::name(&a), meta::name(&b));
        assert_ne!(hash(&a["data"], Some(0)), hash(&a["data"], Some(1)));
        assert_eq!(meta::label(&a, "app"), Some("web"));
        assert_eq!(a["revision"], 1);
        assert_eq!(a["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
        assert_eq!(a["metadata"]["annotations"]["kubernetes.io/change-cause"], "x");
        assert!(equal(&a, &new_revision(&set("a"), "StatefulSet", template_patch(&set("a")), 7, 0)));
        assert!(!equal(&a, &b));
        let long = "x".repeat(300);
        assert_eq!(revision_name(&long, "h").len(), 225);
    }

    #[test]
    fn trimming_keeps_the_limit_and_live_revisions() {
        let rev = |name: &str, n: i64| Arc::new(json!({"metadata": {"name": name}, "revision": n}));
        let mut old = vec![rev("r3", 3), rev("r1", 1), rev("r2", 2), rev("r4", 4)];
        sort(&mut old);
        assert_eq!(next_number(&old), 5);
        let live: HashSet<String> = ["r1".to_owned()].into();
        let names: Vec<&str> = to_trim(&old, 1, &live).iter().map(|r| meta::name(r)).collect();
        assert_eq!(names, ["r2", "r3"]);
        assert!(to_trim(&old, 10, &HashSet::new()).is_empty());
        assert_eq!(to_trim(&old, 0, &HashSet::new()).len(), 4);
    }
}
