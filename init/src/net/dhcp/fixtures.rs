//! A scripted server's answers and the leases they make, shared by the tests.

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::Encodable;
use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};

use super::{Backoff, Client, Lease, parse_reply};

pub(super) const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
pub(super) const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub(super) const OFFERED: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
const FAST: Backoff = Backoff { first: Duration::from_millis(20), max: Duration::from_millis(40) };

/// A reply to `req` of `kind` offering `yiaddr`, from SERVER, with `options`.
pub(super) fn reply(req: &Message, kind: MessageType, yiaddr: Ipv4Addr, options: &[DhcpOption]) -> Message {
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

pub(super) fn encode(msg: &Message) -> Vec<u8> {
    msg.to_vec().unwrap()
}

pub(super) fn slirp_options() -> Vec<DhcpOption> {
    vec![
        DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)),
        DhcpOption::Router(vec![SERVER]),
        DhcpOption::DomainNameServer(vec![Ipv4Addr::new(10, 0, 2, 3)]),
        DhcpOption::AddressLeaseTime(86400),
    ]
}

/// Answers like QEMU's user-mode network: OFFER for DISCOVER, ACK for REQUEST.
pub(super) fn slirp(msg: &Message) -> Vec<Vec<u8>> {
    let kind = match msg.opts().msg_type() {
        Some(MessageType::Discover) => MessageType::Offer,
        Some(MessageType::Request) => MessageType::Ack,
        _ => return Vec::new(),
    };
    vec![encode(&reply(msg, kind, OFFERED, &slirp_options()))]
}

pub(super) fn client() -> Client {
    let mut client = Client::with_seed("eth0", MAC, Some("edge-1".to_owned()), 7);
    client.set_backoff(FAST);
    client
}

pub(super) fn slirp_lease() -> Lease {
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

pub(super) fn option(msg: &Message, code: OptionCode) -> Option<&DhcpOption> {
    msg.opts().get(code)
}

pub(super) fn ack_with(options: &[DhcpOption]) -> Vec<u8> {
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

pub(super) fn lease_with(options: &[DhcpOption]) -> Lease {
    let ack = parse_reply(&ack_with(options), 0x1234_5678, &MAC).unwrap();
    Lease::from_ack(&ack, Ipv4Addr::new(192, 0, 2, 1))
}
