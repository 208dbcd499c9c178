//! The upstream CronTab example end to end: the CRD is accepted and read,
//! and custom resources go through prune, default and validate.

use serde_json::{Value, json};

use super::*;

pub(crate) fn crontab_crd() -> Value {
    serde_json::from_str(include_str!("testdata/crontab-crd.json")).expect("fixture")
}

fn messages(problems: &[FieldProblem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

#[test]
fn crontab_crd_is_accepted_and_read() {
    let info = CrdInfo::from_crd(&crontab_crd()).expect("valid");
    assert_eq!(info.name, "crontabs.stable.example.com");
    assert_eq!(info.group, "stable.example.com");
    assert!(info.namespaced);
    assert_eq!(info.names.list_kind, "CronTabList");
    let v1 = info.version("v1").expect("v1");
    assert!(v1.served && v1.storage);
    assert_eq!(v1.printer_columns.len(), 3);
    assert_eq!(v1.printer_columns[0].json_path, ".spec.cronSpec");
    assert_eq!(v1.printer_columns[1].type_name, "integer");
    assert_eq!(
        v1.schema.as_ref().expect("schema")["properties"]["spec"]["properties"]["replicas"]["maximum"],
        10
    );
    assert!(!v1.status && v1.scale.is_none());

    let resources = info.resources();
    assert_eq!(resources.len(), 1);
    let r = &resources[0];
    assert_eq!(
        (r.group.as_str(), r.version.as_str(), r.plural.as_str()),
        ("stable.example.com", "v1", "crontabs")
    );
    assert_eq!(
        (r.singular.as_str(), r.kind.as_str(), r.list_kind.as_str()),
        ("crontab", "CronTab", "CronTabList")
    );
    assert_eq!(r.short_names, ["ct"]);
    assert_eq!(r.verbs.len(), 8);
    assert!(r.subresources.is_empty());
    assert_eq!(r.api_version(), "stable.example.com/v1");
}

#[test]
fn subresources_and_defaults_in_resources() {
    let mut crd = crontab_crd();
    crd["spec"]["names"] = json!({"plural": "crontabs", "kind": "CronTab", "categories": ["all"]});
    crd["spec"]["versions"][0]["subresources"] = json!({
        "status": {},
        "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}
    });
    let mut beta = crd["spec"]["versions"][0].clone();
    beta["name"] = json!("v1beta1");
    beta["storage"] = json!(false);
    beta["served"] = json!(false);
    crd["spec"]["versions"].as_array_mut().expect("versions").push(beta);
    let info = CrdInfo::from_crd(&crd).expect("valid");
    let resources = info.resources();
    assert_eq!(resources.len(), 1, "unserved versions are not served");
    let r = &resources[0];
    assert_eq!(r.singular, "crontab");
    assert_eq!(r.categories, ["all"]);
    let subs: Vec<(&str, &str, &str)> =
        r.subresources.iter().map(|s| (s.name.as_str(), s.group.as_str(), s.kind.as_str())).collect();
    assert_eq!(subs, [("status", "stable.example.com", "CronTab"), ("scale", "autoscaling", "Scale")]);
    let scale = info.storage_version().and_then(|v| v.scale.clone()).expect("scale");
    assert_eq!(scale.label_selector_path.as_deref(), Some(".status.selector"));
}

fn process(obj: &mut Value) -> Vec<FieldProblem> {
    let info = CrdInfo::from_crd(&crontab_crd()).expect("valid");
    let schema = info.version("v1").and_then(|v| v.schema.clone()).expect("schema");
    prune(&schema, obj);
    default(&schema, obj);
    validate(&schema, obj)
}

#[test]
fn a_good_crontab_passes_and_loses_unknown_fields() {
    let mut obj = json!({
        "apiVersion": "stable.example.com/v1", "kind": "CronTab",
        "metadata": {"name": "my-new-cron-object", "namespace": "default"},
        "spec": {"cronSpec": "* * * * */5", "image": "my-awesome-cron-image", "replicas": 3, "someRandomField": 42}
    });
    assert!(process(&mut obj).is_empty());
    assert!(obj["spec"].get("someRandomField").is_none());
    assert_eq!(obj["kind"], "CronTab");
}

#[test]
fn a_bad_crontab_gets_upstreams_messages() {
    let mut obj = json!({
        "apiVersion": "stable.example.com/v1", "kind": "CronTab",
        "metadata": {"name": "my-new-cron-object"},
        "spec": {"cronSpec": "* * * *", "image": "my-awesome-cron-image", "replicas": 15}
    });
    assert_eq!(
        messages(&process(&mut obj)),
        [
            r#"spec.cronSpec: Invalid value: "* * * *": spec.cronSpec in body should match '^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$'"#,
            "spec.replicas: Invalid value: 15: spec.replicas in body should be less than or equal to 10",
        ]
    );
    let mut wrong_type = json!({"metadata": {"name": "x"}, "spec": {"replicas": "string"}});
    assert_eq!(
        messages(&process(&mut wrong_type)),
        [
            r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#
        ]
    );
}

#[test]
fn the_custom_resource_name_must_be_a_dns_subdomain() {
    let mut obj = json!({"metadata": {"name": "Bad_Name"}, "spec": {}});
    let problems = process(&mut obj);
    assert_eq!(problems.len(), 1);
    assert!(problems[0].to_string().starts_with(
        r#"metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of"#
    ));
    let mut unnamed = json!({"metadata": {}});
    assert_eq!(
        messages(&process(&mut unnamed)),
        ["metadata.name: Required value: name or generateName is required"]
    );
}

#[test]
fn a_kubebuilder_style_crd_is_accepted() {
    let crd: Value = serde_json::from_str(include_str!("testdata/widget-crd.json")).expect("fixture");
    let info = CrdInfo::from_crd(&crd).unwrap_or_else(|p| panic!("{:#?}", messages(&p)));
    let version = &info.versions[0];
    assert_eq!(version.selectable_fields, [".spec.color"]);
    assert!(version.status && !info.namespaced);
    let schema = version.schema.clone().expect("schema");
    let mut obj = json!({
        "apiVersion": "apps.example.org/v1alpha1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": "1Gi", "ports": [{"name": "a", "port": 1}], "template": {"apiVersion": "v1", "kind": "Pod"}},
        "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
    });
    prune(&schema, &mut obj);
    default(&schema, &mut obj);
    assert_eq!(obj["spec"]["color"], "red");
    assert!(validate(&schema, &obj).is_empty(), "{:?}", messages(&validate(&schema, &obj)));
    obj["spec"]["size"] = json!("lots");
    assert_eq!(validate(&schema, &obj).len(), 1);
}
