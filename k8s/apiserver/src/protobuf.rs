//! Kubernetes protobuf request bodies (`k8s\0` + `runtime.Unknown`), which
//! kubectl sends for `create <generator>`, `--dry-run=server` and the auth
//! reviews. Decoded to the JSON upstream would have received.

use lichen_apimachinery::protobuf::{self, ProtobufError};
use serde_json::Value;

use crate::status::ApiError;

pub fn decode(bytes: &[u8]) -> Result<Value, ApiError> {
    protobuf::decode(bytes).map_err(|e| match e {
        ProtobufError::UnknownKind { .. } => {
            ApiError::UnsupportedMediaType(format!("{e}: send this kind as application/json"))
        }
        other => ApiError::BadRequest(format!("protobuf body: {other}")),
    })
}
