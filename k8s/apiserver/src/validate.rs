//! Validation of built-in types beyond names: the field errors upstream
//! returns as `Invalid` causes.

use axum::http::HeaderValue;
use axum::response::Response;
use lichen_apimachinery::openapi;
use serde_json::Value;

use crate::api::Ctx;
use crate::status::{ApiError, Cause};

/// Admission of an object about to be stored: CRDs are validated (and get
/// their status), custom resources are pruned, defaulted and validated
/// against their schema. Returns the field errors (`Invalid`).
pub fn admit(ctx: &Ctx, obj: &mut Value) -> Vec<Cause> {
    if crate::crds::is_crd(ctx) {
        return crate::crds::admit_crd(obj);
    }
    if ctx.req.subresource.as_deref() != Some("scale") {
        return crate::crds::admit_custom(ctx, obj);
    }
    Vec::new()
}

/// `fieldValidation`: unknown and duplicate fields of a write. `Strict`
/// refuses them (400, upstream's `strict decoding error`), `Warn` (the
/// default) returns them as warnings, `Ignore` says nothing; unless refused,
/// unknown fields of built-in kinds are dropped, as upstream's decoding into
/// typed structs does (custom resources are pruned by their schema).
/// `raw_json` is the request body when it is JSON (duplicates are found
/// there); `whole_body` says the body is a whole object (create, update),
/// whose strict error upstream prefixes with the kind.
pub fn unknown_fields(
    ctx: &Ctx,
    obj: &mut Value,
    raw_json: Option<&[u8]>,
    whole_body: bool,
) -> Result<Vec<String>, ApiError> {
    let mode = ctx.params.get("fieldValidation").unwrap_or("Warn");
    if !matches!(mode, "Strict" | "Warn" | "Ignore") {
        return Err(ApiError::BadRequest(format!(
            "fieldValidation: Unsupported value: {mode:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
        )));
    }
    let (g, v, k) = (&ctx.res.group, &ctx.res.version, &ctx.res.kind);
    let custom = crate::crds::version(ctx);
    let issues = match &custom {
        Some(version) => match &version.schema {
            None => Vec::new(),
            Some(schema) => match raw_json {
                Some(raw) => openapi::crd_strict_field_errors(schema, raw)
                    .unwrap_or_else(|_| openapi::crd_unknown_fields(schema, obj)),
                None => openapi::crd_unknown_fields(schema, obj),
            },
        },
        None => match raw_json {
            Some(raw) => openapi::strict_field_errors(g, v, k, raw)
                .unwrap_or_else(|_| openapi::unknown_fields(g, v, k, obj)),
            None => openapi::unknown_fields(g, v, k, obj),
        },
    };
    if issues.is_empty() {
        return Ok(issues);
    }
    if mode == "Strict" {
        let text = openapi::strict_decoding_error(&issues);
        let text = if whole_body {
            format!("{k} in version {v:?} cannot be handled as a {k}: {text}")
        } else {
            text
        };
        return Err(ApiError::BadRequest(text));
    }
    if custom.is_none() {
        for issue in &issues {
            if let Some(path) = issue.strip_prefix("unknown field \"").and_then(|p| p.strip_suffix('"')) {
                remove_path(obj, path);
            }
        }
    }
    Ok(if mode == "Warn" { issues } else { Vec::new() })
}

/// Removes the field at a path as the field checks print it:
/// `spec.containers[0].imagePullPolicyy`.
fn remove_path(obj: &mut Value, path: &str) {
    let mut steps: Vec<(String, Option<usize>)> = Vec::new();
    for part in path.split('.') {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        steps.push((name.to_string(), None));
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            let n = idx.trim_end_matches(']').parse().ok();
            steps.push((String::new(), n));
        }
    }
    let Some((last, _)) = steps.pop() else { return };
    let mut cur = obj;
    for (name, idx) in steps {
        let next = match idx {
            Some(i) => cur.get_mut(i),
            None if name.is_empty() => None,
            None => cur.get_mut(&name),
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(&last);
    }
}

/// Adds `Warning: 299 - "<text>"` headers (kubectl prints `Warning: <text>`).
pub fn with_warnings(mut r: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - {:?}", w);
        if let Ok(v) = HeaderValue::from_str(&text) {
            r.headers_mut().append("warning", v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::remove_path;
    use serde_json::json;

    #[test]
    fn removes_fields_by_printed_path() {
        let mut o =
            json!({"bogus": 1, "spec": {"containers": [{"name": "c", "x": 1}, {"name": "d", "y": [1]}]}});
        remove_path(&mut o, "bogus");
        remove_path(&mut o, "spec.containers[1].y");
        remove_path(&mut o, "spec.containers[7].x");
        assert_eq!(o, json!({"spec": {"containers": [{"name": "c", "x": 1}, {"name": "d"}]}}));
    }
}
