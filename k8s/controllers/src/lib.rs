//! lichen-controllers: the controllers and the scheduler of `lichen server`.
//!
//! They speak only the Kubernetes API through [`lichen_client::Client`]
//! (in-process to the API server's router, or over HTTPS), never the store,
//! so several servers can share one datastore: only the holder of the
//! `kube-system/lichen-controllers` Lease runs them ([`leader`]). Each
//! controller keeps upstream's behaviour (status fields, conditions,
//! events) so kubectl and client tools see what they expect. Shared
//! watched caches ([`informer`]) and work queues ([`queue`]) carry the
//! changes; a controller's sync reads the caches and writes through the API.

pub mod claim;
pub mod clock;
pub mod cronjob;
pub mod csr;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod events;
pub mod history;
pub mod informer;
pub mod job;
pub mod leader;
pub mod meta;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod podgc;
pub mod queue;
pub mod replicaset;
pub mod scheduler;
pub mod serviceaccount;
pub mod statefulset;
pub mod tokencleaner;
pub mod ttl;

use std::future::Future;
use std::time::Duration;

use lichen_client::{Client, ClientError};
use tokio::task::JoinSet;

use informer::Informer;
use queue::Queue;

/// Why a sync failed; it is retried with back-off.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The object cannot be acted on as it is (a bad selector, ...).
    #[error("{0}")]
    Invalid(String),
}

/// The shared caches; cheap to clone. Only those a controller uses
/// ([`Informer::on_change`] or [`Informer::needed`]) list and watch.
#[derive(Clone)]
pub struct Informers {
    pub pods: Informer,
    pub nodes: Informer,
    pub namespaces: Informer,
    pub replicasets: Informer,
    pub deployments: Informer,
    pub jobs: Informer,
    pub cronjobs: Informer,
    pub daemonsets: Informer,
    pub statefulsets: Informer,
    pub controllerrevisions: Informer,
    pub pvcs: Informer,
    pub services: Informer,
    pub endpoints: Informer,
    pub endpointslices: Informer,
    pub serviceaccounts: Informer,
    pub configmaps: Informer,
    /// The nodes' Leases (`kube-node-lease`).
    pub node_leases: Informer,
    pub pdbs: Informer,
}

impl Informers {
    pub fn new() -> Informers {
        Informers {
            pods: Informer::new("/api/v1/pods"),
            nodes: Informer::new("/api/v1/nodes"),
            namespaces: Informer::new("/api/v1/namespaces"),
            replicasets: Informer::new("/apis/apps/v1/replicasets"),
            deployments: Informer::new("/apis/apps/v1/deployments"),
            jobs: Informer::new("/apis/batch/v1/jobs"),
            cronjobs: Informer::new("/apis/batch/v1/cronjobs"),
            daemonsets: Informer::new("/apis/apps/v1/daemonsets"),
            statefulsets: Informer::new("/apis/apps/v1/statefulsets"),
            controllerrevisions: Informer::new("/apis/apps/v1/controllerrevisions"),
            pvcs: Informer::new("/api/v1/persistentvolumeclaims"),
            services: Informer::new("/api/v1/services"),
            endpoints: Informer::new("/api/v1/endpoints"),
            endpointslices: Informer::new("/apis/discovery.k8s.io/v1/endpointslices"),
            serviceaccounts: Informer::new("/api/v1/serviceaccounts"),
            configmaps: Informer::new("/api/v1/configmaps"),
            node_leases: Informer::new("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"),
            pdbs: Informer::new("/apis/policy/v1/poddisruptionbudgets"),
        }
    }

    fn all(&self) -> Vec<&Informer> {
        vec![
            &self.pods,
            &self.nodes,
            &self.namespaces,
            &self.replicasets,
            &self.deployments,
            &self.jobs,
            &self.cronjobs,
            &self.daemonsets,
            &self.statefulsets,
            &self.controllerrevisions,
            &self.pvcs,
            &self.services,
            &self.endpoints,
            &self.endpointslices,
            &self.serviceaccounts,
            &self.configmaps,
            &self.node_leases,
            &self.pdbs,
        ]
    }

    /// Starts the informers some controller uses.
    pub fn run(&self, tasks: &mut JoinSet<()>, client: &Client) {
        for inf in self.all() {
            if inf.is_needed() {
                tasks.spawn(inf.clone().run(client.clone()));
            }
        }
    }
}

impl Default for Informers {
    fn default() -> Self {
        Informers::new()
    }
}

/// What the controllers need to know about the cluster.
#[derive(Clone, Debug)]
pub struct Config {
    /// Who this process is in the leader election (unique per process).
    pub identity: String,
    /// The cluster CA (PEM), published as `kube-root-ca.crt` in every
    /// namespace.
    pub root_ca_pem: String,
    /// Where nodes' pod ranges come from (`None`: no node IPAM).
    pub cluster_cidr: Option<nodeipam::Cidr>,
    /// Each node's range size (prefix length).
    pub node_cidr_prefix: u8,
    pub node_lifecycle: nodelifecycle::Config,
    /// Terminated pods kept before the oldest are deleted.
    pub terminated_pod_threshold: usize,
    /// The CSR controllers: signer, cleaner, names reserved to the API server.
    pub csr: csr::Config,
    /// How often expired bootstrap tokens are looked for.
    pub token_cleaner_interval: Duration,
}

impl Config {
    /// Upstream's defaults with k3s's cluster CIDR.
    pub fn new(identity: &str, root_ca_pem: &str) -> Config {
        Config {
            identity: identity.to_owned(),
            root_ca_pem: root_ca_pem.to_owned(),
            cluster_cidr: "10.42.0.0/16".parse().ok(),
            node_cidr_prefix: 24,
            node_lifecycle: nodelifecycle::Config::default(),
            terminated_pod_threshold: podgc::THRESHOLD,
            csr: csr::Config::default(),
            token_cleaner_interval: Duration::from_secs(30),
        }
    }
}

/// Runs the controllers for the life of the task, while leading.
pub async fn run(client: Client, cfg: Config) {
    let election = leader::Election::new("kube-system", "lichen-controllers", &cfg.identity);
    election
        .run(client.clone(), move || {
            let (client, cfg) = (client.clone(), cfg.clone());
            async move { lead(client, cfg).await }
        })
        .await;
}

/// Everything a leader runs; returns never (it is aborted on lost leadership).
async fn lead(client: Client, cfg: Config) {
    let mut tasks = JoinSet::new();
    let informers = Informers::new();
    // Field managers and events carry upstream's component names.
    let version = concat!("/v", env!("CARGO_PKG_VERSION"), " (lichen)");
    let scheduler_client = client.with_user_agent(&format!("kube-scheduler{version}"));
    let client = client.with_user_agent(&format!("kube-controller-manager{version}"));
    scheduler::start(&mut tasks, &scheduler_client, &informers);
    replicaset::start(&mut tasks, &client, &informers);
    deployment::start(&mut tasks, &client, &informers);
    job::start(&mut tasks, &client, &informers);
    cronjob::start(&mut tasks, &client, &informers);
    daemonset::start(&mut tasks, &client, &informers);
    statefulset::start(&mut tasks, &client, &informers);
    endpoints::start(&mut tasks, &client, &informers);
    disruption::start(&mut tasks, &client, &informers);
    serviceaccount::start(&mut tasks, &client, &informers, &cfg.root_ca_pem);
    nodelifecycle::start(&mut tasks, &client, &informers, cfg.node_lifecycle.clone());
    podgc::start(&mut tasks, &client, &informers, cfg.terminated_pod_threshold);
    if let Some(cidr) = cfg.cluster_cidr {
        nodeipam::start(&mut tasks, &client, &informers, cidr, cfg.node_cidr_prefix);
    }
    ttl::start(&mut tasks, &client, &informers);
    csr::start(&mut tasks, &client, cfg.csr.clone());
    tokencleaner::start(&mut tasks, &client, cfg.token_cleaner_interval);
    informers.run(&mut tasks, &client);
    while tasks.join_next().await.is_some() {}
}

/// Runs `workers` tasks taking keys from `queue` once `synced` caches are
/// filled. `sync` returns when to look again (`Some`), and failures are
/// retried with back-off.
pub fn spawn_workers<F, Fut>(
    tasks: &mut JoinSet<()>,
    name: &'static str,
    queue: &Queue,
    synced: Vec<Informer>,
    workers: usize,
    sync: F,
) where
    F: Fn(String) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<Option<Duration>, Error>> + Send,
{
    for _ in 0..workers {
        let (queue, sync, synced) = (queue.clone(), sync.clone(), synced.clone());
        tasks.spawn(async move {
            for inf in &synced {
                inf.synced().await;
            }
            loop {
                let key = queue.next().await;
                match sync(key.clone()).await {
                    Ok(again) => {
                        queue.forget(&key);
                        if let Some(after) = again {
                            queue.add_after(&key, after);
                        }
                    }
                    Err(e) => {
                        // Conflicts are the normal cost of optimistic
                        // concurrency: retried quietly.
                        let conflict = matches!(&e, Error::Client(c) if c.is_conflict());
                        if conflict {
                            tracing::debug!(controller = name, key = %key, error = %e, "sync conflict; retrying");
                        } else {
                            tracing::info!(controller = name, key = %key, error = %e, "sync failed; retrying");
                        }
                        queue.retry(&key);
                    }
                }
                queue.done(&key);
            }
        });
    }
}
