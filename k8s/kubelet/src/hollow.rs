//! Hollow nodes (test only, as upstream's kubemark): N Nodes that register,
//! keep their Leases fresh and report the pods bound to them Running and
//! Ready without running anything. Pods whose restartPolicy is not Always
//! finish after `hollow.lichen.dev/run-seconds` (default 1) with the exit
//! code in `hollow.lichen.dev/exit-code` (default 0), so Jobs complete.
//! Deleted pods are removed at once. Controllers and the scheduler can be
//! tested and measured with many nodes on one machine.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lichen_client::{Client, ClientConfig, ClientError, PatchType};
use serde_json::{Value, json};

pub struct Config {
    pub nodes: u32,
    pub prefix: String,
    pub cpu: String,
    pub memory: String,
}

pub async fn run(client: ClientConfig, cfg: Config) -> Result<(), ClientError> {
    let client = Client::new(&client)?;
    let names: Vec<String> = (0..cfg.nodes).map(|i| format!("{}{i}", cfg.prefix)).collect();
    for (i, name) in names.iter().enumerate() {
        register(&client, name, i, &cfg).await?;
    }
    tracing::info!(nodes = names.len(), "hollow nodes registered");
    let leases = {
        let (client, names) = (client.clone(), names.clone());
        tokio::spawn(async move {
            loop {
                // All at once: a node's renewals must stay well inside the
                // grace period however many nodes there are.
                let mut renewals = tokio::task::JoinSet::new();
                for n in &names {
                    let (client, n) = (client.clone(), n.clone());
                    renewals.spawn(async move {
                        if let Err(e) = renew(&client, &n).await {
                            tracing::debug!(node = %n, error = %e, "lease not renewed");
                        }
                    });
                }
                while renewals.join_next().await.is_some() {}
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        })
    };
    let ours: Arc<HashSet<String>> = Arc::new(names.into_iter().collect());
    loop {
        if let Err(e) = watch_pods(&client, &ours).await {
            tracing::debug!(error = %e, "hollow pod watch restarting");
        }
        if leases.is_finished() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn register(client: &Client, name: &str, index: usize, cfg: &Config) -> Result<(), ClientError> {
    let resources =
        json!({"cpu": cfg.cpu, "memory": cfg.memory, "pods": "110", "ephemeral-storage": "100Gi"});
    let now = crate::now_rfc3339();
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let status = json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            condition("Ready", "True", "KubeletReady", "kubelet is posting ready status (hollow)"),
        ],
        "addresses": [{"type": "InternalIP", "address": format!("10.99.{}.{}", index / 250, index % 250 + 1)},
                      {"type": "Hostname", "address": name}],
        "nodeInfo": {"kubeletVersion": "hollow", "containerRuntimeVersion": "hollow://0", "osImage": "hollow",
                     "kernelVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
    });
    let node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "node.lichen.dev/hollow": "true",
        }},
        "spec": {},
        "status": status,
    });
    match client.create("/api/v1/nodes", &node).await {
        Ok(_) => {}
        Err(e) if e.is_conflict() => {}
        Err(e) => return Err(e),
    }
    // A patch: the controllers may be writing the node (its pod range) too.
    let path = format!("/api/v1/nodes/{name}/status");
    client.patch(&path, PatchType::Merge, &json!({"status": status})).await?;
    renew(client, name).await
}

async fn renew(client: &Client, node: &str) -> Result<(), ClientError> {
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}");
    let now = micro_now();
    match client.get_opt(&path).await? {
        Some(mut lease) => {
            lease["spec"]["renewTime"] = json!(now);
            lease["spec"]["holderIdentity"] = json!(node);
            client.replace(&path, &lease).await.map(|_| ())
        }
        None => {
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": node, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": now},
            });
            client
                .create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", &lease)
                .await
                .map(|_| ())
        }
    }
}

fn micro_now() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    lichen_apimachinery::timestamp::format_rfc3339_micros(
        i64::try_from(d.as_secs()).unwrap_or(0),
        d.subsec_micros(),
    )
}

/// The pods (by uid) this process has started, so repeated events do not
/// start them twice.
type Started = Arc<Mutex<HashSet<String>>>;

async fn watch_pods(client: &Client, ours: &Arc<HashSet<String>>) -> Result<(), ClientError> {
    let started = Started::default();
    let list = client.get("/api/v1/pods").await?;
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap_or("0").to_owned();
    for pod in list["items"].as_array().into_iter().flatten() {
        handle(client, ours, &started, pod.clone());
    }
    let mut events = client.watch(&format!("/api/v1/pods?watch=true&resourceVersion={rv}")).await?;
    while let Some(ev) = events.recv().await {
        let ev = ev?;
        match ev.kind.as_str() {
            "ADDED" | "MODIFIED" => handle(client, ours, &started, ev.object),
            "DELETED" => {
                if let (Ok(mut s), Some(uid)) = (started.lock(), ev.object["metadata"]["uid"].as_str()) {
                    s.remove(uid);
                }
            }
            "ERROR" => return Ok(()),
            _ => {}
        }
    }
    Ok(())
}

/// Moves one pod along, in a task of its own.
fn handle(client: &Client, ours: &Arc<HashSet<String>>, started: &Started, pod: Value) {
    let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
    if !ours.contains(node) {
        return;
    }
    let (ns, name) = (
        pod["metadata"]["namespace"].as_str().unwrap_or("").to_owned(),
        pod["metadata"]["name"].as_str().unwrap_or("").to_owned(),
    );
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
    let client = client.clone();
    if pod["metadata"]["deletionTimestamp"].is_string() {
        let opts = json!({"gracePeriodSeconds": 0, "preconditions": {"uid": pod["metadata"]["uid"]}});
        tokio::spawn(async move {
            let _ = client.delete(&path, &opts).await;
        });
        return;
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
    if phase == "Succeeded" || phase == "Failed" {
        return;
    }
    let finishes = pod["spec"]["restartPolicy"].as_str().is_some_and(|p| p != "Always");
    // A running pod was started by this watch already (its finish is
    // scheduled) or by an earlier process; either way nothing to do.
    if phase == "Running" {
        return;
    }
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_owned();
    if started.lock().map(|mut s| !s.insert(uid)).unwrap_or(true) {
        return;
    }
    tokio::spawn(async move {
        let patch = json!({"status": running_status(&pod)});
        if let Err(e) = client.patch(&format!("{path}/status"), PatchType::Merge, &patch).await {
            tracing::debug!(pod = %name, error = %e, "hollow status not written");
            return;
        }
        if !finishes {
            return;
        }
        let ann = &pod["metadata"]["annotations"];
        let secs: f64 =
            ann["hollow.lichen.dev/run-seconds"].as_str().and_then(|s| s.parse().ok()).unwrap_or(1.0);
        let code: i64 = ann["hollow.lichen.dev/exit-code"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))).await;
        let status = finished_status(&pod, code);
        let _ = client.patch(&format!("{path}/status"), PatchType::Merge, &json!({"status": status})).await;
    });
}

fn container_names(pod: &Value) -> Vec<String> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn ip_for(pod: &Value) -> String {
    // A stable fake address from the pod's uid.
    let h = pod["metadata"]["uid"]
        .as_str()
        .unwrap_or("")
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("10.244.{}.{}", (h >> 8) % 256, h % 250 + 2)
}

fn running_status(pod: &Value) -> Value {
    let now = crate::now_rfc3339();
    let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": now});
    let statuses: Vec<Value> = container_names(pod)
        .iter()
        .zip(pod["spec"]["containers"].as_array().into_iter().flatten())
        .map(|(n, c)| {
            json!({"name": n, "image": c["image"], "imageID": "", "ready": true, "started": true,
                   "restartCount": 0, "state": {"running": {"startedAt": now}}})
        })
        .collect();
    json!({
        "phase": "Running",
        "hostIP": "10.99.0.1",
        "podIP": ip_for(pod),
        "podIPs": [{"ip": ip_for(pod)}],
        "startTime": now,
        "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")],
        "containerStatuses": statuses,
    })
}

fn finished_status(pod: &Value, code: i64) -> Value {
    let now = crate::now_rfc3339();
    let reason = if code == 0 { "Completed" } else { "Error" };
    let cond = |t: &str, s: &str| json!({"type": t, "status": s, "lastTransitionTime": now});
    let statuses: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": false, "started": false,
                   "restartCount": 0, "state": {"terminated": {"exitCode": code, "reason": reason, "finishedAt": now}}})
        })
        .collect();
    json!({
        "phase": if code == 0 { "Succeeded" } else { "Failed" },
        "conditions": [cond("PodReadyToStartContainers", "False"), cond("Initialized", "True"), cond("Ready", "False"),
                       cond("ContainersReady", "False"), cond("PodScheduled", "True")],
        "containerStatuses": statuses,
    })
}
