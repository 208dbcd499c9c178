//! The OpenAPI v3 document of one built-in group-version, as upstream
//! serves it at `/openapi/v3/api/v1` or `/openapi/v3/apis/apps/v1`.

use std::collections::{BTreeSet, VecDeque};

use serde_json::{Map, Value, json};

use super::definitions::{definitions, ref_name};
use super::paths::{Api, paths};
use crate::resources::Resource;

/// The document for `group`/`version` (`group` is `""` for the core group)
/// serving `resources`: `paths` for every resource, subresource and verb,
/// and `components.schemas` with every definition they reach (the kinds,
/// their lists, `Status`, `DeleteOptions`, `Patch`, `WatchEvent`, ...).
/// Kinds without a built-in schema are described as plain objects; custom
/// resources go through [`super::crd_v3_document`].
pub fn v3_document(group: &str, version: &str, resources: &[Resource]) -> Value {
    let defs = definitions();
    let lookup = |g: &str, v: &str, k: &str| defs.name_of(g, v, k).map(str::to_string);
    let api = Api { group, version, schema_name: &lookup, strategic_merge_patch: true };
    let paths = paths(&api, resources);
    let schemas = reachable(&paths, &Map::new());
    assemble(paths, schemas)
}

/// Wrap `paths` and `schemas` into a document.
pub(crate) fn assemble(paths: Map<String, Value>, schemas: Map<String, Value>) -> Value {
    json!({
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "description": "Bearer Token authentication",
                    "in": "header",
                    "name": "authorization",
                    "type": "apiKey",
                },
            },
        },
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "openapi": "3.0.0",
        "paths": paths,
    })
}

/// Every definition the `$ref`s in `paths` lead to, transitively: from
/// `local` (a custom resource's own schemas) first, else the built-ins.
pub(crate) fn reachable(paths: &Map<String, Value>, local: &Map<String, Value>) -> Map<String, Value> {
    let defs = definitions();
    let mut queue = VecDeque::new();
    for item in paths.values() {
        refs(item, &mut queue);
    }
    let mut seen = BTreeSet::new();
    let mut schemas = Map::new();
    while let Some(name) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(schema) = local.get(&name).or_else(|| defs.get(&name)) else { continue };
        refs(schema, &mut queue);
        schemas.insert(name, schema.clone());
    }
    schemas
}

/// Queue the definition names of every `$ref` in `value`.
fn refs(value: &Value, queue: &mut VecDeque<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map.get("$ref").and_then(Value::as_str).and_then(ref_name) {
                queue.push_back(name.to_string());
            }
            for (key, child) in map {
                // A property may be called `$ref` (JSONSchemaProps has one);
                // only string values above are references.
                if key != "$ref" || child.is_object() {
                    refs(child, queue);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, queue)),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

#[cfg(test)]
mod tests;
