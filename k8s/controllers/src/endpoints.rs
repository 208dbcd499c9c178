//! The Endpoints and EndpointSlice controllers, as upstream's: for every
//! Service with a selector, the pods it selects, by readiness. Endpoints
//! group addresses into subsets by their resolved ports (named target
//! ports are looked up per pod); EndpointSlices hold at most 100 endpoints
//! each with ready/serving/terminating conditions. Services without a
//! selector are left to their owners.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lichen_client::Client;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::informer::{Change, Informer};
use crate::queue::Queue;
use crate::{Error, Informers, meta};

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const MANAGER: &str = "endpointslice-controller.k8s.io";
const MAX_PER_SLICE: usize = 100;
const ENDPOINTS_MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
const ENDPOINTS_MANAGER: &str = "endpoint-controller";

#[derive(Clone)]
struct Controller {
    client: Client,
    services: Informer,
    pods: Informer,
    endpoints: Informer,
    slices: Informer,
}

pub fn start(tasks: &mut JoinSet<()>, client: &Client, informers: &Informers) {
    let queue = Queue::new();
    let c = Controller {
        client: client.clone(),
        services: informers.services.clone(),
        pods: informers.pods.clone(),
        endpoints: informers.endpoints.clone(),
        slices: informers.endpointslices.clone(),
    };
    let q = queue.clone();
    informers.services.on_change(move |ch| q.add(&meta::key_of(ch.object())));
    // A pod change touches the services selecting it, before and after.
    let (q, services) = (queue.clone(), informers.services.clone());
    informers.pods.on_change(move |ch| {
        let mut objs = vec![ch.object()];
        if let Change::Updated { old, .. } = ch {
            objs.push(old);
        }
        for svc in services.list_in(meta::namespace(ch.object())) {
            let Some(sel) = selector(&svc) else { continue };
            if objs.iter().any(|p| sel.matches_object(p)) {
                q.add(&meta::key_of(&svc));
            }
        }
    });
    // Someone removed or changed what we manage: put it back. Endpoints
    // of others (a Service without a selector) are left alone.
    let q = queue.clone();
    informers.endpoints.on_change(move |ch| {
        if matches!(ch, Change::Deleted(_))
            || meta::label(ch.object(), ENDPOINTS_MANAGED_BY) == Some(ENDPOINTS_MANAGER)
        {
            q.add(&meta::key_of(ch.object()));
        }
    });
    let q = queue.clone();
    informers.endpointslices.on_change(move |ch| {
        let o = ch.object();
        if meta::label(o, MANAGED_BY) == Some(MANAGER)
            && let Some(svc) = meta::label(o, SERVICE_NAME_LABEL)
        {
            q.add(&meta::key(meta::namespace(o), svc));
        }
    });
    let synced = vec![
        informers.services.clone(),
        informers.pods.clone(),
        informers.endpoints.clone(),
        informers.endpointslices.clone(),
    ];
    crate::spawn_workers(tasks, "endpoints", &queue, synced, 2, move |key| {
        let c = c.clone();
        async move { c.sync(&key).await }
    });
}

/// The Service's pod selector; `None` for services without one.
fn selector(svc: &Value) -> Option<lichen_apimachinery::selector::Selector> {
    let sel = svc["spec"]["selector"].as_object().filter(|m| !m.is_empty())?;
    let pairs = sel.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()));
    Some(lichen_apimachinery::selector::Selector::from_pairs(pairs))
}

/// One selected pod as an endpoint.
#[derive(Debug, Clone)]
struct Endpoint {
    ip: String,
    ready: bool,
    serving: bool,
    terminating: bool,
    node: String,
    hostname: Option<String>,
    pod: Arc<Value>,
}

/// A Service port resolved against one pod: (name, port, protocol, appProtocol).
type Port = (String, i64, String, Option<String>);

/// The pod's port for a service port's `targetPort` (a number, or the name
/// of a container port), as upstream's `FindPort`.
fn resolve(svc_port: &Value, pod: &Value) -> Option<i64> {
    let target = &svc_port["targetPort"];
    if let Some(n) = target.as_i64() {
        return Some(n);
    }
    let Some(name) = target.as_str() else { return svc_port["port"].as_i64() };
    if let Ok(n) = name.parse::<i64>() {
        return Some(n);
    }
    let proto = svc_port["protocol"].as_str().unwrap_or("TCP");
    pod["spec"]["containers"].as_array()?.iter().find_map(|c| {
        c["ports"].as_array()?.iter().find_map(|p| {
            (p["name"] == name && p["protocol"].as_str().unwrap_or("TCP") == proto)
                .then(|| p["containerPort"].as_i64())
                .flatten()
        })
    })
}

fn ports_for(svc: &Value, pod: &Value) -> Vec<Port> {
    svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p["name"].as_str().unwrap_or("").to_owned(),
                resolve(p, pod)?,
                p["protocol"].as_str().unwrap_or("TCP").to_owned(),
                p["appProtocol"].as_str().map(String::from),
            ))
        })
        .collect()
}

fn target_ref(pod: &Value) -> Value {
    json!({"kind": "Pod", "namespace": meta::namespace(pod), "name": meta::name(pod), "uid": meta::uid(pod)})
}

impl Controller {
    fn endpoints_of(&self, svc: &Value) -> Vec<Endpoint> {
        let Some(sel) = selector(svc) else { return Vec::new() };
        let publish_not_ready = svc["spec"]["publishNotReadyAddresses"] == true;
        let mut out = Vec::new();
        for pod in self.pods.list_in(meta::namespace(svc)) {
            if !sel.matches_object(&pod) {
                continue;
            }
            let phase = pod["status"]["phase"].as_str().unwrap_or("");
            let ip = pod["status"]["podIP"].as_str().unwrap_or("");
            if ip.is_empty() || phase == "Succeeded" || phase == "Failed" {
                continue;
            }
            let terminating = meta::is_terminating(&pod);
            let ready = meta::pod_ready(&pod);
            let hostname = match (pod["spec"]["hostname"].as_str(), pod["spec"]["subdomain"].as_str()) {
                (Some(h), Some(sub)) if sub == meta::name(svc) => Some(h.to_owned()),
                _ => None,
            };
            out.push(Endpoint {
                ip: ip.to_owned(),
                ready: (ready || publish_not_ready) && !terminating,
                serving: ready || publish_not_ready,
                terminating,
                node: pod["spec"]["nodeName"].as_str().unwrap_or("").to_owned(),
                hostname,
                pod,
            });
        }
        out.sort_by(|a, b| a.ip.cmp(&b.ip));
        out
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, Error> {
        let (ns, name) = meta::split_key(key);
        let svc = self.services.get(key);
        let managed = svc.as_deref().and_then(selector).is_some();
        if !managed {
            // Gone or selector-less: remove what we made.
            if svc.is_none()
                && let Some(ep) = self.endpoints.get(key)
                && meta::label(&ep, "endpoints.kubernetes.io/managed-by")
                    .is_none_or(|m| m == "endpoint-controller")
            {
                self.delete(&meta::path("v1", "endpoints", ns, name), &self.endpoints, key).await?;
            }
            for s in self.slices_of(ns, name) {
                let path = meta::path("discovery.k8s.io/v1", "endpointslices", ns, meta::name(&s));
                self.delete(&path, &self.slices, &meta::key_of(&s)).await?;
            }
            return Ok(None);
        }
        let Some(svc) = svc else { return Ok(None) };
        let eps = self.endpoints_of(&svc);
        self.sync_endpoints(&svc, &eps).await?;
        self.sync_slices(&svc, &eps).await?;
        Ok(None)
    }

    async fn delete(&self, path: &str, cache: &Informer, key: &str) -> Result<(), Error> {
        match self.client.delete(path, &json!({})).await {
            Ok(_) => {
                cache.assume_deleted(key);
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn slices_of(&self, ns: &str, svc: &str) -> Vec<Arc<Value>> {
        self.slices
            .list_in(ns)
            .into_iter()
            .filter(|s| {
                meta::label(s, SERVICE_NAME_LABEL) == Some(svc) && meta::label(s, MANAGED_BY) == Some(MANAGER)
            })
            .collect()
    }

    async fn sync_endpoints(&self, svc: &Value, eps: &[Endpoint]) -> Result<(), Error> {
        // Group by the resolved port set, as upstream's subset repacking.
        // Port set -> (ports, ready addresses, not-ready addresses).
        type Subset = (Vec<Port>, Vec<Value>, Vec<Value>);
        let mut subsets: BTreeMap<String, Subset> = BTreeMap::new();
        for e in eps.iter().filter(|e| !e.terminating) {
            let ports = ports_for(svc, &e.pod);
            if ports.is_empty() && svc["spec"]["clusterIP"] != "None" {
                continue;
            }
            let mut addr = json!({"ip": e.ip, "targetRef": target_ref(&e.pod)});
            if !e.node.is_empty() {
                addr["nodeName"] = json!(e.node);
            }
            if let Some(h) = &e.hostname {
                addr["hostname"] = json!(h);
            }
            let entry =
                subsets.entry(format!("{ports:?}")).or_insert_with(|| (ports, Vec::new(), Vec::new()));
            if e.ready { entry.1.push(addr) } else { entry.2.push(addr) }
        }
        let subsets: Vec<Value> = subsets
            .into_values()
            .map(|(ports, ready, not_ready)| {
                let ports: Vec<Value> = ports
                    .into_iter()
                    .map(|(name, port, proto, app)| {
                        let mut p = json!({"port": port, "protocol": proto});
                        if !name.is_empty() {
                            p["name"] = json!(name);
                        }
                        if let Some(a) = app {
                            p["appProtocol"] = json!(a);
                        }
                        p
                    })
                    .collect();
                let mut s = json!({"ports": ports});
                if !ready.is_empty() {
                    s["addresses"] = json!(ready);
                }
                if !not_ready.is_empty() {
                    s["notReadyAddresses"] = json!(not_ready);
                }
                s
            })
            .collect();
        let (ns, name) = (meta::namespace(svc), meta::name(svc));
        let mut labels = meta::labels(svc);
        labels.insert(ENDPOINTS_MANAGED_BY.into(), json!(ENDPOINTS_MANAGER));
        if svc["spec"]["clusterIP"] == "None" {
            labels.insert("service.kubernetes.io/headless".into(), json!(""));
        }
        let current = self.endpoints.get_in(ns, name);
        if let Some(cur) = &current
            && cur["subsets"].as_array().cloned().unwrap_or_default() == subsets
            && cur["metadata"]["labels"] == Value::Object(labels.clone())
        {
            return Ok(());
        }
        let mut obj = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "subsets": subsets,
        });
        let result = match &current {
            Some(cur) => {
                obj["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
                self.client.replace(&meta::path("v1", "endpoints", ns, name), &obj).await
            }
            None => self.client.create(&meta::path("v1", "endpoints", ns, ""), &obj).await,
        };
        self.endpoints.assume(&result?);
        Ok(())
    }

    async fn sync_slices(&self, svc: &Value, eps: &[Endpoint]) -> Result<(), Error> {
        let (ns, name) = (meta::namespace(svc), meta::name(svc));
        // Slices share one port list; pods whose named ports resolve
        // differently get slices of their own, as upstream.
        let mut groups: BTreeMap<String, (Vec<Port>, Vec<Value>)> = BTreeMap::new();
        for e in eps {
            let ports = ports_for(svc, &e.pod);
            let mut ep = json!({
                "addresses": [e.ip],
                "conditions": {"ready": e.ready, "serving": e.serving, "terminating": e.terminating},
                "targetRef": target_ref(&e.pod),
            });
            if !e.node.is_empty() {
                ep["nodeName"] = json!(e.node);
            }
            if let Some(h) = &e.hostname {
                ep["hostname"] = json!(h);
            }
            groups.entry(format!("{ports:?}")).or_insert_with(|| (ports, Vec::new())).1.push(ep);
        }
        let mut wanted: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
        for (ports, eps) in groups.into_values() {
            let ports: Vec<Value> = ports
                .into_iter()
                .map(|(n, port, proto, app)| {
                    let mut p = json!({"name": n, "port": port, "protocol": proto});
                    if let Some(a) = app {
                        p["appProtocol"] = json!(a);
                    }
                    p
                })
                .collect();
            for chunk in eps.chunks(MAX_PER_SLICE) {
                wanted.push((ports.clone(), chunk.to_vec()));
            }
        }
        if wanted.is_empty() {
            // An empty slice still says the service has no endpoints.
            let ports: Vec<Value> = Vec::new();
            wanted.push((ports, Vec::new()));
        }
        let mut existing = self.slices_of(ns, name);
        existing.sort_by_key(|s| meta::name(s).to_owned());
        let mut labels = meta::labels(svc);
        labels.insert(SERVICE_NAME_LABEL.into(), json!(name));
        labels.insert(MANAGED_BY.into(), json!(MANAGER));
        if svc["spec"]["clusterIP"] == "None" {
            labels.insert("service.kubernetes.io/headless".into(), json!(""));
        }
        let owner = json!({"apiVersion": "v1", "kind": "Service", "name": name, "uid": meta::uid(svc),
                           "controller": true, "blockOwnerDeletion": true});
        let path = meta::path("discovery.k8s.io/v1", "endpointslices", ns, "");
        for (i, (ports, endpoints)) in wanted.iter().enumerate() {
            let body = |meta_extra: Value| {
                let mut m = json!({"namespace": ns, "labels": labels, "ownerReferences": [owner]});
                for (k, v) in meta_extra.as_object().into_iter().flatten() {
                    m[k] = v.clone();
                }
                json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": m,
                       "addressType": "IPv4", "endpoints": endpoints, "ports": ports})
            };
            match existing.get(i) {
                Some(cur) => {
                    let same = cur["endpoints"].as_array().cloned().unwrap_or_default() == *endpoints
                        && cur["ports"].as_array().cloned().unwrap_or_default() == *ports
                        && cur["metadata"]["labels"] == Value::Object(labels.clone());
                    if same {
                        continue;
                    }
                    let obj = body(
                        json!({"name": meta::name(cur), "resourceVersion": meta::resource_version(cur)}),
                    );
                    let p = meta::path("discovery.k8s.io/v1", "endpointslices", ns, meta::name(cur));
                    match self.client.replace(&p, &obj).await {
                        Ok(v) => self.slices.assume(&v),
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                None => {
                    let obj = body(json!({"generateName": format!("{name}-")}));
                    let v = self.client.create(&path, &obj).await?;
                    self.slices.assume(&v);
                }
            }
        }
        for extra in existing.iter().skip(wanted.len()) {
            let p = meta::path("discovery.k8s.io/v1", "endpointslices", ns, meta::name(extra));
            self.delete(&p, &self.slices, &meta::key_of(extra)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let pod = json!({"spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}, {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}]}});
        assert_eq!(resolve(&json!({"port": 80, "targetPort": "http"}), &pod), Some(8080));
        assert_eq!(resolve(&json!({"port": 53, "targetPort": "dns", "protocol": "UDP"}), &pod), Some(53));
        assert_eq!(resolve(&json!({"port": 53, "targetPort": "dns"}), &pod), None);
        assert_eq!(resolve(&json!({"port": 80, "targetPort": 9090}), &pod), Some(9090));
        assert_eq!(resolve(&json!({"port": 80}), &pod), Some(80));
    }
}
