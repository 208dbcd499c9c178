//! Field sets, comparisons, merges and the managers they produce, on real
//! built-in schemas and on schemaless custom resources.

use serde_json::{Value, json};

use super::*;

fn deployment() -> TypeRef<'static> {
    TypeRef::for_kind("apps", "v1", "Deployment")
}

fn config(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]},
            },
        },
    })
}

fn updater(reset: Reset) -> Updater<'static> {
    Updater { ty: deployment(), reset, api_version: "apps/v1".into(), now: "2030-01-01T00:00:00Z".into() }
}

fn id(manager: &str, operation: Operation) -> ManagerId {
    ManagerId {
        manager: manager.into(),
        operation,
        subresource: String::new(),
        api_version: "apps/v1".into(),
    }
}

fn fields_of(m: &ManagedFields, manager: &str, operation: Operation) -> Value {
    let e = m.get(&id(manager, operation)).unwrap_or_else(|| panic!("{manager} manages something"));
    fieldsv1::encode(&e.fields)
}

fn paths(set: &Set) -> Vec<String> {
    set.paths().iter().map(ToString::to_string).collect()
}

#[test]
fn applied_field_set_is_upstreams() {
    let mut m = ManagedFields::default();
    let obj = updater(Reset::Status).apply(
        &json!({}),
        &config(1, "nginx:1"),
        &mut m,
        &id("kubectl", Operation::Apply),
        false,
    );
    assert_eq!(obj.expect("applies")["spec"]["replicas"], 1);
    assert_eq!(
        fields_of(&m, "kubectl", Operation::Apply),
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                        ".": {},
                        "f:image": {},
                        "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}},
                    }}},
                },
            },
        })
    );
    let e = m.get(&id("kubectl", Operation::Apply)).expect("entry");
    assert_eq!(e.time.as_deref(), Some("2030-01-01T00:00:00Z"));
}

#[test]
fn created_fields_mark_new_maps_and_items_but_not_structs() {
    let mut m = ManagedFields::default();
    let mut obj = config(2, "nginx:1");
    obj["status"] = json!({"replicas": 0});
    updater(Reset::Status)
        .update(&json!({}), &obj, &mut m, &id("kubectl-create", Operation::Update))
        .expect("ok");
    let f = fields_of(&m, "kubectl-create", Operation::Update);
    assert_eq!(f["f:metadata"], json!({"f:labels": {".": {}, "f:app": {}}}));
    let containers = &f["f:spec"]["f:template"]["f:spec"]["f:containers"];
    assert!(containers.get(".").is_none(), "required list field: {containers}");
    assert!(containers["k:{\"name\":\"nginx\"}"].get(".").is_some());
    assert!(f["f:spec"].get(".").is_none());
    assert!(f.get("f:status").is_none(), "status is reset on the main resource");
}

#[test]
fn updates_take_fields_from_other_managers() {
    let u = updater(Reset::Status);
    let mut m = ManagedFields::default();
    let live = u
        .apply(&json!({}), &config(1, "nginx:1"), &mut m, &id("kubectl", Operation::Apply), false)
        .expect("ok");
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(3);
    let mut scaler = id("kubectl", Operation::Update);
    scaler.subresource = "scale".into();
    u.update(&live, &scaled, &mut m, &scaler).expect("ok");
    let e = m.get(&scaler).expect("the scaler manages replicas");
    assert_eq!(fieldsv1::encode(&e.fields), json!({"f:spec": {"f:replicas": {}}}));
    assert!(
        m.get(&id("kubectl", Operation::Apply))
            .expect("applier")
            .fields
            .child(&PathElement::field("spec"))
            .is_some()
    );
    assert!(
        !fields_of(&m, "kubectl", Operation::Apply)["f:spec"].as_object().unwrap().contains_key("f:replicas")
    );

    // An update that changes nothing takes nothing and keeps the time.
    let before = m.clone();
    let next = Updater { now: "2031-01-01T00:00:00Z".into(), ..u.clone() };
    next.update(&scaled, &scaled, &mut m, &scaler).expect("ok");
    assert_eq!(m, before);
}

#[test]
fn apply_conflicts_with_an_updater_unless_forced() {
    let u = updater(Reset::Status);
    let mut m = ManagedFields::default();
    let created = config(2, "nginx:1");
    u.update(&json!({}), &created, &mut m, &id("kubectl-client-side-apply", Operation::Update)).expect("ok");

    let err = u
        .apply(&created, &config(5, "nginx:1"), &mut m.clone(), &id("ssa", Operation::Apply), false)
        .expect_err("conflict");
    let ApplyError::Conflicts(c) = err else { panic!("{err:?}") };
    assert_eq!(
        c.message(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas"#
    );
    assert_eq!(c.0[0].path.to_string(), ".spec.replicas");

    // The same values are shared, not conflicting.
    let mut shared = m.clone();
    u.apply(&created, &config(2, "nginx:1"), &mut shared, &id("ssa", Operation::Apply), false)
        .expect("no conflict");
    assert!(
        fields_of(&shared, "kubectl-client-side-apply", Operation::Update)["f:spec"]
            .get("f:replicas")
            .is_some()
    );

    // Several conflicts, one message.
    let err = u
        .apply(&created, &config(5, "nginx:2"), &mut m.clone(), &id("ssa", Operation::Apply), false)
        .expect_err("conflicts");
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n\
         - .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image"
    );

    let forced =
        u.apply(&created, &config(5, "nginx:1"), &mut m, &id("ssa", Operation::Apply), true).expect("forced");
    assert_eq!(forced["spec"]["replicas"], 5);
    assert!(
        fields_of(&m, "kubectl-client-side-apply", Operation::Update)["f:spec"].get("f:replicas").is_none()
    );
    assert!(fields_of(&m, "ssa", Operation::Apply)["f:spec"].get("f:replicas").is_some());
}

#[test]
fn kubectl_takes_over_client_side_apply_fields_that_still_match() {
    let u = updater(Reset::Status);
    let mut m = ManagedFields::default();
    let mut created = config(2, "nginx:1");
    let last = serde_json::to_string(&config(2, "nginx:1")).expect("json");
    created["metadata"]["annotations"] = json!({LAST_APPLIED: last});
    u.update(&json!({}), &created, &mut m, &id("kubectl-client-side-apply", Operation::Update)).expect("ok");
    let mut upgraded = m.clone();
    u.apply(&created, &config(4, "nginx:1"), &mut upgraded, &id("kubectl", Operation::Apply), false)
        .expect("the client-side apply's fields are taken over");
    assert!(u.apply(&created, &config(4, "nginx:1"), &mut m, &id("other", Operation::Apply), false).is_err());
}

#[test]
fn apply_prunes_what_the_applier_stopped_applying() {
    let u = updater(Reset::Status);
    let mut m = ManagedFields::default();
    let mut first = config(1, "nginx:1");
    first["metadata"]["labels"]["tier"] = json!("front");
    first["metadata"]["labels"]["team"] = json!("a");
    let live = u.apply(&json!({}), &first, &mut m, &id("kubectl", Operation::Apply), false).expect("ok");

    // Someone else also sets `team` (to the same value).
    u.apply(&live, &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"team": "a"}}}), &mut m, &id("other", Operation::Apply), false).expect("ok");

    let live =
        u.apply(&live, &config(1, "nginx:1"), &mut m, &id("kubectl", Operation::Apply), false).expect("ok");
    let labels = &live["metadata"]["labels"];
    assert!(labels.get("tier").is_none(), "tier was only kubectl's: {labels}");
    assert_eq!(labels["team"], "a", "team is still other's");
    assert_eq!(labels["app"], "web");
}

#[test]
fn apply_merges_associative_lists_by_key_and_replaces_atomic_ones() {
    let u = updater(Reset::Status);
    let mut m = ManagedFields::default();
    let mut live = config(1, "nginx:1");
    live["spec"]["template"]["spec"]["containers"] = json!([
        {"name": "sidecar", "image": "envoy", "args": ["a", "b"]},
        {"name": "nginx", "image": "nginx:0", "args": ["x"]},
    ]);
    let mut cfg = config(1, "nginx:2");
    cfg["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["y"]);
    let out = u.apply(&live, &cfg, &mut m, &id("kubectl", Operation::Apply), true).expect("ok");
    let containers = &out["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["name"], "sidecar");
    assert_eq!(containers[1]["image"], "nginx:2");
    assert_eq!(containers[1]["args"], json!(["y"]));
    assert_eq!(containers[0]["args"], json!(["a", "b"]));
}

#[test]
fn missing_keys_and_duplicates_are_config_errors() {
    let u = updater(Reset::Status);
    let mut cfg = config(1, "nginx:1");
    cfg["spec"]["template"]["spec"]["containers"] = json!([{"image": "x"}]);
    let err = u.apply(&json!({}), &cfg, &mut ManagedFields::default(), &id("k", Operation::Apply), false);
    let Err(ApplyError::Config(WalkError::MissingKey { key, .. })) = err else { panic!("{err:?}") };
    assert_eq!(key, "name");
    cfg["spec"]["template"]["spec"]["containers"] = json!([{"name": "a"}, {"name": "a"}]);
    let err = u.apply(&json!({}), &cfg, &mut ManagedFields::default(), &id("k", Operation::Apply), false);
    assert!(matches!(err, Err(ApplyError::Config(WalkError::Duplicate { .. }))), "{err:?}");
}

#[test]
fn custom_resources_have_granular_maps_and_atomic_lists() {
    let u = Updater {
        ty: TypeRef::Deduced,
        reset: Reset::Nothing,
        api_version: "example.com/v1".into(),
        now: "2030-01-01T00:00:00Z".into(),
    };
    let mut m = ManagedFields::default();
    let cfg = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1, "tags": ["a"]}});
    let live = u.apply(&json!({}), &cfg, &mut m, &id("k", Operation::Apply), false).expect("ok");
    let f = fields_of(&m, "k", Operation::Apply);
    assert_eq!(f, json!({"f:spec": {".": {}, "f:size": {}, "f:tags": {}}}));
    let next = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"tags": ["b", "c"]}});
    let out = u.apply(&live, &next, &mut m, &id("k", Operation::Apply), false).expect("ok");
    assert_eq!(out["spec"], json!({"tags": ["b", "c"]}), "size pruned, tags replaced");
}

#[test]
fn comparisons_see_added_modified_removed() {
    let before = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}});
    let after = json!({"metadata": {"labels": {"a": "9", "c": "3"}}, "spec": {"replicas": 1}});
    let c = compare(&before, &after, deployment()).expect("ok");
    assert_eq!(paths(&c.added), [".metadata.labels.c"]);
    assert_eq!(paths(&c.modified), [".metadata.labels.a"]);
    assert_eq!(paths(&c.removed), [".metadata.labels.b"]);
    assert!(compare(&before, &before, deployment()).expect("ok").is_same());
    assert!(
        compare(&json!({"spec": {"replicas": 1}}), &json!({"spec": {"replicas": 1.0}}), deployment())
            .expect("ok")
            .is_same()
    );
}

#[test]
fn remove_items_removes_members_with_their_subtrees() {
    let obj = json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}}});
    let mut gone = Set::new();
    gone.insert(&[
        PathElement::field("metadata"),
        PathElement::field("finalizers"),
        PathElement::Value(json!("a")),
    ]);
    gone.insert(&Path::fields(&["metadata", "labels", "y"]).0);
    let out = remove_items(&obj, &gone, deployment());
    assert_eq!(out, json!({"metadata": {"finalizers": ["b"], "labels": {"x": "1"}}}));
}

#[test]
fn merged_lists_keep_both_sides_order() {
    let ty = TypeRef::for_kind("", "v1", "Pod");
    let live = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}});
    let cfg = json!({"spec": {"containers": [{"name": "c"}, {"name": "d"}, {"name": "a"}]}});
    let out = merge(&live, &cfg, ty).expect("ok");
    let names: Vec<&str> =
        out["spec"]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["b", "c", "d", "a"]);
}
