//! `fieldValidation=Strict|Warn`: the fields of a request body that the
//! schema does not know, and the fields given twice, worded as upstream's
//! strict decoder words them (`unknown field "spec.template.spec.containers[0].imagePullPolicyy"`,
//! `duplicate field "spec.replicas"`). Strict joins them into one error with
//! [`strict_decoding_error`]; Warn sends each as a `Warning` header.
//!
//! Built-in kinds are checked the way upstream's typed decoder does it: one
//! pass in document order; a field that is both unknown and repeated is
//! reported once, as unknown. Custom resources the way the CRD handler does
//! it: every repeated key first (document order), then unknown fields of
//! `metadata`, then the fields pruning drops (sorted), then unknown fields
//! in the `metadata` of embedded resources.

mod node;

use std::collections::HashSet;

use serde_json::Value;

pub use node::Node;

use super::definitions::{Definitions, definitions};
use super::schema::{Resolved, resolve};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Built-in types whose JSON is kept as it is: nothing inside is unknown.
const OPAQUE: [&str; 3] = [
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
];

/// A request body that is not JSON.
#[derive(Debug, thiserror::Error)]
pub enum FieldValidationError {
    #[error("request body is not valid JSON")]
    Parse(#[source] serde_json::Error),
}

/// Unknown fields of a built-in kind's object (`group` is `""` for the core
/// group), as messages: `unknown field "spec.foo"`. A `Value` cannot hold
/// duplicate keys; use [`strict_field_errors`] on the raw body for those.
/// Kinds without a built-in schema yield nothing.
pub fn unknown_fields(group: &str, version: &str, kind: &str, obj: &Value) -> Vec<String> {
    typed(group, version, kind, &Node::from(obj))
}

/// Unknown and duplicate fields of a built-in kind's JSON request body, in
/// document order, as upstream's strict decoder reports them.
pub fn strict_field_errors(
    group: &str,
    version: &str,
    kind: &str,
    body: &[u8],
) -> Result<Vec<String>, FieldValidationError> {
    let node: Node = serde_json::from_slice(body).map_err(FieldValidationError::Parse)?;
    Ok(typed(group, version, kind, &node))
}

/// Unknown fields of a custom resource, against its version's
/// `openAPIV3Schema` (`metadata` is checked as ObjectMeta).
pub fn crd_unknown_fields(schema: &Value, obj: &Value) -> Vec<String> {
    custom(schema, &Node::from(obj))
}

/// Duplicate and unknown fields of a custom resource's JSON request body,
/// in upstream's order.
pub fn crd_strict_field_errors(schema: &Value, body: &[u8]) -> Result<Vec<String>, FieldValidationError> {
    let node: Node = serde_json::from_slice(body).map_err(FieldValidationError::Parse)?;
    Ok(custom(schema, &node))
}

/// The message of a 400 for `fieldValidation=Strict`:
/// `strict decoding error: unknown field "spec.foo", duplicate field "spec.bar"`.
pub fn strict_decoding_error(issues: &[String]) -> String {
    format!("strict decoding error: {}", issues.join(", "))
}

fn typed(group: &str, version: &str, kind: &str, node: &Node) -> Vec<String> {
    let defs = definitions();
    let Some(root) = defs.kind(group, version, kind) else { return Vec::new() };
    let mut walker = Walker { defs, custom: false, issues: Vec::new() };
    walker.walk(Some(resolve(root, defs)), node, &mut String::new(), Class::Unknown);
    walker.messages()
}

fn custom(schema: &Value, node: &Node) -> Vec<String> {
    let defs = definitions();
    let mut walker = Walker { defs, custom: true, issues: Vec::new() };
    walker.walk_resource(resolve(schema, defs), node, &mut String::new(), Class::RootMeta);
    walker.messages()
}

/// Which group of upstream's report an issue belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Duplicate,
    /// Under the custom resource's own `metadata`.
    RootMeta,
    /// Anywhere else: pruned fields of custom resources, everything of
    /// built-in kinds.
    Unknown,
    /// Under the `metadata` of an embedded resource.
    EmbeddedMeta,
}

struct Walker<'d> {
    defs: &'d Definitions,
    /// Custom resource rules: every repeated key is a duplicate.
    custom: bool,
    issues: Vec<(Class, String)>,
}

/// How the members of an object are checked.
enum Members<'d> {
    /// Nothing known about them: no unknown fields.
    Any,
    /// A struct: only its properties are known; unknown ones allowed if
    /// `x-kubernetes-preserve-unknown-fields`.
    Struct { schema: Resolved<'d>, preserve: bool },
    /// A map: every key is data, values follow one schema.
    Map(Resolved<'d>),
}

impl<'d> Walker<'d> {
    fn messages(self) -> Vec<String> {
        let mut issues = self.issues;
        if self.custom {
            let rank = |class: &Class| match class {
                Class::Duplicate => 0,
                Class::RootMeta => 1,
                Class::Unknown => 2,
                Class::EmbeddedMeta => 3,
            };
            // Stable: document order within each group, except that pruned
            // fields are sorted.
            issues.sort_by(|(a, pa), (b, pb)| {
                rank(a)
                    .cmp(&rank(b))
                    .then_with(|| if *a == Class::Unknown { pa.cmp(pb) } else { std::cmp::Ordering::Equal })
            });
        }
        let mut seen = HashSet::new();
        issues
            .into_iter()
            .map(|(class, path)| match class {
                Class::Duplicate => format!("duplicate field \"{path}\""),
                Class::RootMeta | Class::Unknown | Class::EmbeddedMeta => format!("unknown field \"{path}\""),
            })
            .filter(|message| seen.insert(message.clone()))
            .collect()
    }

    fn members(&self, schema: Option<Resolved<'d>>) -> Members<'d> {
        let Some(schema) = schema else { return Members::Any };
        if schema.name.is_some_and(|name| OPAQUE.contains(&name)) {
            return Members::Any;
        }
        let preserve = schema.flag("x-kubernetes-preserve-unknown-fields");
        if schema.has_properties() {
            return Members::Struct { schema, preserve };
        }
        if let Some(values) = schema.map_values() {
            return Members::Map(resolve(values, self.defs));
        }
        if schema.type_name() == Some("object") && !preserve {
            // An empty struct, or a custom resource object without
            // properties: every field is unknown (pruned).
            return Members::Struct { schema, preserve: false };
        }
        Members::Any
    }

    fn walk(&mut self, schema: Option<Resolved<'d>>, node: &Node, path: &mut String, class: Class) {
        match node {
            Node::Scalar => {}
            Node::Array(items) => {
                let items_schema = schema.and_then(|s| s.items()).map(|items| resolve(items, self.defs));
                for (index, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{index}]"));
                    self.walk(items_schema, item, path, class);
                    path.truncate(len);
                }
            }
            Node::Object(members) => {
                if let Some(schema) = schema.filter(|s| s.flag("x-kubernetes-embedded-resource")) {
                    self.walk_resource(schema, node, path, Class::EmbeddedMeta);
                } else {
                    let plan = self.members(schema);
                    self.walk_members(&plan, members, path, class, &[]);
                }
            }
        }
    }

    /// An object with `apiVersion`, `kind` and ObjectMeta `metadata` besides
    /// what its schema says: a custom resource, or an embedded resource.
    fn walk_resource(&mut self, schema: Resolved<'d>, node: &Node, path: &mut String, meta_class: Class) {
        let Node::Object(members) = node else { return };
        let plan = self.members(Some(schema));
        let plan = match plan {
            Members::Any | Members::Map(_) => Members::Struct { schema, preserve: true },
            plan @ Members::Struct { .. } => plan,
        };
        self.walk_members(&plan, members, path, Class::Unknown, &[("metadata", meta_class)]);
    }

    fn walk_members(
        &mut self,
        plan: &Members<'d>,
        members: &[(String, Node)],
        path: &mut String,
        class: Class,
        resource_meta: &[(&str, Class)],
    ) {
        let mut seen: HashSet<&str> = HashSet::new();
        for (key, value) in members {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            let repeated = !seen.insert(key.as_str());
            let meta = resource_meta.iter().find(|(name, _)| *name == key).map(|(_, class)| *class);
            let known = match (meta, plan) {
                (Some(meta_class), _) => {
                    let object_meta = self.defs.get(OBJECT_META).map(|m| resolve(m, self.defs));
                    Some((object_meta, meta_class))
                }
                (None, _) if !resource_meta.is_empty() && (key == "apiVersion" || key == "kind") => {
                    Some((None, class))
                }
                (None, Members::Any) => Some((None, class)),
                (None, Members::Map(values)) => Some((Some(*values), class)),
                (None, Members::Struct { schema, preserve }) => match schema.property(key) {
                    Some(property) => Some((Some(resolve(property, self.defs)), class)),
                    None if *preserve => Some((None, class)),
                    None => None,
                },
            };
            match known {
                Some((schema, class)) => {
                    let checks_duplicates = self.custom || !matches!(plan, Members::Any) || meta.is_some();
                    if repeated && checks_duplicates {
                        self.issues.push((Class::Duplicate, path.clone()));
                    }
                    self.walk(schema, value, path, class);
                }
                None => {
                    if repeated && self.custom {
                        self.issues.push((Class::Duplicate, path.clone()));
                    }
                    self.issues.push((class, path.clone()));
                    if self.custom {
                        // Only duplicates are reported inside a pruned field.
                        self.duplicates_only(value, path);
                    }
                }
            }
            path.truncate(len);
        }
    }

    /// Custom resources: repeated keys anywhere are reported, even inside
    /// fields that are pruned.
    fn duplicates_only(&mut self, node: &Node, path: &mut String) {
        self.walk(None, node, path, Class::Unknown);
    }
}

#[cfg(test)]
mod tests;
