//! The client's states and retransmissions: acquire a lease, renew it, rebind it.

use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::lease::Lease;
use super::packet::{
    BuildError, Identity, Reply, ReplyKind, Request, build_discover, build_request, is_unicast, parse_reply,
};
use super::socket::DhcpSocket;

/// How often a REQUEST for an offer is sent before starting over with a DISCOVER.
const SELECT_REQUESTS: u32 = 4;

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::super::packet::{BOOTP_MIN_LEN, CHADDR};
    use super::*;
    use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
    use dhcproto::{Decodable, Decoder};
    use std::collections::VecDeque;

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
}
