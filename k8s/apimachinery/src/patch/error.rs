//! Why a patch could not be applied, and what status upstream answers for it.

use thiserror::Error;

/// Why [`apply_patch`](super::apply_patch) failed.
///
/// Each variant documents the HTTP status and `metav1.Status` reason
/// upstream's apiserver answers (`handlers/patch.go`); [`PatchError::reason`]
/// returns them. Three families:
///
/// - 400 `BadRequest`: the body is not the right shape (`errors.NewBadRequest`).
/// - 422 `Invalid`: the patch is well formed but cannot apply. Upstream uses
///   `NewGenericServerResponse(422)`, whose `message` is the fixed "the server
///   rejected our request due to an error in our request" and whose
///   `details.causes[0].message` is this error's text.
/// - 500 with an empty reason (`StatusReasonUnknown`): strategic merge patch
///   errors upstream returns as plain Go errors, which the apiserver answers as
///   500 with the error text as message. Kept for compatibility.
#[derive(Debug, Error)]
pub enum PatchError {
    /// 415 `UnsupportedMediaType`.
    #[error(
        "unsupported patch content type {content_type:?}: use application/json-patch+json, \
         application/merge-patch+json or application/strategic-merge-patch+json"
    )]
    UnsupportedMediaType { content_type: String },

    /// 400 `BadRequest`. The source carries serde_json's line and column.
    #[error("patch body is not valid JSON")]
    MalformedJson {
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },

    /// 400 `BadRequest`: a merge or strategic merge patch must be an object.
    #[error("patch body must be a JSON object, found {found}")]
    PatchNotObject { found: &'static str },

    /// 400 `BadRequest`: a JSON patch must be an array of operations.
    #[error("json patch body must be a JSON array of operations, found {found}")]
    JsonPatchNotArray { found: &'static str },

    /// 400 `BadRequest`.
    #[error("patch nests objects and lists deeper than {limit} levels")]
    PatchTooDeep { limit: usize },

    /// 500 `InternalError`: the stored object handed to the patcher is not an
    /// object, which is the server's fault, not the client's.
    #[error("the object to patch is {found}, not a JSON object")]
    OriginalNotObject { found: &'static str },

    /// 422 `Invalid` (upstream fails to decode such a result into the kind).
    #[error("the patched object would nest deeper than {limit} levels")]
    ResultTooDeep { limit: usize },

    /// 422 `Invalid` (upstream fails to decode such a result into the kind).
    #[error("the patched document must be a JSON object, found {found}")]
    ResultNotObject { found: &'static str },

    /// 413 `RequestEntityTooLarge`.
    #[error("json patch has {count} operations, at most {limit} are allowed")]
    TooManyOperations { count: usize, limit: usize },

    /// 400 `BadRequest` (upstream's `DecodePatch` rejects it before applying).
    #[error("json patch operation {index} must be a JSON object, found {found}")]
    OperationNotObject { index: usize, found: &'static str },

    /// 422 `Invalid`.
    #[error("json patch operation {index}: member {field:?} is missing or not a string")]
    MissingOperationField { index: usize, field: &'static str },

    /// 422 `Invalid`.
    #[error(
        "json patch operation {index}: unknown op {op}, expected add, remove, replace, move, copy or test"
    )]
    UnknownOperation { index: usize, op: String },

    /// 422 `Invalid`.
    #[error(
        "json patch operation {index}: {pointer:?} is not a JSON pointer: it must be empty or start \
         with \"/\", with \"~\" written \"~0\" and \"/\" in a name written \"~1\""
    )]
    InvalidPointer { index: usize, pointer: String },

    /// 422 `Invalid`.
    #[error("json patch operation {index} ({op}): path {path:?} does not exist")]
    PathNotFound { index: usize, op: &'static str, path: String },

    /// 422 `Invalid`.
    #[error("json patch operation {index} ({op}): {path:?} does not name an index within the array")]
    InvalidArrayIndex { index: usize, op: &'static str, path: String },

    /// 422 `Invalid`.
    #[error("json patch operation {index} (test): the value at {path:?} differs from the expected value")]
    TestFailed { index: usize, path: String },

    /// 422 `Invalid`.
    #[error("json patch operation {index} (move): cannot move {from:?} into its own child {path:?}")]
    MoveIntoChild { index: usize, from: String, path: String },

    /// 422 `Invalid`.
    #[error("json patch operation {index} (remove): cannot remove the whole document")]
    RemoveRoot { index: usize },

    /// 422 `Invalid`.
    #[error("json patch operation {index} (copy): the patch copies more than {limit} values in total")]
    CopyLimitExceeded { index: usize, limit: usize },

    /// 500, empty reason (upstream `ErrBadPatchType`, a plain error).
    #[error("{path}: unknown $patch directive {value}, expected \"replace\" or \"delete\"")]
    InvalidDirective { path: String, value: String },

    /// 500, empty reason (upstream: "merging lists cannot yet be specified in the patch").
    #[error("{path}: \"$patch\": \"merge\" is not supported in a list element")]
    MergeDirectiveInList { path: String },

    /// 500, empty reason (upstream `ErrNoMergeKey`, a plain error).
    #[error("{path}: list element does not contain the merge key {key:?}")]
    MissingMergeKey { path: String, key: String },

    /// 500, empty reason: the field merges but its schema names no merge key.
    #[error("{path}: cannot merge a list of objects without a merge key")]
    NoMergeKey { path: String },

    /// 422 `Invalid` (upstream `ErrNoListOfLists`).
    #[error("{path}: lists of lists are not supported")]
    ListOfLists { path: String },

    /// 500, empty reason (upstream: "list element types are not identical").
    #[error("{path}: a merged list must hold only objects or only primitive values")]
    MixedListElements { path: String },

    /// 400 `BadRequest` (upstream `ErrBadPatchFormatForRetainKeys`).
    #[error("{path}: $retainKeys must be a list of field names")]
    BadRetainKeys { path: String },

    /// 400 `BadRequest` (upstream `ErrBadPatchFormatForRetainKeys`).
    #[error("{path}: field {key:?} is set by the patch but missing from $retainKeys")]
    RetainKeysMismatch { path: String, key: String },

    /// 400 `BadRequest` (upstream `ErrBadPatchFormatForSetElementOrderList`).
    #[error("{path}: {key:?} must be written $setElementOrder/<list field> and hold a list")]
    BadSetElementOrder { path: String, key: String },

    /// 500, empty reason (upstream: "doesn't match $setElementOrder list").
    #[error("{path}: the order of the patch list does not match its $setElementOrder list")]
    SetElementOrderMismatch { path: String },

    /// 500, empty reason (upstream `ErrBadArgType`).
    #[error("{path}: $setElementOrder applies to a list, found {found}")]
    NotAList { path: String, found: &'static str },

    /// 400 `BadRequest` (upstream `ErrBadPatchFormatForPrimitiveList`).
    #[error(
        "{path}: {key:?} must be written $deleteFromPrimitiveList/<list field> and hold a list of \
         primitive values, for a list of primitive values"
    )]
    BadDeleteFromPrimitiveList { path: String, key: String },
}

impl PatchError {
    /// The HTTP status code and `metav1.Status` reason upstream answers. An
    /// empty reason is `StatusReasonUnknown`, which upstream omits.
    pub fn reason(&self) -> (u16, &'static str) {
        const BAD_REQUEST: (u16, &str) = (400, "BadRequest");
        const INVALID: (u16, &str) = (422, "Invalid");
        const UNKNOWN: (u16, &str) = (500, "");
        match self {
            Self::UnsupportedMediaType { .. } => (415, "UnsupportedMediaType"),
            Self::MalformedJson { .. }
            | Self::PatchNotObject { .. }
            | Self::JsonPatchNotArray { .. }
            | Self::PatchTooDeep { .. }
            | Self::OperationNotObject { .. }
            | Self::BadRetainKeys { .. }
            | Self::RetainKeysMismatch { .. }
            | Self::BadSetElementOrder { .. }
            | Self::BadDeleteFromPrimitiveList { .. } => BAD_REQUEST,
            Self::OriginalNotObject { .. } => (500, "InternalError"),
            Self::TooManyOperations { .. } => (413, "RequestEntityTooLarge"),
            Self::ResultTooDeep { .. }
            | Self::ResultNotObject { .. }
            | Self::MissingOperationField { .. }
            | Self::UnknownOperation { .. }
            | Self::InvalidPointer { .. }
            | Self::PathNotFound { .. }
            | Self::InvalidArrayIndex { .. }
            | Self::TestFailed { .. }
            | Self::MoveIntoChild { .. }
            | Self::RemoveRoot { .. }
            | Self::CopyLimitExceeded { .. }
            | Self::ListOfLists { .. } => INVALID,
            Self::InvalidDirective { .. }
            | Self::MergeDirectiveInList { .. }
            | Self::MissingMergeKey { .. }
            | Self::NoMergeKey { .. }
            | Self::MixedListElements { .. }
            | Self::SetElementOrderMismatch { .. }
            | Self::NotAList { .. } => UNKNOWN,
        }
    }

    /// The error and its sources joined by `": "`, for a Status message.
    pub fn message(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_json_message_carries_the_position() {
        let source = serde_json::from_slice::<serde_json::Value>(b"{\"a\": }").unwrap_err();
        let err = PatchError::MalformedJson { line: source.line(), column: source.column(), source };
        assert_eq!(err.reason(), (400, "BadRequest"));
        let message = err.message();
        assert!(message.starts_with("patch body is not valid JSON: "), "{message}");
        assert!(message.contains("line 1 column 7"), "{message}");
    }

    #[test]
    fn json_patch_failures_are_invalid() {
        let err = PatchError::TestFailed { index: 0, path: "/spec/replicas".into() };
        assert_eq!(err.reason(), (422, "Invalid"));
        assert_eq!(
            err.message(),
            "json patch operation 0 (test): the value at \"/spec/replicas\" differs from the expected value"
        );
    }
}
