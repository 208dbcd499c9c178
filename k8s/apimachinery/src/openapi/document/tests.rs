use serde_json::Value;

use super::*;
use crate::openapi::index::serialize_v3;
use crate::resources::Subresource;

const ALL_VERBS: [&str; 8] =
    ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

fn resource(
    group: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    subresources: Vec<Subresource>,
) -> Resource {
    Resource {
        group: group.into(),
        version: "v1".into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        namespaced,
        verbs: ALL_VERBS.map(String::from).to_vec(),
        short_names: vec![],
        categories: vec![],
        subresources,
    }
}

fn sub(name: &str, gvk: (&str, &str, &str), verbs: &[&str]) -> Subresource {
    Subresource {
        name: name.into(),
        group: gvk.0.into(),
        version: gvk.1.into(),
        kind: gvk.2.into(),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
    }
}

fn apps() -> Vec<Resource> {
    vec![resource(
        "apps",
        "deployments",
        "Deployment",
        true,
        vec![
            sub("scale", ("autoscaling", "v1", "Scale"), &["get", "patch", "update"]),
            sub("status", ("apps", "v1", "Deployment"), &["get", "patch", "update"]),
        ],
    )]
}

fn core() -> Vec<Resource> {
    let mut namespaces = resource("", "namespaces", "Namespace", false, vec![]);
    namespaces.verbs.retain(|v| v != "deletecollection");
    vec![
        namespaces,
        resource("", "configmaps", "ConfigMap", true, vec![]),
        resource(
            "",
            "pods",
            "Pod",
            true,
            vec![
                sub("status", ("", "v1", "Pod"), &["get", "patch", "update"]),
                sub("log", ("", "v1", "Pod"), &["get"]),
                sub("exec", ("", "v1", "PodExecOptions"), &["create", "get"]),
                sub("eviction", ("policy", "v1", "Eviction"), &["create"]),
            ],
        ),
    ]
}

fn param_names(op: &Value) -> Vec<&str> {
    op["parameters"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default()
}

#[test]
fn deployment_patch_declares_field_validation() {
    let doc = v3_document("apps", "v1", &apps());
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        serde_json::json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    assert_eq!(param_names(patch), ["dryRun", "fieldManager", "fieldValidation", "force"]);
    assert!(patch["requestBody"]["content"].get("application/strategic-merge-patch+json").is_some());
    assert_eq!(
        patch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    );
}

#[test]
fn deployment_document_has_every_operation_and_path() {
    let doc = v3_document("apps", "v1", &apps());
    let paths = doc["paths"].as_object().expect("paths");
    let operation_ids: Vec<&str> = paths
        .values()
        .flat_map(|item| item.as_object().into_iter().flatten())
        .filter_map(|(_, op)| op["operationId"].as_str())
        .collect();
    for id in [
        "getAppsV1APIResources",
        "listAppsV1NamespacedDeployment",
        "createAppsV1NamespacedDeployment",
        "deleteAppsV1CollectionNamespacedDeployment",
        "readAppsV1NamespacedDeployment",
        "replaceAppsV1NamespacedDeployment",
        "deleteAppsV1NamespacedDeployment",
        "listAppsV1DeploymentForAllNamespaces",
        "watchAppsV1NamespacedDeploymentList",
        "watchAppsV1NamespacedDeployment",
        "watchAppsV1DeploymentListForAllNamespaces",
        "readAppsV1NamespacedDeploymentScale",
        "patchAppsV1NamespacedDeploymentStatus",
    ] {
        assert!(operation_ids.contains(&id), "missing {id}");
    }
    let post = &paths["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"];
    assert_eq!(param_names(post), ["dryRun", "fieldManager", "fieldValidation"]);
    let scale = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["put"];
    assert_eq!(scale["x-kubernetes-group-version-kind"]["group"], "autoscaling");
    let item_params: Vec<&str> =
        paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["parameters"]
            .as_array()
            .expect("path parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
    assert_eq!(item_params, ["name", "namespace", "pretty"]);
}

#[test]
fn components_hold_exactly_the_reachable_definitions() {
    let doc = v3_document("apps", "v1", &apps());
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "io.k8s.api.apps.v1.Deployment",
        "io.k8s.api.apps.v1.DeploymentList",
        "io.k8s.api.autoscaling.v1.Scale",
        "io.k8s.api.core.v1.Container",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
        "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    ] {
        assert!(schemas.contains_key(name), "missing {name}");
    }
    assert!(!schemas.contains_key("io.k8s.api.core.v1.Pod"));
    let mut dangling = Vec::new();
    let mut queue = VecDeque::new();
    refs(&doc, &mut queue);
    for name in queue {
        if !schemas.contains_key(&name) {
            dangling.push(name);
        }
    }
    assert!(dangling.is_empty(), "dangling refs: {dangling:?}");
}

#[test]
fn core_document_names_operations_like_upstream() {
    let doc = v3_document("", "v1", &core());
    let paths = &doc["paths"];
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/pods/{name}"]["get"]["operationId"],
        "readCoreV1NamespacedPod"
    );
    assert_eq!(paths["/api/v1/pods"]["get"]["operationId"], "listCoreV1PodForAllNamespaces");
    assert_eq!(paths["/api/v1/namespaces"]["get"]["operationId"], "listCoreV1Namespace");
    assert_eq!(paths["/api/v1/namespaces/{name}"]["patch"]["operationId"], "patchCoreV1Namespace");
    assert!(paths["/api/v1/namespaces"].get("delete").is_none(), "namespaces have no deletecollection");
    assert_eq!(
        paths["/api/v1/watch/namespaces/{namespace}/pods"]["get"]["operationId"],
        "watchCoreV1NamespacedPodList"
    );
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"]["operationId"],
        "readCoreV1NamespacedPodLog"
    );
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["post"]["operationId"],
        "connectCoreV1PostNamespacedPodExec"
    );
    let eviction = &paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"];
    assert_eq!(eviction["operationId"], "createCoreV1NamespacedPodEviction");
    assert_eq!(eviction["x-kubernetes-group-version-kind"]["kind"], "Eviction");
    assert_eq!(eviction["tags"][0], "core_v1");
    let config_map = &doc["components"]["schemas"]["io.k8s.api.core.v1.ConfigMap"];
    assert_eq!(config_map["x-kubernetes-group-version-kind"][0]["kind"], "ConfigMap");
    assert!(config_map["properties"]["data"]["description"].as_str().is_some_and(|d| !d.is_empty()));
}

#[test]
fn hash_is_stable_and_tracks_content() {
    let first = serialize_v3(&v3_document("apps", "v1", &apps()));
    let second = serialize_v3(&v3_document("apps", "v1", &apps()));
    assert_eq!(first, second);
    assert_eq!(first.hash.len(), 128);
    assert!(first.hash.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    let mut fewer = apps();
    fewer[0].subresources.clear();
    assert_ne!(serialize_v3(&v3_document("apps", "v1", &fewer)).hash, first.hash);
}
