//! RBAC and bearer tokens with the real kubectl (`LICHEN_KUBECTL`, set by
//! `make test`; skipped without it): a token user is refused with
//! upstream's message, gets exactly what a Role grants once the admin binds
//! it, and sees itself in `kubectl auth whoami` and `auth can-i`.

#![allow(clippy::unwrap_used)] // test code: a failed setup step should panic with its error

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
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

fn start(data: &Path, token_file: &Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lichen"))
        .args(["server", "--disable-agent", "--disable-controllers", "--datastore", "memory", "--data-dir"])
        .arg(data)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .arg("--token-file")
        .arg(token_file)
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

struct Kubectl {
    bin: PathBuf,
    /// A fresh HOME: kubectl caches discovery there.
    home: PathBuf,
}

impl Kubectl {
    fn run(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .env("HOME", &self.home)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .output()
            .expect("LICHEN_KUBECTL is set but cannot run")
    }

    /// Runs and insists on success; stdout.
    fn ok(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let out = self.run(kubeconfig, args);
        assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and insists on failure; stderr.
    fn fails(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let out = self.run(kubeconfig, args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// A copy of the admin kubeconfig that authenticates with `token`.
    fn token_kubeconfig(&self, admin: &Path, dir: &Path, user: &str, token: &str) -> PathBuf {
        let path = dir.join(format!("{user}.kubeconfig"));
        std::fs::copy(admin, &path).unwrap();
        self.ok(&path, &["config", "set-credentials", user, &format!("--token={token}")]);
        self.ok(&path, &["config", "set-context", "--current", &format!("--user={user}")]);
        path
    }
}

#[test]
fn token_users_get_what_their_roles_grant() {
    let Some(bin) = std::env::var_os("LICHEN_KUBECTL") else {
        eprintln!("LICHEN_KUBECTL not set: RBAC kubectl test skipped (make test sets it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "bob-secret-token,bob,uid-bob,\"dev,qa\"\n").unwrap();
    let _server = start(&data, &tokens);
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let k = Kubectl { bin: bin.into(), home };
    let admin = data.join("pki/admin.kubeconfig");
    let bob = k.token_kubeconfig(&admin, dir.path(), "bob", "bob-secret-token");
    let mallory = k.token_kubeconfig(&admin, dir.path(), "mallory", "guessed");

    let err = k.fails(&bob, &["get", "pods"]);
    assert_eq!(
        err.trim(),
        "Error from server (Forbidden): pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    let err = k.fails(&mallory, &["get", "pods"]);
    assert!(err.contains("error: You must be logged in to the server (Unauthorized)"), "{err}");

    let who = k.ok(&bob, &["auth", "whoami"]);
    assert!(who.contains("Username    bob"), "{who}");
    assert!(who.contains("UID         uid-bob"), "{who}");
    assert!(who.contains("Groups      [dev qa system:authenticated]"), "{who}");
    assert_eq!(k.run(&bob, &["auth", "can-i", "list", "pods"]).stdout, b"no\n");

    // kubectl sends these as protobuf.
    k.ok(&admin, &["create", "role", "pod-reader", "--verb=get,list", "--resource=pods"]);
    k.ok(&admin, &["create", "rolebinding", "bob-reads-pods", "--role=pod-reader", "--user=bob"]);
    let out = k.run(&bob, &["get", "pods"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "No resources found in default namespace.");
    let err = k.fails(&bob, &["get", "secrets"]);
    assert_eq!(
        err.trim(),
        "Error from server (Forbidden): secrets is forbidden: User \"bob\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""
    );
    let err = k.fails(&bob, &["get", "pods", "-n", "kube-system"]);
    assert!(err.contains("in the namespace \"kube-system\""), "{err}");
    assert_eq!(k.run(&bob, &["auth", "can-i", "list", "pods"]).stdout, b"yes\n");
    assert_eq!(k.run(&bob, &["auth", "can-i", "delete", "pods"]).stdout, b"no\n");

    // Streaming into a pod needs `create` on pods/exec, even over a
    // WebSocket GET (upstream 1.31+): `get` alone opens no shell.
    k.ok(&admin, &["run", "box", "--image=busybox", "--restart=Never"]);
    k.ok(&admin, &["create", "role", "exec-get", "--verb=get", "--resource=pods/exec"]);
    k.ok(&admin, &["create", "rolebinding", "bob-exec-get", "--role=exec-get", "--user=bob"]);
    let err = k.fails(&bob, &["exec", "box", "--", "ls"]);
    assert!(err.contains("cannot create resource \"pods/exec\""), "{err}");
    k.ok(&admin, &["create", "role", "exec", "--verb=create", "--resource=pods/exec"]);
    k.ok(&admin, &["create", "rolebinding", "bob-exec", "--role=exec", "--user=bob"]);
    let err = k.fails(&bob, &["exec", "box", "--", "ls"]);
    assert!(err.contains("pod box does not have a host assigned"), "{err}");
    // A uid in a status write is a precondition.
    let err = k.fails(
        &admin,
        &[
            "patch",
            "pod",
            "box",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"metadata":{"uid":"not-this-one"},"status":{"phase":"Running"}}"#,
        ],
    );
    assert!(err.contains("Precondition failed: UID in precondition: not-this-one"), "{err}");
    let list = k.ok(&bob, &["auth", "can-i", "--list"]);
    assert!(list.lines().any(|l| l.starts_with("pods ") && l.ends_with("[get list]")), "{list}");

    // A ClusterRole aggregated into `view` reaches bob through his binding to view.
    k.ok(&admin, &["create", "clusterrolebinding", "bob-views", "--clusterrole=view", "--user=bob"]);
    assert_eq!(k.run(&bob, &["auth", "can-i", "list", "configmaps", "-A"]).stdout, b"yes\n");
    assert_eq!(k.run(&bob, &["auth", "can-i", "list", "secrets", "-A"]).stdout, b"no\n");
    assert_eq!(k.run(&bob, &["auth", "can-i", "list", "nodes"]).stdout, b"no\n");
    let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: view-nodes\n  labels:\n    rbac.authorization.k8s.io/aggregate-to-view: \"true\"\nrules:\n- apiGroups: [\"\"]\n  resources: [\"nodes\"]\n  verbs: [\"list\"]\n";
    let manifest = dir.path().join("view-nodes.yaml");
    std::fs::write(&manifest, role).unwrap();
    k.ok(&admin, &["apply", "-f", manifest.to_str().unwrap()]);
    assert_eq!(k.run(&bob, &["auth", "can-i", "list", "nodes"]).stdout, b"yes\n");
    k.ok(&bob, &["get", "nodes"]);
}
