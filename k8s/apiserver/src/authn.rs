//! Who is asking, as upstream's chain of authenticators: the subject of a
//! client certificate signed by the cluster CA (CN is the user, each O a
//! group), else a bearer token from the static token file
//! ([`crate::tokens`]), else a join token ([`crate::jointokens`]), else a
//! service-account token ([`crate::satokens::validate`]). Anything else is
//! 401.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::HeaderMap;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::api::Api;
use crate::status::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    /// Empty when the authenticator knows none (certificates).
    pub uid: String,
    pub groups: Vec<String>,
    /// What else the authenticator says (a service-account token's pod,
    /// node and credential id), as upstream's `user.Info.GetExtra`.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl Identity {
    /// A trusted in-process caller (the controllers): `user` in
    /// `system:masters`.
    pub fn master(user: &str) -> Identity {
        Identity {
            user: user.to_owned(),
            uid: String::new(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            extra: BTreeMap::new(),
        }
    }

    /// Members of `system:masters` may do anything, as upstream (RBAC is
    /// never consulted for them).
    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

/// The identity in a verified client certificate (DER); `None` without a
/// common name.
pub fn from_certificate(der: &[u8]) -> Option<Identity> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    let user = subject.iter_common_name().next()?.as_str().ok()?.to_string();
    if user.is_empty() {
        return None;
    }
    let mut groups: Vec<String> =
        subject.iter_organization().filter_map(|o| o.as_str().ok().map(String::from)).collect();
    groups.push("system:authenticated".into());
    Some(Identity { user, uid: String::new(), groups, extra: BTreeMap::new() })
}

/// The identity of a request: the client certificate's first (upstream
/// tries x509 before tokens), else the bearer token's. No credentials, or a
/// token no authenticator accepts, is 401, never another error: a broken
/// token or a datastore hiccup while checking one says nothing to the
/// client.
pub async fn authenticate(
    api: &Arc<Api>,
    certificate: Option<Identity>,
    headers: &HeaderMap,
) -> Result<Identity, ApiError> {
    if let Some(id) = certificate {
        return Ok(id);
    }
    let token = crate::tokens::bearer(headers).ok_or(ApiError::Unauthorized)?;
    if let Some(id) = api.tokens.authenticate(token) {
        return Ok(id);
    }
    match crate::jointokens::authenticate(api, token).await {
        Ok(Some(id)) => return Ok(id),
        Ok(None) => {}
        Err(reason) => {
            tracing::info!(%reason, "join token refused");
            return Err(ApiError::JoinRefused(reason));
        }
    }
    crate::satokens::validate::authenticate(api, token).await.map_err(|e| {
        tracing::debug!(reason = %e, "bearer token refused");
        ApiError::Unauthorized
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, header};
    use lichen_store::MemoryStore;

    #[tokio::test]
    async fn certificates_win_and_bad_tokens_are_401() {
        let tokens = crate::tokens::Tokens::parse("good,alice,1\n", std::path::Path::new("t.csv")).unwrap();
        let api = Arc::new(
            Api::new(Arc::new(MemoryStore::new()), crate::services::ServiceCidr::default())
                .with_tokens(tokens),
        );
        let mut h = HeaderMap::new();
        assert!(matches!(authenticate(&api, None, &h).await, Err(ApiError::Unauthorized)));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer bad"));
        assert!(matches!(authenticate(&api, None, &h).await, Err(ApiError::Unauthorized)));
        let cert = Identity {
            user: "admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into()],
            extra: Default::default(),
        };
        assert_eq!(authenticate(&api, Some(cert), &h).await.unwrap().user, "admin");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer good"));
        assert_eq!(authenticate(&api, None, &h).await.unwrap().user, "alice");
        // A JWT-shaped token without service-account keys is still just 401.
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer eyJhbGciOiJub25lIn0.e30."));
        assert!(matches!(authenticate(&api, None, &h).await, Err(ApiError::Unauthorized)));
    }
}
