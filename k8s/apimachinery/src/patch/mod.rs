//! The three patch formats kubectl and clients send with `PATCH`:
//!
//! - `application/json-patch+json`: RFC 6902 ([`json_patch`]),
//! - `application/merge-patch+json`: RFC 7386 ([`merge_patch`]),
//! - `application/strategic-merge-patch+json`: Kubernetes' strategic merge
//!   patch ([`strategic_merge_patch`]), steered by a [`PatchMeta`].
//!
//! [`apply_patch`] takes the request body as bytes and is the one entry
//! point the apiserver needs; errors say which Status to answer
//! ([`PatchError::reason`]). No input panics: patches nesting deeper than
//! [`MAX_DEPTH`] levels are refused before any recursion, and JSON patch
//! bounds the operations, the nesting and the copies it performs. The
//! [`fuzz`] module holds entry points for fuzz targets.

mod error;
pub mod fuzz;
mod json_patch;
mod merge;
pub mod meta;
mod pointer;
mod strategic;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests_props;
mod value;

use std::fmt;

use serde_json::Value;

pub use error::PatchError;
pub use json_patch::{MAX_COPIED_VALUES, MAX_JSON_PATCH_OPERATIONS, json_patch};
pub use merge::merge_patch;
pub use meta::{FieldMeta, NoMeta, PatchMeta};
pub use strategic::strategic_merge_patch;

/// Patches may nest objects and lists this deep, and JSON patch keeps the
/// patched object within it. serde_json refuses to parse past 128.
pub const MAX_DEPTH: usize = 100;

/// The patch format, from the request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    StrategicMerge,
}

impl PatchType {
    /// The patch type a `Content-Type` header names; parameters such as
    /// `; charset=utf-8` are ignored. Server-side apply
    /// (`application/apply-patch+yaml`) is not a patch format here.
    pub fn from_content_type(content_type: &str) -> Result<Self, PatchError> {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        let all = [Self::Json, Self::Merge, Self::StrategicMerge];
        all.into_iter()
            .find(|kind| kind.content_type().eq_ignore_ascii_case(media_type))
            .ok_or_else(|| PatchError::UnsupportedMediaType { content_type: content_type.to_string() })
    }

    /// The media type of this patch format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json-patch+json",
            Self::Merge => "application/merge-patch+json",
            Self::StrategicMerge => "application/strategic-merge-patch+json",
        }
    }
}

impl fmt::Display for PatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.content_type())
    }
}

/// Applies the patch in the request body `patch`, of format `kind`, to the
/// stored object `original` and returns the patched object. `meta` steers
/// strategic merge patches; the other formats ignore it.
pub fn apply_patch(
    kind: PatchType,
    original: &Value,
    patch: &[u8],
    meta: &dyn PatchMeta,
) -> Result<Value, PatchError> {
    let patch = parse(patch)?;
    match kind {
        PatchType::Json => json_patch(original, &patch),
        PatchType::Merge => merge_patch(original, &patch),
        PatchType::StrategicMerge => strategic_merge_patch(original, &patch, meta),
    }
}

fn parse(body: &[u8]) -> Result<Value, PatchError> {
    serde_json::from_slice(body).map_err(|source| PatchError::MalformedJson {
        line: source.line(),
        column: source.column(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        assert_eq!(PatchType::from_content_type("application/json-patch+json").unwrap(), PatchType::Json);
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8").unwrap(),
            PatchType::Merge
        );
        assert_eq!(
            PatchType::from_content_type("Application/Strategic-Merge-Patch+JSON").unwrap(),
            PatchType::StrategicMerge
        );
        let err = PatchType::from_content_type("application/apply-patch+yaml").unwrap_err();
        assert_eq!(err.reason(), (415, "UnsupportedMediaType"));
        assert!(err.to_string().contains("application/strategic-merge-patch+json"));
    }

    #[test]
    fn malformed_body_says_where() {
        for kind in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
            let err =
                apply_patch(kind, &json!({}), b"{\"spec\":\n  {\"replicas\": 3,}}", &NoMeta).unwrap_err();
            assert!(matches!(err, PatchError::MalformedJson { line: 2, .. }), "{err:?}");
            assert_eq!(err.reason(), (400, "BadRequest"));
        }
    }

    #[test]
    fn body_of_the_wrong_shape_says_so() {
        let err = apply_patch(PatchType::StrategicMerge, &json!({}), b"[1]", &NoMeta).unwrap_err();
        assert_eq!(err.message(), "patch body must be a JSON object, found an array");
        let err = apply_patch(PatchType::Merge, &json!({}), b"\"x\"", &NoMeta).unwrap_err();
        assert_eq!(err.message(), "patch body must be a JSON object, found a string");
        let err = apply_patch(PatchType::Json, &json!({}), b"{}", &NoMeta).unwrap_err();
        assert_eq!(err.message(), "json patch body must be a JSON array of operations, found an object");
    }

    #[test]
    fn deep_patches_are_refused_before_recursing() {
        let mut body = String::new();
        for _ in 0..MAX_DEPTH + 1 {
            body.push_str("{\"a\":");
        }
        body.push('1');
        body.push_str(&"}".repeat(MAX_DEPTH + 1));
        for kind in [PatchType::Merge, PatchType::StrategicMerge] {
            let err = apply_patch(kind, &json!({}), body.as_bytes(), &NoMeta).unwrap_err();
            assert!(matches!(err, PatchError::PatchTooDeep { limit: MAX_DEPTH }), "{err:?}");
        }
        let ok = "{\"a\":".repeat(MAX_DEPTH) + "1" + &"}".repeat(MAX_DEPTH);
        assert!(apply_patch(PatchType::Merge, &json!({}), ok.as_bytes(), &NoMeta).is_ok());
    }

    #[test]
    fn original_must_be_an_object() {
        for kind in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
            let err = apply_patch(kind, &json!([]), b"[]", &NoMeta).unwrap_err();
            assert!(matches!(err, PatchError::OriginalNotObject { .. }), "{kind}: {err:?}");
            assert_eq!(err.reason(), (500, "InternalError"));
        }
    }
}
