//! What the host tests of `lichen server` share: a server of their own
//! (fresh data dir, a loopback port the server picks itself, killed by PID
//! when dropped) and the real kubectl (`LICHEN_KUBECTL`, set by `make test`)
//! with a fresh HOME and discovery cache per server.

#![allow(dead_code, clippy::unwrap_used)] // shared by several test crates; a failed setup step should panic

pub mod node;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// How long one kubectl or python invocation may take before the test
/// fails (and the process is killed) instead of hanging.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `lichen server` with its own data dir and scratch space.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub data: PathBuf,
    dir: tempfile::TempDir,
    /// How a node server is started again (`None`: the plain server).
    launcher: Option<Box<Launcher>>,
    /// The network namespace kubectl must run in.
    netns: Option<PathBuf>,
}

type Launcher = dyn Fn(&Path) -> Command + Send;

impl Server {
    /// Starts a server with the controllers (no agent) and `extra` flags.
    pub fn start_with_controllers(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (child, port) = spawn_args(&data, extra);
        Server { child: Some(child), port, data, dir, launcher: None, netns: None }
    }

    /// Starts an API server (no controllers, no agent) on a fresh data dir.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (child, port) = spawn(&data);
        Server { child: Some(child), port, data, dir, launcher: None, netns: None }
    }

    /// Starts a server with the agent inside a network namespace: `cmd`
    /// runs the lichen binary there (e.g. `nsenter --net=…`), `args` are
    /// the agent flags. kubectl runs in the namespace too.
    pub fn start_node(cmd: impl Fn() -> Command + Send + 'static, args: &[String], netns: &Path) -> Server {
        Server::start_node_bound(cmd, "127.0.0.1:0", args, netns)
    }

    /// [`Server::start_node`] serving on `bind`.
    pub fn start_node_bound(
        cmd: impl Fn() -> Command + Send + 'static,
        bind: &str,
        args: &[String],
        netns: &Path,
    ) -> Server {
        let bind = bind.to_owned();
        let dir = tempfile::Builder::new().prefix("lichen-node").tempdir_in("/tmp").unwrap();
        let data = dir.path().join("data");
        let extra: Vec<String> = args.to_vec();
        let launcher = Box::new(move |data: &Path| {
            let mut c = cmd();
            c.args(["server", "--data-dir"]).arg(data).args(["--bind", &bind]).args(&extra);
            c
        });
        let (child, port) = spawn_with(&launcher, &data);
        Server {
            child: Some(child),
            port,
            data,
            dir,
            launcher: Some(launcher),
            netns: Some(netns.to_path_buf()),
        }
    }

    /// Starts a server on an existing data dir (kept by the caller).
    pub fn start_at(data: &Path) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let (child, port) = spawn(data);
        Server { child: Some(child), port, data: data.to_path_buf(), dir, launcher: None, netns: None }
    }

    /// The server's process id (0 when stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Kills the server (by its PID) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server and starts it again on the same data dir, on a new
    /// port (the admin kubeconfig is rewritten for it).
    pub fn restart(&mut self) {
        self.stop();
        let (child, port) = match &self.launcher {
            Some(l) => spawn_with(l, &self.data),
            None => spawn(&self.data),
        };
        self.child = Some(child);
        self.port = port;
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.data.join("pki/admin.kubeconfig")
    }

    /// A path in this server's scratch directory (not the data dir).
    pub fn path(&self, name: &str) -> PathBuf {
        let work = self.dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        work.join(name)
    }

    /// Writes a scratch file and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// kubectl as the cluster admin, with HOME and the discovery cache in
    /// this server's scratch directory; `None` without `LICHEN_KUBECTL`.
    pub fn kubectl(&self) -> Option<Kubectl> {
        Some(Kubectl {
            bin: kubectl_bin()?,
            kubeconfig: self.kubeconfig(),
            home: self.path("home"),
            env: Vec::new(),
            netns: self.netns.clone(),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(data: &Path) -> (Child, u16) {
    spawn_args(data, &["--disable-controllers"])
}

/// The API server alone (with `extra` flags).
fn spawn_args(data: &Path, extra: &[&str]) -> (Child, u16) {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let launcher = move |data: &Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lichen"));
        c.args(["server", "--disable-agent", "--data-dir"])
            .arg(data)
            .args(["--bind", "127.0.0.1:0"])
            .args(&extra);
        c
    };
    spawn_with(&launcher, data)
}

/// The agents' hard eviction thresholds in tests (`--eviction-hard`). The
/// host's disk may be fuller than upstream's 10 %, as a CI machine whose
/// build cache shares it, and a DiskPressure taint would keep every pod
/// Pending; what these tests test is not the host's disk.
pub const TEST_EVICTION_HARD: &str = "memory.available<100Mi,nodefs.available<1Gi";

/// The lichen binary of this build (for launchers that wrap it).
pub fn lichen_bin() -> &'static str {
    env!("CARGO_BIN_EXE_lichen")
}

/// A launcher of this build's lichen inside the network namespace at
/// `netns` (`nsenter --net`), logging at `LICHEN_TEST_LOG` (info).
pub fn lichen_in_netns(netns: &Path) -> impl Fn() -> Command + Clone + Send + 'static {
    let netns = netns.to_path_buf();
    move || {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", netns.display())).arg("--").arg(lichen_bin());
        c.env("LICHEN_LOG", std::env::var("LICHEN_TEST_LOG").unwrap_or_else(|_| "info".into()));
        c
    }
}

fn spawn_with(launcher: &dyn Fn(&Path) -> Command, data: &Path) -> (Child, u16) {
    let mut child = launcher(data).stderr(Stdio::piped()).spawn().expect("lichen binary");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if line.contains("server ready")
                && let Some(port) = line
                    .split_once("(port ")
                    .and_then(|(_, rest)| rest.split(')').next())
                    .and_then(|p| p.parse::<u16>().ok())
            {
                let _ = tx.send(port);
            }
        }
    });
    let t = Instant::now();
    let port = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(port) => port,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lichen server did not get ready");
        }
    };
    eprintln!("server ready on port {port} after {} ms", t.elapsed().as_millis());
    (child, port)
}

/// The kubectl to test with, from `LICHEN_KUBECTL`.
pub fn kubectl_bin() -> Option<PathBuf> {
    let k = std::env::var_os("LICHEN_KUBECTL").map(PathBuf::from);
    if k.is_none() {
        eprintln!("LICHEN_KUBECTL not set: kubectl test skipped (make test sets it)");
    }
    k
}

/// A server and admin kubectl for one test, or `None` (the test is skipped
/// with a note) without `LICHEN_KUBECTL`.
pub fn setup() -> Option<(Server, Kubectl)> {
    kubectl_bin()?;
    let server = Server::start();
    let k = server.kubectl()?;
    Some((server, k))
}

/// How one kubectl invocation is made.
#[derive(Clone)]
pub struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: PathBuf,
    env: Vec<(String, String)>,
    /// Run inside this network namespace (`nsenter --net=`).
    netns: Option<PathBuf>,
}

impl Kubectl {
    /// The same kubectl with another kubeconfig (and its own cache).
    pub fn with_kubeconfig(&self, kubeconfig: &Path, home: &Path) -> Kubectl {
        Kubectl { kubeconfig: kubeconfig.to_path_buf(), home: home.to_path_buf(), ..self.clone() }
    }

    pub fn with_env(&self, k: &str, v: &str) -> Kubectl {
        let mut c = self.clone();
        c.env.push((k.into(), v.into()));
        c
    }

    fn command(&self, args: &[&str]) -> Command {
        std::fs::create_dir_all(&self.home).unwrap();
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.display())).arg("--").arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.home.join(".kube/cache"))
            .args(args)
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .env_remove("KUBE_EDITOR")
            .env_remove("EDITOR");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs kubectl to completion (at most [`COMMAND_TIMEOUT`]).
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_stdin(args, "")
    }

    /// Runs kubectl with `stdin` on its standard input.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Out {
        let what = format!("kubectl {}", args.join(" "));
        run_with_timeout(self.command(args), stdin, what, COMMAND_TIMEOUT)
    }

    /// Starts a long-running kubectl (`get -w`, `wait`); its stdout lines
    /// arrive on the receiver. The child is killed when the guard drops.
    pub fn spawn(&self, args: &[&str]) -> (Running, Receiver<String>) {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut s);
            s
        });
        (Running { child, stderr: Some(err) }, rx)
    }
}

/// A kubectl started with [`Kubectl::spawn`].
pub struct Running {
    child: Child,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    /// Waits up to `timeout` for the process to exit: its exit code, or
    /// `None` if it is still running.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process (by PID) and returns what it wrote to stderr.
    pub fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a child printed, and its exit code or why there is none.
pub struct Captured {
    /// The exit code (-1 for a signal), or why the child has none
    /// ("still running after …, killed").
    pub code: Result<i32, String>,
    pub stdout: String,
    pub stderr: String,
}

/// Reads a spawned child's stdout and stderr (both piped) to the end,
/// writing `stdin` to it first if given (stdin piped), and kills it after
/// `timeout`.
pub fn capture(mut child: Child, stdin: Option<String>, timeout: Duration) -> Captured {
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        std::thread::spawn(move || {
            let _ = input.write_all(text.as_bytes());
        });
    }
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut b);
            }
            String::from_utf8_lossy(&b).into_owned()
        })
    };
    let out = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status.code().unwrap_or(-1)),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("still running after {timeout:?}, killed"));
            }
            Err(e) => break Err(format!("wait failed: {e}")),
        }
    };
    Captured { code, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() }
}

/// Runs `cmd` with `stdin`, killing it after `timeout`.
pub fn run_with_timeout(mut cmd: Command, stdin: &str, what: String, timeout: Duration) -> Out {
    let child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let c = capture(child, Some(stdin.to_string()), timeout);
    let code =
        c.code.unwrap_or_else(|why| panic!("{what}: {why}\nstdout:\n{}\nstderr:\n{}", c.stdout, c.stderr));
    Out { code, stdout: c.stdout, stderr: c.stderr, what }
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub what: String,
}

impl Out {
    /// Asserts exit code 0 and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "{} failed:\nstdout:\n{}\nstderr:\n{}", self.what, self.stdout, self.stderr);
        &self.stdout
    }

    /// Asserts a non-zero exit code and returns stderr.
    #[track_caller]
    pub fn fails(&self) -> &str {
        assert_ne!(
            self.code, 0,
            "{} should have failed:\nstdout:\n{}\nstderr:\n{}",
            self.what, self.stdout, self.stderr
        );
        &self.stderr
    }

    /// Asserts success and that stdout is exactly `want` (plus a newline).
    #[track_caller]
    pub fn prints(&self, want: &str) {
        let got = self.ok();
        assert_eq!(got.trim_end_matches('\n'), want, "{}", self.what);
    }

    /// The HTTP responses a `-v=6` run logged: (verb, url, status line).
    pub fn responses(&self) -> Vec<(String, String, String)> {
        self.stderr
            .lines()
            .filter(|l| l.contains("\"Response\""))
            .filter_map(|l| Some((field(l, "verb")?, field(l, "url")?, field(l, "status")?)))
            .collect()
    }
}

/// `name="value"` in a klog line.
fn field(line: &str, name: &str) -> Option<String> {
    let start = line.find(&format!(" {name}=\""))? + name.len() + 3;
    let rest = &line[start..];
    Some(rest[..rest.find('"')?].to_string())
}

/// Table output split into rows of whitespace-separated cells (header first).
pub fn table(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

/// Whether `s` looks like kubectl's HumanDuration for a young object
/// (`0s`..`119s`, `2m`, `2m5s`).
pub fn is_age(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    match s.strip_suffix('s') {
        Some(secs) if digits(secs) => true,
        Some(ms) => ms.split_once('m').is_some_and(|(m, s)| digits(m) && digits(s)),
        None => s.strip_suffix('m').is_some_and(digits),
    }
}

/// Polls `f` until it is true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// GET over TLS without a client certificate, verifying the server against
/// the cluster CA: (status code, body).
pub fn get_anonymous(data: &Path, port: u16, path: &str) -> (u16, String) {
    tls_get(data, port, path, false)
}

/// GET over TLS with the admin client certificate: (status code, body).
pub fn get_as_admin(data: &Path, port: u16, path: &str) -> (u16, String) {
    tls_get(data, port, path, true)
}

fn tls_get(data: &Path, port: u16, path: &str, admin: bool) -> (u16, String) {
    let pki = data.join("pki");
    let ca = std::fs::read(pki.join("ca.crt")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let builder =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let cfg = if admin {
        let cert = std::fs::read(pki.join("admin.crt")).unwrap();
        let chain = CertificateDer::pem_slice_iter(&cert).map(Result::unwrap).collect();
        let key = PrivateKeyDer::from_pem_file(pki.join("admin.key")).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    write!(tls, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

/// A client certificate for `user` (groups `orgs`) signed by this server's
/// CA, as (certificate file, key file) in the server's scratch directory.
/// The CA is loaded from a copy, so the server's own files stay untouched.
pub fn client_cert(server: &Server, user: &str, orgs: &[&str]) -> (PathBuf, PathBuf) {
    let copy = server.path(&format!("pki-{user}"));
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["ca.crt", "ca.key", "sa.key", "sa.pub"] {
        std::fs::copy(server.data.join("pki").join(f), copy.join(f)).unwrap();
    }
    let opts = lichen_pki::PkiOptions::new(&copy, "scratch");
    let (pki, _) = lichen_pki::Pki::load_or_create(&opts).unwrap();
    let pair = pki.issue_client(user, orgs, Duration::from_secs(3600), std::time::SystemTime::now()).unwrap();
    let (cert, key) = (server.path(&format!("{user}.crt")), server.path(&format!("{user}.key")));
    std::fs::write(&cert, pair.cert_pem).unwrap();
    std::fs::write(&key, pair.key_pem).unwrap();
    (cert, key)
}

/// kubectl as `user` (groups `orgs`): a copy of the admin kubeconfig with
/// that user's certificate, and a cache of its own.
pub fn user_kubectl(server: &Server, admin: &Kubectl, user: &str, orgs: &[&str]) -> Kubectl {
    let (cert, key) = client_cert(server, user, orgs);
    let kubeconfig = server.path(&format!("{user}.kubeconfig"));
    std::fs::copy(server.kubeconfig(), &kubeconfig).unwrap();
    let k = admin.with_kubeconfig(&kubeconfig, &server.path(&format!("home-{user}")));
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    k.run(&[
        "config",
        "set-credentials",
        user,
        "--client-certificate",
        cert,
        "--client-key",
        key,
        "--embed-certs",
    ])
    .ok();
    let context = k.run(&["config", "current-context"]);
    k.run(&["config", "set-context", context.ok().trim(), "--user", user]).ok();
    k
}
