//! The host tools the builder runs for formats with no mature Rust writer:
//! `mksquashfs` (squashfs-tools), `mke2fs -d` (e2fsprogs) and `grub-mkimage`.
//! Each is run with `SOURCE_DATE_EPOCH` and fixed identifiers so the output
//! is byte-for-byte reproducible.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("cannot run {tool}; `make deps` installs it")]
    Spawn { tool: String, source: std::io::Error },
    #[error("{tool} failed making {output}: {stderr}")]
    Failed { tool: String, output: PathBuf, stderr: String },
}

fn run(cmd: &mut Command, tool: &str, output: &Path) -> Result<(), ToolError> {
    let out =
        cmd.env("LC_ALL", "C").output().map_err(|source| ToolError::Spawn { tool: tool.into(), source })?;
    if !out.status.success() {
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if stderr.is_empty() {
            stderr = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        return Err(ToolError::Failed { tool: tool.into(), output: output.into(), stderr });
    }
    Ok(())
}

/// A zstd squashfs of `dir`, everything owned by root, all times `epoch`.
pub fn mksquashfs(dir: &Path, out: &Path, epoch: u64) -> Result<(), ToolError> {
    let _ = std::fs::remove_file(out);
    let e = epoch.to_string();
    run(
        Command::new("mksquashfs")
            .arg(dir)
            .arg(out)
            .args(["-comp", "zstd", "-b", "256K", "-noappend", "-all-root", "-no-xattrs", "-quiet"])
            // SOURCE_DATE_EPOCH sets both the file and the mkfs times.
            .env("SOURCE_DATE_EPOCH", &e),
        "mksquashfs",
        out,
    )
}

/// An empty ext4 image of `size_mib` MiB, with label, UUID and hash seed
/// fixed and e2fsprogs' clock pinned to `epoch`.
pub fn mke2fs(out: &Path, label: &str, uuid: &str, size_mib: u64, epoch: u64) -> Result<(), ToolError> {
    let _ = std::fs::remove_file(out);
    run(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-T", "default", "-m", "0"])
            .args(["-L", label, "-U", uuid])
            .arg("-E")
            .arg(format!("root_owner=0:0,hash_seed={uuid},lazy_itable_init=0,nodiscard"))
            .arg(out)
            .arg(format!("{size_mib}M"))
            .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .env("MKE2FS_CONFIG", "/etc/mke2fs.conf"),
        "mke2fs",
        out,
    )
}

/// A standalone GRUB EFI binary with `early_cfg` embedded, modules taken
/// from `modules_dir` (the board's grub-efi-*-bin package).
pub fn grub_mkimage(modules_dir: &Path, format: &str, early_cfg: &Path, out: &Path) -> Result<(), ToolError> {
    run(
        Command::new("grub-mkimage")
            .arg("-d")
            .arg(modules_dir)
            .args(["-O", format, "-p", "/EFI/BOOT", "-c"])
            .arg(early_cfg)
            .arg("-o")
            .arg(out)
            .args(GRUB_MODULES),
        "grub-mkimage",
        out,
    )
}

const GRUB_MODULES: &[&str] = &[
    "part_gpt",
    "part_msdos",
    "fat",
    "ext2",
    "search",
    "search_label",
    "search_fs_uuid",
    "normal",
    "configfile",
    "linux",
    "echo",
    "test",
    "loadenv",
    "gzio",
    "serial",
    "terminal",
    "sleep",
    "reboot",
    "halt",
    "efi_gop",
    "all_video",
    "cat",
    "ls",
    "regexp",
];
