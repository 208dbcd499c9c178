//! Fleet secrets: `lichen-image secrets init` makes the cluster-wide secrets
//! once (lichen-pki's [`ClusterSecrets`]), and `lichen-image build --secrets`
//! copies the part a device needs onto its BOOT partition under
//! `lichen/secrets/`, so that every device built from one directory joins
//! the same cluster. The admin credentials never leave the directory.

use std::path::{Path, PathBuf};

use lichen_pki::{ClusterSecrets, ClusterSecretsOptions, PkiError, file};

use crate::bootfs::BootFile;

/// The directory on BOOT that holds the copied secrets.
pub const BOOT_DIR: &str = "lichen/secrets";

/// The files copied to BOOT: CA, service-account key pair, join token.
pub const BOOT_FILES: [&str; 5] = [file::CA_CERT, file::CA_KEY, file::SA_KEY, file::SA_PUB, file::TOKEN];

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secrets directory {dir} has no {name}; make it with `lichen-image secrets init --out {dir}`")]
    Missing { dir: PathBuf, name: &'static str },
    #[error("cannot read {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cluster secrets in {dir}")]
    Pki { dir: PathBuf, source: PkiError },
}

/// Creates (or loads) the cluster secrets in `dir`, the admin kubeconfig
/// pointing at `server_url`. Returns what happened, one line per item.
pub fn init(dir: &Path, server_url: &str) -> Result<(ClusterSecrets, String), SecretsError> {
    let mut opts = ClusterSecretsOptions::new(dir);
    opts.server_url = server_url.to_string();
    let (secrets, report) = ClusterSecrets::load_or_create(&opts)
        .map_err(|source| SecretsError::Pki { dir: dir.into(), source })?;
    Ok((secrets, report.to_string()))
}

/// The BOOT files for the secrets in `dir`, in [`BOOT_FILES`] order.
pub fn boot_files(dir: &Path) -> Result<Vec<BootFile>, SecretsError> {
    BOOT_FILES
        .iter()
        .map(|name| {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(data) => Ok(BootFile { path: format!("{BOOT_DIR}/{name}"), data }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(SecretsError::Missing { dir: dir.to_path_buf(), name })
                }
                Err(source) => Err(SecretsError::Read { path, source }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};

    use fatfs::{FileSystem, FsOptions};

    use super::*;
    use crate::bootfs;

    fn read(fs: &FileSystem<Cursor<Vec<u8>>>, path: &str) -> Option<Vec<u8>> {
        let mut f = fs.root_dir().open_file(path).ok()?;
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        Some(v)
    }

    #[test]
    fn init_twice_keeps_the_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        let (first, report) = init(&dir, "https://192.168.1.5:6443").unwrap();
        assert!(report.contains("cluster CA: created"), "{report}");
        let ca = std::fs::read(dir.join("ca.crt")).unwrap();
        let (second, report) = init(&dir, "https://192.168.1.5:6443").unwrap();
        assert!(report.contains("cluster CA: reused") && report.contains("join token: reused"), "{report}");
        assert_eq!(std::fs::read(dir.join("ca.crt")).unwrap(), ca);
        assert_eq!(first.token, second.token);
        let kubeconfig = std::fs::read_to_string(dir.join("admin.kubeconfig")).unwrap();
        assert!(kubeconfig.contains("https://192.168.1.5:6443"));
    }

    #[test]
    fn boot_holds_the_device_secrets_and_no_admin_credentials() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        init(&dir, "https://127.0.0.1:6443").unwrap();
        let mut files = vec![BootFile { path: "slot-a/vmlinuz".into(), data: vec![1; 1000] }];
        files.extend(boot_files(&dir).unwrap());
        let a = bootfs::build(40, 7, 1_700_000_000, &files, &["slot-b"]).unwrap();
        let b = bootfs::build(40, 7, 1_700_000_000, &files, &["slot-b"]).unwrap();
        assert!(a == b, "same secrets, same BOOT bytes");
        let fs = FileSystem::new(Cursor::new(a), FsOptions::new()).unwrap();
        for name in BOOT_FILES {
            let on_boot = read(&fs, &format!("lichen/secrets/{name}")).unwrap();
            assert_eq!(on_boot, std::fs::read(dir.join(name)).unwrap(), "{name}");
        }
        let listed: Vec<String> = fs
            .root_dir()
            .open_dir("lichen/secrets")
            .unwrap()
            .iter()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(!listed.iter().any(|n| n.starts_with("admin")), "{listed:?}");
        assert_eq!(listed.iter().filter(|n| !n.starts_with('.')).count(), BOOT_FILES.len(), "{listed:?}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        init(tmp.path(), "https://127.0.0.1:6443").unwrap();
        std::fs::remove_file(tmp.path().join("sa.pub")).unwrap();
        let e = boot_files(tmp.path()).err().unwrap().to_string();
        assert!(e.contains("no sa.pub") && e.contains("secrets init"), "{e}");
    }
}
