//! The ClusterRoles and ClusterRoleBindings every cluster starts with,
//! as upstream's bootstrap policy (`plugin/pkg/auth/authorizer/rbac/
//! bootstrappolicy`) defines them: `cluster-admin` for `system:masters`,
//! discovery, public info and self reviews for every authenticated user,
//! and the user-facing `admin`, `edit`, `view` built by aggregation.

use serde_json::{Value, json};

const RW: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const READ: &[&str] = &["get", "list", "watch"];
const ALL: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn urls(paths: &[&str], verbs: &[&str]) -> Value {
    json!({"nonResourceURLs": paths, "verbs": verbs})
}

fn metadata(name: &str, aggregate_to: Option<&str>) -> Value {
    let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    if let Some(to) = aggregate_to {
        labels[format!("rbac.authorization.k8s.io/aggregate-to-{to}")] = json!("true");
    }
    json!({
        "name": name,
        "labels": labels,
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    })
}

fn cluster_role(name: &str, aggregate_to: Option<&str>, rules: Vec<Value>) -> Value {
    json!({
        "kind": "ClusterRole",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": metadata(name, aggregate_to),
        "rules": rules,
    })
}

/// A role whose rules are those of the roles labelled `aggregate-to-<name>`.
fn aggregated(name: &str, aggregate_to: Option<&str>) -> Value {
    let mut r = cluster_role(name, aggregate_to, Vec::new());
    r["aggregationRule"] = json!({"clusterRoleSelectors": [
        {"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{name}"): "true"}}
    ]});
    r
}

fn binding(role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": g}))
        .collect();
    json!({
        "kind": "ClusterRoleBinding",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": metadata(role, None),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

/// The default ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    vec![
        aggregated("admin", None),
        cluster_role("cluster-admin", None, vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])]),
        aggregated("edit", Some("admin")),
        cluster_role(
            "system:aggregate-to-admin",
            Some("admin"),
            vec![
                rule(&["authorization.k8s.io"], &["localsubjectaccessreviews"], &["create"]),
                rule(&["rbac.authorization.k8s.io"], &["rolebindings", "roles"], ALL),
            ],
        ),
        cluster_role("system:aggregate-to-edit", Some("edit"), aggregate_to_edit()),
        cluster_role("system:aggregate-to-view", Some("view"), aggregate_to_view()),
        cluster_role(
            "system:auth-delegator",
            None,
            vec![
                rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
                rule(&["authorization.k8s.io"], &["subjectaccessreviews"], &["create"]),
            ],
        ),
        cluster_role(
            "system:basic-user",
            None,
            vec![
                rule(
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &["create"],
                ),
                rule(&["authentication.k8s.io"], &["selfsubjectreviews"], &["create"]),
            ],
        ),
        // Permission to have a node's client certificate request
        // auto-approved: the approver asks with a SubjectAccessReview for
        // `create` on these subresources (upstream's names).
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            None,
            vec![rule(&["certificates.k8s.io"], &["certificatesigningrequests/nodeclient"], &["create"])],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            None,
            vec![rule(&["certificates.k8s.io"], &["certificatesigningrequests/selfnodeclient"], &["create"])],
        ),
        cluster_role(
            "system:discovery",
            None,
            vec![urls(
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
                &["get"],
            )],
        ),
        cluster_role(
            "system:monitoring",
            None,
            vec![urls(
                &[
                    "/healthz",
                    "/healthz/*",
                    "/livez",
                    "/livez/*",
                    "/metrics",
                    "/metrics/slis",
                    "/readyz",
                    "/readyz/*",
                ],
                &["get"],
            )],
        ),
        // Upstream's `system:node` rules. Upstream leaves the role unbound and
        // narrows nodes to their own objects with the Node authorizer; Lichen
        // binds it to `system:nodes` (the Node authorizer is not built yet).
        cluster_role(
            "system:node",
            None,
            vec![
                rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
                rule(
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews", "subjectaccessreviews"],
                    &["create"],
                ),
                rule(&[""], &["services"], &["get", "list", "watch"]),
                rule(&[""], &["nodes"], &["create", "get", "list", "watch", "patch", "update", "delete"]),
                rule(&[""], &["nodes/status"], &["patch", "update"]),
                rule(&[""], &["events"], &["create", "patch", "update"]),
                rule(&[""], &["pods"], &["get", "list", "watch", "create", "delete"]),
                rule(&[""], &["pods/status"], &["patch", "update"]),
                rule(&[""], &["pods/eviction"], &["create"]),
                rule(&[""], &["configmaps", "secrets"], &["get", "list", "watch"]),
                rule(&[""], &["persistentvolumeclaims", "persistentvolumes"], &["get"]),
                rule(&[""], &["endpoints"], &["get"]),
                rule(
                    &["certificates.k8s.io"],
                    &["certificatesigningrequests"],
                    &["create", "get", "list", "watch"],
                ),
                rule(&["coordination.k8s.io"], &["leases"], &["create", "delete", "get", "patch", "update"]),
                rule(&["storage.k8s.io"], &["volumeattachments", "csidrivers"], &["get"]),
                rule(&[""], &["serviceaccounts/token"], &["create"]),
                rule(&[""], &["persistentvolumeclaims/status"], &["get", "patch", "update"]),
                rule(&["node.k8s.io"], &["runtimeclasses"], &["get", "list", "watch"]),
            ],
        ),
        // Upstream's `system:node-proxier` (kube-proxy's role), plus what
        // the rest of Lichen's in-process networking on every node reads:
        // the cluster DNS (Services, EndpointSlices) and NetworkPolicy
        // (policies, pods, namespaces). k3s gives its agents' kube-proxy
        // and flannel users of their own; a joined Lichen agent runs them
        // all with its node certificate, so `system:nodes` get this role.
        cluster_role(
            "system:node-proxier",
            None,
            vec![
                rule(&[""], &["endpoints", "services"], &["list", "watch"]),
                rule(&[""], &["nodes"], &["get", "list", "watch"]),
                rule(&[""], &["events"], &["create", "patch", "update"]),
                rule(&["events.k8s.io"], &["events"], &["create", "patch", "update"]),
                rule(&["discovery.k8s.io"], &["endpointslices"], &["list", "watch"]),
            ],
        ),
        cluster_role(
            "lichen:node-network",
            None,
            vec![
                rule(&["discovery.k8s.io"], &["endpointslices"], &["get", "list", "watch"]),
                rule(&["networking.k8s.io"], &["networkpolicies"], &["get", "list", "watch"]),
                rule(&[""], &["namespaces", "pods", "services"], &["get", "list", "watch"]),
            ],
        ),
        cluster_role(
            "system:node-bootstrapper",
            None,
            vec![rule(
                &["certificates.k8s.io"],
                &["certificatesigningrequests"],
                &["create", "get", "list", "watch"],
            )],
        ),
        cluster_role(
            "system:public-info-viewer",
            None,
            vec![urls(&["/healthz", "/livez", "/readyz", "/version", "/version/"], &["get"])],
        ),
        cluster_role(
            "system:service-account-issuer-discovery",
            None,
            vec![urls(
                &[
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                ],
                &["get"],
            )],
        ),
        aggregated("view", Some("edit")),
    ]
}

fn aggregate_to_edit() -> Vec<Value> {
    let pod_streams = ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy"];
    vec![
        rule(&[""], &[&pod_streams[..], &["secrets", "services/proxy"]].concat(), READ),
        rule(&[""], &["serviceaccounts"], &["impersonate"]),
        rule(&[""], &[&["pods"][..], &pod_streams].concat(), RW),
        rule(&[""], &["pods/eviction"], &["create"]),
        rule(
            &[""],
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
            RW,
        ),
        rule(&[""], &["serviceaccounts/token"], &["create"]),
        rule(
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
            RW,
        ),
        rule(&["autoscaling"], &["horizontalpodautoscalers"], RW),
        rule(&["batch"], &["cronjobs", "jobs"], RW),
        rule(
            &["extensions"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "ingresses",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
            ],
            RW,
        ),
        rule(&["policy"], &["poddisruptionbudgets"], RW),
        rule(&["networking.k8s.io"], &["ingresses", "networkpolicies"], RW),
        rule(&["coordination.k8s.io"], &["leases"], ALL),
    ]
}

fn aggregate_to_view() -> Vec<Value> {
    vec![
        rule(
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
            READ,
        ),
        rule(
            &[""],
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
            READ,
        ),
        rule(&[""], &["namespaces"], READ),
        rule(&["discovery.k8s.io"], &["endpointslices"], READ),
        rule(
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
            READ,
        ),
        rule(&["autoscaling"], &["horizontalpodautoscalers", "horizontalpodautoscalers/status"], READ),
        rule(&["batch"], &["cronjobs", "cronjobs/status", "jobs", "jobs/status"], READ),
        rule(
            &["extensions"],
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
            ],
            READ,
        ),
        rule(&["policy"], &["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
        rule(&["networking.k8s.io"], &["ingresses", "ingresses/status", "networkpolicies"], READ),
    ]
}

/// The default ClusterRoleBindings (each named after its role).
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding("cluster-admin", &["system:masters"]),
        binding("system:basic-user", &["system:authenticated"]),
        binding("system:discovery", &["system:authenticated"]),
        binding("system:monitoring", &["system:monitoring"]),
        binding("system:node", &["system:nodes"]),
        binding("lichen:node-network", &["system:nodes"]),
        // As kubeadm: bootstrapping nodes may ask for a client certificate
        // and have it approved; nodes may renew their own.
        binding("system:node-bootstrapper", &["system:bootstrappers"]),
        binding(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            &["system:bootstrappers"],
        ),
        binding("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", &["system:nodes"]),
        binding("system:public-info-viewer", &["system:authenticated", "system:unauthenticated"]),
        binding("system:service-account-issuer-discovery", &["system:serviceaccounts"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::Identity;
    use crate::rbac::{Policy, Request, ResourceAttributes};

    fn policy() -> Policy {
        Policy::new(&cluster_roles(), &[], &cluster_role_bindings(), &[])
    }

    fn someone() -> Identity {
        Identity {
            user: "bob".into(),
            uid: String::new(),
            groups: vec!["system:authenticated".into()],
            extra: Default::default(),
        }
    }

    fn get(path: &str) -> Request {
        Request::NonResource { verb: "get".into(), path: path.into() }
    }

    #[test]
    fn every_authenticated_user_may_discover_and_review_itself() {
        let p = policy();
        for path in ["/api", "/api/v1", "/apis", "/apis/apps/v1", "/openapi/v3", "/version", "/healthz"] {
            assert!(p.authorize(&someone(), &get(path)).allowed, "{path}");
        }
        assert!(!p.authorize(&someone(), &get("/metrics")).allowed);
        let ssar = Request::Resource(ResourceAttributes {
            verb: "create".into(),
            group: "authorization.k8s.io".into(),
            version: "v1".into(),
            resource: "selfsubjectaccessreviews".into(),
            ..ResourceAttributes::default()
        });
        let d = p.authorize(&someone(), &ssar);
        assert_eq!(
            d.reason,
            "RBAC: allowed by ClusterRoleBinding \"system:basic-user\" of ClusterRole \"system:basic-user\" to Group \"system:authenticated\""
        );
        let pods = Request::Resource(ResourceAttributes {
            verb: "list".into(),
            namespace: "default".into(),
            version: "v1".into(),
            resource: "pods".into(),
            ..ResourceAttributes::default()
        });
        assert!(!p.authorize(&someone(), &pods).allowed);
        let admin = Identity {
            user: "admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into()],
            extra: Default::default(),
        };
        assert!(p.authorize(&admin, &pods).allowed);
    }

    #[test]
    fn bootstrappers_and_nodes_may_have_client_certificates_approved() {
        let p = policy();
        let who = |user: &str, group: &str| Identity {
            user: user.into(),
            uid: String::new(),
            groups: vec![group.into(), "system:authenticated".into()],
            extra: Default::default(),
        };
        let create = |sub: &str| {
            Request::Resource(ResourceAttributes {
                verb: "create".into(),
                group: "certificates.k8s.io".into(),
                version: "*".into(),
                resource: "certificatesigningrequests".into(),
                subresource: sub.into(),
                ..ResourceAttributes::default()
            })
        };
        let bootstrapper = who("system:bootstrap:abcdef", "system:bootstrappers");
        let node = who("system:node:n1", "system:nodes");
        assert!(p.authorize(&bootstrapper, &create("")).allowed);
        assert!(p.authorize(&bootstrapper, &create("nodeclient")).allowed);
        assert!(!p.authorize(&bootstrapper, &create("selfnodeclient")).allowed);
        assert!(p.authorize(&node, &create("selfnodeclient")).allowed);
        assert!(!p.authorize(&node, &create("nodeclient")).allowed);
        assert!(!p.authorize(&someone(), &create("nodeclient")).allowed);
        assert!(!p.authorize(&someone(), &create("selfnodeclient")).allowed);
    }

    #[test]
    fn admin_edit_view_aggregate() {
        let p = policy();
        let has = |role: &str, group: &str, resource: &str, verb: &str| {
            p.cluster_role(role).unwrap().iter().any(|r| {
                r.api_groups.iter().any(|g| g == group)
                    && r.resources.iter().any(|x| x == resource)
                    && r.verbs.iter().any(|v| v == verb)
            })
        };
        assert!(has("view", "", "pods", "list"));
        assert!(!has("view", "", "secrets", "get"));
        assert!(has("edit", "", "secrets", "get"));
        assert!(has("edit", "", "pods", "list"), "edit includes view");
        assert!(!has("edit", "rbac.authorization.k8s.io", "roles", "create"));
        assert!(has("admin", "rbac.authorization.k8s.io", "roles", "create"));
        assert!(has("admin", "apps", "deployments", "update"), "admin includes edit");
        assert!(has("admin", "", "pods/log", "get"), "admin includes view through edit");
    }
}
