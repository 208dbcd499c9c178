//! Acceptance tests of `lichen server` with the real kubectl 1.37
//! (`LICHEN_KUBECTL`, set by `make test`; skipped without it). Each test
//! starts its own server (fresh data dir, port and kubectl cache) and
//! checks what kubectl prints or what the server stored against upstream
//! Kubernetes' behaviour, not only exit codes.
//!
//! Tests marked `#[ignore = "waiting for …"]` are written to upstream's
//! expectation for features still being built; `#[ignore = "bug: …"]` ones
//! show a deviation in something that already exists. Run them with
//! `cargo test -p lichen --test kubectl -- --ignored`.

#![allow(clippy::unwrap_used)] // test code: a failed step should panic with its error

mod common;

#[path = "kubectl/auth.rs"]
mod auth;
#[path = "kubectl/crd.rs"]
mod crd;
#[path = "kubectl/discovery.rs"]
mod discovery;
#[path = "kubectl/errors.rs"]
mod errors;
#[path = "kubectl/read.rs"]
mod read;
#[path = "kubectl/write.rs"]
mod write;

/// Manifests the tests share.
mod manifests {
    /// A ConfigMap `name` in `ns` with label `app=<app>` and data `a: <a>`.
    pub fn configmap(name: &str, ns: &str, app: &str, a: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    app: \"{app}\"\ndata:\n  a: \"{a}\"\n"
        )
    }

    pub fn namespace(name: &str) -> String {
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
    }

    /// A Deployment `name` (label and selector `app=<name>`) with one
    /// container per `(name, image)`.
    pub fn deployment(name: &str, replicas: u32, containers: &[(&str, &str)]) -> String {
        let mut s = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels:\n    app: {name}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n"
        );
        for (c, image) in containers {
            s.push_str(&format!("      - name: {c}\n        image: {image}\n"));
        }
        s
    }
}
