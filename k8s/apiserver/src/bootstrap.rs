//! What exists in every cluster before anyone asks: the system namespaces
//! (upstream's bootstrap controller creates the same four).

use lichen_store::StoreError;
use serde_json::json;

use crate::api::Api;
use crate::objects;

pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates the system namespaces that are missing.
pub fn ensure(api: &Api) -> Result<(), StoreError> {
    let Some(nsres) = api.find("", "v1", "namespaces") else { return Ok(()) };
    for name in SYSTEM_NAMESPACES {
        let key = objects::key(&nsres, "", name);
        if api.store.get(&key, None)?.is_some() {
            continue;
        }
        let ns = json!({
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "uid": objects::new_uid(),
                "creationTimestamp": objects::now_rfc3339(),
                "labels": {"kubernetes.io/metadata.name": name},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        let value = serde_json::to_vec(&ns).map_err(|e| StoreError::Corrupt { reason: e.to_string() })?;
        match api.store.create(&key, &value) {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
