//! Boots the image in QEMU and checks first boot from the outside: stage 2 on
//! slot A, DATA grown to the disk, containerd supervised and restarted,
//! `/var` persistent across a reboot, a clean power-off through the ACPI
//! power button, and a rescue shell when the root partition is corrupt.
//!
//! Needs `LICHEN_IMAGE` (set by `make test-qemu`, which builds the image).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lichen_tests_qemu::{Vm, VmConfig, disk_copy, partition};

const DISK: u64 = 2 << 30;
/// Generous: TCG on a loaded 2-core machine.
const BOOT: Duration = Duration::from_secs(300);
const CMD: Duration = Duration::from_secs(60);

fn image() -> PathBuf {
    let p = std::env::var_os("LICHEN_IMAGE")
        .map(PathBuf::from)
        .expect("LICHEN_IMAGE is not set: run these tests with `make test-qemu`");
    assert!(p.exists(), "LICHEN_IMAGE {} does not exist", p.display());
    p
}

fn workdir(name: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let d = base.join("qemu-tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("work dir");
    d
}

/// Boots to the console shell; returns the times (since QEMU start) when the
/// kernel, stage 1, and containerd readiness appeared.
fn boot_to_shell(vm: &mut Vm) -> Result<[Duration; 4]> {
    let kernel = vm.expect("Linux version", BOOT)?;
    let init = vm.expect("stage 1 (initramfs)", BOOT)?;
    vm.expect("stage 2 on slot a", BOOT)?;
    let containerd = vm.expect("service containerd ready", BOOT)?;
    let complete = vm.expect("boot complete", BOOT)?;
    // The shell prints its prompt once started; make it print a fresh one.
    std::thread::sleep(Duration::from_millis(500));
    vm.send("\n")?;
    vm.expect("lichen# ", CMD)?;
    let _ = complete;
    Ok([kernel, init, containerd, complete])
}

#[test]
fn first_boot_supervision_persistence_and_clean_poweroff() -> Result<()> {
    let dir = workdir("first-boot");
    let disk = dir.join("disk.raw");
    disk_copy(&image(), &disk, DISK)?;
    let cfg = VmConfig::new(&disk, &dir);
    eprintln!(
        "accel: {:?}; console log: {}",
        cfg.accel,
        dir.join("console.log").display()
    );
    let mut vm = Vm::start(&cfg)?;
    let [kernel, init, containerd, _] = boot_to_shell(&mut vm)?;
    let times = format!(
        "qemu start -> kernel {:.1}s, -> lichen-init {:.1}s, -> containerd ready {:.1}s ({:?})\n",
        kernel.as_secs_f64(),
        init.as_secs_f64(),
        containerd.as_secs_f64(),
        cfg.accel
    );
    eprint!("{times}");
    std::fs::write(dir.join("boot-times.txt"), &times)?;

    // Stage 2 on slot A, with containerd supervised.
    let status = vm.sh_ok("lichen-init status", CMD)?;
    assert!(status.contains("slot: a"), "{status}");
    assert!(status.contains("service containerd: running"), "{status}");
    assert!(status.contains("state: running"), "{status}");

    // DATA fills the 2 GiB disk (image DATA is 64 MiB).
    let df = vm.sh_ok("df -k /var | tail -1", CMD)?;
    let kib: u64 = df
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .context(df.clone())?;
    assert!(kib > 1_500_000, "DATA only {kib} KiB after growth: {df}");
    let mounts = vm.sh_ok("grep -E ' / | /var | /etc ' /proc/mounts", CMD)?;
    assert!(
        mounts.contains("squashfs") && mounts.contains("ro"),
        "{mounts}"
    );
    assert!(mounts.contains("/var ext4"), "{mounts}");
    assert!(mounts.contains("/etc tmpfs"), "{mounts}");

    // containerd answers on its socket.
    let v = vm.sh_ok("ctr --address /run/containerd/containerd.sock version", CMD)?;
    assert!(v.contains("Server:") && v.contains("Version:"), "{v}");

    // Killed, it comes back by itself.
    vm.sh_ok("kill -9 $(pidof containerd)", CMD)?;
    vm.expect("service containerd exited (killed by SIGKILL)", CMD)?;
    vm.expect("service containerd ready", CMD)?;
    let v = vm.sh_ok("ctr --address /run/containerd/containerd.sock version", CMD)?;
    assert!(v.contains("Server:"), "{v}");
    let status = vm.sh_ok("lichen-init status", CMD)?;
    assert!(status.contains("restarts 1"), "{status}");
    let log = vm.sh_ok("ls /var/log/", CMD)?;
    assert!(
        log.contains("containerd.log") && log.contains("lichen-init.log"),
        "{log}"
    );

    // A file on /var survives a reboot.
    let token = format!("persist-{}", std::process::id());
    vm.sh_ok(&format!("echo {token} > /var/lib/lichen-test && sync"), CMD)?;
    vm.send("reboot\n")?;
    vm.expect("rebooting", CMD)?;
    boot_to_shell(&mut vm)?;
    let back = vm.sh_ok("cat /var/lib/lichen-test", CMD)?;
    assert_eq!(back, token);
    let id1 = vm.sh_ok("cat /etc/machine-id", CMD)?;
    assert_eq!(id1.len(), 32, "{id1}");

    // The ACPI power button powers off in order.
    vm.qmp(r#"{"execute":"system_powerdown"}"#)?;
    vm.expect("power button pressed", CMD)?;
    vm.expect("powering off", CMD)?;
    let st = vm.wait(Duration::from_secs(120))?;
    assert!(st.success(), "qemu exit {st}");

    // The host sees a cleanly unmounted DATA.
    let (off, _) = partition(&disk, "DATA")?;
    let spec = format!("{}?offset={off}", disk.display());
    let out = Command::new("e2fsck").args(["-n", &spec]).output()?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !text.contains("clean") {
        bail!("e2fsck -n on DATA: {text}");
    }
    let out = Command::new("e2fsck").args(["-n", "-f", &spec]).output()?;
    assert!(
        out.status.success(),
        "e2fsck -n -f: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(())
}

#[test]
fn corrupt_root_partition_opens_the_rescue_shell() -> Result<()> {
    let dir = workdir("corrupt-root");
    let disk = dir.join("disk.raw");
    disk_copy(&image(), &disk, DISK)?;
    // Overwrite the squashfs superblock of ROOT-A.
    let (off, _) = partition(&disk, "ROOT-A")?;
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&disk)?;
        f.seek(SeekFrom::Start(off))?;
        f.write_all(&[0x5a; 4096])?;
    }
    let cfg = VmConfig::new(&disk, &dir);
    let mut vm = Vm::start(&cfg)?;
    vm.expect("root partition ROOT-A", BOOT)?;
    vm.expect("missing or corrupt", CMD)?;
    vm.expect("rescue shell", CMD)?;
    // The shell answers.
    let out = vm.sh_ok("echo alive-$((6*7))", CMD)?;
    assert!(out.contains("alive-42"), "{out}");
    Ok(())
}
