//! Service-account issuer discovery, as upstream: the OpenID provider
//! configuration at `/.well-known/openid-configuration` and the key set at
//! `/openid/v1/jwks`, so relying parties outside the cluster can verify
//! tokens. Readable by the `system:service-account-issuer-discovery` role
//! (every service account) and cluster admins.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::Issuer;
use crate::status::ApiError;

pub const CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";
pub const JWKS_PATH: &str = "/openid/v1/jwks";

/// Whether `path` is one of the discovery documents.
pub fn is_discovery(path: &str) -> bool {
    path == CONFIGURATION_PATH || path == JWKS_PATH
}

/// The OpenID provider configuration.
pub fn configuration(issuer: &Issuer) -> Value {
    json!({
        "issuer": issuer.issuer,
        "jwks_uri": format!("{}{JWKS_PATH}", issuer.issuer),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    })
}

/// The JSON Web Key Set: the public service-account key.
pub fn jwks(issuer: &Issuer) -> Value {
    let (x, y) = issuer.keys.coordinates();
    json!({"keys": [{
        "use": "sig",
        "kty": "EC",
        "kid": issuer.keys.kid(),
        "crv": "P-256",
        "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(x),
        "y": URL_SAFE_NO_PAD.encode(y),
    }]})
}

/// Serves one of the documents (`path` as [`is_discovery`] accepts it).
pub fn serve(
    issuer: Option<&Issuer>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let Some(issuer) = issuer else { return Err(ApiError::NoRoute) };
    if method != Method::GET {
        return Err(ApiError::MethodNotSupported {
            verb: method.as_str().to_ascii_lowercase(),
            resource: path.into(),
        });
    }
    let (doc, content_type) = if path == JWKS_PATH {
        (jwks(issuer), "application/jwk-set+json")
    } else {
        (configuration(issuer), "application/json")
    };
    let mut r = crate::body::json_with_type(StatusCode::OK, &doc, headers, content_type);
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    Ok(r)
}
