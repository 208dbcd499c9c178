//! The OpenAPI v3 document of a custom resource group-version, built from
//! each CRD version's `openAPIV3Schema` the way the apiextensions server
//! builds it: the schema plus `apiVersion`, `kind`, an ObjectMeta
//! `metadata`, the group-version-kind, and a list kind around it.

use serde_json::{Map, Value, json};

use super::definitions::{REF_PREFIX, definitions};
use super::document::{assemble, reachable};
use super::paths::{Api, paths};
use crate::resources::Resource;

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. \
Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: \
https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers \
may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: \
https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DESCRIPTION: &str = "Standard object's metadata. More info: \
https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DESCRIPTION: &str = "Standard list metadata. More info: \
https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// One served version of a CRD: its resource-table entry and its
/// `openAPIV3Schema` (`None`: anything goes).
#[derive(Debug, Clone, Copy)]
pub struct CustomResourceSchema<'a> {
    pub resource: &'a Resource,
    pub schema: Option<&'a Value>,
}

/// The definition name of a custom kind, group reversed as upstream names
/// them: `stable.example.com`, `v1`, `CronTab` → `com.example.stable.v1.CronTab`.
pub fn crd_schema_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// The document for one custom resource group-version.
pub fn crd_v3_document(group: &str, version: &str, crds: &[CustomResourceSchema]) -> Value {
    let mut local = Map::new();
    for crd in crds {
        let r = crd.resource;
        local.insert(crd_schema_name(&r.group, &r.version, &r.kind), kind_schema(r, crd.schema));
        local.insert(crd_schema_name(&r.group, &r.version, &r.list_kind), list_schema(r));
    }
    let defs = definitions();
    let lookup = |g: &str, v: &str, k: &str| {
        let name = crd_schema_name(g, v, k);
        if local.contains_key(&name) { Some(name) } else { defs.name_of(g, v, k).map(str::to_string) }
    };
    let api = Api { group, version, schema_name: &lookup, strategic_merge_patch: false };
    let resources: Vec<Resource> = crds.iter().map(|crd| crd.resource.clone()).collect();
    let paths = paths(&api, &resources);
    let schemas = reachable(&paths, &local);
    assemble(paths, schemas)
}

fn gvk(resource: &Resource, kind: &str) -> Value {
    json!([{"group": resource.group, "kind": kind, "version": resource.version}])
}

fn type_meta(properties: &mut Map<String, Value>) {
    properties.insert("apiVersion".into(), json!({"description": API_VERSION_DESCRIPTION, "type": "string"}));
    properties.insert("kind".into(), json!({"description": KIND_DESCRIPTION, "type": "string"}));
}

fn kind_schema(resource: &Resource, schema: Option<&Value>) -> Value {
    let mut out = match schema {
        Some(Value::Object(schema)) => schema.clone(),
        _ => {
            let mut open = Map::new();
            open.insert("x-kubernetes-preserve-unknown-fields".into(), Value::Bool(true));
            open
        }
    };
    out.insert("type".into(), Value::String("object".into()));
    let properties = out.entry("properties").or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(properties) = properties {
        type_meta(properties);
        properties.insert(
            "metadata".into(),
            json!({"allOf": [{"$ref": format!("{REF_PREFIX}{OBJECT_META}")}], "description": METADATA_DESCRIPTION}),
        );
    }
    out.insert("x-kubernetes-group-version-kind".into(), gvk(resource, &resource.kind));
    Value::Object(out)
}

fn list_schema(resource: &Resource) -> Value {
    let item = crd_schema_name(&resource.group, &resource.version, &resource.kind);
    let mut properties = Map::new();
    type_meta(&mut properties);
    properties.insert(
        "items".into(),
        json!({
            "description": format!(
                "List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
                resource.plural
            ),
            "items": {"$ref": format!("{REF_PREFIX}{item}")},
            "type": "array",
        }),
    );
    properties.insert(
        "metadata".into(),
        json!({"allOf": [{"$ref": format!("{REF_PREFIX}{LIST_META}")}], "description": LIST_METADATA_DESCRIPTION}),
    );
    json!({
        "description": format!("{} is a list of {}", resource.list_kind, resource.kind),
        "properties": properties,
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": gvk(resource, &resource.list_kind),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Subresource;

    fn crontabs() -> Resource {
        Resource {
            group: "stable.example.com".into(),
            version: "v1".into(),
            plural: "crontabs".into(),
            singular: "crontab".into(),
            kind: "CronTab".into(),
            list_kind: "CronTabList".into(),
            namespaced: true,
            verbs: ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
                .map(String::from)
                .to_vec(),
            short_names: vec!["ct".into()],
            categories: vec![],
            subresources: vec![Subresource {
                name: "scale".into(),
                group: "autoscaling".into(),
                version: "v1".into(),
                kind: "Scale".into(),
                verbs: vec!["get".into(), "patch".into(), "update".into()],
            }],
        }
    }

    #[test]
    fn names_reverse_the_group() {
        assert_eq!(crd_schema_name("stable.example.com", "v1", "CronTab"), "com.example.stable.v1.CronTab");
    }

    #[test]
    fn document_wraps_the_schema_with_type_meta_and_a_list() {
        let resource = crontabs();
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"cronSpec": {"type": "string"}}}}});
        let doc = crd_v3_document(
            "stable.example.com",
            "v1",
            &[CustomResourceSchema { resource: &resource, schema: Some(&schema) }],
        );
        let schemas = &doc["components"]["schemas"];
        let kind = &schemas["com.example.stable.v1.CronTab"];
        assert_eq!(kind["properties"]["spec"]["properties"]["cronSpec"]["type"], "string");
        assert_eq!(
            kind["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(kind["x-kubernetes-group-version-kind"][0]["kind"], "CronTab");
        let list = &schemas["com.example.stable.v1.CronTabList"];
        assert_eq!(
            list["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/com.example.stable.v1.CronTab"
        );
        assert!(schemas.get(OBJECT_META).is_some());
        assert!(schemas.get("io.k8s.api.autoscaling.v1.Scale").is_some());

        let patch =
            &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]["patch"];
        assert_eq!(patch["operationId"], "patchStableExampleComV1NamespacedCronTab");
        let media = patch["requestBody"]["content"].as_object().expect("content");
        assert!(!media.contains_key("application/strategic-merge-patch+json"));
        assert!(
            patch["parameters"].as_array().expect("params").iter().any(|p| p["name"] == "fieldValidation")
        );
        let scale =
            &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/scale"]["get"];
        assert_eq!(scale["x-kubernetes-group-version-kind"]["kind"], "Scale");
    }

    #[test]
    fn a_missing_schema_preserves_unknown_fields() {
        let resource = crontabs();
        let doc = crd_v3_document(
            "stable.example.com",
            "v1",
            &[CustomResourceSchema { resource: &resource, schema: None }],
        );
        let kind = &doc["components"]["schemas"]["com.example.stable.v1.CronTab"];
        assert_eq!(kind["x-kubernetes-preserve-unknown-fields"], true);
        assert_eq!(kind["type"], "object");
    }
}
