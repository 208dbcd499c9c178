//! Cluster DNS, served in-process on every node (as k3s embeds CoreDNS,
//! but with no pods): the records of the CoreDNS kubernetes plugin for
//! the cluster zone (`index`), everything else forwarded to the node's
//! resolvers (`upstream`). UDP and TCP, through hickory-server with a
//! request handler of our own (`server`).
//!
//! The cluster DNS address (10.43.0.10) is node-local: `run` puts it as a
//! /32 on a dummy interface (`lichen-dns`, `link`) and listens on it, so
//! pods' packets to it reach the local host. The Service
//! `kube-system/kube-dns` (`ensure_service`, made by the server) reserves
//! the address; it carries `lichen.dev/node-local: "true"`, which the
//! Service proxy leaves alone.
//!
//! Services and EndpointSlices of all namespaces are watched with the
//! proxy's informer; the index is rebuilt whole after changes (at most
//! every `min_rebuild`). `run` never returns and never stops the process:
//! failures (API unreachable, bind or netlink errors) are logged and
//! retried with back-off. It does not write to the API, verify pod names
//! against Pods (`pods insecure`), cache forwarded answers, or serve DNSSEC.

pub mod index;
pub mod link;
pub mod server;
pub mod upstream;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use lichen_client::{Client, ClientError};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::proxy::informer;

pub use index::{Answer, Index};

/// Label of Services whose address is served on each node itself; the
/// Service proxy does not program them.
pub const NODE_LOCAL_LABEL: &str = "lichen.dev/node-local";

/// The default cluster DNS address: the tenth of 10.43.0.0/16.
pub const DEFAULT_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 10);

/// How cluster DNS runs on this node.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen, UDP and TCP (`10.43.0.10:53`).
    pub listen: SocketAddr,
    /// Put `listen`'s address as a /32 on the dummy interface
    /// `interface` before binding (the node-local mode; tests turn it
    /// off and listen on loopback).
    pub manage_interface: bool,
    /// The dummy interface (`lichen-dns`).
    pub interface: String,
    /// The cluster zone (`cluster.local`).
    pub cluster_domain: String,
    /// Resolvers for names outside the cluster zone, tried in order.
    pub upstream: Vec<SocketAddr>,
    /// TTL of the cluster records, and the SOA's negative TTL (5 s, as
    /// CoreDNS).
    pub ttl: u32,
    /// Time allowed to each upstream resolver (2 s).
    pub upstream_timeout: Duration,
    /// Least time between two rebuilds of the index (100 ms).
    pub min_rebuild: Duration,
    /// How often the interface and its address are checked and restored
    /// (30 s).
    pub resync: Duration,
}

impl Config {
    /// Defaults: listen on `address`:53 on the dummy interface
    /// `lichen-dns`, zone `cluster_domain`, TTL 5 s, upstream from
    /// `/etc/resolv.conf` (see `upstream_from`).
    pub fn new(address: Ipv4Addr, cluster_domain: &str) -> Config {
        let listen = SocketAddr::new(IpAddr::V4(address), 53);
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        Config {
            listen,
            manage_interface: true,
            interface: "lichen-dns".into(),
            cluster_domain: cluster_domain.trim_end_matches('.').to_owned(),
            upstream: upstream_from(&resolv, listen),
            ttl: 5,
            upstream_timeout: Duration::from_secs(2),
            min_rebuild: Duration::from_millis(100),
            resync: Duration::from_secs(30),
        }
    }
}

/// The nameservers of resolv.conf `text` that would not send queries
/// back to us: every one but `listen` itself (a loopback stub resolver
/// elsewhere, such as 127.0.0.53, is kept).
pub fn upstream_from(text: &str, listen: SocketAddr) -> Vec<SocketAddr> {
    upstream::nameservers(text).into_iter().filter(|s| *s != listen && s.ip() != listen.ip()).collect()
}

/// Why `ensure_service` failed.
#[derive(Debug, thiserror::Error)]
pub enum EnsureServiceError {
    #[error("reading service kube-system/kube-dns")]
    Get(#[source] ClientError),
    #[error("creating namespace kube-system")]
    Namespace(#[source] ClientError),
    #[error("creating service kube-system/kube-dns")]
    Create(#[source] ClientError),
}

const KUBE_DNS: &str = "/api/v1/namespaces/kube-system/services/kube-dns";

/// The Service `kube-system/kube-dns` that reserves the cluster DNS
/// address `ip`.
pub fn kube_dns_service(ip: Ipv4Addr) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": "kube-dns", "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS", NODE_LOCAL_LABEL: "true"},
        },
        "spec": {
            "clusterIP": ip.to_string(),
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            ],
        },
    })
}

/// Creates `kube-system/kube-dns` (and the namespace) when absent; an
/// existing Service is left alone. Returns whether it was created.
pub async fn ensure_service(client: &Client, ip: Ipv4Addr) -> Result<bool, EnsureServiceError> {
    if client.get_opt(KUBE_DNS).await.map_err(EnsureServiceError::Get)?.is_some() {
        return Ok(false);
    }
    let svc = kube_dns_service(ip);
    match client.create("/api/v1/namespaces/kube-system/services", &svc).await {
        Ok(_) => return Ok(true),
        Err(e) if e.is_conflict() => return Ok(false),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(EnsureServiceError::Create(e)),
    }
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}});
    match client.create("/api/v1/namespaces", &ns).await {
        Ok(_) => {}
        Err(e) if e.is_conflict() => {}
        Err(e) => return Err(EnsureServiceError::Namespace(e)),
    }
    match client.create("/api/v1/namespaces/kube-system/services", &svc).await {
        Ok(_) => Ok(true),
        Err(e) if e.is_conflict() => Ok(false),
        Err(e) => Err(EnsureServiceError::Create(e)),
    }
}

/// An error and its sources, `: `-separated (for logs).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Serves cluster DNS on this node. Never returns.
pub async fn run(client: Client, cfg: Config) {
    let dns_ip = match cfg.listen.ip() {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(_) => DEFAULT_ADDRESS,
    };
    if cfg.upstream.is_empty() {
        tracing::warn!("no upstream resolvers: names outside the cluster zone get SERVFAIL");
    }
    let shared: server::SharedIndex = Arc::new(RwLock::new(None));
    tokio::spawn(keep_index(client, cfg.clone(), dns_ip, shared.clone()));
    if cfg.manage_interface {
        tokio::spawn(keep_interface(cfg.clone(), dns_ip));
    }
    let mut backoff = BACKOFF_MIN;
    loop {
        if cfg.manage_interface {
            // The address must be there before we can bind to it.
            ensure_interface(&cfg, dns_ip).await;
        }
        let handler = server::Handler {
            index: shared.clone(),
            zone: index::key(&cfg.cluster_domain),
            upstream: Arc::new(cfg.upstream.clone()),
            timeout: cfg.upstream_timeout,
        };
        match serve(&cfg, handler).await {
            Ok(()) => {
                tracing::warn!(listen = %cfg.listen, retry_in = ?backoff, "DNS server stopped; restarting")
            }
            Err(e) => {
                tracing::error!(listen = %cfg.listen, error = %e, retry_in = ?backoff, "DNS server failed")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Binds and serves until the server's tasks end.
async fn serve(cfg: &Config, handler: server::Handler) -> Result<(), std::io::Error> {
    let udp = tokio::net::UdpSocket::bind(cfg.listen).await?;
    let tcp = tokio::net::TcpListener::bind(cfg.listen).await?;
    tracing::info!(listen = %cfg.listen, zone = %cfg.cluster_domain, upstream = ?cfg.upstream, "cluster DNS serving");
    let mut srv = hickory_server::Server::new(handler);
    srv.register_socket(udp);
    srv.register_listener(tcp, Duration::from_secs(10), 64);
    srv.block_until_done().await.map_err(std::io::Error::other)
}

async fn ensure_interface(cfg: &Config, ip: Ipv4Addr) {
    let mut backoff = BACKOFF_MIN;
    loop {
        match link::ensure(&cfg.interface, ip).await {
            Ok(changed) => {
                if changed {
                    tracing::info!(interface = %cfg.interface, address = %ip, "cluster DNS address set up");
                }
                return;
            }
            Err(e) => {
                tracing::error!(interface = %cfg.interface, error = %chain(&e), retry_in = ?backoff, "setting up the cluster DNS address failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Restores the interface or its address when removed by hand (sockets
/// bound to the address answer again once it is back).
async fn keep_interface(cfg: Config, ip: Ipv4Addr) {
    loop {
        tokio::time::sleep(cfg.resync).await;
        ensure_interface(&cfg, ip).await;
    }
}

/// Keeps `shared` equal to the index of the Services and EndpointSlices.
async fn keep_index(client: Client, cfg: Config, dns_ip: Ipv4Addr, shared: server::SharedIndex) {
    let changed = Arc::new(Notify::new());
    let services = informer::Shared::default();
    let slices = informer::Shared::default();
    tokio::spawn(informer::run(client.clone(), "/api/v1/services", "", services.clone(), changed.clone()));
    tokio::spawn(informer::run(
        client,
        "/apis/discovery.k8s.io/v1/endpointslices",
        "",
        slices.clone(),
        changed.clone(),
    ));
    let started = Instant::now();
    loop {
        changed.notified().await;
        let snapshot = {
            let s = services.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let e = slices.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            (s.synced && e.synced).then(|| {
                (
                    s.objects.values().cloned().collect::<Vec<_>>(),
                    e.objects.values().cloned().collect::<Vec<_>>(),
                )
            })
        };
        let Some((svcs, eps)) = snapshot else { continue };
        let t = Instant::now();
        // The SOA serial: seconds since start, so it grows with changes.
        let serial = u32::try_from(started.elapsed().as_secs()).unwrap_or(u32::MAX).max(1);
        let idx = Index::build(&cfg.cluster_domain, cfg.ttl, dns_ip, &svcs, &eps, serial);
        let names = idx.len();
        let first = shared
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace(Arc::new(idx))
            .is_none();
        if first {
            tracing::info!(services = svcs.len(), slices = eps.len(), names, "cluster DNS index ready");
        } else {
            tracing::debug!(
                services = svcs.len(),
                slices = eps.len(),
                names,
                took_us = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX),
                "cluster DNS index rebuilt"
            );
        }
        tokio::time::sleep(cfg.min_rebuild).await;
    }
}

#[cfg(test)]
mod tests;
