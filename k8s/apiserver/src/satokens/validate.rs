//! Authenticating a presented service-account token, as upstream's
//! `serviceaccount.validator`: a valid JWT ([`super::jwt`]) whose service
//! account still exists with the same uid, and whose bound pod, secret or
//! node still exists with the same uid. An object marked for deletion more
//! than the leeway ago counts as gone; one still in its grace period does
//! not.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::jwt::{Claims, LEEWAY_SECONDS, Ref, VerifyError};
use super::{deleted_before, get_core, uid_of};
use crate::api::Api;
use crate::authn::Identity;
use crate::status::ApiError;

/// Why a token that may be ours does not authenticate. Every variant is a
/// 401; the reason is only logged.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("service-account tokens are not configured")]
    NoIssuer,
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("token names no service account")]
    NoServiceAccount,
    #[error("{kind} {namespace}/{name} no longer exists")]
    Gone { kind: &'static str, namespace: String, name: String },
    #[error("{kind} {namespace}/{name} has been deleted")]
    Deleted { kind: &'static str, namespace: String, name: String },
    #[error("{kind} uid ({live}) does not match claim ({claim})")]
    Uid { kind: &'static str, live: String, claim: String },
    #[error("reading {kind} {name}")]
    Store { kind: &'static str, name: String, source: ApiError },
}

/// The identity of `token`: user `system:serviceaccount:<ns>:<name>`, the
/// service account's uid, its groups and `system:authenticated`.
pub async fn authenticate(api: &Arc<Api>, token: &str) -> Result<Identity, TokenError> {
    let issuer = api.service_account_issuer().ok_or(TokenError::NoIssuer)?;
    let now = crate::objects::now_unix();
    let claims = issuer.keys.verify(token, &issuer.issuer, &issuer.audiences, now)?;
    let k = &claims.kubernetes;
    let namespace = k.namespace.as_str();
    if namespace.is_empty() || k.serviceaccount.name.is_empty() {
        return Err(TokenError::NoServiceAccount);
    }
    // Deleted before now minus the leeway: gone, as upstream.
    let cutoff = now - LEEWAY_SECONDS;
    live(api, "ServiceAccount", "serviceaccounts", namespace, &k.serviceaccount, cutoff).await?;
    if let Some(secret) = &k.secret {
        live(api, "Secret", "secrets", namespace, secret, cutoff).await?;
    }
    if let Some(pod) = &k.pod {
        live(api, "Pod", "pods", namespace, pod, cutoff).await?;
    } else if let Some(node) = &k.node {
        // A node-bound token; in a pod-bound one the node is information.
        live(api, "Node", "nodes", "", node, cutoff).await?;
    }
    let mut id = crate::rbac::policy::service_account_identity(
        namespace,
        &k.serviceaccount.name,
        &k.serviceaccount.uid,
    );
    id.extra = extra(&claims);
    Ok(id)
}

/// Upstream's `ServiceAccountInfo.UserInfo` extras: the pod and node the
/// token names, and the credential id (`JTI=<jti>`) for audit.
fn extra(claims: &Claims) -> BTreeMap<String, Vec<String>> {
    let k = &claims.kubernetes;
    let mut extra = BTreeMap::new();
    let mut put = |key: &str, value: &str| {
        if !value.is_empty() {
            extra.insert(format!("authentication.kubernetes.io/{key}"), vec![value.to_string()]);
        }
    };
    if let Some(pod) = &k.pod {
        put("pod-name", &pod.name);
        put("pod-uid", &pod.uid);
    }
    if let Some(node) = &k.node {
        put("node-name", &node.name);
        put("node-uid", &node.uid);
    }
    if !claims.jti.is_empty() {
        put("credential-id", &format!("JTI={}", claims.jti));
    }
    extra
}

/// Checks that the object a claim names exists with the claimed uid and was
/// not deleted before `cutoff`.
async fn live(
    api: &Arc<Api>,
    kind: &'static str,
    plural: &str,
    namespace: &str,
    claim: &Ref,
    cutoff: i64,
) -> Result<Value, TokenError> {
    let obj = get_core(api, plural, namespace, &claim.name).await.map_err(|source| TokenError::Store {
        kind,
        name: claim.name.clone(),
        source,
    })?;
    let (namespace, name) = (namespace.to_string(), claim.name.clone());
    let Some(obj) = obj else { return Err(TokenError::Gone { kind, namespace, name }) };
    if deleted_before(&obj, cutoff) {
        return Err(TokenError::Deleted { kind, namespace, name });
    }
    if uid_of(&obj) != claim.uid {
        return Err(TokenError::Uid { kind, live: uid_of(&obj).into(), claim: claim.uid.clone() });
    }
    Ok(obj)
}
