use serde_json::json;

use super::*;

fn deployment_with_container(container: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"a": "b"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [container]}
            }
        }
    })
}

#[test]
fn a_valid_deployment_has_no_unknown_fields() {
    let obj = deployment_with_container(json!({
        "name": "web",
        "image": "nginx",
        "imagePullPolicy": "Always",
        "ports": [{"containerPort": 80}],
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
        "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    }));
    assert_eq!(unknown_fields("apps", "v1", "Deployment", &obj), Vec::<String>::new());
}

#[test]
fn a_typo_in_a_container_is_reported_with_its_list_index() {
    let obj =
        deployment_with_container(json!({"name": "web", "image": "nginx", "imagePullPolicyy": "Always"}));
    assert_eq!(
        unknown_fields("apps", "v1", "Deployment", &obj),
        vec![r#"unknown field "spec.template.spec.containers[0].imagePullPolicyy""#]
    );
}

#[test]
fn unknown_fields_are_not_descended_into() {
    let obj =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "spec": {"a": {"b": 1}}});
    assert_eq!(unknown_fields("", "v1", "ConfigMap", &obj), vec![r#"unknown field "spec""#]);
}

#[test]
fn map_keys_are_data() {
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"anything": "x", "spec.foo": "y"}});
    assert!(unknown_fields("", "v1", "ConfigMap", &obj).is_empty());
}

#[test]
fn raw_extensions_and_managed_fields_are_opaque() {
    let obj = json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": "r", "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {"f:x": {}}}}]},
        "data": {"whatever": {"nested": true}},
        "revision": 1
    });
    assert!(unknown_fields("apps", "v1", "ControllerRevision", &obj).is_empty());
}

#[test]
fn kinds_without_a_schema_report_nothing() {
    assert!(unknown_fields("example.com", "v1", "Widget", &json!({"spec": {"x": 1}})).is_empty());
}

/// Upstream's test/integration/apiserver/field_validation_test.go body for a
/// typed Deployment, and the exact error it expects.
#[test]
fn strict_errors_for_a_typed_body_match_upstream() {
    let body = br#"{
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "dupename", "name": "test", "unknownMeta": "metaVal", "labels": {"app": "nginx"}},
        "spec": {
            "unknown1": "val1",
            "unknownDupe": "valDupe",
            "unknownDupe": "valDupe2",
            "paused": true,
            "paused": false,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{
                    "name": "nginx",
                    "image": "nginx:latest",
                    "unknownNested": "val1",
                    "imagePullPolicy": "Always",
                    "imagePullPolicy": "Never"
                }]}
            }
        }
    }"#;
    let issues = strict_field_errors("apps", "v1", "Deployment", body).expect("json");
    assert_eq!(
        strict_decoding_error(&issues),
        r#"strict decoding error: duplicate field "metadata.name", unknown field "metadata.unknownMeta", unknown field "spec.unknown1", unknown field "spec.unknownDupe", duplicate field "spec.paused", unknown field "spec.template.spec.containers[0].unknownNested", duplicate field "spec.template.spec.containers[0].imagePullPolicy""#
    );
}

#[test]
fn malformed_bodies_are_an_error() {
    assert!(strict_field_errors("", "v1", "Pod", b"{").is_err());
}

fn crd_schema(spec_extra: Value) -> Value {
    let mut spec = json!({
        "type": "object",
        "properties": {
            "cronSpec": {"type": "string"},
            "knownField1": {"type": "string"},
            "embeddedObj": {
                "x-kubernetes-embedded-resource": true,
                "type": "object",
                "properties": {"apiversion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}
            },
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                "items": {
                    "type": "object",
                    "required": ["containerPort", "protocol"],
                    "properties": {
                        "containerPort": {"type": "integer", "format": "int32"},
                        "hostIP": {"type": "string"},
                        "hostPort": {"type": "integer", "format": "int32"},
                        "name": {"type": "string"},
                        "protocol": {"type": "string"}
                    }
                }
            }
        }
    });
    if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), spec_extra) {
        spec.extend(extra);
    }
    json!({"type": "object", "properties": {"spec": spec}})
}

const CRD_INVALID_BODY: &[u8] = br#"{
    "apiVersion": "schema.example.com/v1",
    "kind": "Test",
    "metadata": {"name": "dupename", "name": "test", "unknownMeta": "metaVal", "resourceVersion": "1"},
    "spec": {
        "unknown1": "val1",
        "unknownDupe": "valDupe",
        "unknownDupe": "valDupe2",
        "knownField1": "val1",
        "knownField1": "val2",
        "ports": [{
            "name": "portName",
            "containerPort": 8080,
            "protocol": "TCP",
            "hostPort": 8081,
            "hostPort": 8082,
            "unknownNested": "val"
        }],
        "embeddedObj": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "my-cm", "namespace": "my-ns", "unknownEmbeddedMeta": "foo"}
        }
    }
}"#;

/// Upstream's expectation for a custom resource whose `spec` preserves
/// unknown fields ("schemaless").
#[test]
fn strict_errors_for_a_schemaless_custom_resource_match_upstream() {
    let schema = crd_schema(json!({"x-kubernetes-preserve-unknown-fields": true}));
    let issues = crd_strict_field_errors(&schema, CRD_INVALID_BODY).expect("json");
    assert_eq!(
        strict_decoding_error(&issues),
        r#"strict decoding error: duplicate field "metadata.name", duplicate field "spec.unknownDupe", duplicate field "spec.knownField1", duplicate field "spec.ports[0].hostPort", unknown field "metadata.unknownMeta", unknown field "spec.ports[0].unknownNested", unknown field "spec.embeddedObj.metadata.unknownEmbeddedMeta""#
    );
}

#[test]
fn strict_errors_for_a_custom_resource_prune_sorted() {
    let schema = crd_schema(json!({}));
    let issues = crd_strict_field_errors(&schema, CRD_INVALID_BODY).expect("json");
    assert_eq!(
        issues,
        vec![
            r#"duplicate field "metadata.name""#,
            r#"duplicate field "spec.unknownDupe""#,
            r#"duplicate field "spec.knownField1""#,
            r#"duplicate field "spec.ports[0].hostPort""#,
            r#"unknown field "metadata.unknownMeta""#,
            r#"unknown field "spec.ports[0].unknownNested""#,
            r#"unknown field "spec.unknown1""#,
            r#"unknown field "spec.unknownDupe""#,
            r#"unknown field "spec.embeddedObj.metadata.unknownEmbeddedMeta""#,
        ]
    );
}

#[test]
fn custom_resources_prune_fields_outside_the_schema() {
    let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "port": {"x-kubernetes-int-or-string": true},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "closed": {"type": "object"}
        }}
    }});
    let obj = json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "labels": {"a": "b"}},
        "spec": {"port": "http", "free": {"x": {"y": 1}}, "labels": {"k": "v"}, "closed": {"gone": 1}},
        "status": {"ready": true}
    });
    assert_eq!(
        crd_unknown_fields(&schema, &obj),
        vec![r#"unknown field "spec.closed.gone""#, r#"unknown field "status""#]
    );
}

#[test]
fn a_custom_resource_preserving_everything_still_checks_metadata() {
    let schema = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let obj = json!({"apiVersion": "example.com/v1", "kind": "W", "metadata": {"nam": "w"}, "anything": {"goes": 1}});
    assert_eq!(crd_unknown_fields(&schema, &obj), vec![r#"unknown field "metadata.nam""#]);
}
