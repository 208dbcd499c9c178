//! `POST serviceaccounts/<name>/token`: a TokenRequest answered with a
//! signed token, as upstream's `TokenREST.Create`. The service account must
//! exist; a bound object (Pod, Secret or Node) must exist, match a given
//! uid, and (a Pod) run as that service account. Nothing is stored.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::jwt::{Claims, Private, Ref};
use super::{Issuer, get_core, uid_of};
use crate::api::Ctx;
use crate::request::Verb;
use crate::status::{ApiError, Cause};
use crate::{body, objects};

const GROUP: &str = "authentication.k8s.io";
const KIND: &str = "TokenRequest";

/// Upstream's default `expirationSeconds` (`SetDefaults_TokenRequestSpec`).
const DEFAULT_EXPIRATION: i64 = 3600;
/// The shortest lifetime upstream issues (`MinTokenAgeSec`).
const MIN_EXPIRATION: i64 = 600;
/// The longest lifetime upstream accepts.
const MAX_EXPIRATION: i64 = 1 << 32;
/// The lifetime the kubelet asks for projected tokens; such pod-bound
/// tokens for the API server are extended to a year and carry `warnafter`
/// (upstream's `--service-account-extend-token-expiration`, on by default).
const WARN_ONLY_EXPIRATION: i64 = 3607;
const EXTENDED_EXPIRATION: i64 = 365 * 24 * 3600;

pub fn is_token_request(ctx: &Ctx) -> bool {
    ctx.is("", "serviceaccounts") && ctx.req.subresource.as_deref() == Some("token")
}

fn invalid(name: &str, cause: Cause) -> ApiError {
    ApiError::Invalid { group: GROUP.into(), kind: KIND.into(), name: name.into(), causes: vec![cause] }
}

fn not_found(plural: &str, name: &str) -> ApiError {
    ApiError::NotFound {
        resource: plural.into(),
        group: String::new(),
        plural: plural.into(),
        name: name.into(),
    }
}

/// The object a token is bound to, as the claims name it.
struct Bound {
    pod: Option<Ref>,
    secret: Option<Ref>,
    node: Option<Ref>,
}

pub async fn create(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    // Without a key the subresource is not installed upstream.
    let Some(issuer) = ctx.api.service_account_issuer() else { return Err(ApiError::NoRoute) };
    if ctx.req.verb != Verb::Create {
        return Err(ApiError::MethodNotSupported {
            verb: ctx.req.verb.as_str().into(),
            resource: "serviceaccounts/token".into(),
        });
    }
    let name = ctx.req.name.clone().unwrap_or_default();
    let namespace = ctx.req.namespace.clone();
    let bytes = body::read(body).await?;
    let mut tr = body::decode_object(&bytes, &body::content_type(&ctx.headers))?;
    for (field, want, what) in [("name", &name, "name"), ("namespace", &namespace, "namespace")] {
        let given = objects::meta_str(&tr, field).unwrap_or("");
        if !given.is_empty() && given != want {
            return Err(invalid(
                &name,
                Cause::invalid(
                    format!("metadata.{field}"),
                    &json!(given),
                    &format!("must match the service account {what} if specified"),
                ),
            ));
        }
    }
    let sa = get_core(&ctx.api, "serviceaccounts", &namespace, &name)
        .await?
        .ok_or_else(|| not_found("serviceaccounts", &name))?;
    let sa_uid = uid_of(&sa).to_string();
    let given_uid = objects::meta_str(&tr, "uid").unwrap_or("").to_string();
    if !given_uid.is_empty() && given_uid != sa_uid {
        return Err(ApiError::Conflict {
            resource: crate::status::qualified(GROUP, KIND),
            group: GROUP.into(),
            plural: KIND.into(),
            name,
            detail: format!(
                "the UID in the token request ({given_uid}) does not match the UID of the service account ({sa_uid})"
            ),
        });
    }
    let spec = spec(&mut tr, issuer)?;
    let now = objects::now_unix();
    let bound = match tr["spec"].get("boundObjectRef").filter(|r| !r.is_null()) {
        Some(r) => Some(bound_object(ctx, r, &name, &namespace).await?),
        None => None,
    };
    let mut exp = spec.expiration;
    let mut warnafter = None;
    let pod_bound = bound.as_ref().is_some_and(|b| b.pod.is_some());
    if pod_bound && exp == WARN_ONLY_EXPIRATION && spec.audiences.iter().all(|a| issuer.audiences.contains(a))
    {
        warnafter = Some(now + exp);
        exp = EXTENDED_EXPIRATION;
    }
    let bound = bound.unwrap_or(Bound { pod: None, secret: None, node: None });
    let claims = Claims {
        aud: spec.audiences.clone(),
        exp: now + exp,
        iat: now,
        iss: issuer.issuer.clone(),
        jti: objects::new_uid(),
        kubernetes: Private {
            namespace: namespace.clone(),
            node: bound.node,
            pod: bound.pod,
            secret: bound.secret,
            serviceaccount: Ref { name: name.clone(), uid: sa_uid.clone() },
            warnafter,
        },
        nbf: now,
        sub: crate::rbac::policy::service_account_user(&namespace, &name),
    };
    let token = issuer.keys.sign(&claims).map_err(ApiError::internal)?;
    tr["kind"] = json!(KIND);
    tr["apiVersion"] = json!(format!("{GROUP}/v1"));
    let meta = objects::meta_mut(&mut tr);
    meta.insert("name".into(), json!(name));
    meta.insert("namespace".into(), json!(namespace));
    meta.insert("uid".into(), json!(sa_uid));
    meta.insert("creationTimestamp".into(), json!(lichen_apimachinery::timestamp::format_rfc3339(now)));
    tr["status"] = json!({
        "token": token,
        "expirationTimestamp": lichen_apimachinery::timestamp::format_rfc3339(now + spec.expiration),
    });
    Ok(body::json(StatusCode::CREATED, &tr, &ctx.headers))
}

struct Spec {
    audiences: Vec<String>,
    expiration: i64,
}

/// Defaults `spec` as upstream (the server's audiences, an hour) and
/// validates the lifetime.
fn spec(tr: &mut Value, issuer: &Issuer) -> Result<Spec, ApiError> {
    if !tr["spec"].is_object() {
        tr["spec"] = json!({});
    }
    let spec = &mut tr["spec"];
    let audiences: Vec<String> = match &spec["audiences"] {
        Value::Null => Vec::new(),
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap_or("").to_string()).collect(),
        other => return Err(ApiError::BadRequest(format!("spec.audiences: expected a list, got {other}"))),
    };
    let audiences = if audiences.is_empty() { issuer.audiences.clone() } else { audiences };
    spec["audiences"] = json!(audiences);
    let expiration = match &spec["expirationSeconds"] {
        Value::Null => DEFAULT_EXPIRATION,
        v => v.as_i64().ok_or_else(|| {
            ApiError::BadRequest(format!("spec.expirationSeconds: expected an integer, got {v}"))
        })?,
    };
    spec["expirationSeconds"] = json!(expiration);
    let field = "spec.expirationSeconds";
    if expiration < MIN_EXPIRATION {
        return Err(invalid(
            "",
            Cause::invalid(field, &json!(expiration), "may not specify a duration less than 10 minutes"),
        ));
    }
    if expiration > MAX_EXPIRATION {
        return Err(invalid(
            "",
            Cause::invalid(field, &json!(expiration), "may not specify a duration larger than 2^32 seconds"),
        ));
    }
    Ok(Spec { audiences, expiration })
}

/// Looks up the object of `spec.boundObjectRef` and checks it as upstream.
async fn bound_object(ctx: &Ctx, r: &Value, sa: &str, namespace: &str) -> Result<Bound, ApiError> {
    let field = |f: &str| r.get(f).and_then(Value::as_str).unwrap_or("").to_string();
    let (kind, api_version, name, uid) = (field("kind"), field("apiVersion"), field("name"), field("uid"));
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.clone()),
    };
    let mut bound = Bound { pod: None, secret: None, node: None };
    let found = match (group.as_str(), kind.as_str()) {
        ("", "Pod") => {
            let pod = get_core(&ctx.api, "pods", namespace, &name)
                .await?
                .ok_or_else(|| not_found("pods", &name))?;
            if pod["spec"]["serviceAccountName"].as_str().unwrap_or("") != sa {
                return Err(ApiError::BadRequest(format!(
                    "cannot bind token for serviceaccount {sa:?} to pod running with different serviceaccount name."
                )));
            }
            // The node the pod runs on, with its uid when the Node exists
            // (upstream's ServiceAccountTokenPodNodeInfo).
            if let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                let uid = get_core(&ctx.api, "nodes", "", node).await?.map(|n| uid_of(&n).to_string());
                bound.node = Some(Ref { name: node.into(), uid: uid.unwrap_or_default() });
            }
            bound.pod = Some(Ref { name: name.clone(), uid: uid_of(&pod).into() });
            pod
        }
        ("", "Secret") => {
            let secret = get_core(&ctx.api, "secrets", namespace, &name)
                .await?
                .ok_or_else(|| not_found("secrets", &name))?;
            bound.secret = Some(Ref { name: name.clone(), uid: uid_of(&secret).into() });
            secret
        }
        ("", "Node") => {
            let node =
                get_core(&ctx.api, "nodes", "", &name).await?.ok_or_else(|| not_found("nodes", &name))?;
            bound.node = Some(Ref { name: name.clone(), uid: uid_of(&node).into() });
            node
        }
        _ => {
            return Err(ApiError::BadRequest(format!(
                "cannot bind token to object of type {group}/{version}, Kind={kind}"
            )));
        }
    };
    if !uid.is_empty() && uid != uid_of(&found) {
        return Err(ApiError::Conflict {
            resource: kind.clone(),
            group,
            plural: kind,
            name,
            detail: format!(
                "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        });
    }
    Ok(bound)
}
