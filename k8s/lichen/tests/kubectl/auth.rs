//! Authorization as kubectl sees it: a restricted user (a client
//! certificate for `bob`, group `devs`, signed by the cluster CA), RBAC,
//! `auth can-i`, `auth whoami`.

use crate::common::{Kubectl, setup, user_kubectl};

/// Lets `bob` get and list ConfigMaps in `default`, nothing else.
const BOB_READS_CONFIGMAPS: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: cm-reader
rules:
- apiGroups: [\"\"]
  resources: [\"configmaps\"]
  verbs: [\"get\", \"list\"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: bob-reads-cm
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: cm-reader
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: bob
";

fn seed(k: &Kubectl) {
    let docs = crate::manifests::configmap("c1", "default", "x", "1")
        + "---\n"
        + &crate::manifests::namespace("team");
    k.run_stdin(&["create", "-f", "-"], &docs).ok();
}

#[test]
fn restricted_user_is_forbidden_with_upstream_messages() {
    let Some((server, k)) = setup() else { return };
    seed(&k);
    let bob = user_kubectl(&server, &k, "bob", &["devs"]);
    // Discovery is open to every authenticated user (system:discovery).
    let names = bob.run(&["api-resources", "-o", "name"]);
    assert!(names.ok().lines().any(|l| l == "configmaps"), "{}", names.stdout);
    for (args, want) in [
        (
            vec!["get", "secrets"],
            r#"Error from server (Forbidden): secrets is forbidden: User "bob" cannot list resource "secrets" in API group "" in the namespace "default""#,
        ),
        (
            vec!["get", "cm", "c1"],
            r#"Error from server (Forbidden): configmaps "c1" is forbidden: User "bob" cannot get resource "configmaps" in API group "" in the namespace "default""#,
        ),
        (
            vec!["get", "nodes"],
            r#"Error from server (Forbidden): nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" at the cluster scope"#,
        ),
        (
            vec!["get", "deploy", "-n", "team"],
            r#"Error from server (Forbidden): deployments.apps is forbidden: User "bob" cannot list resource "deployments" in API group "apps" in the namespace "team""#,
        ),
        (
            vec!["delete", "cm", "c1"],
            r#"Error from server (Forbidden): configmaps "c1" is forbidden: User "bob" cannot delete resource "configmaps" in API group "" in the namespace "default""#,
        ),
    ] {
        let out = bob.run(&args);
        assert_eq!(out.fails().trim_end(), want);
    }
    let create =
        bob.run_stdin(&["create", "-f", "-"], &crate::manifests::configmap("c2", "default", "x", "1"));
    assert_eq!(
        create.fails().trim_end(),
        r#"Error from server (Forbidden): error when creating "STDIN": configmaps is forbidden: User "bob" cannot create resource "configmaps" in API group "" in the namespace "default""#
    );
    k.run(&["get", "cm", "c1", "-o", "name"]).prints("configmap/c1");
}

#[test]
fn rbac_role_binding_grants_a_user_access() {
    let Some((server, k)) = setup() else { return };
    seed(&k);
    let bob = user_kubectl(&server, &k, "bob", &["devs"]);
    k.run_stdin(&["create", "-f", "-"], BOB_READS_CONFIGMAPS).ok();
    bob.run(&["get", "cm", "c1", "-o", "jsonpath={.data.a}"]).prints("1");
    bob.run(&["get", "cm", "-l", "app=x", "-o", "name"]).prints("configmap/c1");
    let del = bob.run(&["delete", "cm", "c1"]);
    assert!(del.fails().contains(r#"User "bob" cannot delete resource "configmaps""#), "{}", del.stderr);
    let other_ns = bob.run(&["get", "cm", "-n", "team"]);
    assert!(other_ns.fails().contains(r#"in the namespace "team""#), "{}", other_ns.stderr);
    // A ClusterRole bound to bob's group.
    let crb = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: ns-reader
rules:
- apiGroups: [\"\"]
  resources: [\"namespaces\"]
  verbs: [\"list\"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: devs-read-ns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: ns-reader
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: devs
";
    k.run_stdin(&["create", "-f", "-"], crb).ok();
    bob.run(&["get", "ns", "team", "-o", "name"]).fails();
    let list = bob.run(&["get", "ns", "-o", "name"]);
    assert!(list.ok().lines().any(|l| l == "namespace/team"), "{}", list.stdout);
}

/// A user who may write RoleBindings can still only grant what they hold.
#[test]
fn rbac_writes_cannot_escalate() {
    let Some((server, k)) = setup() else { return };
    seed(&k);
    let bob = user_kubectl(&server, &k, "bob", &["devs"]);
    k.run_stdin(&["create", "-f", "-"], BOB_READS_CONFIGMAPS).ok();
    k.run(&["create", "role", "binder", "--verb=create,get", "--resource=rolebindings,roles"]).ok();
    k.run(&["create", "rolebinding", "bob-binder", "--role=binder", "--user=bob"]).ok();
    let admin = bob.run(&["create", "rolebinding", "bob-admin", "--clusterrole=cluster-admin", "--user=bob"]);
    assert!(
        admin.fails().contains("is attempting to grant RBAC permissions not currently held"),
        "{}",
        admin.stderr
    );
    let role = bob.run(&["create", "role", "secrets", "--verb=get", "--resource=secrets"]);
    assert!(
        role.fails().contains(r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}"#),
        "{}",
        role.stderr
    );
    // What bob holds he may grant.
    bob.run(&["create", "role", "cm-getter", "--verb=get", "--resource=configmaps"])
        .prints("role.rbac.authorization.k8s.io/cm-getter created");
    bob.run(&["create", "rolebinding", "alice-cm", "--role=cm-getter", "--user=alice"])
        .prints("rolebinding.rbac.authorization.k8s.io/alice-cm created");
}

#[test]
fn auth_can_i_as_admin_and_as_a_restricted_user() {
    let Some((server, k)) = setup() else { return };
    k.run(&["auth", "can-i", "create", "configmaps"]).prints("yes");
    k.run(&["auth", "can-i", "*", "*", "--all-namespaces"]).prints("yes");
    let bob = user_kubectl(&server, &k, "bob", &["devs"]);
    let no = bob.run(&["auth", "can-i", "get", "configmaps"]);
    assert_eq!((no.code, no.stdout.as_str()), (1, "no\n"), "{}", no.stderr);
    k.run_stdin(&["create", "-f", "-"], BOB_READS_CONFIGMAPS).ok();
    bob.run(&["auth", "can-i", "get", "configmaps"]).prints("yes");
    bob.run(&["auth", "can-i", "list", "configmaps", "-n", "default"]).prints("yes");
    let delete = bob.run(&["auth", "can-i", "delete", "configmaps"]);
    assert_eq!((delete.code, delete.stdout.as_str()), (1, "no\n"));
    let elsewhere = bob.run(&["auth", "can-i", "get", "configmaps", "-n", "kube-system"]);
    assert_eq!((elsewhere.code, elsewhere.stdout.as_str()), (1, "no\n"));
}

#[test]
fn auth_whoami_names_the_user_and_groups() {
    let Some((server, k)) = setup() else { return };
    let bob = user_kubectl(&server, &k, "bob", &["devs"]);
    let out = bob.run(&["auth", "whoami"]);
    let rows = crate::common::table(out.ok());
    assert_eq!(rows[0], ["ATTRIBUTE", "VALUE"]);
    assert_eq!(rows[1], ["Username", "bob"]);
    assert_eq!(rows[2], ["Groups", "[devs", "system:authenticated]"]);
    let admin = k.run(&["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
    assert_eq!(admin.ok(), "system:admin");
}
