//! The examples of upstream's strategic merge patch design doc and of the
//! order proposal, and what kubectl sends, on Pods and Deployments.

use serde_json::{Value, json};

use super::strategic_merge_patch;
use crate::patch::testing::workloads;
use crate::patch::{PatchType, apply_patch};

fn apply(original: &Value, patch: Value) -> Value {
    match strategic_merge_patch(original, &patch, &workloads()) {
        Ok(got) => got,
        Err(err) => panic!("{patch}: {err}"),
    }
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array().into_iter().flatten().filter_map(|item| item["name"].as_str()).collect()
}

#[test]
fn adding_a_container_merges_by_name() {
    let original = pod(json!({"containers": [{"name": "nginx", "image": "nginx-1.0"}]}));
    let got = apply(
        &original,
        json!({"spec": {"containers": [{"name": "log-tailer", "image": "log-tailer-1.0"}]}}),
    );
    // Upstream puts the new item first without $setElementOrder, as the
    // kubectl patch task in the Kubernetes docs shows.
    assert_eq!(
        got["spec"]["containers"],
        json!([{"name": "log-tailer", "image": "log-tailer-1.0"}, {"name": "nginx", "image": "nginx-1.0"}])
    );
}

#[test]
fn replace_directive_on_a_map() {
    let original = pod(json!({"restartPolicy": "Always", "containers": [{"name": "a", "image": "a"}]}));
    let got = apply(
        &original,
        json!({"spec": {"$patch": "replace", "containers": [{"name": "nginx", "image": "nginx-1.0"}]}}),
    );
    assert_eq!(got["spec"], json!({"containers": [{"name": "nginx", "image": "nginx-1.0"}]}));
    assert_eq!(got["metadata"], original["metadata"]);
}

#[test]
fn replace_directive_in_a_list() {
    let original = pod(json!({"containers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]}));
    let got = apply(
        &original,
        json!({"spec": {"containers": [{"name": "nginx", "image": "nginx-1.0"}, {"$patch": "replace"}]}}),
    );
    assert_eq!(got["spec"]["containers"], json!([{"name": "nginx", "image": "nginx-1.0"}]));
}

#[test]
fn delete_directive_in_a_list() {
    let original = pod(json!({"containers": [
        {"name": "nginx", "image": "nginx-0.9"}, {"name": "log-tailer", "image": "t"}, {"name": "log-tailer", "image": "u"}
    ]}));
    let got = apply(
        &original,
        json!({"spec": {"containers": [
            {"name": "nginx", "image": "nginx-1.0"}, {"$patch": "delete", "name": "log-tailer"}
        ]}}),
    );
    // Every entry matching the merge key goes.
    assert_eq!(got["spec"]["containers"], json!([{"name": "nginx", "image": "nginx-1.0"}]));
}

#[test]
fn deleting_a_map() {
    let original = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let got = apply(&original, json!({"spec": {"strategy": {"rollingUpdate": {"$patch": "delete"}}}}));
    assert_eq!(got["spec"]["strategy"], json!({"type": "RollingUpdate", "rollingUpdate": {}}));
    let got = apply(&original, json!({"spec": {"strategy": {"rollingUpdate": null}}}));
    assert_eq!(got["spec"]["strategy"], json!({"type": "RollingUpdate"}));
}

#[test]
fn finalizers_are_a_set() {
    let original = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
    let got = apply(&original, json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "c"]}}));
    assert_eq!(got["metadata"]["finalizers"], json!(["a"]));
    let got = apply(&original, json!({"metadata": {"finalizers": ["c", "d"]}}));
    assert_eq!(got["metadata"]["finalizers"], json!(["a", "b", "c", "d"]));
}

#[test]
fn set_element_order_reorders() {
    let original = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
    let got = apply(&original, json!({"metadata": {"$setElementOrder/finalizers": ["b", "c", "a"]}}));
    assert_eq!(got["metadata"]["finalizers"], json!(["b", "c", "a"]));

    let original = pod(json!({"containers": [{"name": "a", "image": "x"}, {"name": "b"}, {"name": "c"}]}));
    let order = json!([{"name": "b"}, {"name": "c"}, {"name": "a"}]);
    let got = apply(&original, json!({"spec": {"$setElementOrder/containers": order}}));
    assert_eq!(got["spec"]["containers"], json!([{"name": "b"}, {"name": "c"}, {"name": "a", "image": "x"}]));
}

#[test]
fn retain_keys_clears_the_other_members_of_a_union() {
    let original =
        json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}}});
    let got = apply(&original, json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}));
    assert_eq!(got["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn volume_source_switch_with_retain_keys() {
    // kubectl apply after changing a volume from emptyDir to hostPath.
    let original =
        pod(json!({"volumes": [{"name": "data", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}]}));
    let got = apply(
        &original,
        json!({"spec": {
            "$setElementOrder/volumes": [{"name": "data"}, {"name": "cache"}],
            "volumes": [{"$retainKeys": ["hostPath", "name"], "hostPath": {"path": "/srv"}, "name": "data"}]
        }}),
    );
    assert_eq!(
        got["spec"]["volumes"],
        json!([{"name": "data", "hostPath": {"path": "/srv"}}, {"name": "cache", "emptyDir": {}}])
    );
}

#[test]
fn order_proposal_env_example() {
    let original = pod(json!({"containers": [{"name": "c", "env": [
        {"name": "ENV2", "value": "bar"}, {"name": "ENV5", "value": "server-added-2"},
        {"name": "ENV1", "value": "foo"}, {"name": "ENV3", "value": "baz"},
        {"name": "ENV4", "value": "server-added-1"}
    ]}]}));
    let got = apply(
        &original,
        json!({"spec": {"containers": [{"name": "c",
            "$setElementOrder/env": [{"name": "ENV1"}, {"name": "ENV2"}, {"name": "ENV6"}],
            "env": [{"name": "ENV3", "$patch": "delete"}, {"name": "ENV6", "value": "new-env"}]
        }]}}),
    );
    let env = names(&got["spec"]["containers"][0]["env"]);
    let at = |name: &str| env.iter().position(|n| *n == name);
    assert_eq!(env.len(), 5, "{env:?}");
    assert_eq!(at("ENV3"), None);
    assert!(at("ENV1") < at("ENV2") && at("ENV2") < at("ENV6"), "{env:?}");
    assert!(at("ENV5") < at("ENV4") && at("ENV5") < at("ENV1"), "{env:?}");
    assert_eq!(got["spec"]["containers"][0]["env"][env.len() - 1]["value"], json!("new-env"));
}

#[test]
fn tolerations_and_args_are_replaced() {
    let original = pod(json!({
        "tolerations": [{"key": "dedicated", "value": "test-team", "effect": "NoSchedule"}],
        "containers": [{"name": "c", "args": ["a", "b"]}]
    }));
    let got = apply(
        &original,
        json!({"spec": {"tolerations": [{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}],
            "containers": [{"name": "c", "args": ["z"]}]}}),
    );
    assert_eq!(
        got["spec"]["tolerations"],
        json!([{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}])
    );
    assert_eq!(got["spec"]["containers"][0]["args"], json!(["z"]));
}

#[test]
fn ports_merge_on_container_port() {
    let original =
        pod(json!({"containers": [{"name": "c", "ports": [{"containerPort": 80, "name": "http"}]}]}));
    let got = apply(
        &original,
        json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]}]}}),
    );
    assert_eq!(
        got["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}])
    );
}

#[test]
fn labels_and_annotations_are_maps() {
    let original = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
    let got = apply(
        &original,
        json!({"metadata": {"labels": {"tier": null, "env": "prod"}, "annotations": {"a": "b"}}}),
    );
    assert_eq!(got["metadata"], json!({"labels": {"app": "web", "env": "prod"}, "annotations": {"a": "b"}}));
}

fn deployment(containers: Value, last_applied: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "generation": 1,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers, "restartPolicy": "Always"}}}
    })
}

/// The body of the second `kubectl apply` after changing one image.
#[test]
fn second_kubectl_apply_with_a_changed_image() {
    let original = deployment(
        json!([
            {"name": "c", "image": "nginx:1", "imagePullPolicy": "IfNotPresent", "resources": {}},
            {"name": "d", "image": "busybox", "imagePullPolicy": "Always", "resources": {}}
        ]),
        "{\"old\":true}",
    );
    let body = br#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"new\":true}\n"}},"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"c"},{"name":"d"}],"containers":[{"image":"nginx:2","name":"c"}]}}}}"#;
    let got = apply_patch(PatchType::StrategicMerge, &original, body, &workloads()).unwrap();
    let mut want = original.clone();
    want["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
        json!("{\"new\":true}\n");
    want["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    assert_eq!(got, want);
}

/// kubectl apply that drops container `d` and adds `e`, while the server
/// had added a sidecar `s`.
#[test]
fn kubectl_apply_replacing_a_container() {
    let original = deployment(json!([{"name": "c"}, {"name": "d"}, {"name": "s"}]), "{}");
    let got = apply(
        &original,
        json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "e"}],
            "containers": [{"name": "e", "image": "e"}, {"$patch": "delete", "name": "d"}]
        }}}}),
    );
    assert_eq!(names(&got["spec"]["template"]["spec"]["containers"]), ["c", "s", "e"]);
}
