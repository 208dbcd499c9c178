//! Crash-safe file writes and reads in the PKI directory.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::PkiError;

/// Mode of private keys and of files that contain one (the kubeconfig).
pub(crate) const SECRET: u32 = 0o600;
/// Mode of certificates and public keys.
pub(crate) const PUBLIC: u32 = 0o644;
/// Mode of the PKI directory.
const DIR: u32 = 0o700;

/// Creates `dir` (and its parents) and sets it to mode 0700.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(PkiError::io("cannot create directory", dir))?;
    set_mode(dir, DIR)
}

/// Reads `path` as text; `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, PkiError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PkiError::io("cannot read", path)(e)),
    }
}

/// Sets `path` to `mode` unless it already has it.
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), PkiError> {
    let meta = fs::metadata(path).map_err(PkiError::io("cannot stat", path))?;
    if meta.permissions().mode() & 0o7777 != mode {
        fs::set_permissions(path, Permissions::from_mode(mode))
            .map_err(PkiError::io("cannot set permissions on", path))?;
    }
    Ok(())
}

/// Replaces `path` with `contents` so that a crash leaves either the old or the
/// new file: write a temporary file beside it, fsync, rename, fsync the directory.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tmp_path(path);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(PkiError::io("cannot create", &tmp))?;
        // A stale temporary file keeps its old mode: `mode` above only applies on creation.
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(PkiError::io("cannot set permissions on", &tmp))?;
        file.write_all(contents).map_err(PkiError::io("cannot write", &tmp))?;
        file.sync_all().map_err(PkiError::io("cannot sync", &tmp))?;
        fs::rename(&tmp, path).map_err(PkiError::io("cannot rename into place", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(PkiError::io("cannot sync directory", dir))
}

fn tmp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn write_atomic_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o666)).unwrap();
        // A stale temporary file with a loose mode must not leak its mode.
        fs::write(tmp_path(&path), "stale").unwrap();
        fs::set_permissions(tmp_path(&path), Permissions::from_mode(0o666)).unwrap();

        write_atomic(&path, b"new", SECRET).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode(&path), 0o600);
        assert!(!tmp_path(&path).exists());
    }

    #[test]
    fn ensure_dir_tightens_an_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("a/pki");
        fs::create_dir_all(&pki).unwrap();
        fs::set_permissions(&pki, Permissions::from_mode(0o755)).unwrap();
        ensure_dir(&pki).unwrap();
        assert_eq!(mode(&pki), 0o700);
    }

    #[test]
    fn read_optional_distinguishes_missing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_optional(&dir.path().join("none")).unwrap(), None);
        let err = read_optional(dir.path()).unwrap_err();
        assert!(err.to_string().starts_with("cannot read"), "{err}");
    }
}
