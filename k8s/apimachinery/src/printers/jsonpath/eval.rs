//! Evaluating parsed JSONPath nodes against a JSON value, as client-go's
//! `JSONPath.FindResults` walks unstructured objects.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use super::parse::{Node, Param};

type Item<'a> = Cow<'a, Value>;
type Result<T> = std::result::Result<T, String>;

pub(crate) struct Walker {
    pub(crate) allow_missing_keys: bool,
}

/// The value a child accessor selects, borrowed when the parent is.
fn child<'a>(item: &Item<'a>, pick: impl Fn(&Value) -> Option<&Value>) -> Option<Item<'a>> {
    match item {
        Cow::Borrowed(v) => pick(v).map(Cow::Borrowed),
        Cow::Owned(v) => pick(v).map(|c| Cow::Owned(c.clone())),
    }
}

/// Every element of an array, every value of a map, every byte of a
/// string (Go's reflection over a string yields bytes).
fn children<'a>(item: &Item<'a>) -> Vec<Item<'a>> {
    fn of(v: &Value) -> Vec<&Value> {
        match v {
            Value::Array(a) => a.iter().collect(),
            Value::Object(m) => m.values().collect(),
            _ => Vec::new(),
        }
    }
    match item {
        Cow::Borrowed(Value::String(s)) => s.bytes().map(|b| Cow::Owned(Value::from(b))).collect(),
        Cow::Owned(Value::String(s)) => s.bytes().map(|b| Cow::Owned(Value::from(b))).collect(),
        Cow::Borrowed(v) => of(v).into_iter().map(Cow::Borrowed).collect(),
        Cow::Owned(v) => of(v).into_iter().map(|c| Cow::Owned(c.clone())).collect(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

impl Walker {
    pub(crate) fn walk<'a>(&self, input: Vec<Item<'a>>, node: &Node) -> Result<Vec<Item<'a>>> {
        match node {
            Node::List(nodes) => self.list(input, nodes),
            Node::Text(s) => Ok(vec![Cow::Owned(Value::from(s.as_str()))]),
            Node::Int(i) => Ok(vec![Cow::Owned(Value::from(*i)); input.len()]),
            Node::Float(f) => Ok(vec![Cow::Owned(Value::from(*f)); input.len()]),
            Node::Bool(b) => Ok(vec![Cow::Owned(Value::from(*b)); input.len()]),
            Node::Field(name) => self.field(input, name),
            Node::Array(params) => array(input, params),
            Node::Union(lists) => {
                let mut out = Vec::new();
                for list in lists {
                    out.extend(self.list(input.clone(), list)?);
                }
                Ok(out)
            }
            Node::Filter { left, op, right } => self.filter(input, left, op, right),
            Node::Wildcard => Ok(input.iter().flat_map(children).collect()),
            Node::Recursive => Ok(recursive(input)),
            Node::Identifier(name) => Err(format!("unrecognized identifier {name}")),
        }
    }

    pub(crate) fn list<'a>(&self, mut values: Vec<Item<'a>>, nodes: &[Node]) -> Result<Vec<Item<'a>>> {
        for node in nodes {
            values = self.walk(values, node)?;
        }
        Ok(values)
    }

    fn field<'a>(&self, input: Vec<Item<'a>>, name: &str) -> Result<Vec<Item<'a>>> {
        if input.is_empty() {
            return Ok(input);
        }
        let results: Vec<Item<'a>> =
            input.iter().filter_map(|v| child(v, |v| v.as_object()?.get(name))).collect();
        if results.is_empty() && !self.allow_missing_keys {
            return Err(format!("{name} is not found"));
        }
        Ok(results)
    }

    fn filter<'a>(
        &self,
        input: Vec<Item<'a>>,
        left: &[Node],
        op: &str,
        right: &[Node],
    ) -> Result<Vec<Item<'a>>> {
        let mut results = Vec::new();
        for value in &input {
            if !value.is_array() {
                return Err(format!("{} is not array or slice and cannot be filtered", type_name(value)));
            }
            for element in children(value) {
                let lefts = self.list(vec![element.clone()], left);
                if op == "exists" {
                    if lefts.is_ok_and(|l| !l.is_empty()) {
                        results.push(element);
                    }
                    continue;
                }
                let lefts = lefts?;
                let lhs = match lefts.as_slice() {
                    [] => continue,
                    [one] => one.clone(),
                    _ => return Err("can only compare one element at a time".to_string()),
                };
                let rights = self.list(vec![element.clone()], right)?;
                let rhs = match rights.as_slice() {
                    [] => continue,
                    [one] => one.clone(),
                    _ => return Err("can only compare one element at a time".to_string()),
                };
                if compare(&lhs, op, &rhs)? {
                    results.push(element);
                }
            }
        }
        Ok(results)
    }
}

fn recursive(input: Vec<Item<'_>>) -> Vec<Item<'_>> {
    let mut out = Vec::new();
    for value in input {
        if value.is_null() {
            continue;
        }
        let kids = children(&value);
        if !kids.is_empty() {
            out.push(value);
            out.extend(recursive(kids));
        }
    }
    out
}

fn array<'a>(input: Vec<Item<'a>>, params: &[Param; 3]) -> Result<Vec<Item<'a>>> {
    let mut result = Vec::new();
    for value in input {
        if value.is_null() {
            continue;
        }
        let Some(items) = value.as_array() else {
            return Err(format!("{} is not array or slice", type_name(&value)));
        };
        let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
        let mut start = if params[0].known { params[0].value } else { 0 };
        if start < 0 {
            start += len;
        }
        let mut end = if params[1].known { params[1].value } else { len };
        if end < 0 || (end == 0 && params[1].derived) {
            end += len;
        }
        if start == end {
            return Ok(result);
        }
        if start >= len || start < 0 {
            return Err(format!("array index out of bounds: index {start}, length {len}"));
        }
        if end > len || end < 0 {
            return Err(format!("array index out of bounds: index {}, length {len}", end - 1));
        }
        if start > end {
            return Err(format!("starting index {start} is greater than ending index {end}"));
        }
        let step = if params[2].known { params[2].value } else { 1 };
        if step <= 0 {
            return Err("step must be > 0".to_string());
        }
        let (start, end, step) = (to_usize(start), to_usize(end), to_usize(step));
        for i in (start..end).step_by(step) {
            result.extend(child(&value, |v| v.get(i)));
        }
    }
    Ok(result)
}

fn to_usize(i: i64) -> usize {
    usize::try_from(i).unwrap_or(0)
}

/// A comparable scalar, as Go's template `basicKind` classifies it.
enum Scalar<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

fn scalar(v: &Value) -> Result<Scalar<'_>> {
    match v {
        Value::Bool(b) => Ok(Scalar::Bool(*b)),
        Value::Number(n) => {
            Ok(n.as_i64().map_or_else(|| Scalar::Float(n.as_f64().unwrap_or(f64::NAN)), Scalar::Int))
        }
        Value::String(s) => Ok(Scalar::Str(s)),
        _ => Err("invalid type for comparison".to_string()),
    }
}

/// Go template's `eq`/`lt` on two scalars: `None` when unordered.
fn order(a: &Value, b: &Value) -> Result<(bool, Option<Ordering>)> {
    let bad = || "incompatible types for comparison".to_string();
    Ok(match (scalar(a)?, scalar(b)?) {
        (Scalar::Bool(x), Scalar::Bool(y)) => (x == y, None),
        (Scalar::Int(x), Scalar::Int(y)) => (x == y, Some(x.cmp(&y))),
        (Scalar::Float(x), Scalar::Float(y)) => (x == y, x.partial_cmp(&y)),
        (Scalar::Str(x), Scalar::Str(y)) => (x == y, Some(x.cmp(y))),
        _ => return Err(bad()),
    })
}

fn compare(a: &Value, op: &str, b: &Value) -> Result<bool> {
    let (equal, ordering) = order(a, b)?;
    let less = || match ordering {
        Some(o) => Ok(o == Ordering::Less),
        None if matches!(a, Value::Bool(_)) => Err("invalid type for comparison".to_string()),
        None => Ok(false),
    };
    match op {
        "==" => Ok(equal),
        "!=" => Ok(!equal),
        "<" => less(),
        "<=" => Ok(less()? || equal),
        ">" => Ok(!(less()? || equal)),
        ">=" => Ok(!less()?),
        other => Err(format!("unrecognized filter operator {other}")),
    }
}
