//! `multipleOf`, `minimum` and `maximum`, in that order. Integers are
//! compared as int64 against the bound truncated to an integer, floats as
//! float64, like kube-openapi's native-type checks.

use serde_json::{Number, Value};

use super::{Walker, is_json_integer};
use crate::crd::problem::{FieldProblem, ProblemKind, go_float};
use crate::crd::schema::{Schema, f64_to_i64};

pub(super) fn check(walker: &Walker<'_>, schema: Schema<'_>, n: &Number, name: &str) -> Vec<FieldProblem> {
    let mut out = Vec::new();
    let value = Value::Number(n.clone());
    let invalid = |detail: String| walker.problem(ProblemKind::Invalid, name, value.clone(), detail);
    let int = n.as_i64();
    let float = n.as_f64().unwrap_or(0.0);
    if let Some(factor) = schema.f64("multipleOf") {
        if factor < 0.0 {
            out.push(invalid(format!(
                "factor MultipleOf declared for {name} must be positive: {}",
                go_float(factor)
            )));
        } else if let Some(i) = int {
            let f = f64_to_i64(factor);
            if f != 0 && i % f != 0 {
                out.push(invalid(format!("{name} in body should be a multiple of {f}")));
            }
        } else if factor != 0.0 {
            let ratio = if factor < 1.0 { 1.0 / factor * float } else { float / factor };
            if !is_json_integer(ratio) {
                out.push(invalid(format!("{name} in body should be a multiple of {}", go_float(factor))));
            }
        }
    }
    if let Some(min) = schema.f64("minimum") {
        let exclusive = schema.flag("exclusiveMinimum");
        let (fails, bound) = match int {
            Some(i) => {
                let m = f64_to_i64(min);
                (if exclusive { i <= m } else { i < m }, m.to_string())
            }
            None => (if exclusive { float <= min } else { float < min }, go_float(min)),
        };
        if fails {
            let op = if exclusive { "greater than" } else { "greater than or equal to" };
            out.push(invalid(format!("{name} in body should be {op} {bound}")));
        }
    }
    if let Some(max) = schema.f64("maximum") {
        let exclusive = schema.flag("exclusiveMaximum");
        let (fails, bound) = match int {
            Some(i) => {
                let m = f64_to_i64(max);
                (if exclusive { i >= m } else { i > m }, m.to_string())
            }
            None => (if exclusive { float >= max } else { float > max }, go_float(max)),
        };
        if fails {
            let op = if exclusive { "less than" } else { "less than or equal to" };
            out.push(invalid(format!("{name} in body should be {op} {bound}")));
        }
    }
    out
}
