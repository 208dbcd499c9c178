//! One step of a field path and whole paths: how they order, print
//! (`.spec.containers[name="c"].image`) and serialize as `fieldsV1` keys
//! (`f:spec`, `k:{"name":"c"}`, `v:"x"`, `i:0`).

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

use super::value;

/// Selects a child of a map, struct or list.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// A field of a struct or a key of a map.
    Field(String),
    /// The item of an associative list whose key fields have these values,
    /// sorted by field name.
    Key(Vec<(String, Value)>),
    /// The item of a set (an associative list of scalars) with this value.
    Value(Value),
    /// A position in an atomic list.
    Index(usize),
}

/// Why a `fieldsV1` key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElementError {
    #[error("path element {element:?} has invalid JSON: {reason}")]
    Json { element: String, reason: String },
    #[error("path element {element:?}: a key must be a JSON object")]
    KeyNotObject { element: String },
    #[error("path element {element:?}: an index must be a non-negative integer")]
    Index { element: String },
}

impl PathElement {
    /// A key element from (field, value) pairs in any order.
    pub fn key(fields: impl IntoIterator<Item = (String, Value)>) -> Self {
        let mut fields: Vec<(String, Value)> = fields.into_iter().collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }

    pub fn field(name: &str) -> Self {
        PathElement::Field(name.to_string())
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `fieldsV1` key: `f:name`, `k:{"name":"c"}`, `v:"x"`, `i:0`.
    pub fn serialize(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut m = Map::new();
                for (k, v) in fields {
                    m.insert(k.clone(), v.clone());
                }
                format!("k:{}", Value::Object(m))
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Reads a `fieldsV1` key; `None` for a kind of element this version
    /// does not know (upstream drops those too).
    pub fn deserialize(s: &str) -> Result<Option<Self>, ElementError> {
        let json = |rest: &str| {
            serde_json::from_str::<Value>(rest)
                .map_err(|e| ElementError::Json { element: s.to_string(), reason: e.to_string() })
        };
        let Some((kind, rest)) = s.split_once(':') else { return Ok(None) };
        Ok(Some(match kind {
            "f" => PathElement::Field(rest.to_string()),
            "v" => PathElement::Value(json(rest)?),
            "k" => match json(rest)? {
                Value::Object(m) => PathElement::key(m),
                _ => return Err(ElementError::KeyNotObject { element: s.to_string() }),
            },
            "i" => {
                PathElement::Index(rest.parse().map_err(|_| ElementError::Index { element: s.to_string() })?)
            }
            _ => return Ok(None),
        }))
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((ak, av), (bk, bv)) in a.iter().zip(b) {
                    let c = ak.cmp(bk).then_with(|| value::compare(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => value::compare(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> =
                    fields.iter().map(|(k, v)| format!("{k}={}", value::to_string(v))).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", value::to_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the object's root.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElement>);

impl Path {
    /// A path of field names: `Path::fields(&["spec", "replicas"])`.
    pub fn fields(names: &[&str]) -> Self {
        Path(names.iter().map(|n| PathElement::field(n)).collect())
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(pe: PathElement) {
        let s = pe.serialize();
        assert_eq!(PathElement::deserialize(&s).expect("parses"), Some(pe), "{s}");
    }

    #[test]
    fn serializes_each_kind() {
        let port = PathElement::key([("protocol".into(), json!("TCP")), ("containerPort".into(), json!(80))]);
        assert_eq!(port.serialize(), r#"k:{"containerPort":80,"protocol":"TCP"}"#);
        assert_eq!(PathElement::field("spec").serialize(), "f:spec");
        assert_eq!(PathElement::Value(json!("x")).serialize(), r#"v:"x""#);
        assert_eq!(PathElement::Index(3).serialize(), "i:3");
        for pe in [port, PathElement::field("a:b"), PathElement::Value(json!(1.5)), PathElement::Index(0)] {
            round_trip(pe);
        }
    }

    #[test]
    fn unknown_kinds_are_skipped_and_bad_ones_refused() {
        assert_eq!(PathElement::deserialize("z:whatever"), Ok(None));
        assert!(matches!(PathElement::deserialize("k:[1]"), Err(ElementError::KeyNotObject { .. })));
        assert!(matches!(PathElement::deserialize("i:-1"), Err(ElementError::Index { .. })));
        assert!(matches!(PathElement::deserialize("v:{"), Err(ElementError::Json { .. })));
    }

    #[test]
    fn paths_print_as_upstream() {
        let mut p = Path::fields(&["spec", "template", "spec", "containers"]);
        p.0.push(PathElement::key([("name".into(), json!("c"))]));
        p.0.push(PathElement::field("image"));
        assert_eq!(p.to_string(), r#".spec.template.spec.containers[name="c"].image"#);
        let q = Path(vec![PathElement::field("finalizers"), PathElement::Value(json!("x"))]);
        assert_eq!(q.to_string(), r#".finalizers[="x"]"#);
    }

    #[test]
    fn fields_sort_before_keys_values_and_indexes() {
        let mut v = [
            PathElement::Index(0),
            PathElement::Value(json!(1)),
            PathElement::key([("name".into(), json!("a"))]),
            PathElement::field("z"),
        ];
        v.sort();
        assert!(matches!(v[0], PathElement::Field(_)));
        assert!(matches!(v[3], PathElement::Index(_)));
    }
}
