//! Controllers against the real API server on an in-memory store,
//! in-process: no sockets, no TLS.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lichen_client::Client;
use serde_json::{Value, json};

pub struct Cluster {
    pub client: Client,
    _server: Option<lichen_apiserver::Server>,
}

impl Cluster {
    /// An API server on a fresh in-memory store, with the controllers
    /// running (`controllers: false` for the API server alone).
    pub fn start(controllers: bool) -> Cluster {
        let store: Arc<dyn lichen_store::Store> = Arc::new(lichen_store::MemoryStore::new());
        let opts = lichen_apiserver::Options::new(lichen_apiserver::version::Info::new("0.0.0", "test"));
        let server = lichen_apiserver::Server::new(store, opts).unwrap();
        let admin = lichen_apiserver::Identity::master("system:lichen-controllers");
        let client = Client::from_service(server.local(admin));
        if controllers {
            let mut cfg = lichen_controllers::Config::new(
                "test",
                "-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n",
            );
            cfg.node_lifecycle.grace = Duration::from_secs(3);
            cfg.node_lifecycle.period = Duration::from_millis(500);
            cfg.token_cleaner_interval = Duration::from_millis(500);
            tokio::spawn(lichen_controllers::run(client.clone(), cfg));
        }
        Cluster { client, _server: Some(server) }
    }

    /// A Ready node with `cpu` cores, `mem_gi` GiB and 110 pods, whose
    /// Lease is renewed every second (as an agent's) while the test runs.
    pub async fn node(&self, name: &str, cpu: u32, mem_gi: u32, labels: Value, taints: Value) {
        self.silent_node(name, cpu, mem_gi, labels, taints).await;
        let (client, name) = (self.client.clone(), name.to_owned());
        tokio::spawn(async move {
            let path = format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}");
            let mut n = 0u64;
            loop {
                n += 1;
                let lease = json!({
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": name, "namespace": "kube-node-lease"},
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                             "renewTime": format!("2020-01-01T00:00:00.{:06}Z", n % 1_000_000)},
                });
                let patch = json!({"spec": lease["spec"]});
                if client.patch(&path, lichen_client::PatchType::Merge, &patch).await.is_err() {
                    let _ = client
                        .create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", &lease)
                        .await;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }

    /// A Ready node that never renews its Lease.
    pub async fn silent_node(&self, name: &str, cpu: u32, mem_gi: u32, labels: Value, taints: Value) {
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints},
        });
        self.client.create("/api/v1/nodes", &node).await.unwrap();
        let status = json!({
            "capacity": {"cpu": cpu.to_string(), "memory": format!("{mem_gi}Gi"), "pods": "110"},
            "allocatable": {"cpu": cpu.to_string(), "memory": format!("{mem_gi}Gi"), "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}],
        });
        let path = format!("/api/v1/nodes/{name}/status");
        self.client.patch(&path, lichen_client::PatchType::Merge, &json!({"status": status})).await.unwrap();
    }

    pub async fn get(&self, path: &str) -> Value {
        self.client.get(path).await.unwrap()
    }

    pub async fn create(&self, path: &str, obj: Value) -> Value {
        self.client.create(path, &obj).await.unwrap()
    }

    /// Polls `f` until it returns `Some`, or panics after `timeout` naming `what`.
    pub async fn until<T, F, Fut>(&self, what: &str, timeout: Duration, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let start = Instant::now();
        loop {
            if let Some(v) = f().await {
                return v;
            }
            assert!(start.elapsed() < timeout, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn pods(&self, ns: &str) -> Vec<Value> {
        self.get(&format!("/api/v1/namespaces/{ns}/pods")).await["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Marks every bound pod Running and Ready, as a hollow agent would.
    pub async fn run_pods(&self, ns: &str) {
        for mut p in self.pods(ns).await {
            let pending = matches!(p["status"]["phase"].as_str(), None | Some("Pending"));
            if p["spec"]["nodeName"].as_str().unwrap_or("").is_empty() || !pending {
                continue;
            }
            let now = "2020-01-01T00:00:00Z";
            let ip = format!(
                "10.244.0.{}",
                p["metadata"]["name"].as_str().unwrap().bytes().map(u32::from).sum::<u32>() % 250 + 2
            );
            p["status"] = json!({"phase": "Running", "podIP": ip, "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            ]});
            let path =
                format!("/api/v1/namespaces/{ns}/pods/{}/status", p["metadata"]["name"].as_str().unwrap());
            let _ = self.client.replace(&path, &p).await;
        }
    }
}

pub fn events_for(events: &Value, name: &str, reason: &str) -> Vec<String> {
    events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["name"] == name && e["reason"] == reason)
        .map(|e| e["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

impl Cluster {
    /// Plays the node agents for `ns` until the task is dropped: bound pods
    /// turn Running and Ready, deleted pods go away.
    pub fn hollow(&self, ns: &str) -> tokio::task::JoinHandle<()> {
        let (client, ns) = (self.client.clone(), ns.to_owned());
        tokio::spawn(async move {
            let c = Cluster { client, _server: None };
            loop {
                c.run_pods(&ns).await;
                for p in c.pods(&ns).await {
                    if p["metadata"]["deletionTimestamp"].is_string() {
                        let path = format!(
                            "/api/v1/namespaces/{ns}/pods/{}",
                            p["metadata"]["name"].as_str().unwrap()
                        );
                        let _ = c.client.delete(&path, &json!({"gracePeriodSeconds": 0})).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    /// An API server with only the controllers `start` starts, on shared
    /// informers and without leader election (to pass options such as a
    /// manual clock).
    pub fn start_with(
        start: impl FnOnce(&mut tokio::task::JoinSet<()>, &Client, &lichen_controllers::Informers),
    ) -> Cluster {
        let c = Cluster::start(false);
        let mut tasks = tokio::task::JoinSet::new();
        let informers = lichen_controllers::Informers::new();
        start(&mut tasks, &c.client, &informers);
        informers.run(&mut tasks, &c.client);
        tokio::spawn(async move { while tasks.join_next().await.is_some() {} });
        c
    }

    /// Ends up to `max` running pods of `ns` in `phase` (`Succeeded` or
    /// `Failed`), as an agent would report them; returns their names.
    pub async fn finish_pods(&self, ns: &str, phase: &str, max: usize) -> Vec<String> {
        let mut done = Vec::new();
        for mut p in self.pods(ns).await {
            if done.len() >= max
                || p["status"]["phase"] != "Running"
                || p["metadata"]["deletionTimestamp"].is_string()
            {
                continue;
            }
            let now = lichen_apimachinery::timestamp::format_rfc3339(
                i64::try_from(
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
                )
                .unwrap(),
            );
            let code = if phase == "Succeeded" { 0 } else { 1 };
            p["status"] = json!({"phase": phase, "conditions": [
                {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            ], "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
                    "startedAt": now, "finishedAt": now}}}]});
            let name = p["metadata"]["name"].as_str().unwrap().to_owned();
            let path = format!("/api/v1/namespaces/{ns}/pods/{name}/status");
            if self.client.replace(&path, &p).await.is_ok() {
                done.push(name);
            }
        }
        done
    }

    /// Events about `name` with `reason` in `ns`.
    pub async fn events(&self, ns: &str, name: &str, reason: &str) -> Vec<String> {
        events_for(&self.get(&format!("/api/v1/namespaces/{ns}/events")).await, name, reason)
    }
}

/// The status of the condition `kind` of an object, if it has one.
pub fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)
}

impl Cluster {
    /// Marks bound Pending pods Running and Ready (unlike `run_pods`,
    /// finished pods stay finished).
    pub async fn start_pods(&self, ns: &str) {
        for mut p in self.pods(ns).await {
            let bound = !p["spec"]["nodeName"].as_str().unwrap_or("").is_empty();
            if !bound || p["status"]["phase"] != "Pending" || p["metadata"]["deletionTimestamp"].is_string() {
                continue;
            }
            let now = "2020-01-01T00:00:00Z";
            p["status"]["phase"] = json!("Running");
            p["status"]["conditions"] = json!([
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            ]);
            let path =
                format!("/api/v1/namespaces/{ns}/pods/{}/status", p["metadata"]["name"].as_str().unwrap());
            let _ = self.client.replace(&path, &p).await;
        }
    }
}

impl Cluster {
    /// A client of this cluster's API server acting as `identity` (RBAC
    /// applies unless it is in `system:masters`).
    pub fn client_as(&self, identity: lichen_apiserver::Identity) -> Client {
        Client::from_service(self._server.as_ref().expect("a cluster with its server").local(identity))
    }
}
