//! Writing to BOOT. It stays mounted read-only (a FAT file system written
//! at the moment of a power cut can lose more than the file being
//! written); [`writable`] opens it for one change and closes it again.

use std::path::Path;

use crate::sys::{Kernel, MountFlags};

pub const MOUNTPOINT: &str = "/boot";

/// Where the admin kubeconfig goes when the configuration asks for it.
pub const ADMIN_KUBECONFIG: &str = "lichen/admin.kubeconfig";

fn flags(readonly: bool) -> MountFlags {
    let base = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    if readonly { base | MountFlags::RDONLY } else { base }
}

/// Runs `f` with `boot` writable, then flushes and makes it read-only again
/// (also when `f` failed).
pub fn writable<T>(
    k: &mut dyn Kernel,
    boot: &Path,
    f: impl FnOnce() -> std::io::Result<T>,
) -> std::io::Result<T> {
    k.remount(boot, flags(false))?;
    let r = f();
    k.sync();
    if let Err(e) = k.remount(boot, flags(true)) {
        crate::warn!("{} stays writable: {e}", boot.display());
    }
    r
}

/// The admin kubeconfig with `server` in place of the local address it
/// was written for.
pub fn kubeconfig_for(text: &str, server: &str) -> String {
    text.lines()
        .map(|l| match l.trim_start().strip_prefix("server:") {
            Some(_) => {
                let indent = &l[..l.len() - l.trim_start().len()];
                format!("{indent}server: {server}")
            }
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Copies `kubeconfig` to BOOT with the node's address as the server,
/// unless the same is there already. Returns whether it wrote.
pub fn write_admin_kubeconfig(
    k: &mut dyn Kernel,
    boot: &Path,
    kubeconfig: &Path,
    server: &str,
) -> std::io::Result<bool> {
    let text = kubeconfig_for(&std::fs::read_to_string(kubeconfig)?, server);
    let target = boot.join(ADMIN_KUBECONFIG);
    if std::fs::read_to_string(&target).ok().as_deref() == Some(text.as_str()) {
        return Ok(false);
    }
    writable(k, boot, || {
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::secrets::write_atomic(&target, text.as_bytes(), 0o600).map_err(std::io::Error::other)
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Fake;

    const KC: &str = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: AAAA\n    server: https://127.0.0.1:6443\n  name: lichen\n";

    #[test]
    fn server_is_replaced_and_nothing_else() {
        let out = kubeconfig_for(KC, "https://10.0.2.15:6443");
        assert!(out.contains("    server: https://10.0.2.15:6443\n"), "{out}");
        assert_eq!(out.replace("10.0.2.15", "127.0.0.1"), KC);
    }

    #[test]
    fn written_once_with_boot_writable_only_meanwhile() {
        let d = tempfile::tempdir().unwrap();
        let kc = d.path().join("admin.kubeconfig");
        std::fs::write(&kc, KC).unwrap();
        let boot = d.path().join("boot");
        let mut k = Fake::new();
        assert!(write_admin_kubeconfig(&mut k, &boot, &kc, "https://10.0.2.15:6443").unwrap());
        let b = boot.display();
        assert_eq!(k.calls, [format!("remount-rw {b}"), "sync".into(), format!("remount-ro {b}")]);
        let written = std::fs::read_to_string(boot.join(ADMIN_KUBECONFIG)).unwrap();
        assert!(written.contains("https://10.0.2.15:6443"));
        let mut k = Fake::new();
        assert!(!write_admin_kubeconfig(&mut k, &boot, &kc, "https://10.0.2.15:6443").unwrap());
        assert!(k.calls.is_empty(), "unchanged: BOOT not touched");
    }
}
