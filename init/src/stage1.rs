//! Stage 1, `/init` in the initramfs: load the storage modules, find the
//! partitions, mount the slot's root read-only and DATA (growing it on first
//! boot), build `/etc` on a tmpfs, and switch to the root file system.

use std::convert::Infallible;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use lichen_formats::bootenv::Slot;

use crate::cmdline::Cmdline;
use crate::sys::{Kernel, MountFlags};
use crate::{disks, grow, modules};

pub const SYSROOT: &str = "/sysroot";
const DEVICE_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum Stage1Error {
    #[error("no disk holds partitions {labels:?} after {secs}s; disks seen: {seen}")]
    NoDisk { labels: Vec<String>, secs: u64, seen: String },
    #[error("root partition {label} ({dev}) is missing or corrupt: cannot mount it as squashfs")]
    Root { label: String, dev: String, source: std::io::Error },
    #[error("DATA partition ({dev}) cannot be mounted as ext4")]
    Data { dev: String, source: std::io::Error },
    #[error("building /etc")]
    Etc { source: std::io::Error },
    #[error("switching to the root file system: {step}")]
    SwitchRoot { step: &'static str, source: std::io::Error },
}

/// Mounts the kernel file systems stage 1 itself needs.
pub fn early_mounts(k: &mut dyn Kernel) {
    let none = MountFlags::empty();
    let nosuid = MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV;
    for (src, target, fs, flags, data) in [
        ("devtmpfs", "/dev", "devtmpfs", MountFlags::NOSUID, "mode=0755"),
        ("proc", "/proc", "proc", nosuid, ""),
        ("sysfs", "/sys", "sysfs", nosuid, ""),
    ] {
        let _ = std::fs::create_dir_all(target);
        if let Err(e) = k.mount(src, Path::new(target), fs, flags | none, data)
            && e.raw_os_error() != Some(libc::EBUSY)
        {
            crate::warn!("mounting {target}: {e}");
        }
    }
}

pub fn run(k: &mut dyn Kernel) -> Result<Infallible, Stage1Error> {
    let cmd = Cmdline::read();
    for w in &cmd.warnings {
        crate::warn!("kernel command line: {w}");
    }
    let slot = cmd.slot.unwrap_or_else(|| {
        crate::warn!("no lichen.slot= on the kernel command line; booting slot a");
        Slot::A
    });
    if cmd.rescue {
        crate::rescue::rescue("lichen.rescue was given on the kernel command line");
    }

    phase("modules", || modules::load_listed(k, Path::new("/etc/lichen/modules.load")));

    let root_label = slot.root_label();
    let labels = [root_label, "DATA"];
    let disk = phase("disks", || wait_for_disk(k, &labels))?;
    let root = disk.find(root_label).map(|p| p.dev.clone()).unwrap_or_default();
    let data = disk.find("DATA").map(|p| p.dev.clone()).unwrap_or_default();
    let boot = disk.find("BOOT").map(|p| p.dev.clone());
    crate::info!(
        "slot {slot}: root {} and data {} on {}",
        root.display(),
        data.display(),
        disk.dev.display()
    );

    phase("root", || {
        let _ = std::fs::create_dir_all(SYSROOT);
        k.mount(&root.display().to_string(), Path::new(SYSROOT), "squashfs", MountFlags::RDONLY, "").map_err(
            |source| Stage1Error::Root { label: root_label.into(), dev: root.display().to_string(), source },
        )
    })?;

    phase("data", || {
        match grow::grow_partition(k, &disk, "DATA") {
            Ok(Some(g)) => crate::info!(
                "DATA partition grown from {} MiB to {} MiB",
                g.old_bytes >> 20,
                g.new_bytes >> 20
            ),
            Ok(None) => {}
            Err(e) => crate::warn!("DATA partition not grown: {}", crate::log::chain(&e)),
        }
        let var = Path::new(SYSROOT).join("var");
        let dev = data.display().to_string();
        k.mount(&dev, &var, "ext4", MountFlags::NOATIME | MountFlags::NODEV, "")
            .map_err(|source| Stage1Error::Data { dev: dev.clone(), source })?;
        match grow::grow_ext4(k, &data, &var) {
            Ok(Some(blocks)) => crate::info!("DATA file system grown to {blocks} blocks"),
            Ok(None) => {}
            Err(e) => crate::warn!("DATA file system not grown: {}", crate::log::chain(&e)),
        }
        Ok(())
    })?;

    // BOOT, read-only: the user's configuration and fleet secrets. Stage 2
    // remounts it writable only for the moment it writes there. Not being
    // able to read it costs those, not the boot.
    phase("boot", || match &boot {
        Some(dev) => {
            let target = Path::new(SYSROOT).join("boot");
            let flags = MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
            let dev = dev.display().to_string();
            if let Err(e) = k.mount(&dev, &target, "vfat", flags, "umask=0077,shortname=mixed") {
                crate::warn!("BOOT ({dev}) not mounted: {e}; no configuration or secrets from it");
            }
        }
        None => {
            crate::warn!("no BOOT partition on {}; no configuration or secrets from it", disk.dev.display())
        }
    });

    phase("etc", || build_etc(k).map_err(|source| Stage1Error::Etc { source }))?;
    phase("switch-root", || switch_root(k))
}

/// Runs one named boot phase, logging how long it took.
pub fn phase<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    crate::info!("phase {name}");
    let r = f();
    crate::info!("phase {name} done in {} ms", t.elapsed().as_millis());
    r
}

fn wait_for_disk(k: &mut dyn Kernel, labels: &[&str]) -> Result<disks::Disk, Stage1Error> {
    let start = Instant::now();
    loop {
        let found = disks::scan(k, Path::new("/sys/block"), Path::new("/dev"));
        if let Some(d) = disks::find_disk(&found, labels) {
            return Ok(d.clone());
        }
        if start.elapsed() > DEVICE_WAIT {
            let seen = found
                .iter()
                .map(|d| {
                    let l: Vec<&str> = d.partitions.iter().map(|p| p.label.as_str()).collect();
                    format!("{} [{}]", d.dev.display(), l.join(","))
                })
                .collect::<Vec<_>>()
                .join(", ");
            let all: Vec<String> = disks::candidates(Path::new("/sys/block"));
            return Err(Stage1Error::NoDisk {
                labels: labels.iter().map(|s| s.to_string()).collect(),
                secs: DEVICE_WAIT.as_secs(),
                seen: if seen.is_empty() {
                    format!("none with a GPT (block devices: {all:?})")
                } else {
                    seen
                },
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `/etc` is a tmpfs holding a copy of the image's `/etc` plus the
/// machine's identity kept on DATA: no drift survives a reboot.
fn build_etc(k: &mut dyn Kernel) -> std::io::Result<()> {
    let sysroot = Path::new(SYSROOT);
    let staging = Path::new("/newetc");
    std::fs::create_dir_all(staging)?;
    k.mount("tmpfs", staging, "tmpfs", MountFlags::NOSUID | MountFlags::NODEV, "mode=0755")?;
    copy_tree(&sysroot.join("etc"), staging)?;
    let state = sysroot.join("var/lib/lichen");
    std::fs::create_dir_all(&state)?;
    let id = machine_id(&state)?;
    std::fs::write(staging.join("machine-id"), format!("{id}\n"))?;
    let hostname = std::fs::read_to_string(state.join("hostname"))
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("lichen-{}", &id[..6]));
    std::fs::write(staging.join("hostname"), format!("{hostname}\n"))?;
    k.move_mount(staging, &sysroot.join("etc"))
}

/// The machine id kept on DATA, created on first boot.
pub fn machine_id(state: &Path) -> std::io::Result<String> {
    let path = state.join("machine-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim().to_string();
        if id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(id);
        }
    }
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")?;
    let id: String = uuid.trim().chars().filter(|c| *c != '-').collect();
    let tmp = state.join("machine-id.tmp");
    std::fs::write(&tmp, format!("{id}\n"))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}

/// Copies a directory tree with modes and symlinks.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let meta = std::fs::symlink_metadata(&src)?;
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if meta.is_dir() {
            std::fs::create_dir_all(&dst)?;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode()))?;
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

fn switch_root(k: &mut dyn Kernel) -> Result<Infallible, Stage1Error> {
    let sr = |step| move |source| Stage1Error::SwitchRoot { step, source };
    let sysroot = Path::new(SYSROOT);
    for m in ["dev", "proc", "sys"] {
        k.move_mount(&Path::new("/").join(m), &sysroot.join(m)).map_err(sr("moving /dev, /proc, /sys"))?;
    }
    // Free the initramfs' memory, as busybox switch_root does.
    let root_dev = std::fs::metadata("/").map_err(sr("stat /"))?.dev();
    delete_tree(Path::new("/"), root_dev, sysroot);
    rustix::process::chdir(sysroot).map_err(|e| sr("chdir")(e.into()))?;
    k.move_mount(Path::new("."), Path::new("/")).map_err(sr("moving the root mount"))?;
    rustix::process::chroot(".").map_err(|e| sr("chroot")(e.into()))?;
    rustix::process::chdir("/").map_err(|e| sr("chdir /")(e.into()))?;
    crate::info!("stage 1 done at {:.3}s; starting /sbin/init", crate::log::uptime());
    let err = std::process::Command::new("/sbin/init").arg0("/sbin/init").exec();
    Err(sr("exec /sbin/init")(err))
}

/// Removes everything below `dir` on device `dev`, except `keep`.
fn delete_tree(dir: &Path, dev: u64, keep: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(Result::ok) {
        let p = e.path();
        if p == keep {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.dev() != dev {
            continue;
        }
        if meta.is_dir() {
            delete_tree(&p, dev, keep);
            let _ = std::fs::remove_dir(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_id_is_created_once_and_kept() {
        if !Path::new("/proc/sys/kernel/random/uuid").exists() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let a = machine_id(d.path()).unwrap();
        assert_eq!(a.len(), 32);
        assert_eq!(machine_id(d.path()).unwrap(), a);
        std::fs::write(d.path().join("machine-id"), "garbage\n").unwrap();
        assert_ne!(machine_id(d.path()).unwrap(), "garbage");
    }

    #[test]
    fn copy_tree_keeps_links_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(a.path().join("ssl/certs")).unwrap();
        std::fs::write(a.path().join("ssl/certs/x.pem"), "pem").unwrap();
        std::fs::set_permissions(a.path().join("ssl"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("ssl/certs/x.pem", a.path().join("link")).unwrap();
        copy_tree(a.path(), b.path()).unwrap();
        assert_eq!(std::fs::read_to_string(b.path().join("link")).unwrap(), "pem");
        let mode = std::fs::metadata(b.path().join("ssl")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
