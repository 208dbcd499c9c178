//! The resources the API server serves: one table that discovery, routing,
//! OpenAPI and the printers all read.

/// One resource of one group-version, as discovery describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    /// Plural, lowercase: `pods`, `deployments`.
    pub plural: String,
    /// `pod`, `deployment`.
    pub singular: String,
    pub kind: String,
    /// The kind of the list: `PodList`.
    pub list_kind: String,
    pub namespaced: bool,
    /// Discovery verbs: `create`, `delete`, `deletecollection`, `get`,
    /// `list`, `patch`, `update`, `watch`.
    pub verbs: Vec<String>,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub subresources: Vec<Subresource>,
}

/// `pods/status`, `deployments/scale`, `pods/log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subresource {
    pub name: String,
    /// What the subresource returns: (group, version, kind). `scale` answers
    /// `autoscaling/v1 Scale`, `status` the resource's own kind.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub verbs: Vec<String>,
}

impl Resource {
    /// `v1` for the core group, `apps/v1` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }
}

const ALL_VERBS: &[&str] =
    &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// Resources that are only ever created, never stored: bindings (which set
/// a pod's node) and the reviews, which the server answers with their
/// `status` filled in.
const CREATE_ONLY: &[(&str, &str)] = &[
    ("", "bindings"),
    ("authentication.k8s.io", "selfsubjectreviews"),
    ("authorization.k8s.io", "localsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
    ("authorization.k8s.io", "subjectaccessreviews"),
];

/// Whether `group`/`plural` is only created (see [`CREATE_ONLY`]).
pub fn is_create_only(group: &str, plural: &str) -> bool {
    CREATE_ONLY.contains(&(group, plural))
}

/// One row of the built-in table: group, version, plural, kind, namespaced,
/// short names, categories, subresources.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

/// Upstream's built-in resources that Lichen stores, in discovery order.
/// Short names and categories as `kubectl api-resources` shows them on
/// Kubernetes 1.37.
const BUILTIN: &[Row] = &[
    ("", "v1", "bindings", "Binding", true, &[], &[], &[]),
    ("", "v1", "configmaps", "ConfigMap", true, &["cm"], &[], &[]),
    ("", "v1", "endpoints", "Endpoints", true, &["ep"], &[], &[]),
    ("", "v1", "events", "Event", true, &["ev"], &[], &[]),
    ("", "v1", "limitranges", "LimitRange", true, &["limits"], &[], &[]),
    ("", "v1", "namespaces", "Namespace", false, &["ns"], &[], &["status", "finalize"]),
    ("", "v1", "nodes", "Node", false, &["no"], &[], &["status"]),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true, &["pvc"], &[], &["status"]),
    ("", "v1", "persistentvolumes", "PersistentVolume", false, &["pv"], &[], &["status"]),
    (
        "",
        "v1",
        "pods",
        "Pod",
        true,
        &["po"],
        &["all"],
        &["attach", "binding", "eviction", "exec", "log", "portforward", "status"],
    ),
    ("", "v1", "podtemplates", "PodTemplate", true, &[], &[], &[]),
    (
        "",
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        true,
        &["rc"],
        &["all"],
        &["status", "scale"],
    ),
    ("", "v1", "resourcequotas", "ResourceQuota", true, &["quota"], &[], &["status"]),
    ("", "v1", "secrets", "Secret", true, &[], &[], &[]),
    ("", "v1", "serviceaccounts", "ServiceAccount", true, &["sa"], &[], &["token"]),
    ("", "v1", "services", "Service", true, &["svc"], &["all"], &["status"]),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        &["api-extensions"],
        &["status"],
    ),
    ("apps", "v1", "controllerrevisions", "ControllerRevision", true, &[], &[], &[]),
    ("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"], &["all"], &["status"]),
    ("apps", "v1", "deployments", "Deployment", true, &["deploy"], &["all"], &["status", "scale"]),
    ("apps", "v1", "replicasets", "ReplicaSet", true, &["rs"], &["all"], &["status", "scale"]),
    ("apps", "v1", "statefulsets", "StatefulSet", true, &["sts"], &["all"], &["status", "scale"]),
    ("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", false, &[], &[], &[]),
    (
        "authorization.k8s.io",
        "v1",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        true,
        &[],
        &[],
        &[],
    ),
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
        &[],
        &[],
        &[],
    ),
    ("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", false, &[], &[], &[]),
    ("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", false, &[], &[], &[]),
    ("batch", "v1", "cronjobs", "CronJob", true, &["cj"], &["all"], &["status"]),
    ("batch", "v1", "jobs", "Job", true, &[], &["all"], &["status"]),
    (
        "certificates.k8s.io",
        "v1",
        "certificatesigningrequests",
        "CertificateSigningRequest",
        false,
        &["csr"],
        &[],
        &["status", "approval"],
    ),
    ("coordination.k8s.io", "v1", "leases", "Lease", true, &[], &[], &[]),
    ("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true, &[], &[], &[]),
    ("events.k8s.io", "v1", "events", "Event", true, &["ev"], &[], &[]),
    ("networking.k8s.io", "v1", "ingressclasses", "IngressClass", false, &[], &[], &[]),
    ("networking.k8s.io", "v1", "ingresses", "Ingress", true, &["ing"], &[], &["status"]),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true, &["netpol"], &[], &[]),
    ("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", false, &[], &[], &[]),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true, &["pdb"], &[], &["status"]),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false, &[], &[], &[]),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false, &[], &[], &[]),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true, &[], &[], &[]),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role", true, &[], &[], &[]),
    ("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", false, &["pc"], &[], &[]),
    ("storage.k8s.io", "v1", "csidrivers", "CSIDriver", false, &[], &[], &[]),
    ("storage.k8s.io", "v1", "csinodes", "CSINode", false, &[], &[], &[]),
    ("storage.k8s.io", "v1", "storageclasses", "StorageClass", false, &["sc"], &[], &[]),
    ("storage.k8s.io", "v1", "volumeattachments", "VolumeAttachment", false, &[], &[], &["status"]),
];

/// The singular name upstream reports: the kind, lower-cased.
fn singular(kind: &str) -> String {
    kind.to_ascii_lowercase()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

/// The built-in resources, in discovery order.
pub fn builtin() -> Vec<Resource> {
    BUILTIN
        .iter()
        .map(|&(group, version, plural, kind, namespaced, short, categories, subs)| {
            let subresources = subs
                .iter()
                .map(|&name| match name {
                    "scale" => Subresource {
                        name: name.into(),
                        group: "autoscaling".into(),
                        version: "v1".into(),
                        kind: "Scale".into(),
                        verbs: strings(&["get", "patch", "update"]),
                    },
                    "binding" => Subresource {
                        name: name.into(),
                        group: group.into(),
                        version: version.into(),
                        kind: "Binding".into(),
                        verbs: strings(&["create"]),
                    },
                    "eviction" => Subresource {
                        name: name.into(),
                        group: "policy".into(),
                        version: "v1".into(),
                        kind: "Eviction".into(),
                        verbs: strings(&["create"]),
                    },
                    "token" => Subresource {
                        name: name.into(),
                        group: "authentication.k8s.io".into(),
                        version: "v1".into(),
                        kind: "TokenRequest".into(),
                        verbs: strings(&["create"]),
                    },
                    "log" => Subresource {
                        name: name.into(),
                        group: group.into(),
                        version: version.into(),
                        kind: kind.into(),
                        verbs: strings(&["get"]),
                    },
                    "exec" | "attach" | "portforward" => Subresource {
                        name: name.into(),
                        group: group.into(),
                        version: version.into(),
                        kind: match name {
                            "exec" => "PodExecOptions",
                            "attach" => "PodAttachOptions",
                            _ => "PodPortForwardOptions",
                        }
                        .into(),
                        verbs: strings(&["create", "get"]),
                    },
                    "finalize" | "approval" => Subresource {
                        name: name.into(),
                        group: group.into(),
                        version: version.into(),
                        kind: kind.into(),
                        verbs: strings(&["update"]),
                    },
                    _ => Subresource {
                        name: name.into(),
                        group: group.into(),
                        version: version.into(),
                        kind: kind.into(),
                        verbs: strings(&["get", "patch", "update"]),
                    },
                })
                .collect();
            Resource {
                group: group.into(),
                version: version.into(),
                plural: plural.into(),
                singular: singular(kind),
                kind: kind.into(),
                list_kind: format!("{kind}List"),
                namespaced,
                verbs: if is_create_only(group, plural) {
                    strings(&["create"])
                } else if (group, plural) == ("", "namespaces") {
                    // Namespaces cannot be deleted as a collection upstream.
                    strings(&["create", "delete", "get", "list", "patch", "update", "watch"])
                } else {
                    strings(ALL_VERBS)
                },
                short_names: strings(short),
                categories: strings(categories),
                subresources,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_is_consistent() {
        let all = builtin();
        let mut seen = std::collections::BTreeSet::new();
        for r in &all {
            assert!(seen.insert((r.group.clone(), r.plural.clone())), "{} twice", r.plural);
            assert!(r.plural.ends_with('s'), "{}", r.plural);
        }
        let pods = all.iter().find(|r| r.plural == "pods").expect("pods");
        assert_eq!(pods.api_version(), "v1");
        assert_eq!(pods.singular, "pod");
        let deploy = all.iter().find(|r| r.plural == "deployments").expect("deployments");
        assert_eq!(deploy.api_version(), "apps/v1");
        let scale = deploy.subresources.iter().find(|s| s.name == "scale").expect("scale");
        assert_eq!((scale.group.as_str(), scale.kind.as_str()), ("autoscaling", "Scale"));
        let sa = all.iter().find(|r| r.plural == "serviceaccounts").expect("serviceaccounts");
        let token = sa.subresources.iter().find(|s| s.name == "token").expect("serviceaccounts/token");
        assert_eq!(
            (token.group.as_str(), token.version.as_str(), token.kind.as_str(), token.verbs.as_slice()),
            ("authentication.k8s.io", "v1", "TokenRequest", &["create".to_string()][..])
        );
        let ssar = all.iter().find(|r| r.plural == "selfsubjectaccessreviews").expect("ssar");
        assert_eq!(ssar.verbs, ["create"]);
        assert_eq!(deploy.verbs.len(), 8);
    }
}
