//! A DHCPv4 client (RFC 2131): acquire a lease, renew it, rebind it.
//!
//! `dhcproto` encodes and decodes the packets; the states (SELECTING, REQUESTING,
//! RENEWING, REBINDING) and the retransmission schedule are ours. Packets travel through
//! [`DhcpSocket`], so the client is tested against a scripted server without root, and
//! leases reach the kernel only through [`Links`] in [`apply_lease`]. Nothing here logs:
//! results and errors carry what the caller needs to report.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dhcproto::error::{DecodeError, EncodeError};
use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};

use super::link::{self, LinkError, Links};

/// UDP port DHCP servers listen on.
pub const SERVER_PORT: u16 = 67;
/// UDP port DHCP clients listen on.
pub const CLIENT_PORT: u16 = 68;
/// Lease time assumed when an ACK carries no lease time (option 51).
pub const DEFAULT_LEASE_TIME: Duration = Duration::from_secs(3600);

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
/// How often a REQUEST for an offer is sent before starting over with a DISCOVER.
const SELECT_REQUESTS: u32 = 4;
/// Largest DHCP message we accept, announced in option 57.
const MAX_MESSAGE_SIZE: u16 = 1500;
/// Old BOOTP relays drop shorter packets (RFC 1542 §2.1).
const BOOTP_MIN_LEN: usize = 300;
/// The fixed header of a DHCP message, magic cookie included.
const HEADER_LEN: usize = 240;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
const CHADDR: std::ops::Range<usize> = 28..34;
const RECV_BUFFER: usize = 4096;

/// Where the client's packets go and its replies come from.
pub trait DhcpSocket {
    /// Sends `pkt` to 255.255.255.255, server port.
    fn send_broadcast(&mut self, pkt: &[u8]) -> io::Result<()>;
    /// Sends `pkt` to `to`, server port.
    fn send_unicast(&mut self, pkt: &[u8], to: Ipv4Addr) -> io::Result<()>;
    /// Waits up to `timeout` for one datagram; `Ok(None)` when none came.
    fn recv(&mut self, timeout: Duration) -> io::Result<Option<Vec<u8>>>;
}

/// A UDP socket on `0.0.0.0:68`, bound to one interface, that can send broadcasts.
#[derive(Debug)]
pub struct UdpDhcpSocket {
    socket: UdpSocket,
}

#[derive(Debug, thiserror::Error)]
#[error("open dhcp client socket on {ifname}")]
pub struct OpenSocketError {
    pub ifname: String,
    #[source]
    pub source: io::Error,
}

impl UdpDhcpSocket {
    /// Opens the client socket on `ifname`, which must be up (it needs no address).
    pub fn open(ifname: &str) -> Result<Self, OpenSocketError> {
        let socket = link::udp_socket_on_device(ifname, CLIENT_PORT)
            .map_err(|source| OpenSocketError { ifname: ifname.to_owned(), source })?;
        Ok(Self { socket })
    }
}

impl DhcpSocket for UdpDhcpSocket {
    fn send_broadcast(&mut self, pkt: &[u8]) -> io::Result<()> {
        self.send_unicast(pkt, Ipv4Addr::BROADCAST)
    }

    fn send_unicast(&mut self, pkt: &[u8], to: Ipv4Addr) -> io::Result<()> {
        self.socket.send_to(pkt, SocketAddrV4::new(to, SERVER_PORT)).map(drop)
    }

    fn recv(&mut self, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        // A zero timeout would mean "block forever" to the kernel, and std rejects it.
        let timeout = timeout.max(Duration::from_millis(1));
        self.socket.set_read_timeout(Some(timeout))?;
        let mut buf = vec![0; RECV_BUFFER];
        match self.socket.recv_from(&mut buf) {
            Ok((len, _)) => {
                buf.truncate(len);
                Ok(Some(buf))
            }
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            },
        }
    }
}

/// What the server granted, with the durations counted from when it was granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    /// The search domain; several space-separated domains if the server sent so.
    pub domain: Option<String>,
    pub ntp: Vec<Ipv4Addr>,
    /// The server that granted the lease (option 54), to renew with.
    pub server: Ipv4Addr,
    pub lease_time: Duration,
    /// T1: when to start renewing with [`Client::renew`].
    pub renew_after: Duration,
    /// T2: when to start rebinding with [`Client::rebind`].
    pub rebind_after: Duration,
    pub hostname: Option<String>,
}

impl Lease {
    /// The lease `ack` grants; `server` stands in if the ACK has no server identifier.
    ///
    /// A missing subnet mask falls back to the address's class, a missing lease time to
    /// [`DEFAULT_LEASE_TIME`], and T1/T2 that are missing or inconsistent (T1 ≤ T2 ≤
    /// lease) to the RFC 2131 defaults of 1/2 and 7/8 of the lease.
    pub fn from_ack(ack: &Reply, server: Ipv4Addr) -> Lease {
        let lease_time = ack.lease_time.unwrap_or(DEFAULT_LEASE_TIME);
        let rebind_after = ack.rebinding.filter(|t2| *t2 <= lease_time).unwrap_or(lease_time * 7 / 8);
        let renew_after =
            ack.renewal.filter(|t1| *t1 <= rebind_after).unwrap_or((lease_time / 2).min(rebind_after));
        Lease {
            address: ack.your_addr,
            prefix_len: prefix_len(ack.subnet_mask, ack.your_addr),
            router: ack.routers.first().copied(),
            dns: ack.dns.clone(),
            domain: ack.domain.clone(),
            ntp: ack.ntp.clone(),
            server: ack.server.unwrap_or(server),
            lease_time,
            renew_after,
            rebind_after,
            hostname: ack.hostname.clone(),
        }
    }
}

/// The prefix length of `mask`, or of `addr`'s class (A, B, C) when there is no mask.
fn prefix_len(mask: Option<Ipv4Addr>, addr: Ipv4Addr) -> u8 {
    match mask {
        Some(mask) => u8::try_from(u32::from(mask).leading_ones()).unwrap_or(32),
        None => match addr.octets()[0] {
            0..128 => 8,
            128..192 => 16,
            _ => 24,
        },
    }
}

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

fn is_unicast(addr: Ipv4Addr) -> bool {
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

/// The retransmission schedule: `first`, doubling up to `max`, each ±1/8 at random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// 1 s, 2 s, 4 s, 8 s, 16 s, 16 s … (RFC 2131 §4.1 suggests 4 s up to 64 s; a
    /// booting device prefers to find a late server sooner).
    fn default() -> Self {
        Self { first: Duration::from_secs(1), max: Duration::from_secs(16) }
    }
}

/// Which way a lease is being extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    /// With the server that granted it, by unicast (from T1).
    Renew,
    /// With any server, by broadcast (from T2).
    Rebind,
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Extension::Renew => "renew",
            Extension::Rebind => "rebind",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    #[error(
        "no dhcp lease on {ifname} after {waited:.1?} ({sent} packets sent, {offers} offers, {refusals} refusals, {ignored} other packets received)"
    )]
    Timeout {
        ifname: String,
        waited: Duration,
        sent: u32,
        offers: u32,
        refusals: u32,
        ignored: u32,
        /// Why the last send failed, if it did (the link may have no carrier).
        #[source]
        last_send_error: Option<io::Error>,
    },
    #[error("receive dhcp reply on {ifname}")]
    Receive {
        ifname: String,
        #[source]
        source: io::Error,
    },
    #[error("build dhcp packet for {ifname}")]
    Build {
        ifname: String,
        #[source]
        source: BuildError,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    /// The caller must stop using the address (flush it) and acquire a new lease.
    #[error("{server} refused to {how} the lease of {address} on {ifname}{}", reason(.message))]
    Refused { ifname: String, how: Extension, server: Ipv4Addr, address: Ipv4Addr, message: Option<String> },
    #[error("no answer to dhcp {how} of {address} (server {server}) on {ifname} after {waited:.1?}")]
    Timeout {
        ifname: String,
        how: Extension,
        server: Ipv4Addr,
        address: Ipv4Addr,
        waited: Duration,
        #[source]
        last_send_error: Option<io::Error>,
    },
    #[error("receive dhcp reply on {ifname}")]
    Receive {
        ifname: String,
        #[source]
        source: io::Error,
    },
    #[error("build dhcp packet for {ifname}")]
    Build {
        ifname: String,
        #[source]
        source: BuildError,
    },
}

fn reason(message: &Option<String>) -> String {
    message.as_deref().map(|m| format!(": {m:?}")).unwrap_or_default()
}

/// The DHCP client of one interface.
#[derive(Debug, Clone)]
pub struct Client {
    ifname: String,
    identity: Identity,
    /// splitmix64 state for transaction ids and jitter.
    rng: u64,
    backoff: Backoff,
}

impl Client {
    /// A client for `ifname` with hardware address `mac`, seeded from the MAC and the clock
    /// so that devices booting together pick different transaction ids.
    pub fn new(ifname: &str, mac: [u8; 6], hostname: Option<String>) -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut seed = [0u8; 8];
        seed[2..].copy_from_slice(&mac);
        let seed = u64::from_be_bytes(seed)
            ^ now.as_secs().rotate_left(48)
            ^ u64::from(now.subsec_nanos()).rotate_left(17);
        Self::with_seed(ifname, mac, hostname, seed)
    }

    /// A client whose transaction ids and jitter follow from `seed` alone.
    pub fn with_seed(ifname: &str, mac: [u8; 6], hostname: Option<String>, seed: u64) -> Self {
        Self {
            ifname: ifname.to_owned(),
            identity: Identity { mac, hostname },
            rng: seed,
            backoff: Backoff::default(),
        }
    }

    pub fn set_backoff(&mut self, backoff: Backoff) {
        self.backoff = backoff;
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Gets a lease: DISCOVER, OFFER, REQUEST, ACK, starting over after a NAK, for at
    /// most `deadline`. The interface must be up; the lease is not applied.
    pub fn acquire(&mut self, sock: &mut dyn DhcpSocket, deadline: Duration) -> Result<Lease, AcquireError> {
        let mut attempt = Attempt::new(deadline);
        let (mut offers, mut refusals) = (0, 0);
        let id = self.identity.clone();
        loop {
            let xid = self.next_xid();
            let offer = self
                .transact(
                    sock,
                    &mut attempt,
                    Exchange::new(Dest::Broadcast, xid),
                    &|secs| build_discover(&id, xid, secs),
                    &mut usable_offer,
                )
                .map_err(|f| f.into_acquire_error(&self.ifname))?;
            let Some((offer, server)) = offer else {
                return Err(attempt.acquire_timeout(&self.ifname, offers, refusals));
            };
            offers += 1;
            let request = Request::Select { offered: offer.your_addr, server };
            let answer = self
                .transact(
                    sock,
                    &mut attempt,
                    Exchange { max_sends: SELECT_REQUESTS, ..Exchange::new(Dest::Broadcast, xid) },
                    &|secs| build_request(&id, xid, secs, request),
                    &mut |reply| answer_from(reply, Some(server)),
                )
                .map_err(|f| f.into_acquire_error(&self.ifname))?;
            match answer {
                None if attempt.remaining().is_zero() => {
                    return Err(attempt.acquire_timeout(&self.ifname, offers, refusals));
                }
                // The server went quiet after offering: start over (§4.4.1), maybe
                // another one answers.
                None => {}
                Some(ack) if ack.kind == ReplyKind::Ack => {
                    let ack = Reply { lease_time: ack.lease_time.or(offer.lease_time), ..ack };
                    return Ok(Lease::from_ack(&ack, server));
                }
                Some(_nak) => {
                    // Start over (§3.1.4), after a pause so that a server that refuses
                    // every time is not hammered.
                    refusals += 1;
                    thread::sleep(self.backoff.first.min(attempt.remaining()));
                }
            }
        }
    }

    /// Extends `lease` with the server that granted it (RENEWING), by unicast.
    ///
    /// Meant to be called at T1; tries until T2 would have come (`rebind_after −
    /// renew_after` from now).
    pub fn renew(&mut self, sock: &mut dyn DhcpSocket, lease: &Lease) -> Result<Lease, RenewError> {
        let budget = lease.rebind_after.saturating_sub(lease.renew_after);
        self.extend(sock, lease, Extension::Renew, budget)
    }

    /// Extends `lease` with any server (REBINDING), by broadcast.
    ///
    /// Meant to be called at T2; tries until the lease would have expired.
    pub fn rebind(&mut self, sock: &mut dyn DhcpSocket, lease: &Lease) -> Result<Lease, RenewError> {
        let budget = lease.lease_time.saturating_sub(lease.rebind_after);
        self.extend(sock, lease, Extension::Rebind, budget)
    }

    /// Renews or rebinds `lease`, trying for at most `budget`.
    pub fn extend(
        &mut self,
        sock: &mut dyn DhcpSocket,
        lease: &Lease,
        how: Extension,
        budget: Duration,
    ) -> Result<Lease, RenewError> {
        let mut attempt = Attempt::new(budget);
        let xid = self.next_xid();
        let id = self.identity.clone();
        let address = lease.address;
        let (request, dest, server) = match how {
            Extension::Renew => (Request::Renew { address }, Dest::Unicast(lease.server), Some(lease.server)),
            Extension::Rebind => (Request::Rebind { address }, Dest::Broadcast, None),
        };
        let answer = self
            .transact(
                sock,
                &mut attempt,
                Exchange::new(dest, xid),
                &|secs| build_request(&id, xid, secs, request),
                &mut |reply| answer_from(reply, server),
            )
            .map_err(|f| f.into_renew_error(&self.ifname))?;
        match answer {
            Some(ack) if ack.kind == ReplyKind::Ack => Ok(Lease::from_ack(&ack, lease.server)),
            Some(nak) => Err(RenewError::Refused {
                ifname: self.ifname.clone(),
                how,
                server: nak.server.unwrap_or(lease.server),
                address,
                message: nak.message,
            }),
            None => Err(RenewError::Timeout {
                ifname: self.ifname.clone(),
                how,
                server: lease.server,
                address,
                waited: attempt.started.elapsed(),
                last_send_error: attempt.last_send_error,
            }),
        }
    }

    /// Sends a packet and waits for a reply that `accept` takes, retransmitting on the
    /// back-off schedule until the attempt's deadline or `max_sends`. Packets that are
    /// not replies to `xid`, or that `accept` declines, are counted and ignored.
    fn transact<T>(
        &mut self,
        sock: &mut dyn DhcpSocket,
        attempt: &mut Attempt,
        exchange: Exchange,
        build: &dyn Fn(u16) -> Result<Vec<u8>, BuildError>,
        accept: &mut dyn FnMut(Reply) -> Option<T>,
    ) -> Result<Option<T>, Failure> {
        let Exchange { dest, xid, max_sends } = exchange;
        let mut interval = self.backoff.first;
        for _ in 0..max_sends {
            let now = Instant::now();
            if now >= attempt.until {
                return Ok(None);
            }
            let secs = u16::try_from(now.duration_since(attempt.started).as_secs()).unwrap_or(u16::MAX);
            let pkt = build(secs).map_err(Failure::Build)?;
            let sent = match dest {
                Dest::Broadcast => sock.send_broadcast(&pkt),
                Dest::Unicast(to) => sock.send_unicast(&pkt, to),
            };
            match sent {
                Ok(()) => attempt.sent += 1,
                Err(e) => attempt.last_send_error = Some(e),
            }
            let wait_until =
                now.checked_add(self.jitter(interval)).map_or(attempt.until, |t| t.min(attempt.until));
            loop {
                let left = wait_until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let Some(pkt) = sock.recv(left).map_err(Failure::Receive)? else {
                    continue;
                };
                let accepted = parse_reply(&pkt, xid, &self.identity.mac).ok().and_then(&mut *accept);
                match accepted {
                    Some(answer) => return Ok(Some(answer)),
                    None => attempt.ignored += 1,
                }
            }
            interval = (interval * 2).min(self.backoff.max);
        }
        Ok(None)
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_xid(&mut self) -> u32 {
        let [a, b, c, d, ..] = self.next_u64().to_be_bytes();
        u32::from_be_bytes([a, b, c, d])
    }

    /// `interval` moved by up to ±1/8 of itself.
    fn jitter(&mut self, interval: Duration) -> Duration {
        let [.., hi, lo] = self.next_u64().to_be_bytes();
        let step = u32::from(u16::from_be_bytes([hi, lo]) % 1025); // 0..=1024
        interval - interval / 8 + interval / 4 * step / 1024
    }
}

/// `reply` if it is an OFFER of a usable address from an identified server.
fn usable_offer(reply: Reply) -> Option<(Reply, Ipv4Addr)> {
    let server = reply.server?;
    (reply.kind == ReplyKind::Offer && is_unicast(reply.your_addr) && !reply.your_addr.is_loopback())
        .then_some((reply, server))
}

/// `reply` if it is an ACK of a usable address or a NAK, from `server` when one is given
/// (a reply without a server identifier is taken as coming from it).
fn answer_from(reply: Reply, server: Option<Ipv4Addr>) -> Option<Reply> {
    let from_server = match (server, reply.server) {
        (Some(expected), Some(got)) => expected == got,
        _ => true,
    };
    let answer = match reply.kind {
        ReplyKind::Ack => is_unicast(reply.your_addr),
        ReplyKind::Nak => true,
        ReplyKind::Offer => false,
    };
    (from_server && answer).then_some(reply)
}

#[derive(Debug, Clone, Copy)]
enum Dest {
    Broadcast,
    Unicast(Ipv4Addr),
}

/// One packet's round trips: where it goes, its transaction, how often it is sent.
#[derive(Debug, Clone, Copy)]
struct Exchange {
    dest: Dest,
    xid: u32,
    max_sends: u32,
}

impl Exchange {
    fn new(dest: Dest, xid: u32) -> Self {
        Self { dest, xid, max_sends: u32::MAX }
    }
}

/// The clock and the tally of one acquisition or extension.
struct Attempt {
    started: Instant,
    until: Instant,
    sent: u32,
    ignored: u32,
    last_send_error: Option<io::Error>,
}

impl Attempt {
    fn new(budget: Duration) -> Self {
        let started = Instant::now();
        // Budgets past what Instant can hold mean "as long as it takes".
        let until = started
            .checked_add(budget)
            .or_else(|| started.checked_add(Duration::from_secs(u64::from(u32::MAX))))
            .unwrap_or(started);
        Self { started, until, sent: 0, ignored: 0, last_send_error: None }
    }

    fn remaining(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }

    fn acquire_timeout(self, ifname: &str, offers: u32, refusals: u32) -> AcquireError {
        AcquireError::Timeout {
            ifname: ifname.to_owned(),
            waited: self.started.elapsed(),
            sent: self.sent,
            offers,
            refusals,
            ignored: self.ignored,
            last_send_error: self.last_send_error,
        }
    }
}

enum Failure {
    Build(BuildError),
    Receive(io::Error),
}

impl Failure {
    fn into_acquire_error(self, ifname: &str) -> AcquireError {
        let ifname = ifname.to_owned();
        match self {
            Failure::Build(source) => AcquireError::Build { ifname, source },
            Failure::Receive(source) => AcquireError::Receive { ifname, source },
        }
    }

    fn into_renew_error(self, ifname: &str) -> RenewError {
        let ifname = ifname.to_owned();
        match self {
            Failure::Build(source) => RenewError::Build { ifname, source },
            Failure::Receive(source) => RenewError::Receive { ifname, source },
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("apply dhcp lease {address}/{prefix_len} from {server} on {ifname}")]
pub struct ApplyError {
    pub ifname: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub server: Ipv4Addr,
    #[source]
    pub source: LinkError,
}

/// Gives `ifname` the leased address and, if the lease names a router, a default route.
pub fn apply_lease(links: &mut dyn Links, ifname: &str, lease: &Lease) -> Result<(), ApplyError> {
    let wrap = |source| ApplyError {
        ifname: ifname.to_owned(),
        address: lease.address,
        prefix_len: lease.prefix_len,
        server: lease.server,
        source,
    };
    links.add_ipv4(ifname, lease.address, lease.prefix_len).map_err(wrap)?;
    if let Some(router) = lease.router {
        links.add_default_route(ifname, router).map_err(wrap)?;
    }
    Ok(())
}

/// The `/etc/resolv.conf` for `lease`, obtained on `ifname`.
pub fn resolv_conf(ifname: &str, lease: &Lease) -> String {
    let mut out = format!("# generated by lichen-init from DHCP on {ifname}\n");
    for server in &lease.dns {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if let Some(domain) = &lease.domain {
        out.push_str(&format!("search {domain}\n"));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::link::FakeLinks;
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
    const OFFERED: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
    const FAST: Backoff = Backoff { first: Duration::from_millis(20), max: Duration::from_millis(40) };

    /// A packet the client sent, as the server saw it.
    struct Sent {
        to: Option<Ipv4Addr>,
        msg: Message,
        len: usize,
        at: Instant,
    }

    type Respond = Box<dyn FnMut(&Message) -> Vec<Vec<u8>>>;

    /// A [`DhcpSocket`] that plays the server: each packet the client sends is decoded,
    /// recorded and answered by `respond`; `recv` sleeps out its timeout when idle.
    struct FakeServer {
        sent: Vec<Sent>,
        queue: VecDeque<Vec<u8>>,
        respond: Respond,
    }

    impl FakeServer {
        fn new(respond: impl FnMut(&Message) -> Vec<Vec<u8>> + 'static) -> Self {
            Self { sent: Vec::new(), queue: VecDeque::new(), respond: Box::new(respond) }
        }

        fn handle(&mut self, to: Option<Ipv4Addr>, pkt: &[u8]) -> io::Result<()> {
            let msg = Message::decode(&mut Decoder::new(pkt)).unwrap();
            self.queue.extend((self.respond)(&msg));
            self.sent.push(Sent { to, msg, len: pkt.len(), at: Instant::now() });
            Ok(())
        }

        fn kinds(&self) -> Vec<MessageType> {
            self.sent.iter().map(|s| s.msg.opts().msg_type().unwrap()).collect()
        }
    }

    impl DhcpSocket for FakeServer {
        fn send_broadcast(&mut self, pkt: &[u8]) -> io::Result<()> {
            self.handle(None, pkt)
        }

        fn send_unicast(&mut self, pkt: &[u8], to: Ipv4Addr) -> io::Result<()> {
            self.handle(Some(to), pkt)
        }

        fn recv(&mut self, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
            match self.queue.pop_front() {
                Some(pkt) => Ok(Some(pkt)),
                None => {
                    thread::sleep(timeout);
                    Ok(None)
                }
            }
        }
    }

    /// A reply to `req` of `kind` offering `yiaddr`, from SERVER, with `options`.
    fn reply(req: &Message, kind: MessageType, yiaddr: Ipv4Addr, options: &[DhcpOption]) -> Message {
        let unspecified = Ipv4Addr::UNSPECIFIED;
        let mut msg = Message::new_with_id(req.xid(), unspecified, yiaddr, SERVER, unspecified, req.chaddr());
        msg.set_opcode(Opcode::BootReply).set_flags(req.flags());
        msg.opts_mut().insert(DhcpOption::MessageType(kind));
        msg.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER));
        for opt in options {
            msg.opts_mut().insert(opt.clone());
        }
        msg
    }

    fn encode(msg: &Message) -> Vec<u8> {
        msg.to_vec().unwrap()
    }

    fn slirp_options() -> Vec<DhcpOption> {
        vec![
            DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)),
            DhcpOption::Router(vec![SERVER]),
            DhcpOption::DomainNameServer(vec![Ipv4Addr::new(10, 0, 2, 3)]),
            DhcpOption::AddressLeaseTime(86400),
        ]
    }

    /// Answers like QEMU's user-mode network: OFFER for DISCOVER, ACK for REQUEST.
    fn slirp(msg: &Message) -> Vec<Vec<u8>> {
        let kind = match msg.opts().msg_type() {
            Some(MessageType::Discover) => MessageType::Offer,
            Some(MessageType::Request) => MessageType::Ack,
            _ => return Vec::new(),
        };
        vec![encode(&reply(msg, kind, OFFERED, &slirp_options()))]
    }

    fn client() -> Client {
        let mut client = Client::with_seed("eth0", MAC, Some("edge-1".to_owned()), 7);
        client.set_backoff(FAST);
        client
    }

    fn slirp_lease() -> Lease {
        Lease {
            address: OFFERED,
            prefix_len: 24,
            router: Some(SERVER),
            dns: vec![Ipv4Addr::new(10, 0, 2, 3)],
            domain: None,
            ntp: Vec::new(),
            server: SERVER,
            lease_time: Duration::from_secs(86400),
            renew_after: Duration::from_secs(43200),
            rebind_after: Duration::from_secs(75600),
            hostname: None,
        }
    }

    fn option(msg: &Message, code: OptionCode) -> Option<&DhcpOption> {
        msg.opts().get(code)
    }

    #[test]
    fn acquire_performs_the_full_handshake() {
        let mut server = FakeServer::new(slirp);
        let lease = client().acquire(&mut server, Duration::from_secs(5)).unwrap();
        assert_eq!(lease, slirp_lease());

        assert_eq!(server.kinds(), [MessageType::Discover, MessageType::Request]);
        let (discover, request) = (&server.sent[0], &server.sent[1]);
        for sent in [discover, request] {
            assert_eq!(sent.to, None, "sent by broadcast");
            assert!(sent.msg.flags().broadcast());
            assert!(sent.len >= BOOTP_MIN_LEN);
            assert_eq!(sent.msg.opcode(), Opcode::BootRequest);
            assert_eq!(sent.msg.chaddr(), MAC);
            assert_eq!(sent.msg.ciaddr(), Ipv4Addr::UNSPECIFIED);
            assert_eq!(
                option(&sent.msg, OptionCode::ClientIdentifier),
                Some(&DhcpOption::ClientIdentifier(vec![1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56]))
            );
            assert_eq!(
                option(&sent.msg, OptionCode::Hostname),
                Some(&DhcpOption::Hostname("edge-1".to_owned()))
            );
            let Some(DhcpOption::ParameterRequestList(asked)) =
                option(&sent.msg, OptionCode::ParameterRequestList)
            else {
                panic!("no parameter request list");
            };
            for code in [
                OptionCode::SubnetMask,
                OptionCode::Router,
                OptionCode::DomainNameServer,
                OptionCode::DomainName,
                OptionCode::NtpServers,
                OptionCode::AddressLeaseTime,
                OptionCode::Renewal,
                OptionCode::Rebinding,
            ] {
                assert!(asked.contains(&code), "{code:?} not requested");
            }
        }
        assert_eq!(option(&discover.msg, OptionCode::RequestedIpAddress), None);
        assert_eq!(option(&discover.msg, OptionCode::ServerIdentifier), None);
        assert_eq!(request.msg.xid(), discover.msg.xid(), "one transaction");
        assert_eq!(
            option(&request.msg, OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(OFFERED))
        );
        assert_eq!(
            option(&request.msg, OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(SERVER))
        );
    }

    #[test]
    fn acquire_starts_over_after_a_nak() {
        let mut requests = 0;
        let mut server = FakeServer::new(move |msg| {
            if msg.opts().msg_type() == Some(MessageType::Request) {
                requests += 1;
                if requests == 1 {
                    let nak = reply(msg, MessageType::Nak, Ipv4Addr::UNSPECIFIED, &[]);
                    return vec![encode(&nak)];
                }
            }
            slirp(msg)
        });
        let lease = client().acquire(&mut server, Duration::from_secs(5)).unwrap();
        assert_eq!(lease, slirp_lease());
        assert_eq!(
            server.kinds(),
            [MessageType::Discover, MessageType::Request, MessageType::Discover, MessageType::Request]
        );
        assert_ne!(server.sent[0].msg.xid(), server.sent[2].msg.xid(), "new transaction");
    }

    #[test]
    fn acquire_ignores_packets_that_are_not_its_replies() {
        let mut server = FakeServer::new(|msg| {
            let decoy = Ipv4Addr::new(10, 0, 2, 99);
            let kind = match msg.opts().msg_type() {
                Some(MessageType::Discover) => MessageType::Offer,
                _ => MessageType::Ack,
            };
            let mut other_xid = reply(msg, kind, decoy, &slirp_options());
            other_xid.set_xid(msg.xid().wrapping_add(1));
            let mut other_client = reply(msg, kind, decoy, &slirp_options());
            other_client.set_chaddr(&[2, 0, 0, 0, 0, 1]);
            let mut request = reply(msg, kind, decoy, &slirp_options());
            request.set_opcode(Opcode::BootRequest);
            let mut bad_hlen = encode(&reply(msg, kind, decoy, &slirp_options()));
            bad_hlen[2] = 200;
            bad_hlen[CHADDR].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
            let mut from_elsewhere = reply(msg, MessageType::Ack, decoy, &slirp_options());
            from_elsewhere.opts_mut().insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 2, 4)));
            let mut garbage = vec![encode(&other_xid), encode(&other_client), encode(&request)];
            garbage.extend([bad_hlen, vec![2, 1, 6, 0], Vec::new()]);
            if kind == MessageType::Ack {
                garbage.push(encode(&from_elsewhere));
            }
            garbage.extend(slirp(msg));
            garbage
        });
        let lease = client().acquire(&mut server, Duration::from_secs(5)).unwrap();
        assert_eq!(lease, slirp_lease());
        assert_eq!(server.kinds(), [MessageType::Discover, MessageType::Request]);
        assert_eq!(
            option(&server.sent[1].msg, OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(OFFERED))
        );
    }

    #[test]
    fn acquire_times_out_with_backoff_when_no_server_answers() {
        let mut server = FakeServer::new(|_| Vec::new());
        let mut client = client();
        client.set_backoff(Backoff { first: Duration::from_millis(50), max: Duration::from_millis(100) });
        let started = Instant::now();
        let err = client.acquire(&mut server, Duration::from_millis(600)).unwrap_err();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(600) && waited < Duration::from_secs(3));
        let AcquireError::Timeout { sent, offers: 0, refusals: 0, .. } = err else {
            panic!("unexpected {err:?}");
        };
        let message = err.to_string();
        assert!(message.starts_with("no dhcp lease on eth0 after "), "{message}");
        assert_eq!(usize::try_from(sent).unwrap(), server.sent.len());
        // 50 ms, 100 ms, then capped at 100 ms, each ±1/8 (and late under load).
        let gaps: Vec<Duration> = server.sent.windows(2).map(|w| w[1].at.duration_since(w[0].at)).collect();
        assert!((4..=6).contains(&gaps.len()), "{gaps:?}");
        let within =
            |gap: Duration, lo, hi| gap >= Duration::from_millis(lo) && gap < Duration::from_millis(hi);
        assert!(within(gaps[0], 43, 85), "{gaps:?}");
        assert!(gaps[1..].iter().all(|gap| within(*gap, 87, 150)), "{gaps:?}");
        assert!(server.kinds().iter().all(|k| *k == MessageType::Discover));
        // The secs field counts from the start of the acquisition.
        assert_eq!(server.sent[0].msg.secs(), 0);
    }

    #[test]
    fn acquire_starts_over_when_the_offering_server_goes_quiet() {
        let mut discovers = 0;
        let mut server = FakeServer::new(move |msg| {
            if msg.opts().msg_type() == Some(MessageType::Discover) {
                discovers += 1;
                if discovers == 1 {
                    return slirp(msg);
                }
            }
            if discovers == 1 {
                return Vec::new();
            }
            slirp(msg)
        });
        let lease = client().acquire(&mut server, Duration::from_secs(5)).unwrap();
        assert_eq!(lease, slirp_lease());
        use MessageType::{Discover, Request};
        assert_eq!(server.kinds(), [Discover, Request, Request, Request, Request, Discover, Request]);
    }

    #[test]
    fn acquire_reports_send_failures_in_the_timeout() {
        struct NoCarrier;
        impl DhcpSocket for NoCarrier {
            fn send_broadcast(&mut self, _: &[u8]) -> io::Result<()> {
                Err(io::Error::from_raw_os_error(libc::ENETDOWN))
            }
            fn send_unicast(&mut self, _: &[u8], _: Ipv4Addr) -> io::Result<()> {
                Err(io::Error::from_raw_os_error(libc::ENETDOWN))
            }
            fn recv(&mut self, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
                thread::sleep(timeout);
                Ok(None)
            }
        }
        let err = client().acquire(&mut NoCarrier, Duration::from_millis(50)).unwrap_err();
        let AcquireError::Timeout { sent: 0, last_send_error: Some(cause), .. } = &err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(cause.raw_os_error(), Some(libc::ENETDOWN));
    }

    #[test]
    fn renew_unicasts_to_the_server_and_extends_the_lease() {
        let mut server = FakeServer::new(|msg| {
            let mut options = slirp_options();
            options.push(DhcpOption::AddressLeaseTime(7200));
            vec![encode(&reply(msg, MessageType::Ack, msg.ciaddr(), &options))]
        });
        let lease = client().renew(&mut server, &slirp_lease()).unwrap();
        assert_eq!(
            lease,
            Lease {
                lease_time: Duration::from_secs(7200),
                renew_after: Duration::from_secs(3600),
                rebind_after: Duration::from_secs(6300),
                ..slirp_lease()
            }
        );
        let [renewal] = &server.sent[..] else {
            panic!("{} packets sent", server.sent.len());
        };
        assert_eq!(renewal.to, Some(SERVER));
        assert_eq!(renewal.msg.opts().msg_type(), Some(MessageType::Request));
        assert_eq!(renewal.msg.ciaddr(), OFFERED);
        assert!(!renewal.msg.flags().broadcast());
        assert_eq!(option(&renewal.msg, OptionCode::RequestedIpAddress), None);
        assert_eq!(option(&renewal.msg, OptionCode::ServerIdentifier), None);
    }

    #[test]
    fn renew_reports_a_refusal_and_a_silent_server() {
        let mut server = FakeServer::new(|msg| {
            let nak = reply(
                msg,
                MessageType::Nak,
                Ipv4Addr::UNSPECIFIED,
                &[DhcpOption::Message("lease expired\n".to_owned())],
            );
            vec![encode(&nak)]
        });
        let err = client().renew(&mut server, &slirp_lease()).unwrap_err();
        assert!(matches!(err, RenewError::Refused { how: Extension::Renew, .. }));
        assert_eq!(
            err.to_string(),
            "10.0.2.2 refused to renew the lease of 10.0.2.15 on eth0: \"lease expired?\""
        );

        let mut silent = FakeServer::new(|_| Vec::new());
        let lease = Lease {
            renew_after: Duration::from_millis(500),
            rebind_after: Duration::from_millis(600),
            ..slirp_lease()
        };
        let started = Instant::now();
        let err = client().renew(&mut silent, &lease).unwrap_err();
        assert!(matches!(err, RenewError::Timeout { .. }), "{err:?}");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(100) && waited < Duration::from_secs(1));
        assert!(silent.sent.iter().all(|s| s.to == Some(SERVER)));
    }

    #[test]
    fn rebind_broadcasts_and_accepts_another_server() {
        let other = Ipv4Addr::new(10, 0, 2, 4);
        let mut server = FakeServer::new(move |msg| {
            let mut ack = reply(msg, MessageType::Ack, msg.ciaddr(), &slirp_options());
            ack.opts_mut().insert(DhcpOption::ServerIdentifier(other));
            vec![encode(&ack)]
        });
        let lease =
            client().extend(&mut server, &slirp_lease(), Extension::Rebind, Duration::from_secs(1)).unwrap();
        assert_eq!(lease.server, other);
        assert_eq!(server.sent[0].to, None);
        assert_eq!(server.sent[0].msg.ciaddr(), OFFERED);
        assert_eq!(option(&server.sent[0].msg, OptionCode::ServerIdentifier), None);
    }

    fn ack_with(options: &[DhcpOption]) -> Vec<u8> {
        let req = Message::new_with_id(
            0x1234_5678,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &MAC,
        );
        encode(&reply(&req, MessageType::Ack, Ipv4Addr::new(172, 20, 3, 9), options))
    }

    fn lease_with(options: &[DhcpOption]) -> Lease {
        let ack = parse_reply(&ack_with(options), 0x1234_5678, &MAC).unwrap();
        Lease::from_ack(&ack, Ipv4Addr::new(192, 0, 2, 1))
    }

    #[test]
    fn lease_options_are_parsed() {
        let lease = lease_with(&[
            DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 240, 0)),
            DhcpOption::Router(vec![Ipv4Addr::UNSPECIFIED, Ipv4Addr::new(172, 20, 0, 1)]),
            DhcpOption::DomainNameServer(vec![Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(9, 9, 9, 9)]),
            DhcpOption::DomainName("site.example.\0".to_owned()),
            DhcpOption::NtpServers(vec![Ipv4Addr::new(172, 20, 0, 2)]),
            DhcpOption::Hostname("edge-7".to_owned()),
            DhcpOption::AddressLeaseTime(1000),
        ]);
        assert_eq!(
            lease,
            Lease {
                address: Ipv4Addr::new(172, 20, 3, 9),
                prefix_len: 20,
                router: Some(Ipv4Addr::new(172, 20, 0, 1)),
                dns: vec![Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(9, 9, 9, 9)],
                domain: Some("site.example".to_owned()),
                ntp: vec![Ipv4Addr::new(172, 20, 0, 2)],
                server: SERVER,
                lease_time: Duration::from_secs(1000),
                renew_after: Duration::from_secs(500),
                rebind_after: Duration::from_secs(875),
                hostname: Some("edge-7".to_owned()),
            }
        );
    }

    #[test]
    fn lease_times_are_taken_when_consistent_and_defaulted_otherwise() {
        let lease = lease_with(&[
            DhcpOption::AddressLeaseTime(100),
            DhcpOption::Renewal(30),
            DhcpOption::Rebinding(60),
        ]);
        assert_eq!(lease.renew_after, Duration::from_secs(30));
        assert_eq!(lease.rebind_after, Duration::from_secs(60));

        let lease = lease_with(&[
            DhcpOption::AddressLeaseTime(100),
            DhcpOption::Renewal(80),
            DhcpOption::Rebinding(60),
        ]);
        assert_eq!(lease.renew_after, Duration::from_secs(50));
        assert_eq!(lease.rebind_after, Duration::from_secs(60));

        let lease = lease_with(&[DhcpOption::AddressLeaseTime(100), DhcpOption::Rebinding(200)]);
        assert_eq!(lease.rebind_after, Duration::from_millis(87_500));

        let lease = lease_with(&[]);
        assert_eq!(lease.lease_time, DEFAULT_LEASE_TIME);
        assert_eq!(lease.prefix_len, 16, "172.20/16 is class B");
        assert_eq!(lease.router, None);
        assert!(lease.dns.is_empty() && lease.domain.is_none());
    }

    #[test]
    fn classful_prefix_without_a_mask() {
        assert_eq!(prefix_len(None, Ipv4Addr::new(10, 1, 2, 3)), 8);
        assert_eq!(prefix_len(None, Ipv4Addr::new(172, 16, 0, 1)), 16);
        assert_eq!(prefix_len(None, Ipv4Addr::new(192, 168, 1, 1)), 24);
        assert_eq!(prefix_len(Some(Ipv4Addr::BROADCAST), OFFERED), 32);
        assert_eq!(prefix_len(Some(Ipv4Addr::UNSPECIFIED), OFFERED), 0);
    }

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
        let discover = build_discover(&client().identity, xid, 0).unwrap();
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

    #[test]
    fn transaction_ids_follow_the_seed() {
        let ids = |seed| {
            let mut c = Client::with_seed("eth0", MAC, None, seed);
            [c.next_xid(), c.next_xid(), c.next_xid()]
        };
        assert_eq!(ids(1), ids(1));
        assert_ne!(ids(1), ids(2));
        let [a, b, c] = ids(1);
        assert!(a != b && b != c);
    }

    #[test]
    fn apply_lease_sets_address_and_default_route() {
        let mut links = FakeLinks::new();
        apply_lease(&mut links, "eth0", &slirp_lease()).unwrap();
        assert_eq!(links.calls, ["addr add eth0 10.0.2.15/24", "route add default via 10.0.2.2 dev eth0"]);

        let mut links = FakeLinks::new();
        let no_router = Lease { router: None, ..slirp_lease() };
        apply_lease(&mut links, "eth0", &no_router).unwrap();
        assert_eq!(links.calls, ["addr add eth0 10.0.2.15/24"]);

        let mut links = FakeLinks { fail_on: Some("addr".to_owned()), ..FakeLinks::default() };
        let err = apply_lease(&mut links, "eth0", &slirp_lease()).unwrap_err();
        assert_eq!(err.to_string(), "apply dhcp lease 10.0.2.15/24 from 10.0.2.2 on eth0");
        assert_eq!(links.calls.len(), 1, "no route without the address");
    }

    #[test]
    fn resolv_conf_lists_nameservers_and_search_domain() {
        let lease = Lease {
            dns: vec![Ipv4Addr::new(10, 0, 2, 3), Ipv4Addr::new(1, 1, 1, 1)],
            domain: Some("site.example".to_owned()),
            ..slirp_lease()
        };
        assert_eq!(
            resolv_conf("eth0", &lease),
            "# generated by lichen-init from DHCP on eth0\n\
             nameserver 10.0.2.3\n\
             nameserver 1.1.1.1\n\
             search site.example\n"
        );
        let bare = Lease { dns: Vec::new(), ..slirp_lease() };
        assert_eq!(resolv_conf("eth1", &bare), "# generated by lichen-init from DHCP on eth1\n");
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

        #[test]
        fn contiguous_masks_give_their_prefix(len in 0u8..=32) {
            let mask = Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0));
            prop_assert_eq!(prefix_len(Some(mask), OFFERED), len);
        }
    }

    /// The real socket against a server on loopback in a private network namespace.
    #[test]
    fn udp_socket_talks_to_a_server_on_its_interface() {
        let outcome = link::in_private_netns(|| {
            link::LinuxLinks.set_up("lo").unwrap();
            let server = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, SERVER_PORT)).unwrap();
            server.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut sock = UdpDhcpSocket::open("lo").unwrap();
            assert_eq!(sock.recv(Duration::from_millis(20)).unwrap(), None);

            sock.send_unicast(b"hello", Ipv4Addr::LOCALHOST).unwrap();
            let mut buf = [0; 64];
            let (len, from) = server.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..len], from.port()), (&b"hello"[..], CLIENT_PORT));
            server.send_to(b"reply", from).unwrap();
            let got = sock.recv(Duration::from_secs(2)).unwrap();
            assert_eq!(got.as_deref(), Some(&b"reply"[..]));

            let broadcast = sock.send_broadcast(b"anyone");
            let heard = server.recv_from(&mut buf).map(|(len, _)| buf[..len].to_vec());
            (broadcast.map_err(|e| e.to_string()), heard.map_err(|e| e.to_string()))
        });
        let Some((broadcast, heard)) = outcome else {
            eprintln!("skipped: cannot create a network namespace here");
            return;
        };
        assert_eq!(broadcast, Ok(()));
        assert_eq!(heard.as_deref(), Ok(&b"anyone"[..]));
    }

    /// A whole acquisition over real sockets, with replies broadcast as slirp sends them.
    #[test]
    fn acquire_over_udp_with_broadcast_replies() {
        let outcome = link::in_private_netns(|| {
            link::LinuxLinks.set_up("lo").unwrap();
            let server = link::udp_socket_on_device("lo", SERVER_PORT).unwrap();
            server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let serve = thread::spawn(move || {
                let mut buf = [0; 1500];
                loop {
                    let (len, _) = server.recv_from(&mut buf).unwrap();
                    let msg = Message::decode(&mut Decoder::new(&buf[..len])).unwrap();
                    for answer in slirp(&msg) {
                        let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT);
                        server.send_to(&answer, to).unwrap();
                    }
                    if msg.opts().msg_type() == Some(MessageType::Request) {
                        break;
                    }
                }
            });
            let mut sock = UdpDhcpSocket::open("lo").unwrap();
            let lease = client().acquire(&mut sock, Duration::from_secs(5));
            serve.join().unwrap();
            lease.map_err(|e| e.to_string())
        });
        let Some(lease) = outcome else {
            eprintln!("skipped: cannot create a network namespace here");
            return;
        };
        assert_eq!(lease, Ok(slirp_lease()));
    }
}
