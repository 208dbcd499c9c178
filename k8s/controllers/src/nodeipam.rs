//! Node IPAM, as upstream's range allocator: every node gets a /24 (by
//! default) of the cluster CIDR in `spec.podCIDR`, the lowest free one.
//! A node that already has one keeps it (and its range counts as used).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use lichen_client::{Client, PatchType};
use serde_json::json;
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::informer::Informer;
use crate::queue::Queue;
use crate::{Error, Informers, meta};

/// An IPv4 range: network address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (a, p) = s.split_once('/').ok_or_else(|| format!("{s:?} is not a CIDR (a.b.c.d/n)"))?;
        let addr: Ipv4Addr = a.parse().map_err(|_| format!("{s:?}: {a:?} is not an IPv4 address"))?;
        let prefix: u8 =
            p.parse().ok().filter(|p| *p <= 32).ok_or_else(|| format!("{s:?}: bad prefix length"))?;
        let mask = mask(prefix);
        if u32::from(addr) & !mask != 0 {
            return Err(format!(
                "{s:?}: host bits set (the network is {}/{prefix})",
                Ipv4Addr::from(u32::from(addr) & mask)
            ));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) }
}

/// The `index`-th subnet of size `/node_prefix` inside `cluster`.
fn subnet(cluster: Cidr, node_prefix: u8, index: u32) -> Option<Cidr> {
    let count = 1u64 << (node_prefix - cluster.prefix);
    if u64::from(index) >= count {
        return None;
    }
    let base = u32::from(cluster.addr) + (index << (32 - u32::from(node_prefix)));
    Some(Cidr { addr: Ipv4Addr::from(base), prefix: node_prefix })
}

/// The index of `c` among the node subnets, if it is one.
fn index_of(cluster: Cidr, node_prefix: u8, c: Cidr) -> Option<u32> {
    if c.prefix != node_prefix || u32::from(c.addr) & mask(cluster.prefix) != u32::from(cluster.addr) {
        return None;
    }
    Some((u32::from(c.addr) - u32::from(cluster.addr)) >> (32 - u32::from(node_prefix)))
}

#[derive(Clone)]
struct Controller {
    client: Client,
    nodes: Informer,
    cluster: Cidr,
    node_prefix: u8,
    recorder: Recorder,
}

pub fn start(
    tasks: &mut JoinSet<()>,
    client: &Client,
    informers: &Informers,
    cluster: Cidr,
    node_prefix: u8,
) {
    if node_prefix < cluster.prefix || node_prefix > 30 {
        tracing::warn!(%cluster, node_prefix, "node CIDR size does not fit the cluster CIDR; node IPAM off");
        return;
    }
    let queue = Queue::new();
    let c = Controller {
        client: client.clone(),
        nodes: informers.nodes.clone(),
        cluster,
        node_prefix,
        recorder: Recorder::new(client.clone(), "node-ipam-controller"),
    };
    let q = queue.clone();
    informers.nodes.on_change(move |ch| {
        if ch.object()["spec"]["podCIDR"].as_str().unwrap_or("").is_empty() {
            q.add(meta::name(ch.object()));
        }
    });
    // One worker: allocations must not race each other.
    crate::spawn_workers(tasks, "nodeipam", &queue, vec![informers.nodes.clone()], 1, move |key| {
        let c = c.clone();
        async move { c.sync(&key).await }
    });
}

impl Controller {
    async fn sync(&self, name: &str) -> Result<Option<Duration>, Error> {
        let Some(node) = self.nodes.get(name) else { return Ok(None) };
        if !node["spec"]["podCIDR"].as_str().unwrap_or("").is_empty() {
            return Ok(None);
        }
        let used: BTreeSet<u32> = self
            .nodes
            .list()
            .iter()
            .filter_map(|n| n["spec"]["podCIDR"].as_str()?.parse().ok())
            .filter_map(|c| index_of(self.cluster, self.node_prefix, c))
            .collect();
        let free = (0u32..)
            .map_while(|i| subnet(self.cluster, self.node_prefix, i))
            .enumerate()
            .find(|(i, _)| !used.contains(&u32::try_from(*i).unwrap_or(u32::MAX)));
        let Some((_, cidr)) = free else {
            self.recorder.warning(
                &node,
                "CIDRNotAvailable",
                format!("Node {name} status is now: CIDRNotAvailable"),
            );
            return Ok(Some(Duration::from_secs(30)));
        };
        let patch = json!({"spec": {"podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()]}});
        let v = self.client.patch(&format!("/api/v1/nodes/{name}"), PatchType::Merge, &patch).await?;
        self.nodes.assume(&v);
        self.recorder.normal(&node, "CIDRAssignmentSucceeded", format!("Node {name} got CIDR {cidr}"));
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_of_the_cluster_cidr() {
        let cluster: Cidr = "10.42.0.0/16".parse().unwrap();
        assert_eq!(subnet(cluster, 24, 0).unwrap().to_string(), "10.42.0.0/24");
        assert_eq!(subnet(cluster, 24, 255).unwrap().to_string(), "10.42.255.0/24");
        assert_eq!(subnet(cluster, 24, 256), None);
        assert_eq!(index_of(cluster, 24, "10.42.7.0/24".parse().unwrap()), Some(7));
        assert_eq!(index_of(cluster, 24, "10.43.7.0/24".parse().unwrap()), None);
        assert!("10.42.0.1/16".parse::<Cidr>().unwrap_err().contains("host bits"));
    }
}
