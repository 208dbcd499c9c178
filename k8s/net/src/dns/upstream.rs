//! Forwarding to the upstream resolvers: one question sent as a new
//! query (our own random ID) over UDP to each server in turn, again over
//! TCP when the answer is truncated, with a timeout per server. And the
//! nameservers of a resolv.conf.

use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Why no upstream answered.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("no upstream resolvers configured")]
    NoUpstream,
    #[error("encoding the query")]
    Encode(#[source] hickory_proto::ProtoError),
    #[error("no upstream resolver answered (last: {server}: {why})")]
    AllFailed { server: SocketAddr, why: String },
}

/// The `nameserver` lines of resolv.conf `text`, port 53, in order.
pub fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()).flatten()
        })
        .filter_map(|a| a.split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// A random query ID (std's randomly keyed SipHash; no RNG crate needed).
fn random_id() -> u16 {
    let v = std::collections::hash_map::RandomState::new().build_hasher().finish();
    u16::try_from(v & 0xffff).unwrap_or(0)
}

/// Asks each of `servers` in turn for `query`; the first answer wins.
pub async fn forward(
    servers: &[SocketAddr],
    query: &Query,
    recursion_desired: bool,
    timeout: Duration,
) -> Result<Message, ForwardError> {
    let mut last = None;
    for &server in servers {
        let id = random_id();
        let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = recursion_desired;
        msg.add_query(query.clone());
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        msg.set_edns(edns);
        let bytes = msg.to_vec().map_err(ForwardError::Encode)?;
        match tokio::time::timeout(timeout, exchange(server, &bytes, id, query)).await {
            Ok(Ok(m)) => return Ok(m),
            Ok(Err(why)) => last = Some((server, why)),
            Err(_) => last = Some((server, format!("no answer within {timeout:?}"))),
        }
        if let Some((server, why)) = &last {
            tracing::debug!(%server, why, "upstream resolver failed");
        }
    }
    match last {
        Some((server, why)) => Err(ForwardError::AllFailed { server, why }),
        None => Err(ForwardError::NoUpstream),
    }
}

fn matches(m: &Message, id: u16, query: &Query) -> bool {
    m.metadata.id == id
        && m.metadata.message_type == MessageType::Response
        && m.queries.first() == Some(query)
}

async fn exchange(server: SocketAddr, bytes: &[u8], id: u16, query: &Query) -> Result<Message, String> {
    let local: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let sock = UdpSocket::bind(local).await.map_err(|e| format!("udp bind: {e}"))?;
    sock.connect(server).await.map_err(|e| format!("udp connect: {e}"))?;
    sock.send(bytes).await.map_err(|e| format!("udp send: {e}"))?;
    let mut buf = vec![0u8; 4096];
    let m = loop {
        let n = sock.recv(&mut buf).await.map_err(|e| format!("udp receive: {e}"))?;
        // Anything else (a stray or spoofed datagram) is ignored.
        if let Ok(m) = Message::from_vec(&buf[..n])
            && matches(&m, id, query)
        {
            break m;
        }
    };
    if !m.metadata.truncation {
        return Ok(m);
    }
    let mut tcp = TcpStream::connect(server).await.map_err(|e| format!("tcp connect: {e}"))?;
    let len = u16::try_from(bytes.len()).map_err(|_| "query too long".to_owned())?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    tcp.write_all(&framed).await.map_err(|e| format!("tcp send: {e}"))?;
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len).await.map_err(|e| format!("tcp receive: {e}"))?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tcp.read_exact(&mut answer).await.map_err(|e| format!("tcp receive: {e}"))?;
    let m = Message::from_vec(&answer).map_err(|e| format!("tcp answer: {e}"))?;
    if !matches(&m, id, query) {
        return Err("tcp answer does not match the query".into());
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_of_resolv_conf() {
        let text = "# comment\nsearch example.com\nnameserver 192.0.2.1\nnameserver  fe80::1%eth0\n\
                    nameserver bogus\noptions ndots:2\nnameserver 127.0.0.53\n";
        let want: Vec<SocketAddr> = vec![
            "192.0.2.1:53".parse().unwrap(),
            "[fe80::1]:53".parse().unwrap(),
            "127.0.0.53:53".parse().unwrap(),
        ];
        assert_eq!(nameservers(text), want);
    }
}
