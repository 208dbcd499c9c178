//! The [`Policy`] of the store's current revision, rebuilt when the
//! revision moves: a change to a role or binding is seen by the next
//! request.

use std::sync::{Arc, Mutex};

use lichen_store::{Revision, StoreError};
use serde_json::Value;

use super::Policy;
use crate::api::Api;
use crate::objects;

/// The four RBAC kinds, in the order [`Policy::new`] takes them.
const KINDS: [&str; 4] = ["clusterroles", "roles", "clusterrolebindings", "rolebindings"];
const GROUP: &str = "rbac.authorization.k8s.io";

#[derive(Default)]
pub struct Cache {
    slot: Mutex<Option<(Revision, Arc<Policy>)>>,
}

impl Cache {
    /// The policy now. Blocks on the store: call off the async threads.
    pub fn policy(&self, api: &Api) -> Result<Arc<Policy>, StoreError> {
        let revision = api.store.current_revision()?;
        if let Some((r, p)) = self.slot.lock().ok().as_deref().and_then(Option::as_ref)
            && *r == revision
        {
            return Ok(p.clone());
        }
        let policy = Arc::new(load(api, revision)?);
        if let Ok(mut slot) = self.slot.lock() {
            // Keep the newer of two concurrent loads.
            if slot.as_ref().is_none_or(|(r, _)| *r < revision) {
                *slot = Some((revision, policy.clone()));
            }
        }
        Ok(policy)
    }
}

/// The stored objects of one RBAC kind (all namespaces) at `revision`.
pub fn objects_of(api: &Api, plural: &str, revision: Option<Revision>) -> Result<Vec<Value>, StoreError> {
    let Some(res) = api.find(GROUP, "v1", plural) else { return Ok(Vec::new()) };
    let listed = api.store.list(&objects::prefix(&res, ""), None, None, revision)?;
    Ok(listed.items.iter().filter_map(|kv| serde_json::from_slice(&kv.value).ok()).collect())
}

fn load(api: &Api, revision: Revision) -> Result<Policy, StoreError> {
    let at = (revision > 0).then_some(revision);
    let [cr, r, crb, rb] = KINDS.map(|k| objects_of(api, k, at));
    Ok(Policy::new(&cr?, &r?, &crb?, &rb?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::Identity;
    use crate::rbac::Request;
    use crate::services::ServiceCidr;
    use lichen_store::MemoryStore;
    use serde_json::json;

    #[test]
    fn sees_changes_at_the_next_call() {
        let api = Api::new(Arc::new(MemoryStore::new()), ServiceCidr::default());
        let cache = Cache::default();
        let bob = Identity {
            user: "bob".into(),
            uid: String::new(),
            groups: Vec::new(),
            extra: Default::default(),
        };
        let metrics = Request::NonResource { verb: "get".into(), path: "/metrics".into() };
        assert!(!cache.policy(&api).unwrap().authorize(&bob, &metrics).allowed);
        let role = json!({"metadata": {"name": "m"}, "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]});
        let binding = json!({
            "metadata": {"name": "m"},
            "roleRef": {"kind": "ClusterRole", "name": "m"},
            "subjects": [{"kind": "User", "name": "bob"}],
        });
        api.store
            .create("/registry/rbac.authorization.k8s.io/clusterroles/m", role.to_string().as_bytes())
            .unwrap();
        let first = cache.policy(&api).unwrap();
        assert!(Arc::ptr_eq(&first, &cache.policy(&api).unwrap()), "same revision, same policy");
        assert!(!first.authorize(&bob, &metrics).allowed);
        api.store
            .create(
                "/registry/rbac.authorization.k8s.io/clusterrolebindings/m",
                binding.to_string().as_bytes(),
            )
            .unwrap();
        assert!(cache.policy(&api).unwrap().authorize(&bob, &metrics).allowed);
    }
}
