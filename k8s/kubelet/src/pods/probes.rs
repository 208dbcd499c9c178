//! Probes and lifecycle handlers: exec (CRI `ExecSync`), httpGet and
//! tcpSocket against the pod IP, with upstream's failure messages.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cri::{Cri, api, describe};
use crate::spec::{Container, HttpGetAction, Probe};

/// Resolves a probe port: a number or the name of a container port.
pub fn port(c: &Container, port: &serde_json::Value) -> Result<u16, String> {
    if let Some(n) = port.as_u64() {
        return u16::try_from(n).map_err(|_| format!("invalid port number: {n}"));
    }
    let name = port.as_str().unwrap_or("");
    if let Ok(n) = name.parse::<u16>() {
        return Ok(n);
    }
    c.ports
        .iter()
        .find(|p| p.name.as_deref() == Some(name))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .ok_or_else(|| format!("couldn't find port {name:?} in container {:?}", c.name))
}

pub async fn exec(cri: &Cri, container_id: &str, cmd: &[String], timeout: Duration) -> Result<(), String> {
    let mut rt = cri.runtime.clone();
    let req = api::ExecSyncRequest {
        container_id: container_id.to_owned(),
        cmd: cmd.to_vec(),
        timeout: i64::try_from(timeout.as_secs()).unwrap_or(1).max(1),
    };
    let out = rt.exec_sync(req).await.map_err(|e| describe(&e))?.into_inner();
    if out.exit_code == 0 {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Err(format!("command {:?} exited with {}: {}", cmd.join(" "), out.exit_code, text.trim_end()))
}

pub async fn http_get(host: &str, port: u16, h: &HttpGetAction, timeout: Duration) -> Result<(), String> {
    if h.scheme.as_deref() == Some("HTTPS") {
        // Upstream skips verification; a TCP-level check is what a plain
        // node agent can honestly do without a TLS client here.
        return tcp(host, port, timeout).await;
    }
    let path = h.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into());
    let url = format!("http://{}/{}", join_host(host, port), path.trim_start_matches('/'));
    let work = async {
        let mut s = TcpStream::connect((host, port)).await.map_err(|e| {
            format!("Get \"{url}\": dial tcp {}: connect: {}", join_host(host, port), lower(&e))
        })?;
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: kube-probe/1.37\r\nAccept: */*\r\nConnection: close\r\n",
            join_host(host, port)
        );
        for hd in &h.http_headers {
            req.push_str(&format!("{}: {}\r\n", hd.name, hd.value));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.map_err(|e| format!("Get \"{url}\": {}", lower(&e)))?;
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 8192 {
            let n = s.read(&mut buf).await.map_err(|e| format!("Get \"{url}\": {}", lower(&e)))?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head);
        let code: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("Get \"{url}\": malformed HTTP response"))?;
        if (200..400).contains(&code) {
            Ok(())
        } else {
            Err(format!("HTTP probe failed with statuscode: {code}"))
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
    }
}

pub async fn tcp(host: &str, port: u16, timeout: Duration) -> Result<(), String> {
    let addr = join_host(host, port);
    match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("dial tcp {addr}: connect: {}", lower(&e))),
        Err(_) => Err(format!("dial tcp {addr}: i/o timeout")),
    }
}

fn join_host(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// Go's error texts are lowercase ("connection refused").
fn lower(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset by peer".into(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_lowercase()
        }
    }
}

/// Runs one probe of a container.
pub async fn run(
    cri: &Cri,
    c: &Container,
    container_id: &str,
    pod_ip: &str,
    p: &Probe,
) -> Result<(), String> {
    let timeout = Duration::from_secs(p.timeout().unsigned_abs());
    if let Some(e) = &p.exec {
        return exec(cri, container_id, &e.command, timeout).await;
    }
    if let Some(h) = &p.http_get {
        let host = h.host.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| pod_ip.to_owned());
        return http_get(&host, port(c, &h.port)?, h, timeout).await;
    }
    if let Some(t) = &p.tcp_socket {
        let host = t.host.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| pod_ip.to_owned());
        return tcp(&host, port(c, &t.port)?, timeout).await;
    }
    if p.grpc.is_some() {
        return Err("gRPC probes are not supported by this node yet".into());
    }
    Err("probe has no handler".into())
}

/// The state of one probe of one container instance.
#[derive(Debug, Clone)]
pub struct ProbeState {
    pub container_id: String,
    pub next: Instant,
    pub successes: i64,
    pub failures: i64,
    /// The current verdict (after thresholds).
    pub ok: bool,
    pub last_error: String,
}

impl ProbeState {
    pub fn new(container_id: &str, p: &Probe, started: Instant, initial_ok: bool) -> ProbeState {
        ProbeState {
            container_id: container_id.to_owned(),
            next: started + Duration::from_secs(p.initial_delay_seconds.max(0).unsigned_abs()),
            successes: 0,
            failures: 0,
            ok: initial_ok,
            last_error: String::new(),
        }
    }

    /// Records one result; returns whether the verdict changed.
    pub fn record(&mut self, p: &Probe, result: Result<(), String>) -> bool {
        self.next = Instant::now() + Duration::from_secs(p.period().unsigned_abs());
        let before = self.ok;
        match result {
            Ok(()) => {
                self.failures = 0;
                self.successes += 1;
                if self.successes >= p.success_threshold() {
                    self.ok = true;
                }
            }
            Err(e) => {
                self.successes = 0;
                self.failures += 1;
                self.last_error = e;
                if self.failures >= p.failure_threshold() {
                    self.ok = false;
                }
            }
        }
        before != self.ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ContainerPort;

    #[test]
    fn thresholds() {
        let p = Probe { failure_threshold: Some(2), success_threshold: Some(1), ..Default::default() };
        let mut s = ProbeState::new("c", &p, Instant::now(), true);
        assert!(!s.record(&p, Err("x".into())));
        assert!(s.ok);
        assert!(s.record(&p, Err("y".into())));
        assert!(!s.ok);
        assert_eq!(s.last_error, "y");
        assert!(s.record(&p, Ok(())));
        assert!(s.ok);
    }

    #[test]
    fn named_ports() {
        let c = Container {
            name: "c".into(),
            ports: vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(port(&c, &serde_json::json!("http")), Ok(8080));
        assert_eq!(port(&c, &serde_json::json!(80)), Ok(80));
        assert!(port(&c, &serde_json::json!("nope")).is_err());
    }

    #[tokio::test]
    async fn tcp_and_http_against_loopback() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let code = if req.starts_with("GET /ok ") { "200 OK" } else { "500 Internal Server Error" };
                let _ = s.write_all(format!("HTTP/1.1 {code}\r\nContent-Length: 0\r\n\r\n").as_bytes()).await;
            }
        });
        let t = Duration::from_secs(2);
        assert_eq!(tcp("127.0.0.1", port, t).await, Ok(()));
        let ok = HttpGetAction { path: Some("/ok".into()), ..Default::default() };
        assert_eq!(http_get("127.0.0.1", port, &ok, t).await, Ok(()));
        let bad = HttpGetAction { path: Some("/bad".into()), ..Default::default() };
        assert_eq!(
            http_get("127.0.0.1", port, &bad, t).await,
            Err("HTTP probe failed with statuscode: 500".into())
        );
        // A port nothing listens on (bound then dropped).
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        let e = tcp("127.0.0.1", free, t).await.unwrap_err();
        assert_eq!(e, format!("dial tcp 127.0.0.1:{free}: connect: connection refused"));
    }
}
