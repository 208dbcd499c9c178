//! Service-account tokens, as kube-apiserver's bound tokens: the
//! `serviceaccounts/<name>/token` subresource (TokenRequest) issues ES256
//! JWTs signed with the cluster's service-account key ([`request`]); the
//! bearer-token path accepts them while the service account and the object
//! the token is bound to still exist ([`validate`]); the OpenID discovery
//! documents publish the public key ([`oidc`]). The JWT itself is in
//! [`jwt`], without I/O.

pub mod jwt;
pub mod oidc;
pub mod request;
pub mod validate;

use std::sync::Arc;

use lichen_apimachinery::timestamp::parse_rfc3339;
use serde_json::Value;

use crate::api::Api;
use crate::objects;
use crate::status::ApiError;

/// The issuer (`iss`) of every token, and the API server's audience, as
/// k3s and kubeadm clusters use.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The token issuer of one API server: its key, `iss`, and the audiences
/// the server accepts tokens for (`--api-audiences`, defaulting to the
/// issuer as upstream).
#[derive(Debug)]
pub struct Issuer {
    pub keys: jwt::Keys,
    pub issuer: String,
    pub audiences: Vec<String>,
}

impl Issuer {
    /// An issuer with the service-account key (PKCS#8 PEM) and, when not
    /// empty, its public half (SPKI PEM), which must match.
    pub fn from_pem(private_pem: &str, public_pem: &str) -> Result<Self, jwt::KeyError> {
        Ok(Issuer {
            keys: jwt::Keys::from_pem(private_pem, public_pem)?,
            issuer: ISSUER.into(),
            audiences: vec![ISSUER.into()],
        })
    }
}

/// A core-group object as stored, `None` when there is none; `namespace`
/// is ignored for cluster-scoped resources.
pub(crate) async fn get_core(
    api: &Arc<Api>,
    plural: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>, ApiError> {
    let res = api.find("", "v1", plural).ok_or(ApiError::NoRoute)?;
    let key = objects::key(&res, namespace, name);
    let store = api.store.clone();
    let kv = tokio::task::spawn_blocking(move || store.get(&key, None))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::Internal(format!("datastore: {e}")))?;
    kv.map(|kv| objects::decode(&kv)).transpose()
}

pub(crate) fn uid_of(obj: &Value) -> &str {
    objects::meta_str(obj, "uid").unwrap_or("")
}

/// Whether `obj` was marked for deletion before `unix` (upstream treats an
/// object deleted more than the leeway ago as gone, and one in its grace
/// period as still there).
pub(crate) fn deleted_before(obj: &Value, unix: i64) -> bool {
    objects::meta_str(obj, "deletionTimestamp").and_then(parse_rfc3339).is_some_and(|t| t < unix)
}

#[cfg(test)]
mod tests;
