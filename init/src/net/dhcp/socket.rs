//! The UDP socket the client talks through, behind a trait so tests can play the server.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use crate::net::link;

/// UDP port DHCP servers listen on.
pub const SERVER_PORT: u16 = 67;
/// UDP port DHCP clients listen on.
pub const CLIENT_PORT: u16 = 68;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::{client, slirp, slirp_lease};
    use super::*;
    use crate::net::link::Links;
    use dhcproto::v4::{Message, MessageType};
    use dhcproto::{Decodable, Decoder};
    use std::thread;

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
