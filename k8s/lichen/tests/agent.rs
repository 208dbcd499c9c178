//! The node agent against the real thing: Debian's containerd in a network
//! namespace of the test's own, `lichen server` (API server + agent) in the
//! same namespace, images built from busybox-static, and the real kubectl
//! 1.37. Needs root, containerd, runc and LICHEN_KUBECTL; skipped otherwise.

#![allow(clippy::unwrap_used)] // a failed setup step should panic

mod common;

use std::time::Duration;

use common::node::{self, Containerd, Netns};
use common::{Kubectl, Server, eventually};

const BUSYBOX: &str = "docker.io/lichen/busybox:test";
const PAUSE: &str = "docker.io/lichen/pause:test";
const NODE: &str = "lichen-node";

/// containerd + server + kubectl in one network namespace. Field order is
/// drop order: the server goes first, then containerd (which removes what
/// is left), then the namespace, then the files.
struct Node {
    server: Server,
    kubectl: Kubectl,
    containerd: Containerd,
    _netns: Netns,
    _tmp: tempfile::TempDir,
}

impl Node {
    fn start(tag: &str) -> Option<Node> {
        if let Some(why) = node::missing_prerequisite() {
            eprintln!("agent test skipped: {why}");
            return None;
        }
        common::kubectl_bin()?;
        let tmp = tempfile::Builder::new().prefix("lichen-agent").tempdir_in("/tmp").unwrap();
        let (busybox, pause) = (tmp.path().join("busybox.tar"), tmp.path().join("pause.tar"));
        node::build_busybox_image(&busybox, BUSYBOX);
        node::build_pause_image(&pause, PAUSE);
        let netns = Netns::create(tag);
        let containerd = Containerd::start(&netns, &tmp.path().join("containerd"), PAUSE);
        containerd.import(&busybox);
        containerd.import(&pause);
        let p = |s: &str| tmp.path().join(s).display().to_string();
        let args = vec![
            "--containerd".into(),
            containerd.socket().display().to_string(),
            "--agent-dir".into(),
            p("agent"),
            "--pod-log-dir".into(),
            p("pods"),
            "--cni-conf-dir".into(),
            containerd.cni_conf_dir().display().to_string(),
            "--cni-ipam-dir".into(),
            p("ipam"),
            "--cgroup-root".into(),
            format!("/lichen-test-{}-{tag}", std::process::id()),
            "--agent-port".into(),
            "0".into(),
            "--node-name".into(),
            NODE.into(),
        ];
        let ns_path = netns.path();
        let nsp = ns_path.clone();
        let server = Server::start_node(
            move || {
                let mut c = std::process::Command::new("nsenter");
                c.arg(format!("--net={}", nsp.display())).arg("--").arg(common::lichen_bin());
                c.env("LICHEN_LOG", "info");
                c
            },
            &args,
            &ns_path,
        );
        let kubectl = server.kubectl()?;
        Some(Node { server, kubectl, containerd, _netns: netns, _tmp: tmp })
    }

    fn apply(&self, yaml: &str) {
        self.kubectl.run_stdin(&["apply", "-f", "-"], yaml).ok();
    }

    fn jsonpath(&self, what: &[&str], path: &str) -> String {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        let jp = format!("-o=jsonpath={path}");
        args.push(&jp);
        let out = self.kubectl.run(&args);
        if out.code == 0 { out.stdout.clone() } else { String::new() }
    }

    fn wait_for(&self, what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
        if !eventually(timeout, &mut f) {
            let pods = self.kubectl.run(&["get", "pods", "-o", "yaml"]);
            let events = self.kubectl.run(&["get", "events"]);
            panic!(
                "timed out waiting for {what}\npods:\n{}\nevents:\n{}\ncontainerd log:\n{}",
                pods.stdout,
                events.stdout,
                self.containerd.log_tail()
            );
        }
    }
}

fn pod(name: &str, body: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: {name}\nspec:\n  nodeName: {NODE}\n{body}"
    )
}

#[test]
fn node_registers_and_runs_pods() {
    let Some(n) = Node::start("pods") else { return };
    let k = &n.kubectl;

    // The node registers and turns Ready once the CNI config is written.
    n.wait_for("node Ready", Duration::from_secs(60), || {
        n.jsonpath(&["node", NODE], "{.status.conditions[?(@.type==\"Ready\")].status}") == "True"
    });
    let runtime = n.jsonpath(&["node", NODE], "{.status.nodeInfo.containerRuntimeVersion}");
    assert!(runtime.starts_with("containerd://1."), "{runtime}");
    assert!(!n.jsonpath(&["node", NODE], "{.status.allocatable.memory}").is_empty());
    let lease = k.run(&["get", "lease", "-n", "kube-node-lease", NODE, "-o=jsonpath={.spec.holderIdentity}"]);
    assert_eq!(lease.ok(), NODE);

    // A pod with downward-API env, a configMap volume, an httpd and a
    // readiness probe runs and turns Ready.
    n.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  greeting: hello\n");
    n.apply(&pod(
        "web",
        r#"  terminationGracePeriodSeconds: 5
  containers:
  - name: web
    image: docker.io/lichen/busybox:test
    command: ["sh", "-c", "echo started $(MY_NAME) on $(MY_NODE); trap 'echo stopping; exit 0' TERM; httpd -f -p 8080 -h /var/www & wait"]
    env:
    - name: MY_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: MY_NODE
      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    - name: MY_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    readinessProbe:
      httpGet: {path: /index.html, port: 8080}
      periodSeconds: 1
    volumeMounts:
    - {name: cfg, mountPath: /etc/cfg}
  volumes:
  - name: cfg
    configMap: {name: web-config}
"#,
    ));
    n.wait_for("pod web Ready", Duration::from_secs(90), || {
        n.jsonpath(&["pod", "web"], "{.status.conditions[?(@.type==\"Ready\")].status}") == "True"
    });
    assert_eq!(n.jsonpath(&["pod", "web"], "{.status.phase}"), "Running");
    let ip = n.jsonpath(&["pod", "web"], "{.status.podIP}");
    assert!(ip.starts_with("10.42.0."), "pod IP {ip:?}");
    assert_eq!(n.jsonpath(&["pod", "web"], "{.status.containerStatuses[0].started}"), "true");

    // Logs come from the CRI log file through the API server and the agent.
    n.wait_for("the pod's log", Duration::from_secs(20), || {
        k.run(&["logs", "web"]).stdout.contains(&format!("started web on {NODE}"))
    });
    let ts = k.run(&["logs", "web", "--timestamps"]);
    let first = ts.ok().lines().next().unwrap_or("").to_owned();
    assert!(first.len() > 31 && first.as_bytes()[10] == b'T' && first.as_bytes()[29] == b'Z', "{first}");

    // exec runs in the container: output, environment, exit codes.
    assert_eq!(k.run(&["exec", "web", "--", "cat", "/etc/cfg/greeting"]).ok(), "hello");
    assert_eq!(k.run(&["exec", "web", "--", "sh", "-c", "echo $MY_IP"]).ok().trim(), ip);
    let failed = k.run(&["exec", "web", "--", "sh", "-c", "echo oops >&2; exit 3"]);
    assert_eq!(failed.code, 3, "{}", failed.stderr);
    assert!(failed.stderr.contains("oops"), "{}", failed.stderr);
    // A configMap update reaches the running pod's volume.
    k.run(&["patch", "configmap", "web-config", "-p", r#"{"data":{"greeting":"bye"}}"#]).ok();
    n.wait_for("the configMap update in the volume", Duration::from_secs(30), || {
        k.run(&["exec", "web", "--", "cat", "/etc/cfg/greeting"]).stdout == "bye"
    });
    // kubectl cp out of the pod is `tar cf -` over exec.
    let copied = n.server.path("index.html");
    let cp = k.run(&["cp", "web:/var/www/index.html", copied.to_str().unwrap()]);
    assert_eq!(cp.code, 0, "{}", cp.stderr);
    assert_eq!(std::fs::read_to_string(&copied).unwrap(), node::INDEX_HTML);

    // Deleting with a grace period stops the container with SIGTERM (its
    // trap runs) and the pod goes away.
    let del = k.run(&["delete", "pod", "web", "--wait=true", "--timeout=60s"]);
    assert_eq!(del.code, 0, "{}", del.stderr);
    assert_eq!(k.run(&["get", "pod", "web"]).code, 1);
    drop(n);
}
