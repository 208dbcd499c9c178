//! The cluster's secrets, put in place before `lichen` starts.
//!
//! Two ways, as the architecture notes say:
//!
//! - **Fleet**: `lichen-image secrets init` made them on the workstation and
//!   the build put the device's share on BOOT under `lichen/secrets/`
//!   (`ca.crt ca.key sa.key sa.pub token`). They are copied to DATA; BOOT
//!   keeps its copy so that a device whose DATA is wiped comes back with
//!   the fleet's identity (the workstation's kubeconfig keeps working).
//! - **Zero-touch**: with nothing on BOOT, the CA, service-account key,
//!   admin certificate and kubeconfig and the join token are generated on
//!   DATA at first boot (lichen-pki).
//!
//! Either way a secret already on DATA is never replaced: a BOOT copy that
//! differs is reported and ignored, since replacing the CA would disown
//! every certificate and token the cluster issued.
//!
//! Who owns which file: BOOT's `lichen/secrets/*` is written by
//! lichen-image and only read here; DATA's `server/pki/{ca,sa}.*` and
//! `server/token` are written here, once; `server/pki/server.*`,
//! `admin.*` and `admin.kubeconfig` are (re)issued by `lichen server`.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where the secrets come from and go.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `/boot/lichen/secrets`.
    pub boot: PathBuf,
    /// `/var/lib/lichen/server`: `pki/` and `token` are under it.
    pub server: PathBuf,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths { boot: "/boot/lichen/secrets".into(), server: "/var/lib/lichen/server".into() }
    }
}

/// The fleet files: (name on BOOT, path under the server directory, secret).
pub const FLEET_FILES: [(&str, &str, bool); 5] = [
    ("ca.crt", "pki/ca.crt", false),
    ("ca.key", "pki/ca.key", true),
    ("sa.key", "pki/sa.key", true),
    ("sa.pub", "pki/sa.pub", false),
    ("token", "token", true),
];

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("fleet secrets on BOOT are incomplete: {present} is there but {missing} is not (in {dir})")]
    Incomplete { dir: String, present: &'static str, missing: &'static str },
    #[error("{action} {path}")]
    Io { action: &'static str, path: String, source: std::io::Error },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SecretsError {
    let path = path.display().to_string();
    move |source| SecretsError::Io { action, path, source }
}

/// What happened to each file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Copied from BOOT to DATA.
    Imported(&'static str),
    /// On DATA already, the same as BOOT's (or BOOT has none).
    Kept(&'static str),
    /// On DATA already, and BOOT's copy differs: DATA's is kept.
    Conflict(&'static str),
}

/// Copies the fleet secrets from BOOT to DATA where DATA has none. No
/// fleet secrets on BOOT is not an error: the result is empty.
pub fn import_fleet(paths: &Paths) -> Result<Vec<Outcome>, SecretsError> {
    let on_boot: Vec<bool> = FLEET_FILES.iter().map(|(name, _, _)| paths.boot.join(name).is_file()).collect();
    if !on_boot.iter().any(|b| *b) {
        return Ok(Vec::new());
    }
    // The CA and the service-account key come in pairs; a half set is a
    // broken BOOT partition, and importing half of it would mix two CAs.
    if let Some(i) = on_boot.iter().position(|b| !b) {
        let present = FLEET_FILES[on_boot.iter().position(|b| *b).unwrap_or(0)].0;
        return Err(SecretsError::Incomplete {
            dir: paths.boot.display().to_string(),
            present,
            missing: FLEET_FILES[i].0,
        });
    }
    let mut out = Vec::new();
    for (name, rel, secret) in FLEET_FILES {
        let from = paths.boot.join(name);
        let to = paths.server.join(rel);
        let new = std::fs::read(&from).map_err(io("reading", &from))?;
        match std::fs::read(&to) {
            Ok(old) if old == new => out.push(Outcome::Kept(name)),
            Ok(_) => out.push(Outcome::Conflict(name)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_atomic(&to, &new, if secret { 0o600 } else { 0o644 })?;
                out.push(Outcome::Imported(name));
            }
            Err(e) => return Err(io("reading", &to)(e)),
        }
    }
    Ok(out)
}

/// Writes `data` to `path` by way of a temporary file, flushed before the
/// rename, so that a power cut leaves either nothing or the whole file.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), SecretsError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let tmp = path.with_extension("lichen-tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io("creating", &tmp))?;
    f.write_all(data).and_then(|()| f.sync_all()).map_err(io("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("renaming to", path))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Paths) {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths { boot: d.path().join("boot/lichen/secrets"), server: d.path().join("var/server") };
        (d, paths)
    }

    fn fleet(paths: &Paths, tag: &str) {
        std::fs::create_dir_all(&paths.boot).unwrap();
        for (name, _, _) in FLEET_FILES {
            std::fs::write(paths.boot.join(name), format!("{name} of {tag}")).unwrap();
        }
    }

    #[test]
    fn nothing_on_boot_imports_nothing() {
        let (_d, paths) = setup();
        assert_eq!(import_fleet(&paths).unwrap(), []);
        assert!(!paths.server.exists());
    }

    #[test]
    fn fleet_secrets_are_copied_once_with_private_modes() {
        let (_d, paths) = setup();
        fleet(&paths, "fleet-1");
        let first = import_fleet(&paths).unwrap();
        assert!(first.iter().all(|o| matches!(o, Outcome::Imported(_))), "{first:?}");
        let key = paths.server.join("pki/ca.key");
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "ca.key of fleet-1");
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(paths.server.join("token")).unwrap(), "token of fleet-1");
        let again = import_fleet(&paths).unwrap();
        assert!(again.iter().all(|o| matches!(o, Outcome::Kept(_))), "{again:?}");
    }

    #[test]
    fn a_different_ca_on_boot_never_replaces_the_devices() {
        let (_d, paths) = setup();
        fleet(&paths, "fleet-1");
        import_fleet(&paths).unwrap();
        fleet(&paths, "fleet-2");
        let out = import_fleet(&paths).unwrap();
        assert!(out.contains(&Outcome::Conflict("ca.key")), "{out:?}");
        assert_eq!(std::fs::read_to_string(paths.server.join("pki/ca.key")).unwrap(), "ca.key of fleet-1");
    }

    #[test]
    fn half_a_fleet_set_is_an_error_naming_the_missing_file() {
        let (_d, paths) = setup();
        fleet(&paths, "fleet-1");
        std::fs::remove_file(paths.boot.join("sa.key")).unwrap();
        let e = import_fleet(&paths).unwrap_err().to_string();
        assert!(e.contains("sa.key is not"), "{e}");
        assert!(!paths.server.join("pki/ca.key").exists(), "nothing imported");
    }
}
