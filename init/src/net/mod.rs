//! Node networking at boot: loopback up, then DHCPv4 on the first Ethernet
//! link in a background thread that keeps the lease renewed and
//! `/etc/resolv.conf` current.

pub mod dhcp;
pub mod link;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use link::{Links, LinuxLinks};

use crate::status::Status;

/// How long one attempt to get a lease may take before backing off.
const ACQUIRE: Duration = Duration::from_secs(60);

/// Brings up `lo` and starts DHCP on the first Ethernet interface.
pub fn start(status: Arc<Mutex<Status>>) {
    let mut links = LinuxLinks;
    if let Err(e) = links.set_up("lo") {
        crate::warn!("loopback: {}", crate::log::chain(&e));
    }
    if let Err(e) = links.add_ipv4("lo", std::net::Ipv4Addr::LOCALHOST, 8) {
        crate::warn!("loopback address: {}", crate::log::chain(&e));
    }
    let spawned = std::thread::Builder::new().name("dhcp".into()).spawn(move || {
        // NICs appear once their modules are loaded; give them a moment.
        let start = Instant::now();
        let ifname = loop {
            if let Some(i) = link::first_ethernet(Path::new("/sys/class/net")) {
                break i;
            }
            if start.elapsed() > Duration::from_secs(30) {
                crate::warn!("no Ethernet interface found; network stays down");
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        run_dhcp(&ifname, &status);
    });
    if let Err(e) = spawned {
        crate::error!("cannot start the DHCP thread: {e}");
    }
}

fn set_network(status: &Arc<Mutex<Status>>, text: String) {
    if let Ok(mut s) = status.lock() {
        s.network = text;
    }
}

fn run_dhcp(ifname: &str, status: &Arc<Mutex<Status>>) {
    let mut links = LinuxLinks;
    if let Err(e) = links.set_up(ifname) {
        crate::warn!("{ifname}: {}", crate::log::chain(&e));
        return;
    }
    let mac = match links.mac(ifname) {
        Ok(m) => m,
        Err(e) => {
            crate::warn!("{ifname}: {}", crate::log::chain(&e));
            return;
        }
    };
    let hostname = std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string());
    let mut client = dhcp::Client::new(ifname, mac, hostname);
    let mut sock = match dhcp::UdpDhcpSocket::open(ifname) {
        Ok(s) => s,
        Err(e) => {
            crate::warn!("{}", crate::log::chain(&e));
            return;
        }
    };
    let mut wait = Duration::from_secs(5);
    loop {
        let lease = match client.acquire(&mut sock, ACQUIRE) {
            Ok(l) => l,
            Err(e) => {
                crate::warn!("DHCP: {}; trying again in {}s", crate::log::chain(&e), wait.as_secs());
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(300));
                continue;
            }
        };
        wait = Duration::from_secs(5);
        let mut lease = lease;
        loop {
            apply(&mut links, ifname, &lease, status);
            let granted = Instant::now();
            std::thread::sleep(lease.renew_after);
            match client.renew(&mut sock, &lease) {
                Ok(l) => {
                    lease = l;
                    continue;
                }
                Err(e) => crate::warn!("DHCP renew: {}", crate::log::chain(&e)),
            }
            let left = lease.rebind_after.saturating_sub(granted.elapsed());
            std::thread::sleep(left);
            match client.rebind(&mut sock, &lease) {
                Ok(l) => lease = l,
                Err(e) => {
                    crate::warn!("DHCP lease on {ifname} lost: {}", crate::log::chain(&e));
                    let _ = links.flush_ipv4(ifname);
                    set_network(status, String::new());
                    break;
                }
            }
        }
    }
}

fn apply(links: &mut LinuxLinks, ifname: &str, lease: &dhcp::Lease, status: &Arc<Mutex<Status>>) {
    if let Err(e) = dhcp::apply_lease(links, ifname, lease) {
        crate::warn!("{}", crate::log::chain(&e));
        return;
    }
    if let Err(e) = std::fs::write("/etc/resolv.conf", dhcp::resolv_conf(ifname, lease)) {
        crate::warn!("/etc/resolv.conf: {e}");
    }
    crate::clock::sntp::set_servers(&lease.ntp);
    let text = format!("{ifname} {}/{}", lease.address, lease.prefix_len);
    crate::info!(
        "network: {text} via {} (lease {}s)",
        lease.router.map(|r| r.to_string()).unwrap_or_else(|| "no router".into()),
        lease.lease_time.as_secs()
    );
    set_network(status, text);
}
