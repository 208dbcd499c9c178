use serde_json::{Value, json};

use super::*;
use crate::rbac::rules::ResourceAttributes;

fn user(name: &str, groups: &[&str]) -> Identity {
    let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    groups.push("system:authenticated".into());
    Identity { user: name.into(), uid: String::new(), groups, extra: Default::default() }
}

fn req(verb: &str, ns: &str, group: &str, resource: &str, sub: &str, name: &str) -> Request {
    Request::Resource(ResourceAttributes {
        verb: verb.into(),
        namespace: ns.into(),
        group: group.into(),
        version: "v1".into(),
        resource: resource.into(),
        subresource: sub.into(),
        name: name.into(),
    })
}

fn cluster_role(name: &str, labels: Value, rules: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}, "rules": rules})
}

fn role(ns: &str, name: &str, rules: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": ns}, "rules": rules})
}

fn binding(ns: &str, name: &str, kind: &str, role: &str, subjects: Value) -> Value {
    let mut meta = json!({"name": name});
    if !ns.is_empty() {
        meta["namespace"] = json!(ns);
    }
    json!({
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": subjects,
    })
}

fn pod_reader() -> Value {
    json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}])
}

#[test]
fn cluster_role_bindings_apply_everywhere() {
    let p = Policy::new(
        &[cluster_role("reader", json!({}), pod_reader())],
        &[],
        &[binding("", "readers", "ClusterRole", "reader", json!([{"kind": "Group", "name": "dev"}]))],
        &[],
    );
    let d = p.authorize(&user("bob", &["dev"]), &req("list", "prod", "", "pods", "", ""));
    assert_eq!(
        d,
        Decision {
            allowed: true,
            reason:
                "RBAC: allowed by ClusterRoleBinding \"readers\" of ClusterRole \"reader\" to Group \"dev\""
                    .into()
        }
    );
    assert!(p.authorize(&user("bob", &["dev"]), &req("list", "", "", "pods", "", "")).allowed);
    let d = p.authorize(&user("eve", &[]), &req("list", "prod", "", "pods", "", ""));
    assert_eq!(d, Decision { allowed: false, reason: String::new() });
    assert!(!p.authorize(&user("bob", &["dev"]), &req("delete", "prod", "", "pods", "", "x")).allowed);
}

#[test]
fn role_bindings_apply_only_in_their_namespace() {
    let p = Policy::new(
        &[cluster_role(
            "secret-reader",
            json!({}),
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        )],
        &[role("dev", "pod-reader", pod_reader())],
        &[],
        &[
            binding("dev", "read-pods", "Role", "pod-reader", json!([{"kind": "User", "name": "bob"}])),
            binding(
                "dev",
                "read-secrets",
                "ClusterRole",
                "secret-reader",
                json!([{"kind": "User", "name": "bob"}]),
            ),
        ],
    );
    let bob = user("bob", &[]);
    let d = p.authorize(&bob, &req("get", "dev", "", "pods", "", "p"));
    assert_eq!(
        d.reason,
        "RBAC: allowed by RoleBinding \"read-pods/dev\" of Role \"pod-reader\" to User \"bob\""
    );
    assert!(
        p.authorize(&bob, &req("get", "dev", "", "secrets", "", "s")).allowed,
        "ClusterRole via RoleBinding"
    );
    assert!(!p.authorize(&bob, &req("get", "prod", "", "pods", "", "p")).allowed);
    assert!(!p.authorize(&bob, &req("get", "prod", "", "secrets", "", "s")).allowed);
    assert!(!p.authorize(&bob, &req("get", "", "", "secrets", "", "s")).allowed, "not cluster-wide");
    assert!(!p.authorize(&user("alice", &[]), &req("get", "dev", "", "pods", "", "p")).allowed);
}

#[test]
fn a_role_binding_cannot_use_another_namespaces_role() {
    let p = Policy::new(
        &[],
        &[role("other", "pod-reader", pod_reader())],
        &[],
        &[binding("dev", "read-pods", "Role", "pod-reader", json!([{"kind": "User", "name": "bob"}]))],
    );
    let d = p.authorize(&user("bob", &[]), &req("get", "dev", "", "pods", "", "p"));
    assert_eq!(
        d,
        Decision {
            allowed: false,
            reason: "RBAC: role.rbac.authorization.k8s.io \"pod-reader\" not found".into()
        }
    );
}

#[test]
fn missing_roles_are_reported_unless_something_else_allows() {
    let p = Policy::new(
        &[cluster_role("reader", json!({}), pod_reader())],
        &[],
        &[
            binding("", "a", "ClusterRole", "gone", json!([{"kind": "User", "name": "bob"}])),
            binding("", "b", "ClusterRole", "gone2", json!([{"kind": "User", "name": "bob"}])),
            binding("", "c", "ClusterRole", "gone", json!([{"kind": "User", "name": "bob"}])),
            binding("", "d", "Strange", "x", json!([{"kind": "User", "name": "bob"}])),
        ],
        &[],
    );
    let d = p.authorize(&user("bob", &[]), &req("get", "dev", "", "pods", "", "p"));
    assert_eq!(
        d.reason,
        "RBAC: [clusterrole.rbac.authorization.k8s.io \"gone\" not found, clusterrole.rbac.authorization.k8s.io \"gone2\" not found, unsupported role reference kind: \"Strange\"]"
    );
    let p = Policy::new(
        &[cluster_role("reader", json!({}), pod_reader())],
        &[],
        &[
            binding("", "a", "ClusterRole", "gone", json!([{"kind": "User", "name": "bob"}])),
            binding("", "b", "ClusterRole", "reader", json!([{"kind": "User", "name": "bob"}])),
        ],
        &[],
    );
    assert!(p.authorize(&user("bob", &[]), &req("get", "dev", "", "pods", "", "p")).allowed);
}

#[test]
fn service_account_subjects() {
    let p = Policy::new(
        &[cluster_role("reader", json!({}), pod_reader())],
        &[],
        &[binding(
            "",
            "sa",
            "ClusterRole",
            "reader",
            json!([{"kind": "ServiceAccount", "name": "bot", "namespace": "ci"}]),
        )],
        &[
            binding(
                "dev",
                "local",
                "ClusterRole",
                "reader",
                json!([{"kind": "ServiceAccount", "name": "builder"}]),
            ),
            binding(
                "dev",
                "all-sas",
                "ClusterRole",
                "reader",
                json!([{"kind": "Group", "name": "system:serviceaccounts:qa"}]),
            ),
        ],
    );
    let bot = service_account_identity("ci", "bot", "u");
    assert_eq!(bot.user, "system:serviceaccount:ci:bot");
    let d = p.authorize(&bot, &req("list", "anywhere", "", "pods", "", ""));
    assert_eq!(
        d.reason,
        "RBAC: allowed by ClusterRoleBinding \"sa\" of ClusterRole \"reader\" to ServiceAccount \"bot/ci\""
    );
    assert!(
        !p.authorize(&service_account_identity("other", "bot", "u"), &req("list", "x", "", "pods", "", ""))
            .allowed
    );
    // A subject without a namespace is the binding's namespace.
    let builder = service_account_identity("dev", "builder", "u");
    let d = p.authorize(&builder, &req("list", "dev", "", "pods", "", ""));
    assert_eq!(
        d.reason,
        "RBAC: allowed by RoleBinding \"local/dev\" of ClusterRole \"reader\" to ServiceAccount \"builder/dev\""
    );
    assert!(
        !p.authorize(
            &service_account_identity("prod", "builder", "u"),
            &req("list", "dev", "", "pods", "", "")
        )
        .allowed
    );
    // Another account of the same namespace is not it.
    assert!(
        !p.authorize(
            &user("system:serviceaccount:dev:builder2", &[]),
            &req("list", "dev", "", "pods", "", "")
        )
        .allowed
    );
    // The per-namespace service account group.
    let qa = service_account_identity("qa", "tester", "u");
    assert!(p.authorize(&qa, &req("list", "dev", "", "pods", "", "")).allowed);
}

#[test]
fn aggregation_is_the_union_of_matching_roles_transitively() {
    let to = |which: &str| json!({format!("rbac.authorization.k8s.io/aggregate-to-{which}"): "true"});
    let agg = |which: &str, labels: Value| {
        json!({
            "metadata": {"name": which, "labels": labels},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{which}"): "true"}}]},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
        })
    };
    let roles = vec![
        agg("admin", json!({})),
        agg("edit", to("admin")),
        agg("view", to("edit")),
        cluster_role("view-pods", to("view"), pod_reader()),
        cluster_role(
            "edit-pods",
            to("edit"),
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]),
        ),
        cluster_role("also-view-pods", to("view"), pod_reader()),
        cluster_role(
            "unrelated",
            json!({"x": "y"}),
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        ),
    ];
    let p = Policy::new(
        &roles,
        &[],
        &[],
        &[
            binding("dev", "viewers", "ClusterRole", "view", json!([{"kind": "User", "name": "v"}])),
            binding("dev", "admins", "ClusterRole", "admin", json!([{"kind": "User", "name": "a"}])),
        ],
    );
    assert_eq!(
        p.cluster_role("view").unwrap(),
        PolicyRule::list(&json!({"rules": pod_reader()})),
        "each rule once"
    );
    assert_eq!(p.cluster_role("admin").unwrap().len(), 2);
    let (v, a) = (user("v", &[]), user("a", &[]));
    assert!(p.authorize(&v, &req("list", "dev", "", "pods", "", "")).allowed);
    assert!(!p.authorize(&v, &req("create", "dev", "", "pods", "", "")).allowed, "own rules are replaced");
    assert!(!p.authorize(&v, &req("get", "dev", "", "secrets", "", "s")).allowed);
    assert!(p.authorize(&a, &req("create", "dev", "", "pods", "", "")).allowed);
    assert!(p.authorize(&a, &req("get", "dev", "", "pods", "", "p")).allowed, "view via edit");
    assert!(!p.authorize(&a, &req("delete", "dev", "", "pods", "", "p")).allowed);
}

#[test]
fn aggregation_cycles_terminate() {
    let a = json!({
        "metadata": {"name": "a", "labels": {"to-b": "true"}},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-a": "true"}}]},
    });
    let b = json!({
        "metadata": {"name": "b", "labels": {"to-a": "true"}},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-b": "true"}}]},
        "rules": pod_reader(),
    });
    let p = Policy::new(&[a, b], &[], &[], &[]);
    assert!(p.cluster_role("a").is_some() && p.cluster_role("b").is_some());
}

#[test]
fn rules_for_lists_cluster_and_namespace_rules() {
    let p = Policy::new(
        &[cluster_role("disc", json!({}), json!([{"nonResourceURLs": ["/api"], "verbs": ["get"]}]))],
        &[role("dev", "pod-reader", pod_reader())],
        &[binding(
            "",
            "d",
            "ClusterRole",
            "disc",
            json!([{"kind": "Group", "name": "system:authenticated"}]),
        )],
        &[
            binding("dev", "r", "Role", "pod-reader", json!([{"kind": "User", "name": "bob"}])),
            binding("dev", "gone", "Role", "nope", json!([{"kind": "User", "name": "bob"}])),
        ],
    );
    let (rules, err) = p.rules_for(&user("bob", &[]), "dev");
    assert_eq!(rules.len(), 2);
    assert_eq!(err.as_deref(), Some("role.rbac.authorization.k8s.io \"nope\" not found"));
    let (rules, err) = p.rules_for(&user("bob", &[]), "prod");
    assert_eq!((rules.len(), err), (1, None));
}
