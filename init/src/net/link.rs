//! The kernel side of IPv4 networking: link state, addresses, the default route and the
//! hardware address, behind [`Links`] so that callers are tested with [`FakeLinks`].
//!
//! [`LinuxLinks`] uses the classic `SIOC*` ioctls on an `AF_INET` datagram socket. They
//! reach everything stage 1 needs without a netlink codec. This file is the only one of
//! the network code that holds `unsafe`; every block says why it is sound.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::mem;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use libc::{c_char, c_int, c_short, c_ulong, c_ushort};

/// Changes to network interfaces that the DHCP client and its caller need.
pub trait Links {
    /// Sets `IFF_UP` on `ifname`.
    fn set_up(&mut self, ifname: &str) -> Result<(), LinkError>;
    /// Gives `ifname` the address `addr/prefix_len`; an address already there is not an error.
    fn add_ipv4(&mut self, ifname: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<(), LinkError>;
    /// Removes the IPv4 addresses of `ifname` (used when a lease is lost).
    fn flush_ipv4(&mut self, ifname: &str) -> Result<(), LinkError>;
    /// Adds `default via gateway dev ifname`; a route already there is not an error.
    fn add_default_route(&mut self, ifname: &str, gateway: Ipv4Addr) -> Result<(), LinkError>;
    /// Reads the Ethernet hardware address of `ifname`.
    fn mac(&self, ifname: &str) -> Result<[u8; 6], LinkError>;
}

/// Failure of one [`Links`] operation, naming the interface it was for.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("interface name {ifname:?} is not valid")]
    InvalidName { ifname: String },
    #[error("prefix length {prefix_len} for {addr} on {ifname} is over 32")]
    InvalidPrefix { ifname: String, addr: Ipv4Addr, prefix_len: u8 },
    #[error("bring up {ifname}")]
    SetUp {
        ifname: String,
        #[source]
        source: io::Error,
    },
    #[error("add address {addr}/{prefix_len} to {ifname}")]
    AddAddress {
        ifname: String,
        addr: Ipv4Addr,
        prefix_len: u8,
        #[source]
        source: io::Error,
    },
    #[error("remove ipv4 addresses from {ifname}")]
    Flush {
        ifname: String,
        #[source]
        source: io::Error,
    },
    #[error("add default route via {gateway} on {ifname}")]
    AddRoute {
        ifname: String,
        gateway: Ipv4Addr,
        #[source]
        source: io::Error,
    },
    #[error("read hardware address of {ifname}")]
    Mac {
        ifname: String,
        #[source]
        source: io::Error,
    },
    #[error("{ifname} is not an ethernet interface (hardware type {hwtype})")]
    NotEthernet { ifname: String, hwtype: u16 },
}

/// The first Ethernet NIC under `sys_class_net` (normally `/sys/class/net`), by name.
///
/// A NIC is an entry whose `type` is 1 (`ARPHRD_ETHER`) and which has a `device` link, so
/// bridges, veths and other software interfaces are skipped, as are `lo` and wireless
/// interfaces (which cannot use DHCP before they are associated).
pub fn first_ethernet(sys_class_net: &Path) -> Option<String> {
    let mut names: Vec<String> = fs::read_dir(sys_class_net)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name != "lo")
        .collect();
    names.sort();
    names.into_iter().find(|name| is_wired_nic(&sys_class_net.join(name)))
}

fn is_wired_nic(dir: &Path) -> bool {
    let ethernet = fs::read_to_string(dir.join("type")).is_ok_and(|t| t.trim() == "1");
    ethernet
        && dir.join("device").symlink_metadata().is_ok()
        && !dir.join("wireless").exists()
        && !dir.join("phy80211").exists()
}

/// [`Links`] on the running kernel, through ioctls on a short-lived `AF_INET` socket.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxLinks;

impl Links for LinuxLinks {
    fn set_up(&mut self, ifname: &str) -> Result<(), LinkError> {
        let mut req = ifreq(ifname)?;
        let wrap = |source| LinkError::SetUp { ifname: ifname.to_owned(), source };
        let sock = control_socket().map_err(wrap)?;
        ioctl(&sock, libc::SIOCGIFFLAGS, &mut req).map_err(wrap)?;
        // SAFETY: SIOCGIFFLAGS succeeded, so the kernel wrote `ifru_flags`, and any bit
        // pattern is a valid c_short.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        if flags & IFF_UP != 0 {
            return Ok(());
        }
        req.ifr_ifru.ifru_flags = flags | IFF_UP;
        ioctl(&sock, libc::SIOCSIFFLAGS, &mut req).map_err(wrap)
    }

    fn add_ipv4(&mut self, ifname: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<(), LinkError> {
        let mut req = ifreq(ifname)?;
        if prefix_len > 32 {
            return Err(LinkError::InvalidPrefix { ifname: ifname.to_owned(), addr, prefix_len });
        }
        let wrap = |source| LinkError::AddAddress { ifname: ifname.to_owned(), addr, prefix_len, source };
        let sock = control_socket().map_err(wrap)?;
        // SIOCSIFADDR replaces the interface's primary address (a no-op when it is the
        // same one), so re-applying a lease is idempotent and a changed lease replaces
        // the old address. The kernel picks a classful mask, corrected just after.
        req.ifr_ifru.ifru_addr = sockaddr_v4(addr);
        match ioctl(&sock, libc::SIOCSIFADDR, &mut req) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(wrap(e)),
            _ => {}
        }
        req.ifr_ifru.ifru_netmask = sockaddr_v4(netmask(prefix_len));
        ioctl(&sock, libc::SIOCSIFNETMASK, &mut req).map_err(wrap)
    }

    fn flush_ipv4(&mut self, ifname: &str) -> Result<(), LinkError> {
        let mut req = ifreq(ifname)?;
        let wrap = |source| LinkError::Flush { ifname: ifname.to_owned(), source };
        let sock = control_socket().map_err(wrap)?;
        // Setting 0.0.0.0 deletes the address labelled `ifname`; repeat until none is
        // left (secondaries may be promoted). Bounded in case the kernel keeps one.
        for _ in 0..MAX_FLUSHED_ADDRESSES {
            match ioctl(&sock, libc::SIOCGIFADDR, &mut req) {
                Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => return Ok(()),
                Err(e) => return Err(wrap(e)),
                Ok(()) => {}
            }
            req.ifr_ifru.ifru_addr = sockaddr_v4(Ipv4Addr::UNSPECIFIED);
            ioctl(&sock, libc::SIOCSIFADDR, &mut req).map_err(wrap)?;
        }
        Ok(())
    }

    fn add_default_route(&mut self, ifname: &str, gateway: Ipv4Addr) -> Result<(), LinkError> {
        let dev = ifname_cstring(ifname)?;
        let wrap = |source| LinkError::AddRoute { ifname: ifname.to_owned(), gateway, source };
        let sock = control_socket().map_err(wrap)?;
        let default = route(&dev, Ipv4Addr::UNSPECIFIED, 0, Some(gateway));
        match add_route(&sock, default) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            // The gateway is outside the leased prefix (a /32 lease, as some clouds
            // hand out): make it reachable on the link first, then retry.
            Err(e) if e.raw_os_error() == Some(libc::ENETUNREACH) => {
                let host = route(&dev, gateway, 32, None);
                match add_route(&sock, host) {
                    Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(wrap(e)),
                    _ => {}
                }
                match add_route(&sock, route(&dev, Ipv4Addr::UNSPECIFIED, 0, Some(gateway))) {
                    Err(e) if e.raw_os_error() != Some(libc::EEXIST) => Err(wrap(e)),
                    _ => Ok(()),
                }
            }
            Err(e) => Err(wrap(e)),
        }
    }

    fn mac(&self, ifname: &str) -> Result<[u8; 6], LinkError> {
        let mut req = ifreq(ifname)?;
        let wrap = |source| LinkError::Mac { ifname: ifname.to_owned(), source };
        let sock = control_socket().map_err(wrap)?;
        ioctl(&sock, libc::SIOCGIFHWADDR, &mut req).map_err(wrap)?;
        // SAFETY: SIOCGIFHWADDR succeeded, so the kernel wrote `ifru_hwaddr`, a plain
        // sockaddr for which every bit pattern is valid.
        let hw = unsafe { req.ifr_ifru.ifru_hwaddr };
        if hw.sa_family != libc::ARPHRD_ETHER {
            return Err(LinkError::NotEthernet { ifname: ifname.to_owned(), hwtype: hw.sa_family });
        }
        let mut mac = [0u8; 6];
        for (out, byte) in mac.iter_mut().zip(hw.sa_data) {
            *out = byte.to_ne_bytes()[0];
        }
        Ok(mac)
    }
}

/// How many addresses [`LinuxLinks::flush_ipv4`] removes at most.
const MAX_FLUSHED_ADDRESSES: usize = 64;
/// `IFF_UP` as the `c_short` of `ifr_flags` (libc has it as a `c_int`).
const IFF_UP: c_short = 0x1;
/// `AF_INET` as the `sa_family_t` of a sockaddr (libc has it as a `c_int`).
const AF_INET_FAMILY: libc::sa_family_t = 2;
const _: () = assert!(libc::AF_INET == 2 && libc::IFF_UP == 1);

fn ifname_cstring(ifname: &str) -> Result<CString, LinkError> {
    let invalid = || LinkError::InvalidName { ifname: ifname.to_owned() };
    let valid = !ifname.is_empty()
        && ifname.len() < libc::IFNAMSIZ
        && !ifname.contains(['/', ':'])
        && !ifname.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid {
        return Err(invalid());
    }
    CString::new(ifname).map_err(|_| invalid())
}

fn ifreq(ifname: &str) -> Result<libc::ifreq, LinkError> {
    let name = ifname_cstring(ifname)?;
    // SAFETY: ifreq is a C struct of integers, byte arrays and a union of those; all
    // zeroes is a valid value of it (an empty name and zeroed request data).
    let mut req: libc::ifreq = unsafe { mem::zeroed() };
    for (slot, byte) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *slot = c_char::from_ne_bytes([*byte]);
    }
    Ok(req)
}

fn sockaddr_v4(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: AF_INET_FAMILY,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from(addr).to_be() },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr are both 16-byte plain C structs (transmute checks
    // the size) and the kernel reads a sockaddr with sa_family AF_INET as a sockaddr_in.
    unsafe { mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

fn netmask(prefix_len: u8) -> Ipv4Addr {
    let bits = u32::MAX.checked_shl(32 - u32::from(prefix_len.min(32))).unwrap_or(0);
    Ipv4Addr::from(bits)
}

/// A socket to issue interface ioctls on; closed when dropped.
fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; the result is checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2), is open and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl_request(request: c_ulong) -> libc::Ioctl {
    // The SIOC* numbers are below 0x9000, so they fit the `int` that musl declares.
    #[allow(clippy::cast_possible_truncation, clippy::unnecessary_cast)]
    let request = request as libc::Ioctl;
    request
}

fn ioctl(sock: &OwnedFd, request: c_ulong, req: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: every request passed here (SIOC[GS]IFFLAGS, SIOC[GS]IFADDR, SIOCSIFNETMASK,
    // SIOCGIFHWADDR) takes a pointer to a struct ifreq, which `req` is, valid and
    // exclusively borrowed for the duration of the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), ioctl_request(request), std::ptr::from_mut(req)) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An IPv4 route on `dev` to `dst/prefix_len`, via `gateway` if any.
struct Route<'a> {
    dev: &'a CString,
    dst: Ipv4Addr,
    prefix_len: u8,
    gateway: Option<Ipv4Addr>,
}

fn route(dev: &CString, dst: Ipv4Addr, prefix_len: u8, gateway: Option<Ipv4Addr>) -> Route<'_> {
    Route { dev, dst, prefix_len, gateway }
}

fn add_route(sock: &OwnedFd, route: Route<'_>) -> io::Result<()> {
    // SAFETY: rtentry is a C struct of integers, sockaddrs and one pointer; all zeroes is
    // a valid value (a null rt_dev, which is overwritten below).
    let mut rt: libc::rtentry = unsafe { mem::zeroed() };
    rt.rt_dst = sockaddr_v4(route.dst);
    rt.rt_genmask = sockaddr_v4(netmask(route.prefix_len));
    let mut flags: c_ushort = libc::RTF_UP;
    if let Some(gateway) = route.gateway {
        rt.rt_gateway = sockaddr_v4(gateway);
        flags |= libc::RTF_GATEWAY;
    }
    if route.prefix_len == 32 {
        flags |= libc::RTF_HOST;
    }
    rt.rt_flags = flags;
    // The kernel only reads the name (strncpy_from_user); the pointer is not written.
    rt.rt_dev = route.dev.as_ptr().cast_mut();
    // SAFETY: SIOCADDRT takes a pointer to a struct rtentry, which `rt` is; its rt_dev
    // points to a NUL-terminated name that outlives the call.
    let rc =
        unsafe { libc::ioctl(sock.as_raw_fd(), ioctl_request(libc::SIOCADDRT), std::ptr::from_mut(&mut rt)) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A UDP socket bound to `0.0.0.0:port` on `ifname` only (`SO_BINDTODEVICE`), with
/// `SO_REUSEADDR` and `SO_BROADCAST`, as a DHCP client needs before it has an address.
pub(crate) fn udp_socket_on_device(ifname: &str, port: u16) -> io::Result<UdpSocket> {
    let name = ifname_cstring(ifname)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid interface name"))?;
    // SAFETY: socket(2) takes no pointers; the result is checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, libc::IPPROTO_UDP) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2), is open and owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    set_flag(&fd, libc::SO_REUSEADDR)?;
    set_flag(&fd, libc::SO_BROADCAST)?;
    let name = name.as_bytes_with_nul();
    // SAFETY: SO_BINDTODEVICE reads `optlen` bytes of an interface name from `optval`,
    // which points to `name`, alive and of exactly that length.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            socklen_of(name.len()),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let addr = libc::sockaddr_in {
        sin_family: AF_INET_FAMILY,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(Ipv4Addr::UNSPECIFIED).to_be() },
        sin_zero: [0; 8],
    };
    // SAFETY: bind(2) reads a sockaddr_in of the given length from `addr`, which lives
    // across the call.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::from_ref(&addr).cast(),
            socklen_of(mem::size_of::<libc::sockaddr_in>()),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(UdpSocket::from(fd))
}

fn set_flag(fd: &OwnedFd, option: c_int) -> io::Result<()> {
    let one: c_int = 1;
    // SAFETY: SOL_SOCKET boolean options read a c_int from `optval`; `one` is one and
    // lives across the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            std::ptr::from_ref(&one).cast(),
            socklen_of(mem::size_of::<c_int>()),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn socklen_of(len: usize) -> libc::socklen_t {
    // Only called with the sizes of small structs and interface names.
    libc::socklen_t::try_from(len).unwrap_or(libc::socklen_t::MAX)
}

/// [`Links`] that changes nothing and records each call, for tests.
///
/// Calls are recorded as `up IF`, `addr add IF A.B.C.D/N`, `addr flush IF` and
/// `route add default via A.B.C.D dev IF`. A call whose record starts with `fail_on`
/// is recorded and then fails.
#[derive(Debug, Default, Clone)]
pub struct FakeLinks {
    pub calls: Vec<String>,
    /// Hardware addresses returned by [`Links::mac`]; other names fail with `ENODEV`.
    pub macs: BTreeMap<String, [u8; 6]>,
    pub fail_on: Option<String>,
}

impl FakeLinks {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fake with one interface `ifname` whose hardware address is `mac`.
    pub fn with_mac(ifname: &str, mac: [u8; 6]) -> Self {
        let mut links = Self::default();
        links.macs.insert(ifname.to_owned(), mac);
        links
    }

    fn record(&mut self, call: String) -> io::Result<()> {
        let fails = self.fail_on.as_deref().is_some_and(|prefix| call.starts_with(prefix));
        self.calls.push(call);
        if fails {
            return Err(io::Error::other("injected failure"));
        }
        Ok(())
    }
}

impl Links for FakeLinks {
    fn set_up(&mut self, ifname: &str) -> Result<(), LinkError> {
        ifname_cstring(ifname)?;
        self.record(format!("up {ifname}"))
            .map_err(|source| LinkError::SetUp { ifname: ifname.to_owned(), source })
    }

    fn add_ipv4(&mut self, ifname: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<(), LinkError> {
        ifname_cstring(ifname)?;
        if prefix_len > 32 {
            return Err(LinkError::InvalidPrefix { ifname: ifname.to_owned(), addr, prefix_len });
        }
        self.record(format!("addr add {ifname} {addr}/{prefix_len}"))
            .map_err(|source| LinkError::AddAddress { ifname: ifname.to_owned(), addr, prefix_len, source })
    }

    fn flush_ipv4(&mut self, ifname: &str) -> Result<(), LinkError> {
        ifname_cstring(ifname)?;
        self.record(format!("addr flush {ifname}"))
            .map_err(|source| LinkError::Flush { ifname: ifname.to_owned(), source })
    }

    fn add_default_route(&mut self, ifname: &str, gateway: Ipv4Addr) -> Result<(), LinkError> {
        ifname_cstring(ifname)?;
        self.record(format!("route add default via {gateway} dev {ifname}"))
            .map_err(|source| LinkError::AddRoute { ifname: ifname.to_owned(), gateway, source })
    }

    fn mac(&self, ifname: &str) -> Result<[u8; 6], LinkError> {
        self.macs.get(ifname).copied().ok_or_else(|| LinkError::Mac {
            ifname: ifname.to_owned(),
            source: io::Error::from_raw_os_error(libc::ENODEV),
        })
    }
}

/// Runs `f` on a thread of its own inside a new, empty network namespace, for tests that
/// need real interfaces without touching the machine's. `None` when namespaces cannot be
/// made here (no `CAP_SYS_ADMIN`).
#[cfg(test)]
pub(crate) fn in_private_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    std::thread::spawn(move || {
        // SAFETY: unshare(2) takes no pointers. CLONE_NEWNET moves only this thread,
        // which is new and ends with the test, into a namespace of its own.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        (rc == 0).then(f)
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn add_if(root: &Path, name: &str, hwtype: &str, device: bool) {
        let dir = root.join(name);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("type"), format!("{hwtype}\n")).unwrap();
        if device {
            symlink("../../devices/pci0000:00/0000:00:03.0", dir.join("device")).unwrap();
        }
    }

    #[test]
    fn first_ethernet_picks_first_physical_nic_by_name() {
        let root = tempfile::tempdir().unwrap();
        add_if(root.path(), "lo", "772", false);
        add_if(root.path(), "br0", "1", false);
        add_if(root.path(), "veth9", "1", false);
        add_if(root.path(), "eth1", "1", true);
        add_if(root.path(), "enp0s3", "1", true);
        add_if(root.path(), "can0", "280", true);
        assert_eq!(first_ethernet(root.path()).as_deref(), Some("enp0s3"));
    }

    #[test]
    fn first_ethernet_skips_wireless_and_finds_none_without_nics() {
        let root = tempfile::tempdir().unwrap();
        add_if(root.path(), "lo", "772", false);
        add_if(root.path(), "br0", "1", false);
        assert_eq!(first_ethernet(root.path()), None);
        add_if(root.path(), "wlan0", "1", true);
        fs::create_dir(root.path().join("wlan0/phy80211")).unwrap();
        assert_eq!(first_ethernet(root.path()), None);
        add_if(root.path(), "wwan0", "1", true);
        assert_eq!(first_ethernet(root.path()).as_deref(), Some("wwan0"));
        assert_eq!(first_ethernet(&root.path().join("missing")), None);
    }

    #[test]
    fn netmask_from_prefix() {
        assert_eq!(netmask(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(netmask(8), Ipv4Addr::new(255, 0, 0, 0));
        assert_eq!(netmask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(netmask(31), Ipv4Addr::new(255, 255, 255, 254));
        assert_eq!(netmask(32), Ipv4Addr::BROADCAST);
    }

    #[test]
    fn invalid_names_are_rejected_before_the_kernel() {
        for name in ["", "a/b", "eth0:1", "this-name-is-too-long", "a b", "a\0b"] {
            let err = LinuxLinks.mac(name).unwrap_err();
            assert!(matches!(err, LinkError::InvalidName { .. }), "{name:?}: {err}");
        }
        assert!(matches!(
            LinuxLinks.add_ipv4("eth0", Ipv4Addr::LOCALHOST, 33),
            Err(LinkError::InvalidPrefix { .. })
        ));
    }

    #[test]
    fn mac_of_loopback_is_not_ethernet_and_missing_interface_fails() {
        let err = LinuxLinks.mac("lo").unwrap_err();
        assert!(matches!(err, LinkError::NotEthernet { hwtype: 772, .. }), "{err}");
        let err = LinuxLinks.mac("nosuchif0").unwrap_err();
        assert_eq!(err.to_string(), "read hardware address of nosuchif0");
        let LinkError::Mac { source, .. } = err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(source.raw_os_error(), Some(libc::ENODEV));
    }

    #[test]
    fn fake_records_calls_and_injects_failures() {
        let mut links = FakeLinks::with_mac("eth0", [2, 0, 0, 0, 0, 1]);
        links.fail_on = Some("route".to_owned());
        links.set_up("eth0").unwrap();
        links.add_ipv4("eth0", Ipv4Addr::new(10, 0, 2, 15), 24).unwrap();
        let err = links.add_default_route("eth0", Ipv4Addr::new(10, 0, 2, 2)).unwrap_err();
        assert_eq!(err.to_string(), "add default route via 10.0.2.2 on eth0");
        links.flush_ipv4("eth0").unwrap();
        assert_eq!(
            links.calls,
            [
                "up eth0",
                "addr add eth0 10.0.2.15/24",
                "route add default via 10.0.2.2 dev eth0",
                "addr flush eth0",
            ]
        );
        assert_eq!(links.mac("eth0").unwrap(), [2, 0, 0, 0, 0, 1]);
        assert!(links.mac("eth1").is_err());
    }

    fn route_table() -> String {
        fs::read_to_string("/proc/thread-self/net/route").unwrap()
    }

    /// Runs only where network namespaces can be made (root in CI); prints why otherwise.
    #[test]
    fn linux_links_configure_loopback_in_a_private_namespace() {
        let outcome = in_private_netns(|| {
            let mut links = LinuxLinks;
            links.set_up("lo").unwrap();
            links.set_up("lo").unwrap();
            links.add_ipv4("lo", Ipv4Addr::new(10, 9, 8, 7), 24).unwrap();
            links.add_ipv4("lo", Ipv4Addr::new(10, 9, 8, 7), 24).unwrap();
            let mut req = ifreq("lo").unwrap();
            let sock = control_socket().unwrap();
            ioctl(&sock, libc::SIOCGIFNETMASK, &mut req).unwrap();
            // SAFETY: SIOCGIFNETMASK succeeded and wrote a sockaddr_in into the union.
            let mask = unsafe { req.ifr_ifru.ifru_netmask };
            let mask = mask.sa_data.map(|c| c.to_ne_bytes()[0]);
            assert_eq!(mask[2..6], [255, 255, 255, 0]);

            links.add_default_route("lo", Ipv4Addr::new(10, 9, 8, 1)).unwrap();
            links.add_default_route("lo", Ipv4Addr::new(10, 9, 8, 1)).unwrap();
            // A gateway outside the prefix gets a host route first.
            links.flush_ipv4("lo").unwrap();
            links.add_ipv4("lo", Ipv4Addr::new(10, 1, 1, 5), 32).unwrap();
            let before = route_table();
            links.add_default_route("lo", Ipv4Addr::new(10, 1, 2, 1)).unwrap();
            let after = route_table();

            links.flush_ipv4("lo").unwrap();
            let err = ioctl(&sock, libc::SIOCGIFADDR, &mut ifreq("lo").unwrap()).unwrap_err();
            (before, after, err.raw_os_error())
        });
        let Some((before, after, flushed)) = outcome else {
            eprintln!("skipped: cannot create a network namespace here");
            return;
        };
        // Gateway 10.1.2.1 is 0102010A in /proc's little-endian hex.
        assert!(!before.contains("0102010A"), "{before}");
        assert!(after.lines().any(|l| l.starts_with("lo\t00000000\t0102010A")), "{after}");
        assert!(after.lines().any(|l| l.starts_with("lo\t0102010A\t00000000")), "{after}");
        assert_eq!(flushed, Some(libc::EADDRNOTAVAIL));
    }
}
