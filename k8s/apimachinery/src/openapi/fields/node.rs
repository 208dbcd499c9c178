//! A JSON document as the client sent it: object members in their order,
//! duplicate keys kept, scalar values dropped (field validation only needs
//! the shape).

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The shape of a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// `null`, a boolean, a number or a string.
    Scalar,
    Array(Vec<Node>),
    /// Members in document order, repeated keys included.
    Object(Vec<(String, Node)>),
}

impl From<&Value> for Node {
    fn from(value: &Value) -> Self {
        match value {
            Value::Array(items) => Node::Array(items.iter().map(Node::from).collect()),
            Value::Object(members) => {
                Node::Object(members.iter().map(|(k, v)| (k.clone(), Node::from(v))).collect())
            }
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => Node::Scalar,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut members = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Node>()? {
            members.push((key, value));
        }
        Ok(Node::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_duplicate_keys_in_document_order() {
        let node: Node =
            serde_json::from_slice(br#"{"b": 1, "a": [true, {"x": null}], "b": "again"}"#).expect("json");
        let expected = Node::Object(vec![
            ("b".into(), Node::Scalar),
            ("a".into(), Node::Array(vec![Node::Scalar, Node::Object(vec![("x".into(), Node::Scalar)])])),
            ("b".into(), Node::Scalar),
        ]);
        assert_eq!(node, expected);
    }

    #[test]
    fn converts_values() {
        let value = serde_json::json!({"a": [1, {"b": "c"}]});
        let expected = Node::Object(vec![(
            "a".into(),
            Node::Array(vec![Node::Scalar, Node::Object(vec![("b".into(), Node::Scalar)])]),
        )]);
        assert_eq!(Node::from(&value), expected);
    }

    #[test]
    fn rejects_malformed_json() {
        assert!(serde_json::from_slice::<Node>(br#"{"a": }"#).is_err());
    }
}
