//! The pod network overlay between nodes: flannel's VXLAN backend,
//! in-process (as k3s embeds flannel), configured over netlink.
//!
//! Each node has a VXLAN device (`lichen.1`: VNI 1, UDP 8472, local = the
//! node's underlay address, learning off) whose MAC is derived from the
//! node name (stable across restarts) and whose address is the network
//! address of the node's pod CIDR (`10.42.N.0/32`). The node publishes its
//! VTEP on its own Node object (annotations `lichen.dev/vtep-mac` and
//! `lichen.dev/public-ip`, merge patch). For every other Node with a pod
//! CIDR and those annotations it keeps, on the device: an FDB entry (VTEP
//! MAC -> the peer's public IP), a permanent ARP entry (the peer's
//! `.0` -> its VTEP MAC) and a route (the peer's pod CIDR via its `.0`,
//! onlink). Anything else on the device (entries of Nodes deleted, changed
//! or unknown, entries from a previous run) is removed; every `resync` the
//! kernel is listed again, so entries removed by hand come back.
//!
//! Routed networks: VXLAN is UDP between the nodes' public IPs, so nodes
//! on different L2 segments work as long as those addresses route to each
//! other (and UDP 8472 passes); nothing L2-specific is needed.
//!
//! Pod traffic leaving the cluster CIDR is masqueraded (random ports) by
//! the table `ip lichen-overlay` (through `nft`, as the proxy); pod to pod,
//! across nodes too, keeps the pod's source address, which NetworkPolicy
//! relies on. The same table accepts forwarded pod traffic in its own
//! forward chain; that cannot override a DROP policy in another table (an
//! iptables `FORWARD` chain): nftables runs every base chain of a hook.
//!
//! What this module does not do: assign pod CIDRs (the controllers' node
//! IPAM does), write the CNI config (the agent does, with the MTU from
//! [`mtu_for`]), enable IP forwarding, IPv6, or encrypt anything.
//! Netlink and `nft` failures are logged and retried with back-off; they
//! never stop the process.

pub mod kernel;
pub mod model;
pub mod rules;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lichen_client::{Client, PatchType, q};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::pacer::{Pacer, Tick};

use crate::proxy::{NftError, informer, nft};
pub use kernel::NetlinkError;
pub use model::{Cidr, Mac, mtu_for, vtep_mac};

/// How the overlay runs on this node.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's name: its Node object, and the seed of its VTEP MAC.
    pub node_name: String,
    /// The node's underlay address: VXLAN's local address, published as
    /// `lichen.dev/public-ip`; the link that has it sets the MTU.
    pub node_ip: Ipv4Addr,
    /// The cluster's pod network (every node's pod CIDR is in it).
    pub cluster_cidr: Cidr,
    /// VXLAN network identifier (flannel: 1).
    pub vni: u32,
    /// VXLAN UDP port (flannel and the Linux default: 8472).
    pub port: u16,
    /// The VXLAN device's name.
    pub device: String,
    /// The `nft` binary (`nft`: found on PATH).
    pub nft: PathBuf,
    /// The nftables table (`table ip <table>`) the overlay owns.
    pub table: String,
    /// How often the kernel is listed and repaired without a change.
    pub resync: Duration,
}

impl Config {
    /// Defaults: VNI 1, port 8472, device `lichen.1`, `nft` from PATH,
    /// table `lichen-overlay`, 60 s resync.
    pub fn new(node_name: &str, node_ip: Ipv4Addr, cluster_cidr: Cidr) -> Config {
        Config {
            node_name: node_name.to_owned(),
            node_ip,
            cluster_cidr,
            vni: 1,
            port: 8472,
            device: "lichen.1".into(),
            nft: PathBuf::from("nft"),
            table: "lichen-overlay".into(),
            resync: Duration::from_secs(60),
        }
    }

    /// The nftables table as `nft -f` text.
    pub fn ruleset(&self) -> String {
        rules::definition(&self.table, self.cluster_cidr)
    }
}

/// The MTU pods should have on this node: [`mtu_for`] the MTU of the
/// link that has `node_ip` (for the CNI config's `mtu`).
pub async fn pod_mtu(node_ip: Ipv4Addr) -> Result<u32, NetlinkError> {
    let nl = kernel::Netlink::connect()?;
    let (_, underlay_mtu) = nl.underlay(node_ip).await?;
    Ok(mtu_for(underlay_mtu))
}

/// A failed cleanup.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("removing the VXLAN device")]
    Device(#[source] NetlinkError),
    #[error("removing the nftables table")]
    Table(#[source] NftError),
}

/// Removes the device (its FDB, ARP entries and routes go with it) and
/// the nftables table, for an agent leaving for good. The node's
/// annotations stay (its Node object is deleted anyway). Idempotent.
pub async fn cleanup(cfg: &Config) -> Result<(), CleanupError> {
    let nl = kernel::Netlink::connect().map_err(CleanupError::Device)?;
    nl.delete_device(&cfg.device).await.map_err(CleanupError::Device)?;
    let (nft, table) = (cfg.nft.clone(), cfg.table.clone());
    tokio::task::spawn_blocking(move || nft::delete(&nft, &table))
        .await
        .unwrap_or_else(|e| Err(NftError::Spawn { nft: cfg.nft.clone(), source: std::io::Error::other(e) }))
        .map_err(CleanupError::Table)
}

/// Least time between two syncs after Node changes (Node status updates
/// come every few seconds per node).
const MIN_SYNC: Duration = Duration::from_millis(500);

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("publishing the VTEP on Node {node}")]
    Publish {
        node: String,
        #[source]
        source: lichen_client::ClientError,
    },
    #[error("{failed} of {total} FDB/ARP/route changes failed")]
    Entries { failed: usize, total: usize },
}

/// What a sync knows between runs.
#[derive(Default)]
struct State {
    netlink: Option<kernel::Netlink>,
    /// The table has been applied and not found changed since.
    table_ok: bool,
    /// Said once: waiting for this node's Node object / pod CIDR.
    said_waiting: bool,
}

/// Runs the overlay: watches Nodes through `client` and keeps the device,
/// its entries and the table in step. Never returns.
pub async fn run(client: Client, cfg: Config) {
    let changed = Arc::new(Notify::new());
    let nodes = informer::Shared::default();
    tokio::spawn(informer::run(client.clone(), "/api/v1/nodes", "", nodes.clone(), changed.clone()));
    tracing::info!(node = %cfg.node_name, device = %cfg.device, vni = cfg.vni, local = %cfg.node_ip, cluster_cidr = %cfg.cluster_cidr, "overlay starting");

    let mut state = State::default();
    let mut pacer = Pacer::new(cfg.resync, MIN_SYNC, true);
    loop {
        match pacer.tick(&changed).await {
            Tick::Changed => continue,
            // The periodic resync looks at everything, due or not.
            Tick::Resync => {
                state.table_ok = false;
                pacer.take();
            }
            Tick::Deadline if pacer.take_ready() => {}
            Tick::Deadline => continue,
        }
        let snapshot: Option<Vec<Value>> = {
            let c = nodes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            c.synced.then(|| c.objects.values().cloned().collect())
        };
        let Some(nodes_now) = snapshot else {
            // Not listed yet: the informer notifies once it is.
            continue;
        };
        match sync(&client, &cfg, &nodes_now, &mut state).await {
            Ok(()) => {
                if pacer.succeeded() {
                    tracing::info!(device = %cfg.device, "overlay in sync again");
                }
            }
            Err(e) => {
                let retry_in = pacer.failed();
                tracing::error!(error = %chain(&e), ?retry_in, "overlay sync failed");
                if matches!(e, SyncError::Netlink(_)) {
                    state.netlink = None;
                }
            }
        }
    }
}

/// An error and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// One sync: device, address, annotations, entries, then the table.
async fn sync(client: &Client, cfg: &Config, nodes: &[Value], state: &mut State) -> Result<(), SyncError> {
    let me = nodes.iter().find(|n| n["metadata"]["name"].as_str() == Some(cfg.node_name.as_str()));
    let Some(me) = me else {
        if !state.said_waiting {
            tracing::info!(node = %cfg.node_name, "waiting for this node's Node object");
            state.said_waiting = true;
        }
        return Ok(());
    };
    if state.netlink.is_none() {
        state.netlink = Some(kernel::Netlink::connect()?);
    }
    let Some(nl) = state.netlink.as_ref() else { return Ok(()) };
    sync_with(client, cfg, nodes, me, nl, &mut state.table_ok, &mut state.said_waiting).await
}

/// The sync against `nl` for this node's Node object `me`.
async fn sync_with<K: kernel::Kernel>(
    client: &Client,
    cfg: &Config,
    nodes: &[Value],
    me: &Value,
    nl: &K,
    table_ok: &mut bool,
    said_waiting: &mut bool,
) -> Result<(), SyncError> {
    let (underlay_index, underlay_mtu) = nl.underlay(cfg.node_ip).await?;
    let spec = kernel::DeviceSpec {
        name: cfg.device.clone(),
        vni: cfg.vni,
        port: cfg.port,
        local: cfg.node_ip,
        underlay_index,
        mac: vtep_mac(&cfg.node_name),
        mtu: mtu_for(underlay_mtu),
    };
    let index = nl.ensure_device(&spec).await?;
    match model::pod_cidr(me) {
        Some(own) => nl.ensure_address(index, &cfg.device, own.addr).await?,
        None if !*said_waiting => {
            tracing::info!(node = %cfg.node_name, "this node has no pod CIDR yet; the device gets no address");
            *said_waiting = true;
        }
        None => {}
    }
    publish(client, cfg, me, spec.mac).await?;

    let (want, peers) = model::desired(nodes, &cfg.node_name);
    let current = nl.observe(index, &cfg.device).await?;
    let ops = model::diff(&current, &want);
    let mut failed = 0;
    for op in &ops {
        match nl.apply(index, &cfg.device, op).await {
            Ok(()) => tracing::debug!(?op, "overlay entry changed"),
            Err(e) => {
                failed += 1;
                tracing::warn!(error = %chain(&e), "overlay entry change failed");
            }
        }
    }
    if !ops.is_empty() {
        tracing::info!(peers = peers.len(), changes = ops.len(), failed, device = %cfg.device, "overlay entries synced");
    }
    if failed > 0 {
        return Err(SyncError::Entries { failed, total: ops.len() });
    }
    if !ops.is_empty() {
        // The kernel accepted every change; check it now has what we want
        // (a removal that matched nothing answers like one that worked).
        let left = model::diff(&nl.observe(index, &cfg.device).await?, &want);
        if !left.is_empty() {
            tracing::warn!(?left, "overlay entries still differ after the changes");
            return Err(SyncError::Entries { failed: left.len(), total: ops.len() });
        }
    }

    if !*table_ok {
        // nft problems are logged and retried at the next resync; they do
        // not hold the overlay's routes back.
        *table_ok = ensure_table(cfg).await;
    }
    Ok(())
}

/// Puts the node's VTEP on its Node object unless it is there.
async fn publish(client: &Client, cfg: &Config, me: &Value, mac: Mac) -> Result<(), SyncError> {
    let ann = &me["metadata"]["annotations"];
    let (mac, ip) = (mac.to_string(), cfg.node_ip.to_string());
    if ann[model::MAC_ANNOTATION].as_str() == Some(mac.as_str())
        && ann[model::IP_ANNOTATION].as_str() == Some(ip.as_str())
    {
        return Ok(());
    }
    let patch = json!({"metadata": {"annotations": {model::MAC_ANNOTATION: mac, model::IP_ANNOTATION: ip}}});
    client
        .patch(&format!("/api/v1/nodes/{}", q(&cfg.node_name)), PatchType::Merge, &patch)
        .await
        .map_err(|source| SyncError::Publish { node: cfg.node_name.clone(), source })?;
    tracing::info!(node = %cfg.node_name, %mac, %ip, "VTEP published on the Node");
    Ok(())
}

/// Lists the table and replaces it unless it is as defined; `true` when
/// it is in place.
async fn ensure_table(cfg: &Config) -> bool {
    let (nft_path, table, def) = (cfg.nft.clone(), cfg.table.clone(), cfg.ruleset());
    let result = tokio::task::spawn_blocking(move || -> Result<bool, NftError> {
        if nft::list(&nft_path, &table)?.is_some_and(|l| rules::listed_matches(&l, &def)) {
            return Ok(false);
        }
        nft::apply(&nft_path, &table, &def).map(|()| true)
    })
    .await;
    match result {
        Ok(Ok(replaced)) => {
            if replaced {
                tracing::info!(table = %cfg.table, cluster_cidr = %cfg.cluster_cidr, "overlay masquerade rules programmed");
            }
            true
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, table = %cfg.table, "programming the overlay's nftables table failed; retrying at the next resync");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "the nft task failed");
            false
        }
    }
}

#[cfg(test)]
mod tests;
