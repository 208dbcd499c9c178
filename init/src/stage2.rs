//! Stage 2, `/sbin/init` on the root file system: mounts, clock, modules,
//! sysctls, hostname, network, cluster secrets, then supervise containerd
//! and `lichen` (and the console shell) until a signal says to power off or
//! reboot.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cmdline::Cmdline;
use crate::services::console::ConsoleShell;
use crate::services::containerd::Containerd;
use crate::services::lichen::Lichen;
use crate::stage1::phase;
use crate::status::{self, Status};
use crate::supervisor::Supervisor;
use crate::sys::linux::Linux;
use crate::sys::signals;
use crate::sys::{Halt, Kernel, MountFlags};
use crate::{boot, clock, config, modules, net, powerbutton, secrets, shutdown, sysctl};

#[derive(Debug, thiserror::Error)]
#[error("mounting {target} ({fstype})")]
pub struct MountError {
    target: String,
    fstype: &'static str,
    source: std::io::Error,
}

pub fn main() -> ! {
    let mut k = Linux;
    crate::log::to_console("/dev/console");
    crate::rescue::install_panic_hook();
    if let Err(e) = signals::block() {
        crate::error!("cannot set up signal handling: {e}");
    }
    // Ctrl-Alt-Del becomes SIGINT to PID 1 instead of an instant reboot.
    let _ = rustix::system::reboot(rustix::system::RebootCommand::CadOff);
    let cmd = Cmdline::read();
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let st = Arc::new(Mutex::new(Status {
        version: status::os_release(&release, "VERSION_ID").unwrap_or_else(|| "unknown".into()),
        build_id: status::os_release(&release, "BUILD_ID").unwrap_or_default(),
        board: status::os_release(&release, "VARIANT_ID").unwrap_or_default(),
        kernel: rustix::system::uname().release().to_string_lossy().to_string(),
        slot: cmd.slot.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
        phase: "booting".into(),
        ..Default::default()
    }));
    {
        let s = lock(&st);
        crate::info!("Lichen {} stage 2 on slot {}", s.version, s.slot);
    }

    if let Err(e) = phase("mounts", || mounts(&mut k)) {
        crate::rescue::rescue(&crate::log::chain(&e));
    }
    crate::log::to_file("/var/log/lichen-init.log");
    phase("clock", || clock::restore_on_device(&mut k));
    let cfg = phase("config", config::load_on_device);
    phase("modules", || modules::load_listed(&mut k, Path::new("/usr/lib/lichen/modules.load")));
    phase("sysctl", || {
        for (key, e) in sysctl::apply(&mut k) {
            crate::warn!("sysctl {key}: {e}");
        }
    });
    phase("hostname", || {
        let name = match &cfg.hostname {
            Some(name) => {
                // Kept on DATA too: stage 1 builds /etc/hostname from it.
                for f in ["/etc/hostname", "/var/lib/lichen/hostname"] {
                    if let Err(e) = std::fs::write(f, format!("{name}\n")) {
                        crate::warn!("hostname: writing {f}: {e}");
                    }
                }
                name.clone()
            }
            None => std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| "lichen".into()),
        };
        if let Err(e) = k.sethostname(name.trim()) {
            crate::warn!("hostname {}: {e}", name.trim());
        }
    });
    phase("network", || net::start(st.clone()));
    clock::sntp::set_configured(&cfg.ntp_servers);
    clock::start_sntp();
    powerbutton::watch();
    phase("secrets", cluster_secrets);

    let mut sup = Supervisor::new(PathBuf::from("/var/log"));
    sup.add(Box::new(Containerd::default()));
    let lichen = Lichen { tls_sans: cfg.kubernetes.tls_san.clone(), ..Lichen::default() };
    if lichen.program.exists() {
        sup.add(Box::new(lichen));
    } else {
        crate::warn!("no /usr/bin/lichen in this image: containerd only");
    }
    if cmd.shell {
        let tty = PathBuf::from("/dev").join(cmd.console.clone().unwrap_or_else(|| "console".into()));
        sup.add(Box::new(ConsoleShell { tty }));
    }
    let mut on_ready = |s: &Status| {
        if cfg.kubernetes.admin_kubeconfig_to_boot {
            admin_kubeconfig_to_boot(&mut k, s);
        }
    };
    let how = run(&mut sup, &st, &mut on_ready);
    lock(&st).phase = "stopping".into();
    let _ = lock(&st).publish(Path::new(status::PATH));
    crate::info!("shutting down: stopping services");
    shutdown::stop_services(&mut sup);
    save_clock();
    shutdown::finish(&mut k, how)
}

/// Puts the fleet's secrets from BOOT on DATA, or makes the device's own
/// (see [`secrets`]). Failing here costs the cluster, not the boot: the
/// console says why and the device stays reachable.
fn cluster_secrets() {
    let paths = secrets::Paths::default();
    match secrets::import_fleet(&paths) {
        Ok(outcomes) if outcomes.is_empty() => crate::info!("secrets: none on BOOT (zero-touch)"),
        Ok(outcomes) => {
            for o in outcomes {
                match o {
                    secrets::Outcome::Imported(f) => crate::info!("secrets: {f} imported from BOOT"),
                    secrets::Outcome::Kept(_) => {}
                    secrets::Outcome::Conflict(f) => crate::warn!(
                        "secrets: BOOT's {f} differs from the one on DATA; keeping DATA's (remove it from DATA to take BOOT's)"
                    ),
                }
            }
        }
        Err(e) => crate::error!("secrets: {}", crate::log::chain(&e)),
    }
    match secrets::ensure(&paths) {
        Ok((ca_hash, report)) => {
            for line in report {
                crate::info!("secrets: {line}");
            }
            crate::info!("secrets: cluster CA sha256:{ca_hash}");
        }
        Err(e) => crate::error!("secrets: {}", crate::log::chain(&e)),
    }
}

fn save_clock() {
    if let Err(e) = clock::save(Path::new(clock::SAVED)) {
        crate::warn!("clock: cannot save the time to {}: {e}", clock::SAVED);
    }
}

fn lock(st: &Arc<Mutex<Status>>) -> std::sync::MutexGuard<'_, Status> {
    st.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The main loop; returns when a signal asks for shutdown.
/// The node's address for the kubeconfig copied to BOOT: the DHCP
/// address, as the status line shows it (`eth0 10.0.2.15/24`).
fn admin_kubeconfig_to_boot(k: &mut dyn crate::sys::Kernel, s: &Status) {
    let ip = s.network.split_whitespace().nth(1).and_then(|a| a.split('/').next()).unwrap_or("127.0.0.1");
    let kubeconfig = Path::new("/var/lib/lichen/server/pki/admin.kubeconfig");
    match boot::write_admin_kubeconfig(
        k,
        Path::new(boot::MOUNTPOINT),
        kubeconfig,
        &format!("https://{ip}:6443"),
    ) {
        Ok(true) => crate::info!("admin kubeconfig written to BOOT ({})", boot::ADMIN_KUBECONFIG),
        Ok(false) => {}
        Err(e) => crate::warn!("admin kubeconfig not written to BOOT: {e}"),
    }
}

fn run(sup: &mut Supervisor, st: &Arc<Mutex<Status>>, on_ready: &mut dyn FnMut(&Status)) -> Halt {
    let mut announced = false;
    let mut clock_saved = Instant::now();
    save_clock();
    loop {
        let now = Instant::now();
        if now.duration_since(clock_saved) >= clock::SAVE_EVERY {
            save_clock();
            clock_saved = now;
        }
        let wake = sup.tick(now);
        let mut became_ready = None;
        {
            let mut s = lock(st);
            s.services = sup.status();
            if !announced && sup.essentials_ready() {
                announced = true;
                s.ready_at = Some(crate::log::uptime());
                s.phase = "running".into();
                crate::info!("boot complete: essential services ready at {:.2}s", crate::log::uptime());
                crate::log::console_raw(format!("\n{}\n\n", s.line()).as_bytes());
                became_ready = Some(s.clone());
            }
            if let Err(e) = s.publish(Path::new(status::PATH)) {
                crate::warn!("cannot write {}: {e}", status::PATH);
            }
        }
        // Outside the lock: it may write to BOOT, and the DHCP thread
        // updates the status meanwhile.
        if let Some(s) = became_ready {
            on_ready(&s);
        }
        let sig = signals::wait(wake.min(Duration::from_secs(5)));
        for (pid, how) in shutdown::reap() {
            sup.exited(pid, &how, Instant::now());
        }
        match sig {
            Some(libc::SIGTERM) | Some(libc::SIGINT) => {
                crate::info!("{} received: reboot", signals::name(sig.unwrap_or(0)));
                return Halt::Reboot;
            }
            Some(libc::SIGUSR1) | Some(libc::SIGUSR2) | Some(libc::SIGPWR) => {
                crate::info!("{} received: power off", signals::name(sig.unwrap_or(0)));
                return Halt::PowerOff;
            }
            _ => {}
        }
    }
}

fn is_mountpoint(p: &Path) -> bool {
    let (Ok(a), Some(Ok(b))) = (std::fs::metadata(p), p.parent().map(std::fs::metadata)) else {
        return false;
    };
    a.dev() != b.dev()
}

fn mounts(k: &mut dyn Kernel) -> Result<(), MountError> {
    let nse = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    let table: &[(&str, &str, &'static str, MountFlags, &str)] = &[
        ("/proc", "proc", "proc", nse, ""),
        ("/sys", "sysfs", "sysfs", nse, ""),
        ("/dev", "devtmpfs", "devtmpfs", MountFlags::NOSUID, "mode=0755"),
        (
            "/dev/pts",
            "devpts",
            "devpts",
            MountFlags::NOSUID | MountFlags::NOEXEC,
            "gid=5,mode=620,ptmxmode=666",
        ),
        ("/dev/shm", "tmpfs", "tmpfs", MountFlags::NOSUID | MountFlags::NODEV, "mode=1777"),
        ("/run", "tmpfs", "tmpfs", MountFlags::NOSUID | MountFlags::NODEV, "mode=0755"),
        ("/tmp", "tmpfs", "tmpfs", MountFlags::NOSUID | MountFlags::NODEV, "mode=1777"),
        ("/sys/fs/cgroup", "cgroup2", "cgroup2", nse, "nsdelegate"),
    ];
    for (target, src, fstype, flags, data) in table {
        let p = Path::new(target);
        if *target != "/run" && *target != "/tmp" && is_mountpoint(p) {
            continue;
        }
        let _ = std::fs::create_dir_all(p);
        k.mount(src, p, fstype, *flags, data).map_err(|source| MountError {
            target: target.to_string(),
            fstype,
            source,
        })?;
    }
    for d in ["/run/lichen", "/var/log", "/var/lib/lichen", "/run/containerd"] {
        let _ = std::fs::create_dir_all(d);
    }
    let _ = std::fs::write("/etc/resolv.conf", "");
    // Hand the controllers Kubernetes uses to child cgroups.
    if let Err(e) = std::fs::write("/sys/fs/cgroup/cgroup.subtree_control", "+cpu +cpuset +memory +pids +io")
    {
        crate::warn!("enabling cgroup controllers: {e}");
    }
    Ok(())
}
