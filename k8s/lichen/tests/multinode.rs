//! Issue 7's acceptance test: one `lichen server` and two `lichen agent`s,
//! each in a network namespace of the test's own with its own Debian
//! containerd, joined by a router namespace the test makes: the server and
//! agent a1 share one L2 segment (10.77.0.0/24), agent a2 sits on another
//! (10.78.0.0/24) behind the router, so the overlay is tested across an L2
//! and a routed hop. The agents join with the cluster token; a wrong token
//! and a server with another CA are refused. Then, with the real kubectl:
//! a Deployment of 3 spread over the nodes behind a ClusterIP Service,
//! reached from a client pod on each node by name through the cluster DNS
//! (all three backends answer); the NodePort on every node; a headless
//! Service's DNS answer; a NetworkPolicy allowing one client and not
//! another; a removed pod leaving the rules; an agent stopped for good and
//! its Node deleted leaving no route or FDB entry on the others.
//!
//! Needs root, containerd, runc, nft and LICHEN_KUBECTL; skipped otherwise.

#![allow(clippy::unwrap_used)] // a failed setup step should panic

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::node::{self, Containerd, Netns};
use common::{Kubectl, Server};

const BUSYBOX: &str = "docker.io/lichen/busybox:test";
const PAUSE: &str = "docker.io/lichen/pause:test";
const SERVER_IP: &str = "10.77.0.1";

/// One machine: a namespace, its containerd, its directories.
struct Machine {
    name: &'static str,
    ip: &'static str,
    dir: PathBuf,
    containerd: Containerd,
    netns: Netns,
}

impl Machine {
    fn command(&self, program: &str) -> Command {
        self.netns.command(program)
    }

    /// The agent flags every node shares.
    fn agent_args(&self) -> Vec<String> {
        let p = |s: &str| self.dir.join(s).display().to_string();
        vec![
            "--containerd".into(),
            self.containerd.socket().display().to_string(),
            "--agent-dir".into(),
            p("agent"),
            "--pod-log-dir".into(),
            p("pods"),
            "--cni-conf-dir".into(),
            self.containerd.cni_conf_dir().display().to_string(),
            "--cni-ipam-dir".into(),
            p("ipam"),
            "--cgroup-root".into(),
            format!("/lichen-mn-{}-{}", std::process::id(), self.name),
            "--agent-port".into(),
            "0".into(),
            "--node-name".into(),
            self.name.into(),
            "--node-ip".into(),
            self.ip.into(),
            "--eviction-hard".into(),
            common::TEST_EVICTION_HARD.into(),
        ]
    }

    fn lichen(&self) -> Command {
        common::lichen_in_netns(&self.netns.path())()
    }

    fn sh(&self, script: &str) -> node::Output {
        let mut c = self.command("sh");
        c.args(["-c", script]);
        node::run(c, Duration::from_secs(30))
    }
}

/// A standalone agent process; killed on drop.
struct Agent {
    child: Option<Child>,
    log: PathBuf,
}

impl Agent {
    fn start(m: &Machine, token: &str) -> Agent {
        let log = m.dir.join("agent.log");
        let mut c = m.lichen();
        c.args(["agent", "--server", &format!("https://{SERVER_IP}:6443"), "--token", token])
            .args(m.agent_args())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        Agent { child: Some(c.spawn().unwrap()), log }
    }

    /// SIGTERM, then SIGKILL after 15 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Everything, in drop order: processes, then containerd (inside each
/// Machine), then namespaces, then files.
struct Cluster {
    agents: Vec<Agent>,
    server: Server,
    kubectl: Kubectl,
    machines: Vec<Machine>,
    _router: Netns,
    _tmp: tempfile::TempDir,
}

fn ok(mut c: Command) -> String {
    let what = format!("{c:?}");
    let out = c.output().unwrap();
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(ns: &Netns, args: &str) {
    let mut c = ns.command("ip");
    c.args(args.split_whitespace());
    ok(c);
}

fn sysctl(ns: &Netns, kv: &str) {
    let mut c = ns.command("sysctl");
    c.args(["-qw", kv]);
    ok(c);
}

fn setup() -> Option<Cluster> {
    if let Some(why) = node::missing_prerequisite() {
        eprintln!("multinode test skipped: {why}");
        return None;
    }
    if !Command::new("nft").arg("--version").output().is_ok_and(|o| o.status.success()) {
        eprintln!("multinode test skipped: nft does not run");
        return None;
    }
    common::kubectl_bin()?;
    let tmp = tempfile::Builder::new().prefix("lichen-mn").tempdir_in("/tmp").unwrap();
    let (busybox, pause) = (tmp.path().join("busybox.tar"), tmp.path().join("pause.tar"));
    node::build_busybox_image(&busybox, BUSYBOX);
    node::build_pause_image(&pause, PAUSE);

    // The router: br0 for 10.77.0.0/24, br1 for 10.78.0.0/24, forwarding.
    let router = Netns::create("mn-r");
    for (br, addr) in [("br0", "10.77.0.254/24"), ("br1", "10.78.0.254/24")] {
        ip(&router, &format!("link add {br} type bridge"));
        ip(&router, &format!("addr add {addr} dev {br}"));
        ip(&router, &format!("link set {br} up"));
    }
    sysctl(&router, "net.ipv4.ip_forward=1");
    let mut machines = Vec::new();
    for (i, (name, addr, br, gw)) in [
        ("s", SERVER_IP, "br0", "10.77.0.254"),
        ("a1", "10.77.0.2", "br0", "10.77.0.254"),
        ("a2", "10.78.0.3", "br1", "10.78.0.254"),
    ]
    .into_iter()
    .enumerate()
    {
        let netns = Netns::create(&format!("mn-{name}"));
        let veth = format!("v{i}");
        ip(&router, &format!("link add {veth} type veth peer name eth0 netns {}", netns.name()));
        ip(&router, &format!("link set {veth} master {br} up"));
        ip(&netns, &format!("addr add {addr}/24 dev eth0"));
        ip(&netns, "link set eth0 up");
        ip(&netns, &format!("route add default via {gw}"));
        // What lichen-init sets on a device (init/src/sysctl.rs).
        sysctl(&netns, "net.ipv4.ip_forward=1");
        let dir = tmp.path().join(name);
        let images = dir.join("agent/images");
        std::fs::create_dir_all(&images).unwrap();
        std::fs::copy(&busybox, images.join("busybox.tar")).unwrap();
        std::fs::copy(&pause, images.join("pause.tar")).unwrap();
        let containerd = Containerd::start(&netns, &dir.join("containerd"), PAUSE);
        machines.push(Machine { name, ip: addr, dir, containerd, netns });
    }
    let s = &machines[0];
    let path = s.netns.path();
    let launcher = common::lichen_in_netns(&path);
    let server = Server::start_node_bound(launcher, "0.0.0.0:6443", &s.agent_args(), &path);
    let kubectl = server.kubectl()?;
    Some(Cluster { agents: Vec::new(), server, kubectl, machines, _router: router, _tmp: tmp })
}

impl Cluster {
    fn token(&self) -> String {
        std::fs::read_to_string(self.server.data.join("pki/token")).unwrap().trim().to_owned()
    }

    fn machine(&self, name: &str) -> &Machine {
        self.machines.iter().find(|m| m.name == name).unwrap()
    }

    fn jsonpath(&self, what: &[&str], path: &str) -> String {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        let jp = format!("-o=jsonpath={path}");
        args.push(&jp);
        let out = self.kubectl.run(&args);
        if out.code == 0 { out.stdout.clone() } else { String::new() }
    }

    fn wait_for(&self, what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
        let start = Instant::now();
        while !f() {
            if start.elapsed() > limit {
                self.dump();
                panic!("timed out after {limit:?} waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        start.elapsed()
    }

    /// What helps to see why a wait failed.
    fn dump(&self) {
        eprintln!(
            "{}",
            self.kubectl.run(&["get", "nodes,pods,svc,endpointslices", "-A", "-o", "wide"]).stdout
        );
        eprintln!("{}", self.kubectl.run(&["get", "events", "-A"]).stdout);
        eprintln!("{}", self.kubectl.run(&["get", "nodes", "-o", "yaml"]).stdout);
        for a in &self.agents {
            let log = std::fs::read_to_string(&a.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- {}:\n{}", a.log.display(), tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
    }

    /// Runs `script` with the pod's own namespaces and filesystem (its
    /// resolv.conf, its network), as `kubectl exec` would; nsenter into
    /// the container's process, found through its node's containerd.
    fn in_pod(&self, pod: &str, script: &str) -> node::Output {
        let node = self.jsonpath(&["pod", pod], "{.spec.nodeName}");
        let id = self.jsonpath(&["pod", pod], "{.status.containerStatuses[0].containerID}");
        let id = id.trim_start_matches("containerd://");
        let m = self.machine(&node);
        let mut ctr = m.containerd.ctr();
        ctr.args(["-n", "k8s.io", "tasks", "ls"]);
        let tasks = node::run(ctr, Duration::from_secs(30));
        let pid = tasks
            .stdout
            .lines()
            .find(|l| l.starts_with(id))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_else(|| panic!("no task for {pod} ({id}) on {node}:\n{}", tasks.stdout));
        let mut c = Command::new("nsenter");
        c.args(["-t", pid, "-n", "-m", "-u", "-i", "-p", "--", "/bin/sh", "-c", script]);
        node::run(c, Duration::from_secs(30))
    }

    fn apply(&self, yaml: &str) {
        self.kubectl.run_stdin(&["apply", "-f", "-"], yaml).ok();
    }
}

/// A pod-to-Service fetch through the name: the backend's hostname, or
/// the error.
///
/// HTTP by hand with `nc`: busybox's wget (the image's busybox is the
/// host's busybox-static) segfaults on this machine's kernel.
fn fetch(c: &Cluster, pod: &str, host: &str) -> Result<String, String> {
    let out = c.in_pod(pod, &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} 80"));
    match out.stdout.split_once("\r\n\r\n") {
        Some((head, body)) if out.code == 0 && head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
            Ok(body.trim().to_owned())
        }
        _ => Err(format!("exit {}: {}{}", out.code, out.stdout.trim(), out.stderr.trim())),
    }
}

/// Fetches `url` from `pod` until every backend has answered; how long
/// that took. Errors are printed as they change.
fn reach_all(c: &Cluster, pod: &str, url: &str, backends: &BTreeSet<String>) -> Duration {
    let mut seen = BTreeSet::new();
    let mut last_error = String::new();
    c.wait_for(&format!("{pod} reaching all backends at {url}"), Duration::from_secs(60), || {
        match fetch(c, pod, url) {
            Ok(body) => {
                if !backends.contains(&body) {
                    eprintln!("[multinode] {pod} -> {url}: unexpected answer {body:?}");
                }
                seen.insert(body);
            }
            Err(e) if e != last_error => {
                eprintln!("[multinode] {pod} -> {url}: {e}");
                last_error = e;
            }
            Err(_) => {}
        }
        seen == *backends
    })
}

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: web}}
            topologyKey: kubernetes.io/hostname
      containers:
      - name: httpd
        image: docker.io/lichen/busybox:test
        imagePullPolicy: Never
        command: ["sh", "-c", "mkdir -p /w && hostname > /w/index.html && exec httpd -f -p 8080 -h /w"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 8080}]
"#;

/// Writes a serving certificate for `node` into its agent's directory,
/// signed by the server's CA (from a copy of its files), that falls due for
/// renewal (80 % of its life) `due_in` from now; returns its PEM.
fn seed_serving_certificate(c: &Cluster, node: &str, due_in: Duration) -> String {
    let m = c.machine(node);
    let copy = m.dir.join("ca-copy");
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["ca.crt", "ca.key"] {
        std::fs::copy(c.server.data.join("pki").join(f), copy.join(f)).unwrap();
    }
    let (pki, _) = lichen_pki::Pki::load_or_create(&lichen_pki::PkiOptions::new(&copy, "copy")).unwrap();
    let (key, csr) = lichen_pki::join::node_serving_request(node, &[m.ip.parse().unwrap()]).unwrap();
    // Valid from an hour before now (the signer backdates) for `validity`:
    // due at -3600 + 0.8 × (3600 + validity) seconds from now.
    let validity = Duration::from_secs((due_in.as_secs() + 720) * 5 / 4);
    let now = std::time::SystemTime::now();
    let cert = pki.sign_csr(csr.as_bytes(), lichen_pki::Usage::ServerAuth, validity, now).unwrap();
    lichen_pki::join::save_node_serving(&m.dir.join("agent/pki"), &cert, &key).unwrap();
    std::fs::remove_dir_all(&copy).unwrap();
    cert
}

/// `openssl x509 -fingerprint -sha256` of a PEM certificate.
fn fingerprint(pem: &str) -> String {
    let mut c = Command::new("openssl");
    c.args(["x509", "-noout", "-fingerprint", "-sha256"]).stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), pem.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn client(name: &str, node: &str, allowed: bool) -> String {
    let label = if allowed { "allowed" } else { "denied" };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{access: {label}}}}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: docker.io/lichen/busybox:test\n    imagePullPolicy: Never\n    command: [\"sh\", \"-c\", \"echo client $(hostname) up; exec sleep 100000\"]\n---\n"
    )
}

const POLICY: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-allowed-only}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector: {matchLabels: {access: allowed}}
"#;

#[test]
fn three_nodes_join_and_pods_reach_each_other_and_services() {
    let Some(mut c) = setup() else { return };
    let token = c.token();
    println!("[multinode] server up");

    // Refused: a wrong secret, and a token for another CA.
    let a1 = c.machine("a1");
    let wrong = format!("{}0", &token[..token.len() - 1]);
    let wrong = if wrong == token { format!("{}1", &token[..token.len() - 1]) } else { wrong };
    for (token, want) in [
        (wrong.clone(), "refused the join token"),
        (format!("K10{}::{}", "0".repeat(64), token.split_once("::").unwrap().1), "refusing to join"),
    ] {
        let mut cmd = a1.lichen();
        cmd.args([
            "agent",
            "--server",
            &format!("https://{SERVER_IP}:6443"),
            "--token",
            &token,
            "--join-timeout",
            "5",
        ])
        .args([
            "--agent-dir",
            &a1.dir.join("refused").display().to_string(),
            "--node-name",
            "intruder",
        ]);
        let out = node::run(cmd, Duration::from_secs(30));
        assert_ne!(out.code, 0, "an agent with a bad token joined");
        assert!(out.stderr.contains(want), "wanted {want:?} in:\n{}", out.stderr);
    }

    // a2 starts with a serving certificate that falls due for renewal 30 s
    // later: it is used, then renewed and swapped into the running
    // endpoint.
    let seeded = seed_serving_certificate(&c, "a2", Duration::from_secs(30));

    let started = Instant::now();
    c.agents = ["a1", "a2"].iter().map(|n| Agent::start(c.machine(n), &token)).collect();
    let t = c.wait_for("three Ready nodes", Duration::from_secs(120), || {
        let ready = c.jsonpath(
            &["nodes"],
            "{range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status} {end}",
        );
        ["s=True", "a1=True", "a2=True"].iter().all(|w| ready.split_whitespace().any(|r| r == *w))
    });
    println!(
        "[multinode] agents joined and all three nodes Ready {} ms after the agents started",
        t.as_millis()
    );
    let cidrs: BTreeSet<String> =
        ["s", "a1", "a2"].iter().map(|n| c.jsonpath(&["node", n], "{.spec.podCIDR}")).collect();
    assert_eq!(cidrs.len(), 3, "each node has its own pod CIDR: {cidrs:?}");

    // Backends on every node, clients on every node.
    c.apply(WEB);
    let clients = [("c-s", "s", true), ("c-a1", "a1", true), ("c-a2", "a2", false)];
    let yaml: String = clients.iter().map(|(n, node, allowed)| client(n, node, *allowed)).collect();
    c.apply(&yaml);
    let t = c.wait_for("3 web pods Ready on 3 nodes, 3 clients Running", Duration::from_secs(180), || {
        let ready = c.jsonpath(
            &["pods", "-l", "app=web"],
            "{range .items[*]}{.spec.nodeName}:{.status.conditions[?(@.type==\"Ready\")].status} {end}",
        );
        let nodes: BTreeSet<&str> =
            ready.split_whitespace().filter_map(|p| p.strip_suffix(":True")).collect();
        let running = c.jsonpath(&["pods", "-l", "access"], "{.items[*].status.phase}");
        nodes.len() == 3 && running.split_whitespace().filter(|p| *p == "Running").count() == 3
    });
    println!("[multinode] 3 backends Ready on 3 nodes and 3 clients Running after {} ms", t.as_millis());
    let backends: BTreeSet<String> = c
        .jsonpath(&["pods", "-l", "app=web"], "{.items[*].metadata.name}")
        .split_whitespace()
        .map(str::to_owned)
        .collect();

    // kubectl logs and exec reach pods on every node: the joined agents
    // asked for their endpoints' serving certificates, which the
    // controllers approved since they name the nodes' own addresses.
    for (pod, node, _) in clients {
        let logs = c.kubectl.run(&["logs", pod]);
        assert_eq!(logs.ok(), format!("client {pod} up\n"), "kubectl logs of {pod} on {node}");
        let exec = c.kubectl.run(&["exec", pod, "--", "cat", "/etc/hostname"]);
        assert_eq!(exec.ok().trim(), pod, "kubectl exec in {pod} on {node}");
    }
    println!("[multinode] kubectl logs and exec reach pods on all 3 nodes");

    // a2's seeded serving certificate was renewed while its endpoint ran,
    // and the endpoint presents the new one.
    let file = c.machine("a2").dir.join("agent/pki/serving.crt");
    c.wait_for("a2's serving certificate renewed", Duration::from_secs(90), || {
        std::fs::read_to_string(&file).is_ok_and(|now| now != seeded)
    });
    let t = started.elapsed();
    println!(
        "[multinode] a2's serving certificate (due 30 s after seeding) renewed {} ms after the agents started",
        t.as_millis()
    );
    // It started with the seeded one (else this tested a renewal at start).
    let log = std::fs::read_to_string(&c.agents[1].log).unwrap();
    assert!(
        log.contains("using the saved serving certificate"),
        "a2 did not use the seeded certificate:\n{log}"
    );
    let renewed = std::fs::read_to_string(&file).unwrap();
    let port = c.jsonpath(&["node", "a2"], "{.status.daemonEndpoints.kubeletEndpoint.Port}");
    assert_ne!(fingerprint(&renewed), fingerprint(&seeded));
    let probe = format!(
        "openssl s_client -connect {}:{port} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
        c.machine("a2").ip
    );
    c.wait_for("the endpoint presenting the renewed certificate", Duration::from_secs(30), || {
        c.machine("s").sh(&probe).stdout == fingerprint(&renewed)
    });
    assert_eq!(c.kubectl.run(&["logs", "c-a2"]).ok(), "client c-a2 up\n");
    // a1 asked at once, a2 when its seeded certificate fell due.
    let serving = c.kubectl.run(&[
        "get",
        "csr",
        "-o",
        "jsonpath={range .items[?(@.spec.signerName==\"kubernetes.io/kubelet-serving\")]}{.spec.username}={.status.conditions[0].reason} {end}",
    ]);
    let serving: BTreeSet<&str> = serving.ok().split_whitespace().collect();
    assert_eq!(serving, BTreeSet::from(["system:node:a1=AutoApproved", "system:node:a2=AutoApproved"]));

    // Every client reaches every backend through the Service's name.
    // ClusterFirst pods get the cluster DNS, its search path and ndots:5.
    let resolv = c.in_pod("c-a2", "cat /etc/resolv.conf").stdout;
    assert!(resolv.contains("nameserver 10.43.0.10\n"), "{resolv}");
    assert!(resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local"), "{resolv}");
    assert!(resolv.contains("options ndots:5"), "{resolv}");
    for (pod, _, _) in clients {
        for url in ["web", "web.default.svc.cluster.local"] {
            let t = reach_all(&c, pod, url, &backends);
            println!("[multinode] {pod} reached all 3 backends at {url} in {} ms", t.as_millis());
        }
    }

    // The headless Service answers with every pod IP.
    let pod_ips: BTreeSet<String> = c
        .jsonpath(&["pods", "-l", "app=web"], "{.items[*].status.podIP}")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    c.wait_for("the headless Service's A records", Duration::from_secs(20), || {
        let out = c.in_pod("c-a2", "nslookup web-headless.default.svc.cluster.local");
        let found: BTreeSet<String> = out
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("Address: "))
            .map(|a| a.trim().to_owned())
            .collect();
        pod_ips.is_subset(&found)
    });

    // The NodePort on every node, from the router.
    for m in &c.machines {
        let url = format!("http://{}:30080/", m.ip);
        c.wait_for(&format!("NodePort on {}", m.name), Duration::from_secs(20), || {
            let mut cmd = c._router.command("curl");
            cmd.args(["-sf", "-m", "2", &url]);
            node::run(cmd, Duration::from_secs(10)).code == 0
        });
    }
    println!("[multinode] NodePort 30080 answers on all three nodes");

    // A NetworkPolicy: allowed clients still fetch, the other is cut off.
    c.apply(POLICY);
    let t = c.wait_for("c-a2 cut off by the NetworkPolicy", Duration::from_secs(20), || {
        (0..3).all(|_| fetch(&c, "c-a2", "web").is_err())
    });
    println!("[multinode] NetworkPolicy enforced {} ms after it was applied", t.as_millis());
    for pod in ["c-s", "c-a1"] {
        reach_all(&c, pod, "web", &backends);
    }
    c.kubectl.run(&["delete", "networkpolicy", "web-allowed-only"]).ok();
    c.wait_for("c-a2 let through again", Duration::from_secs(20), || fetch(&c, "c-a2", "web").is_ok());

    // A deleted pod leaves the Service's rules within a couple of seconds.
    let victim = c.jsonpath(
        &["pods", "-l", "app=web", "--field-selector", "spec.nodeName=a1"],
        "{.items[0].metadata.name}",
    );
    let victim_ip = c.jsonpath(&["pod", &victim], "{.status.podIP}");
    assert!(!victim_ip.is_empty());
    let s = c.machine("s");
    assert!(s.sh("nft list table ip lichen").stdout.contains(&format!("{victim_ip}:8080")));
    c.kubectl.run(&["delete", "pod", &victim, "--wait=false"]).ok();
    let t = c.wait_for("the deleted pod's DNAT rule gone on s", Duration::from_secs(10), || {
        !s.sh("nft list table ip lichen").stdout.contains(&format!("{victim_ip}:8080"))
    });
    println!("[multinode] deleted pod's rules removed on another node after {} ms", t.as_millis());

    // a2 leaves for good: its routes and FDB entries go from the others.
    let a2_cidr = c.jsonpath(&["node", "a2"], "{.spec.podCIDR}");
    let a2_mac = c.jsonpath(&["node", "a2"], "{.metadata.annotations.lichen\\.dev/vtep-mac}");
    assert!(!a2_mac.is_empty(), "a2 publishes its VTEP");
    for n in ["s", "a1"] {
        let m = c.machine(n);
        assert!(m.sh("ip route").stdout.contains(&a2_cidr), "{n} routes to a2's pods");
        assert!(m.sh("bridge fdb show dev lichen.1").stdout.contains(&a2_mac), "{n} has a2's FDB entry");
    }
    c.agents[1].stop();
    c.kubectl.run(&["delete", "node", "a2"]).ok();
    let t = c.wait_for("a2's route and FDB entry gone from s and a1", Duration::from_secs(20), || {
        ["s", "a1"].iter().all(|n| {
            let m = c.machine(n);
            !m.sh("ip route").stdout.contains(&a2_cidr)
                && !m.sh("bridge fdb show dev lichen.1").stdout.contains(&a2_mac)
        })
    });
    println!(
        "[multinode] a2's route and FDB entries removed {} ms after its Node was deleted",
        t.as_millis()
    );

    // What a2's lichen made on a2 goes with `lichen cleanup-network`.
    let a2 = c.machine("a2");
    let before = a2.sh("nft list tables; ip -o link; ip -o addr show lo").stdout;
    for made in [
        "table ip lichen\n",
        "table ip lichen-policy",
        "table ip lichen-overlay",
        "lichen.1",
        "cni0",
        "10.43.0.10",
    ] {
        assert!(before.contains(made), "a2 has {made:?} before the cleanup:\n{before}");
    }
    let mut cleanup = a2.lichen();
    cleanup.arg("cleanup-network").args(a2.agent_args());
    let out = node::run(cleanup, Duration::from_secs(30));
    assert_eq!(out.code, 0, "cleanup-network: {}", out.stderr);
    let after = a2.sh("nft list tables; ip -o link; ip -o addr show lo").stdout;
    for made in ["table ip lichen", "lichen.1", "cni0", "10.43.0.10"] {
        assert!(!after.contains(made), "a2 still has {made:?} after the cleanup:\n{after}");
    }
    let out = node::run(
        {
            let mut again = a2.lichen();
            again.arg("cleanup-network").args(a2.agent_args());
            again
        },
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 0, "a second cleanup-network: {}", out.stderr);
    println!("[multinode] cleanup-network removed a2's tables, devices and DNS address");
}
