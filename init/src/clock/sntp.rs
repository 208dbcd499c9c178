//! An SNTP client (RFC 4330): one request, one answer, the clock stepped
//! when it is off by more than [`STEP_OVER`].
//!
//! Written here rather than taken from a crate: the protocol is one
//! 48-byte packet each way, PID 1 wants it synchronous and small, and the
//! checks that matter (the answer is a server's reply to *our* request,
//! the server is synchronised, the timestamps are sane) are a few lines
//! each.
//!
//! Servers come from `lichen.yaml` and the DHCP lease (option 42); there are no built-in
//! public servers, so a device only talks to time servers its network or
//! its configuration names.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::sys::Kernel;

/// Seconds from 1900 (NTP's era 0) to 1970.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// A clock off by less than this is left alone (no slewing here).
pub const STEP_OVER: Duration = Duration::from_secs(1);
/// How long one server gets to answer.
const TIMEOUT: Duration = Duration::from_secs(3);
/// How often the clock is checked once it was set.
pub const EVERY: Duration = Duration::from_secs(3600);
/// How soon to try again after no server answered.
pub const RETRY: Duration = Duration::from_secs(60);

/// The servers `lichen.yaml` names (`ntp_servers`), asked first.
static CONFIGURED: Mutex<Vec<Ipv4Addr>> = Mutex::new(Vec::new());
/// The servers the network named (DHCP option 42), latest lease wins.
static SERVERS: Mutex<Vec<Ipv4Addr>> = Mutex::new(Vec::new());

pub fn set_configured(servers: &[Ipv4Addr]) {
    *CONFIGURED.lock().unwrap_or_else(|p| p.into_inner()) = servers.to_vec();
}

pub fn set_servers(servers: &[Ipv4Addr]) {
    *SERVERS.lock().unwrap_or_else(|p| p.into_inner()) = servers.to_vec();
}

/// The configured servers, then the network's.
pub fn servers() -> Vec<Ipv4Addr> {
    let mut all = CONFIGURED.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for s in SERVERS.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        if !all.contains(s) {
            all.push(*s);
        }
    }
    all
}

#[derive(Debug, thiserror::Error)]
pub enum SntpError {
    #[error("asking {server}")]
    Io { server: SocketAddr, source: std::io::Error },
    #[error("answer from {server} rejected: {why}")]
    Bad { server: SocketAddr, why: &'static str },
}

/// An NTP timestamp (seconds and 2^-32 fractions since 1900) as a duration
/// since the Unix epoch; `None` before 1970.
fn from_ntp(b: &[u8]) -> Option<Duration> {
    let secs = u64::from(u32::from_be_bytes(b[0..4].try_into().ok()?));
    let frac = u64::from(u32::from_be_bytes(b[4..8].try_into().ok()?));
    // Era 1 starts in 2036: small values are after it, not before 1970.
    let secs = if secs < NTP_UNIX_OFFSET { secs + (1 << 32) } else { secs };
    let nanos = (frac * 1_000_000_000) >> 32;
    Some(Duration::new(secs - NTP_UNIX_OFFSET, u32::try_from(nanos).ok()?))
}

fn to_ntp(d: Duration) -> [u8; 8] {
    let secs = (d.as_secs() + NTP_UNIX_OFFSET) & 0xffff_ffff;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    let mut out = [0u8; 8];
    // Both fit: `secs` is masked to 32 bits, `frac` < 2^32 as nanos < 1e9.
    out[..4].copy_from_slice(&u32::try_from(secs).unwrap_or(0).to_be_bytes());
    out[4..].copy_from_slice(&u32::try_from(frac).unwrap_or(u32::MAX).to_be_bytes());
    out
}

/// A client request: version 4, mode 3 (client), our send time as the
/// transmit timestamp (the server echoes it as "originate").
pub fn request(sent: Duration) -> [u8; 48] {
    let mut p = [0u8; 48];
    p[0] = (4 << 3) | 3;
    p[40..48].copy_from_slice(&to_ntp(sent));
    p
}

/// The clock's offset from the server's, in signed nanoseconds, from our
/// send and receive times and the server's answer.
pub fn offset(
    sent: Duration,
    received: Duration,
    answer: &[u8],
    request: &[u8; 48],
) -> Result<i128, &'static str> {
    if answer.len() < 48 {
        return Err("short packet");
    }
    let mode = answer[0] & 7;
    let leap = answer[0] >> 6;
    if mode != 4 {
        return Err("not a server reply");
    }
    if leap == 3 || answer[1] == 0 || answer[1] > 15 {
        return Err("server not synchronised");
    }
    if answer[24..32] != request[40..48] {
        return Err("not an answer to our request");
    }
    let t2 = from_ntp(&answer[32..40]).ok_or("bad receive timestamp")?;
    let t3 = from_ntp(&answer[40..48]).ok_or("bad transmit timestamp")?;
    if t3.is_zero() {
        return Err("no transmit timestamp");
    }
    let ns = |d: Duration| d.as_nanos() as i128;
    Ok(((ns(t2) - ns(sent)) + (ns(t3) - ns(received))) / 2)
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Asks `server` and returns the offset of our clock from its, nanoseconds.
pub fn query(server: SocketAddr) -> Result<i128, SntpError> {
    let io = |source| SntpError::Io { server, source };
    let sock = UdpSocket::bind(("0.0.0.0", 0)).map_err(io)?;
    sock.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    sock.connect(server).map_err(io)?;
    let sent = now();
    let req = request(sent);
    sock.send(&req).map_err(io)?;
    let mut buf = [0u8; 128];
    let n = sock.recv(&mut buf).map_err(io)?;
    let received = now();
    offset(sent, received, &buf[..n], &req).map_err(|why| SntpError::Bad { server, why })
}

/// Asks the servers in turn; steps the clock by the first answer's offset
/// if it is larger than [`STEP_OVER`]. Returns the offset applied (0 when
/// within bounds), or `None` when no server answered.
pub fn sync(k: &mut dyn Kernel, servers: &[SocketAddr]) -> Option<i128> {
    for s in servers {
        match query(*s) {
            Ok(off) if off.unsigned_abs() > STEP_OVER.as_nanos() => {
                let target = now().as_nanos() as i128 + off;
                let secs = u64::try_from(target / 1_000_000_000).unwrap_or(0);
                match k.set_time(secs) {
                    Ok(()) => {
                        crate::info!("clock: stepped by {:.3}s from {s}", off as f64 / 1e9);
                        return Some(off);
                    }
                    Err(e) => crate::warn!("clock: cannot step it: {e}"),
                }
            }
            Ok(_) => return Some(0),
            Err(e) => crate::warn!("clock: {}", crate::log::chain(&e)),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Fake;

    /// A server on loopback whose clock is `ahead` of ours.
    fn server(ahead: Duration, tamper: impl Fn(&mut [u8; 48]) + Send + 'static) -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 48];
            let (_, from) = sock.recv_from(&mut buf).unwrap();
            let mut reply = [0u8; 48];
            reply[0] = 4 << 3 | 4;
            reply[1] = 2;
            reply[24..32].copy_from_slice(&buf[40..48]);
            let t = to_ntp(now() + ahead);
            reply[32..40].copy_from_slice(&t);
            reply[40..48].copy_from_slice(&t);
            tamper(&mut reply);
            sock.send_to(&reply, from).unwrap();
        });
        addr
    }

    #[test]
    fn timestamps_round_trip_including_era_1() {
        for d in [Duration::new(1_790_000_000, 250_000_000), Duration::new(2_100_000_000, 0)] {
            let back = from_ntp(&to_ntp(d)).unwrap();
            assert!(back.abs_diff(d) < Duration::from_micros(1), "{d:?} -> {back:?}");
        }
    }

    #[test]
    fn a_clock_far_behind_is_stepped_to_the_servers_time() {
        let ahead = Duration::from_secs(1_000_000);
        let addr = server(ahead, |_| {});
        let mut k = Fake::new();
        let off = sync(&mut k, &[addr]).unwrap();
        assert!((off - ahead.as_nanos() as i128).abs() < 1_000_000_000, "{off}");
        let set: u64 = k.calls[0].strip_prefix("set_time ").unwrap().parse().unwrap();
        assert!(set.abs_diff((now() + ahead).as_secs()) <= 2, "{set}");
    }

    #[test]
    fn a_clock_within_a_second_is_left_alone() {
        let addr = server(Duration::ZERO, |_| {});
        let mut k = Fake::new();
        assert_eq!(sync(&mut k, &[addr]), Some(0));
        assert!(k.calls.is_empty());
    }

    #[test]
    fn unsynchronised_or_unsolicited_answers_are_refused() {
        let mut k = Fake::new();
        let unsynced = server(Duration::from_secs(99), |r| r[0] = 3 << 6 | 4 << 3 | 4);
        assert!(matches!(query(unsynced), Err(SntpError::Bad { why: "server not synchronised", .. })));
        let forged = server(Duration::from_secs(99), |r| r[24] ^= 0xff);
        assert!(matches!(query(forged), Err(SntpError::Bad { why: "not an answer to our request", .. })));
        assert_eq!(sync(&mut k, &[]), None);
        assert!(k.calls.is_empty());
    }
}
