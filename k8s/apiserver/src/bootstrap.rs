//! What exists in every cluster before anyone asks: the system namespaces
//! (upstream's bootstrap controller creates the same four), the
//! `kubernetes` Service and its endpoints, and the default RBAC roles and
//! bindings ([`crate::rbac::defaults`]).

use lichen_store::StoreError;
use serde_json::json;

use crate::api::Api;
use crate::objects;

pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates the system namespaces and the `kubernetes` Service if missing;
/// `api_port` is where the API server listens. With an `advertise`
/// address, the Service's Endpoints and EndpointSlice point there (as
/// upstream's endpoint reconciler does for one API server), so pods reach
/// the API through the service IP.
pub fn ensure(api: &Api, api_port: u16, advertise: Option<std::net::IpAddr>) -> Result<(), StoreError> {
    namespaces(api)?;
    kubernetes_service(api, api_port)?;
    if let Some(ip) = advertise {
        kubernetes_endpoints(api, ip, api_port)?;
    }
    crate::rbac::install::ensure(api)
}

/// Creates `obj` at `key`, or replaces the fields in `desired` (top-level
/// keys) of what is there when they differ; metadata is kept.
fn upsert(api: &Api, key: &str, obj: serde_json::Value, desired: &[&str]) -> Result<(), StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt { reason: e.to_string() };
    let Some(kv) = api.store.get(key, None)? else {
        return create(api, key, &obj);
    };
    let mut current: serde_json::Value = serde_json::from_slice(&kv.value).map_err(corrupt)?;
    if desired.iter().all(|f| current[*f] == obj[*f]) {
        return Ok(());
    }
    for f in desired {
        current[*f] = obj[*f].clone();
    }
    let value = serde_json::to_vec(&current).map_err(corrupt)?;
    match api.store.update(key, &value, kv.mod_revision) {
        // Someone else wrote it meanwhile: theirs stands until next start.
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `default/kubernetes` Endpoints and EndpointSlice: `ip:api_port`.
fn kubernetes_endpoints(api: &Api, ip: std::net::IpAddr, api_port: u16) -> Result<(), StoreError> {
    let labels = json!({"endpointslice.kubernetes.io/skip-mirror": "true"});
    if let Some(res) = api.find("", "v1", "endpoints") {
        let ep = json!({
            "kind": "Endpoints",
            "apiVersion": "v1",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "uid": objects::new_uid(),
                "creationTimestamp": objects::now_rfc3339(),
                "labels": labels,
            },
            "subsets": [{
                "addresses": [{"ip": ip.to_string()}],
                "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}],
            }],
        });
        upsert(api, &objects::key(&res, "default", "kubernetes"), ep, &["subsets"])?;
    }
    if let Some(res) = api.find("discovery.k8s.io", "v1", "endpointslices") {
        let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
        let slice = json!({
            "kind": "EndpointSlice",
            "apiVersion": "discovery.k8s.io/v1",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "uid": objects::new_uid(),
                "creationTimestamp": objects::now_rfc3339(),
                "labels": {"kubernetes.io/service-name": "kubernetes"},
            },
            "addressType": family,
            "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true, "serving": true, "terminating": false}}],
            "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}],
        });
        upsert(
            api,
            &objects::key(&res, "default", "kubernetes"),
            slice,
            &["addressType", "endpoints", "ports"],
        )?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lichen_store::MemoryStore;

    use super::*;

    fn read(api: &Api, resource: &str, group: &str) -> serde_json::Value {
        let res = api.find(group, "v1", resource).unwrap();
        let kv = api.store.get(&objects::key(&res, "default", "kubernetes"), None).unwrap().unwrap();
        serde_json::from_slice(&kv.value).unwrap()
    }

    #[test]
    fn kubernetes_endpoints_follow_the_advertised_address() {
        let api = Api::new(Arc::new(MemoryStore::new()), crate::services::ServiceCidr::default());
        ensure(&api, 6443, Some("10.0.2.15".parse().unwrap())).unwrap();
        let ep = read(&api, "endpoints", "");
        assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "10.0.2.15");
        assert_eq!(ep["subsets"][0]["ports"][0]["port"], 6443);
        let slice = read(&api, "endpointslices", "discovery.k8s.io");
        assert_eq!(slice["endpoints"][0]["addresses"][0], "10.0.2.15");
        assert_eq!(slice["metadata"]["labels"]["kubernetes.io/service-name"], "kubernetes");
        let uid = slice["metadata"]["uid"].clone();

        // A new address after a reboot (DHCP) replaces the old; the object stays.
        ensure(&api, 6443, Some("10.0.2.16".parse().unwrap())).unwrap();
        let slice = read(&api, "endpointslices", "discovery.k8s.io");
        assert_eq!(slice["endpoints"][0]["addresses"][0], "10.0.2.16");
        assert_eq!(slice["metadata"]["uid"], uid);
        assert_eq!(read(&api, "endpoints", "")["subsets"][0]["addresses"][0]["ip"], "10.0.2.16");
    }
}
