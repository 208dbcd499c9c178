//! What the schema says about a value for field management, read from the
//! built-in OpenAPI definitions the way upstream's `schemaconv` reads them:
//!
//! - lists are associative by `x-kubernetes-list-type: map` and
//!   `x-kubernetes-list-map-keys`, sets by `x-kubernetes-list-type: set`,
//!   otherwise associative by `x-kubernetes-patch-strategy: merge` (keyed by
//!   `x-kubernetes-patch-merge-key`, a set without one), otherwise atomic;
//! - objects with `properties` are structs, others maps; both granular unless
//!   `x-kubernetes-map-type: atomic`;
//! - a kind without a schema (custom resources) is deduced from the value:
//!   objects are granular maps, lists atomic.

use serde_json::Value;

use crate::openapi::{Definitions, REF_PREFIX, definitions};

/// How many `$ref`/`allOf` hops to follow; the definitions need two.
const MAX_HOPS: usize = 8;

/// A place in a schema.
#[derive(Debug, Clone, Copy)]
pub enum TypeRef<'a> {
    /// Nothing known: deduced from the value.
    Deduced,
    /// An OpenAPI schema: `site` as written where it is used (it carries the
    /// field's extensions), `schema` what its `$ref`s resolve to.
    Schema { site: &'a Value, schema: &'a Value, defs: &'a Definitions },
}

/// How an associative list identifies its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole.
    Atomic,
    /// Items are scalars identified by value.
    Set,
    /// Items are objects identified by these fields.
    Map(Vec<String>),
}

/// The shape of a value at a [`TypeRef`].
#[derive(Debug, Clone)]
pub enum Shape<'a> {
    /// A leaf: scalars, atomic maps and structs.
    Leaf,
    /// A struct with named fields (`required` ones are always present in
    /// upstream's typed objects).
    Struct,
    /// A granular map with values of one type.
    Map(TypeRef<'a>),
    List(ListKind, TypeRef<'a>),
    /// No schema: look at the value.
    Deduced,
}

impl TypeRef<'static> {
    /// The schema of a built-in kind, or [`TypeRef::Deduced`] for kinds the
    /// definitions do not have (custom resources).
    pub fn for_kind(group: &str, version: &str, kind: &str) -> Self {
        let defs = definitions();
        match defs.kind(group, version, kind) {
            Some(root) => TypeRef::resolve(root, defs),
            None => TypeRef::Deduced,
        }
    }
}

impl<'a> TypeRef<'a> {
    /// Follows `$ref` and single-element `allOf` from `site`; a dangling
    /// `$ref` is deduced.
    pub fn resolve(site: &'a Value, defs: &'a Definitions) -> Self {
        let mut schema = site;
        for _ in 0..MAX_HOPS {
            if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
                match reference.strip_prefix(REF_PREFIX).and_then(|n| defs.get(n)) {
                    Some(target) => schema = target,
                    None => return TypeRef::Deduced,
                }
            } else if let Some([only]) = schema.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
                schema = only;
            } else {
                break;
            }
        }
        TypeRef::Schema { site, schema, defs }
    }

    /// An extension or keyword from the use site, else the definition.
    fn keyword(&self, key: &str) -> Option<&'a Value> {
        match self {
            TypeRef::Deduced => None,
            TypeRef::Schema { site, schema, .. } => site.get(key).or_else(|| schema.get(key)),
        }
    }

    fn str_keyword(&self, key: &str) -> Option<&'a str> {
        self.keyword(key).and_then(Value::as_str)
    }

    fn sub(&self, v: &'a Value) -> TypeRef<'a> {
        match self {
            TypeRef::Deduced => TypeRef::Deduced,
            TypeRef::Schema { defs, .. } => TypeRef::resolve(v, defs),
        }
    }

    fn schema_value(&self) -> Option<&'a Value> {
        match self {
            TypeRef::Deduced => None,
            TypeRef::Schema { schema, .. } => Some(schema),
        }
    }

    pub fn shape(&self) -> Shape<'a> {
        let Some(schema) = self.schema_value() else { return Shape::Deduced };
        let atomic_map = self.str_keyword("x-kubernetes-map-type") == Some("atomic");
        if self.keyword("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true)
            || self.str_keyword("format") == Some("int-or-string")
        {
            return Shape::Leaf;
        }
        let type_name = schema.get("type").and_then(Value::as_str);
        if type_name == Some("array") || schema.get("items").is_some() {
            let items = schema.get("items").map_or(TypeRef::Deduced, |i| self.sub(i));
            return Shape::List(self.list_kind(), items);
        }
        if schema.get("properties").is_some_and(Value::is_object) {
            return if atomic_map { Shape::Leaf } else { Shape::Struct };
        }
        match (type_name, schema.get("additionalProperties")) {
            (_, Some(values @ Value::Object(_))) => {
                if atomic_map {
                    Shape::Leaf
                } else {
                    Shape::Map(self.sub(values))
                }
            }
            (Some("object"), _) if atomic_map => Shape::Leaf,
            (Some("object"), _) => Shape::Map(TypeRef::Deduced),
            (Some(_), _) => Shape::Leaf,
            (None, _) => Shape::Deduced,
        }
    }

    fn list_kind(&self) -> ListKind {
        match self.str_keyword("x-kubernetes-list-type") {
            Some("atomic") => return ListKind::Atomic,
            Some("set") => return ListKind::Set,
            Some("map") => {
                let keys: Vec<String> = self
                    .keyword("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|ks| ks.iter().filter_map(Value::as_str).map(String::from).collect())
                    .unwrap_or_default();
                if !keys.is_empty() {
                    return ListKind::Map(keys);
                }
            }
            _ => {}
        }
        let strategy = self.str_keyword("x-kubernetes-patch-strategy").unwrap_or("");
        if strategy.split(',').any(|s| s.trim() == "merge") {
            return match self.str_keyword("x-kubernetes-patch-merge-key") {
                Some(key) => ListKind::Map(vec![key.to_string()]),
                None => ListKind::Set,
            };
        }
        ListKind::Atomic
    }

    /// The type of field `name` of a struct or map, and whether the struct
    /// declares it. Undeclared fields are deduced.
    pub fn field(&self, name: &str) -> (TypeRef<'a>, bool) {
        match self.shape() {
            Shape::Struct => {
                let declared =
                    self.schema_value().and_then(|s| s.get("properties")).and_then(|p| p.get(name));
                match declared {
                    Some(site) => (self.sub(site), true),
                    None => (TypeRef::Deduced, false),
                }
            }
            Shape::Map(values) => (values, false),
            _ => (TypeRef::Deduced, false),
        }
    }

    /// Whether a struct lists `name` as required: upstream's typed objects
    /// always carry such fields (as null when unset), so adding one does not
    /// make its parent path new.
    pub fn requires(&self, name: &str) -> bool {
        self.schema_value()
            .and_then(|s| s.get("required"))
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|f| f == name))
    }

    /// The default of a list item's key field when the item omits it. The
    /// embedded definitions carry no `default`s, so the one that matters for
    /// keys (`protocol`, which upstream defaults to `TCP` in ports) is known
    /// here.
    pub fn key_default(&self, key: &str) -> Option<Value> {
        let (field, declared) = self.field(key);
        if let Some(d) = field.keyword("default") {
            return Some(d.clone());
        }
        (declared && key == "protocol").then(|| Value::String("TCP".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(root: TypeRef<'static>, path: &[&str]) -> TypeRef<'static> {
        let mut t = root;
        for name in path {
            t = match t.shape() {
                Shape::List(_, items) => items.field(name).0,
                _ => t.field(name).0,
            };
        }
        t
    }

    #[test]
    fn built_in_lists_and_maps() {
        let deploy = TypeRef::for_kind("apps", "v1", "Deployment");
        assert!(matches!(deploy.shape(), Shape::Struct));
        let containers = at(deploy, &["spec", "template", "spec", "containers"]);
        assert!(matches!(containers.shape(), Shape::List(ListKind::Map(ref k), _) if k == &["name"]));
        let ports = at(deploy, &["spec", "template", "spec", "containers", "ports"]);
        assert!(
            matches!(ports.shape(), Shape::List(ListKind::Map(ref k), _) if k == &["containerPort", "protocol"])
        );
        let args = at(deploy, &["spec", "template", "spec", "containers", "args"]);
        assert!(matches!(args.shape(), Shape::List(ListKind::Atomic, _)));
        assert!(matches!(at(deploy, &["metadata", "labels"]).shape(), Shape::Map(_)));
        assert!(matches!(at(deploy, &["metadata", "finalizers"]).shape(), Shape::List(ListKind::Set, _)));
        assert!(matches!(at(deploy, &["spec", "selector"]).shape(), Shape::Leaf), "LabelSelector is atomic");
        assert!(matches!(at(deploy, &["spec", "replicas"]).shape(), Shape::Leaf));
        let surge = at(deploy, &["spec", "strategy", "rollingUpdate", "maxSurge"]);
        assert!(matches!(surge.shape(), Shape::Leaf), "int-or-string is a scalar");
        assert!(deploy.field("spec").1 && !deploy.field("nope").1);
    }

    #[test]
    fn required_fields_and_key_defaults() {
        let pod_spec = at(TypeRef::for_kind("", "v1", "Pod"), &["spec"]);
        assert!(pod_spec.requires("containers"));
        assert!(!pod_spec.requires("nodeName"));
        let ports = at(TypeRef::for_kind("", "v1", "Pod"), &["spec", "containers", "ports"]);
        let Shape::List(_, port) = ports.shape() else { panic!("ports is a list") };
        assert_eq!(port.key_default("protocol"), Some(Value::String("TCP".into())));
        assert_eq!(port.key_default("containerPort"), None);
    }

    #[test]
    fn custom_resources_are_deduced() {
        assert!(matches!(TypeRef::for_kind("example.com", "v1", "Widget").shape(), Shape::Deduced));
    }
}
