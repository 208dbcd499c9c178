//! `lichen`: the combined Kubernetes process. This binary only wires the
//! components together.
//!
//! `lichen server` creates or reuses the cluster PKI, opens the datastore,
//! serves the Kubernetes API and runs the controllers (in-process, through
//! the API server's router) and the node agent; `lichen agent` runs the
//! agent alone.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod renewal;
mod token;

#[derive(Parser)]
#[command(name = "lichen", version, about = "Lichen's Kubernetes process")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the API server, the controllers and the node agent.
    Server(ServerArgs),
    /// Test only: N "hollow" nodes that register, renew their Leases and
    /// report the pods bound to them Running and Ready without running
    /// anything (pods with restartPolicy Never/OnFailure succeed after a
    /// second), as upstream's kubemark.
    #[command(hide = true)]
    Hollow {
        #[arg(long)]
        server: String,
        #[arg(long)]
        ca_file: PathBuf,
        /// Client certificate and key (PEM) with rights over nodes and pods.
        #[arg(long)]
        cert_file: PathBuf,
        #[arg(long)]
        key_file: PathBuf,
        #[arg(long, default_value_t = 3)]
        nodes: u32,
        #[arg(long, default_value = "hollow-")]
        prefix: String,
        #[arg(long, default_value = "4")]
        cpu: String,
        #[arg(long, default_value = "16Gi")]
        memory: String,
    },
    /// Check the datastore: SQLite's integrity_check and the current
    /// revision (safe while the server runs).
    Datastore {
        /// The server's state directory.
        #[arg(long, default_value = "/var/lib/lichen/server")]
        data_dir: PathBuf,
    },
    /// Run the node agent alone, joining a remote API server.
    Agent {
        /// The API server, e.g. `https://10.0.0.1:6443`.
        #[arg(long)]
        server: String,
        /// A join token `K10<ca sha256>::<credential>` (the server's
        /// `pki/token` or one from `lichen token create`): the agent
        /// trusts only a server with that CA and gets its own client
        /// certificate. Any other token is a plain bearer token and needs
        /// `--ca-file`.
        #[arg(long, env = "LICHEN_TOKEN")]
        token: String,
        /// The cluster CA certificate (PEM), for a plain bearer token.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// How long to wait for the client certificate when joining.
        #[arg(long, default_value_t = 300)]
        join_timeout: u64,
        /// The cluster's pod range (the overlay masquerades what leaves it).
        #[arg(long, default_value = "10.42.0.0/16")]
        cluster_cidr: lichen_net::overlay::Cidr,
        #[command(flatten)]
        agent: AgentOpts,
    },
    /// Manage join tokens (bootstrap tokens) on a server node.
    Token(token::TokenArgs),
    /// Remove this node's Lichen networking (for a node leaving the cluster
    /// for good; stop lichen first): the nftables tables of the Service
    /// proxy, NetworkPolicy and overlay, the overlay device, the cluster
    /// DNS address and the pods' bridge.
    CleanupNetwork {
        #[command(flatten)]
        agent: AgentOpts,
    },
}

#[derive(clap::Args)]
struct ServerArgs {
    /// State: PKI, datastore.
    #[arg(long, default_value = "/var/lib/lichen/server")]
    data_dir: PathBuf,
    /// Address to serve the API on.
    #[arg(long, default_value = "0.0.0.0:6443")]
    bind: SocketAddr,
    /// Extra names or IPs for the serving certificate (repeatable).
    #[arg(long = "tls-san")]
    tls_san: Vec<String>,
    /// The range Services get cluster IPs from (IPv4).
    #[arg(long, default_value = "10.43.0.0/16")]
    service_cidr: lichen_apiserver::services::ServiceCidr,
    /// Static bearer tokens: CSV lines `token,user,uid,"group1,group2"`,
    /// as kube-apiserver's `--token-auth-file`.
    #[arg(long = "token-file")]
    token_file: Option<PathBuf>,
    #[command(flatten)]
    datastore: Datastore,
    /// Run without the node agent (an API server only).
    #[arg(long)]
    disable_agent: bool,
    /// Run without the controllers and the scheduler.
    #[arg(long)]
    disable_controllers: bool,
    /// The range nodes' pod CIDRs (a /24 each) are taken from.
    #[arg(long, default_value = "10.42.0.0/16")]
    cluster_cidr: lichen_controllers::nodeipam::Cidr,
    /// Seconds a node may go without a heartbeat before it is NotReady.
    #[arg(long, default_value_t = 40)]
    node_monitor_grace_period: u64,
    #[command(flatten)]
    agent: AgentOpts,
}

/// How the node agent runs pods.
#[derive(clap::Args, Clone)]
struct AgentOpts {
    /// The Node's name (default: the hostname).
    #[arg(long)]
    node_name: Option<String>,
    /// The node's address (default: the first non-loopback IPv4 address).
    #[arg(long)]
    node_ip: Option<std::net::IpAddr>,
    /// containerd's socket.
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    containerd: PathBuf,
    /// The agent's state (pod volumes).
    #[arg(long, default_value = "/var/lib/lichen/agent")]
    agent_dir: PathBuf,
    /// Where containerd writes container logs.
    #[arg(long, default_value = "/var/log/pods")]
    pod_log_dir: PathBuf,
    /// containerd's CNI `conf_dir` (the agent writes the conflist there).
    #[arg(long, default_value = "/etc/cni/net.d")]
    cni_conf_dir: PathBuf,
    /// host-local IPAM's lease directory.
    #[arg(long, default_value = "/run/lichen/cni")]
    cni_ipam_dir: PathBuf,
    /// This node's pod range (default: the one the controllers' node IPAM
    /// assigns; 10.42.0.0/24 for a server running without controllers).
    #[arg(long)]
    pod_cidr: Option<String>,
    /// The cgroup pods go under (`<root>/kubepods/...`).
    #[arg(long, default_value = "/")]
    cgroup_root: String,
    /// The agent endpoint's port (logs, exec, port-forward).
    #[arg(long, default_value_t = 10250)]
    agent_port: u16,
    /// The cluster DNS address, served on every node and given to pods
    /// (ClusterFirst): the tenth address of the service CIDR.
    #[arg(long, default_value_t = lichen_net::dns::DEFAULT_ADDRESS)]
    cluster_dns: std::net::Ipv4Addr,
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    #[arg(long, default_value_t = 110)]
    max_pods: u32,
    /// Directories of air-gap image tarballs, imported at start and on
    /// change (repeatable; default: `<agent-dir>/images`).
    #[arg(long = "images-dir")]
    images_dirs: Vec<PathBuf>,
    /// A file kept present while the node reports Ready (for a service
    /// supervisor's readiness check).
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Static pod manifests (default: `<agent-dir>/manifests`).
    #[arg(long)]
    manifests_dir: Option<PathBuf>,
    /// containerd's `ctr` (imports the air-gap images).
    #[arg(long, default_value = "ctr")]
    ctr: PathBuf,
    /// Unused images are removed when the image filesystem is fuller than
    /// this (percent) ...
    #[arg(long, default_value_t = 85, value_parser = clap::value_parser!(u8).range(0..=100))]
    image_gc_high_threshold: u8,
    /// ... until it is below this.
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(0..=100))]
    image_gc_low_threshold: u8,
    /// Seconds an image is kept at least, used or not.
    #[arg(long, default_value_t = 120)]
    image_gc_min_age: u64,
    /// Hard eviction thresholds, in upstream's syntax: below them the node
    /// reports MemoryPressure or DiskPressure and is tainted. Signals not
    /// named are off, as upstream's, and so are `0%` and `100%`.
    #[arg(long, default_value_t = lichen_kubelet::eviction::Thresholds::default())]
    eviction_hard: lichen_kubelet::eviction::Thresholds,
    /// Run without the Service proxy (nftables rules for Services).
    #[arg(long)]
    disable_proxy: bool,
    /// Run without the cluster DNS on this node.
    #[arg(long)]
    disable_dns: bool,
    /// Run without NetworkPolicy enforcement on this node.
    #[arg(long)]
    disable_network_policy: bool,
    /// Run without the VXLAN overlay (and its masquerading): pods reach
    /// only their own node unless another network connects the nodes.
    #[arg(long)]
    disable_overlay: bool,
}

/// Where the cluster state lives and how its history is trimmed.
#[derive(clap::Args, Clone)]
struct Datastore {
    /// `sqlite` (in the data directory) or `memory` (for tests and
    /// benchmarks: everything is lost at exit).
    #[arg(long = "datastore", default_value = "sqlite", value_parser = ["sqlite", "memory"])]
    backend: String,
    /// Seconds between compactions of the datastore's history.
    #[arg(long, default_value_t = 300)]
    compact_interval: u64,
    /// Revisions of history compaction keeps (watchers further behind
    /// must list again).
    #[arg(long, default_value_t = 1000)]
    compact_keep: i64,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Server(args) => server(args),
        Cmd::Hollow { server, ca_file, cert_file, key_file, nodes, prefix, cpu, memory } => {
            init_logging();
            let read =
                |p: &PathBuf| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
            let client = lichen_kubelet::client::ClientConfig {
                server,
                ca_pem: read(&ca_file)?,
                credentials: lichen_kubelet::client::Credentials::Certificate {
                    cert_pem: read(&cert_file)?,
                    key_pem: read(&key_file)?,
                },
            };
            let cfg = lichen_kubelet::hollow::Config { nodes, prefix, cpu, memory };
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            rt.block_on(lichen_kubelet::hollow::run(client, cfg))?;
            Ok(())
        }
        Cmd::CleanupNetwork { agent } => {
            init_logging();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let cidr = "10.42.0.0/16".parse().context("cluster CIDR")?;
            rt.block_on(Networking::new(&agent, cidr).cleanup())
        }
        Cmd::Token(args) => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(token::run(args))
        }
        Cmd::Datastore { data_dir } => {
            let path = data_dir.join("db/state.db");
            anyhow::ensure!(path.exists(), "no datastore at {}", path.display());
            let store = lichen_store::SqliteStore::open(&path).context("datastore")?;
            store.integrity_check().with_context(|| format!("{}", path.display()))?;
            let rev = lichen_store::Store::current_revision(&store)?;
            println!("{}: integrity ok, revision {rev}", path.display());
            Ok(())
        }
        Cmd::Agent { server, token, ca_file, join_timeout, cluster_cidr, agent } => {
            init_logging();
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let join = lichen_kubelet::join::JoinOptions {
                server,
                token,
                ca_file,
                node_name: agent.node_name.clone().unwrap_or_else(hostname),
                dir: agent.agent_dir.join("pki"),
                timeout: std::time::Duration::from_secs(join_timeout),
            };
            let client = rt.block_on(lichen_kubelet::join::credentials(&join))?;
            // A joined agent asks the cluster for its endpoint's
            // certificate once its Node is registered; with a plain bearer
            // token it is nobody the approver would sign for: no endpoint.
            let (serving, listener) = match &client.credentials {
                lichen_kubelet::client::Credentials::Certificate { .. } => {
                    let listener =
                        std::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, agent.agent_port))
                            .with_context(|| {
                                format!("binding the agent endpoint on port {}", agent.agent_port)
                            })?;
                    let dir = agent.agent_dir.join("pki");
                    let ca_pem = client.ca_pem.clone();
                    (lichen_kubelet::serving::ServingCert::Requested { dir, ca_pem }, Some(listener))
                }
                _ => {
                    tracing::warn!(
                        "a plain bearer token: no agent endpoint (no kubectl logs/exec on this node)"
                    );
                    (lichen_kubelet::serving::ServingCert::Off, None)
                }
            };
            let mut agent = agent;
            if let Some(l) = &listener {
                agent.agent_port = l.local_addr()?.port();
            }
            let networking = Networking::new(&agent, cluster_cidr);
            let joined = match &client.credentials {
                lichen_kubelet::client::Credentials::Certificate { cert_pem, .. } => Some(cert_pem.clone()),
                lichen_kubelet::client::Credentials::Token(_) => None,
            };
            let ca_pem = client.ca_pem.clone();
            let mut cfg = agent_config(&agent, client, serving);
            rt.block_on(async {
                cfg.pod_mtu = networking.pod_mtu().await;
                let node = lichen_kubelet::Agent::new(cfg)?;
                // One client (and so one client certificate, renewed in
                // place) for the agent and its networking.
                let api = node.client.clone();
                networking.spawn(|agent| api.with_user_agent(agent));
                if let Some(cert_pem) = joined {
                    tokio::spawn(async move {
                        lichen_kubelet::join::keep_renewed(api, join.node_name, join.dir, ca_pem, cert_pem)
                            .await;
                        // Nothing works without it; a restart joins again
                        // with the token.
                        eprintln!("lichen: the client certificate expired; exiting to join again");
                        std::process::exit(1);
                    });
                }
                node.run(listener).await;
                Ok(())
            })
        }
    }
}

fn init_logging() {
    // LICHEN_LOG=debug logs every request; info by default.
    let level = std::env::var("LICHEN_LOG").ok().and_then(|l| l.parse().ok()).unwrap_or(tracing::Level::INFO);
    // hickory-server logs every DNS query at info: only its warnings.
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(level)
        .with_target("hickory_server", tracing::Level::WARN.min(level))
        .with_target("hickory_proto", tracing::Level::WARN.min(level));
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false))
        .with(filter)
        .init();
}

/// The first non-loopback IPv4 address of this host, else 127.0.0.1.
fn default_node_ip() -> std::net::IpAddr {
    // A UDP "connect" picks the source address routing would use, sending nothing.
    let routed = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified());
    routed.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}

fn os_image() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "Linux".into())
}

/// A node's in-process networking (`lichen-net`): what runs, and how.
struct Networking {
    proxy: Option<lichen_net::proxy::Config>,
    dns: Option<lichen_net::dns::Config>,
    policy: Option<lichen_net::policy::Config>,
    overlay: Option<lichen_net::overlay::Config>,
}

impl Networking {
    fn new(o: &AgentOpts, cluster_cidr: lichen_net::overlay::Cidr) -> Networking {
        let node_name = o.node_name.clone().unwrap_or_else(hostname);
        let node_ip = o.node_ip.unwrap_or_else(default_node_ip);
        let overlay = match node_ip {
            _ if o.disable_overlay => None,
            std::net::IpAddr::V4(ip) => Some(lichen_net::overlay::Config::new(&node_name, ip, cluster_cidr)),
            std::net::IpAddr::V6(ip) => {
                tracing::warn!(%ip, "the overlay is IPv4 only: no overlay with an IPv6 node address");
                None
            }
        };
        Networking {
            overlay,
            proxy: (!o.disable_proxy).then(|| lichen_net::proxy::Config::new(&node_name, vec![node_ip])),
            dns: (!o.disable_dns).then(|| lichen_net::dns::Config::new(o.cluster_dns, &o.cluster_domain)),
            policy: (!o.disable_network_policy).then(|| lichen_net::policy::Config::new(&node_name)),
        }
    }

    /// The pods' MTU with the overlay: the node link's less VXLAN's 50
    /// bytes (`None`: the CNI default).
    async fn pod_mtu(&self) -> Option<u32> {
        let overlay = self.overlay.as_ref()?;
        match lichen_net::overlay::pod_mtu(overlay.node_ip).await {
            Ok(mtu) => Some(mtu),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the node link's MTU: pods get the CNI default");
                None
            }
        }
    }

    /// Removes what each part made on this node; every part is tried, the
    /// first failure is returned.
    async fn cleanup(self) -> anyhow::Result<()> {
        let mut failures = Vec::new();
        if let Some(cfg) = &self.proxy {
            lichen_net::proxy::cleanup(cfg).unwrap_or_else(|e| failures.push(format!("service proxy: {e}")));
        }
        if let Some(cfg) = &self.policy {
            lichen_net::policy::cleanup(cfg)
                .unwrap_or_else(|e| failures.push(format!("network policy: {e}")));
        }
        if let Some(cfg) = &self.overlay
            && let Err(e) = lichen_net::overlay::cleanup(cfg).await
        {
            failures.push(format!("overlay: {e}"));
        }
        if let Some(cfg) = &self.dns {
            let ip = match cfg.listen.ip() {
                std::net::IpAddr::V4(ip) => ip,
                std::net::IpAddr::V6(_) => lichen_net::dns::DEFAULT_ADDRESS,
            };
            if let Err(e) = lichen_net::dns::link::remove(&cfg.interface, ip).await {
                failures.push(format!("cluster DNS address: {e}"));
            }
        }
        // The pods' bridge, which the CNI bridge plugin made for the agent.
        let bridge = lichen_kubelet::cni::BRIDGE;
        match lichen_net::overlay::kernel::Netlink::connect() {
            Ok(nl) => {
                if let Err(e) = nl.delete_device(bridge).await {
                    failures.push(format!("bridge {bridge}: {e}"));
                }
            }
            Err(e) => failures.push(format!("bridge {bridge}: {e}")),
        }
        match failures.first() {
            None => {
                eprintln!("lichen networking removed from this node");
                Ok(())
            }
            Some(first) => {
                for f in &failures {
                    eprintln!("cleanup: {f}");
                }
                anyhow::bail!("cleanup incomplete: {first}")
            }
        }
    }

    /// Spawns each part with the client `client(user_agent)` gives.
    fn spawn(self, client: impl Fn(&str) -> lichen_kubelet::client::Client) {
        if let Some(cfg) = self.overlay {
            tokio::spawn(lichen_net::overlay::run(client("lichen-overlay"), cfg));
        }
        if let Some(cfg) = self.proxy {
            tokio::spawn(lichen_net::proxy::run(client("kube-proxy"), cfg));
        }
        if let Some(cfg) = self.dns {
            tokio::spawn(lichen_net::dns::run(client("lichen-dns"), cfg));
        }
        if let Some(cfg) = self.policy {
            tokio::spawn(lichen_net::policy::run(client("lichen-network-policy"), cfg));
        }
    }
}

fn agent_config(
    o: &AgentOpts,
    client: lichen_kubelet::client::ClientConfig,
    serving: lichen_kubelet::serving::ServingCert,
) -> lichen_kubelet::Config {
    lichen_kubelet::Config {
        node_name: o.node_name.clone().unwrap_or_else(hostname),
        node_ip: o.node_ip.unwrap_or_else(default_node_ip),
        client,
        containerd_socket: o.containerd.clone(),
        root_dir: o.agent_dir.clone(),
        pod_log_dir: o.pod_log_dir.clone(),
        cni_conf_dir: o.cni_conf_dir.clone(),
        cni_ipam_dir: o.cni_ipam_dir.clone(),
        pod_cidr: o.pod_cidr.clone(),
        pod_mtu: None,
        cgroup_root: o.cgroup_root.clone(),
        os_image: os_image(),
        kubelet_version: format!(
            "v{}.{}.0+lichen-{}",
            lichen_apiserver::version::KUBE_MAJOR,
            lichen_apiserver::version::KUBE_MINOR,
            env!("CARGO_PKG_VERSION")
        ),
        port: o.agent_port,
        max_pods: o.max_pods,
        cluster_dns: Some(std::net::IpAddr::V4(o.cluster_dns)),
        cluster_domain: o.cluster_domain.clone(),
        images_dirs: if o.images_dirs.is_empty() {
            vec![o.agent_dir.join("images")]
        } else {
            o.images_dirs.clone()
        },
        ctr: o.ctr.clone(),
        image_gc_high_percent: o.image_gc_high_threshold,
        image_gc_low_percent: o.image_gc_low_threshold.min(o.image_gc_high_threshold),
        image_gc_min_age: std::time::Duration::from_secs(o.image_gc_min_age),
        eviction_hard: o.eviction_hard,
        manifests_dir: Some(o.manifests_dir.clone().unwrap_or_else(|| o.agent_dir.join("manifests"))),
        serving,
        ready_file: o.ready_file.clone(),
    }
}

fn server(args: ServerArgs) -> anyhow::Result<()> {
    let ServerArgs {
        data_dir,
        bind,
        tls_san,
        service_cidr,
        token_file,
        datastore,
        disable_agent,
        disable_controllers,
        cluster_cidr,
        node_monitor_grace_period,
        agent,
    } = args;
    let tokens = match &token_file {
        Some(path) => lichen_apiserver::tokens::Tokens::load(path)?,
        None => lichen_apiserver::tokens::Tokens::default(),
    };
    let controllers = !disable_controllers;
    // Where pods and other nodes reach this server (the `kubernetes`
    // Service's endpoint): the bound address, else the node's.
    let advertise =
        Some(bind.ip()).filter(|ip| !ip.is_unspecified()).or(agent.node_ip).unwrap_or_else(default_node_ip);
    let cluster_dns = agent.cluster_dns;
    let agent = (!disable_agent).then(|| {
        let mut agent = agent;
        if !controllers && agent.pod_cidr.is_none() {
            agent.pod_cidr = Some("10.42.0.0/24".into());
        }
        agent
    });
    init_logging();
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let listener = std::net::TcpListener::bind(bind).with_context(|| format!("binding {bind}"))?;
    let port = listener.local_addr()?.port();
    let hostname = hostname();
    let mut opts = lichen_pki::PkiOptions::new(data_dir.join("pki"), &hostname);
    opts.extra_sans = tls_san;
    opts.server_url = format!("https://127.0.0.1:{port}");
    // Agents on other machines reach the server at its advertised address.
    for ip in [bind.ip(), advertise] {
        if !ip.is_unspecified() && !ip.is_loopback() && !opts.node_ips.contains(&ip) {
            opts.node_ips.push(ip);
        }
    }
    let (pki, report) = lichen_pki::Pki::load_or_create(&opts).context("cluster PKI")?;
    let pki_opts = opts;
    eprintln!("lichen: PKI in {}:\n{report}", pki.dir.display());
    let server_token = pki.load_or_create_token().context("the cluster join token")?;
    // Shared with the CSR signing controller.
    let pki = Arc::new(pki);
    let store: Arc<dyn lichen_store::Store> = if datastore.backend == "memory" {
        Arc::new(lichen_store::MemoryStore::new())
    } else {
        let db = data_dir.join("db");
        std::fs::create_dir_all(&db)?;
        let sqlite = Arc::new(lichen_store::SqliteStore::open(db.join("state.db")).context("datastore")?);
        compactor(sqlite.clone(), datastore.compact_interval, datastore.compact_keep);
        sqlite
    };
    // Every certificate the server holds is renewed in place before it
    // ends (renewal.rs): the API server's, its client's towards agents and,
    // below, the in-process agent's.
    let mut held = vec![renewal::Held::new(renewal::Kind::ApiServing, &pki.serving)?];
    let tls = lichen_apiserver::tls::server_config(&held[0].live, &pki.ca_cert_pem)?;
    // The in-process agent: a node identity and an endpoint certificate from
    // the cluster CA, issued at each start (nothing to rotate on disk).
    let year = renewal::VALIDITY;
    let now = std::time::SystemTime::now();
    let kubelet_client = {
        let c = pki.issue_client(lichen_kubelet::server::APISERVER_CLIENT_CN, &[], year, now)?;
        held.push(renewal::Held::new(renewal::Kind::KubeletClient, &c)?);
        lichen_apiserver::KubeletClient {
            certificate: held.last().map(|h| h.live.clone()),
            ca_pem: pki.ca_cert_pem.clone(),
        }
    };
    let agent = match agent {
        None => None,
        Some(o) => {
            let node_name = o.node_name.clone().unwrap_or_else(|| hostname.clone());
            let node_ip = o.node_ip.unwrap_or_else(default_node_ip);
            let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, o.agent_port))
                .with_context(|| format!("binding the agent endpoint on port {}", o.agent_port))?;
            let mut o = o;
            o.agent_port = listener.local_addr()?.port();
            o.node_name = Some(node_name.clone());
            o.node_ip = Some(node_ip);
            let id = pki.issue_client(&format!("system:node:{node_name}"), &["system:nodes"], year, now)?;
            let names = vec![node_name.clone(), node_ip.to_string(), "127.0.0.1".into(), "localhost".into()];
            let serving = pki.issue_serving(&node_name, &names, year, now)?;
            let endpoint =
                renewal::Held::new(renewal::Kind::AgentServing { node: node_name.clone(), names }, &serving)?;
            let serving = lichen_kubelet::serving::ServingCert::Given {
                certificate: endpoint.live.clone(),
                client_ca_pem: pki.ca_cert_pem.clone(),
            };
            held.push(endpoint);
            let client = lichen_kubelet::client::ClientConfig {
                server: format!("https://127.0.0.1:{port}"),
                ca_pem: pki.ca_cert_pem.clone(),
                credentials: lichen_kubelet::client::Credentials::Certificate {
                    cert_pem: id.cert_pem.clone(),
                    key_pem: id.key_pem.clone(),
                },
            };
            let cidr = cluster_cidr.to_string().parse().context("--cluster-cidr")?;
            Some((agent_config(&o, client, serving), listener, Networking::new(&o, cidr), id))
        }
    };
    let version = lichen_apiserver::version::Info::new(
        env!("CARGO_PKG_VERSION"),
        option_env!("LICHEN_GIT_COMMIT").unwrap_or("unknown"),
    );
    // Datastore calls run on blocking threads; SQLite serializes writes, so
    // a few threads do (each would otherwise cost a malloc arena and stack).
    let rt = tokio::runtime::Builder::new_multi_thread().max_blocking_threads(8).enable_all().build()?;
    let served = rt.block_on(async move {
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        let opts = lichen_apiserver::Options {
            version,
            service_cidr,
            tokens,
            kubelet_client,
            service_account_key_pem: pki.sa_key_pem.clone(),
            service_account_pub_pem: pki.sa_pub_pem.clone(),
            port,
            advertise_address: Some(advertise),
            join: lichen_apiserver::jointokens::JoinConfig {
                ca_pem: pki.ca_cert_pem.clone(),
                server_token: Some(server_token),
            },
        };
        let server = lichen_apiserver::Server::new(store, opts)?;
        if controllers {
            // In-process: the router itself, as a trusted identity.
            let identity = lichen_apiserver::Identity::master("system:lichen-controllers");
            let client = lichen_kubelet::client::Client::from_service(server.local(identity));
            let identity = format!("{hostname}_{}", std::process::id());
            let mut cfg = lichen_controllers::Config::new(&identity, &pki.ca_cert_pem);
            cfg.cluster_cidr = Some(cluster_cidr);
            cfg.node_lifecycle.grace = std::time::Duration::from_secs(node_monitor_grace_period);
            let signing = pki.clone();
            cfg.csr.signer = Some(lichen_controllers::csr::Signer::new(move |csr, usage, validity| {
                signing.sign_csr(csr, usage, validity, std::time::SystemTime::now())
            }));
            // No node may get a serving certificate for what the API
            // server's names (the same CA vouches for both).
            cfg.csr.reserved_names = lichen_pki::join::subject_alt_names(&pki.serving.cert_pem);
            tokio::spawn(lichen_controllers::run(client, cfg));
        }
        if let Some((mut agent_cfg, listener, networking, id)) = agent {
            agent_cfg.pod_mtu = networking.pod_mtu().await;
            // The CRI channel needs the runtime, so the agent is made here.
            let agent = lichen_kubelet::Agent::new(agent_cfg).context("node agent")?;
            if let Some(live) = agent.client.certificate() {
                let kind = renewal::Kind::AgentClient { node: agent.cfg.node_name.clone() };
                held.push(renewal::Held::sharing(kind, live.clone(), &id)?);
            }
            tokio::spawn(agent.run(Some(listener)));
            // In-process, as trusted identities named after the parts.
            networking.spawn(|agent| {
                let identity = lichen_apiserver::Identity::master(&format!("system:{agent}"));
                lichen_kubelet::client::Client::from_service(server.local(identity)).with_user_agent(agent)
            });
        }
        tokio::spawn(renewal::keep_renewed(pki_opts, held));
        // The cluster DNS address is a Service of its own (kube-system/kube-dns),
        // so that it is reserved and `kubectl get svc -A` shows it.
        let dns_client = lichen_kubelet::client::Client::from_service(
            server.local(lichen_apiserver::Identity::master("system:lichen-dns")),
        );
        tokio::spawn(async move {
            for attempt in 1.. {
                match lichen_net::dns::ensure_service(&dns_client, cluster_dns).await {
                    Ok(_) => break,
                    Err(e) => tracing::warn!(error = %e, attempt, "cannot create the kube-dns Service; retrying"),
                }
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
        });
        eprintln!(
            "lichen: server ready on https://{bind} (port {port}) in {} ms; admin kubeconfig: {}",
            started.elapsed().as_millis(),
            pki.dir.join(lichen_pki::file::ADMIN_KUBECONFIG).display()
        );
        server.serve(listener, tls, shutdown).await.map_err(anyhow::Error::from)
    });
    // In-process watches of the controllers and the agent hold blocking
    // datastore waits; do not let them delay the exit.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    served?;
    eprintln!("lichen: server stopped");
    Ok(())
}

/// Trims the datastore's history every `compact_interval` seconds, keeping
/// the last `compact_keep` revisions (as kine: failures are logged and
/// retried, never silently dropped).
fn compactor(store: Arc<lichen_store::SqliteStore>, interval: u64, keep: i64) {
    let spawned = std::thread::Builder::new().name("compactor".into()).spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(interval.max(1)));
            match store.compact_older_than(keep) {
                Ok(rev) => tracing::debug!(compacted = rev, "datastore compacted"),
                Err(e) => tracing::warn!(error = %e, "datastore compaction failed; retrying next interval"),
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no compaction thread");
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "lichen".into())
}
