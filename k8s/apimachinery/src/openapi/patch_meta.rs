//! [`PatchMeta`] read from the built-in schemas: what a strategic merge
//! patch needs to know about each field of a kind.

use serde_json::Value;

use super::definitions::{Definitions, definitions};
use super::schema::{Resolved, resolve};
use crate::patch::meta::{FieldMeta, PatchMeta};

/// Patch metadata of one built-in kind, walked from its schema.
#[derive(Debug, Clone, Copy)]
pub struct SchemaPatchMeta {
    root: &'static Value,
    defs: &'static Definitions,
}

/// The patch metadata of a built-in kind (`group` is `""` for the core
/// group), or `None` for kinds without a built-in schema (custom resources,
/// which use [`crate::patch::meta::NoMeta`]).
pub fn patch_meta(group: &str, version: &str, kind: &str) -> Option<SchemaPatchMeta> {
    let defs = definitions();
    defs.kind(group, version, kind).map(|root| SchemaPatchMeta { root, defs })
}

impl SchemaPatchMeta {
    /// The schema of the field at `path`, map keys and list indexes left out.
    fn lookup(&self, path: &[&str]) -> Option<Resolved<'static>> {
        let mut current = resolve(self.root, self.defs);
        for segment in path {
            let container = value_schema(current, self.defs);
            current = resolve(container.property(segment)?, self.defs);
        }
        Some(current)
    }
}

/// Step through lists and maps to the schema of the object whose fields the
/// next path segment names (paths leave out indexes and map keys).
fn value_schema(mut schema: Resolved<'static>, defs: &'static Definitions) -> Resolved<'static> {
    for _ in 0..4 {
        let inner =
            if schema.has_properties() { None } else { schema.items().or_else(|| schema.map_values()) };
        match inner {
            Some(inner) => schema = resolve(inner, defs),
            None => break,
        }
    }
    schema
}

impl PatchMeta for SchemaPatchMeta {
    fn field(&self, path: &[&str]) -> FieldMeta {
        let Some(field) = self.lookup(path) else { return FieldMeta::default() };
        let strategy = field.keyword("x-kubernetes-patch-strategy").and_then(Value::as_str).unwrap_or("");
        let strategies: Vec<&str> = strategy.split(',').map(str::trim).collect();
        let merge = strategies.contains(&"merge");
        let is_list = field.type_name() == Some("array");
        FieldMeta {
            merge_key: field
                .keyword("x-kubernetes-patch-merge-key")
                .and_then(Value::as_str)
                .map(str::to_string),
            merge,
            retain_keys: strategies.contains(&"retainKeys"),
            replace: strategies.contains(&"replace") || (is_list && !merge),
            is_map: !field.has_properties() && field.map_values().is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(group: &str, version: &str, kind: &str) -> SchemaPatchMeta {
        patch_meta(group, version, kind).expect("built-in kind")
    }

    #[test]
    fn pod_containers_merge_on_name() {
        let field = meta("", "v1", "Pod").field(&["spec", "containers"]);
        assert_eq!(field.merge_key.as_deref(), Some("name"));
        assert!(field.merge);
        assert!(!field.replace);
    }

    #[test]
    fn nested_lists_through_templates_and_list_elements() {
        let deployment = meta("apps", "v1", "Deployment");
        let ports = deployment.field(&["spec", "template", "spec", "containers", "ports"]);
        assert_eq!(ports.merge_key.as_deref(), Some("containerPort"));
        let env = deployment.field(&["spec", "template", "spec", "containers", "env"]);
        assert_eq!(env.merge_key.as_deref(), Some("name"));
    }

    #[test]
    fn volumes_retain_keys_and_strategy_retains_keys() {
        let pod = meta("", "v1", "Pod");
        let volumes = pod.field(&["spec", "volumes"]);
        assert!(volumes.merge && volumes.retain_keys);
        let strategy = meta("apps", "v1", "Deployment").field(&["spec", "strategy"]);
        assert!(strategy.retain_keys);
        assert!(!strategy.merge);
    }

    #[test]
    fn maps_and_plain_lists() {
        let pod = meta("", "v1", "Pod");
        assert!(pod.field(&["metadata", "labels"]).is_map);
        assert!(pod.field(&["spec", "containers", "resources", "limits"]).is_map);
        let args = pod.field(&["spec", "containers", "args"]);
        assert!(args.replace && !args.merge && args.merge_key.is_none());
        assert!(!pod.field(&["spec", "nodeName"]).replace);
        let finalizers = pod.field(&["metadata", "finalizers"]);
        assert!(finalizers.merge && finalizers.merge_key.is_none());
    }

    #[test]
    fn unknown_fields_and_kinds_get_defaults() {
        assert_eq!(meta("", "v1", "Pod").field(&["spec", "nope", "deeper"]), FieldMeta::default());
        assert!(patch_meta("example.com", "v1", "Widget").is_none());
    }
}
