//! Errors as the wire sees them: `metav1.Status` with upstream's code,
//! reason and message, so kubectl prints exactly what it prints against
//! upstream (`Error from server (NotFound): pods "x" not found`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One field error of an `Invalid` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`,
    /// `FieldValueForbidden`, `FieldValueDuplicate`, `FieldValueTooLong`.
    pub reason: &'static str,
    /// `metadata.name`
    pub field: String,
    /// The whole line kubectl prints after the field, e.g.
    /// `Invalid value: "A": a lowercase RFC 1123 subdomain must consist of ...`.
    pub message: String,
}

impl Cause {
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        let shown = match value {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        Cause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {shown}: {detail}"),
        }
    }

    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        Cause { reason: "FieldValueRequired", field: field.into(), message }
    }

    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Cause { reason: "FieldValueForbidden", field: field.into(), message: format!("Forbidden: {detail}") }
    }
}

/// Everything the API can answer besides success. `resource` is the plural
/// resource, group-qualified as upstream prints it (`deployments.apps`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{resource} {name:?} not found")]
    NotFound { resource: String, group: String, plural: String, name: String },
    #[error("the server could not find the requested resource")]
    NoRoute,
    #[error("{resource} {name:?} already exists")]
    AlreadyExists { resource: String, group: String, plural: String, name: String },
    #[error("Operation cannot be fulfilled on {resource} {name:?}: {detail}")]
    Conflict { resource: String, group: String, plural: String, name: String, detail: String },
    /// Server-side apply would change fields other managers own: 409 with
    /// one `FieldManagerConflict` cause per field.
    #[error("{message}")]
    ApplyConflict { message: String, causes: Vec<Cause> },
    #[error("{} {name:?} is invalid: {}", qualified(.group, .kind), causes_text(.causes))]
    Invalid { group: String, kind: String, name: String, causes: Vec<Cause> },
    #[error("{0}")]
    BadRequest(String),
    /// A JSON patch operation that does not apply: upstream's generic 422
    /// (the detail is not sent, as upstream).
    #[error("the server rejected our request due to an error in our request")]
    PatchNotApplied(String),
    #[error("Unauthorized")]
    Unauthorized,
    /// A join token refused: 401 with the reason (unknown, expired, pins
    /// another CA), so that an agent's operator learns why.
    #[error("Unauthorized: {0}")]
    JoinRefused(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{verb} is not supported on resources of kind {resource:?}")]
    MethodNotSupported { verb: String, resource: String },
    #[error("{0}")]
    Expired(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("Request entity too large: {0}")]
    TooLarge(String),
    #[error("Internal error occurred: {0}")]
    Internal(String),
    #[error("Timeout: {0}")]
    Timeout(String),
    /// A backend (a node agent) cannot be reached.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// Not now (an eviction a disruption budget forbids): 429 with the
    /// reason as a cause; clients retry.
    #[error("{message}")]
    TooManyRequests { message: String, cause: String, retry_after: u32 },
}

fn causes_text(causes: &[Cause]) -> String {
    let parts: Vec<String> = causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
    if parts.len() == 1 { parts.join("") } else { format!("[{}]", parts.join(", ")) }
}

impl ApiError {
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } | ApiError::NoRoute => 404,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => {
                409
            }
            ApiError::Invalid { .. } | ApiError::PatchNotApplied(_) => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized | ApiError::JoinRefused(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::MethodNotSupported { .. } => 405,
            ApiError::Expired(_) => 410,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::NotAcceptable(_) => 406,
            ApiError::TooLarge(_) => 413,
            ApiError::Internal(_) => 500,
            ApiError::Timeout(_) => 504,
            ApiError::ServiceUnavailable(_) => 503,
            ApiError::TooManyRequests { .. } => 429,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::NoRoute => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Invalid { .. } | ApiError::PatchNotApplied(_) => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Unauthorized | ApiError::JoinRefused(_) => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::MethodNotSupported { .. } => "MethodNotAllowed",
            ApiError::Expired(_) => "Expired",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::TooLarge(_) => "RequestEntityTooLarge",
            ApiError::Internal(_) => "InternalError",
            ApiError::Timeout(_) => "Timeout",
            ApiError::ServiceUnavailable(_) => "ServiceUnavailable",
            ApiError::TooManyRequests { .. } => "TooManyRequests",
        }
    }

    /// The `metav1.Status` body.
    pub fn status(&self) -> Value {
        let details = match self {
            ApiError::NotFound { group, plural, name, .. }
            | ApiError::AlreadyExists { group, plural, name, .. }
            | ApiError::Conflict { group, plural, name, .. } => {
                let mut d = json!({"name": name, "kind": plural});
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            ApiError::Invalid { group, kind, name, causes } => {
                let causes: Vec<Value> = causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
                let mut d = json!({"name": name, "kind": kind, "causes": causes});
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            ApiError::ApplyConflict { causes, .. } => {
                let causes: Vec<Value> = causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
                Some(json!({"causes": causes}))
            }
            ApiError::TooManyRequests { cause, retry_after, .. } => {
                let mut d = json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]});
                if *retry_after > 0 {
                    d["retryAfterSeconds"] = json!(retry_after);
                }
                Some(d)
            }
            ApiError::NoRoute => Some(json!({})),
            ApiError::PatchNotApplied(_) => Some(json!({})),
            _ => None,
        };
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        if let Some(d) = details {
            s["details"] = d;
        }
        s
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// `pods`, `deployments.apps`: how upstream names a resource (or a kind,
/// `Deployment.apps`) in messages.
pub fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = self.status().to_string();
        let mut r = (code, body).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let ApiError::Unauthorized = self {
            // Upstream does not send WWW-Authenticate for certificates; keep
            // the answer as upstream's.
        }
        r
    }
}

/// A successful `Status` (upstream answers some deletes with it).
pub fn success(details: Value) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_upstreams() {
        let e = ApiError::NotFound {
            resource: qualified("apps", "deployments"),
            group: "apps".into(),
            plural: "deployments".into(),
            name: "web".into(),
        };
        assert_eq!(e.to_string(), "deployments.apps \"web\" not found");
        let s = e.status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"], json!({"name": "web", "group": "apps", "kind": "deployments"}));
        let e = ApiError::Invalid {
            group: String::new(),
            kind: "ConfigMap".into(),
            name: "A".into(),
            causes: vec![Cause::invalid("metadata.name", &json!("A"), "bad")],
        };
        assert_eq!(e.to_string(), "ConfigMap \"A\" is invalid: metadata.name: Invalid value: \"A\": bad");
        assert_eq!(e.status()["details"]["causes"][0]["reason"], "FieldValueInvalid");
    }
}
