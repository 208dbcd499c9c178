use serde_json::{Value, json};

use crate::crd::CrdInfo;

fn crd() -> Value {
    crate::crd::tests::crontab_crd()
}

fn problems(crd: &Value) -> Vec<String> {
    match CrdInfo::from_crd(crd) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

fn with(path: &str, value: Value) -> Value {
    let mut crd = crd();
    *crd.pointer_mut(path).expect("path") = value;
    crd
}

const SCHEMA: &str = "/spec/versions/0/schema/openAPIV3Schema";

#[test]
fn name_must_be_plural_dot_group() {
    assert_eq!(
        problems(&with("/metadata/name", json!("x"))),
        [r#"metadata.name: Invalid value: "x": must be spec.names.plural+"."+spec.group"#]
    );
}

#[test]
fn group_scope_and_names() {
    let mut bad = crd();
    bad["spec"]["group"] = json!("example");
    bad["metadata"]["name"] = json!("crontabs.example");
    bad["spec"]["scope"] = json!("Global");
    bad["spec"]["names"] = json!({"plural": "CronTabs", "kind": "CronTab", "listKind": "CronTab"});
    assert_eq!(
        problems(&bad),
        [
            r#"metadata.name: Invalid value: "crontabs.example": must be spec.names.plural+"."+spec.group"#,
            r#"spec.group: Invalid value: "example": should be a domain with at least one dot"#,
            r#"spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced""#,
            r#"spec.names.plural: Invalid value: "CronTabs": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"#,
            r#"spec.names.listKind: Invalid value: "CronTab": kind and listKind may not be the same"#,
        ]
    );
    let mut empty = crd();
    empty["spec"]["group"] = json!("");
    empty["spec"]["scope"] = json!("");
    empty["spec"]["names"] = json!({});
    empty["metadata"]["name"] = json!(".");
    let text = problems(&empty);
    for expected in [
        "spec.group: Required value",
        "spec.scope: Required value",
        "spec.names.plural: Required value",
        "spec.names.singular: Required value",
        "spec.names.kind: Required value",
        "spec.names.listKind: Required value",
    ] {
        assert!(text.contains(&expected.to_string()), "{expected} in {text:?}");
    }
}

#[test]
fn versions_need_one_storage_version_and_schemas() {
    let mut crd = crd();
    crd["spec"]["versions"][0]["storage"] = json!(false);
    crd["spec"]["versions"][0].as_object_mut().expect("version").remove("schema");
    assert_eq!(
        problems(&crd),
        [
            "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
            r#"spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{apiextensions.CustomResourceDefinitionVersion{Name:"v1", Served:true, Storage:false}}: must have exactly one version marked as storage version"#,
            "status.storedVersions: Invalid value: []string(nil): must have at least one stored version",
        ]
    );
    let no_versions = with("/spec/versions", json!([]));
    assert!(
        problems(&no_versions)
            .iter()
            .any(|p| p.ends_with("must have exactly one version marked as storage version"))
    );
}

#[test]
fn structural_schema_rules_at_upstreams_positions() {
    let crd = with(
        SCHEMA,
        json!({
            "type": "object",
            "properties": {
                "spec": {"properties": {"list": {"type": "array"}, "any": {}}},
                "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}
            }
        }),
    );
    assert_eq!(
        problems(&crd),
        [
            "spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
            "spec.validation.openAPIV3Schema.properties[spec].properties[any].type: Required value: must not be empty for specified object fields",
            "spec.validation.openAPIV3Schema.properties[spec].properties[list].items: Required value: must be specified",
            "spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields",
        ]
    );
    assert_eq!(
        problems(&with(SCHEMA, json!({"properties": {}}))),
        ["spec.validation.openAPIV3Schema.type: Required value: must not be empty at the root"]
    );
}

#[test]
fn value_validations_may_not_define_structure() {
    let crd = with(
        SCHEMA,
        json!({"type": "object", "properties": {"spec": {"type": "object",
            "anyOf": [{"type": "object", "properties": {"x": {"minLength": 1}}}]}},
            "allOf": [{"properties": {"status": {"description": "no"}}}]}),
    );
    assert_eq!(
        problems(&crd),
        [
            "spec.validation.openAPIV3Schema.allOf[0].properties[status].description: Forbidden: must be empty to be structural",
            "spec.validation.openAPIV3Schema.properties[spec].anyOf[0].type: Forbidden: must be empty to be structural",
            "spec.validation.openAPIV3Schema.properties[status]: Required value: because it is defined in spec.validation.openAPIV3Schema.allOf[0].properties[status]",
        ]
    );
}

#[test]
fn openapi_features_crds_forbid() {
    let crd = with(
        SCHEMA,
        json!({"type": "object", "properties": {
            "a": {"type": "array", "uniqueItems": true, "items": {"type": "string"}},
            "b": {"type": "object", "properties": {"x": {"type": "string"}}, "additionalProperties": {"type": "string"}},
            "c": {"type": "string", "x-kubernetes-preserve-unknown-fields": false},
            "metadata": {"type": "object", "default": {}}
        }}),
    );
    let text = problems(&crd);
    for expected in [
        "spec.validation.openAPIV3Schema.properties[a].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        "spec.validation.openAPIV3Schema.properties[b].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
        "spec.validation.openAPIV3Schema.properties[c].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined",
        "spec.validation.openAPIV3Schema.properties[metadata].default: Forbidden: must not be set in top-level metadata",
    ] {
        assert!(text.contains(&expected.to_string()), "{expected} in {text:#?}");
    }
}

#[test]
fn list_types_need_keys() {
    let crd = with(
        SCHEMA,
        json!({"type": "object", "properties": {"ports": {"type": "array", "x-kubernetes-list-type": "map",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}}),
    );
    assert_eq!(
        problems(&crd),
        [
            "spec.validation.openAPIV3Schema.properties[ports].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"
        ]
    );
}

#[test]
fn defaults_must_validate_and_be_pruned() {
    let crd = with(
        SCHEMA,
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "replicas": {"type": "integer", "default": "one"},
            "opts": {"type": "object", "properties": {"a": {"type": "string"}}, "default": {"a": "x", "b": "y"}}
        }}}}),
    );
    assert_eq!(
        problems(&crd),
        [
            r#"spec.validation.openAPIV3Schema.properties[spec].properties[opts].default: Invalid value: map[string]interface {}{"a":"x", "b":"y"}: must not have unknown fields"#,
            r#"spec.validation.openAPIV3Schema.properties[spec].properties[replicas].default: Invalid value: "string":  in body must be of type integer: "string""#,
        ]
    );
}

#[test]
fn columns_and_scale_paths() {
    let mut crd = crd();
    crd["spec"]["versions"][0]["additionalPrinterColumns"] =
        json!([{"name": "", "type": "float", "jsonPath": "spec.x"}]);
    crd["spec"]["versions"][0]["subresources"] =
        json!({"status": {}, "scale": {"specReplicasPath": ".status.x", "statusReplicasPath": ""}});
    assert_eq!(
        problems(&crd),
        [
            "spec.subresources.scale.specReplicasPath: Invalid value: \".status.x\": should be a json path under .spec",
            "spec.subresources.scale.statusReplicasPath: Required value",
            "spec.additionalPrinterColumns[0].name: Required value",
            r#"spec.additionalPrinterColumns[0].type: Invalid value: "float": must be one of boolean,date,integer,number,string"#,
            r#"spec.additionalPrinterColumns[0].JSONPath: Invalid value: "spec.x": must be a simple json path starting with ."#,
        ]
    );
}

#[test]
fn per_version_schemas_report_per_version_paths() {
    let mut crd = crd();
    let mut v2 = crd["spec"]["versions"][0].clone();
    v2["name"] = json!("v2");
    v2["storage"] = json!(false);
    v2["schema"]["openAPIV3Schema"]["type"] = json!("string");
    crd["spec"]["versions"].as_array_mut().expect("versions").push(v2);
    assert_eq!(
        problems(&crd),
        [
            r#"spec.versions[1].schema.openAPIV3Schema.type: Invalid value: "string": must be object at the root"#
        ]
    );
}

#[test]
fn protected_groups_need_approval() {
    let mut crd = crd();
    crd["spec"]["group"] = json!("things.k8s.io");
    crd["metadata"]["name"] = json!("crontabs.things.k8s.io");
    assert_eq!(
        problems(&crd),
        [
            r#"metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111"#
        ]
    );
    crd["metadata"]["annotations"] =
        json!({"api-approved.kubernetes.io": "https://github.com/kubernetes/kubernetes/pull/1"});
    assert!(problems(&crd).is_empty());
}

#[test]
fn status_subresource_restricts_the_root() {
    let mut crd = with(SCHEMA, json!({"type": "object", "nullable": true, "properties": {}}));
    crd["spec"]["versions"][0]["subresources"] = json!({"status": {}});
    let text = problems(&crd);
    assert!(
        text.iter().any(|p| p.starts_with("spec.validation.openAPIV3Schema: Invalid value: ")),
        "{text:?}"
    );
    assert!(
        text.contains(
            &"spec.validation.openAPIV3Schema.nullable: Forbidden: nullable cannot be true at the root"
                .to_string()
        )
    );
}
