//! PATCH bodies: which format, and applying it to the current object.

use serde_json::Value;

use crate::api::Ctx;
use crate::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Json,
    Merge,
    Strategic,
    Apply,
}

pub fn kind_of(content_type: &str) -> Result<Kind, ApiError> {
    match content_type {
        "application/json-patch+json" => Ok(Kind::Json),
        "application/merge-patch+json" => Ok(Kind::Merge),
        "application/strategic-merge-patch+json" => Ok(Kind::Strategic),
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(Kind::Apply),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other})"
        ))),
    }
}

pub fn apply(_ctx: &Ctx, kind: Kind, current: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let patch: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("json parse error: {e}")))?;
    match kind {
        Kind::Merge | Kind::Strategic | Kind::Apply => {
            let mut out = current.clone();
            merge(&mut out, &patch);
            Ok(out)
        }
        Kind::Json => Err(ApiError::UnsupportedMediaType("json patch: not yet".into())),
    }
}

fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}
