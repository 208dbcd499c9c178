//! `lichen-qemu --image FILE [--api-port N] [--kubeconfig FILE] [--kubectl FILE]`:
//! boots a Lichen image with the serial console in this terminal (Ctrl-A X
//! quits QEMU), the Kubernetes API forwarded to 127.0.0.1:N (default 6443)
//! and NodePorts 30000-30019 to the same ports on 127.0.0.1. The image
//! itself is not changed: the VM runs on a sparse copy next to it, 8 GiB
//! large, kept across runs.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use lichen_tests_qemu::{VmConfig, disk_copy};

/// NodePorts forwarded to the host (each one is a listening socket of QEMU's).
const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=30019;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut image = None;
    let mut fresh = false;
    let mut api_port: u16 = 6443;
    let mut kubeconfig: Option<PathBuf> = None;
    let mut kubectl = String::from("kubectl");
    const USAGE: &str =
        "usage: lichen-qemu --image FILE [--fresh] [--api-port N] [--kubeconfig FILE] [--kubectl FILE]";
    while let Some(a) = args.next() {
        match a.as_str() {
            "--image" => image = args.next().map(PathBuf::from),
            "--fresh" => fresh = true,
            "--api-port" => api_port = args.next().and_then(|p| p.parse().ok()).context(USAGE)?,
            "--kubeconfig" => kubeconfig = args.next().map(PathBuf::from),
            "--kubectl" => kubectl = args.next().context(USAGE)?,
            _ => bail!(USAGE),
        }
    }
    let image = image.context(USAGE)?;
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
    cfg.forwards = vec![(api_port, 6443)];
    cfg.forwards.extend(NODE_PORTS.map(|p| (p, p)));
    eprintln!("lichen-qemu: {:?} acceleration, disk {}, Ctrl-A X quits", cfg.accel, disk.display());
    eprintln!(
        "lichen-qemu: the node's API server is forwarded to https://127.0.0.1:{api_port}; once the console says"
    );
    eprintln!("  \"boot complete\", in another terminal:");
    match &kubeconfig {
        Some(k) => eprintln!("    export KUBECONFIG={}", k.display()),
        None => eprintln!(
            "    (zero-touch image: its admin kubeconfig is /var/lib/lichen/server/pki/admin.kubeconfig)"
        ),
    }
    eprintln!("    {kubectl} get nodes -o wide");
    eprintln!("  NodePorts {}-{} answer on 127.0.0.1.", NODE_PORTS.start(), NODE_PORTS.end());
    let mut cmd = cfg.command()?;
    cmd.args(["-serial", "mon:stdio"]);
    let st = cmd.status().context("starting qemu-system-x86_64")?;
    if !st.success() {
        bail!("qemu exited with {st}");
    }
    Ok(())
}
