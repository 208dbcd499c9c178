//! What a pod asks for and what a node offers, in the units the scheduler
//! compares: millicores, bytes, and counts for everything else.

use std::collections::BTreeMap;

use lichen_apimachinery::quantity::Quantity;
use serde_json::Value;

/// Amounts by resource name (`cpu` in millicores, the rest in units).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources(pub BTreeMap<String, i64>);

/// Upstream's defaults for a container that requests nothing, used for
/// scoring only (so best-effort pods still spread).
pub const DEFAULT_MILLI_CPU: i64 = 100;
pub const DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

impl Resources {
    pub fn get(&self, name: &str) -> i64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    pub fn add(&mut self, other: &Resources) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() += v;
        }
    }

    pub fn sub(&mut self, other: &Resources) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() -= v;
        }
    }

    fn max_with(&mut self, other: &Resources) {
        for (k, v) in &other.0 {
            let e = self.0.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    /// A resource list (`{"cpu": "500m", "memory": "1Gi"}`).
    pub fn from_list(list: &Value) -> Resources {
        let mut r = Resources::default();
        for (k, v) in list.as_object().into_iter().flatten() {
            let Some(q) = Quantity::from_json(v) else { continue };
            r.0.insert(k.clone(), amount(k, &q));
        }
        r
    }
}

fn amount(name: &str, q: &Quantity) -> i64 {
    if name == "cpu" { q.milli() } else { q.value() }
}

/// A container's requests; limits stand in for missing requests, as the
/// API server's defaulting does.
fn container_requests(c: &Value) -> Resources {
    let mut r = Resources::from_list(&c["resources"]["limits"]);
    for (k, v) in Resources::from_list(&c["resources"]["requests"]).0 {
        r.0.insert(k, v);
    }
    r
}

/// The pod's effective request, as upstream's `PodRequests`: the sum of its
/// containers (and sidecars), or the largest init container plus the
/// sidecars started before it, whichever is larger; plus the overhead.
pub fn pod_requests(pod: &Value) -> Resources {
    let spec = &pod["spec"];
    let mut total = Resources::default();
    for c in spec["containers"].as_array().into_iter().flatten() {
        total.add(&container_requests(c));
    }
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        let r = container_requests(c);
        if c["restartPolicy"] == "Always" {
            sidecars.add(&r);
            total.add(&r);
            init_max.max_with(&sidecars);
        } else {
            let mut with_sidecars = sidecars.clone();
            with_sidecars.add(&r);
            init_max.max_with(&with_sidecars);
        }
    }
    total.max_with(&init_max);
    total.add(&Resources::from_list(&spec["overhead"]));
    total
}

/// CPU and memory for scoring, with upstream's non-zero defaults for
/// containers that request none.
pub fn non_zero_requests(pod: &Value) -> (i64, i64) {
    let (mut cpu, mut mem) = (0, 0);
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        let r = container_requests(c);
        cpu += r.0.get("cpu").copied().unwrap_or(DEFAULT_MILLI_CPU);
        mem += r.0.get("memory").copied().unwrap_or(DEFAULT_MEMORY);
    }
    (cpu, mem)
}

/// The host ports a pod binds: (protocol, host IP, port).
pub fn host_ports(pod: &Value) -> Vec<(String, String, i64)> {
    let mut out = Vec::new();
    let spec = &pod["spec"];
    let containers = spec["containers"].as_array().into_iter().flatten();
    let inits = spec["initContainers"].as_array().into_iter().flatten();
    for c in containers.chain(inits) {
        for p in c["ports"].as_array().into_iter().flatten() {
            let port = p["hostPort"].as_i64().unwrap_or(0);
            if port <= 0 {
                continue;
            }
            let proto = p["protocol"].as_str().unwrap_or("TCP").to_owned();
            let ip = p["hostIP"].as_str().filter(|s| !s.is_empty()).unwrap_or("0.0.0.0").to_owned();
            out.push((proto, ip, port));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_follow_upstream_rules() {
        let pod = json!({"spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
                {"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
            ],
            "initContainers": [{"resources": {"requests": {"cpu": "2"}}}],
        }});
        let r = pod_requests(&pod);
        assert_eq!(r.get("cpu"), 2000);
        assert_eq!(r.get("memory"), (64 + 1024) * 1024 * 1024);
        assert_eq!(non_zero_requests(&json!({"spec": {"containers": [{}]}})), (100, 200 * 1024 * 1024));
    }

    #[test]
    fn sidecars_add_to_the_pod_and_to_later_init_containers() {
        let pod = json!({"spec": {
            "containers": [{"resources": {"requests": {"cpu": "100m"}}}],
            "initContainers": [
                {"restartPolicy": "Always", "resources": {"requests": {"cpu": "300m"}}},
                {"resources": {"requests": {"cpu": "500m"}}},
            ],
        }});
        assert_eq!(pod_requests(&pod).get("cpu"), 800);
    }
}
