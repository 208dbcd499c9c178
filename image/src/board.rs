//! Board configuration: one TOML file per board under `board-configs/`.
//!
//! A board may name a `base` file (relative to itself); the two are merged
//! table by table, the board's own values winning, so that boards of one
//! architecture share their package and module lists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a board file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("cannot read board file {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: base files nest deeper than {max} levels")]
    TooDeep { path: PathBuf, max: usize },
    #[error("{path}: {field}: {message}")]
    Invalid { path: PathBuf, field: &'static str, message: String },
}

/// A fully merged board description.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Debian architecture name (amd64, arm64, armhf).
    pub arch: String,
    /// Rust target triple lichen-init is built for.
    pub rust_target: String,
    pub kernel: Kernel,
    pub bootloader: Bootloader,
    pub partitions: Partitions,
    pub modules: Modules,
    #[serde(default)]
    pub packages: BTreeMap<String, PackageSpec>,
    #[serde(default)]
    pub console: Console,
    /// Symbolic links to make in the rootfs, `"path" = "target"` (path
    /// relative to /, target as `ln -s` takes it). Packages are unpacked
    /// without their maintainer scripts, so links those would make (e.g.
    /// `update-alternatives`) are declared here. A link whose target is not
    /// in the rootfs fails the build.
    #[serde(default)]
    pub symlinks: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    /// Debian package of the kernel; a metapackage is followed to the
    /// versioned `linux-image-*` package it depends on.
    pub package: String,
    #[serde(default)]
    pub cmdline: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bootloader {
    /// Only `grub-efi` so far; `u-boot` comes with the ARM boards.
    pub kind: String,
    pub package: String,
    /// GRUB platform directory and `grub-mkimage -O` format, e.g. x86_64-efi.
    pub format: String,
    /// File name under `EFI/BOOT/` (the removable-media path).
    pub efi_binary: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partitions {
    pub table: String,
    pub boot_mib: u64,
    pub root_mib: u64,
    pub data_mib: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modules {
    #[serde(default)]
    pub initramfs: Vec<String>,
    #[serde(default)]
    pub rootfs: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSpec {
    /// Globs of paths (relative to /) to keep; empty keeps everything.
    #[serde(default)]
    pub include: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Console {
    /// Run a root shell on the console (development and QEMU boards only).
    #[serde(default)]
    pub shell: bool,
}

const MAX_DEPTH: usize = 4;

impl Board {
    /// Reads a board file and its bases.
    pub fn load(path: &Path) -> Result<Board, BoardError> {
        let value = load_merged(path, 0)?;
        let board: Board = value.try_into().map_err(|e: toml::de::Error| BoardError::Parse {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })?;
        board.validate(path)?;
        Ok(board)
    }

    fn validate(&self, path: &Path) -> Result<(), BoardError> {
        let invalid = |field, message: &str| BoardError::Invalid {
            path: path.to_path_buf(),
            field,
            message: message.to_string(),
        };
        if self.partitions.table != "gpt" {
            return Err(invalid("partitions.table", "only \"gpt\" is supported so far"));
        }
        if self.bootloader.kind != "grub-efi" {
            return Err(invalid("bootloader.kind", "only \"grub-efi\" is supported so far"));
        }
        if self.partitions.boot_mib < 40 {
            return Err(invalid("partitions.boot_mib", "FAT32 needs at least 40 MiB"));
        }
        if self.partitions.root_mib == 0 || self.partitions.data_mib < 16 {
            return Err(invalid("partitions", "root_mib must be > 0 and data_mib >= 16"));
        }
        if !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(invalid("name", "use letters, digits, '-' and '_' only"));
        }
        for (link, target) in &self.symlinks {
            let bad_link = link.is_empty()
                || link.starts_with('/')
                || link.ends_with('/')
                || link.split('/').any(|c| c.is_empty() || c == "." || c == "..");
            if bad_link {
                let m = format!(
                    "{link:?}: use a path relative to / without '.' or '..', e.g. \"usr/sbin/iptables\""
                );
                return Err(invalid("symlinks", &m));
            }
            if target.is_empty() {
                return Err(invalid("symlinks", &format!("{link:?}: the target is empty")));
            }
        }
        Ok(())
    }
}

fn load_merged(path: &Path, depth: usize) -> Result<toml::Table, BoardError> {
    if depth > MAX_DEPTH {
        return Err(BoardError::TooDeep { path: path.to_path_buf(), max: MAX_DEPTH });
    }
    let text = std::fs::read_to_string(path)
        .map_err(|source| BoardError::Read { path: path.to_path_buf(), source })?;
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| BoardError::Parse {
        path: path.to_path_buf(),
        message: describe_toml_error(&text, &e),
    })?;
    let Some(base) = table.remove("base") else {
        return Ok(table);
    };
    let Some(base) = base.as_str() else {
        return Err(BoardError::Invalid {
            path: path.to_path_buf(),
            field: "base",
            message: "must be a path string".into(),
        });
    };
    let base_path = path.parent().unwrap_or(Path::new(".")).join(base);
    let mut merged = load_merged(&base_path, depth + 1)?;
    merge(&mut merged, table);
    Ok(merged)
}

/// Merges `over` into `base`: tables recursively, everything else replaced.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Formats a TOML error with its line number and the offending line.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let src = text.lines().nth(line - 1).unwrap_or("");
            format!("line {line}: {}: `{}`", e.message().trim(), src.trim())
        }
        None => e.message().trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    const BASE: &str = r#"
arch = "amd64"
rust_target = "x86_64-unknown-linux-gnu"
[kernel]
package = "linux-image-amd64"
cmdline = ["quiet"]
[bootloader]
kind = "grub-efi"
package = "grub-efi-amd64-bin"
format = "x86_64-efi"
efi_binary = "BOOTX64.EFI"
[partitions]
table = "gpt"
boot_mib = 64
root_mib = 128
data_mib = 32
[modules]
initramfs = ["virtio_blk"]
[packages.libc6]
include = ["lib/*"]
"#;

    #[test]
    fn board_overrides_base_key_by_key() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "common/base.toml", BASE);
        let p = write(
            dir.path(),
            "b.toml",
            "base = \"common/base.toml\"\nname = \"b\"\n[kernel]\ncmdline = [\"console=ttyS0\"]\n[packages.runc]\n",
        );
        let b = Board::load(&p).unwrap();
        assert_eq!(b.kernel.package, "linux-image-amd64");
        assert_eq!(b.kernel.cmdline, vec!["console=ttyS0"]);
        assert_eq!(b.packages.len(), 2);
        assert!(!b.console.shell);
    }

    #[test]
    fn missing_board_file_names_the_path() {
        let err = Board::load(Path::new("/nonexistent/board.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/board.toml"), "{err}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "b.toml", "name = \"x\"\narch = \n");
        let err = Board::load(&p).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn unknown_field_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base.toml", BASE);
        let p = write(dir.path(), "b.toml", "base = \"base.toml\"\nname = \"b\"\nkernal = 1\n");
        let err = Board::load(&p).unwrap_err().to_string();
        assert!(err.contains("kernal"), "{err}");
    }

    #[test]
    fn symlinks_merge_with_the_base() {
        let dir = tempfile::tempdir().unwrap();
        let base =
            format!("{BASE}[symlinks]\n\"usr/sbin/iptables\" = \"xtables-nft-multi\"\n\"bin/a\" = \"b\"\n");
        write(dir.path(), "base.toml", &base);
        let p = write(
            dir.path(),
            "b.toml",
            "base = \"base.toml\"\nname = \"b\"\n[symlinks]\n\"bin/a\" = \"c\"\n\"usr/bin/x\" = \"/usr/bin/y\"\n",
        );
        let b = Board::load(&p).unwrap();
        let got: Vec<(&str, &str)> = b.symlinks.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [("bin/a", "c"), ("usr/bin/x", "/usr/bin/y"), ("usr/sbin/iptables", "xtables-nft-multi")]
        );
    }

    #[test]
    fn symlink_paths_must_be_relative_and_plain() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base.toml", BASE);
        for bad in ["/usr/sbin/iptables", "usr/../etc/x", "usr//x", "", "usr/sbin/"] {
            let text = format!("base = \"base.toml\"\nname = \"b\"\n[symlinks]\n\"{bad}\" = \"t\"\n");
            let p = write(dir.path(), "b.toml", &text);
            let err = Board::load(&p).unwrap_err().to_string();
            assert!(err.contains("symlinks") && err.contains(&format!("{bad:?}")), "{err}");
        }
        let p = write(dir.path(), "b.toml", "base = \"base.toml\"\nname = \"b\"\n[symlinks]\n\"a\" = \"\"\n");
        assert!(Board::load(&p).unwrap_err().to_string().contains("target is empty"));
    }

    #[test]
    fn shipped_boards_load() {
        // At run time: a test binary built in another checkout that shares
        // the target directory must still read this checkout's files.
        let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap();
        let root = Path::new(&manifest).join("../board-configs");
        for name in ["qemu-x86_64.toml", "pc-x86_64.toml"] {
            let b = Board::load(&root.join(name)).unwrap();
            assert!(b.packages.contains_key("containerd"), "{name}");
            assert!(b.modules.initramfs.iter().any(|m| m == "squashfs"));
            assert_eq!(b.symlinks["usr/sbin/iptables"], "xtables-nft-multi", "{name}");
            assert!(b.packages.contains_key("iptables"), "{name}");
        }
    }
}
