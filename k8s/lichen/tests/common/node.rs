//! What the privileged node tests share: a network namespace of the test's
//! own, Debian's containerd with its own config, root, state and socket
//! running inside it, and OCI image tarballs (busybox, a "pause" sandbox
//! image) built from the host's static `/bin/busybox`, so that nothing is
//! pulled from a registry.
//!
//! Needs std, `tempfile`, `serde_json` and `lichen-oci` (which writes the
//! image tarballs; the image builder bakes the same images into the rootfs):
//! include it as `common::node` or with `#[path = "common/node.rs"] mod node;`.
//! Everything here needs root; [`missing_prerequisite`] says why a test
//! should be skipped.
//!
//! Drop order matters: a [`Containerd`] must be dropped before the
//! [`Netns`] it runs in (declare the netns first), and both before the
//! `TempDir` that holds containerd's directory.

#![allow(dead_code, clippy::unwrap_used)] // test support: a failed setup step should panic

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const BUSYBOX: &str = "/bin/busybox";
pub const CONTAINERD: &str = "/usr/bin/containerd";
pub const CTR: &str = "/usr/bin/ctr";
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";
/// The containerd namespace the CRI plugin works in.
pub const K8S_NAMESPACE: &str = "k8s.io";
/// What `/var/www/index.html` holds in the busybox image.
pub const INDEX_HTML: &str = lichen_oci::INDEX_HTML;
/// `PATH` in the images' config.
pub const IMAGE_PATH: &str = lichen_oci::IMAGE_PATH;
/// How long one `ctr` (or `ip`) invocation may take before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long containerd may take to accept connections on its socket.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long containerd gets to exit after SIGTERM before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// `sun_path` is 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Why the node tests cannot run on this machine, if they cannot (not root,
/// or a binary they need is missing).
pub fn missing_prerequisite() -> Option<String> {
    if effective_uid() != Some(0) {
        return Some("not running as root".into());
    }
    let needed = [CONTAINERD, CTR, BUSYBOX, "/usr/sbin/runc", "/usr/bin/nsenter", "/usr/bin/umount"];
    needed.iter().find(|p| !Path::new(p).exists()).map(|p| format!("{p} is missing"))
}

fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

// ---------------------------------------------------------------------------
// Running commands

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub what: String,
}

impl Output {
    /// Asserts exit code 0 and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "{} failed:\nstdout:\n{}\nstderr:\n{}", self.what, self.stdout, self.stderr);
        &self.stdout
    }
}

/// Runs `cmd` with stdin closed, killing it (by its PID) after `timeout`.
/// Never panics, so that `Drop` can use it: a command that cannot be
/// started or times out comes back with code -1 and a note in `stderr`.
pub fn run(mut cmd: Command, timeout: Duration) -> Output {
    let what = describe(&cmd);
    let child = match cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(e) => {
            return Output { code: -1, stdout: String::new(), stderr: format!("cannot start: {e}"), what };
        }
    };
    let c = super::capture(child, None, timeout);
    let (code, note) = match c.code {
        Ok(code) => (code, String::new()),
        Err(why) => (-1, format!("\n({why})")),
    };
    Output { code, stdout: c.stdout, stderr: c.stderr + &note, what }
}

/// Runs `cmd` (at most [`COMMAND_TIMEOUT`]) and panics with its output
/// unless it exits 0; returns stdout.
#[track_caller]
pub fn run_ok(cmd: Command) -> String {
    run(cmd, COMMAND_TIMEOUT).ok().to_string()
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sends `signal` (e.g. "TERM", "KILL") to one process by PID.
fn signal(pid: u32, signal: &str) {
    let _ =
        Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).stderr(Stdio::null()).status();
}

// ---------------------------------------------------------------------------
// Network namespace

/// A named network namespace (`ip netns add`), deleted when dropped.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `lichen-<tag>-<pid>` with `lo` up.
    pub fn create(tag: &str) -> Netns {
        let name = format!("lichen-{tag}-{}", std::process::id());
        let mut add = Command::new("ip");
        add.args(["netns", "add", &name]);
        run_ok(add);
        let ns = Netns { name };
        let mut lo = ns.command("ip");
        lo.args(["link", "set", "lo", "up"]);
        run_ok(lo);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`, the bind mount that pins the namespace.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// A command that runs `program` inside the namespace. Uses
    /// `nsenter --net` rather than `ip netns exec`, which also remounts
    /// /sys and so hides /sys/fs/cgroup from runc. nsenter execs `program`
    /// without forking, so the child's PID is the program's.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        nsenter(&self.path(), program.as_ref())
    }
}

fn nsenter(netns: &Path, program: &OsStr) -> Command {
    let mut cmd = Command::new("nsenter");
    let mut net = std::ffi::OsString::from("--net=");
    net.push(netns);
    cmd.arg(net).arg("--").arg(program);
    cmd
}

impl Drop for Netns {
    fn drop(&mut self) {
        let mut del = Command::new("ip");
        del.args(["netns", "del", &self.name]);
        let out = run(del, COMMAND_TIMEOUT);
        if out.code != 0 {
            eprintln!("{}: {}", out.what, out.stderr.trim());
        }
    }
}

// ---------------------------------------------------------------------------
// Images

/// Writes an OCI image-layout tarball (`ctr images import` reads it) of
/// the host's static busybox with every applet linked in `/bin`, named
/// `reference` (fully qualified, as CRI normalizes it:
/// `docker.io/lichen/busybox:test`). Config: `Cmd: ["sh"]`.
pub fn build_busybox_image(out_tar: &Path, reference: &str) {
    write_image(out_tar, reference, lichen_oci::busybox_config());
}

/// Like [`build_busybox_image`] (same layer), but for a pod sandbox: it
/// only sleeps, as long as busybox's `sleep` allows (2^31-1 s, ~68 years).
pub fn build_pause_image(out_tar: &Path, reference: &str) {
    write_image(out_tar, reference, lichen_oci::pause_config());
}

/// The busybox layer with an image config of the caller's (a distinct
/// config makes a distinct image ID).
pub fn build_image_with_config(out_tar: &Path, reference: &str, config: serde_json::Value) {
    write_image(out_tar, reference, config);
}

/// The busybox layer (see [`lichen_oci::busybox_layer`]) of the host's
/// `/bin/busybox` and its `--list`, built once per test process.
fn busybox_layer() -> &'static lichen_oci::Layer {
    static LAYER: OnceLock<lichen_oci::Layer> = OnceLock::new();
    LAYER.get_or_init(|| {
        let busybox =
            fs::read(BUSYBOX).unwrap_or_else(|e| panic!("reading {BUSYBOX} (Debian busybox-static): {e}"));
        let mut list = Command::new(BUSYBOX);
        list.arg("--list");
        let applets = lichen_oci::parse_applets(&run_ok(list));
        lichen_oci::busybox_layer(&busybox, &applets, INDEX_HTML).unwrap_or_else(|e| panic!("{BUSYBOX}: {e}"))
    })
}

fn write_image(out_tar: &Path, reference: &str, config: serde_json::Value) {
    let platform = lichen_oci::Platform::host().unwrap();
    let tar =
        lichen_oci::image_tar(reference, platform, config, busybox_layer()).unwrap_or_else(|e| panic!("{e}"));
    fs::write(out_tar, tar).unwrap_or_else(|e| panic!("writing {}: {e}", out_tar.display()));
}

// ---------------------------------------------------------------------------
// containerd

/// Debian's containerd running inside a [`Netns`] with everything of its
/// own under one directory: config, root, state, sockets, runc state, CNI
/// config dir and its log.
///
/// Pod network namespaces that CNI creates for sandboxes are bind mounts
/// under /var/run/netns/cni-*, outside that directory; removing them is
/// the agent's job (StopPodSandbox/RemovePodSandbox), not this harness's,
/// which could not tell a leftover of its own from one of another test.
/// Likewise host-local IPAM keeps its leases in /var/lib/cni/networks
/// unless the conflist sets `dataDir`: tests should set it under
/// [`Containerd::dir`].
pub struct Containerd {
    dir: PathBuf,
    socket: PathBuf,
    netns: PathBuf,
    child: Option<Child>,
    started_in: Duration,
}

impl Containerd {
    /// Writes `<dir>/config.toml` and starts containerd in `netns`; returns
    /// once its socket accepts connections. `sandbox_image` is the CRI
    /// plugin's pod sandbox image (import it before running pods).
    pub fn start(netns: &Netns, dir: &Path, sandbox_image: &str) -> Containerd {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let dir = dir.canonicalize().unwrap_or_else(|e| panic!("resolving {}: {e}", dir.display()));
        let socket = dir.join("containerd.sock");
        let longest = dir.join("containerd.sock.ttrpc");
        assert!(
            longest.as_os_str().len() <= MAX_SOCKET_PATH,
            "containerd dir {} is too long for unix sockets ({} > {MAX_SOCKET_PATH} bytes for {}): \
             use a shorter one, e.g. tempfile::Builder::new().tempdir_in(\"/tmp\")",
            dir.display(),
            longest.as_os_str().len(),
            longest.display()
        );
        for sub in ["root", "state", "runc", "cni/net.d"] {
            let sub = dir.join(sub);
            fs::create_dir_all(&sub).unwrap_or_else(|e| panic!("creating {}: {e}", sub.display()));
        }
        let config = dir.join("config.toml");
        fs::write(&config, config_toml(&dir, &socket, sandbox_image))
            .unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));
        let mut c = Containerd { dir, socket, netns: netns.path(), child: None, started_in: Duration::ZERO };
        c.spawn();
        c
    }

    /// The directory everything of this containerd lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The gRPC socket (CRI and containerd's own API).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Where the CRI plugin looks for a CNI conflist (empty at first).
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.dir.join("cni/net.d")
    }

    /// runc's state directory for CRI containers (and for `ctr run
    /// --runc-root`), instead of the machine's /run/containerd/runc.
    pub fn runc_root(&self) -> PathBuf {
        self.dir.join("runc")
    }

    /// containerd's stdout and stderr, appended over restarts.
    pub fn log(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    /// The PID of the running containerd, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How long the last start took until the socket accepted connections.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// `ctr --address <socket> -n k8s.io`, ready for a subcommand. Runs on
    /// the host side: it only talks to the socket.
    pub fn ctr(&self) -> Command {
        let mut cmd = Command::new(CTR);
        cmd.arg("--address").arg(&self.socket).args(["-n", K8S_NAMESPACE]);
        cmd
    }

    /// Like [`Containerd::ctr`] but inside the netns (for `ctr run`).
    pub fn ctr_in_netns(&self) -> Command {
        let mut cmd = nsenter(&self.netns, OsStr::new(CTR));
        cmd.arg("--address").arg(&self.socket).args(["-n", K8S_NAMESPACE]);
        cmd
    }

    /// Imports an image tarball into namespace k8s.io (and unpacks it for
    /// the default snapshotter, overlayfs). Names come from the index's
    /// `io.containerd.image.name` annotations.
    pub fn import(&self, tar: &Path) {
        let mut cmd = self.ctr();
        cmd.args(["images", "import"]).arg(tar);
        run_ok(cmd);
    }

    /// Image names in namespace k8s.io. Besides the imported names this
    /// lists `sha256:<config digest>` entries: the CRI plugin adds one per
    /// image it has seen (its image ID), a sign that CRI knows the image.
    pub fn images(&self) -> Vec<String> {
        let mut cmd = self.ctr();
        cmd.args(["images", "ls", "-q"]);
        run_ok(cmd).lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
    }

    /// Stops containerd: SIGTERM by PID, SIGKILL after [`STOP_TIMEOUT`].
    /// Shims (and so containers) keep running, as on a real node.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        signal(child.id(), "TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("containerd (pid {}) ignored SIGTERM for {STOP_TIMEOUT:?}: SIGKILL", child.id());
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops containerd (if it runs) and starts it again on the same dir.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Whether containerd is still running (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.log().display()));
        let mut cmd = nsenter(&self.netns, OsStr::new(CONTAINERD));
        cmd.arg("--config")
            .arg(self.dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let t = Instant::now();
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", describe(&cmd)));
        loop {
            if UnixStream::connect(&self.socket).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("containerd exited ({status}) before serving:\n{}", self.log_tail());
            }
            if t.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "containerd did not accept connections on {} within {START_TIMEOUT:?}:\n{}",
                    self.socket.display(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.started_in = t.elapsed();
        self.child = Some(child);
    }

    /// The last lines of containerd's log.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Kills and removes every task and container in every namespace, while
    /// containerd still runs (so it unmounts rootfs and removes snapshots).
    fn remove_all_containers(&self) {
        let ctr = |ns: &str, args: &[&str]| {
            let mut cmd = Command::new(CTR);
            cmd.arg("--address").arg(&self.socket).args(["-n", ns]).args(args);
            let out = run(cmd, Duration::from_secs(20));
            if out.code != 0 {
                eprintln!("cleanup: {} failed: {}", out.what, out.stderr.trim());
            }
            out.stdout.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect::<Vec<_>>()
        };
        for ns in ctr("default", &["namespaces", "ls", "-q"]) {
            for task in ctr(&ns, &["tasks", "ls", "-q"]) {
                ctr(&ns, &["tasks", "kill", "-a", "-s", "SIGKILL", &task]);
                ctr(&ns, &["tasks", "rm", "-f", &task]);
            }
            let containers = ctr(&ns, &["containers", "ls", "-q"]);
            if !containers.is_empty() {
                let mut args = vec!["containers", "rm"];
                args.extend(containers.iter().map(String::as_str));
                ctr(&ns, &args);
            }
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("containerd log ({}):\n{}", self.log().display(), self.log_tail());
        }
        if self.is_running() {
            self.remove_all_containers();
        }
        self.stop();
        runc_delete_all(&self.runc_root());
        kill_shims(&self.socket);
        unmount_under(&self.dir);
    }
}

/// containerd's config: nothing at a default path, so that it cannot clash
/// with the machine's containerd or another test's.
fn config_toml(dir: &Path, socket: &Path, sandbox_image: &str) -> String {
    let q = |p: &Path| toml_string(&p.to_string_lossy());
    let cri = r#"plugins."io.containerd.grpc.v1.cri""#;
    format!(
        r#"version = 2
root = {root}
state = {state}
# Plugins that would want /opt/containerd or file systems this host lacks.
# (Not io.containerd.runtime.v1.linux: the tasks service of 1.6 needs it.)
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = {grpc}

[ttrpc]
  address = {ttrpc}

[debug]
  address = ""
  level = "{level}"

[metrics]
  address = ""

[plugins."io.containerd.monitor.v1.cgroups"]
  no_prometheus = true

[{cri}]
  sandbox_image = {sandbox}
  restrict_oom_score_adj = {restrict_oom}
  # Pod network namespaces under the state dir (cleaned with it), not in
  # the machine's /var/run/netns.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.cni]
  bin_dir = {cni_bin}
  conf_dir = {cni_conf}

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = {runc_root}
  BinaryName = {runc_binary}
"#,
        root = q(&dir.join("root")),
        state = q(&dir.join("state")),
        grpc = q(socket),
        ttrpc = q(&dir.join("containerd.sock.ttrpc")),
        sandbox = toml_string(sandbox_image),
        cni_bin = toml_string(CNI_BIN_DIR),
        cni_conf = q(&dir.join("cni/net.d")),
        runc_root = q(&dir.join("runc")),
        // Lowering oom_score_adj (runc sets -998 on sandboxes) needs
        // CAP_SYS_RESOURCE, which some CI sandboxes withhold even from root.
        restrict_oom = !has_cap_sys_resource(),
        // LICHEN_RUNC=<wrapper> runs runc through a wrapper (e.g. with --debug).
        runc_binary = toml_string(&std::env::var("LICHEN_RUNC").unwrap_or_else(|_| "runc".into())),
        // LICHEN_CONTAINERD_LOG=debug shows runc's and the shims' errors.
        level = std::env::var("LICHEN_CONTAINERD_LOG").unwrap_or_else(|_| "info".into()),
    )
}

/// Whether this process holds CAP_SYS_RESOURCE (bit 24 of CapEff).
fn has_cap_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

/// A TOML basic string (JSON string escapes are valid TOML ones).
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// When containerd is gone with containers still running: `runc delete
/// --force` for each container runc knows under `runc_root/<namespace>`
/// (the shims put their state there), which kills the container's
/// processes and removes its cgroups.
fn runc_delete_all(runc_root: &Path) {
    let Ok(namespaces) = fs::read_dir(runc_root) else { return };
    for ns in namespaces.filter_map(Result::ok).map(|e| e.path()) {
        let Ok(containers) = fs::read_dir(&ns) else { continue };
        for id in containers.filter_map(Result::ok).map(|e| e.file_name()) {
            let mut cmd = Command::new("runc");
            cmd.arg("--root").arg(&ns).args(["delete", "--force"]).arg(&id);
            let out = run(cmd, Duration::from_secs(20));
            if out.code == 0 {
                eprintln!("cleanup: {}", out.what);
            } else {
                eprintln!("cleanup: {} failed: {}", out.what, out.stderr.trim());
            }
        }
    }
}

/// Kills the shims of the containerd serving `socket` (they outlive it),
/// their children (the containers' init processes) first, and removes the
/// shims' sockets under /run/containerd/s.
fn kill_shims(socket: &Path) {
    for (pid, args) in shims_of(socket) {
        for child in children(pid) {
            signal(child, "KILL");
        }
        signal(pid, "KILL");
        eprintln!("cleanup: killed shim {pid}: {}", args.join(" "));
        let flag = |name: &str| args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone());
        if let (Some(ns), Some(id)) = (flag("-namespace"), flag("-id")) {
            let _ = fs::remove_file(shim_socket(socket, &ns, &id));
        }
    }
}

/// Where a shim of the containerd serving `socket` listens, for the task
/// `id` in namespace `ns` (containerd 1.6 `runtime/v2/shim.SocketAddress`:
/// the sha256 of `<address>/<ns>/<id>` under /run/containerd/s). A killed
/// shim leaves it behind.
pub fn shim_socket(socket: &Path, ns: &str, id: &str) -> PathBuf {
    let hex = lichen_oci::sha256_hex(format!("{}/{ns}/{id}", socket.display()).as_bytes());
    Path::new("/run/containerd/s").join(hex)
}

/// The shim processes (PID, command line) started by the containerd that
/// serves `socket`: their command line holds `-address <socket>`.
pub fn shims_of(socket: &Path) -> Vec<(u32, Vec<String>)> {
    let socket = socket.to_string_lossy();
    let mut shims = processes();
    shims.retain(|(_, args)| {
        args.first().is_some_and(|a| a.contains("containerd-shim"))
            && args.windows(2).any(|w| w[0] == "-address" && w[1] == *socket)
    });
    shims
}

/// Every process's PID and command line.
fn processes() -> Vec<(u32, Vec<String>)> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args = raw.split(|&b| b == 0).filter(|a| !a.is_empty());
            Some((pid, args.map(|a| String::from_utf8_lossy(a).into_owned()).collect()))
        })
        .collect()
}

/// The PIDs whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent)
        })
        .collect()
}

/// Mount points at or under `dir`, deepest (and latest) first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    found.reverse();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|o| o.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(o)) => {
                out.push((o[0] - b'0') * 64 + (o[1] - b'0') * 8 + (o[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Best effort: lazily unmounts (MNT_DETACH) whatever is still mounted at
/// or under `dir` (snapshotter overlays, sandbox shm).
pub fn unmount_under(dir: &Path) {
    for _ in 0..3 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return;
        }
        for m in mounts {
            let mut cmd = Command::new("umount");
            cmd.arg("-l").arg(&m);
            let out = run(cmd, COMMAND_TIMEOUT);
            if out.code != 0 {
                eprintln!("cleanup: {} failed: {}", out.what, out.stderr.trim());
            }
        }
    }
    let left = mounts_under(dir);
    if !left.is_empty() {
        eprintln!("cleanup: still mounted under {}: {left:?}", dir.display());
    }
}

/// Reads a file or panics saying which.
pub fn read_bytes(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
