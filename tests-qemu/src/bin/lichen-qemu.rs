//! `lichen-qemu --image FILE`: boots a Lichen image with the serial console
//! in this terminal (Ctrl-A X quits QEMU). The image itself is not changed:
//! the VM runs on a sparse copy next to it, 8 GiB large, kept across runs.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use lichen_tests_qemu::{VmConfig, disk_copy};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut image = None;
    let mut fresh = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--image" => image = args.next().map(PathBuf::from),
            "--fresh" => fresh = true,
            _ => bail!("usage: lichen-qemu --image FILE [--fresh]"),
        }
    }
    let image = image.context("usage: lichen-qemu --image FILE [--fresh]")?;
    let dir = image.parent().map(|p| p.join("qemu")).unwrap_or_else(|| PathBuf::from("qemu"));
    std::fs::create_dir_all(&dir)?;
    let disk = dir.join("disk.raw");
    let stamp = dir.join("disk.source");
    let image_meta =
        std::fs::metadata(&image).with_context(|| format!("{} (make image)", image.display()))?;
    let id = format!("{:?}", image_meta.modified()?);
    if fresh || !disk.exists() || std::fs::read_to_string(&stamp).ok().as_deref() != Some(id.as_str()) {
        disk_copy(&image, &disk, 8 << 30)?;
        // Fresh firmware variables too: boot entries of an older disk only
        // slow the next boot down.
        let _ = std::fs::remove_file(dir.join("OVMF_VARS.fd"));
        std::fs::write(&stamp, &id)?;
    }
    let mut cfg = VmConfig::new(&disk, &dir);
    if std::env::var_os("LICHEN_ACCEL").is_none() && std::env::var_os("LICHEN_PROBE_KERNEL").is_none() {
        cfg.accel = lichen_tests_qemu::probe(image.parent().map(|p| p.join("vmlinuz")).as_deref());
    }
    cfg.forwards = vec![(6443, 6443)];
    eprintln!("lichen-qemu: {:?} acceleration, disk {}, Ctrl-A X quits", cfg.accel, disk.display());
    let mut cmd = cfg.command()?;
    cmd.args(["-serial", "mon:stdio"]);
    let st = cmd.status().context("starting qemu-system-x86_64")?;
    if !st.success() {
        bail!("qemu exited with {st}");
    }
    Ok(())
}
