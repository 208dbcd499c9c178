//! PATCH bodies: which format, and applying it to the current object with
//! the kind's strategic-merge metadata from the OpenAPI schemas.

use lichen_apimachinery::openapi;
use lichen_apimachinery::patch::{self, PatchError, PatchType, meta::NoMeta};
use serde_json::Value;

use crate::api::Ctx;
use crate::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Patch(PatchType),
    /// Server-side apply (`application/apply-patch+yaml`).
    Apply,
}

pub fn kind_of(content_type: &str) -> Result<Kind, ApiError> {
    if content_type == "application/apply-patch+yaml" {
        return Ok(Kind::Apply);
    }
    PatchType::from_content_type(content_type).map(Kind::Patch).map_err(|e| wire(&e))
}

/// Maps a patch failure to the Status upstream answers. Errors upstream
/// leaves without a reason (a bad `$patch` directive, a missing merge key)
/// are the client's mistakes: 400 here.
pub fn wire(e: &PatchError) -> ApiError {
    let message = e.message();
    match e.reason() {
        (415, _) => ApiError::UnsupportedMediaType(message),
        (413, _) => ApiError::TooLarge(message),
        // Upstream answers any JSON patch operation that does not apply with
        // its generic 422 (`NewGenericServerResponse`), the detail withheld.
        (422, _) => ApiError::PatchNotApplied(message),
        (500, "InternalError") => ApiError::Internal(message),
        _ => ApiError::BadRequest(message),
    }
}

pub fn apply(ctx: &Ctx, kind: Kind, current: &Value, body: &[u8]) -> Result<Value, ApiError> {
    match kind {
        Kind::Patch(t) => {
            let scale = ctx.req.subresource.as_deref() == Some("scale");
            let meta = if scale {
                None
            } else {
                openapi::patch_meta(&ctx.res.group, &ctx.res.version, &ctx.res.kind)
            };
            let result = match &meta {
                Some(m) => patch::apply_patch(t, current, body, m),
                None => patch::apply_patch(t, current, body, &NoMeta),
            };
            result.map_err(|e| wire(&e))
        }
        Kind::Apply => crate::apply::apply(ctx, current, body),
    }
}
