//! What the host tests of lichen-net share: the real API server,
//! in-process on an in-memory store.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use lichen_client::Client;

/// An API server on a fresh in-memory store and a client of it acting as
/// `user` (a member of `system:masters`). Keep the server alive as long as
/// the client is used.
pub fn api_server(user: &str) -> (lichen_apiserver::Server, Client) {
    let store: Arc<dyn lichen_store::Store> = Arc::new(lichen_store::MemoryStore::new());
    let opts = lichen_apiserver::Options::new(lichen_apiserver::version::Info::new("0.0.0", "test"));
    let server = lichen_apiserver::Server::new(store, opts).unwrap();
    let client = Client::from_service(server.local(lichen_apiserver::Identity::master(user)));
    (server, client)
}

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The host's static busybox: the "pods" serve and fetch with it.
pub const BUSYBOX: &str = "/bin/busybox";

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The first of `bins` (program, an argument it succeeds with) that does
/// not run, as a skip reason.
pub fn missing_binary(bins: &[(&str, &str)]) -> Option<String> {
    bins.iter()
        .find(|(bin, arg)| !Command::new(bin).arg(arg).output().is_ok_and(|o| o.status.success()))
        .map(|(bin, _)| format!("`{bin}` does not run"))
}

/// Runs `args`, which must succeed; its stdout.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace of the test's own (`ip netns add`, `lo` up),
/// deleted on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn new(name: String) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(&["ip", "netns", "add", &name]);
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns(name)
    }

    /// `ip -n <ns> <args>`; its stdout.
    pub fn ip(&self, args: &str) -> String {
        let mut v = vec!["ip", "-n", &self.0];
        v.extend(args.split_whitespace());
        run(&v)
    }

    /// `ip netns exec <ns> <args>`; its stdout.
    pub fn exec(&self, args: &str) -> String {
        let mut v = vec!["ip", "netns", "exec", &self.0];
        v.extend(args.split_whitespace());
        run(&v)
    }

    pub fn sysctl(&self, kv: &str) {
        self.exec(&format!("sysctl -qw {kv}"));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// A child process killed on drop.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `f` every 50 ms until it holds; how long that took. Panics after
/// `limit`.
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

/// An `nft` that runs inside namespace `ns` (a script in `dir`), for the
/// `nft` setting of the proxy, NetworkPolicy and overlay.
pub fn nft_in(ns: &Netns, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join(format!("nft-{}", ns.0));
    std::fs::write(&path, format!("#!/bin/sh\nexec ip netns exec {} nft \"$@\"\n", ns.0)).unwrap();
    run(&["chmod", "+x", path.to_str().unwrap()]);
    path
}

/// `GET <path>` over HTTP/1.0 to `host:port` from namespace `ns`, sent
/// with busybox `nc -w <wait_secs>` (Debian's static busybox `wget`
/// crashes on some kernels): the trimmed body of a 200 answer, or what
/// came back instead.
pub async fn http_get(
    ns: &str,
    host: &str,
    port: &str,
    path: &str,
    wait_secs: u32,
) -> Result<String, String> {
    use tokio::io::AsyncWriteExt;
    let wait = wait_secs.to_string();
    let mut child = tokio::process::Command::new("ip")
        .args(["netns", "exec", ns, BUSYBOX, "nc", "-w", &wait, host, port])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).await;
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200") => {
            Ok(body.trim().to_owned())
        }
        _ => Err(format!("{} {}", text.trim(), String::from_utf8_lossy(&out.stderr).trim())),
    }
}
