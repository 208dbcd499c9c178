//! The QEMU harness: builds the command line for a board's virtual machine,
//! runs it with the serial console on a pipe, and lets tests wait for console
//! output, type shell commands, and send QMP commands (power button).
//!
//! Acceleration: KVM only when it really answers (on some hosts `/dev/kvm`
//! exists but a guest never runs); otherwise TCG. `LICHEN_ACCEL=tcg|kvm`
//! overrides the probe.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// OVMF firmware pair (code, variables template) from Debian's `ovmf`.
pub fn ovmf() -> Result<(PathBuf, PathBuf)> {
    for (code, vars) in [
        ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
        ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
    ] {
        if Path::new(code).exists() && Path::new(vars).exists() {
            return Ok((code.into(), vars.into()));
        }
    }
    bail!("OVMF firmware not found in /usr/share/OVMF; `make deps` installs package ovmf")
}

/// Which accelerator to use: `LICHEN_ACCEL` if set; else KVM if a kernel
/// (`LICHEN_PROBE_KERNEL`, the image's `vmlinuz`) prints its banner under KVM
/// within a few seconds; else TCG. The answer is computed once per process.
pub fn accel() -> Accel {
    static ACCEL: std::sync::OnceLock<Accel> = std::sync::OnceLock::new();
    *ACCEL.get_or_init(|| match std::env::var("LICHEN_ACCEL").as_deref() {
        Ok("tcg") => Accel::Tcg,
        Ok("kvm") => Accel::Kvm,
        _ => probe(std::env::var_os("LICHEN_PROBE_KERNEL").map(PathBuf::from).as_deref()),
    })
}

/// KVM if `kernel` boots under it, else TCG.
pub fn probe(kernel: Option<&Path>) -> Accel {
    match kernel {
        Some(k) if Path::new("/dev/kvm").exists() && k.exists() && kvm_answers(k, Duration::from_secs(5)) => {
            Accel::Kvm
        }
        _ => Accel::Tcg,
    }
}

/// Boots `kernel` under KVM and waits for its first console line. On some
/// hosts `/dev/kvm` opens and SeaBIOS even runs, but a kernel never prints.
fn kvm_answers(kernel: &Path, limit: Duration) -> bool {
    let child = Command::new("qemu-system-x86_64")
        .args(["-accel", "kvm", "-cpu", "host", "-M", "q35", "-m", "256", "-display", "none"])
        .args(["-nodefaults", "-no-user-config", "-no-reboot", "-serial", "stdio", "-kernel"])
        .arg(kernel)
        .args(["-append", "console=ttyS0 panic=-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    let Some(mut out) = child.stdout.take() else {
        return false;
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if find(&seen, b"Linux version").is_some() {
                let _ = tx.send(());
                return;
            }
        }
    });
    let ok = rx.recv_timeout(limit).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    ok
}

/// A path from the environment variable `name` (set by `make test-qemu`),
/// which must exist.
pub fn env_path(name: &str) -> PathBuf {
    let p = std::env::var_os(name)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{name} is not set: run these tests with `make test-qemu`"));
    assert!(p.exists(), "{name} {} does not exist", p.display());
    p
}

/// A fresh work directory for one test: `$CARGO_TARGET_DIR/qemu-tests/<name>`
/// (kept after the test, so that a failure's console log can be read).
pub fn workdir(name: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let d = base.join("qemu-tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("work dir");
    d
}

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub disk: PathBuf,
    pub memory_mib: u32,
    pub cpus: u32,
    /// Working directory: OVMF variables, QMP socket, console log.
    pub workdir: PathBuf,
    pub accel: Accel,
    /// (host port on 127.0.0.1, guest port)
    pub forwards: Vec<(u16, u16)>,
}

impl VmConfig {
    pub fn new(disk: &Path, workdir: &Path) -> VmConfig {
        VmConfig {
            disk: disk.to_path_buf(),
            memory_mib: 1024,
            cpus: 2,
            workdir: workdir.to_path_buf(),
            accel: accel(),
            forwards: vec![],
        }
    }

    pub fn qmp_path(&self) -> PathBuf {
        self.workdir.join("qmp.sock")
    }

    /// The QEMU command line, serial console not yet attached.
    pub fn command(&self) -> Result<Command> {
        let (code, vars_template) = ovmf()?;
        std::fs::create_dir_all(&self.workdir)?;
        let vars = self.workdir.join("OVMF_VARS.fd");
        if !vars.exists() {
            std::fs::copy(&vars_template, &vars).context("copying OVMF variables")?;
        }
        let mut c = Command::new("qemu-system-x86_64");
        c.args(["-machine", "q35", "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none"]);
        match self.accel {
            Accel::Kvm => c.args(["-accel", "kvm", "-cpu", "host"]),
            Accel::Tcg => c.args(["-accel", "tcg", "-cpu", "max"]),
        };
        c.arg("-m").arg(self.memory_mib.to_string()).arg("-smp").arg(self.cpus.to_string());
        c.arg("-drive").arg(format!("if=pflash,format=raw,unit=0,readonly=on,file={}", code.display()));
        c.arg("-drive").arg(format!("if=pflash,format=raw,unit=1,file={}", vars.display()));
        c.arg("-drive").arg(format!("if=virtio,format=raw,file={}", self.disk.display()));
        let mut netdev = "user,id=net0".to_string();
        for (host, guest) in &self.forwards {
            netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
        }
        c.arg("-netdev").arg(netdev).args(["-device", "virtio-net-pci,netdev=net0"]);
        c.args(["-device", "virtio-rng-pci"]);
        let _ = std::fs::remove_file(self.qmp_path());
        c.arg("-qmp").arg(format!("unix:{},server=on,wait=off", self.qmp_path().display()));
        Ok(c)
    }
}

/// A running VM with its serial console on pipes.
pub struct Vm {
    child: Child,
    stdin: Arc<Mutex<ChildStdin>>,
    out: Arc<Mutex<Vec<u8>>>,
    pos: usize,
    started: Instant,
    qmp: PathBuf,
    pub log: PathBuf,
    marker: u32,
}

impl Vm {
    pub fn start(cfg: &VmConfig) -> Result<Vm> {
        let mut cmd = cfg.command()?;
        cmd.args(["-chardev", "stdio,id=con0,signal=off", "-serial", "chardev:con0"]);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let log = cfg.workdir.join("console.log");
        let mut child = cmd.spawn().context("starting qemu-system-x86_64 (make deps installs it)")?;
        let started = Instant::now();
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let out = Arc::new(Mutex::new(Vec::new()));
        let stdin = Arc::new(Mutex::new(stdin));
        let (o, answer, mut file) = (out.clone(), stdin.clone(), std::fs::File::create(&log)?);
        std::thread::spawn(move || {
            let mut r = stdout;
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let _ = file.write_all(&buf[..n]);
                let Ok(mut v) = o.lock() else { break };
                let from = v.len().saturating_sub(3);
                v.extend_from_slice(&buf[..n]);
                // busybox's line editor asks the terminal where the cursor
                // is and waits for the answer; answer as a terminal would.
                if find(&v[from..], b"\x1b[6n").is_some()
                    && let Ok(mut w) = answer.lock()
                {
                    let _ = w.write_all(b"\x1b[1;1R");
                    let _ = w.flush();
                }
            }
        });
        let o2 = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut v) = o2.lock() {
                    v.extend_from_slice(format!("\n[qemu stderr] {line}\n").as_bytes());
                }
            }
        });
        Ok(Vm { child, stdin, out, pos: 0, started, qmp: cfg.qmp_path(), log, marker: 0 })
    }

    /// Everything the console printed so far.
    pub fn console(&self) -> String {
        self.out.lock().map(|v| String::from_utf8_lossy(&v).to_string()).unwrap_or_default()
    }

    /// Time since QEMU started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits for `needle` in the output after the last match; returns the
    /// time since QEMU started when it appeared.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> Result<Duration> {
        self.expect_any(&[needle], timeout).map(|(_, t)| t)
    }

    /// Waits for `needle`; returns the whole console line it is on.
    pub fn expect_line(&mut self, needle: &str, timeout: Duration) -> Result<(String, Duration)> {
        let t = self.expect(needle, timeout)?;
        let v = self.out.lock().map_err(|_| anyhow!("console lock poisoned"))?;
        let end = self.pos.min(v.len());
        let start = v[..end].iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
        let stop = v[end..].iter().position(|b| *b == b'\n').map(|i| end + i).unwrap_or(v.len());
        Ok((String::from_utf8_lossy(&v[start..stop]).trim().to_string(), t))
    }

    /// Waits for the first of `needles`; returns its index.
    pub fn expect_any(&mut self, needles: &[&str], timeout: Duration) -> Result<(usize, Duration)> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let v = self.out.lock().map_err(|_| anyhow!("console lock poisoned"))?;
                let hay = &v[self.pos.min(v.len())..];
                let hits = needles
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| find(hay, n.as_bytes()).map(|at| (at, i, n.len())));
                if let Some((at, i, len)) = hits.min() {
                    self.pos += at + len;
                    return Ok((i, self.started.elapsed()));
                }
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                bail!(
                    "QEMU exited ({st}) while waiting for {needles:?}; console log: {}",
                    self.log.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "timed out after {}s waiting for {needles:?}; console log: {}",
                    timeout.as_secs(),
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn send(&mut self, text: &str) -> Result<()> {
        let mut w = self.stdin.lock().map_err(|_| anyhow!("console input lock poisoned"))?;
        w.write_all(text.as_bytes())?;
        w.flush()?;
        Ok(())
    }

    /// Runs `cmd` in the console shell; returns its output and exit code.
    pub fn sh(&mut self, cmd: &str, timeout: Duration) -> Result<(String, i32)> {
        self.marker += 1;
        let n = self.marker;
        // The quotes keep the typed (echoed) line from matching the markers.
        self.send(&format!("echo @@B''{n}@@; {cmd}; echo @@E''{n}@@ $?\n"))?;
        self.expect(&format!("@@B{n}@@"), timeout)?;
        let start = self.pos;
        self.expect(&format!("@@E{n}@@ "), timeout)?;
        let end = self.pos - format!("@@E{n}@@ ").len();
        self.expect("\n", Duration::from_secs(5))?;
        let v = self.out.lock().map_err(|_| anyhow!("console lock poisoned"))?;
        let output = strip_log_lines(&String::from_utf8_lossy(&v[start..end]).replace('\r', ""));
        let tail = String::from_utf8_lossy(&v[end..self.pos]).to_string();
        let code = tail.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(-1);
        Ok((output, code))
    }

    /// Like [`Vm::sh`] but fails unless the command exits 0.
    pub fn sh_ok(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        let (out, code) = self.sh(cmd, timeout)?;
        if code != 0 {
            bail!("`{cmd}` exited {code}: {out}");
        }
        Ok(out)
    }

    pub fn qmp(&mut self, command: &str) -> Result<String> {
        Qmp::connect(&self.qmp, Duration::from_secs(10))?.command(command)
    }

    /// Waits for QEMU to exit.
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait()? {
                return Ok(st);
            }
            if Instant::now() > deadline {
                bail!("QEMU still running after {}s; console log: {}", timeout.as_secs(), self.log.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills QEMU (a power cut).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A QMP connection.
pub struct Qmp {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Qmp {
    pub fn connect(path: &Path, timeout: Duration) -> Result<Qmp> {
        let deadline = Instant::now() + timeout;
        let s = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => return Err(e).context("connecting to QMP"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        s.set_read_timeout(Some(timeout.max(Duration::from_secs(1))))?;
        let mut q = Qmp { r: BufReader::new(s.try_clone()?), w: s };
        let mut greeting = String::new();
        q.r.read_line(&mut greeting)?;
        q.command(r#"{"execute":"qmp_capabilities"}"#)?;
        Ok(q)
    }

    /// Sends one command and returns its `return` line (events skipped).
    pub fn command(&mut self, json: &str) -> Result<String> {
        self.w.write_all(json.as_bytes())?;
        self.w.write_all(b"\n")?;
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line)? == 0 {
                bail!("QMP closed");
            }
            if line.contains("\"return\"") {
                return Ok(line);
            }
            if line.contains("\"error\"") {
                bail!("QMP error: {line}");
            }
        }
    }
}

/// Byte offset and size of partition `label` in a disk image file.
pub fn partition(disk: &Path, label: &str) -> Result<(u64, u64)> {
    let mut f = std::fs::File::open(disk)?;
    let len = usize::try_from(lichen_formats::gpt::Gpt::head_len(512))?;
    let mut head = vec![0u8; len];
    f.read_exact(&mut head)?;
    let gpt = lichen_formats::gpt::Gpt::parse(&head, 512)?;
    let p = gpt.find(label).ok_or_else(|| anyhow!("no partition {label} in {}", disk.display()))?;
    Ok((p.first_lba * 512, (p.last_lba - p.first_lba + 1) * 512))
}

/// A sparse copy of `image` grown to `size` bytes, as a bigger disk would be.
pub fn disk_copy(image: &Path, to: &Path, size: u64) -> Result<()> {
    let st = Command::new("cp").arg("--sparse=always").arg(image).arg(to).status()?;
    if !st.success() {
        bail!("copying {} failed", image.display());
    }
    let f = std::fs::OpenOptions::new().write(true).open(to)?;
    if f.metadata()?.len() < size {
        f.set_len(size)?;
    }
    Ok(())
}

/// Removes the lines other writers put on the console while a shell command
/// ran: services' mirrored output (`[containerd] ...`), the kernel's and
/// lichen-init's messages (`[   12.345] ...`). Each is one whole write, so
/// they interleave with the command's output only at line boundaries.
pub fn strip_log_lines(output: &str) -> String {
    let is_log = |l: &str| {
        let Some(rest) = l.strip_prefix('[') else { return false };
        let Some(close) = rest.find("] ") else { return false };
        let tag = &rest[..close];
        let uptime = !tag.is_empty() && tag.trim_start().chars().all(|c| c.is_ascii_digit() || c == '.');
        let service =
            !tag.is_empty() && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        uptime || service
    };
    output.lines().filter(|l| !is_log(l)).collect::<Vec<_>>().join("\n").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::strip_log_lines;

    #[test]
    fn log_lines_are_removed_from_shell_output() {
        let out = "[containerd] time=x level=info msg=\"Start\"\n\
                   [   12.345] lichen-init: service containerd ready\n\
                   [    1.000000] virtio_net virtio0 eth0: up\n\
                   persist-1\n\
                   [not a log]\n";
        assert_eq!(strip_log_lines(out), "persist-1\n[not a log]");
    }
}
