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

/// `fieldValidation`: unknown and duplicate fields of a create or update
/// body. `Strict` refuses them (400, upstream's `strict decoding error`),
/// `Warn` (the default) returns them as warnings, `Ignore` skips the check.
pub fn unknown_fields(ctx: &Ctx, obj: &Value, raw_json: Option<&[u8]>) -> Result<Vec<String>, ApiError> {
    let mode = ctx.params.get("fieldValidation").unwrap_or("Warn");
    match mode {
        "Strict" | "Warn" => {}
        "Ignore" => return Ok(Vec::new()),
        other => {
            return Err(ApiError::BadRequest(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            )));
        }
    }
    let (g, v, k) = (&ctx.res.group, &ctx.res.version, &ctx.res.kind);
    if let Some(version) = crate::crds::version(ctx) {
        let Some(schema) = version.schema else { return Ok(Vec::new()) };
        let issues = match raw_json {
            Some(raw) => openapi::crd_strict_field_errors(&schema, raw)
                .unwrap_or_else(|_| openapi::crd_unknown_fields(&schema, obj)),
            None => openapi::crd_unknown_fields(&schema, obj),
        };
        if mode == "Strict" && !issues.is_empty() {
            return Err(ApiError::BadRequest(openapi::strict_decoding_error(&issues)));
        }
        return Ok(issues);
    }
    let issues = match raw_json {
        Some(raw) => openapi::strict_field_errors(g, v, k, raw)
            .unwrap_or_else(|_| openapi::unknown_fields(g, v, k, obj)),
        None => openapi::unknown_fields(g, v, k, obj),
    };
    if mode == "Strict" && !issues.is_empty() {
        return Err(ApiError::BadRequest(openapi::strict_decoding_error(&issues)));
    }
    Ok(issues)
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
