//! A container's environment as upstream's kubelet builds it: service
//! links, `envFrom`, `env` with `valueFrom` (fieldRef, resourceFieldRef,
//! configMapKeyRef, secretKeyRef) and `$(VAR)` expansion. Errors are the
//! `CreateContainerConfigError` messages users know.

use std::collections::{BTreeMap, HashMap};

use lichen_apimachinery::quantity::Quantity;
use serde_json::json;

use super::volumes::decode_data;
use crate::Agent;
use crate::client::ClientError;
use crate::spec::{Container, Pod, ResourceFieldRef, ServiceAccountToken};

/// Fetches ConfigMaps, Secrets and Services of the pod's namespace once
/// per sync.
pub struct Lookup {
    agent: Agent,
    namespace: String,
    config_maps: HashMap<String, Option<BTreeMap<String, Vec<u8>>>>,
    secrets: HashMap<String, Option<BTreeMap<String, Vec<u8>>>>,
}

impl Lookup {
    pub fn new(agent: &Agent, namespace: &str) -> Lookup {
        Lookup {
            agent: agent.clone(),
            namespace: namespace.to_owned(),
            config_maps: HashMap::new(),
            secrets: HashMap::new(),
        }
    }

    pub async fn config_map(&mut self, name: &str) -> Result<Option<BTreeMap<String, Vec<u8>>>, ClientError> {
        self.fetch(false, name).await
    }

    pub async fn secret(&mut self, name: &str) -> Result<Option<BTreeMap<String, Vec<u8>>>, ClientError> {
        self.fetch(true, name).await
    }

    /// A ConfigMap's or Secret's data by key (`None`: no such object),
    /// fetched once per lookup.
    async fn fetch(
        &mut self,
        secret: bool,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, ClientError> {
        let (cache, plural) =
            if secret { (&mut self.secrets, "secrets") } else { (&mut self.config_maps, "configmaps") };
        if let Some(v) = cache.get(name) {
            return Ok(v.clone());
        }
        let path = format!("/api/v1/namespaces/{}/{plural}/{name}", self.namespace);
        let v = self.agent.client.get_opt(&path).await?.map(|o| decode_data(&o, secret));
        cache.insert(name.to_owned(), v.clone());
        Ok(v)
    }

    /// A bound service-account token through the TokenRequest API.
    pub async fn service_account_token(
        &mut self,
        pod: &Pod,
        t: &ServiceAccountToken,
    ) -> Result<String, String> {
        let sa = pod.spec.service_account_name.as_deref().unwrap_or("default");
        let path = format!("/api/v1/namespaces/{}/serviceaccounts/{sa}/token", self.namespace);
        let mut spec = json!({
            "expirationSeconds": t.expiration_seconds.unwrap_or(3607),
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod.metadata.name, "uid": pod.metadata.uid},
        });
        if let Some(a) = &t.audience {
            spec["audiences"] = json!([a]);
        }
        let req = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec});
        let resp =
            self.agent.client.create(&path, &req).await.map_err(|e| format!("failed to fetch token: {e}"))?;
        resp["status"]["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "failed to fetch token: empty token".into())
    }

    /// `KUBERNETES_SERVICE_HOST`-style variables for the services of the
    /// namespace (and the `kubernetes` service), as upstream's service links.
    async fn service_env(&self, links: bool) -> Vec<(String, String)> {
        let mut services = Vec::new();
        if links
            && let Ok(list) =
                self.agent.client.get(&format!("/api/v1/namespaces/{}/services", self.namespace)).await
        {
            services.extend(list["items"].as_array().cloned().unwrap_or_default());
        }
        if (self.namespace != "default" || !links)
            && let Ok(Some(k)) =
                self.agent.client.get_opt("/api/v1/namespaces/default/services/kubernetes").await
        {
            services.push(k);
        }
        let mut out = Vec::new();
        for s in services {
            let ip = s["spec"]["clusterIP"].as_str().unwrap_or("");
            if ip.is_empty() || ip == "None" {
                continue;
            }
            let Some(ports) = s["spec"]["ports"].as_array() else { continue };
            let Some(first) = ports.first() else { continue };
            let name = s["metadata"]["name"].as_str().unwrap_or("").to_uppercase().replace('-', "_");
            let port = first["port"].as_i64().unwrap_or(0);
            let proto = first["protocol"].as_str().unwrap_or("TCP");
            out.push((format!("{name}_SERVICE_HOST"), ip.to_owned()));
            out.push((format!("{name}_SERVICE_PORT"), port.to_string()));
            out.push((format!("{name}_PORT"), format!("{}://{ip}:{port}", proto.to_lowercase())));
            for p in ports {
                let pn = p["port"].as_i64().unwrap_or(0);
                let pp = p["protocol"].as_str().unwrap_or("TCP");
                if let Some(n) = p["name"].as_str().filter(|n| !n.is_empty()) {
                    out.push((
                        format!("{name}_SERVICE_PORT_{}", n.to_uppercase().replace('-', "_")),
                        pn.to_string(),
                    ));
                }
                let prefix = format!("{name}_PORT_{pn}_{pp}");
                out.push((prefix.clone(), format!("{}://{ip}:{pn}", pp.to_lowercase())));
                out.push((format!("{prefix}_PROTO"), pp.to_lowercase()));
                out.push((format!("{prefix}_PORT"), pn.to_string()));
                out.push((format!("{prefix}_ADDR"), ip.to_owned()));
            }
        }
        out
    }
}

/// The value of a downward-API `fieldRef`.
pub fn field_value(pod: &Pod, path: &str, pod_ips: &[String], host_ip: &str) -> Result<String, String> {
    let m = &pod.metadata;
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix).and_then(|r| r.strip_prefix("['")).and_then(|r| r.strip_suffix("']"))
    };
    if let Some(k) = subscript("metadata.labels") {
        return Ok(m.labels.get(k).cloned().unwrap_or_default());
    }
    if let Some(k) = subscript("metadata.annotations") {
        return Ok(m.annotations.get(k).cloned().unwrap_or_default());
    }
    let fmt_map = |map: &BTreeMap<String, String>| {
        map.iter()
            .map(|(k, v)| format!("{k}={}", lichen_apimachinery::gofmt::quote(v)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(match path {
        "metadata.name" => m.name.clone(),
        "metadata.namespace" => m.namespace.clone(),
        "metadata.uid" => m.uid.clone(),
        "metadata.labels" => fmt_map(&m.labels),
        "metadata.annotations" => fmt_map(&m.annotations),
        "spec.nodeName" => pod.spec.node_name.clone(),
        "spec.serviceAccountName" => pod.spec.service_account_name.clone().unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => host_ip.to_owned(),
        "status.podIP" => pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => pod_ips.join(","),
        other => return Err(format!("unsupported fieldRef path {other:?}")),
    })
}

/// The value of a `resourceFieldRef` (limits default to the node's
/// allocatable, as upstream).
pub fn resource_value(pod: &Pod, container: &str, r: &ResourceFieldRef) -> Result<String, String> {
    let c = pod
        .spec
        .containers
        .iter()
        .chain(&pod.spec.init_containers)
        .find(|c| c.name == container)
        .ok_or_else(|| format!("resourceFieldRef: container {container:?} not found"))?;
    let (section, name) =
        r.resource.split_once('.').ok_or_else(|| format!("unsupported resource {:?}", r.resource))?;
    let map = match section {
        "limits" => &c.resources.limits,
        "requests" => &c.resources.requests,
        _ => return Err(format!("unsupported resource {:?}", r.resource)),
    };
    let value = match map.get(name).and_then(Quantity::from_json) {
        Some(q) => q,
        None if section == "limits" => node_allocatable(name),
        None => Quantity { nanos: 0 },
    };
    let divisor =
        r.divisor.as_ref().and_then(Quantity::from_json).unwrap_or(Quantity { nanos: 1_000_000_000 });
    Ok(value.divide_ceil(&divisor).to_string())
}

fn node_allocatable(resource: &str) -> Quantity {
    let units = match resource {
        "cpu" => std::thread::available_parallelism().map(|n| n.get() as i128).unwrap_or(1),
        "memory" => i128::from(crate::node::meminfo("MemTotal").unwrap_or(0)),
        _ => 0,
    };
    Quantity { nanos: units * 1_000_000_000 }
}

/// Expands `$(VAR)` references from `vars` (`$$` escapes; unknown
/// references stay as written), as upstream's `expansion.Expand`.
pub fn expand(s: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'$' {
                out.push('$');
                i += 2;
                continue;
            }
            if b[i + 1] == b'('
                && let Some(end) = s[i + 2..].find(')')
            {
                let name = &s[i + 2..i + 2 + end];
                match vars.get(name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&s[i..i + 3 + end]),
                }
                i += end + 3;
                continue;
            }
        }
        let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The container's environment, in upstream's order.
pub async fn build(
    pod: &Pod,
    c: &Container,
    lookup: &mut Lookup,
    pod_ips: &[String],
    host_ip: &str,
) -> Result<Vec<(String, String)>, String> {
    let ns = &pod.metadata.namespace;
    let mut vars: Vec<(String, String)> =
        lookup.service_env(pod.spec.enable_service_links != Some(false)).await;
    for from in &c.env_from {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match lookup.config_map(&r.name).await.map_err(|e| e.to_string())? {
                Some(data) => vars.extend(data.into_iter().map(|(k, v)| (format!("{prefix}{k}"), lossy(v)))),
                None if r.optional == Some(true) => {}
                None => return Err(format!("configmap \"{}\" not found", r.name)),
            }
        }
        if let Some(r) = &from.secret_ref {
            match lookup.secret(&r.name).await.map_err(|e| e.to_string())? {
                Some(data) => vars.extend(data.into_iter().map(|(k, v)| (format!("{prefix}{k}"), lossy(v)))),
                None if r.optional == Some(true) => {}
                None => return Err(format!("secret \"{}\" not found", r.name)),
            }
        }
    }
    for e in &c.env {
        let current: HashMap<String, String> = vars.iter().cloned().collect();
        let value = if let Some(v) = &e.value {
            expand(v, &current)
        } else if let Some(src) = &e.value_from {
            if let Some(f) = &src.field_ref {
                field_value(pod, &f.field_path, pod_ips, host_ip)?
            } else if let Some(r) = &src.resource_field_ref {
                let name = r.container_name.as_deref().filter(|n| !n.is_empty()).unwrap_or(&c.name);
                resource_value(pod, name, r)?
            } else if let Some(k) = &src.config_map_key_ref {
                match lookup.config_map(&k.name).await.map_err(|e| e.to_string())? {
                    Some(data) => match data.get(&k.key) {
                        Some(v) => lossy(v.clone()),
                        None if k.optional == Some(true) => continue,
                        None => {
                            return Err(format!("couldn't find key {} in ConfigMap {ns}/{}", k.key, k.name));
                        }
                    },
                    None if k.optional == Some(true) => continue,
                    None => return Err(format!("configmap \"{}\" not found", k.name)),
                }
            } else if let Some(k) = &src.secret_key_ref {
                match lookup.secret(&k.name).await.map_err(|e| e.to_string())? {
                    Some(data) => match data.get(&k.key) {
                        Some(v) => lossy(v.clone()),
                        None if k.optional == Some(true) => continue,
                        None => return Err(format!("couldn't find key {} in Secret {ns}/{}", k.key, k.name)),
                    },
                    None if k.optional == Some(true) => continue,
                    None => return Err(format!("secret \"{}\" not found", k.name)),
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        vars.push((e.name.clone(), value));
    }
    // Later definitions win, keeping the first position (upstream dedups the same way).
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in vars {
        match seen.get(&k) {
            Some(&i) => out[i].1 = v,
            None => {
                seen.insert(k.clone(), out.len());
                out.push((k, v));
            }
        }
    }
    Ok(out)
}

fn lossy(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A pod from JSON, for tests.
#[cfg(test)]
pub fn pod_from(v: &serde_json::Value) -> Pod {
    crate::spec::parse_pod(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_as_upstream() {
        let vars: HashMap<String, String> =
            [("A".to_owned(), "x".to_owned()), ("B".to_owned(), "y".to_owned())].into();
        assert_eq!(expand("$(A)-$(B)", &vars), "x-y");
        assert_eq!(expand("$$(A)", &vars), "$(A)");
        assert_eq!(expand("$(C)", &vars), "$(C)");
        assert_eq!(expand("$(A", &vars), "$(A");
        assert_eq!(expand("a$b", &vars), "a$b");
        assert_eq!(expand("ü$(A)", &vars), "üx");
    }

    #[test]
    fn downward_fields() {
        let pod = pod_from(&json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "web", "tier": "a\"b"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}}}]},
        }));
        let ips = vec!["10.42.0.5".to_owned()];
        assert_eq!(field_value(&pod, "metadata.name", &ips, "").as_deref(), Ok("p"));
        assert_eq!(field_value(&pod, "metadata.labels['app']", &ips, "").as_deref(), Ok("web"));
        assert_eq!(
            field_value(&pod, "metadata.labels", &ips, "").as_deref(),
            Ok("app=\"web\"\ntier=\"a\\\"b\"")
        );
        assert_eq!(field_value(&pod, "status.podIP", &ips, "").as_deref(), Ok("10.42.0.5"));
        assert_eq!(field_value(&pod, "status.hostIP", &ips, "192.0.2.1").as_deref(), Ok("192.0.2.1"));
        assert!(field_value(&pod, "spec.bogus", &ips, "").is_err());
        let r = |res: &str, div: Option<&str>| ResourceFieldRef {
            container_name: None,
            resource: res.into(),
            divisor: div.map(|d| json!(d)),
        };
        assert_eq!(resource_value(&pod, "c", &r("limits.memory", None)).as_deref(), Ok("67108864"));
        assert_eq!(resource_value(&pod, "c", &r("limits.memory", Some("1Mi"))).as_deref(), Ok("64"));
        assert_eq!(resource_value(&pod, "c", &r("limits.cpu", None)).as_deref(), Ok("1"));
        assert_eq!(resource_value(&pod, "c", &r("limits.cpu", Some("1m"))).as_deref(), Ok("250"));
        assert_eq!(resource_value(&pod, "c", &r("requests.cpu", None)).as_deref(), Ok("0"));
    }
}
