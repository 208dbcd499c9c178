//! The air-gap images baked into the rootfs under `/usr/lib/lichen/images/`:
//! a pod sandbox (`pause`) and a `busybox` image, OCI image-layout tarballs
//! the node imports into containerd, so that a device without a registry can
//! run pods. Both hold the board's own busybox (Debian busybox-static, the
//! target architecture), written by `lichen-oci` deterministically.

use std::path::{Path, PathBuf};
use std::process::Command;

use lichen_oci::{Platform, busybox_config, busybox_layer, image_tar, pause_config};
use serde::Serialize;

use crate::rootfs;

/// Where the tarballs go, relative to /.
pub const DIR: &str = "usr/lib/lichen/images";
/// The sandbox image: it only sleeps.
pub const PAUSE_REFERENCE: &str = "docker.io/lichen/pause:3.9";
/// busybox with every applet in /bin, `Cmd: ["sh"]`.
pub const BUSYBOX_REFERENCE: &str = "docker.io/lichen/busybox:1";
/// The host's busybox, asked for the applet list.
pub const HOST_BUSYBOX: &str = "/bin/busybox";

#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    #[error(
        "the air-gap images are built from /bin/busybox of the rootfs, which has none; \
         add [packages.busybox-static] to the board"
    )]
    NoBusybox,
    #[error("cannot list the applets of the host's {path} (install busybox-static: make deps)")]
    HostBusybox { path: PathBuf, source: std::io::Error },
    #[error("{path} --list failed: {stderr}")]
    HostList { path: PathBuf, stderr: String },
    #[error("building image {reference}")]
    Oci { reference: &'static str, source: lichen_oci::OciError },
    #[error(transparent)]
    Rootfs(#[from] rootfs::RootfsError),
}

/// One generated file of the rootfs, for the SBOM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Generated {
    /// Absolute path on the device.
    pub path: String,
    /// What it is, e.g. the image reference.
    pub what: String,
    pub sha256: String,
}

/// The applets of the host's busybox (`busybox --list`). A cross build cannot
/// run the target's busybox; the host's busybox-static comes from the same
/// Debian release (`make deps` installs it), so it has the same applets.
pub fn host_applets(busybox: &Path) -> Result<Vec<String>, ImagesError> {
    let out = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|source| ImagesError::HostBusybox { path: busybox.to_path_buf(), source })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(ImagesError::HostList { path: busybox.to_path_buf(), stderr });
    }
    Ok(lichen_oci::parse_applets(&String::from_utf8_lossy(&out.stdout)))
}

/// Writes `pause.tar` and `busybox.tar` into `root` from its `bin/busybox`,
/// for the Debian architecture `arch`, with links for `applets`.
pub fn bake(root: &Path, arch: &str, applets: &[String]) -> Result<Vec<Generated>, ImagesError> {
    let busybox_path = root.join("bin/busybox");
    if !busybox_path.is_file() {
        return Err(ImagesError::NoBusybox);
    }
    let busybox = std::fs::read(&busybox_path).map_err(|s| rootfs::io(&busybox_path, s))?;
    let oci = |reference| move |source| ImagesError::Oci { reference, source };
    let platform = Platform::from_debian(arch).map_err(oci(PAUSE_REFERENCE))?;
    let layer = busybox_layer(&busybox, applets, lichen_oci::INDEX_HTML).map_err(oci(BUSYBOX_REFERENCE))?;
    let mut out = Vec::new();
    for (file, reference, config) in
        [("pause.tar", PAUSE_REFERENCE, pause_config()), ("busybox.tar", BUSYBOX_REFERENCE, busybox_config())]
    {
        let tar = image_tar(reference, platform, config, &layer).map_err(oci(reference))?;
        let rel = format!("{DIR}/{file}");
        rootfs::write_file(root, &rel, &tar, 0o644)?;
        out.push(Generated {
            path: format!("/{rel}"),
            what: format!("OCI image {reference}"),
            sha256: lichen_oci::sha256_hex(&tar),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with_busybox() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        rootfs::write_file(root.path(), "bin/busybox", b"\x7fELF target busybox", 0o755).unwrap();
        root
    }

    fn applets() -> Vec<String> {
        ["sh", "sleep", "ls"].map(String::from).to_vec()
    }

    #[test]
    fn images_are_reproducible_and_named_for_ctr() {
        let (a, b) = (root_with_busybox(), root_with_busybox());
        let ga = bake(a.path(), "arm64", &applets()).unwrap();
        let gb = bake(b.path(), "arm64", &applets()).unwrap();
        assert_eq!(ga, gb);
        for (g, reference) in ga.iter().zip([PAUSE_REFERENCE, BUSYBOX_REFERENCE]) {
            let rel = g.path.trim_start_matches('/');
            let (ta, tb) =
                (std::fs::read(a.path().join(rel)).unwrap(), std::fs::read(b.path().join(rel)).unwrap());
            assert!(ta == tb, "{rel} differs between two builds");
            assert_eq!(g.sha256, lichen_oci::sha256_hex(&ta));
            // index.json is stored uncompressed in the layout tarball.
            let text = String::from_utf8_lossy(&ta);
            let want = format!("\"io.containerd.image.name\":\"{reference}\"");
            assert!(text.contains(&want), "{rel} lacks {want}");
            assert!(text.contains("\"architecture\":\"arm64\""), "{rel}");
        }
        assert_eq!(ga[0].path, "/usr/lib/lichen/images/pause.tar");
        assert_eq!(ga[1].path, "/usr/lib/lichen/images/busybox.tar");
    }

    #[test]
    fn a_rootfs_without_busybox_says_which_package() {
        let root = tempfile::tempdir().unwrap();
        let e = bake(root.path(), "amd64", &applets()).unwrap_err().to_string();
        assert!(e.contains("busybox-static"), "{e}");
    }

    #[test]
    fn host_applets_come_from_busybox_list() {
        let path = Path::new(HOST_BUSYBOX);
        if !path.exists() {
            return;
        }
        let applets = host_applets(path).unwrap();
        assert!(applets.iter().any(|a| a == "sh") && applets.iter().any(|a| a == "sleep"));
        assert!(!applets.iter().any(|a| a == "busybox"));
    }
}
