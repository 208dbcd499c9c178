//! The Node object: registration, status (capacity, conditions, node info,
//! images) and the Lease heartbeat in `kube-node-lease`.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::client::{ClientError, PatchType};
use crate::cri::api;
use crate::{Agent, now_rfc3339};

/// Upstream's defaults: lease 40 s renewed every 10 s; status checked every
/// 10 s and reported on change or every 5 minutes.
const LEASE_SECONDS: i64 = 40;
const RENEW: Duration = Duration::from_secs(10);
const REPORT_EVERY: Duration = Duration::from_secs(300);

/// What the runtime says about itself.
#[derive(Debug, Clone, PartialEq)]
pub enum RuntimeHealth {
    Ready {
        version: String,
    },
    /// Reachable but a condition is false (e.g. no CNI config yet).
    NotReady {
        version: String,
        message: String,
    },
    Down {
        message: String,
    },
}

pub async fn runtime_health(agent: &Agent) -> RuntimeHealth {
    let mut rt = agent.cri.runtime.clone();
    let version = match rt.version(api::VersionRequest { version: "v1".into() }).await {
        Ok(v) => {
            let v = v.into_inner();
            format!("{}://{}", v.runtime_name, v.runtime_version)
        }
        Err(e) => {
            return RuntimeHealth::Down { message: format!("container runtime is down: {}", e.message()) };
        }
    };
    let status = match rt.status(api::StatusRequest { verbose: false }).await {
        Ok(s) => s.into_inner(),
        Err(e) => {
            return RuntimeHealth::Down { message: format!("container runtime is down: {}", e.message()) };
        }
    };
    let conditions = status.status.map(|s| s.conditions).unwrap_or_default();
    let mut problems = Vec::new();
    for kind in ["RuntimeReady", "NetworkReady"] {
        match conditions.iter().find(|c| c.r#type == kind) {
            Some(c) if c.status => {}
            Some(c) => problems.push(format!("{}=false reason:{} message:{}", kind, c.reason, c.message)),
            None => problems.push(format!("{kind} missing")),
        }
    }
    if problems.is_empty() {
        return RuntimeHealth::Ready { version };
    }
    let what = if problems[0].starts_with("NetworkReady") {
        "container runtime network not ready"
    } else {
        "container runtime not ready"
    };
    RuntimeHealth::NotReady { version, message: format!("{what}: {}", problems.join(", ")) }
}

/// Machine facts that do not change while the agent runs.
pub struct Machine {
    pub cpus: u64,
    pub memory: u64,
    pub kernel: String,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
}

impl Machine {
    pub fn read() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_owned()).unwrap_or_default();
        let cpus = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
        Machine {
            cpus,
            memory: meminfo("MemTotal").unwrap_or(0),
            kernel: rustix::system::uname().release().to_string_lossy().into_owned(),
            machine_id: read("/etc/machine-id"),
            system_uuid: read("/sys/class/dmi/id/product_uuid"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
        }
    }
}

/// A `/proc/meminfo` field in bytes.
pub fn meminfo(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.split(':').next() == Some(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// (capacity, available) bytes of the filesystem holding `path`.
pub fn fs_space(path: &std::path::Path) -> Option<(u64, u64)> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some((st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize))
}

pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    }
}

fn labels(agent: &Agent) -> Value {
    json!({
        "kubernetes.io/hostname": agent.cfg.node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch(),
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch(),
    })
}

fn condition(kind: &str, ok_is_false: bool, ok: bool, reason: &str, message: &str, now: &str) -> Value {
    let status = if ok ^ ok_is_false { "True" } else { "False" };
    json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    })
}

/// The node status the agent would report now (transition times are fixed
/// up against the previous report by [`carry_transitions`]).
pub async fn status(agent: &Agent, machine: &Machine, health: &RuntimeHealth) -> Value {
    let now = now_rfc3339();
    let (fs_cap, fs_avail) = fs_space(&agent.cfg.root_dir).unwrap_or((0, 0));
    let mem_avail = meminfo("MemAvailable").unwrap_or(u64::MAX);
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(32768);
    let pids = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count()
        })
        .unwrap_or(0) as u64;
    // Hard eviction thresholds: the pressure conditions, and what
    // allocatable leaves out.
    let eviction = agent.cfg.eviction_hard;
    let memory_pressure = eviction.memory_available.crossed(machine.memory, mem_avail);
    let disk_pressure = eviction.nodefs_available.crossed(fs_cap, fs_avail);
    let pid_pressure = pids * 10 > pid_max * 9;
    let (ready, ready_reason, ready_message, runtime_version) = match health {
        RuntimeHealth::Ready { version } => {
            (true, "KubeletReady", "kubelet is posting ready status".to_owned(), version.clone())
        }
        RuntimeHealth::NotReady { version, message } => {
            (false, "KubeletNotReady", message.clone(), version.clone())
        }
        RuntimeHealth::Down { message } => (false, "KubeletNotReady", message.clone(), String::new()),
    };
    let capacity = json!({
        "cpu": machine.cpus.to_string(),
        "memory": format!("{}Ki", machine.memory / 1024),
        "ephemeral-storage": format!("{}Ki", fs_cap / 1024),
        "pods": agent.cfg.max_pods.to_string(),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    });
    let allocatable = json!({
        "cpu": machine.cpus.to_string(),
        "memory": format!("{}Ki", machine.memory.saturating_sub(eviction.memory_available.bytes_of(machine.memory)) / 1024),
        "ephemeral-storage": fs_cap.saturating_sub(eviction.nodefs_available.bytes_of(fs_cap)).to_string(),
        "pods": agent.cfg.max_pods.to_string(),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    });
    let images = node_images(agent).await;
    json!({
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": [
            condition("MemoryPressure", true, !memory_pressure,
                if memory_pressure { "KubeletHasInsufficientMemory" } else { "KubeletHasSufficientMemory" },
                if memory_pressure { "kubelet has insufficient memory available" } else { "kubelet has sufficient memory available" }, &now),
            condition("DiskPressure", true, !disk_pressure,
                if disk_pressure { "KubeletHasDiskPressure" } else { "KubeletHasNoDiskPressure" },
                if disk_pressure { "kubelet has disk pressure" } else { "kubelet has no disk pressure" }, &now),
            condition("PIDPressure", true, !pid_pressure,
                if pid_pressure { "KubeletHasInsufficientPID" } else { "KubeletHasSufficientPID" },
                if pid_pressure { "kubelet has insufficient PID available" } else { "kubelet has sufficient PID available" }, &now),
            condition("Ready", false, ready, ready_reason, &ready_message, &now),
        ],
        "addresses": [
            {"type": "InternalIP", "address": agent.cfg.node_ip.to_string()},
            {"type": "Hostname", "address": agent.cfg.node_name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": agent.cfg.port}},
        "nodeInfo": {
            "machineID": machine.machine_id,
            "systemUUID": machine.system_uuid,
            "bootID": machine.boot_id,
            "kernelVersion": machine.kernel,
            "osImage": agent.cfg.os_image,
            "containerRuntimeVersion": runtime_version,
            "kubeletVersion": agent.cfg.kubelet_version,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": arch(),
        },
        "images": images,
    })
}

async fn node_images(agent: &Agent) -> Value {
    let mut is = agent.cri.images.clone();
    let Ok(list) = is.list_images(api::ListImagesRequest { filter: None }).await else { return json!([]) };
    let mut images: Vec<_> = list.into_inner().images;
    images.sort_by_key(|i| std::cmp::Reverse(i.size));
    images.truncate(50);
    Value::Array(
        images
            .into_iter()
            .map(|i| {
                let mut names = i.repo_digests.clone();
                names.extend(i.repo_tags.iter().cloned());
                json!({"names": names, "sizeBytes": i.size})
            })
            .collect(),
    )
}

/// Keeps `lastTransitionTime` of conditions whose status did not change.
pub fn carry_transitions(new: &mut Value, old: &Value) {
    let Some(conds) = new["conditions"].as_array_mut() else { return };
    for c in conds {
        let prev = old["conditions"].as_array().and_then(|a| a.iter().find(|p| p["type"] == c["type"]));
        if let Some(p) = prev
            && p["status"] == c["status"]
            && p["lastTransitionTime"].is_string()
        {
            c["lastTransitionTime"] = p["lastTransitionTime"].clone();
        }
    }
}

/// Whether two statuses differ in anything but heartbeat times.
fn changed(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(cs) = v["conditions"].as_array_mut() {
            for c in cs {
                if let Some(m) = c.as_object_mut() {
                    m.remove("lastHeartbeatTime");
                }
            }
        }
        v
    };
    strip(a) != strip(b)
}

/// Registers the node (or adopts an existing one of the same name).
async fn register(agent: &Agent, status: &Value) -> Result<Value, ClientError> {
    let name = &agent.cfg.node_name;
    let mut spec = json!({});
    if let Some(cidr) = &agent.cfg.pod_cidr {
        spec["podCIDR"] = json!(cidr);
        spec["podCIDRs"] = json!([cidr]);
    }
    let node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels(agent)},
        "spec": spec,
        "status": status,
    });
    match agent.client.create("/api/v1/nodes", &node).await {
        Ok(n) => {
            tracing::info!(node = %name, "node registered");
            Ok(n)
        }
        Err(e) if e.is_conflict() => {
            let patch = json!({"metadata": {"labels": labels(agent)}});
            let n = agent.client.patch(&format!("/api/v1/nodes/{name}"), PatchType::Merge, &patch).await?;
            tracing::info!(node = %name, "node exists; adopted");
            Ok(n)
        }
        Err(e) => Err(e),
    }
}

/// Registers the node, then keeps its status and Lease current. Never
/// returns; API errors are logged and retried.
pub async fn run(agent: Agent) {
    let machine = Machine::read();
    let mut reported: Option<(Value, Instant)> = None;
    let mut registered = false;
    let mut last_health: Option<RuntimeHealth> = None;
    loop {
        let health = runtime_health(&agent).await;
        if last_health.as_ref() != Some(&health) {
            match &health {
                RuntimeHealth::Ready { version } => {
                    tracing::info!(runtime = %version, "container runtime ready")
                }
                RuntimeHealth::NotReady { message, .. } | RuntimeHealth::Down { message } => {
                    tracing::warn!(%message, "node not ready")
                }
            }
            agent.runtime_ready.send_replace(matches!(health, RuntimeHealth::Ready { .. }));
            last_health = Some(health.clone());
        }
        let mut st = status(&agent, &machine, &health).await;
        if !registered {
            match register(&agent, &st).await {
                Ok(node) => {
                    registered = true;
                    agent.node_object.send_replace(Some(node));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "node registration failed; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            }
        }
        if let Some((old, _)) = &reported {
            carry_transitions(&mut st, old);
        }
        let due = match &reported {
            None => true,
            Some((old, at)) => changed(&st, old) || at.elapsed() >= REPORT_EVERY,
        };
        if due {
            let path = format!("/api/v1/nodes/{}/status", agent.cfg.node_name);
            match agent.client.patch(&path, PatchType::Merge, &json!({ "status": st })).await {
                Ok(node) => {
                    mark_ready(agent.cfg.ready_file.as_deref(), &st);
                    reported = Some((st, Instant::now()));
                    agent.node_object.send_replace(Some(node));
                }
                Err(e) if e.is_not_found() => {
                    tracing::warn!("node object deleted; registering again");
                    registered = false;
                    reported = None;
                    continue;
                }
                Err(e) => tracing::warn!(error = %e, "node status update failed"),
            }
        }
        if let Err(e) = renew_lease(&agent).await {
            tracing::warn!(error = %e, "node lease renewal failed");
        }
        // Without a configured range, the node IPAM controller assigns one
        // after registration: look for it every second until it is there.
        let awaiting_cidr = agent.cfg.pod_cidr.is_none() && crate::cni::pod_cidr(&agent).is_none();
        if awaiting_cidr {
            let path = format!("/api/v1/nodes/{}", agent.cfg.node_name);
            if let Ok(Some(node)) = agent.client.get_opt(&path).await {
                agent.node_object.send_replace(Some(node));
            }
        }
        tokio::time::sleep(if awaiting_cidr { Duration::from_secs(1) } else { RENEW }).await;
    }
}

/// Keeps the ready file in step with the Ready condition just reported.
fn mark_ready(file: Option<&std::path::Path>, status: &Value) {
    let Some(file) = file else { return };
    let ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    let result = if ready {
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, format!("{}\n", crate::unix_now())).and_then(|()| std::fs::rename(&tmp, file))
    } else {
        match std::fs::remove_file(file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    };
    if let Err(e) = result {
        tracing::warn!(file = %file.display(), error = %e, "cannot update the ready file");
    }
}

async fn renew_lease(agent: &Agent) -> Result<(), ClientError> {
    let name = &agent.cfg.node_name;
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}");
    let now = lichen_apimachinery::timestamp::format_rfc3339_micros(
        crate::unix_now(),
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.subsec_micros()).unwrap_or(0),
    );
    match agent.client.get_opt(&path).await? {
        Some(mut lease) => {
            lease["spec"]["renewTime"] = json!(now);
            lease["spec"]["holderIdentity"] = json!(name);
            lease["spec"]["leaseDurationSeconds"] = json!(LEASE_SECONDS);
            agent.client.replace(&path, &lease).await?;
        }
        None => {
            let owner = agent.node_object.borrow().as_ref().map(
                |n| json!([{"apiVersion": "v1", "kind": "Node", "name": name, "uid": n["metadata"]["uid"]}]),
            );
            let mut lease = json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": now},
            });
            if let Some(o) = owner {
                lease["metadata"]["ownerReferences"] = o;
            }
            agent
                .client
                .create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", &lease)
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_file_follows_the_reported_ready_condition() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("node-ready");
        let status = |s: &str| json!({"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": s}]});
        mark_ready(Some(&file), &status("False"));
        assert!(!file.exists());
        mark_ready(Some(&file), &status("True"));
        assert!(file.exists());
        mark_ready(Some(&file), &status("True"));
        assert!(file.exists());
        mark_ready(Some(&file), &status("Unknown"));
        assert!(!file.exists());
        mark_ready(None, &status("True"));
    }
}
