//! Server-side apply with the real kubectl (`LICHEN_KUBECTL`, set by `make
//! test`; skipped without it): `apply --server-side` creates and updates,
//! conflicts with `kubectl scale` and with client-side apply are reported
//! as upstream reports them, `--force-conflicts` takes the fields over, and
//! `--show-managed-fields` shows every manager.

#![allow(clippy::unwrap_used)] // test code: a failed setup step should panic with its error

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lichen"))
        .args(["server", "--disable-agent", "--disable-controllers", "--data-dir"])
        .arg(data)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::piped())
        .spawn()
        .expect("lichen binary");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if line.contains("server ready") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("lichen server did not get ready");
    Server { child }
}

/// kubectl against the server, with its own HOME (kubectl caches discovery).
struct Kubectl {
    bin: OsString,
    kubeconfig: PathBuf,
    home: PathBuf,
    dir: PathBuf,
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(&self.bin)
            .env("HOME", &self.home)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("LICHEN_KUBECTL is set but cannot run");
        let o = Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!("$ kubectl {}\n{}{}", args.join(" "), o.stdout, o.stderr);
        o
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.ok, "kubectl {args:?} failed: {}", o.stderr);
        o.stdout
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.dir.join(file), text).unwrap();
    }
}

fn deployment(name: &str, replicas: u32, image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: nginx
        image: {image}
        ports:
        - containerPort: 80
"
    )
}

#[test]
fn server_side_apply_with_kubectl() {
    let Some(bin) = std::env::var_os("LICHEN_KUBECTL") else {
        eprintln!("LICHEN_KUBECTL not set: server-side apply test skipped (make test sets it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = start(&data);
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let k =
        Kubectl { bin, kubeconfig: data.join("pki/admin.kubeconfig"), home, dir: dir.path().to_path_buf() };

    // Apply creates, and applying again changes nothing.
    k.write("web.yaml", &deployment("web", 2, "nginx:1.27"));
    assert_eq!(
        k.ok(&["apply", "--server-side", "-f", "web.yaml"]),
        "deployment.apps/web serverside-applied\n"
    );
    let rv = k.ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.resourceVersion}"]);
    assert_eq!(
        k.ok(&["apply", "--server-side", "-f", "web.yaml"]),
        "deployment.apps/web serverside-applied\n"
    );
    assert_eq!(k.ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.resourceVersion}"]), rv);

    // `kubectl scale` takes the replicas; a different applied value conflicts.
    assert_eq!(k.ok(&["scale", "deployment", "web", "--replicas=3"]), "deployment.apps/web scaled\n");
    k.write("web5.yaml", &deployment("web", 5, "nginx:1.27"));
    let o = k.run(&["apply", "--server-side", "-f", "web5.yaml"]);
    assert!(!o.ok);
    assert!(
        o.stderr.starts_with(
            "error: Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" using apps/v1: .spec.replicas\nPlease review the fields above--they currently have other managers."
        ),
        "{}",
        o.stderr
    );
    assert_eq!(k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]), "3");
    assert_eq!(
        k.ok(&["apply", "--server-side", "--force-conflicts", "-f", "web5.yaml"]),
        "deployment.apps/web serverside-applied\n"
    );
    assert_eq!(k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]), "5");

    // Client-side apply's fields conflict with another applier.
    k.write("csa.yaml", &deployment("csa", 2, "nginx:1.27"));
    assert_eq!(k.ok(&["apply", "-f", "csa.yaml"]), "deployment.apps/csa created\n");
    k.write("csa4.yaml", &deployment("csa", 4, "nginx:1.28"));
    let o = k.run(&["apply", "--server-side", "--field-manager=deployer", "-f", "csa4.yaml"]);
    assert!(!o.ok);
    assert!(
        o.stderr.starts_with(
            "error: Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image\n"
        ),
        "{}",
        o.stderr
    );
    let forced =
        k.ok(&["apply", "--server-side", "--field-manager=deployer", "--force-conflicts", "-f", "csa4.yaml"]);
    assert_eq!(forced, "deployment.apps/csa serverside-applied\n");

    // kubectl then moves the client-side apply's fields to the applier
    // (a JSON patch of managedFields) and applies again, as upstream.
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "csa",
            "-o",
            "jsonpath={.spec.replicas} {.metadata.managedFields[*].manager}"
        ]),
        "4 deployer"
    );

    // Another manager's fields show next to the applier's.
    assert_eq!(k.ok(&["label", "deployment", "web", "tier=frontend"]), "deployment.apps/web labeled\n");
    let yaml = k.ok(&["get", "deploy", "web", "-o", "yaml", "--show-managed-fields"]);
    let managers: Vec<&str> = yaml.lines().filter_map(|l| l.trim().strip_prefix("manager: ")).collect();
    assert_eq!(managers, ["kubectl", "kubectl-label"], "{yaml}");
    let (applier, labeler) = yaml.split_once("    manager: kubectl\n    operation: Apply\n").unwrap();
    for expected in [
        "f:replicas: {}",
        "f:selector: {}",
        "k:{\"name\":\"nginx\"}:\n                .: {}\n                f:image: {}\n                f:name: {}",
        "k:{\"containerPort\":80,\"protocol\":\"TCP\"}:",
    ] {
        assert!(applier.contains(expected), "{expected:?} missing from\n{yaml}");
    }
    assert!(
        labeler.contains("fieldsV1:\n      f:metadata:\n        f:labels:\n          f:tier: {}\n    manager: kubectl-label\n    operation: Update\n"),
        "{yaml}"
    );
    assert!(!k.ok(&["get", "deploy", "web", "-o", "yaml"]).contains("managedFields"), "hidden by default");
}
