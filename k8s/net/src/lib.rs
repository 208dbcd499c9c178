//! Lichen's cluster networking, run in-process by `lichen server` and
//! `lichen agent`. Today: the Service proxy (`proxy`), which turns Services
//! and EndpointSlices into one nftables table on the node, as upstream
//! kube-proxy's nftables mode does; NetworkPolicy enforcement (`policy`),
//! which filters the forwarded traffic of the node's pods in a table of its
//! own; the cluster DNS (`dns`), answered on every node from Services and
//! EndpointSlices (hickory-server), other names forwarded to the node's
//! resolvers; the VXLAN overlay between nodes' pod networks (`overlay`),
//! flannel's vxlan backend over netlink, with masquerading of pod traffic
//! leaving the cluster.
//!
//! Rules are programmed by running Debian's `nft` binary (`nft -f -`, one
//! atomic transaction per sync), as kube-proxy's nftables mode does through
//! knftables: the `nft` syntax is stable and well documented, a
//! transaction is all or nothing so packets never meet half a ruleset, and
//! we need no netlink encoder of nftables' expressions of our own.
//!
//! What this crate must not do: depend on the API server, the store or the
//! controllers (it speaks only the Kubernetes API through `lichen-client`,
//! so the same code runs in a remote agent); touch any nftables table but
//! its own (`table ip <name>`); stop the process when `nft` fails or is
//! missing (it logs, backs off and retries).

#![forbid(unsafe_code)]

pub mod dns;
pub mod overlay;
mod pacer;
pub mod policy;
pub mod proxy;
