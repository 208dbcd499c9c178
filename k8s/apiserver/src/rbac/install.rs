//! Writes the default roles and bindings at start, and the rules of the
//! aggregated ClusterRoles as upstream's aggregation controller would, so
//! `kubectl get clusterrole view -o yaml` shows them. (Authorization never
//! reads those stored rules: it aggregates the live roles itself.)

use lichen_store::StoreError;
use serde_json::{Value, json};

use super::{Policy, cache, defaults};
use crate::api::Api;
use crate::objects;

const GROUP: &str = "rbac.authorization.k8s.io";

/// Creates the default ClusterRoles and ClusterRoleBindings that are
/// missing (existing ones, maybe edited by an admin, are kept), then
/// brings the stored rules of aggregated ClusterRoles up to date.
pub fn ensure(api: &Api) -> Result<(), StoreError> {
    for (plural, objs) in [
        ("clusterroles", defaults::cluster_roles()),
        ("clusterrolebindings", defaults::cluster_role_bindings()),
    ] {
        let Some(res) = api.find(GROUP, "v1", plural) else { continue };
        for mut obj in objs {
            let Some(name) = obj.pointer("/metadata/name").and_then(Value::as_str).map(String::from) else {
                continue;
            };
            let key = objects::key(&res, "", &name);
            if api.store.get(&key, None)?.is_some() {
                continue;
            }
            obj["metadata"]["uid"] = json!(objects::new_uid());
            obj["metadata"]["creationTimestamp"] = json!(objects::now_rfc3339());
            match api.store.create(&key, &encode(&obj)?) {
                Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    write_aggregated_rules(api)
}

fn encode(obj: &Value) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(obj).map_err(|e| StoreError::Corrupt { reason: e.to_string() })
}

/// Sets `rules` of every ClusterRole with an `aggregationRule` to the
/// union its selectors give, where it differs.
pub fn write_aggregated_rules(api: &Api) -> Result<(), StoreError> {
    let Some(res) = api.find(GROUP, "v1", "clusterroles") else { return Ok(()) };
    let roles = cache::objects_of(api, "clusterroles", None)?;
    let policy = Policy::new(&roles, &[], &[], &[]);
    for role in roles.iter().filter(|r| r.get("aggregationRule").is_some_and(|a| !a.is_null())) {
        let Some(name) = role.pointer("/metadata/name").and_then(Value::as_str) else { continue };
        let Some(rules) = policy.cluster_role(name) else { continue };
        let rules: Vec<Value> = rules.iter().map(|r| r.to_json()).collect();
        let current = role.get("rules").cloned().unwrap_or(Value::Null);
        if current == json!(rules) || (rules.is_empty() && current.is_null()) {
            continue;
        }
        let key = objects::key(&res, "", name);
        let Some(kv) = api.store.get(&key, None)? else { continue };
        let mut updated = role.clone();
        updated["rules"] = json!(rules);
        match api.store.update(&key, &encode(&updated)?, kv.mod_revision) {
            // Someone changed it meanwhile; evaluation does not depend on it.
            Ok(_) | Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::services::ServiceCidr;
    use lichen_store::{MemoryStore, Store};

    fn get(store: &dyn Store, key: &str) -> Value {
        let kv = store.get(key, None).unwrap().unwrap();
        serde_json::from_slice(&kv.value).unwrap()
    }

    #[test]
    fn creates_defaults_once_and_writes_aggregated_rules() {
        let api = Api::new(Arc::new(MemoryStore::new()), ServiceCidr::default());
        ensure(&api).unwrap();
        let admin =
            get(api.store.as_ref(), "/registry/rbac.authorization.k8s.io/clusterrolebindings/cluster-admin");
        assert_eq!(admin["subjects"][0]["name"], "system:masters");
        assert!(admin["metadata"]["uid"].is_string());
        let view = get(api.store.as_ref(), "/registry/rbac.authorization.k8s.io/clusterroles/view");
        let rules = view["rules"].as_array().unwrap();
        assert!(rules.iter().any(|r| r["resources"].as_array().unwrap().iter().any(|x| x == "pods/log")));
        let rev = api.store.current_revision().unwrap();
        ensure(&api).unwrap();
        assert_eq!(api.store.current_revision().unwrap(), rev, "a second start writes nothing");
    }
}
