//! The overlay's nftables table: masquerade pod traffic that leaves the
//! cluster network, and accept forwarded pod traffic in its own chain.

use super::model::Cidr;

/// `table ip <table>` for the cluster CIDR, as `nft -f` text.
///
/// - postrouting (srcnat): from a pod to outside the cluster CIDR ->
///   masquerade with random source ports. Pod to pod, on this node or
///   across the overlay, keeps the pod's source address.
/// - forward (filter): pod traffic is accepted. This only decides within
///   this table: nftables runs every base chain of a hook, and a drop in
///   another table (an iptables `FORWARD` policy DROP) still drops.
pub fn definition(table: &str, cluster_cidr: Cidr) -> String {
    format!(
        "table ip {table} {{\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {cluster_cidr} ip daddr != {cluster_cidr} masquerade fully-random\n\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tip saddr {cluster_cidr} accept\n\
         \t\tip daddr {cluster_cidr} accept\n\
         \t}}\n\
         }}\n"
    )
}

/// The `nft list table` output is this definition (nft lists it as
/// written, plus blank lines): a table edited by hand, or deleted, is
/// replaced at the next resync.
pub fn listed_matches(listing: &str, definition: &str) -> bool {
    let lines =
        |t: &str| t.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect::<Vec<_>>();
    lines(listing) == lines(definition)
}
