//! `lichen agent`: the kubelet half of a Lichen node.
//!
//! It registers the Node and keeps its status and Lease current, runs the
//! pods bound to the node in containerd over CRI v1, reports their status,
//! and serves container logs (and, through the API server, exec, attach and
//! port-forward) on its own HTTPS port.
//!
//! It talks to the cluster only through the API server's REST API (the same
//! way in-process and on a joined machine) and to the runtime only through
//! CRI. It must not open the datastore or decide scheduling.

pub use lichen_client as client;
pub mod cni;
pub mod cri;
pub mod events;
pub mod eviction;
pub mod exec;
pub mod hollow;
pub mod images;
pub mod join;
pub mod logs;
pub mod node;
pub mod pods;
pub mod portforward;
pub mod server;
pub mod serving;
pub mod spdy;
pub mod spec;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::watch;

/// Everything the agent is told at start.
#[derive(Clone)]
pub struct Config {
    pub node_name: String,
    pub node_ip: IpAddr,
    pub client: client::ClientConfig,
    /// containerd's socket.
    pub containerd_socket: PathBuf,
    /// The agent's state: pod volumes under `pods/<uid>/`.
    pub root_dir: PathBuf,
    /// Where containerd writes container logs (`<ns>_<pod>_<uid>/<ctr>/<n>.log`).
    pub pod_log_dir: PathBuf,
    /// Where the CNI network config is written (containerd's `conf_dir`).
    pub cni_conf_dir: PathBuf,
    /// The pod range of this node when the Node has none in `spec.podCIDR`.
    pub pod_cidr: Option<String>,
    /// The pods' interface MTU (the overlay's: the underlay's minus 50);
    /// none leaves the CNI bridge plugin's default (the bridge's MTU).
    pub pod_mtu: Option<u32>,
    /// The cgroup under which pods are placed (`<root>/kubepods/...`).
    pub cgroup_root: String,
    /// `nodeInfo.osImage`.
    pub os_image: String,
    /// `nodeInfo.kubeletVersion`.
    pub kubelet_version: String,
    /// The port the agent's HTTPS server listens on (`daemonEndpoints`).
    pub port: u16,
    pub max_pods: u32,
    /// The cluster DNS server and domain, for ClusterFirst pods.
    pub cluster_dns: Option<IpAddr>,
    pub cluster_domain: String,
    /// host-local IPAM's lease directory (pods' IPs); under /run so a
    /// reboot, which recreates every pod, starts with no stale leases.
    pub cni_ipam_dir: PathBuf,
    /// Static pod manifests; none runs no static pods.
    pub manifests_dir: Option<PathBuf>,
    /// Directories of air-gap image tarballs to import: the ones baked
    /// into the OS image (`/usr/lib/lichen/images`) and the user's
    /// (`/var/lib/lichen/agent/images`).
    pub images_dirs: Vec<PathBuf>,
    /// containerd's `ctr`, which imports them.
    pub ctr: PathBuf,
    /// Image garbage collection starts above this percent of the image
    /// filesystem in use and stops below the low mark (upstream: 85, 80).
    pub image_gc_high_percent: u8,
    pub image_gc_low_percent: u8,
    /// Images younger than this are never collected.
    pub image_gc_min_age: std::time::Duration,
    /// Hard eviction thresholds: the pressure conditions and allocatable.
    pub eviction_hard: eviction::Thresholds,
    /// The agent endpoint's certificate (logs, exec, attach, port-forward).
    pub serving: serving::ServingCert,
    /// Written (with the time) while the node reports Ready, removed while
    /// it does not: the readiness signal of the service supervisor that
    /// runs the agent (lichen-init), which speaks no Kubernetes API.
    pub ready_file: Option<PathBuf>,
}

/// The agent endpoint's certificate and the CA its clients must come from.
#[derive(Clone)]
pub struct Serving {
    pub cert_pem: String,
    pub key_pem: String,
    pub client_ca_pem: String,
}

/// The running agent's shared state; cheap to clone.
#[derive(Clone)]
pub struct Agent {
    pub cfg: Arc<Config>,
    pub client: client::Client,
    pub cri: cri::Cri,
    /// Whether the runtime reported ready at the last check.
    pub runtime_ready: Arc<watch::Sender<bool>>,
    /// The Node object as last written.
    pub node_object: Arc<watch::Sender<Option<Value>>>,
    pub pods: Arc<pods::Registry>,
    /// Set once the first list of this node's pods is in.
    pub pods_listed: Arc<watch::Sender<bool>>,
    /// Set once the static pod manifests were read (or there are none).
    pub statics_scanned: Arc<watch::Sender<bool>>,
}

impl Agent {
    pub fn new(cfg: Config) -> anyhow::Result<Agent> {
        let client = client::Client::new(&cfg.client)?;
        let cri = cri::Cri::new(&cfg.containerd_socket)?;
        Ok(Agent {
            cfg: Arc::new(cfg),
            client,
            cri,
            runtime_ready: Arc::new(watch::channel(false).0),
            node_object: Arc::new(watch::channel(None).0),
            pods: Arc::new(pods::Registry::default()),
            pods_listed: Arc::new(watch::channel(false).0),
            statics_scanned: Arc::new(watch::channel(false).0),
        })
    }

    /// Runs the agent until the process ends; `listener` (already bound,
    /// so the port is known for the Node object) serves the agent endpoint.
    pub async fn run(self, listener: Option<std::net::TcpListener>) {
        for dir in [&self.cfg.root_dir, &self.cfg.pod_log_dir] {
            if let Err(e) = std::fs::create_dir_all(dir) {
                tracing::error!(dir = %dir.display(), error = %e, "cannot create agent directory");
            }
        }
        let listener =
            listener.map(|l| l.set_nonblocking(true).and_then(|_| tokio::net::TcpListener::from_std(l)));
        match (&self.cfg.serving, listener) {
            (_, Some(Err(e))) => {
                tracing::error!(error = %e, "agent endpoint: cannot listen; logs and exec unavailable");
            }
            (serving::ServingCert::Given { certificate, client_ca_pem }, Some(Ok(l))) => {
                self.serve(certificate, client_ca_pem, l);
            }
            (serving::ServingCert::Requested { dir, ca_pem }, Some(Ok(l))) => {
                let (agent, dir, ca_pem) = (self.clone(), dir.clone(), ca_pem.clone());
                tokio::spawn(async move {
                    // Until there is a certificate, connections are closed at
                    // once, so the API server says the agent cannot be
                    // reached instead of waiting on a handshake.
                    let s = {
                        let obtain = serving::obtain(&agent, &dir, &ca_pem);
                        tokio::pin!(obtain);
                        loop {
                            tokio::select! {
                                s = &mut obtain => break s,
                                early = l.accept() => {
                                    // Out of descriptors and the like: do not spin.
                                    if early.is_err() {
                                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                                    }
                                }
                            }
                        }
                    };
                    let live = match client::LiveCertificate::new(&s.cert_pem, &s.key_pem) {
                        Ok(live) => live,
                        Err(e) => {
                            tracing::error!(error = %e, "agent endpoint: bad TLS material; logs and exec unavailable");
                            return;
                        }
                    };
                    if agent.serve(&live, &s.client_ca_pem, l) {
                        serving::keep_renewed(agent, dir, ca_pem, live, s.cert_pem).await;
                    }
                });
            }
            _ => {}
        }
        tokio::spawn(node::run(self.clone()));
        tokio::spawn(cni::run(self.clone()));
        // Pods start once the air-gap images are in, so the first pods do
        // not try a registry for an image that is about to be imported.
        let _importer = images::initial_then_watch(self.clone()).await;
        pods::run(self).await;
    }
}

impl Agent {
    /// Starts the agent endpoint on `listener`, presenting `certificate`
    /// (replaceable while it serves); whether it started.
    fn serve(
        &self,
        certificate: &client::LiveCertificate,
        client_ca_pem: &str,
        listener: tokio::net::TcpListener,
    ) -> bool {
        match server::tls_config(certificate, client_ca_pem) {
            Ok(tls) => {
                tracing::info!(addr = ?listener.local_addr().ok(), "agent endpoint listening");
                tokio::spawn(server::serve(self.clone(), listener, tls));
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "agent endpoint: bad TLS material; logs and exec unavailable");
                false
            }
        }
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn now_rfc3339() -> String {
    lichen_apimachinery::timestamp::format_rfc3339(unix_now())
}
