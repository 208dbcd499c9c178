//! DHCP messages: DISCOVERs and REQUESTs built, replies checked and parsed.

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::error::{DecodeError, EncodeError};
use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};

/// The options asked for in every DISCOVER and REQUEST (option 55).
const PARAMETERS: [OptionCode; 9] = [
    OptionCode::SubnetMask,
    OptionCode::Router,
    OptionCode::DomainNameServer,
    OptionCode::Hostname,
    OptionCode::DomainName,
    OptionCode::NtpServers,
    OptionCode::AddressLeaseTime,
    OptionCode::Renewal,
    OptionCode::Rebinding,
];
/// Largest DHCP message we accept, announced in option 57.
const MAX_MESSAGE_SIZE: u16 = 1500;
/// Old BOOTP relays drop shorter packets (RFC 1542 §2.1).
pub(super) const BOOTP_MIN_LEN: usize = 300;
/// The fixed header of a DHCP message, magic cookie included.
const HEADER_LEN: usize = 240;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
pub(super) const CHADDR: std::ops::Range<usize> = 28..34;

/// Who this client is on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub mac: [u8; 6],
    /// Sent as option 12 so that the server can register the name.
    pub hostname: Option<String>,
}

impl Identity {
    /// Option 61: hardware type 1 (Ethernet) followed by the MAC.
    pub fn client_id(&self) -> Vec<u8> {
        let mut id = vec![1];
        id.extend_from_slice(&self.mac);
        id
    }
}

/// Which DHCPREQUEST to send (RFC 2131 §4.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SELECTING: take `offered` from `server` (options 50 and 54, broadcast).
    Select { offered: Ipv4Addr, server: Ipv4Addr },
    /// RENEWING: extend the lease on `address` with its server (ciaddr, unicast).
    Renew { address: Ipv4Addr },
    /// REBINDING: extend the lease on `address` with any server (ciaddr, broadcast).
    Rebind { address: Ipv4Addr },
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("prepare dhcp {kind} header")]
    Header {
        kind: &'static str,
        #[source]
        source: DecodeError,
    },
    #[error("encode dhcp {kind}")]
    Encode {
        kind: &'static str,
        #[source]
        source: EncodeError,
    },
}

/// A DHCPDISCOVER, with the broadcast flag so replies reach an unconfigured interface.
pub fn build_discover(id: &Identity, xid: u32, secs: u16) -> Result<Vec<u8>, BuildError> {
    let header =
        Header { kind: MessageType::Discover, xid, secs, ciaddr: Ipv4Addr::UNSPECIFIED, broadcast: true };
    build(id, &header, [])
}

/// A DHCPREQUEST of the given kind.
pub fn build_request(id: &Identity, xid: u32, secs: u16, request: Request) -> Result<Vec<u8>, BuildError> {
    let (ciaddr, broadcast, options) = match request {
        Request::Select { offered, server } => (
            Ipv4Addr::UNSPECIFIED,
            true,
            vec![DhcpOption::RequestedIpAddress(offered), DhcpOption::ServerIdentifier(server)],
        ),
        // With ciaddr set the server answers there, so no broadcast flag (§4.1).
        Request::Renew { address } | Request::Rebind { address } => (address, false, Vec::new()),
    };
    let header = Header { kind: MessageType::Request, xid, secs, ciaddr, broadcast };
    build(id, &header, options)
}

struct Header {
    kind: MessageType,
    xid: u32,
    secs: u16,
    ciaddr: Ipv4Addr,
    broadcast: bool,
}

fn build(
    id: &Identity,
    header: &Header,
    options: impl IntoIterator<Item = DhcpOption>,
) -> Result<Vec<u8>, BuildError> {
    let kind = match header.kind {
        MessageType::Discover => "discover",
        _ => "request",
    };
    let mut msg = blank_request(header.xid).map_err(|source| BuildError::Header { kind, source })?;
    let flags = if header.broadcast { Flags::default().set_broadcast() } else { Flags::default() };
    msg.set_secs(header.secs).set_flags(flags).set_ciaddr(header.ciaddr).set_chaddr(&id.mac);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(header.kind));
    opts.insert(DhcpOption::ClientIdentifier(id.client_id()));
    if let Some(hostname) = id.hostname.as_deref().filter(|h| !h.is_empty()) {
        opts.insert(DhcpOption::Hostname(hostname.to_owned()));
    }
    opts.insert(DhcpOption::ParameterRequestList(PARAMETERS.to_vec()));
    opts.insert(DhcpOption::MaxMessageSize(MAX_MESSAGE_SIZE));
    for option in options {
        opts.insert(option);
    }
    let mut pkt = msg.to_vec().map_err(|source| BuildError::Encode { kind, source })?;
    if pkt.len() < BOOTP_MIN_LEN {
        pkt.resize(BOOTP_MIN_LEN, 0);
    }
    Ok(pkt)
}

/// An empty BOOTREQUEST from Ethernet with `xid`.
///
/// Decoded from bytes rather than made with `Message::new`, which draws a random xid
/// from the OS and could block PID 1 early in boot until the kernel's RNG is seeded.
fn blank_request(xid: u32) -> Result<Message, DecodeError> {
    let mut raw = [0u8; HEADER_LEN];
    raw[0] = 1; // op: BOOTREQUEST
    raw[1] = 1; // htype: Ethernet
    raw[2] = 6; // hlen
    raw[4..8].copy_from_slice(&xid.to_be_bytes());
    raw[HEADER_LEN - 4..].copy_from_slice(&MAGIC_COOKIE);
    Message::decode(&mut Decoder::new(&raw))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Offer,
    Ack,
    Nak,
}

/// A server's answer to this client, with the options the client uses.
///
/// Names are checked (letters, digits, `-`, `_`, `.`) and dropped when they are not
/// plausible, since they end up in `/etc/resolv.conf`; zero and broadcast addresses are
/// dropped from the address lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: ReplyKind,
    /// yiaddr: the address offered or granted.
    pub your_addr: Ipv4Addr,
    /// Option 54.
    pub server: Option<Ipv4Addr>,
    pub subnet_mask: Option<Ipv4Addr>,
    pub routers: Vec<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    pub ntp: Vec<Ipv4Addr>,
    pub hostname: Option<String>,
    pub lease_time: Option<Duration>,
    /// T1 (option 58).
    pub renewal: Option<Duration>,
    /// T2 (option 59).
    pub rebinding: Option<Duration>,
    /// Option 56, the server's explanation (mostly of a NAK), made printable.
    pub message: Option<String>,
}

/// Why a received packet is not a reply to this client's transaction.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("malformed dhcp message")]
    Malformed(#[source] DecodeError),
    #[error("dhcp option {code} has invalid length {len}")]
    BadOptionLength { code: u8, len: usize },
    #[error("no dhcp magic cookie")]
    NoMagicCookie,
    #[error("not a BOOTREPLY")]
    NotReply,
    #[error("transaction {got:#010x} is not ours ({expected:#010x})")]
    OtherTransaction { expected: u32, got: u32 },
    #[error("reply is for another hardware address")]
    OtherClient,
    #[error("no dhcp message type")]
    NoMessageType,
    #[error("dhcp message type {0:?} is not a reply")]
    UnexpectedType(MessageType),
}

/// Decodes `pkt` and checks that it answers transaction `xid` of the client `mac`.
pub fn parse_reply(pkt: &[u8], xid: u32, mac: &[u8; 6]) -> Result<Reply, ReplyError> {
    check_option_lengths(pkt.get(HEADER_LEN..).unwrap_or_default())?;
    let msg = Message::decode(&mut Decoder::new(pkt)).map_err(ReplyError::Malformed)?;
    if pkt.get(HEADER_LEN - 4..HEADER_LEN) != Some(&MAGIC_COOKIE[..]) {
        return Err(ReplyError::NoMagicCookie);
    }
    if msg.opcode() != Opcode::BootReply {
        return Err(ReplyError::NotReply);
    }
    if msg.xid() != xid {
        return Err(ReplyError::OtherTransaction { expected: xid, got: msg.xid() });
    }
    // Compare the raw bytes: `Message::chaddr` slices by the sender's hlen and panics
    // when that is over 16.
    if pkt.get(CHADDR) != Some(&mac[..]) {
        return Err(ReplyError::OtherClient);
    }
    let opts = msg.opts();
    let kind = match opts.msg_type() {
        Some(MessageType::Offer) => ReplyKind::Offer,
        Some(MessageType::Ack) => ReplyKind::Ack,
        Some(MessageType::Nak) => ReplyKind::Nak,
        Some(other) => return Err(ReplyError::UnexpectedType(other)),
        None => return Err(ReplyError::NoMessageType),
    };
    let addrs = |code| match opts.get(code) {
        Some(
            DhcpOption::Router(list) | DhcpOption::DomainNameServer(list) | DhcpOption::NtpServers(list),
        ) => list.iter().copied().filter(|a| is_unicast(*a)).collect(),
        _ => Vec::new(),
    };
    let seconds = |code| match opts.get(code) {
        Some(
            DhcpOption::AddressLeaseTime(secs) | DhcpOption::Renewal(secs) | DhcpOption::Rebinding(secs),
        ) => Some(Duration::from_secs(u64::from(*secs))),
        _ => None,
    };
    Ok(Reply {
        kind,
        your_addr: msg.yiaddr(),
        server: match opts.get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(addr)) => Some(*addr),
            _ => None,
        },
        subnet_mask: match opts.get(OptionCode::SubnetMask) {
            Some(DhcpOption::SubnetMask(mask)) => Some(*mask),
            _ => None,
        },
        routers: addrs(OptionCode::Router),
        dns: addrs(OptionCode::DomainNameServer),
        ntp: addrs(OptionCode::NtpServers),
        domain: match opts.get(OptionCode::DomainName) {
            Some(DhcpOption::DomainName(names)) => clean_domains(names),
            _ => None,
        },
        hostname: match opts.get(OptionCode::Hostname) {
            Some(DhcpOption::Hostname(name)) => clean_domains(name).filter(|n| !n.contains(' ')),
            _ => None,
        },
        lease_time: seconds(OptionCode::AddressLeaseTime),
        renewal: seconds(OptionCode::Renewal),
        rebinding: seconds(OptionCode::Rebinding),
        message: match opts.get(OptionCode::Message) {
            Some(DhcpOption::Message(text)) => printable(text),
            _ => None,
        },
    })
}

/// Rejects options whose length `dhcproto` 0.14 checks with `debug_assert!` rather than
/// an error, so that a malformed packet cannot panic a debug build of PID 1.
///
/// Mirrors its RFC 3396 handling: consecutive instances of one code are one option.
fn check_option_lengths(mut options: &[u8]) -> Result<(), ReplyError> {
    let check = |run: Option<(u8, usize)>| match run {
        Some((code, len)) if !option_length_ok(code, len) => Err(ReplyError::BadOptionLength { code, len }),
        _ => Ok(()),
    };
    let mut run: Option<(u8, usize)> = None;
    loop {
        match options {
            [] | [255, ..] | [_] => return check(run),
            [0, rest @ ..] => {
                check(run.take())?;
                options = rest;
            }
            [code, len, rest @ ..] => {
                let len = usize::from(*len);
                run = match run {
                    Some((same, total)) if same == *code => Some((same, total + len)),
                    other => {
                        check(other)?;
                        Some((*code, len))
                    }
                };
                options = rest.get(len..).unwrap_or_default();
            }
        }
    }
}

fn option_length_ok(code: u8, len: usize) -> bool {
    match code {
        80 => len == 0,        // rapid commit
        81 => len >= 3,        // client FQDN
        94 => len == 3,        // client network interface
        152..=155 => len == 4, // bulk lease query times
        _ => true,
    }
}

pub(super) fn is_unicast(addr: Ipv4Addr) -> bool {
    !(addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast())
}

/// `names` as space-separated domain names without trailing dots or NULs, or `None` if
/// any is not a plausible name.
fn clean_domains(names: &str) -> Option<String> {
    let names = names.trim_end_matches('\0');
    let mut clean = Vec::new();
    for name in names.split(' ').filter(|n| !n.is_empty()) {
        let name = name.trim_end_matches('.');
        let plausible = !name.is_empty()
            && name.len() <= 253
            && !name.starts_with(['.', '-'])
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !plausible {
            return None;
        }
        clean.push(name);
    }
    (!clean.is_empty()).then(|| clean.join(" "))
}

/// `text` with control characters replaced, at most 200 characters, or `None` if empty.
fn printable(text: &str) -> Option<String> {
    let text: String =
        text.trim_end_matches('\0').chars().take(200).map(|c| if c.is_control() { '?' } else { c }).collect();
    (!text.trim().is_empty()).then_some(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Lease;
    use super::super::fixtures::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_that_could_inject_into_resolv_conf_are_dropped() {
        let lease = lease_with(&[
            DhcpOption::DomainName("evil\nnameserver 6.6.6.6".to_owned()),
            DhcpOption::Hostname("../etc".to_owned()),
        ]);
        assert_eq!(lease.domain, None);
        assert_eq!(lease.hostname, None);
        let lease = lease_with(&[DhcpOption::DomainName("a.example b.example.".to_owned())]);
        assert_eq!(lease.domain.as_deref(), Some("a.example b.example"));
    }

    #[test]
    fn parse_reply_rejects_what_is_not_our_reply() {
        let ack = ack_with(&[]);
        let xid = 0x1234_5678;
        assert!(parse_reply(&ack, xid, &MAC).is_ok());
        assert!(matches!(
            parse_reply(&ack, xid + 1, &MAC),
            Err(ReplyError::OtherTransaction { expected: 0x1234_5679, got: 0x1234_5678 })
        ));
        assert!(matches!(parse_reply(&ack, xid, &[0, 0, 0, 0, 0, 1]), Err(ReplyError::OtherClient)));
        assert!(matches!(parse_reply(&ack[..100], xid, &MAC), Err(ReplyError::Malformed(_))));
        let mut bad = ack.clone();
        bad[0] = 1;
        assert!(matches!(parse_reply(&bad, xid, &MAC), Err(ReplyError::NotReply)));
        let mut bad = ack.clone();
        bad[236] = 0;
        assert!(matches!(parse_reply(&bad, xid, &MAC), Err(ReplyError::NoMagicCookie)));
        let mut bad = ack.clone();
        bad.truncate(HEADER_LEN);
        bad.push(255);
        assert!(matches!(parse_reply(&bad, xid, &MAC), Err(ReplyError::NoMessageType)));
        let discover = build_discover(client().identity(), xid, 0).unwrap();
        let mut as_reply = discover.clone();
        as_reply[0] = 2;
        assert!(matches!(
            parse_reply(&as_reply, xid, &MAC),
            Err(ReplyError::UnexpectedType(MessageType::Discover))
        ));
    }

    #[test]
    fn options_that_would_trip_dhcproto_assertions_are_rejected() {
        let xid = 0x1234_5678;
        let header = &ack_with(&[])[..HEADER_LEN];
        let with = |options: &[u8]| [header, options].concat();
        // Message type ACK, then rapid commit (80) with a payload.
        let bad = with(&[53, 1, 5, 80, 1, 0, 255]);
        assert!(matches!(
            parse_reply(&bad, xid, &MAC),
            Err(ReplyError::BadOptionLength { code: 80, len: 1 })
        ));
        // Client network interface (94) split in two parts of 2 bytes (RFC 3396).
        let bad = with(&[53, 1, 5, 94, 2, 1, 2, 94, 2, 3, 4, 255]);
        assert!(matches!(
            parse_reply(&bad, xid, &MAC),
            Err(ReplyError::BadOptionLength { code: 94, len: 4 })
        ));
        let good = with(&[53, 1, 5, 94, 1, 1, 94, 2, 2, 3, 0, 80, 0, 255]);
        assert_eq!(parse_reply(&good, xid, &MAC).unwrap().kind, ReplyKind::Ack);
    }

    #[test]
    fn hostname_is_optional_and_packets_are_padded() {
        let id = Identity { mac: MAC, hostname: None };
        let pkt = build_discover(&id, 9, 3).unwrap();
        assert_eq!(pkt.len(), BOOTP_MIN_LEN);
        let msg = Message::decode(&mut Decoder::new(&pkt)).unwrap();
        assert_eq!((msg.xid(), msg.secs()), (9, 3));
        assert_eq!(option(&msg, OptionCode::Hostname), None);
        assert_eq!(
            option(&msg, OptionCode::MaxMessageSize),
            Some(&DhcpOption::MaxMessageSize(MAX_MESSAGE_SIZE))
        );
    }

    proptest! {
        #[test]
        fn parse_reply_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let _ = parse_reply(&bytes, 0, &MAC);
        }

        #[test]
        fn parse_reply_survives_any_options(
            options in proptest::collection::vec(any::<u8>(), 0..400),
            hlen in any::<u8>(),
        ) {
            let mut pkt = ack_with(&[]);
            pkt[2] = hlen;
            pkt.truncate(HEADER_LEN);
            pkt.extend(options);
            if let Ok(reply) = parse_reply(&pkt, 0x1234_5678, &MAC) {
                let lease = Lease::from_ack(&reply, SERVER);
                prop_assert!(lease.renew_after <= lease.rebind_after);
                prop_assert!(lease.rebind_after <= lease.lease_time);
                prop_assert!(lease.prefix_len <= 32);
                for name in lease.domain.iter().chain(&lease.hostname) {
                    prop_assert!(!name.contains('\n'));
                }
            }
        }

    }
}
