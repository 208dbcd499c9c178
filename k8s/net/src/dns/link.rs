//! The node-local DNS address: a dummy interface (`lichen-dns`) holding
//! the cluster DNS address as a /32, made over rtnetlink. Idempotent: an
//! existing interface and address are kept; other interfaces and
//! addresses are never touched. It does not delete the interface.
//!
//! A kernel without the dummy driver (`CONFIG_DUMMY`; some VM kernels)
//! gets the address on `lo` instead: a local address on any interface is
//! delivered locally, which is all pods need.

use std::net::{IpAddr, Ipv4Addr};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::{Handle, LinkDummy, LinkUnspec};

/// Why the interface or its address could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("opening a netlink socket")]
    Socket(#[source] std::io::Error),
    #[error("looking up interface {interface}")]
    Lookup { interface: String, source: rtnetlink::Error },
    #[error("creating dummy interface {interface}")]
    Create { interface: String, source: rtnetlink::Error },
    #[error("interface {interface} did not appear after it was created")]
    Vanished { interface: String },
    #[error("setting interface {interface} up")]
    Up { interface: String, source: rtnetlink::Error },
    #[error("removing the cluster DNS address from {interface}")]
    Remove { interface: String, source: rtnetlink::Error },
    #[error("adding {address}/32 to interface {interface}")]
    Address { interface: String, address: Ipv4Addr, source: rtnetlink::Error },
}

const EEXIST: i32 = 17;
const ENODEV: i32 = 19;
const EOPNOTSUPP: i32 = 95;

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

async fn index_of(handle: &Handle, interface: &str) -> Result<Option<u32>, LinkError> {
    let mut links = handle.link().get().match_name(interface.to_owned()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
        Err(source) => Err(LinkError::Lookup { interface: interface.to_owned(), source }),
    }
}

/// Whether `interface` exists and holds `address`/32.
async fn holds(handle: &Handle, interface: &str, address: Ipv4Addr) -> Result<bool, LinkError> {
    let Some(index) = index_of(handle, interface).await? else { return Ok(false) };
    let mut addrs = handle.address().get().set_link_index_filter(index).execute();
    let name = || interface.to_owned();
    while let Some(msg) =
        addrs.try_next().await.map_err(|source| LinkError::Lookup { interface: name(), source })?
    {
        let has = msg.attributes.iter().any(|a| matches!(a, AddressAttribute::Local(ip) | AddressAttribute::Address(ip) if *ip == IpAddr::V4(address)));
        if has && msg.header.prefix_len == 32 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Makes dummy interface `interface` exist, be up and hold `address`/32.
/// Returns whether anything had to change.
pub async fn ensure(interface: &str, address: Ipv4Addr) -> Result<bool, LinkError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(LinkError::Socket)?;
    let conn = tokio::spawn(conn);
    let result = ensure_with(&handle, interface, address).await;
    conn.abort();
    result
}

async fn ensure_with(handle: &Handle, interface: &str, address: Ipv4Addr) -> Result<bool, LinkError> {
    let name = || interface.to_owned();
    let mut changed = false;
    let index = match index_of(handle, interface).await? {
        Some(i) => i,
        None if interface != "lo" && holds(handle, "lo", address).await? => {
            // Put there before, by the fallback below.
            return Ok(false);
        }
        None => {
            match handle.link().add(LinkDummy::new(interface).up().build()).execute().await {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(EEXIST) => {}
                Err(e) if errno(&e) == Some(EOPNOTSUPP) => {
                    tracing::warn!(%interface, %address, "the kernel has no dummy interfaces: the DNS address goes on lo");
                    return Box::pin(ensure_with(handle, "lo", address)).await;
                }
                Err(source) => return Err(LinkError::Create { interface: name(), source }),
            }
            changed = true;
            index_of(handle, interface).await?.ok_or_else(|| LinkError::Vanished { interface: name() })?
        }
    };
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|source| LinkError::Up { interface: name(), source })?;
    let present = holds(handle, interface, address).await?;
    if !present {
        match handle.address().add(index, IpAddr::V4(address), 32).execute().await {
            Ok(()) => changed = true,
            Err(e) if errno(&e) == Some(EEXIST) => {}
            Err(source) => return Err(LinkError::Address { interface: name(), address, source }),
        }
    }
    Ok(changed)
}

/// Undoes [`ensure`]: deletes dummy interface `interface`, or `address`/32
/// from `lo` where the fallback put it. Returns whether anything was there.
pub async fn remove(interface: &str, address: Ipv4Addr) -> Result<bool, LinkError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(LinkError::Socket)?;
    let conn = tokio::spawn(conn);
    let result = remove_with(&handle, interface, address).await;
    conn.abort();
    result
}

async fn remove_with(handle: &Handle, interface: &str, address: Ipv4Addr) -> Result<bool, LinkError> {
    let name = || interface.to_owned();
    if let Some(index) = index_of(handle, interface).await? {
        handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(|source| LinkError::Remove { interface: name(), source })?;
        return Ok(true);
    }
    let Some(lo) = index_of(handle, "lo").await? else { return Ok(false) };
    if !holds(handle, "lo", address).await? {
        return Ok(false);
    }
    let mut addrs = handle.address().get().set_link_index_filter(lo).execute();
    while let Some(msg) =
        addrs.try_next().await.map_err(|source| LinkError::Lookup { interface: "lo".into(), source })?
    {
        let ours = msg.header.prefix_len == 32
            && msg.attributes.iter().any(|a| matches!(a, AddressAttribute::Local(ip) | AddressAttribute::Address(ip) if *ip == IpAddr::V4(address)));
        if ours {
            handle
                .address()
                .del(msg)
                .execute()
                .await
                .map_err(|source| LinkError::Remove { interface: "lo".into(), source })?;
            return Ok(true);
        }
    }
    Ok(false)
}
