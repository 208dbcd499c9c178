//! Kubernetes protobuf request bodies (`k8s\0` + `runtime.Unknown`), which
//! kubectl sends for `create <generator>` and the auth reviews.

use serde_json::Value;

use crate::status::ApiError;

pub fn decode(_bytes: &[u8]) -> Result<Value, ApiError> {
    Err(ApiError::UnsupportedMediaType(
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml".into(),
    ))
}
