//! Server-side apply (`application/apply-patch+yaml`).

use serde_json::Value;

use crate::api::Ctx;
use crate::status::ApiError;

/// Applies the configuration in `body` on top of `current`.
pub fn apply(_ctx: &Ctx, current: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let patch: Value = serde_yaml_ng::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("yaml parse error: {e}")))?;
    let mut out = current.clone();
    merge(&mut out, &patch);
    Ok(out)
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
