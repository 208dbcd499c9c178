//! A DHCPv4 client (RFC 2131): acquire a lease, renew it, rebind it.
//!
//! `dhcproto` encodes and decodes the packets; the states (SELECTING, REQUESTING,
//! RENEWING, REBINDING) and the retransmission schedule are ours. Packets travel through
//! [`DhcpSocket`], so the client is tested against a scripted server without root, and
//! leases reach the kernel only through [`Links`] in [`apply_lease`]. Nothing here logs:
//! results and errors carry what the caller needs to report.
//!
//! `packet` builds and parses the messages, `client` runs the exchanges over a `socket`,
//! and `lease` turns an ACK into a [`Lease`] and applies it.
//!
//! [`Links`]: super::link::Links

mod client;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod fixtures;
mod lease;
mod packet;
mod socket;

pub use client::{AcquireError, Backoff, Client, Extension, RenewError};
pub use lease::{ApplyError, DEFAULT_LEASE_TIME, Lease, apply_lease, resolv_conf};
pub use packet::{
    BuildError, Identity, Reply, ReplyError, ReplyKind, Request, build_discover, build_request, parse_reply,
};
pub use socket::{CLIENT_PORT, DhcpSocket, OpenSocketError, SERVER_PORT, UdpDhcpSocket};
