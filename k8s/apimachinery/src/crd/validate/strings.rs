//! `maxLength`, `minLength` and `pattern`; the first failure stops the
//! string checks, as in kube-openapi.

use serde_json::Value;

use super::Walker;
use crate::crd::problem::{FieldProblem, ProblemKind};
use crate::crd::schema::Schema;

pub(super) fn check(walker: &Walker<'_>, schema: Schema<'_>, s: &str, name: &str) -> Option<FieldProblem> {
    let length = i64::try_from(s.chars().count()).unwrap_or(i64::MAX);
    if let Some(max) = schema.i64("maxLength")
        && length > max
    {
        let unit = if max == 1 { "byte" } else { "bytes" };
        let detail = format!("may not be more than {max} {unit}");
        return Some(walker.problem(ProblemKind::TooLong, name, Value::String(s.to_string()), detail));
    }
    if let Some(min) = schema.i64("minLength")
        && length < min
    {
        let detail = format!("{name} in body should be at least {min} chars long");
        return Some(walker.problem(ProblemKind::Invalid, name, Value::String(s.to_string()), detail));
    }
    let pattern = schema.str("pattern").unwrap_or("");
    if pattern.is_empty() {
        return None;
    }
    let detail = match compile(pattern) {
        Ok(re) if re.is_match(s) => return None,
        Ok(_) => format!("{name} in body should match '{pattern}'"),
        Err(err) => format!("{name} in body should match '{pattern}, but pattern is invalid: {err}'"),
    };
    Some(walker.problem(ProblemKind::Invalid, name, Value::String(s.to_string()), detail))
}

/// A schema `pattern`, unanchored as in Go's `regexp.MatchString`.
pub(crate) fn compile(pattern: &str) -> Result<regex_lite::Regex, String> {
    regex_lite::Regex::new(pattern).map_err(|err| format!("error parsing regexp: {err}"))
}
