//! The image as a Kubernetes node, driven from the host with the real
//! kubectl through QEMU's forwarded API port: the node becomes Ready with
//! the image's OS name and version; a Deployment of the image's own
//! busybox runs, `kubectl logs` and `exec` work, its NodePort Service
//! answers HTTP from the host; after a reboot the
//! Deployment runs again unasked; a power cut (kill -9 of QEMU) while
//! objects are written and pods churn loses nothing that was acknowledged
//! and leaves SQLite sound; the node's PKI is the fleet's and does not
//! change across reboots.
//!
//! Needs `LICHEN_IMAGE`, `LICHEN_KUBECTL` and `LICHEN_KUBECONFIG` (the
//! fleet admin kubeconfig made with the image), set by `make test-qemu`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lichen_tests_qemu::{Vm, VmConfig, disk_copy, env_path, workdir};

const DISK: u64 = 4 << 30;
/// Generous: TCG on a loaded 2-core machine.
const BOOT: Duration = Duration::from_secs(600);
const CMD: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("address").port()
}

/// The real kubectl against the VM's forwarded API port.
#[derive(Clone)]
struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    server: String,
}

impl Kubectl {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--kubeconfig").arg(&self.kubeconfig).arg("--server").arg(&self.server).args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let out = self.cmd(args).output().with_context(|| format!("running {}", self.bin.display()))?;
        if !out.status.success() {
            bail!("kubectl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    fn apply(&self, yaml: &str) -> Result<String> {
        use std::io::Write;
        let mut child = self
            .cmd(&["apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        child.stdin.take().context("stdin")?.write_all(yaml.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("kubectl apply: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// Retries `args` until it succeeds and `ok` accepts the output.
    fn until(&self, args: &[&str], timeout: Duration, ok: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.run(args);
            if let Ok(out) = &last
                && ok(out)
            {
                return Ok(out.clone());
            }
            if Instant::now() > deadline {
                bail!(
                    "kubectl {} did not succeed within {}s; last: {last:?}",
                    args.join(" "),
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }
}

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: docker.io/lichen/busybox:1
        imagePullPolicy: Never
        command: [sh, -c, "echo serving /var/www on 8080; exec httpd -f -v -p 8080 -h /var/www"]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 2}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
"#;

/// When things happened, since QEMU started.
struct Times {
    kernel: Duration,
    init: Duration,
    containerd: Duration,
    node_ready: Duration,
}

/// Waits for lichen-init to report the node Ready, then for a shell prompt.
fn until_node_ready(vm: &mut Vm) -> Result<Times> {
    // The kernel prints nothing at loglevel 4; lichen-init's first line
    // carries the kernel's uptime.
    let (line, init) = vm.expect_line("stage 1 (initramfs)", BOOT)?;
    let uptime: f64 = line
        .trim_start_matches('[')
        .split(']')
        .next()
        .and_then(|t| t.trim().parse().ok())
        .with_context(|| format!("no uptime in {line:?}"))?;
    vm.expect("stage 2 on slot a", BOOT)?;
    let containerd = vm.expect("service containerd ready", BOOT)?;
    let node_ready = vm.expect("service lichen ready", BOOT)?;
    vm.expect("boot complete", CMD)?;
    let times =
        Times { kernel: init.saturating_sub(Duration::from_secs_f64(uptime)), init, containerd, node_ready };
    for _ in 0..10 {
        vm.send("\n")?;
        if vm.expect("lichen# ", Duration::from_secs(5)).is_ok() {
            return Ok(times);
        }
    }
    bail!("no shell prompt on the console; log: {}", vm.log.display())
}

/// GET / on 127.0.0.1:`port` until it answers 200; returns the body.
fn http_get_until(port: u16, timeout: Duration) -> Result<String> {
    use std::io::{Read, Write};
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match attempt {
            Ok(r) if r.starts_with("HTTP/1.") && r.contains(" 200 ") => {
                return Ok(r.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default());
            }
            Ok(r) => last = r.lines().next().unwrap_or("empty answer").to_owned(),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    bail!("no HTTP answer on 127.0.0.1:{port} within {}s; last: {last}", timeout.as_secs())
}

fn pki_digest(vm: &mut Vm) -> Result<String> {
    vm.sh_ok("cd /var/lib/lichen/server/pki && sha256sum ca.crt ca.key sa.key sa.pub server.crt server.key admin.crt", CMD)
}

fn rollout(k: &Kubectl) -> Result<()> {
    k.run(&["rollout", "status", "deployment/web", "--timeout=600s"]).map(|_| ())
}

/// Writes ConfigMaps one after another and scales the Deployment up and
/// down until told to stop; returns the ConfigMaps the API acknowledged.
fn churn(k: Kubectl, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<u32>>>) {
    let mut i = 0u32;
    while !stop.load(Ordering::SeqCst) {
        let name = format!("churn-{i}");
        let data = format!("--from-literal=n={i}");
        if k.run(&["create", "configmap", &name, &data]).is_ok() {
            acked.lock().unwrap_or_else(|p| p.into_inner()).push(i);
        }
        if i.is_multiple_of(4) {
            let replicas = format!("--replicas={}", 1 + (i / 4) % 3);
            let _ = k.run(&["scale", "deployment/web", &replicas]);
        }
        i += 1;
    }
}

#[test]
fn node_ready_runs_workloads_across_reboots_and_power_cuts() -> Result<()> {
    let dir = workdir("node");
    let disk = dir.join("disk.raw");
    disk_copy(&env_path("LICHEN_IMAGE"), &disk, DISK)?;
    let port = free_port();
    let web_port = free_port();
    let k = Kubectl {
        bin: env_path("LICHEN_KUBECTL"),
        kubeconfig: env_path("LICHEN_KUBECONFIG"),
        server: format!("https://127.0.0.1:{port}"),
    };
    let mut cfg = VmConfig::new(&disk, &dir);
    cfg.forwards = vec![(port, 6443), (web_port, 30080)];
    eprintln!("accel: {:?}; console log: {}", cfg.accel, dir.join("console.log").display());
    let mut vm = Vm::start(&cfg)?;
    let t = until_node_ready(&mut vm)?;
    let times = format!(
        "qemu start -> kernel {:.1}s, -> lichen-init {:.1}s, -> containerd ready {:.1}s, -> node Ready {:.1}s ({:?}, {} MiB)\n",
        t.kernel.as_secs_f64(),
        t.init.as_secs_f64(),
        t.containerd.as_secs_f64(),
        t.node_ready.as_secs_f64(),
        cfg.accel,
        cfg.memory_mib,
    );
    eprint!("{times}");
    std::fs::write(dir.join("node-times.txt"), &times)?;

    // The node, as kubectl on the host sees it.
    let wide = k.until(&["get", "nodes", "-o", "wide"], CMD, |o| o.contains(" Ready "))?;
    eprintln!("{wide}");
    assert!(wide.contains("Lichen "), "OS image: {wide}");
    assert!(wide.contains("v1.37."), "version: {wide}");
    assert_eq!(wide.lines().count(), 2, "one node: {wide}");

    // The fleet's CA: the host's kubeconfig trusts it, and the device uses it.
    let pki = pki_digest(&mut vm)?;
    let fleet_ca_path = Path::new(&env_path("LICHEN_KUBECONFIG")).with_file_name("secrets/ca.crt");
    let fleet_ca =
        std::fs::read_to_string(&fleet_ca_path).with_context(|| fleet_ca_path.display().to_string())?;
    let on_device = vm.sh_ok("cat /var/lib/lichen/server/pki/ca.crt", CMD)?;
    assert_eq!(on_device.trim(), fleet_ca.trim(), "the device's CA is the fleet's");

    // Footprint with the node Ready and idle, for the report (not asserted).
    std::thread::sleep(Duration::from_secs(20));
    let footprint = vm.sh_ok(
        "grep -E 'MemTotal|MemAvailable' /proc/meminfo; for p in 1 $(pidof containerd) $(pidof lichen); do echo \"$(cat /proc/$p/comm) $(grep VmRSS /proc/$p/status)\"; done",
        CMD,
    )?;
    eprintln!("footprint:\n{footprint}");
    std::fs::write(dir.join("node-footprint.txt"), &footprint)?;

    // A workload from the image's own air-gap images.
    k.apply(WEB)?;
    rollout(&k)?;
    let logs = k.until(&["logs", "deployment/web"], CMD, |o| o.contains("serving /var/www on 8080"))?;
    assert!(logs.contains("serving"), "{logs}");
    let page = k.run(&["exec", "deployment/web", "--", "wget", "-qO-", "http://127.0.0.1:8080/"])?;
    let file = k.run(&["exec", "deployment/web", "--", "cat", "/var/www/index.html"])?;
    assert!(!page.trim().is_empty() && page == file, "served {page:?}, file {file:?}");
    // The NodePort Service answers from the host, through QEMU's forward.
    let from_host = match http_get_until(web_port, CMD) {
        Ok(body) => body,
        Err(e) => {
            let why = vm.sh(
                "nft list ruleset | head -80; grep -iE 'proxy|nft' /var/log/lichen.log | tail -20; ip -4 addr",
                CMD,
            );
            bail!("{e}\nproxy state: {why:?}");
        }
    };
    assert_eq!(from_host, file, "NodePort 30080 from the host");

    // A clean reboot: the Deployment comes back without being applied again.
    vm.send("reboot\n")?;
    vm.expect("rebooting", CMD)?;
    until_node_ready(&mut vm)?;
    rollout(&k)?;
    assert_eq!(http_get_until(web_port, BOOT)?, file, "NodePort after the reboot");
    let pods = k.until(&["get", "pods", "-l", "app=web", "--no-headers"], BOOT, |o| {
        o.lines().count() == 2 && o.lines().all(|l| l.contains("Running") && l.contains("1/1"))
    })?;
    eprintln!("after reboot:\n{pods}");
    assert_eq!(pki_digest(&mut vm)?, pki, "the PKI is unchanged across a reboot");

    // A power cut in the middle of writes and pod churn.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (k, stop, acked) = (k.clone(), stop.clone(), acked.clone());
        std::thread::spawn(move || churn(k, stop, acked))
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    while acked.lock().unwrap_or_else(|p| p.into_inner()).len() < 12 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    vm.kill();
    stop.store(true, Ordering::SeqCst);
    let _ = writer.join();
    let acked = acked.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(acked.len() >= 12, "only {} writes acknowledged before the cut", acked.len());

    let mut cfg = VmConfig::new(&disk, &dir.join("after-cut"));
    cfg.forwards = vec![(port, 6443), (web_port, 30080)];
    let mut vm = Vm::start(&cfg)?;
    until_node_ready(&mut vm)?;
    let check = vm.sh_ok("lichen datastore", CMD)?;
    assert!(check.contains("integrity ok"), "{check}");
    let names = k.run(&["get", "configmaps", "-o", "name"])?;
    let missing: Vec<_> =
        acked.iter().filter(|i| !names.lines().any(|l| l == format!("configmap/churn-{i}"))).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}\n{names}");
    let last = acked.last().copied().unwrap_or(0);
    let value = k.run(&["get", "configmap", &format!("churn-{last}"), "-o", "jsonpath={.data.n}"])?;
    assert_eq!(value, last.to_string());
    rollout(&k)?;
    assert_eq!(pki_digest(&mut vm)?, pki, "the PKI is unchanged across a power cut");
    vm.kill();
    Ok(())
}

/// `make bench`: the smallest `-m` with which the node still becomes Ready
/// and runs a one-replica Deployment of the test image. Prints one line
/// per size, largest first, and stops at the first that fails.
#[test]
#[ignore]
fn measure_smallest_memory() -> Result<()> {
    let (image, kubectl, kubeconfig) =
        (env_path("LICHEN_IMAGE"), env_path("LICHEN_KUBECTL"), env_path("LICHEN_KUBECONFIG"));
    let one = WEB.replace("replicas: 2", "replicas: 1");
    for mib in [512u32, 384, 320, 288, 256] {
        let dir = workdir(&format!("node-m{mib}"));
        let disk = dir.join("disk.raw");
        disk_copy(&image, &disk, DISK)?;
        let port = free_port();
        let k = Kubectl {
            bin: kubectl.clone(),
            kubeconfig: kubeconfig.clone(),
            server: format!("https://127.0.0.1:{port}"),
        };
        let mut cfg = VmConfig::new(&disk, &dir);
        cfg.memory_mib = mib;
        cfg.forwards = vec![(port, 6443)];
        let mut vm = Vm::start(&cfg)?;
        // Below some size GRUB cannot load the kernel and initramfs
        // (OVMF's memory map): say so at once rather than time out.
        let (which, _) = vm.expect_any(&["lichen-init", "error: out of memory"], BOOT)?;
        if which == 1 {
            println!("[node] -m {mib}: GRUB out of memory loading the kernel and initramfs");
            break;
        }
        let outcome = until_node_ready(&mut vm).and_then(|t| {
            let start = Instant::now();
            k.apply(&one)?;
            rollout(&k)?;
            Ok((t.node_ready, start.elapsed()))
        });
        let used = vm
            .sh("grep -E 'MemTotal|MemAvailable' /proc/meminfo | tr -s ' ' | tr '\\n' ' '", CMD)
            .map(|(o, _)| o)
            .unwrap_or_default();
        vm.kill();
        match outcome {
            Ok((ready, rolled)) => println!(
                "[node] -m {mib}: node Ready {:.1}s after QEMU start, a 1-replica Deployment available {:.1}s after apply ({used})",
                ready.as_secs_f64(),
                rolled.as_secs_f64()
            ),
            Err(e) => {
                println!(
                    "[node] -m {mib}: failed: {} (console: {})",
                    e.to_string().lines().next().unwrap_or(""),
                    dir.join("console.log").display()
                );
                break;
            }
        }
    }
    Ok(())
}
