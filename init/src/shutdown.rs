//! The end of every boot: stop the services, end every other process, sync,
//! unmount (or remount read-only what will not unmount), then power off or
//! reboot.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::process::WaitOptions;

use crate::supervisor::Supervisor;
use crate::sys::signals::{self, name};
use crate::sys::{Halt, Kernel};

/// How long a service gets between SIGTERM and SIGKILL.
pub const SERVICE_GRACE: Duration = Duration::from_secs(10);
/// How long the remaining processes get.
pub const OTHERS_GRACE: Duration = Duration::from_secs(3);

/// Mount points to take down, deepest first; the kernel file systems and `/`
/// stay (the root is a read-only squashfs).
pub fn unmount_order(mountinfo: &str) -> Vec<PathBuf> {
    let keep = |p: &str| {
        p == "/" || ["/proc", "/sys", "/dev"].iter().any(|k| p == *k || p.starts_with(&format!("{k}/")))
    };
    let mut out: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|p| !keep(p))
        .map(PathBuf::from)
        .collect();
    out.reverse();
    out
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1..i + 4).is_some_and(|d| d.iter().all(u8::is_ascii_digit)) {
            let d = &b[i + 1..i + 4];
            out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// Reaps any exited children (of any process group: services run in their
/// own); returns (pid, description) of each.
pub fn reap() -> Vec<(i32, String)> {
    let mut out = Vec::new();
    while let Ok(Some((pid, st))) = rustix::process::wait(WaitOptions::NOHANG) {
        let how = if let Some(code) = st.exit_status() {
            format!("exit {code}")
        } else if let Some(sig) = st.terminating_signal() {
            format!("killed by {}", name(sig))
        } else {
            "stopped".into()
        };
        out.push((pid.as_raw_nonzero().get(), how));
    }
    out
}

/// Stops supervised services in reverse start order, each given
/// [`SERVICE_GRACE`] before SIGKILL.
pub fn stop_services(sup: &mut Supervisor) {
    for (svc, pid, sig) in sup.begin_stop() {
        crate::info!("stopping {svc} (pid {pid})");
        let _ = signals::send(-pid, sig);
        let _ = signals::send(pid, sig);
        let deadline = Instant::now() + SERVICE_GRACE;
        loop {
            for (p, how) in reap() {
                sup.exited(p, &how, Instant::now());
            }
            if !sup.is_running(pid) {
                break;
            }
            if Instant::now() > deadline {
                crate::warn!("{svc} did not stop within {}s; killing it", SERVICE_GRACE.as_secs());
                let _ = signals::send(-pid, libc::SIGKILL);
                let _ = signals::send(pid, libc::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Ends every remaining process, unmounts, and halts. Never returns.
pub fn finish(k: &mut dyn Kernel, how: Halt) -> ! {
    let _ = signals::send(-1, libc::SIGTERM);
    let deadline = Instant::now() + OTHERS_GRACE;
    while Instant::now() < deadline {
        reap();
        // ECHILD: nobody left.
        if matches!(rustix::process::wait(WaitOptions::NOHANG), Err(e) if e == rustix::io::Errno::CHILD) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = signals::send(-1, libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(100));
    reap();
    k.sync();
    // PID 1's own log file is on /var: close it or /var stays busy.
    crate::log::close_file();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    unmount_all(k, &info);
    k.sync();
    crate::info!("{}", if how == Halt::PowerOff { "powering off" } else { "rebooting" });
    if let Err(e) = k.halt(how) {
        crate::error!("reboot(2) failed: {e}");
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Unmounts everything [`unmount_order`] lists; what is busy is remounted
/// read-only. Returns the mounts left read-only.
pub fn unmount_all(k: &mut dyn Kernel, mountinfo: &str) -> Vec<PathBuf> {
    let mut ro = Vec::new();
    for target in unmount_order(mountinfo) {
        if k.unmount(&target).is_ok() {
            continue;
        }
        match k.remount_ro(&target) {
            Ok(()) => {
                crate::warn!("{} busy; remounted read-only", target.display());
                ro.push(target);
            }
            // Gone already (a parent's unmount took it along).
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => crate::warn!("{} could not be unmounted or remounted read-only: {e}", target.display()),
        }
    }
    ro
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Fake;

    const INFO: &str = "\
22 1 254:2 / / ro,relatime - squashfs /dev/vda2 ro
23 22 0:5 / /dev rw - devtmpfs devtmpfs rw
24 22 0:21 / /proc rw - proc proc rw
25 22 0:20 / /sys rw - sysfs sysfs rw
26 22 254:4 / /var rw,noatime - ext4 /dev/vda4 rw
27 22 0:25 / /etc rw - tmpfs tmpfs rw
28 22 0:26 / /run rw - tmpfs tmpfs rw
29 25 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
30 26 0:40 / /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/x\\040y rw - overlay overlay rw
";

    #[test]
    fn deepest_first_and_kernel_filesystems_stay() {
        let order = unmount_order(INFO);
        let s: Vec<String> = order.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            s,
            ["/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/x y", "/run", "/etc", "/var"]
        );
    }

    #[test]
    fn busy_mounts_are_remounted_read_only() {
        let mut k = Fake::new();
        k.busy.insert("/var".into());
        let ro = unmount_all(&mut k, INFO);
        assert_eq!(ro, vec![PathBuf::from("/var")]);
        assert!(k.calls.contains(&"remount-ro /var".to_string()));
    }
}
