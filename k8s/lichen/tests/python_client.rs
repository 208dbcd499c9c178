//! The official Python client (PyPI `kubernetes`, installed next to kubectl
//! by `make deps`) against `lichen server`: typed CRUD, errors, a watch and
//! the DynamicClient's discovery. Each test runs one step of
//! `tests/data/client.py` against a server of its own, with a fresh TMPDIR
//! so the DynamicClient's discovery cache ($TMPDIR/osrcp-*.json) is never
//! another server's. Skipped without `LICHEN_KUBECTL` (the venv's python
//! lives beside it).

#![allow(clippy::unwrap_used)] // test code: a failed step should panic with its error

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{COMMAND_TIMEOUT, Server, kubectl_bin, run_with_timeout};

/// The venv's python, beside `LICHEN_KUBECTL`.
fn python() -> Option<PathBuf> {
    let py = kubectl_bin()?.with_file_name("python3");
    let check = Command::new(&py).args(["-c", "import kubernetes"]).output();
    assert!(
        check.as_ref().is_ok_and(|o| o.status.success()),
        "{} cannot import kubernetes (make deps installs it; or pip install kubernetes==37.0.2): {check:?}",
        py.display()
    );
    Some(py)
}

/// Runs `client.py <kubeconfig> <step>` against a fresh server and checks
/// that the step reported success; returns the TMPDIR it used.
fn step(name: &str) -> Option<(Server, PathBuf)> {
    let py = python()?;
    let server = Server::start();
    let tmp = server.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // At run time (see image/src/board.rs): this checkout's script.
    let script = format!("{}/tests/data/client.py", std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let mut cmd = Command::new(py);
    cmd.arg(script).arg(server.kubeconfig()).arg(name).env("TMPDIR", &tmp).env("HOME", server.path("home"));
    let out = run_with_timeout(cmd, "", format!("client.py {name}"), COMMAND_TIMEOUT);
    assert_eq!(out.code, 0, "client.py {name}:\n{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout.trim_end(), format!("ok {name}"), "{}", out.stderr);
    Some((server, tmp))
}

#[test]
fn typed_configmap_crud() {
    step("typed_crud");
}

#[test]
fn delete_answers_a_success_status() {
    step("delete_status");
}

#[test]
fn api_exceptions_carry_status_and_reason() {
    step("errors");
}

#[test]
fn watch_sees_added_modified_deleted() {
    step("watch");
}

#[test]
fn dynamic_client_discovers_and_caches_in_tmpdir() {
    let Some((_server, tmp)) = step("dynamic") else { return };
    let cached: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("osrcp-") && n.ends_with(".json"))
        .collect();
    assert_eq!(cached.len(), 1, "discovery cache in {}: {cached:?}", tmp.display());
}
