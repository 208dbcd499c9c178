//! NetworkPolicy enforcement: NetworkPolicies, Pods and Namespaces in, one
//! nftables table out (`table ip lichen-policy`) filtering the forwarded
//! traffic of this node's pods.
//!
//! Each node enforces the policies selecting its own pods (`spec.nodeName`,
//! not `hostNetwork`, with an IPv4 `status.podIPs`), both directions: the
//! ingress of a local pod is checked where it lives, its egress too, so
//! traffic between two nodes' pods is checked on both. Peers are every
//! pod of the cluster, resolved to addresses in user space (`model`) and
//! handed to the kernel as sets (`render`).
//!
//! Desired state (`model`, `render`) is pure; `nft` runs only in `run`,
//! `cleanup` and `observe`, through the proxy's `nft` module. The first
//! sync replaces the table whole; later ones send only the commands that
//! turn the last applied ruleset into the new one, in one transaction. A
//! sync happens at most once per `min_sync` after a change; every `resync`
//! the kernel's table is compared with what was applied and replaced when
//! it differs (deleted or flushed by hand). `nft` failures are logged and
//! retried with back-off; they never stop the process.
//!
//! Not enforced: IPv6 (the table is `ip`), traffic a pod sends to its own
//! node or receives from it (always allowed, as upstream says), hostNetwork
//! pods, and `ipBlock`s are matched against addresses after the Service
//! proxy's DNAT and before its masquerade (as kube-proxy-based plugins do).

pub mod model;
pub mod render;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lichen_client::Client;
use serde_json::Value;
use tokio::sync::Notify;

use crate::pacer::{Pacer, Tick};

use crate::proxy::informer;
use crate::proxy::nft::{self, NftError};
use crate::proxy::ruleset::Ruleset;

/// How policy enforcement runs on this node.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's name (pods with this `spec.nodeName` are enforced).
    pub node_name: String,
    /// The `nft` binary (`nft`: found on PATH).
    pub nft: PathBuf,
    /// The nftables table (`table ip <table>`) policy enforcement owns.
    pub table: String,
    /// Least time between two syncs.
    pub min_sync: Duration,
    /// How often the kernel's table is checked against what was applied
    /// (and replaced when it differs).
    pub resync: Duration,
}

impl Config {
    /// Defaults: `nft` from PATH, table `lichen-policy`, 1 s min sync, 60 s
    /// resync.
    pub fn new(node_name: &str) -> Config {
        Config {
            node_name: node_name.to_owned(),
            nft: PathBuf::from("nft"),
            table: "lichen-policy".into(),
            min_sync: Duration::from_secs(1),
            resync: Duration::from_secs(60),
        }
    }
}

/// The table for these objects (as the API returns them), as data.
pub fn desired(cfg: &Config, policies: &[Value], pods: &[Value], namespaces: &[Value]) -> Ruleset {
    let cluster = model::Cluster::new(pods, namespaces);
    // Only policies selecting a pod of this node matter to its pods'
    // isolation; the others' peers are not resolved at all.
    let local: Vec<&model::Pod> = cluster.pods.iter().filter(|p| p.node == cfg.node_name).collect();
    let policies: Vec<model::Policy> = policies
        .iter()
        .filter(|p| model::selects_any(p, &local))
        .filter_map(|p| model::Policy::from_json(p, &cluster))
        .collect();
    let enforced = model::enforced(&cluster, &policies, &cfg.node_name);
    render::ruleset(&cfg.table, &enforced)
}

/// The table definition for these objects, as `nft -f` text.
/// Deterministic.
pub fn render(cfg: &Config, policies: &[Value], pods: &[Value], namespaces: &[Value]) -> String {
    desired(cfg, policies, pods, namespaces).definition()
}

/// Deletes the table (for an agent that stops for good).
pub fn cleanup(cfg: &Config) -> Result<(), NftError> {
    nft::delete(&cfg.nft, &cfg.table)
}

/// The table as the kernel has it, `None` when absent.
pub fn observe(cfg: &Config) -> Result<Option<String>, NftError> {
    nft::list(&cfg.nft, &cfg.table)
}

type Snapshot = (Vec<Value>, Vec<Value>, Vec<Value>);

/// Enforces policies: watches NetworkPolicies, Pods and Namespaces in all
/// namespaces through `client` and keeps the table in step. Never returns.
/// When `nft` cannot run it says so once and waits for it to appear.
pub async fn run(client: Client, cfg: Config) {
    nft::wait_until_available(&cfg.nft, &cfg.table, "network policy").await;
    let changed = Arc::new(Notify::new());
    let caches: [(&'static str, informer::Shared); 3] = [
        ("/apis/networking.k8s.io/v1/networkpolicies", informer::Shared::default()),
        ("/api/v1/pods", informer::Shared::default()),
        ("/api/v1/namespaces", informer::Shared::default()),
    ];
    for (path, cache) in &caches {
        tokio::spawn(informer::run(client.clone(), path, "", cache.clone(), changed.clone()));
    }
    let snapshot = || -> Option<Snapshot> {
        let mut lists = Vec::with_capacity(3);
        for (_, cache) in &caches {
            let c = cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !c.synced {
                return None;
            }
            lists.push(c.objects.values().cloned().collect::<Vec<Value>>());
        }
        let namespaces = lists.pop()?;
        let pods = lists.pop()?;
        Some((lists.pop()?, pods, namespaces))
    };

    // What the kernel has, as far as we know; `None`: replace it whole.
    let mut applied: Option<Ruleset> = None;
    let mut pacer = Pacer::new(cfg.resync, cfg.min_sync, false);
    loop {
        match pacer.tick(&changed).await {
            Tick::Changed => continue,
            Tick::Resync => {
                if let Some(rs) = &applied
                    && !nft::kernel_matches(&cfg.nft, &cfg.table, rs).await
                {
                    tracing::warn!(table = %cfg.table, "the policy table differs from what was applied; replacing it");
                    applied = None;
                    pacer.set_pending();
                }
            }
            Tick::Deadline => {}
        }
        if !pacer.take_ready() {
            continue;
        }
        let Some((policies, pods, namespaces)) = snapshot() else {
            // Not listed yet: the informers notify once they are.
            continue;
        };
        let started = Instant::now();
        let want = desired(&cfg, &policies, &pods, &namespaces);
        let Some((full, result)) = nft::program(&cfg.nft, &cfg.table, applied.as_ref(), &want).await else {
            continue;
        };
        let isolated = want.sets.get("ingress-pods").map_or(0, |s| s.elements.len())
            + want.sets.get("egress-pods").map_or(0, |s| s.elements.len());
        match result {
            Ok(()) => {
                let took_ms = started.elapsed().as_millis();
                let policies = policies.len();
                if pacer.succeeded() || applied.is_none() {
                    tracing::info!(table = %cfg.table, policies, isolated, full, took_ms, "policy rules programmed");
                } else {
                    tracing::debug!(policies, isolated, full, took_ms, "policy rules programmed");
                }
                applied = Some(want);
            }
            Err(e) => {
                let retry_in = pacer.failed();
                tracing::error!(error = %e, full, ?retry_in, "programming policy rules failed");
                applied = None;
            }
        }
    }
}

#[cfg(test)]
mod tests;
