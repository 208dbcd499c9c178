//! JSON values as structured-merge-diff orders, compares and prints them: a
//! total order across types (numbers < strings < booleans < lists < maps <
//! null), numbers compared numerically so `1` equals `1.0`.

use std::cmp::Ordering;

use serde_json::{Number, Value};

fn rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

fn compare_numbers(a: &Number, b: &Number) -> Ordering {
    match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
        (Some(x), Some(y), _, _) => x.cmp(&y),
        (_, _, Some(x), Some(y)) => x.cmp(&y),
        // One of them is beyond i64 (a large u64) and the other is not.
        (Some(_), None, _, Some(_)) => Ordering::Less,
        (None, Some(_), Some(_), _) => Ordering::Greater,
        _ => {
            let x = a.as_f64().unwrap_or(f64::NAN);
            let y = b.as_f64().unwrap_or(f64::NAN);
            x.total_cmp(&y)
        }
    }
}

/// The total order of structured-merge-diff's `value.Compare`.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = compare(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            for ((xk, xv), (yk, yv)) in xs.iter().zip(&ys) {
                let c = xk.cmp(yk).then_with(|| compare(xv, yv));
                if c != Ordering::Equal {
                    return c;
                }
            }
            xs.len().cmp(&ys.len())
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Equality as structured-merge-diff sees it (numbers by value).
pub fn equal(a: &Value, b: &Value) -> bool {
    compare(a, b) == Ordering::Equal
}

/// How a value prints inside a path: strings quoted, lists `[a,b]`, maps
/// `{k=v}`, as `value.ToString`.
pub fn to_string(v: &Value) -> String {
    match v {
        Value::Array(items) => format!("[{}]", items.iter().map(to_string).collect::<Vec<_>>().join(",")),
        Value::Object(m) => {
            let mut fields: Vec<_> = m.iter().collect();
            fields.sort_by(|p, q| p.0.cmp(q.0));
            let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", to_string(v))).collect();
            format!("{{{}}}", parts.join(","))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value_across_representations() {
        assert!(equal(&json!(1), &json!(1.0)));
        assert_eq!(compare(&json!(-1), &json!(u64::MAX)), Ordering::Less);
        assert_eq!(compare(&json!(2.5), &json!(2)), Ordering::Greater);
    }

    #[test]
    fn types_order_as_upstream() {
        let ordered = [json!(5), json!("a"), json!(true), json!([1]), json!({"a": 1}), json!(null)];
        for pair in ordered.windows(2) {
            assert_eq!(compare(&pair[0], &pair[1]), Ordering::Less, "{pair:?}");
        }
    }

    #[test]
    fn printing() {
        assert_eq!(to_string(&json!("c")), "\"c\"");
        assert_eq!(to_string(&json!(80)), "80");
        assert_eq!(to_string(&json!({"b": 1, "a": "x"})), "{a=\"x\",b=1}");
    }
}
