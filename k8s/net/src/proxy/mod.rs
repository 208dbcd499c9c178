//! The Service proxy: Services and EndpointSlices in, one nftables table
//! out (`table ip lichen`), replaced whole in one `nft -f -` transaction.
//!
//! Desired state (`model::desired`, `render`) is pure; `nft` is run only
//! by `apply` (in `run`), `cleanup` and `observe`. The first sync replaces
//! the table whole (`add table`, `delete table`, the definition); later
//! ones send only the commands that turn the last applied ruleset into the
//! new one, still in one transaction. A sync happens at most once per
//! `min_sync` after a change. Every `resync` the kernel's table is listed
//! and compared (chains and rules counted) with what was applied: a table
//! deleted or edited by hand is replaced whole. `nft` failures are logged
//! with nft's message and retried with back-off (and a whole replacement);
//! they never stop the proxy.

pub mod informer;
pub mod model;
pub mod nft;
pub mod render;
pub mod ruleset;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lichen_client::Client;
use serde_json::Value;
use tokio::sync::Notify;

use crate::pacer::{Pacer, Tick};

pub use nft::NftError;

/// How the proxy runs on this node.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's name (endpoints on it are "local").
    pub node_name: String,
    /// The addresses node ports answer on (IPv4 ones are used), as
    /// upstream's `--nodeport-addresses primary`; empty: every local
    /// address except loopback.
    pub node_ips: Vec<IpAddr>,
    /// The `nft` binary (`nft`: found on PATH).
    pub nft: PathBuf,
    /// The nftables table (`table ip <table>`) the proxy owns.
    pub table: String,
    /// Least time between two syncs.
    pub min_sync: Duration,
    /// How often the kernel's table is checked against what was applied
    /// (and replaced when it differs).
    pub resync: Duration,
}

impl Config {
    /// Defaults: `nft` from PATH, table `lichen`, 1 s min sync, 60 s resync.
    pub fn new(node_name: &str, node_ips: Vec<IpAddr>) -> Config {
        Config {
            node_name: node_name.to_owned(),
            node_ips,
            nft: PathBuf::from("nft"),
            table: "lichen".into(),
            min_sync: Duration::from_secs(1),
            resync: Duration::from_secs(60),
        }
    }

    fn node_ipv4s(&self) -> Vec<Ipv4Addr> {
        let mut ips: Vec<Ipv4Addr> = self
            .node_ips
            .iter()
            .filter_map(|ip| match ip {
                IpAddr::V4(v4) => Some(*v4),
                IpAddr::V6(_) => None,
            })
            .collect();
        ips.sort();
        ips.dedup();
        ips
    }
}

/// The table definition for these Services and EndpointSlices (the
/// objects as the API returns them), as `nft -f` text. Deterministic.
pub fn render(cfg: &Config, services: &[Value], slices: &[Value]) -> String {
    desired(cfg, services, slices).definition()
}

/// The table for these Services and EndpointSlices, as data.
pub fn desired(cfg: &Config, services: &[Value], slices: &[Value]) -> ruleset::Ruleset {
    let ports = model::desired(services, slices, &cfg.node_name);
    render::ruleset(&cfg.table, &cfg.node_ipv4s(), &ports)
}

/// Deletes the proxy's table (for an agent that stops for good).
pub fn cleanup(cfg: &Config) -> Result<(), NftError> {
    nft::delete(&cfg.nft, &cfg.table)
}

/// The table as the kernel has it, `None` when absent.
pub fn observe(cfg: &Config) -> Result<Option<String>, NftError> {
    nft::list(&cfg.nft, &cfg.table)
}

/// Services and EndpointSlices that a proxy named otherwise claims, or
/// (slices) that belong to headless Services, are not watched (upstream's
/// selectors).
const SERVICE_SELECTOR: &str = "!service.kubernetes.io/service-proxy-name";
const SLICE_SELECTOR: &str = "!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name";

/// Runs the proxy: watches Services and EndpointSlices through `client`
/// and keeps the table in step. Never returns. When `nft` cannot run it
/// says so once and waits for it to appear.
pub async fn run(client: Client, cfg: Config) {
    nft::wait_until_available(&cfg.nft, &cfg.table, "service proxy").await;
    let changed = Arc::new(Notify::new());
    let services = informer::Shared::default();
    let slices = informer::Shared::default();
    tokio::spawn(informer::run(
        client.clone(),
        "/api/v1/services",
        SERVICE_SELECTOR,
        services.clone(),
        changed.clone(),
    ));
    tokio::spawn(informer::run(
        client,
        "/apis/discovery.k8s.io/v1/endpointslices",
        SLICE_SELECTOR,
        slices.clone(),
        changed.clone(),
    ));

    let snapshot = || -> Option<(Vec<Value>, Vec<Value>)> {
        let s = services.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = slices.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (s.synced && e.synced)
            .then(|| (s.objects.values().cloned().collect(), e.objects.values().cloned().collect()))
    };

    // What the kernel has, as far as we know; `None`: replace it whole.
    let mut applied: Option<ruleset::Ruleset> = None;
    let mut pacer = Pacer::new(cfg.resync, cfg.min_sync, false);
    loop {
        match pacer.tick(&changed).await {
            Tick::Changed => continue,
            Tick::Resync => {
                if let Some(rs) = &applied
                    && !nft::kernel_matches(&cfg.nft, &cfg.table, rs).await
                {
                    tracing::warn!(table = %cfg.table, "the table differs from what was applied; replacing it");
                    applied = None;
                    pacer.set_pending();
                }
            }
            Tick::Deadline => {}
        }
        if !pacer.take_ready() {
            continue;
        }
        let Some((svcs, eps)) = snapshot() else {
            // Not listed yet: the informers notify once they are.
            continue;
        };
        let started = Instant::now();
        let want = desired(&cfg, &svcs, &eps);
        let Some((full, result)) = nft::program(&cfg.nft, &cfg.table, applied.as_ref(), &want).await else {
            continue;
        };
        match result {
            Ok(()) => {
                let took_ms = started.elapsed().as_millis();
                let (services, slices) = (svcs.len(), eps.len());
                if pacer.succeeded() || applied.is_none() {
                    tracing::info!(table = %cfg.table, services, slices, full, took_ms, "service rules programmed");
                } else {
                    tracing::debug!(services, slices, full, took_ms, "service rules programmed");
                }
                applied = Some(want);
            }
            Err(e) => {
                let retry_in = pacer.failed();
                tracing::error!(error = %e, full, ?retry_in, "programming service rules failed");
                applied = None;
            }
        }
    }
}

#[cfg(test)]
mod tests;
