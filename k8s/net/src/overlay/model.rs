//! The overlay's desired state, pure: peers from Node objects, the kernel
//! entries they need on the VXLAN device, and the operations that turn
//! what the kernel has into that. No I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde_json::Value;

/// The annotation with a node's VTEP MAC (`aa:bb:cc:dd:ee:ff`).
pub const MAC_ANNOTATION: &str = "lichen.dev/vtep-mac";
/// The annotation with a node's underlay address (VXLAN packets go there).
pub const IP_ANNOTATION: &str = "lichen.dev/public-ip";

/// An IPv4 network, `addr/prefix` with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

/// A string that is not an IPv4 CIDR.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an IPv4 network (a.b.c.d/n, no host bits set)")]
pub struct BadCidr(pub String);

impl Cidr {
    fn mask(prefix: u8) -> u32 {
        if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) }
    }

    /// Whether `ip` is in the network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask(self.prefix) == u32::from(self.addr)
    }
}

impl FromStr for Cidr {
    type Err = BadCidr;
    fn from_str(s: &str) -> Result<Cidr, BadCidr> {
        let bad = || BadCidr(s.to_owned());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 || u32::from(addr) & !Self::mask(prefix) != 0 {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl FromStr for Mac {
    type Err = ();
    fn from_str(s: &str) -> Result<Mac, ()> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let p = parts.next().ok_or(())?;
            if p.len() != 2 {
                return Err(());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| ())?;
        }
        if parts.next().is_some() {
            return Err(());
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

/// The VTEP MAC of a node: a locally administered unicast address from
/// a stable hash of its name (FNV-1a, then MurmurHash3's 64-bit finalizer
/// so names that differ in one letter differ everywhere), so it survives
/// restarts and peers keep their entries.
pub fn vtep_mac(node_name: &str) -> Mac {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node_name.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    let b = h.to_be_bytes();
    // Bit 1 of the first octet: locally administered; bit 0: unicast.
    Mac([(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]])
}

/// The VXLAN device's MTU on an underlay link of `underlay_mtu`: 50 bytes
/// of outer IPv4 (20), UDP (8), VXLAN (8) and inner Ethernet (14) headers.
pub fn mtu_for(underlay_mtu: u32) -> u32 {
    underlay_mtu.saturating_sub(50)
}

/// Another node as the overlay needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub pod_cidr: Cidr,
    pub mac: Mac,
    pub public_ip: Ipv4Addr,
}

/// A node's name and pod CIDR (`spec.podCIDR`), if it has a valid IPv4 one.
pub fn pod_cidr(node: &Value) -> Option<Cidr> {
    node["spec"]["podCIDR"].as_str().and_then(|s| s.parse().ok())
}

/// The peer a Node object describes: it has an IPv4 podCIDR and both
/// annotations. `None` otherwise (not ready for the overlay yet).
pub fn peer(node: &Value) -> Option<Peer> {
    let name = node["metadata"]["name"].as_str()?.to_owned();
    let ann = &node["metadata"]["annotations"];
    Some(Peer {
        pod_cidr: pod_cidr(node)?,
        mac: ann[MAC_ANNOTATION].as_str()?.parse().ok()?,
        public_ip: ann[IP_ANNOTATION].as_str()?.parse().ok()?,
        name,
    })
}

/// The kernel entries on the VXLAN device, desired or observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries {
    /// Bridge FDB (`self`, permanent): VTEP MAC -> remote underlay address.
    pub fdb: BTreeMap<Mac, Ipv4Addr>,
    /// ARP (permanent): a peer's pod network address -> its VTEP MAC.
    pub neigh: BTreeMap<Ipv4Addr, Mac>,
    /// Routes (main table, onlink): pod CIDR -> gateway (its network address).
    pub routes: BTreeMap<Cidr, Ipv4Addr>,
}

/// The entries for every Node but `self_name` that is a peer. Two peers
/// claiming the same MAC or pod CIDR: the first by name wins (the other
/// is logged by the caller as skipped).
pub fn desired(nodes: &[Value], self_name: &str) -> (Entries, Vec<Peer>) {
    let mut peers: Vec<Peer> = nodes.iter().filter_map(peer).filter(|p| p.name != self_name).collect();
    peers.sort_by(|a, b| a.name.cmp(&b.name));
    let mut e = Entries::default();
    let mut used = Vec::new();
    for p in peers {
        let gw = p.pod_cidr.addr;
        if e.fdb.contains_key(&p.mac) || e.neigh.contains_key(&gw) || e.routes.contains_key(&p.pod_cidr) {
            continue;
        }
        e.fdb.insert(p.mac, p.public_ip);
        e.neigh.insert(gw, p.mac);
        e.routes.insert(p.pod_cidr, gw);
        used.push(p);
    }
    (e, used)
}

/// One change to the kernel's entries on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    DelRoute(Cidr, Ipv4Addr),
    DelNeigh(Ipv4Addr, Mac),
    DelFdb(Mac, Ipv4Addr),
    AddFdb(Mac, Ipv4Addr),
    AddNeigh(Ipv4Addr, Mac),
    AddRoute(Cidr, Ipv4Addr),
}

/// The operations that turn `current` into `want`: removals first
/// (routes, then ARP, then FDB), then additions (FDB, ARP, routes), so a
/// route never points at a peer whose entries are not there yet. A
/// changed entry is removed and added again.
pub fn diff(current: &Entries, want: &Entries) -> Vec<Op> {
    let mut ops = Vec::new();
    for (k, v) in &current.routes {
        if want.routes.get(k) != Some(v) {
            ops.push(Op::DelRoute(*k, *v));
        }
    }
    for (k, v) in &current.neigh {
        if want.neigh.get(k) != Some(v) {
            ops.push(Op::DelNeigh(*k, *v));
        }
    }
    for (k, v) in &current.fdb {
        if want.fdb.get(k) != Some(v) {
            ops.push(Op::DelFdb(*k, *v));
        }
    }
    for (k, v) in &want.fdb {
        if current.fdb.get(k) != Some(v) {
            ops.push(Op::AddFdb(*k, *v));
        }
    }
    for (k, v) in &want.neigh {
        if current.neigh.get(k) != Some(v) {
            ops.push(Op::AddNeigh(*k, *v));
        }
    }
    for (k, v) in &want.routes {
        if current.routes.get(k) != Some(v) {
            ops.push(Op::AddRoute(*k, *v));
        }
    }
    ops
}
