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
    containerd: std::cell::RefCell<Containerd>,
    _netns: Netns,
    _tmp: tempfile::TempDir,
    /// A standalone `lichen agent` (the server then runs without one).
    agent: Option<std::process::Child>,
}

impl Node {
    fn start(tag: &str, extra: &[&str]) -> Option<Node> {
        Node::start_mode(tag, extra, false)
    }

    /// A server without agent plus `lichen agent` as a process of its own,
    /// joining with the cluster's token (`pki/token`): it pins the CA and
    /// gets its client certificate through a CSR.
    fn start_standalone(tag: &str) -> Option<Node> {
        Node::start_mode(tag, &[], true)
    }

    fn start_mode(tag: &str, extra: &[&str], standalone: bool) -> Option<Node> {
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
        // The agent imports both from its air-gap directory.
        let images = tmp.path().join("agent/images");
        std::fs::create_dir_all(&images).unwrap();
        std::fs::rename(&busybox, images.join("busybox.tar")).unwrap();
        std::fs::rename(&pause, images.join("pause.tar")).unwrap();
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
            "--eviction-hard".into(),
            common::TEST_EVICTION_HARD.into(),
        ];
        let args: Vec<String> = args.into_iter().chain(extra.iter().map(|s| (*s).to_owned())).collect();
        let ns_path = netns.path();
        let launcher = common::lichen_in_netns(&ns_path);
        let (server, agent) = if standalone {
            let server = Server::start_node(launcher.clone(), &["--disable-agent".to_owned()], &ns_path);
            let token = std::fs::read_to_string(server.data.join("pki/token")).unwrap();
            let mut cmd = launcher();
            cmd.args([
                "agent",
                "--server",
                &format!("https://127.0.0.1:{}", server.port),
                "--token",
                token.trim(),
            ])
            .args(&args);
            (server, Some(cmd.spawn().unwrap()))
        } else {
            (Server::start_node(launcher, &args, &ns_path), None)
        };
        let kubectl = server.kubectl()?;
        Some(Node {
            server,
            kubectl,
            containerd: std::cell::RefCell::new(containerd),
            _netns: netns,
            _tmp: tmp,
            agent,
        })
    }

    /// The node's Ready condition status: "True", "False" or "Unknown".
    fn node_ready(&self) -> String {
        self.jsonpath(&["node", NODE], "{.status.conditions[?(@.type==\"Ready\")].status}")
    }

    fn wait_ready(&self, what: &str) {
        self.wait_for(what, Duration::from_secs(60), || self.node_ready() == "True");
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
                self.containerd.borrow().log_tail()
            );
        }
    }
}

impl Drop for Node {
    /// Pods are deleted through the API first, so the agent tears their
    /// sandboxes down (CNI DEL) before containerd and the namespace go.
    fn drop(&mut self) {
        let out = self.kubectl.run(&[
            "delete",
            "pods",
            "--all",
            "--grace-period=1",
            "--wait=true",
            "--timeout=60s",
        ]);
        if out.code != 0 {
            eprintln!("cleanup: deleting pods failed: {}", out.stderr);
        }
        if let Some(mut a) = self.agent.take() {
            let _ = a.kill();
            let _ = a.wait();
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
    let Some(n) = Node::start("pods", &[]) else { return };
    let k = &n.kubectl;

    // The node registers and turns Ready once the CNI config is written.
    n.wait_ready("node Ready");
    let runtime = n.jsonpath(&["node", NODE], "{.status.nodeInfo.containerRuntimeVersion}");
    assert!(runtime.starts_with("containerd://1."), "{runtime}");
    assert!(!n.jsonpath(&["node", NODE], "{.status.allocatable.memory}").is_empty());
    // Allocatable storage is capacity less the hard eviction threshold
    // (--eviction-hard nodefs.available<1Gi), which the disk is above.
    let capacity = n.jsonpath(&["node", NODE], "{.status.capacity.ephemeral-storage}");
    let capacity: u64 = capacity.strip_suffix("Ki").unwrap().parse::<u64>().unwrap() * 1024;
    let allocatable: u64 =
        n.jsonpath(&["node", NODE], "{.status.allocatable.ephemeral-storage}").parse().unwrap();
    assert_eq!(capacity - allocatable, 1 << 30, "capacity {capacity} allocatable {allocatable}");
    assert_eq!(
        n.jsonpath(&["node", NODE], "{.status.conditions[?(@.type==\"DiskPressure\")].status}"),
        "False"
    );
    let lease = k.run(&["get", "lease", "-n", "kube-node-lease", NODE, "-o=jsonpath={.spec.holderIdentity}"]);
    assert_eq!(lease.ok(), NODE);

    // Images dropped into the air-gap directory later are imported too; a
    // broken archive is reported and skipped.
    let images = n.server.path("unused").parent().unwrap().to_path_buf();
    let dir = n._tmp.path().join("agent/images");
    std::fs::write(dir.join("broken.tar"), b"not a tarball").unwrap();
    node::build_busybox_image(&images.join("extra.tar"), "docker.io/lichen/extra:1");
    std::fs::rename(images.join("extra.tar"), dir.join("extra.tar")).unwrap();
    n.wait_for("the extra image imported", Duration::from_secs(30), || {
        n.containerd.borrow().images().iter().any(|i| i == "docker.io/lichen/extra:1")
    });

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
    // stdin reaches the process and its end is seen (the v5 CLOSE becomes
    // a FIN towards containerd): `exec -i` with piped input, and cp into
    // the pod, which is `tar xf -` fed on stdin.
    assert_eq!(k.run_stdin(&["exec", "-i", "web", "--", "cat"], "piped\nlines\n").ok(), "piped\nlines\n");
    let upload = n.server.write("upload.txt", "uploaded through tar\n");
    let cp = k.run(&["cp", upload.to_str().unwrap(), "web:/tmp/upload.txt"]);
    assert_eq!(cp.code, 0, "{}", cp.stderr);
    assert_eq!(k.run(&["exec", "web", "--", "cat", "/tmp/upload.txt"]).ok(), "uploaded through tar\n");
    // attach to a container: its output stream arrives.
    let (mut att, out) = k.spawn(&["attach", "web"]);
    k.run(&["exec", "web", "--", "sh", "-c", "echo attached-line > /proc/1/fd/1"]).ok();
    let mut seen = String::new();
    while let Ok(line) = out.recv_timeout(Duration::from_secs(10)) {
        seen.push_str(&line);
        if line.contains("attached-line") {
            break;
        }
    }
    att.stop();
    assert!(seen.contains("attached-line"), "{seen}");

    // A static pod from the manifest directory runs without the API and
    // shows as a mirror pod; deleting the mirror does not stop it.
    let manifests = n._tmp.path().join("agent/manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("static-web.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: static-web\nspec:\n  containers:\n  - name: web\n    image: docker.io/lichen/busybox:test\n    command: [\"sleep\", \"100000\"]\n",
    )
    .unwrap();
    let mirror = format!("static-web-{NODE}");
    n.wait_for("the static pod's mirror Running", Duration::from_secs(60), || {
        n.jsonpath(&["pod", &mirror], "{.status.phase}") == "Running"
    });
    let static_id = n.jsonpath(&["pod", &mirror], "{.status.containerStatuses[0].containerID}");
    assert!(
        !n.jsonpath(&["pod", &mirror], "{.metadata.annotations.kubernetes\\.io/config\\.mirror}").is_empty()
    );
    assert_eq!(k.run(&["exec", &mirror, "--", "echo", "static"]).ok(), "static\n");
    let first_uid = n.jsonpath(&["pod", &mirror], "{.metadata.uid}");
    k.run(&["delete", "pod", &mirror, "--wait=false"]).ok();
    n.wait_for("the mirror recreated", Duration::from_secs(60), || {
        let uid = n.jsonpath(&["pod", &mirror], "{.metadata.uid}");
        !uid.is_empty() && uid != first_uid && n.jsonpath(&["pod", &mirror], "{.status.phase}") == "Running"
    });
    assert_eq!(n.jsonpath(&["pod", &mirror], "{.status.containerStatuses[0].containerID}"), static_id);
    std::fs::remove_file(manifests.join("static-web.yaml")).unwrap();
    n.wait_for("the mirror gone with its file", Duration::from_secs(60), || {
        k.run(&["get", "pod", &mirror]).code == 1
    });

    // A port nothing listens on: the connection fails with the agent's
    // message and kubectl 1.37 ends with "lost connection to pod".
    // (busybox wget's -T crashes the static build: no timeout flag.)
    let (mut bad, lines) = k.spawn(&["port-forward", "pod/web", "18081:9999"]);
    let started = lines.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    assert!(started.contains("Forwarding from 127.0.0.1:18081"), "{started}");
    let mut wget = n._netns.command("/bin/busybox");
    wget.args(["wget", "-qO-", "http://127.0.0.1:18081/"]);
    assert_ne!(node::run(wget, Duration::from_secs(30)).code, 0);
    assert_eq!(bad.wait_for_exit(Duration::from_secs(10)), Some(1));
    let errs = bad.stop();
    assert!(errs.contains("error forwarding port 9999"), "{errs}");
    // port-forward: kubectl's SPDY-in-WebSocket tunnel, through the API
    // server to the agent and into the pod's network namespace.
    let (mut pf, lines) = k.spawn(&["port-forward", "pod/web", "18080:8080"]);
    let ready = lines.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    assert!(ready.contains("Forwarding from 127.0.0.1:18080"), "{ready} / {}", pf.stop());
    for _ in 0..3 {
        let mut wget = n._netns.command("/bin/busybox");
        wget.args(["wget", "-qO-", "http://127.0.0.1:18080/index.html"]);
        assert_eq!(node::run_ok(wget), node::INDEX_HTML);
    }
    pf.stop();

    // containerd down: the node turns NotReady with the reason; back up:
    // Ready again, and the pod kept running all along (same container).
    let id = n.jsonpath(&["pod", "web"], "{.status.containerStatuses[0].containerID}");
    let mut containerd = n.containerd.borrow_mut();
    containerd.stop();
    n.wait_for("node NotReady", Duration::from_secs(60), || n.node_ready() == "False");
    let why = n.jsonpath(&["node", NODE], "{.status.conditions[?(@.type==\"Ready\")].message}");
    assert!(why.starts_with("container runtime is down"), "{why}");
    containerd.restart();
    drop(containerd);
    n.wait_ready("node Ready again");
    assert_eq!(n.jsonpath(&["pod", "web"], "{.status.containerStatuses[0].containerID}"), id);
    assert_eq!(n.jsonpath(&["pod", "web"], "{.status.containerStatuses[0].restartCount}"), "0");
    assert_eq!(k.run(&["exec", "web", "--", "cat", "/etc/cfg/greeting"]).ok(), "bye");

    // Deleting with a grace period stops the container with SIGTERM (its
    // trap runs) and the pod goes away.
    let del = k.run(&["delete", "pod", "web", "--wait=true", "--timeout=60s"]);
    assert_eq!(del.code, 0, "{}", del.stderr);
    assert_eq!(k.run(&["get", "pod", "web"]).code, 1);
    drop(n);
}

/// Restarts, init containers, secrets, the failure states users see, and
/// preStop hooks.
#[test]
fn pod_lifecycle_and_failure_states() {
    // Image GC at 0%: every image nothing uses and nothing pinned goes.
    let gc = ["--image-gc-high-threshold", "0", "--image-gc-low-threshold", "0", "--image-gc-min-age", "0"];
    let Some(n) = Node::start("life", &gc) else { return };
    let k = &n.kubectl;
    n.wait_ready("node Ready");
    let hostdir = n.server.path("hooks");
    std::fs::create_dir_all(&hostdir).unwrap();
    n.apply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: s3cret\n");
    let secret_pod = pod(
        "ordered",
        &format!(
            r#"  terminationGracePeriodSeconds: 10
  initContainers:
  - name: first
    image: docker.io/lichen/busybox:test
    command: ["sh", "-c", "echo first >> /work/order"]
    volumeMounts: [{{name: work, mountPath: /work}}]
  - name: second
    image: docker.io/lichen/busybox:test
    command: ["sh", "-c", "echo second >> /work/order"]
    volumeMounts: [{{name: work, mountPath: /work}}]
  containers:
  - name: main
    image: docker.io/lichen/busybox:test
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
    env:
    - name: PASSWORD
      valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}
    lifecycle:
      preStop:
        exec: {{command: ["sh", "-c", "echo stopped > /hooks/prestop"]}}
    volumeMounts:
    - {{name: work, mountPath: /work}}
    - {{name: creds, mountPath: /creds, readOnly: true}}
    - {{name: hooks, mountPath: /hooks}}
  volumes:
  - name: work
    emptyDir: {{}}
  - name: creds
    secret: {{secretName: creds}}
  - name: hooks
    hostPath: {{path: {}, type: Directory}}
"#,
            hostdir.display()
        ),
    );
    n.apply(&secret_pod);
    // A liveness probe against a port nothing listens on restarts the container.
    n.apply(&pod(
        "unhealthy",
        r#"  containers:
  - name: app
    image: docker.io/lichen/busybox:test
    command: ["sh", "-c", "echo run $(date +%s%N); sleep 100000"]
    livenessProbe:
      tcpSocket: {port: 9999}
      periodSeconds: 1
      failureThreshold: 1
"#,
    ));
    // An image that is nowhere (a registry on a closed loopback port, so
    // nothing leaves the machine), and a configMap that does not exist.
    n.apply(&pod(
        "badimage",
        "  containers:\n  - name: app\n    image: 127.0.0.1:1/lichen/nonexistent:1\n    imagePullPolicy: IfNotPresent\n",
    ));
    n.apply(&pod(
        "noconfig",
        r#"  containers:
  - name: app
    image: docker.io/lichen/busybox:test
    command: ["sleep", "100000"]
    env:
    - name: X
      valueFrom: {configMapKeyRef: {name: missing, key: k}}
"#,
    ));

    n.apply(&pod(
        "nomount",
        "  containers:\n  - name: app\n    image: docker.io/lichen/busybox:test\n    command: [\"sleep\", \"100000\"]\n    volumeMounts: [{name: data, mountPath: /data}]\n  volumes:\n  - name: data\n    hostPath: {path: /nonexistent/dir, type: Directory}\n",
    ));
    n.apply(&pod(
        "nocommand",
        "  containers:\n  - name: app\n    image: docker.io/lichen/busybox:test\n    command: [\"/no/such/binary\"]\n",
    ));
    n.apply(&pod(
        "shaped",
        r#"  securityContext: {runAsUser: 1000, runAsGroup: 3000}
  initContainers:
  - name: ticker
    image: docker.io/lichen/busybox:test
    restartPolicy: Always
    command: ["sh", "-c", "while true; do date > /shared/tick; sleep 1; done"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  containers:
  - name: app
    image: docker.io/lichen/busybox:test
    command: ["sleep", "100000"]
    resources: {limits: {memory: 64Mi, cpu: 500m}}
    securityContext:
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
    startupProbe:
      exec: {command: ["test", "-f", "/shared/tick"]}
      periodSeconds: 1
    volumeMounts: [{name: shared, mountPath: /shared}]
  volumes:
  - name: shared
    emptyDir: {medium: Memory}
"#,
    ));
    n.wait_for("pod ordered Running", Duration::from_secs(90), || {
        n.jsonpath(&["pod", "ordered"], "{.status.phase}") == "Running"
    });
    assert_eq!(k.run(&["exec", "ordered", "--", "cat", "/work/order"]).ok(), "first\nsecond\n");
    assert_eq!(k.run(&["exec", "ordered", "--", "cat", "/creds/password"]).ok(), "s3cret");
    assert_eq!(k.run(&["exec", "ordered", "--", "sh", "-c", "echo -n $PASSWORD"]).ok(), "s3cret");
    // securityContext, resources, a sidecar feeding a tmpfs emptyDir, and a
    // startup probe that waits for it.
    n.wait_for("pod shaped Ready", Duration::from_secs(90), || {
        n.jsonpath(&["pod", "shaped"], "{.status.conditions[?(@.type==\"Ready\")].status}") == "True"
    });
    assert_eq!(n.jsonpath(&["pod", "shaped"], "{.status.initContainerStatuses[0].started}"), "true");
    assert!(
        !n.jsonpath(&["pod", "shaped"], "{.status.initContainerStatuses[0].state.running.startedAt}")
            .is_empty()
    );
    let ex = |cmd: &str| k.run(&["exec", "shaped", "-c", "app", "--", "sh", "-c", cmd]);
    assert_eq!(ex("id -u; id -g").ok(), "1000\n3000\n");
    let write = ex("touch /rootfs-write");
    assert!(write.code != 0 && write.stderr.contains("Read-only file system"), "{}", write.stderr);
    let limit =
        ex("cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes");
    assert_eq!(limit.ok().trim(), "67108864");
    assert!(ex("grep ' /shared ' /proc/mounts").ok().starts_with("tmpfs "));
    assert_eq!(ex("grep CapEff /proc/self/status").ok().trim(), "CapEff:\t0000000000000000");
    let init = n.jsonpath(&["pod", "ordered"], "{.status.initContainerStatuses[*].state.terminated.reason}");
    assert_eq!(init, "Completed Completed");
    // A secret update reaches the volume.
    k.run(&["patch", "secret", "creds", "-p", r#"{"stringData":{"password":"changed"}}"#]).ok();
    n.wait_for("the secret update in the volume", Duration::from_secs(30), || {
        k.run(&["exec", "ordered", "--", "cat", "/creds/password"]).stdout == "changed"
    });

    n.wait_for("a liveness restart", Duration::from_secs(60), || {
        n.jsonpath(&["pod", "unhealthy"], "{.status.containerStatuses[0].restartCount}")
            .parse::<u32>()
            .unwrap_or(0)
            >= 1
    });
    let events =
        k.run(&["get", "events", "--field-selector", "involvedObject.name=unhealthy"]).ok().to_owned();
    assert!(events.contains("Liveness probe failed: dial tcp"), "{events}");
    // The previous instance's log stays readable.
    let previous = k.run(&["logs", "unhealthy", "--previous"]);
    assert!(previous.ok().starts_with("run "), "{}", previous.stdout);
    assert_ne!(previous.stdout, k.run(&["logs", "unhealthy"]).stdout);

    // Bad input: a hostPath that is not there, a command the runtime
    // cannot start. Clear reasons, and the other pods are unaffected.
    n.wait_for("the missing hostPath reported", Duration::from_secs(60), || {
        n.jsonpath(&["pod", "nomount"], "{.status.containerStatuses[0].state.waiting.message}")
            .contains("hostPath type check failed: /nonexistent/dir is not a directory")
    });
    assert_eq!(
        n.jsonpath(&["pod", "nomount"], "{.status.containerStatuses[0].state.waiting.reason}"),
        "ContainerCreating"
    );
    n.wait_for("the unstartable command reported", Duration::from_secs(60), || {
        let reason = n.jsonpath(&["pod", "nocommand"], "{.status.containerStatuses[0].state.waiting.reason}");
        let last =
            n.jsonpath(&["pod", "nocommand"], "{.status.containerStatuses[0].lastState.terminated.message}");
        let now = n.jsonpath(&["pod", "nocommand"], "{.status.containerStatuses[0].state.waiting.message}");
        matches!(reason.as_str(), "RunContainerError" | "CrashLoopBackOff")
            && (now.contains("/no/such/binary") || last.contains("/no/such/binary"))
    });
    assert_eq!(n.jsonpath(&["pod", "ordered"], "{.status.phase}"), "Running");

    n.wait_for("ErrImagePull, then ImagePullBackOff", Duration::from_secs(60), || {
        n.jsonpath(&["pod", "badimage"], "{.status.containerStatuses[0].state.waiting.reason}")
            == "ImagePullBackOff"
    });
    let msg = n.jsonpath(&["pod", "badimage"], "{.status.containerStatuses[0].state.waiting.message}");
    assert!(msg.starts_with("Back-off pulling image \"127.0.0.1:1/lichen/nonexistent:1\""), "{msg}");
    let events =
        k.run(&["get", "events", "--field-selector", "involvedObject.name=badimage"]).ok().to_owned();
    assert!(events.contains("Failed to pull image"), "{events}");

    n.wait_for("CreateContainerConfigError", Duration::from_secs(60), || {
        n.jsonpath(&["pod", "noconfig"], "{.status.containerStatuses[0].state.waiting.reason}")
            == "CreateContainerConfigError"
    });
    let msg = n.jsonpath(&["pod", "noconfig"], "{.status.containerStatuses[0].state.waiting.message}");
    assert_eq!(msg, "configmap \"missing\" not found");
    // The configMap appears: the pod starts.
    n.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: missing\ndata:\n  k: v\n");
    n.wait_for("pod noconfig Running", Duration::from_secs(60), || {
        n.jsonpath(&["pod", "noconfig"], "{.status.phase}") == "Running"
    });

    // An image imported behind the agent's back, used by nothing, is
    // garbage-collected; the air-gap images stay.
    let unpinned = n.server.path("unpinned.tar");
    let config = serde_json::json!({"Env": [node::IMAGE_PATH], "Cmd": ["sh"], "Labels": {"unpinned": "1"}});
    node::build_image_with_config(&unpinned, "docker.io/lichen/unpinned:1", config);
    n.containerd.borrow().import(&unpinned);
    n.wait_for("the unused image collected", Duration::from_secs(90), || {
        !n.containerd.borrow().images().iter().any(|i| i == "docker.io/lichen/unpinned:1")
    });
    assert!(n.containerd.borrow().images().iter().any(|i| i == BUSYBOX));

    // Deletion runs the preStop hook before the container stops.
    let del = k.run(&["delete", "pod", "ordered", "--wait=true", "--timeout=60s"]);
    assert_eq!(del.code, 0, "{}", del.stderr);
    assert_eq!(std::fs::read_to_string(hostdir.join("prestop")).unwrap_or_default(), "stopped\n");
    for p in ["unhealthy", "badimage", "noconfig", "nomount", "nocommand", "shaped"] {
        k.run(&["delete", "pod", p, "--grace-period=1", "--wait=true", "--timeout=60s"]).ok();
    }
}

/// `make bench`: pod start latency (create → Running as the API reports
/// it) over 50 pods, and the RSS of a standalone `lichen agent` with 0 and
/// 50 pods. Ignored by `cargo test`.
#[test]
#[ignore]
fn measure_pod_start_and_agent_rss() {
    let Some(n) = Node::start_standalone("bench") else { return };
    let k = &n.kubectl;
    n.wait_ready("node Ready");
    let pid = n.agent.as_ref().map(std::process::Child::id).unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let rss0 = rss_kib(pid);
    // One watch records when each pod is added and when it turns Running.
    let (_w, events) = k.spawn(&[
        "get",
        "pods",
        "-w",
        "--output-watch-events",
        "-o",
        "jsonpath={.type} {.object.metadata.name} {.object.status.phase}{\"\\n\"}",
    ]);
    let mut yaml = String::new();
    for i in 0..50 {
        yaml.push_str(&pod(&format!("p{i}"), "  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: docker.io/lichen/busybox:test\n    command: [\"sleep\", \"100000\"]\n"));
        yaml.push_str("---\n");
    }
    let started = std::time::Instant::now();
    k.run_stdin(&["apply", "-f", "-"], &yaml).ok();
    let mut added = std::collections::HashMap::new();
    let mut running = std::collections::HashMap::new();
    while running.len() < 50 && started.elapsed() < Duration::from_secs(300) {
        let Ok(line) = events.recv_timeout(Duration::from_secs(5)) else { continue };
        let f: Vec<&str> = line.split_whitespace().collect();
        let now = std::time::Instant::now();
        if f.len() >= 2 {
            added.entry(f[1].to_owned()).or_insert(now);
        }
        if f.len() >= 3 && f[2] == "Running" {
            running.entry(f[1].to_owned()).or_insert(now);
        }
    }
    assert_eq!(running.len(), 50, "only {} pods reached Running", running.len());
    let mut lat: Vec<u128> = running.iter().map(|(p, t)| t.duration_since(added[p]).as_millis()).collect();
    lat.sort_unstable();
    let all = started.elapsed();
    std::thread::sleep(Duration::from_secs(5));
    let rss50 = rss_kib(pid);
    println!(
        "[agent] pod start latency (create -> Running) over 50 pods: p50 {} ms, p99 {} ms, max {} ms; all 50 Running after {} ms",
        lat[24],
        lat[49 * 99 / 100],
        lat[49],
        all.as_millis()
    );
    println!("[agent] standalone agent RSS: {} KiB with 0 pods, {} KiB with 50 pods", rss0, rss50);
    // One pod at a time on an otherwise idle node.
    k.run(&["delete", "pods", "--all", "--grace-period=1", "--wait=true", "--timeout=300s"]).ok();
    let mut single = Vec::new();
    for i in 0..10 {
        let name = format!("s{i}");
        let yaml = pod(
            &name,
            "  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: docker.io/lichen/busybox:test\n    command: [\"sleep\", \"100000\"]\n",
        );
        let t = std::time::Instant::now();
        k.run_stdin(&["apply", "-f", "-"], &yaml).ok();
        let mut ok = false;
        while t.elapsed() < Duration::from_secs(60) {
            if let Ok(line) = events.recv_timeout(Duration::from_secs(5)) {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() >= 3 && f[1] == name && f[2] == "Running" {
                    ok = true;
                    break;
                }
            }
        }
        assert!(ok, "{name} did not run");
        single.push(t.elapsed().as_millis());
    }
    single.sort_unstable();
    println!(
        "[agent] one pod at a time (kubectl apply -> Running seen by a watch), 10 pods: p50 {} ms, max {} ms",
        single[4], single[9]
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
