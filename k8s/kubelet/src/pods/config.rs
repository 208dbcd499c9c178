//! CRI configs for a pod's sandbox and containers, built from the pod spec
//! as upstream's `kuberuntime` does (labels, log paths, cgroup parents,
//! security contexts, resources).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lichen_apimachinery::quantity::Quantity;

use super::runtime::{
    ANNOTATION_HASH, ANNOTATION_KIND, LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
};
use crate::Agent;
use crate::cri::api;
use crate::spec::{Container, Pod};

/// Paths upstream masks or makes read-only in unprivileged containers.
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

pub fn log_directory(agent: &Agent, pod: &Pod) -> PathBuf {
    let m = &pod.metadata;
    agent.cfg.pod_log_dir.join(format!("{}_{}_{}", m.namespace, m.name, m.uid))
}

pub fn qos_class(pod: &Pod) -> &str {
    pod.status["qosClass"].as_str().unwrap_or("BestEffort")
}

fn cgroup_parent(agent: &Agent, pod: &Pod) -> String {
    let root = agent.cfg.cgroup_root.trim_end_matches('/');
    let pod_part = format!("pod{}", pod.metadata.uid);
    match qos_class(pod) {
        "Guaranteed" => format!("{root}/kubepods/{pod_part}"),
        "Burstable" => format!("{root}/kubepods/burstable/{pod_part}"),
        _ => format!("{root}/kubepods/besteffort/{pod_part}"),
    }
}

fn namespaces(pod: &Pod) -> api::NamespaceOption {
    let node = api::NamespaceMode::Node as i32;
    api::NamespaceOption {
        network: if pod.spec.host_network { node } else { api::NamespaceMode::Pod as i32 },
        pid: if pod.spec.host_pid { node } else { api::NamespaceMode::Container as i32 },
        ipc: if pod.spec.host_ipc { node } else { api::NamespaceMode::Pod as i32 },
        ..Default::default()
    }
}

fn labels(pod: &Pod) -> HashMap<String, String> {
    let m = &pod.metadata;
    HashMap::from([
        (LABEL_POD_UID.to_owned(), m.uid.clone()),
        (LABEL_POD_NAME.to_owned(), m.name.clone()),
        (LABEL_POD_NAMESPACE.to_owned(), m.namespace.clone()),
    ])
}

/// The pod's hostname: `spec.hostname` or the pod name, at most 63 bytes.
pub fn hostname(pod: &Pod) -> String {
    let h = pod.spec.hostname.clone().unwrap_or_else(|| pod.metadata.name.clone());
    // At most 63 bytes, cut on a character boundary.
    let mut end = h.len().min(63);
    while !h.is_char_boundary(end) {
        end -= 1;
    }
    h[..end].trim_end_matches(['-', '.']).to_owned()
}

/// The pod's resolv.conf (`super::dns`), from the node's `/etc/resolv.conf`.
fn dns_config(agent: &Agent, pod: &Pod) -> Option<api::DnsConfig> {
    let host = super::dns::Resolv::parse(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
    let node = super::dns::Node {
        cluster_dns: agent.cfg.cluster_dns,
        cluster_domain: &agent.cfg.cluster_domain,
        host: &host,
    };
    let r = super::dns::pod_dns(
        &node,
        pod.spec.dns_policy.as_deref(),
        pod.spec.host_network,
        &pod.metadata.namespace,
        pod.spec.dns_config.as_ref(),
    )?;
    Some(api::DnsConfig { servers: r.servers, searches: r.searches, options: r.options })
}

pub fn sandbox_config(agent: &Agent, pod: &Pod, attempt: u32) -> api::PodSandboxConfig {
    let m = &pod.metadata;
    let mut port_mappings = Vec::new();
    for c in &pod.spec.containers {
        for p in &c.ports {
            if let Some(hp) = p.host_port.filter(|h| *h > 0) {
                port_mappings.push(api::PortMapping {
                    protocol: match p.protocol.as_deref() {
                        Some("UDP") => api::Protocol::Udp as i32,
                        Some("SCTP") => api::Protocol::Sctp as i32,
                        _ => api::Protocol::Tcp as i32,
                    },
                    container_port: p.container_port,
                    host_port: hp,
                    host_ip: p.host_ip.clone().unwrap_or_default(),
                });
            }
        }
    }
    let mut all_labels = labels(pod);
    for (k, v) in &m.labels {
        all_labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let sc = &pod.spec.security_context;
    let sysctls = sc
        .sysctls
        .iter()
        .filter_map(|s| Some((s["name"].as_str()?.to_owned(), s["value"].as_str().unwrap_or("").to_owned())))
        .collect();
    let privileged = pod
        .spec
        .containers
        .iter()
        .chain(&pod.spec.init_containers)
        .any(|c| c.security_context.as_ref().and_then(|s| s.privileged) == Some(true));
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: m.name.clone(),
            uid: m.uid.clone(),
            namespace: m.namespace.clone(),
            attempt,
        }),
        hostname: if pod.spec.host_network { String::new() } else { hostname(pod) },
        log_directory: log_directory(agent, pod).to_string_lossy().into_owned(),
        dns_config: dns_config(agent, pod),
        port_mappings,
        labels: all_labels,
        annotations: m.annotations.clone().into_iter().collect(),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent(agent, pod),
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces(pod)),
                run_as_user: sc.run_as_user.map(|value| api::Int64Value { value }),
                run_as_group: sc.run_as_group.map(|value| api::Int64Value { value }),
                supplemental_groups: sc.supplemental_groups.iter().copied().chain(sc.fs_group).collect(),
                privileged,
                ..Default::default()
            }),
            sysctls,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Where a container sees its volumes, and the kubelet-managed files.
pub struct Mounts<'a> {
    pub volumes: &'a HashMap<String, PathBuf>,
    pub etc_hosts: Option<&'a Path>,
    pub termination_log: &'a Path,
}

fn mounts(c: &Container, m: &Mounts<'_>) -> Result<Vec<api::Mount>, String> {
    let mut out = Vec::new();
    for vm in &c.volume_mounts {
        let base = m.volumes.get(&vm.name).ok_or_else(|| {
            format!("cannot find volume {:?} to mount into container {:?}", vm.name, c.name)
        })?;
        let mut host = base.clone();
        if let Some(sub) = vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if sub.starts_with('/') || sub.split('/').any(|p| p == "..") {
                return Err(format!("invalid subPath {sub:?}: must be a relative path without '..'"));
            }
            host = base.join(sub);
            if !host.exists() {
                std::fs::create_dir_all(&host)
                    .map_err(|e| format!("cannot create subPath {}: {e}", host.display()))?;
            }
            // A container can plant symlinks in a shared volume: the resolved
            // path must still be inside the volume (upstream's subPath CVE).
            // The check and the mount are not atomic; see ARCHITECTURE.md.
            let real = std::fs::canonicalize(&host).map_err(|e| format!("subPath {sub:?}: {e}"))?;
            let root = std::fs::canonicalize(base).map_err(|e| format!("volume {:?}: {e}", vm.name))?;
            if !real.starts_with(&root) {
                return Err(format!("subPath {sub:?} of volume {:?} resolves outside the volume", vm.name));
            }
            host = real;
        }
        out.push(api::Mount {
            container_path: vm.mount_path.clone(),
            host_path: host.to_string_lossy().into_owned(),
            readonly: vm.read_only,
            ..Default::default()
        });
    }
    let has = |p: &str| c.volume_mounts.iter().any(|v| v.mount_path == p);
    if let Some(hosts) = m.etc_hosts
        && !has("/etc/hosts")
    {
        out.push(api::Mount {
            container_path: "/etc/hosts".into(),
            host_path: hosts.to_string_lossy().into_owned(),
            ..Default::default()
        });
    }
    let tpath = c.termination_message_path.clone().unwrap_or_else(|| "/dev/termination-log".into());
    if !has(&tpath) {
        out.push(api::Mount {
            container_path: tpath,
            host_path: m.termination_log.to_string_lossy().into_owned(),
            ..Default::default()
        });
    }
    Ok(out)
}

fn resources(pod: &Pod, c: &Container) -> api::LinuxContainerResources {
    let q = |map: &std::collections::BTreeMap<String, serde_json::Value>, k: &str| {
        map.get(k).and_then(Quantity::from_json)
    };
    let cpu_request = q(&c.resources.requests, "cpu").or_else(|| q(&c.resources.limits, "cpu"));
    let cpu_limit = q(&c.resources.limits, "cpu");
    let mem_limit = q(&c.resources.limits, "memory");
    let mem_request = q(&c.resources.requests, "memory").or(mem_limit);
    // cpu.shares: 1024 per CPU requested, at least 2 (upstream MilliCPUToShares).
    let shares = cpu_request.map(|r| (r.milli() * 1024 / 1000).max(2)).unwrap_or(2);
    let period = 100_000;
    let quota = cpu_limit.map(|l| (l.milli() * period / 1000).max(1000)).unwrap_or(0);
    let oom = match qos_class(pod) {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            let capacity = crate::node::meminfo("MemTotal").unwrap_or(1).max(1) as i64;
            let req = mem_request.map(|r| r.value()).unwrap_or(0);
            (1000 - 1000 * req / capacity).clamp(2, 999)
        }
    };
    api::LinuxContainerResources {
        cpu_period: if quota > 0 { period } else { 0 },
        cpu_quota: quota,
        cpu_shares: shares,
        memory_limit_in_bytes: mem_limit.map(|m| m.value()).unwrap_or(0),
        oom_score_adj: oom,
        ..Default::default()
    }
}

fn security(pod: &Pod, c: &Container) -> api::LinuxContainerSecurityContext {
    let psc = &pod.spec.security_context;
    let sc = c.security_context.clone().unwrap_or_default();
    let privileged = sc.privileged == Some(true);
    let (masked, readonly) = if privileged {
        (Vec::new(), Vec::new())
    } else {
        (
            MASKED_PATHS.iter().map(|s| (*s).to_owned()).collect(),
            READONLY_PATHS.iter().map(|s| (*s).to_owned()).collect(),
        )
    };
    api::LinuxContainerSecurityContext {
        capabilities: sc.capabilities.as_ref().map(|caps| api::Capability {
            add_capabilities: caps.add.clone(),
            drop_capabilities: caps.drop.clone(),
            ..Default::default()
        }),
        privileged,
        namespace_options: Some(namespaces(pod)),
        run_as_user: sc.run_as_user.or(psc.run_as_user).map(|value| api::Int64Value { value }),
        run_as_group: sc.run_as_group.or(psc.run_as_group).map(|value| api::Int64Value { value }),
        readonly_rootfs: sc.read_only_root_filesystem == Some(true),
        supplemental_groups: psc.supplemental_groups.iter().copied().chain(psc.fs_group).collect(),
        no_new_privs: sc.allow_privilege_escalation == Some(false),
        masked_paths: masked,
        readonly_paths: readonly,
        ..Default::default()
    }
}

/// A short, stable hash of what, when changed, restarts the container.
pub fn spec_hash(c: &Container) -> String {
    // FNV-1a over the image: the only container field a pod update may change.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in c.image.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

pub struct ContainerInput<'a> {
    pub kind: &'static str,
    pub attempt: u32,
    pub env: Vec<(String, String)>,
    pub mounts: Mounts<'a>,
}

pub fn container_config(
    pod: &Pod,
    c: &Container,
    input: ContainerInput<'_>,
) -> Result<api::ContainerConfig, String> {
    let vars: HashMap<String, String> = input.env.iter().cloned().collect();
    let expand = |v: &Vec<String>| v.iter().map(|s| super::env::expand(s, &vars)).collect::<Vec<_>>();
    let mut labels = labels(pod);
    labels.insert(LABEL_CONTAINER_NAME.into(), c.name.clone());
    let annotations = HashMap::from([
        (ANNOTATION_HASH.to_owned(), spec_hash(c)),
        (ANNOTATION_KIND.to_owned(), input.kind.to_owned()),
        ("io.kubernetes.container.restartCount".to_owned(), input.attempt.to_string()),
        (
            "io.kubernetes.container.terminationMessagePath".to_owned(),
            c.termination_message_path.clone().unwrap_or_else(|| "/dev/termination-log".into()),
        ),
    ]);
    Ok(api::ContainerConfig {
        metadata: Some(api::ContainerMetadata { name: c.name.clone(), attempt: input.attempt }),
        image: Some(api::ImageSpec { image: c.image.clone(), ..Default::default() }),
        command: expand(&c.command),
        args: expand(&c.args),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: input
            .env
            .iter()
            .map(|(key, value)| api::KeyValue { key: key.clone(), value: value.clone() })
            .collect(),
        mounts: mounts(c, &input.mounts)?,
        log_path: format!("{}/{}.log", c.name, input.attempt),
        stdin: c.stdin,
        stdin_once: c.stdin_once,
        tty: c.tty,
        labels,
        annotations,
        linux: Some(api::LinuxContainerConfig {
            resources: Some(resources(pod, c)),
            security_context: Some(security(pod, c)),
        }),
        ..Default::default()
    })
}
