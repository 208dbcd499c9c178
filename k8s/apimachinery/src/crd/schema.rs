//! Read access to one node of an `openAPIV3Schema` (a JSON object), with
//! the structural parts pruning and defaulting use and the value
//! validations the validator uses. A node that is not an object reads as
//! an empty schema.

use serde_json::{Map, Value};

/// One schema node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schema<'a> {
    raw: &'a Value,
    node: Option<&'a Map<String, Value>>,
}

/// `additionalProperties`: absent, a boolean, or a schema.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Additional<'a> {
    None,
    Bool(bool),
    Schema(Schema<'a>),
}

impl<'a> Schema<'a> {
    pub(crate) fn new(value: &'a Value) -> Self {
        Self { raw: value, node: value.as_object() }
    }

    /// The node as JSON.
    pub(crate) fn raw(&self) -> &'a Value {
        self.raw
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.node.and_then(|n| n.get(key))
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub(crate) fn str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(Value::as_str)
    }

    pub(crate) fn flag(&self, key: &str) -> bool {
        self.get(key).and_then(Value::as_bool).unwrap_or(false)
    }

    pub(crate) fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    pub(crate) fn i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(f64_to_i64)))
    }

    /// `type`, `""` when absent.
    pub(crate) fn type_name(&self) -> &'a str {
        self.str("type").unwrap_or("")
    }

    pub(crate) fn nullable(&self) -> bool {
        self.flag("nullable")
    }

    pub(crate) fn preserve_unknown(&self) -> bool {
        self.flag("x-kubernetes-preserve-unknown-fields")
    }

    pub(crate) fn embedded(&self) -> bool {
        self.flag("x-kubernetes-embedded-resource")
    }

    pub(crate) fn int_or_string(&self) -> bool {
        self.flag("x-kubernetes-int-or-string")
    }

    pub(crate) fn default_value(&self) -> Option<&'a Value> {
        self.get("default")
    }

    pub(crate) fn properties(&self) -> Option<&'a Map<String, Value>> {
        self.get("properties").and_then(Value::as_object)
    }

    pub(crate) fn property(&self, name: &str) -> Option<Schema<'a>> {
        self.properties().and_then(|p| p.get(name)).map(Schema::new)
    }

    /// `items` when it is one schema.
    pub(crate) fn items(&self) -> Option<Schema<'a>> {
        self.get("items").filter(|v| v.is_object()).map(Schema::new)
    }

    pub(crate) fn additional(&self) -> Additional<'a> {
        match self.get("additionalProperties") {
            None | Some(Value::Null) => Additional::None,
            Some(Value::Bool(b)) => Additional::Bool(*b),
            Some(other) => Additional::Schema(Schema::new(other)),
        }
    }

    /// The schema for member `key` of an object: its property, else the
    /// `additionalProperties` schema. `Some(None)` means "kept, no schema".
    pub(crate) fn member(&self, key: &str) -> Option<Option<Schema<'a>>> {
        if let Some(property) = self.property(key) {
            return Some(Some(property));
        }
        match self.additional() {
            Additional::None => None,
            Additional::Bool(_) => Some(None),
            Additional::Schema(schema) => Some(Some(schema)),
        }
    }

    pub(crate) fn list(&self, key: &str) -> &'a [Value] {
        self.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
    }

    pub(crate) fn strings(&self, key: &str) -> Vec<&'a str> {
        self.list(key).iter().filter_map(Value::as_str).collect()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &'a String> {
        self.node.into_iter().flat_map(|n| n.keys())
    }
}

/// A float bound used as an integer, as Go's `int64(f)` truncates.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn f64_to_i64(f: f64) -> i64 {
    f as i64
}
