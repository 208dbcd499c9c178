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
use lichen_formats::bootenv::{BootState, EnvBlock, Slot};
use lichen_tests_qemu::{Vm, VmConfig, disk_copy, env_path, partition, workdir};

const DISK: u64 = 2 << 30;
/// Generous: TCG on a loaded 2-core machine.
const BOOT: Duration = Duration::from_secs(300);
const CMD: Duration = Duration::from_secs(60);

fn image() -> PathBuf {
    env_path("LICHEN_IMAGE")
}

/// Boots to the console shell; returns the times (since QEMU start) when the
/// kernel, stage 1, and containerd readiness appeared.
fn boot_to_shell(vm: &mut Vm) -> Result<[Duration; 4]> {
    vm.expect("Lichen: booting slot a", BOOT)?;
    // The kernel runs at loglevel 4 and prints no banner; lichen-init's
    // first line carries the time since the kernel started.
    let (line, init) = vm.expect_line("stage 1 (initramfs)", BOOT)?;
    let uptime: f64 = line
        .trim_start_matches('[')
        .split(']')
        .next()
        .and_then(|t| t.trim().parse().ok())
        .with_context(|| format!("no uptime in {line:?}"))?;
    let kernel = init.saturating_sub(Duration::from_secs_f64(uptime));
    vm.expect("stage 2 on slot a", BOOT)?;
    let containerd = vm.expect("service containerd ready", BOOT)?;
    let complete = vm.expect("boot complete", BOOT)?;
    // Make the shell print a fresh prompt. busybox asks the terminal for the
    // cursor position (ESC[6n) and swallows the next input line as the
    // answer, so one newline may not be enough.
    let mut prompt = false;
    for _ in 0..10 {
        vm.send("\n")?;
        if vm.expect("lichen# ", Duration::from_secs(5)).is_ok() {
            prompt = true;
            break;
        }
    }
    if !prompt {
        bail!("no shell prompt on the console; log: {}", vm.log.display());
    }
    let _ = complete;
    Ok([kernel, init, containerd, complete])
}

#[test]
fn first_boot_supervision_persistence_and_clean_poweroff() -> Result<()> {
    let dir = workdir("first-boot");
    let disk = dir.join("disk.raw");
    disk_copy(&image(), &disk, DISK)?;
    let cfg = VmConfig::new(&disk, &dir);
    eprintln!("accel: {:?}; console log: {}", cfg.accel, dir.join("console.log").display());
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

    // Footprint, for the report (not asserted: tests check behaviour).
    let rss = vm.sh_ok("grep VmRSS /proc/1/status; grep VmRSS /proc/$(pidof containerd)/status; grep -E 'MemTotal|MemAvailable' /proc/meminfo", CMD)?;
    eprintln!("footprint:\n{rss}");
    std::fs::write(dir.join("footprint.txt"), &rss)?;

    // Stage 2 on slot A, with containerd supervised.
    let status = vm.sh_ok("lichen-init status", CMD)?;
    assert!(status.contains("slot: a"), "{status}");
    assert!(status.contains("kernel: 6."), "{status}");
    assert!(status.contains("service containerd: running"), "{status}");
    assert!(status.contains("state: running"), "{status}");

    // DATA fills the 2 GiB disk (image DATA is 64 MiB).
    // DATA is the last partition: grown, it ends at the last whole MiB
    // before the backup GPT, and the ext4 fills it.
    let sectors: u64 = vm.sh_ok("cat /sys/class/block/vda4/size", CMD)?.parse()?;
    let start: u64 = vm.sh_ok("cat /sys/class/block/vda4/start", CMD)?.parse()?;
    let end = (start + sectors) * 512;
    assert!(end <= DISK - 33 * 512 && end > DISK - (2 << 20), "DATA ends at {end} on a {DISK}-byte disk");
    let df = vm.sh_ok("df -k /var | tail -1", CMD)?;
    let kib: u64 = df.split_whitespace().nth(1).and_then(|v| v.parse().ok()).context(df.clone())?;
    assert!(kib * 1024 > sectors * 512 / 100 * 95, "ext4 {kib} KiB on a {sectors}-sector DATA: {df}");
    let mounts = vm.sh_ok("grep -E ' / | /var | /etc ' /proc/mounts", CMD)?;
    assert!(mounts.contains("squashfs") && mounts.contains("ro"), "{mounts}");
    assert!(mounts.contains("/var ext4"), "{mounts}");
    assert!(mounts.contains("/etc tmpfs"), "{mounts}");

    // containerd answers on its socket.
    let v = vm.sh_ok("ctr --address /run/containerd/containerd.sock version", CMD)?;
    assert!(v.contains("Server:") && v.contains("Version:"), "{v}");

    // Killed, it comes back by itself.
    vm.sh_ok("kill -9 $(pidof containerd)", CMD)?;
    if let Err(e) = vm.expect("service containerd exited (killed by SIGKILL)", CMD) {
        let why = vm.sh("for t in /proc/1/task/*; do echo $t $(cat $t/comm) $(cat $t/wchan); done", CMD);
        bail!("{e}; PID 1 threads: {why:?}");
    }
    vm.expect("service containerd ready", CMD)?;
    let v = vm.sh_ok("ctr --address /run/containerd/containerd.sock version", CMD)?;
    assert!(v.contains("Server:"), "{v}");
    let status = vm.sh_ok("lichen-init status", CMD)?;
    assert!(status.contains("restarts 1"), "{status}");
    let log = vm.sh_ok("ls /var/log/", CMD)?;
    assert!(log.contains("containerd.log") && log.contains("lichen-init.log"), "{log}");

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
    let console = vm.console();
    let shutdown = &console[console.rfind("power button pressed").unwrap_or(0)..];
    assert!(!shutdown.contains("could not be unmounted"), "{shutdown}");
    assert!(!shutdown.contains("did not stop within"), "{shutdown}");

    // The host sees a cleanly unmounted DATA.
    let (off, _) = partition(&disk, "DATA")?;
    let spec = format!("{}?offset={off}", disk.display());
    let out = Command::new("e2fsck").args(["-n", &spec]).output()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !text.contains("clean") {
        bail!("e2fsck -n on DATA: {text}");
    }
    let out = Command::new("e2fsck").args(["-n", "-f", &spec]).output()?;
    assert!(out.status.success(), "e2fsck -n -f: {}", String::from_utf8_lossy(&out.stdout));
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

/// Replaces the GRUB environment block on BOOT in place (same 1 KiB, same
/// blocks, as GRUB's save_env does) and returns its offset in the disk.
fn write_bootenv(disk: &std::path::Path, state: &BootState) -> Result<u64> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let (off, size) = partition(disk, "BOOT")?;
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(disk)?;
    f.seek(SeekFrom::Start(off))?;
    let mut boot = vec![0u8; usize::try_from(size)?];
    f.read_exact(&mut boot)?;
    // The header text also occurs inside GRUB's own binary (loadenv);
    // the file is the occurrence followed by our first variable.
    let mut needle = lichen_formats::bootenv::HEADER.to_vec();
    needle.extend_from_slice(b"lichen_active=");
    let at =
        boot.windows(needle.len()).position(|w| w == needle).context("no GRUB environment block on BOOT")?;
    let mut env = EnvBlock::parse(&boot[at..at + 1024])?;
    state.write_to(&mut env);
    f.seek(SeekFrom::Start(off + at as u64))?;
    f.write_all(&env.to_bytes()?)?;
    Ok(off + at as u64)
}

fn read_bootenv(disk: &std::path::Path, at: u64) -> Result<BootState> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(disk)?;
    f.seek(SeekFrom::Start(at))?;
    let mut b = vec![0u8; 1024];
    f.read_exact(&mut b)?;
    Ok(BootState::from_env(&EnvBlock::parse(&b)?)?)
}

/// An interrupted update: slot B is on trial but has no kernel. GRUB counts
/// a try, cannot load B, and boots A at once instead of stopping.
#[test]
fn trial_of_a_slot_without_kernel_falls_back_to_the_active_slot() -> Result<()> {
    let dir = workdir("trial-fallback");
    let disk = dir.join("disk.raw");
    disk_copy(&image(), &disk, DISK)?;
    let at = write_bootenv(&disk, &BootState { active: Slot::A, trial: Some(Slot::B), tries_left: 2 })?;
    let cfg = VmConfig::new(&disk, &dir);
    let mut vm = Vm::start(&cfg)?;
    vm.expect("Lichen: booting slot b", BOOT)?;
    vm.expect("slot b has no kernel; booting slot a", BOOT)?;
    vm.expect("stage 2 on slot a", BOOT)?;
    vm.expect("boot complete", BOOT)?;
    vm.kill();
    let after = read_bootenv(&disk, at)?;
    assert_eq!(
        after,
        BootState { active: Slot::A, trial: Some(Slot::B), tries_left: 1 },
        "GRUB counted one try"
    );
    Ok(())
}
