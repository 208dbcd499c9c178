//! What exists in every cluster before anyone asks: the system namespaces
//! (upstream's bootstrap controller creates the same four), and the default
//! RBAC roles and bindings ([`crate::rbac::defaults`]).

use lichen_store::StoreError;
use serde_json::json;

use crate::api::Api;
use crate::objects;

pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates the system namespaces and the `kubernetes` Service if missing;
/// `api_port` is where the API server listens.
pub fn ensure(api: &Api, api_port: u16) -> Result<(), StoreError> {
    namespaces(api)?;
    kubernetes_service(api, api_port)?;
    crate::rbac::install::ensure(api)
}

fn create(api: &Api, key: &str, obj: &serde_json::Value) -> Result<(), StoreError> {
    let value = serde_json::to_vec(obj).map_err(|e| StoreError::Corrupt { reason: e.to_string() })?;
    match api.store.create(key, &value) {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `default/kubernetes`: the first address of the service range, port 443
/// to the API server's port.
fn kubernetes_service(api: &Api, api_port: u16) -> Result<(), StoreError> {
    let Some(res) = api.find("", "v1", "services") else { return Ok(()) };
    let key = objects::key(&res, "default", "kubernetes");
    if api.store.get(&key, None)?.is_some() {
        return Ok(());
    }
    let ip = api.service_cidr.nth(1).to_string();
    let svc = json!({
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "uid": objects::new_uid(),
            "creationTimestamp": objects::now_rfc3339(),
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ip,
            "clusterIPs": [ip],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
            "sessionAffinity": "None",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": api_port}],
        },
        "status": {"loadBalancer": {}},
    });
    create(api, &key, &svc)
}

fn namespaces(api: &Api) -> Result<(), StoreError> {
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
        create(api, &key, &ns)?;
    }
    Ok(())
}
