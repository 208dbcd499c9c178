//! Join tokens as bearer credentials, for agents that bootstrap.
//!
//! An agent joining with `K10<ca hash>::<credential>` (see
//! `lichen_pki::join`) sends the whole token as its bearer token until it
//! has a client certificate. This authenticator accepts:
//! - the cluster's own token (`pki/token`, `K10<hash>::server:<secret>`):
//!   user `system:bootstrap:server`;
//! - a bootstrap token, `K10<hash>::<id>.<secret>` or bare `<id>.<secret>`
//!   as kubeadm sends it: the Secret `kube-system/bootstrap-token-<id>` of
//!   type `bootstrap.kubernetes.io/token` with that `token-secret`,
//!   `usage-bootstrap-authentication: "true"` and an `expiration` not yet
//!   passed, as upstream's bootstrap token authenticator: user
//!   `system:bootstrap:<id>`, its `auth-extra-groups`.
//!
//! Both are in `system:bootstrappers`, which the default RBAC policy lets
//! create node client CertificateSigningRequests and nothing else. A token
//! that is not join-shaped is not ours (`Ok(None)`: the next authenticator
//! tries it); a join-shaped one that fails says why, in the 401.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use lichen_pki::join::{Credential, JoinToken};
use serde_json::Value;

use crate::api::Api;
use crate::authn::Identity;
use crate::tokens::constant_time_eq;

/// The group every bootstrapping identity is in.
pub const BOOTSTRAPPERS: &str = "system:bootstrappers";
/// The Secret type of bootstrap tokens.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// Bootstrap token Secrets are `kube-system/<PREFIX><id>`.
pub const SECRET_PREFIX: &str = "bootstrap-token-";

/// What the server knows to check join tokens: its CA's hash and its own
/// token. Empty: only bare bootstrap tokens are checked.
#[derive(Clone, Default)]
pub struct JoinConfig {
    /// The cluster CA (PEM), served unauthenticated at `/cacerts` for
    /// agents to pin against their token's hash.
    pub ca_pem: String,
    /// The cluster's own join token (`K10<hash>::server:<secret>`).
    pub server_token: Option<String>,
}

impl std::fmt::Debug for JoinConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinConfig").field("server_token", &self.server_token.is_some()).finish()
    }
}

impl JoinConfig {
    fn ca_hash(&self) -> Option<String> {
        lichen_pki::join::ca_hash_of_pem(&self.ca_pem)
    }
}

/// The identity of a join token; `Ok(None)` when `token` is not one,
/// `Err(reason)` when it is one the server refuses.
pub async fn authenticate(api: &Arc<Api>, token: &str) -> Result<Option<Identity>, String> {
    let cfg = &api.join;
    let (id, secret) = if token.starts_with("K10") {
        let parsed = JoinToken::parse(token).map_err(|e| format!("malformed join token: {e}"))?;
        if let Some(own) = cfg.ca_hash()
            && own != parsed.ca_hash
        {
            return Err(format!(
                "the join token pins cluster CA sha256:{} but this server's CA is sha256:{own}",
                parsed.ca_hash
            ));
        }
        match parsed.credential {
            Credential::Server { secret } => {
                let own = cfg.server_token.as_deref().and_then(|t| JoinToken::parse(t).ok());
                let ok = matches!(own.map(|t| t.credential), Some(Credential::Server { secret: s })
                    if constant_time_eq(s.as_bytes(), secret.as_bytes()));
                if !ok {
                    return Err("the join token's server secret is not this cluster's".into());
                }
                return Ok(Some(identity("server", &[])));
            }
            Credential::Bootstrap { id, secret } => (id, secret),
        }
    } else if let Some((id, secret)) = lichen_pki::join::parse_bootstrap(token) {
        (id.to_owned(), secret.to_owned())
    } else {
        return Ok(None);
    };
    let name = format!("{SECRET_PREFIX}{id}");
    let found = crate::satokens::get_core(api, "secrets", "kube-system", &name)
        .await
        .map_err(|e| format!("reading bootstrap token {id}: {e}"))?;
    let Some(found) = found else {
        return Err(format!(
            "bootstrap token {id} is unknown (revoked, expired and cleaned up, or never made)"
        ));
    };
    check_secret(&found, &id, &secret, crate::objects::now_unix()).map(Some)
}

/// Checks a bootstrap token Secret against the presented secret, as
/// upstream's authenticator: type, `token-id`, `token-secret`, the
/// authentication usage, expiry and the extra groups' prefix.
pub fn check_secret(obj: &Value, id: &str, secret: &str, now: i64) -> Result<Identity, String> {
    if obj["type"].as_str() != Some(SECRET_TYPE) {
        return Err(format!("bootstrap token {id}: its Secret is not of type {SECRET_TYPE}"));
    }
    if obj["metadata"]["deletionTimestamp"].is_string() {
        return Err(format!("bootstrap token {id} is being deleted"));
    }
    let data = decode_data(obj);
    let field = |k: &str| data.get(k).map(String::as_str).unwrap_or("");
    if field("token-id") != id || !constant_time_eq(field("token-secret").as_bytes(), secret.as_bytes()) {
        return Err(format!("bootstrap token {id}: wrong secret"));
    }
    if field("usage-bootstrap-authentication") != "true" {
        return Err(format!("bootstrap token {id} may not be used for authentication"));
    }
    if let Some(exp) = data.get("expiration") {
        let at = lichen_apimachinery::timestamp::parse_rfc3339(exp)
            .ok_or_else(|| format!("bootstrap token {id}: expiration {exp:?} is not an RFC 3339 time"))?;
        if now >= at {
            return Err(format!("bootstrap token {id} expired at {exp}"));
        }
    }
    let mut groups = Vec::new();
    for g in field("auth-extra-groups").split(',').map(str::trim).filter(|g| !g.is_empty()) {
        if !g.starts_with("system:bootstrappers:") {
            return Err(format!(
                "bootstrap token {id}: extra group {g:?} is not under system:bootstrappers:"
            ));
        }
        groups.push(g);
    }
    Ok(identity(id, &groups))
}

fn identity(id: &str, extra_groups: &[&str]) -> Identity {
    let mut groups = vec![BOOTSTRAPPERS.to_owned()];
    groups.extend(extra_groups.iter().map(|g| (*g).to_owned()));
    groups.push("system:authenticated".into());
    Identity { user: format!("system:bootstrap:{id}"), uid: String::new(), groups, extra: BTreeMap::new() }
}

/// `data` (base64) and `stringData` of a Secret, decoded; undecodable
/// values are left out.
pub fn decode_data(obj: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(data) = obj["data"].as_object() {
        for (k, v) in data {
            let text = v
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .and_then(|b| String::from_utf8(b).ok());
            if let Some(text) = text {
                out.insert(k.clone(), text);
            }
        }
    }
    if let Some(data) = obj["stringData"].as_object() {
        for (k, v) in data {
            if let Some(s) = v.as_str() {
                out.insert(k.clone(), s.to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn secret(expiration: Option<&str>, groups: &str) -> Value {
        let mut data = json!({
            "token-id": b64("abcdef"),
            "token-secret": b64("0123456789abcdef"),
            "usage-bootstrap-authentication": b64("true"),
            "usage-bootstrap-signing": b64("true"),
        });
        if let Some(e) = expiration {
            data["expiration"] = json!(b64(e));
        }
        if !groups.is_empty() {
            data["auth-extra-groups"] = json!(b64(groups));
        }
        json!({"type": SECRET_TYPE, "metadata": {"name": "bootstrap-token-abcdef"}, "data": data})
    }

    // 2026-01-01T00:00:00Z
    const T: i64 = 1_767_225_600;

    #[test]
    fn a_valid_token_is_a_bootstrapper() {
        let id =
            check_secret(&secret(Some("2026-01-02T00:00:00Z"), ""), "abcdef", "0123456789abcdef", T).unwrap();
        assert_eq!(id.user, "system:bootstrap:abcdef");
        assert_eq!(id.groups, vec!["system:bootstrappers", "system:authenticated"]);
        let id = check_secret(&secret(None, "system:bootstrappers:edge"), "abcdef", "0123456789abcdef", T)
            .unwrap();
        assert!(id.groups.contains(&"system:bootstrappers:edge".to_owned()));
    }

    #[test]
    fn refusals_say_why() {
        let s = secret(Some("2025-12-31T23:59:59Z"), "");
        let e = check_secret(&s, "abcdef", "0123456789abcdef", T).unwrap_err();
        assert!(e.contains("expired at 2025-12-31T23:59:59Z"), "{e}");
        let e = check_secret(&secret(None, ""), "abcdef", "0123456789abcdeX", T).unwrap_err();
        assert!(e.contains("wrong secret"), "{e}");
        let e = check_secret(&secret(None, "system:masters"), "abcdef", "0123456789abcdef", T).unwrap_err();
        assert!(e.contains("system:masters"), "{e}");
        let mut s = secret(None, "");
        s["data"]["usage-bootstrap-authentication"] = json!(b64("false"));
        assert!(check_secret(&s, "abcdef", "0123456789abcdef", T).unwrap_err().contains("authentication"));
        let mut s = secret(None, "");
        s["type"] = json!("Opaque");
        assert!(check_secret(&s, "abcdef", "0123456789abcdef", T).unwrap_err().contains("type"));
    }
}
