//! Walking a schema: following `$ref` and `allOf` into the built-in
//! definitions, and reading a field's extensions.

use serde_json::Value;

use super::definitions::{Definitions, ref_name};

/// How many `$ref`/`allOf` hops [`resolve`] follows before giving up; the
/// built-in definitions never need more than two.
const MAX_HOPS: usize = 8;

/// A schema with its `$ref`s followed.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    /// The schema as written where it is used: it carries the field's
    /// description and `x-kubernetes-patch-*` extensions.
    pub site: &'a Value,
    /// The schema that describes the value: the definition a `$ref` leads
    /// to, or `site` itself.
    pub schema: &'a Value,
    /// The name of the definition `schema` is, if it is one.
    pub name: Option<&'a str>,
}

/// Follow `$ref` and single-element `allOf` from `site` to the schema that
/// describes the value. An unresolvable `$ref` resolves to an empty schema
/// (anything goes).
pub fn resolve<'a>(site: &'a Value, defs: &'a Definitions) -> Resolved<'a> {
    let mut schema = site;
    let mut name = None;
    for _ in 0..MAX_HOPS {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let target = ref_name(reference).and_then(|n| defs.get(n).map(|s| (n, s)));
            let Some((target_name, target)) = target else {
                return Resolved { site, schema: &ANY, name: None };
            };
            name = Some(target_name);
            schema = target;
        } else if let Some([only]) = schema.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            schema = only;
        } else {
            break;
        }
    }
    Resolved { site, schema, name }
}

impl<'a> Resolved<'a> {
    /// An extension (or any keyword) from the use site, else from the
    /// definition.
    pub fn keyword(&self, key: &str) -> Option<&'a Value> {
        self.site.get(key).or_else(|| self.schema.get(key))
    }

    /// A boolean `x-kubernetes-*` flag.
    pub fn flag(&self, key: &str) -> bool {
        self.keyword(key).and_then(Value::as_bool).unwrap_or(false)
    }

    /// The schema of property `name`, if the schema declares properties and
    /// `name` is one.
    pub fn property(&self, name: &str) -> Option<&'a Value> {
        self.schema.get("properties").and_then(|p| p.get(name))
    }

    /// Whether the schema lists properties at all.
    pub fn has_properties(&self) -> bool {
        self.schema.get("properties").is_some_and(Value::is_object)
    }

    /// The schema of a list's elements.
    pub fn items(&self) -> Option<&'a Value> {
        self.schema.get("items").filter(|items| items.is_object())
    }

    /// The schema of a map's values: `additionalProperties` as a schema, or
    /// an empty schema for `additionalProperties: true`.
    pub fn map_values(&self) -> Option<&'a Value> {
        match self.schema.get("additionalProperties") {
            Some(values @ Value::Object(_)) => Some(values),
            Some(Value::Bool(true)) => Some(&ANY),
            _ => None,
        }
    }

    /// The schema's `type`, if it names one.
    pub fn type_name(&self) -> Option<&'a str> {
        self.schema.get("type").and_then(Value::as_str)
    }
}

/// The empty schema: any value, nothing known about it.
static ANY: Value = Value::Null;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::definitions::definitions;

    #[test]
    fn refs_wrapped_in_all_of_resolve_to_the_definition() {
        let defs = definitions();
        let pod = defs.kind("", "v1", "Pod").expect("Pod");
        let spec = resolve(&pod["properties"]["spec"], defs);
        assert_eq!(spec.name, Some("io.k8s.api.core.v1.PodSpec"));
        let containers = resolve(spec.property("containers").expect("containers"), defs);
        assert_eq!(containers.keyword("x-kubernetes-patch-merge-key"), Some(&Value::from("name")));
        let container = resolve(containers.items().expect("items"), defs);
        assert_eq!(container.name, Some("io.k8s.api.core.v1.Container"));
    }

    #[test]
    fn a_dangling_ref_accepts_anything() {
        let site = serde_json::json!({"$ref": "#/components/schemas/no.such.Type"});
        let resolved = resolve(&site, definitions());
        assert!(resolved.schema.is_null());
        assert!(resolved.property("x").is_none());
    }
}
