//! Service-account tokens with the real kubectl (`LICHEN_KUBECTL`, set by
//! `make test`; skipped without it): `kubectl create token` gets a token
//! that authenticates as the service account, RBAC applies to it, the
//! lifetime is checked as upstream, and deleting the service account or the
//! pod a token is bound to makes the token useless.

#![allow(clippy::unwrap_used)] // test code: a failed step should panic with its error

mod common;

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use common::{Kubectl, Server};

const UNAUTHORIZED: &str = "error: You must be logged in to the server (Unauthorized)";

/// kubectl authenticating with `token` alone: a copy of the admin
/// kubeconfig whose user has no client certificate (it would win).
fn with_token(server: &Server, admin: &Kubectl, name: &str, token: &str) -> Kubectl {
    let path = server.path(&format!("{name}.kubeconfig"));
    std::fs::copy(server.kubeconfig(), &path).unwrap();
    let k = admin.with_kubeconfig(&path, &server.path(&format!("home-{name}")));
    k.run(&["config", "set-credentials", name, &format!("--token={token}")]).ok();
    k.run(&["config", "set-context", "--current", &format!("--user={name}")]).ok();
    k
}

/// `kubectl auth whoami` as (attribute, value) rows.
fn whoami(k: &Kubectl) -> Vec<(String, String)> {
    let out = k.run(&["auth", "whoami"]);
    out.ok()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once("  "))
        .map(|(a, v)| (a.to_string(), v.trim().to_string()))
        .collect()
}

fn attribute(rows: &[(String, String)], name: &str) -> String {
    rows.iter().find(|(a, _)| a == name).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// One part of a JWT, decoded as JSON (0 header, 1 claims).
fn part(token: &str, i: usize) -> serde_json::Value {
    let part = token.split('.').nth(i).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn claims(token: &str) -> serde_json::Value {
    part(token, 1)
}

fn manifest(server: &Server, name: &str, text: &str) -> PathBuf {
    server.write(name, text)
}

#[test]
fn kubectl_create_token_authenticates_as_the_service_account() {
    let Some((server, k)) = common::setup() else { return };
    k.run(&["create", "serviceaccount", "sa1"]).ok();
    let uid = k.run(&["get", "serviceaccount", "sa1", "-o", "jsonpath={.metadata.uid}"]).ok().to_string();
    let token = k.run(&["create", "token", "sa1"]).ok().trim().to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let c = claims(&token);
    assert_eq!(c["sub"], "system:serviceaccount:default:sa1");
    assert_eq!(c["aud"], serde_json::json!(["https://kubernetes.default.svc.cluster.local"]));
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 3600);

    let sa = with_token(&server, &k, "sa1", &token);
    let me = whoami(&sa);
    assert_eq!(attribute(&me, "Username"), "system:serviceaccount:default:sa1", "{me:?}");
    assert_eq!(attribute(&me, "UID"), uid, "{me:?}");
    assert_eq!(
        attribute(&me, "Groups"),
        "[system:serviceaccounts system:serviceaccounts:default system:authenticated]",
        "{me:?}"
    );
    let jti = c["jti"].as_str().unwrap();
    assert_eq!(attribute(&me, "Extra: authentication.kubernetes.io/credential-id"), format!("[JTI={jti}]"));

    // RBAC: nothing by default, what a binding grants afterwards.
    let err = sa.run(&["get", "pods"]).fails().to_string();
    assert_eq!(
        err.trim(),
        "Error from server (Forbidden): pods is forbidden: User \"system:serviceaccount:default:sa1\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    k.run(&["create", "rolebinding", "sa1-view", "--clusterrole=view", "--serviceaccount=default:sa1"]).ok();
    let out = sa.run(&["get", "pods"]);
    out.ok();
    assert_eq!(out.stderr.trim(), "No resources found in default namespace.");
    assert!(sa.run(&["get", "secrets"]).fails().contains("cannot list resource \"secrets\""));
    // The service account may not mint itself tokens without a grant.
    assert!(
        sa.run(&["create", "token", "sa1"])
            .fails()
            .contains("cannot create resource \"serviceaccounts/token\"")
    );

    // Upstream's floor on the lifetime; no ceiling by default.
    let err = k.run(&["create", "token", "sa1", "--duration=5m"]).fails().to_string();
    assert_eq!(
        err.trim(),
        "error: failed to create token: TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes"
    );
    let long = k.run(&["create", "token", "sa1", "--duration=72h"]).ok().trim().to_string();
    let c = claims(&long);
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 72 * 3600);
    let err = k.run(&["create", "token", "nobody"]).fails().to_string();
    assert!(err.contains("serviceaccounts \"nobody\" not found"), "{err}");

    // A token for another audience is not for the API server.
    let vault = k.run(&["create", "token", "sa1", "--audience=vault"]).ok().trim().to_string();
    let other = with_token(&server, &k, "vault", &vault);
    assert!(other.run(&["auth", "whoami"]).fails().contains(UNAUTHORIZED));

    // Deleting the service account revokes its tokens, and a new account
    // of the same name does not inherit them.
    k.run(&["delete", "serviceaccount", "sa1"]).ok();
    assert!(sa.run(&["auth", "whoami"]).fails().contains(UNAUTHORIZED));
    k.run(&["create", "serviceaccount", "sa1"]).ok();
    assert!(sa.run(&["auth", "whoami"]).fails().contains(UNAUTHORIZED));
    // Static credentials are untouched.
    assert!(k.run(&["auth", "whoami"]).ok().contains("system:admin"));
}

#[test]
fn a_pod_bound_token_dies_with_its_pod() {
    let Some((server, k)) = common::setup() else { return };
    k.run(&["create", "serviceaccount", "sa1"]).ok();
    // The pod only has to exist as an object: its node does not.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  serviceAccountName: sa1\n  nodeName: ghost\n  containers:\n  - name: c\n    image: busybox\n";
    let path = manifest(&server, "p.yaml", pod);
    k.run(&["create", "-f", path.to_str().unwrap()]).ok();
    let pod_uid = k.run(&["get", "pod", "p", "-o", "jsonpath={.metadata.uid}"]).ok().to_string();

    let err = k
        .run(&["create", "token", "sa1", "--bound-object-kind", "Pod", "--bound-object-name", "q"])
        .fails()
        .to_string();
    assert!(err.contains("pods \"q\" not found"), "{err}");
    let err = k
        .run(&[
            "create",
            "token",
            "sa1",
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "p",
            "--bound-object-uid",
            "x",
        ])
        .fails()
        .to_string();
    assert!(
        err.contains("the UID in the bound object reference (x) does not match the UID in record"),
        "{err}"
    );

    let token = k
        .run(&["create", "token", "sa1", "--bound-object-kind", "Pod", "--bound-object-name", "p"])
        .ok()
        .trim()
        .to_string();
    let c = claims(&token);
    assert_eq!(c["kubernetes.io"]["pod"], serde_json::json!({"name": "p", "uid": pod_uid}));
    assert_eq!(c["kubernetes.io"]["node"], serde_json::json!({"name": "ghost"}));
    let sa = with_token(&server, &k, "sa1", &token);
    let me = whoami(&sa);
    assert_eq!(attribute(&me, "Username"), "system:serviceaccount:default:sa1");
    assert_eq!(attribute(&me, "Extra: authentication.kubernetes.io/pod-name"), "[p]", "{me:?}");
    assert_eq!(attribute(&me, "Extra: authentication.kubernetes.io/pod-uid"), format!("[{pod_uid}]"));
    assert_eq!(attribute(&me, "Extra: authentication.kubernetes.io/node-name"), "[ghost]");

    // A scheduled pod is deleted gracefully: while it terminates, its
    // token still works, as upstream.
    k.run(&["delete", "pod", "p", "--wait=false"]).ok();
    let ts = k.run(&["get", "pod", "p", "-o", "jsonpath={.metadata.deletionTimestamp}"]).ok().to_string();
    assert!(!ts.is_empty(), "the pod should be terminating");
    assert_eq!(attribute(&whoami(&sa), "Username"), "system:serviceaccount:default:sa1");
    // Gone: the token is dead.
    k.run(&["delete", "pod", "p", "--grace-period=0", "--force"]).ok();
    assert!(k.run(&["get", "pod", "p"]).fails().contains("pods \"p\" not found"));
    assert!(sa.run(&["auth", "whoami"]).fails().contains(UNAUTHORIZED));
    // The service account's unbound tokens are unaffected.
    let unbound = k.run(&["create", "token", "sa1"]).ok().trim().to_string();
    let other = with_token(&server, &k, "unbound", &unbound);
    assert_eq!(attribute(&whoami(&other), "Username"), "system:serviceaccount:default:sa1");
}

#[test]
fn token_subresource_is_discovered_and_issuer_documents_are_served() {
    let Some((server, k)) = common::setup() else { return };
    let out = k.run(&["get", "--raw", "/api/v1"]).ok().to_string();
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let token = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "serviceaccounts/token")
        .expect("serviceaccounts/token in /api/v1")
        .clone();
    assert_eq!(token["kind"], "TokenRequest");
    assert_eq!(token["group"], "authentication.k8s.io");
    assert_eq!(token["verbs"], serde_json::json!(["create"]));

    k.run(&["create", "serviceaccount", "sa1"]).ok();
    let t = k.run(&["create", "token", "sa1"]).ok().trim().to_string();
    let sa = with_token(&server, &k, "sa1", &t);
    let config: serde_json::Value =
        serde_json::from_str(sa.run(&["get", "--raw", "/.well-known/openid-configuration"]).ok()).unwrap();
    assert_eq!(config["issuer"], "https://kubernetes.default.svc.cluster.local");
    let jwks: serde_json::Value =
        serde_json::from_str(sa.run(&["get", "--raw", "/openid/v1/jwks"]).ok()).unwrap();
    let header = part(&t, 0);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
    // The key survives a restart: old tokens keep working.
    let mut server = server;
    server.restart();
    let sa =
        with_token(&server, &k.with_kubeconfig(&server.kubeconfig(), &server.path("home")), "sa1-again", &t);
    assert_eq!(attribute(&whoami(&sa), "Username"), "system:serviceaccount:default:sa1");
}
