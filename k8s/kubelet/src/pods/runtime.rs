//! What the runtime holds for one pod: its sandboxes and container
//! instances, read back from CRI (labels tie them to the pod and the
//! container name; the attempt number is the restart count). The agent keeps
//! no other record, so it picks up where it left off after a restart.

use std::collections::BTreeMap;

use crate::cri::{Cri, api};

pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Annotation: a hash of the container's spec, to restart on spec changes.
pub const ANNOTATION_HASH: &str = "io.kubernetes.container.hash";
/// Annotation on a container instance: `init`, `sidecar` or `regular`.
pub const ANNOTATION_KIND: &str = "lichen.io/container-kind";

/// One container instance as CRI reports it.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub attempt: u32,
    pub state: i32,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub image: String,
    pub image_ref: String,
    pub log_path: String,
    pub hash: String,
    pub sandbox_id: String,
}

impl Instance {
    pub fn running(&self) -> bool {
        self.state == api::ContainerState::ContainerRunning as i32
    }
    pub fn exited(&self) -> bool {
        self.state == api::ContainerState::ContainerExited as i32
    }
    pub fn created(&self) -> bool {
        self.state == api::ContainerState::ContainerCreated as i32
    }
}

/// The latest sandbox and every container instance of a pod.
#[derive(Debug, Default, Clone)]
pub struct PodRuntime {
    pub sandbox: Option<Sandbox>,
    /// Other sandboxes of the pod (dead ones, to remove).
    pub old_sandboxes: Vec<String>,
    /// Those of them still running (to stop: they hold an IP).
    pub old_running: Vec<String>,
    /// Instances by container name, newest first.
    pub containers: BTreeMap<String, Vec<Instance>>,
}

#[derive(Debug, Clone)]
pub struct Sandbox {
    pub id: String,
    pub attempt: u32,
    pub ready: bool,
    pub ip: String,
    pub ips: Vec<String>,
}

impl PodRuntime {
    pub fn latest(&self, name: &str) -> Option<&Instance> {
        self.containers.get(name).and_then(|v| v.first())
    }
    pub fn previous(&self, name: &str) -> Option<&Instance> {
        self.containers.get(name).and_then(|v| v.get(1))
    }
    pub fn any_running(&self) -> bool {
        self.containers.values().flatten().any(Instance::running)
    }
}

fn by_uid(uid: &str) -> std::collections::HashMap<String, String> {
    [(LABEL_POD_UID.to_owned(), uid.to_owned())].into()
}

/// Reads the pod's sandboxes and containers from the runtime.
pub async fn inspect(cri: &Cri, uid: &str) -> Result<PodRuntime, tonic::Status> {
    let mut rt = cri.runtime.clone();
    let sandboxes = rt
        .list_pod_sandbox(api::ListPodSandboxRequest {
            filter: Some(api::PodSandboxFilter { label_selector: by_uid(uid), ..Default::default() }),
        })
        .await?
        .into_inner()
        .items;
    let mut out = PodRuntime::default();
    let mut sorted = sandboxes;
    sorted.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    for (i, s) in sorted.into_iter().enumerate() {
        if i > 0 {
            if s.state == api::PodSandboxState::SandboxReady as i32 {
                out.old_running.push(s.id.clone());
            }
            out.old_sandboxes.push(s.id);
            continue;
        }
        let ready = s.state == api::PodSandboxState::SandboxReady as i32;
        let (mut ip, mut ips) = (String::new(), Vec::new());
        if ready {
            let st = rt
                .pod_sandbox_status(api::PodSandboxStatusRequest {
                    pod_sandbox_id: s.id.clone(),
                    verbose: false,
                })
                .await?
                .into_inner();
            if let Some(net) = st.status.and_then(|s| s.network) {
                ip = net.ip.clone();
                ips.push(net.ip);
                ips.extend(net.additional_ips.into_iter().map(|a| a.ip));
            }
        }
        out.sandbox =
            Some(Sandbox { id: s.id, attempt: s.metadata.map(|m| m.attempt).unwrap_or(0), ready, ip, ips });
    }
    let containers = rt
        .list_containers(api::ListContainersRequest {
            filter: Some(api::ContainerFilter { label_selector: by_uid(uid), ..Default::default() }),
        })
        .await?
        .into_inner()
        .containers;
    let mut grouped: BTreeMap<String, Vec<api::Container>> = BTreeMap::new();
    for c in containers {
        let name = c.labels.get(LABEL_CONTAINER_NAME).cloned().unwrap_or_default();
        grouped.entry(name).or_default().push(c);
    }
    for (name, mut list) in grouped {
        list.sort_by_key(|c| {
            std::cmp::Reverse((c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0), c.created_at))
        });
        let mut instances = Vec::new();
        for (i, c) in list.into_iter().enumerate() {
            // Details only for the two that status needs; the rest are pruned.
            let detail = if i < 2 {
                rt.container_status(api::ContainerStatusRequest {
                    container_id: c.id.clone(),
                    verbose: false,
                })
                .await
                .ok()
                .and_then(|r| r.into_inner().status)
            } else {
                None
            };
            let d = detail.unwrap_or_default();
            instances.push(Instance {
                id: c.id.clone(),
                name: name.clone(),
                attempt: c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
                state: c.state,
                created_at: c.created_at,
                started_at: d.started_at,
                finished_at: d.finished_at,
                exit_code: d.exit_code,
                reason: d.reason,
                message: d.message,
                image: d
                    .image
                    .map(|i| i.image)
                    .unwrap_or_else(|| c.image.map(|i| i.image).unwrap_or_default()),
                image_ref: if d.image_ref.is_empty() { c.image_ref.clone() } else { d.image_ref },
                log_path: d.log_path,
                hash: c.annotations.get(ANNOTATION_HASH).cloned().unwrap_or_default(),
                sandbox_id: c.pod_sandbox_id.clone(),
            });
        }
        out.containers.insert(name, instances);
    }
    Ok(out)
}
