//! The only code that speaks netlink (rtnetlink): the VXLAN device, its
//! address, and the FDB, ARP and route entries on it.
//!
//! The socket belongs to the network namespace of the thread that opens
//! it (`Netlink::connect`), which is how the host test runs one overlay
//! per "node" namespace in one process.

use std::net::{IpAddr, Ipv4Addr};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteType,
};
use rtnetlink::{Handle, LinkUnspec, LinkVxlan, RouteMessageBuilder};

use super::model::{Cidr, Entries, Mac, Op};

/// A failed netlink request.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("opening a netlink socket")]
    Connect(#[source] std::io::Error),
    #[error("{what} ({device})")]
    Request {
        what: String,
        device: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("no link has the node address {0}")]
    NoUnderlay(Ipv4Addr),
}

const ENODEV: i32 = 19;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;

/// The errno of a netlink error answer, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// The VXLAN device as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    pub local: Ipv4Addr,
    /// The underlay link (the one with `local`), as flannel's `VtepIndex`.
    pub underlay_index: u32,
    pub mac: Mac,
    pub mtu: u32,
}

/// The kernel calls a sync makes, so the sync's logic can be tested with
/// a fake; [`Netlink`] is the real one.
#[allow(async_fn_in_trait)] // used generically, never as `dyn`
pub trait Kernel {
    /// The index and MTU of the link that has `ip`.
    async fn underlay(&self, ip: Ipv4Addr) -> Result<(u32, u32), NetlinkError>;
    /// Makes the device match `spec`; its index.
    async fn ensure_device(&self, spec: &DeviceSpec) -> Result<u32, NetlinkError>;
    /// Leaves `addr/32` as the device's only IPv4 address.
    async fn ensure_address(&self, index: u32, name: &str, addr: Ipv4Addr) -> Result<(), NetlinkError>;
    /// The entries on the device.
    async fn observe(&self, index: u32, name: &str) -> Result<Entries, NetlinkError>;
    /// Applies one change.
    async fn apply(&self, index: u32, name: &str, op: &Op) -> Result<(), NetlinkError>;
}

impl Kernel for Netlink {
    async fn underlay(&self, ip: Ipv4Addr) -> Result<(u32, u32), NetlinkError> {
        Netlink::underlay(self, ip).await
    }
    async fn ensure_device(&self, spec: &DeviceSpec) -> Result<u32, NetlinkError> {
        Netlink::ensure_device(self, spec).await
    }
    async fn ensure_address(&self, index: u32, name: &str, addr: Ipv4Addr) -> Result<(), NetlinkError> {
        Netlink::ensure_address(self, index, name, addr).await
    }
    async fn observe(&self, index: u32, name: &str) -> Result<Entries, NetlinkError> {
        Netlink::observe(self, index, name).await
    }
    async fn apply(&self, index: u32, name: &str, op: &Op) -> Result<(), NetlinkError> {
        Netlink::apply(self, index, name, op).await
    }
}

/// A netlink connection; its task runs on the runtime that made it.
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    pub fn connect() -> Result<Netlink, NetlinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Connect)?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    fn err(what: impl Into<String>, device: &str) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
        let (what, device) = (what.into(), device.to_owned());
        move |source| NetlinkError::Request { what, device, source }
    }

    /// The link named `name`, `None` when there is none.
    pub async fn link(&self, name: &str) -> Result<Option<LinkMessage>, NetlinkError> {
        let mut links = self.handle.link().get().match_name(name.to_owned()).execute();
        match links.try_next().await {
            Ok(link) => Ok(link),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(e) => Err(Self::err("getting the link", name)(e)),
        }
    }

    /// The index and MTU of the link that has `ip`.
    pub async fn underlay(&self, ip: Ipv4Addr) -> Result<(u32, u32), NetlinkError> {
        let mut addrs = self.handle.address().get().set_address_filter(IpAddr::V4(ip)).execute();
        let mut index = None;
        while let Some(a) = addrs.try_next().await.map_err(Self::err("listing addresses", "any"))? {
            let has = a.attributes.iter().any(|at| {
                matches!(at, AddressAttribute::Address(x) | AddressAttribute::Local(x) if *x == IpAddr::V4(ip))
            });
            if has {
                index = Some(a.header.index);
            }
        }
        let index = index.ok_or(NetlinkError::NoUnderlay(ip))?;
        let mut links = self.handle.link().get().match_index(index).execute();
        let link = links
            .try_next()
            .await
            .map_err(Self::err("getting the underlay link", &index.to_string()))?
            .ok_or(NetlinkError::NoUnderlay(ip))?;
        let mtu = link.attributes.iter().find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        });
        Ok((index, mtu.unwrap_or(1500)))
    }

    /// Makes the device match `spec`: kept when its VXLAN settings and MAC
    /// match (MTU and up set in place), else deleted and created again.
    /// Returns its index.
    pub async fn ensure_device(&self, spec: &DeviceSpec) -> Result<u32, NetlinkError> {
        if let Some(link) = self.link(&spec.name).await? {
            let index = link.header.index;
            if vxlan_matches(&link, spec) {
                let mtu =
                    link.attributes.iter().any(|a| matches!(a, LinkAttribute::Mtu(m) if *m == spec.mtu));
                let up = link.header.flags.contains(LinkFlags::Up);
                if !mtu || !up {
                    tracing::info!(device = %spec.name, mtu = spec.mtu, "setting the VXLAN device's MTU and up");
                    let msg = LinkUnspec::new_with_index(index).mtu(spec.mtu).up().build();
                    self.handle
                        .link()
                        .set(msg)
                        .execute()
                        .await
                        .map_err(Self::err("setting MTU/up", &spec.name))?;
                }
                return Ok(index);
            }
            tracing::warn!(device = %spec.name, "the VXLAN device has other settings; replacing it");
            self.delete_index(index, &spec.name).await?;
        }
        let msg = LinkVxlan::new(&spec.name, spec.vni)
            .port(spec.port)
            .local(spec.local)
            .dev(spec.underlay_index)
            .learning(false)
            .proxy(false)
            .address(spec.mac.0.to_vec())
            .mtu(spec.mtu)
            .up()
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(Self::err("creating the VXLAN device", &spec.name))?;
        let link = self.link(&spec.name).await?.ok_or_else(|| NetlinkError::Request {
            what: "finding the device just created".into(),
            device: spec.name.clone(),
            source: rtnetlink::Error::RequestFailed,
        })?;
        tracing::info!(device = %spec.name, vni = spec.vni, mac = %spec.mac, local = %spec.local, mtu = spec.mtu, "VXLAN device created");
        Ok(link.header.index)
    }

    async fn delete_index(&self, index: u32, name: &str) -> Result<(), NetlinkError> {
        match self.handle.link().del(index).execute().await {
            Err(e) if errno(&e) != Some(ENODEV) => Err(Self::err("deleting the device", name)(e)),
            _ => Ok(()),
        }
    }

    /// Deletes the device `name` (its entries go with it); `false` when
    /// there was none.
    pub async fn delete_device(&self, name: &str) -> Result<bool, NetlinkError> {
        match self.link(name).await? {
            Some(link) => self.delete_index(link.header.index, name).await.map(|()| true),
            None => Ok(false),
        }
    }

    /// Leaves `addr/32` as the device's only IPv4 address.
    pub async fn ensure_address(&self, index: u32, name: &str, addr: Ipv4Addr) -> Result<(), NetlinkError> {
        let mut addrs = self.handle.address().get().set_link_index_filter(index).execute();
        let mut found = false;
        let mut extra = Vec::new();
        while let Some(a) = addrs.try_next().await.map_err(Self::err("listing addresses", name))? {
            if a.header.family != AddressFamily::Inet || a.header.index != index {
                continue;
            }
            let ip = a.attributes.iter().find_map(|at| match at {
                AddressAttribute::Local(IpAddr::V4(x)) | AddressAttribute::Address(IpAddr::V4(x)) => Some(*x),
                _ => None,
            });
            if ip == Some(addr) && a.header.prefix_len == 32 {
                found = true;
            } else {
                extra.push(a);
            }
        }
        for a in extra {
            tracing::info!(device = name, address = ?a.attributes, "removing a stale address");
            self.handle.address().del(a).execute().await.map_err(Self::err("removing an address", name))?;
        }
        if !found {
            self.handle
                .address()
                .add(index, IpAddr::V4(addr), 32)
                .execute()
                .await
                .map_err(Self::err(format!("adding {addr}/32"), name))?;
        }
        Ok(())
    }

    /// The FDB, permanent ARP and main-table routes on the device.
    pub async fn observe(&self, index: u32, name: &str) -> Result<Entries, NetlinkError> {
        let mut e = Entries::default();
        let mut fdb = self.handle.neighbours().get().set_address_family(AddressFamily::Bridge).execute();
        while let Some(n) = fdb.try_next().await.map_err(Self::err("listing the FDB", name))? {
            if n.header.ifindex != index {
                continue;
            }
            if let (Some(mac), Some(dst)) = (lladdr(&n), dst(&n)) {
                e.fdb.insert(mac, dst);
            }
        }
        let mut arp = self.handle.neighbours().get().set_address_family(AddressFamily::Inet).execute();
        while let Some(n) = arp.try_next().await.map_err(Self::err("listing neighbours", name))? {
            // Entries the kernel made itself (not permanent) are left to age.
            if n.header.ifindex != index || n.header.state != NeighbourState::Permanent {
                continue;
            }
            if let (Some(mac), Some(dst)) = (lladdr(&n), dst(&n)) {
                e.neigh.insert(dst, mac);
            }
        }
        let mut routes = self.handle.route().get(RouteMessageBuilder::<Ipv4Addr>::new().build()).execute();
        while let Some(r) = routes.try_next().await.map_err(Self::err("listing routes", name))? {
            if let Some((cidr, gw)) = route_on(&r, index) {
                e.routes.insert(cidr, gw);
            }
        }
        Ok(e)
    }

    /// Applies one change (adds replace what is there).
    pub async fn apply(&self, index: u32, name: &str, op: &Op) -> Result<(), NetlinkError> {
        let nb = self.handle.neighbours();
        let result = match *op {
            Op::AddFdb(mac, dst) => {
                nb.add_bridge(index, &mac.0)
                    .flags(NeighbourFlags::Own)
                    .destination(IpAddr::V4(dst))
                    .replace()
                    .execute()
                    .await
            }
            Op::AddNeigh(ip, mac) => {
                nb.add(index, IpAddr::V4(ip)).link_layer_address(&mac.0).replace().execute().await
            }
            Op::AddRoute(cidr, gw) => {
                self.handle.route().add(route(index, cidr, gw)).replace().execute().await
            }
            Op::DelFdb(mac, dst) => {
                let mut m = NeighbourMessage::default();
                m.header.family = AddressFamily::Bridge;
                m.header.ifindex = index;
                m.header.flags = NeighbourFlags::Own;
                m.header.state = NeighbourState::Permanent;
                m.attributes.push(NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()));
                m.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(dst)));
                nb.del(m).execute().await
            }
            Op::DelNeigh(ip, _) => {
                let mut m = NeighbourMessage::default();
                m.header.family = AddressFamily::Inet;
                m.header.ifindex = index;
                m.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
                nb.del(m).execute().await
            }
            Op::DelRoute(cidr, gw) => {
                // Any protocol: a route added by hand (`proto boot`) too.
                let mut m = route(index, cidr, gw);
                m.header.protocol = RouteProtocol::Unspec;
                self.handle.route().del(m).execute().await
            }
        };
        match result {
            // Already gone: what a removal wanted.
            Err(e)
                if matches!(op, Op::DelFdb(..) | Op::DelNeigh(..) | Op::DelRoute(..))
                    && matches!(errno(&e), Some(ENOENT | ESRCH)) =>
            {
                Ok(())
            }
            r => r.map_err(Self::err(format!("{op:?}"), name)),
        }
    }
}

/// `cidr via gw dev <index> onlink`, main table.
fn route(index: u32, cidr: Cidr, gw: Ipv4Addr) -> RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(cidr.addr, cidr.prefix)
        .gateway(gw)
        .output_interface(index)
        .onlink()
        .build()
}

/// A main-table unicast route through the device with a gateway.
fn route_on(r: &RouteMessage, index: u32) -> Option<(Cidr, Ipv4Addr)> {
    let mut table = u32::from(r.header.table);
    let (mut oif, mut dst, mut gw) = (None, Ipv4Addr::UNSPECIFIED, None);
    for a in &r.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = *d,
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => gw = Some(*g),
            _ => {}
        }
    }
    let main = table == u32::from(RouteHeader::RT_TABLE_MAIN);
    if !main || oif != Some(index) || r.header.kind != RouteType::Unicast {
        return None;
    }
    Some((Cidr { addr: dst, prefix: r.header.destination_prefix_length }, gw?))
}

fn lladdr(n: &NeighbourMessage) -> Option<Mac> {
    n.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(b) => <[u8; 6]>::try_from(b.as_slice()).ok().map(Mac),
        _ => None,
    })
}

fn dst(n: &NeighbourMessage) -> Option<Ipv4Addr> {
    n.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
        // In the bridge family (FDB) the address is not decoded.
        NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
            <[u8; 4]>::try_from(b.as_slice()).ok().map(Ipv4Addr::from)
        }
        _ => None,
    })
}

/// The link is a VXLAN device with the spec's VNI, port, local address,
/// underlay link, learning off and MAC.
fn vxlan_matches(link: &LinkMessage, spec: &DeviceSpec) -> bool {
    let mac =
        link.attributes.iter().any(|a| matches!(a, LinkAttribute::Address(m) if m.as_slice() == spec.mac.0));
    let infos = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(i) => Some(i),
        _ => None,
    });
    let Some(infos) = infos else { return false };
    let kind = infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Vxlan)));
    let data = infos.iter().find_map(|i| match i {
        LinkInfo::Data(InfoData::Vxlan(d)) => Some(d),
        _ => None,
    });
    let Some(data) = data else { return false };
    let has = |want: &InfoVxlan| data.iter().any(|d| d == want);
    mac && kind
        && has(&InfoVxlan::Id(spec.vni))
        && has(&InfoVxlan::Port(spec.port))
        && has(&InfoVxlan::Local(spec.local))
        && has(&InfoVxlan::Link(spec.underlay_index))
        && has(&InfoVxlan::Learning(false))
}
