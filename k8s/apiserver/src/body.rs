//! Request bodies in, responses out: size limit, content types, gzip.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::status::ApiError;

/// etcd's request limit, which upstream inherits: 3 MiB.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Responses above this are gzipped when the client accepts it (upstream's
/// threshold: small answers are not worth the CPU).
const GZIP_THRESHOLD: usize = 128 * 1024;

pub async fn read(body: Body) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::TooLarge(format!("limit is {MAX_BODY}")))
        }
        Err(e) => Err(ApiError::BadRequest(format!("reading the request body: {e}"))),
    }
}

pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}

const ACCEPTED: &str = "application/json, application/yaml, application/vnd.kubernetes.protobuf";

/// An object from a create or update body: JSON, YAML or Kubernetes
/// protobuf.
pub fn decode_object(bytes: &[u8], content_type: &str) -> Result<Value, ApiError> {
    let v: Value = match content_type {
        "" | "application/json" | "*/*" => serde_json::from_slice(bytes)
            .map_err(|e| ApiError::BadRequest(format!("json parse error: {e}")))?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => serde_yaml_ng::from_slice(bytes)
            .map_err(|e| ApiError::BadRequest(format!("yaml parse error: {e}")))?,
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(bytes)?,
        _ => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: {ACCEPTED}"
            )));
        }
    };
    if !v.is_object() {
        return Err(ApiError::BadRequest("the request body must be a JSON object".into()));
    }
    Ok(v)
}

/// The client's preferred media type: the first entry of `Accept`.
fn preferred(headers: &HeaderMap) -> Option<&str> {
    headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).next()
}

/// Whether the client asked for a `meta.k8s.io` Table (kubectl get).
pub fn wants_table(headers: &HeaderMap) -> bool {
    preferred(headers).is_some_and(|first| first.contains("as=Table"))
}

/// Whether the client asked for aggregated discovery (`as=APIGroupDiscoveryList`).
pub fn wants_aggregated(headers: &HeaderMap) -> bool {
    preferred(headers)
        .is_some_and(|first| first.contains("as=APIGroupDiscoveryList") && first.contains("v=v2"))
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")))
}

/// A JSON answer, gzipped when large and accepted.
pub fn json(code: StatusCode, value: &Value, req: &HeaderMap) -> Response {
    json_with_type(code, value, req, "application/json")
}

pub fn json_with_type(
    code: StatusCode,
    value: &Value,
    req: &HeaderMap,
    content_type: &'static str,
) -> Response {
    let bytes = match serde_json::to_vec(value) {
        Ok(b) => b,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let mut r = if bytes.len() > GZIP_THRESHOLD && accepts_gzip(req) {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let gz = enc.write_all(&bytes).and_then(|()| enc.finish());
        match gz {
            Ok(gz) => {
                let mut r = (code, Body::from(gz)).into_response();
                r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            }
            Err(_) => (code, Body::from(bytes)).into_response(),
        }
    } else {
        (code, Body::from(bytes)).into_response()
    };
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
