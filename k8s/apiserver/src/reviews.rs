//! The review resources: create-only, never stored, answered with `status`
//! filled in as upstream does. `SelfSubjectAccessReview` (`kubectl auth
//! can-i`), `SubjectAccessReview`, `LocalSubjectAccessReview`,
//! `SelfSubjectRulesReview` (`kubectl auth can-i --list`) and
//! `SelfSubjectReview` (`kubectl auth whoami`).

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use lichen_apimachinery::resources::Resource;
use serde_json::{Map, Value, json};

use crate::api::Ctx;
use crate::authn::Identity;
use crate::authz;
use crate::rbac::{Request, ResourceAttributes};
use crate::request::Verb;
use crate::status::{ApiError, Cause};

const AUTHORIZATION: &str = "authorization.k8s.io";
const AUTHENTICATION: &str = "authentication.k8s.io";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    SelfSubjectAccess,
    SubjectAccess,
    LocalSubjectAccess,
    SelfSubjectRules,
    SelfSubject,
}

fn kind_of(res: &Resource) -> Option<Kind> {
    match (res.group.as_str(), res.plural.as_str()) {
        (AUTHORIZATION, "selfsubjectaccessreviews") => Some(Kind::SelfSubjectAccess),
        (AUTHORIZATION, "subjectaccessreviews") => Some(Kind::SubjectAccess),
        (AUTHORIZATION, "localsubjectaccessreviews") => Some(Kind::LocalSubjectAccess),
        (AUTHORIZATION, "selfsubjectrulesreviews") => Some(Kind::SelfSubjectRules),
        (AUTHENTICATION, "selfsubjectreviews") => Some(Kind::SelfSubject),
        _ => None,
    }
}

/// Whether `res` is one of the reviews, which [`create`] serves instead of
/// the stored-object handlers.
pub fn is_review(res: &Resource) -> bool {
    kind_of(res).is_some()
}

/// `POST` of a review (any other verb is refused).
pub async fn create(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let Some(kind) = kind_of(&ctx.res) else { return Err(ApiError::NoRoute) };
    if ctx.req.name.is_some() || ctx.req.subresource.is_some() {
        return Err(ApiError::NoRoute);
    }
    if ctx.req.verb != Verb::Create {
        return Err(ApiError::MethodNotSupported {
            verb: ctx.req.verb.as_str().into(),
            resource: ctx.res.plural.clone(),
        });
    }
    let bytes = crate::body::read(body).await?;
    let mut obj = crate::body::decode_object(&bytes, &crate::body::content_type(&ctx.headers))?;
    obj["kind"] = json!(ctx.res.kind);
    obj["apiVersion"] = json!(ctx.res.api_version());
    let answer = match kind {
        Kind::SelfSubjectAccess => {
            let request = validate_access(ctx, &obj, Who::Me)?;
            access(ctx, obj, &ctx.identity, &request).await?
        }
        Kind::SubjectAccess => {
            let request = validate_access(ctx, &obj, Who::Spec)?;
            access(ctx, obj.clone(), &spec_identity(&obj), &request).await?
        }
        Kind::LocalSubjectAccess => {
            local_namespace(ctx, &mut obj)?;
            let request = validate_access(ctx, &obj, Who::SpecInNamespace)?;
            access(ctx, obj.clone(), &spec_identity(&obj), &request).await?
        }
        Kind::SelfSubjectRules => rules(ctx, &obj).await?,
        Kind::SelfSubject => whoami(ctx),
    };
    Ok(crate::body::json(StatusCode::CREATED, &answer, &ctx.headers))
}

/// Whose access a review asks about, which decides its validation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    Me,
    Spec,
    SpecInNamespace,
}

fn str_at<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

fn present(v: &Value, field: &str) -> Option<Value> {
    v.get(field).filter(|x| !x.is_null()).cloned()
}

/// Go's zero value: what `Semantic.DeepEqual(ObjectMeta{}, meta)` ignores.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
    }
}

/// The access request of a (self/local) subject access review, after
/// upstream's validation.
fn validate_access(ctx: &Ctx, obj: &Value, who: Who) -> Result<Request, ApiError> {
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let resource = present(&spec, "resourceAttributes");
    let non_resource = present(&spec, "nonResourceAttributes");
    let mut causes = Vec::new();
    let union = "exactly one of nonResourceAttributes or resourceAttributes must be specified";
    match (&resource, &non_resource) {
        (Some(_), Some(n)) => causes.push(Cause::invalid("spec", n, union)),
        (None, None) => causes.push(Cause::invalid("spec", &json!("null"), union)),
        _ => {}
    }
    if who != Who::Me && str_at(&spec, "user").is_empty() && spec.get("groups").is_none_or(is_zero) {
        causes.push(Cause::invalid(
            "spec.user",
            &json!(""),
            "at least one of user or group must be specified",
        ));
    }
    let mut meta: Map<String, Value> =
        obj.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default();
    meta.remove("managedFields");
    if who == Who::SpecInNamespace {
        let namespace = meta.remove("namespace");
        let ns = namespace.as_ref().and_then(Value::as_str).unwrap_or("");
        if !meta.values().all(is_zero) {
            causes.push(Cause::invalid("metadata", &obj["metadata"], "must be empty except for namespace"));
        }
        if let Some(r) = &resource
            && str_at(r, "namespace") != ns
        {
            causes.push(Cause::invalid(
                "spec.resourceAttributes.namespace",
                &json!(str_at(r, "namespace")),
                "must match metadata.namespace",
            ));
        }
        if let Some(n) = &non_resource {
            causes.push(Cause::invalid(
                "spec.nonResourceAttributes",
                n,
                "disallowed on this kind of request",
            ));
        }
    } else if !meta.values().all(is_zero) {
        causes.push(Cause::invalid("metadata", &obj["metadata"], "must be empty"));
    }
    if !causes.is_empty() {
        return Err(ApiError::Invalid {
            group: ctx.res.group.clone(),
            kind: ctx.res.kind.clone(),
            name: String::new(),
            causes,
        });
    }
    Ok(match (resource, non_resource) {
        (Some(r), _) => Request::Resource(ResourceAttributes {
            verb: str_at(&r, "verb").into(),
            namespace: str_at(&r, "namespace").into(),
            group: str_at(&r, "group").into(),
            version: str_at(&r, "version").into(),
            resource: str_at(&r, "resource").into(),
            subresource: str_at(&r, "subresource").into(),
            name: str_at(&r, "name").into(),
        }),
        (None, Some(n)) => {
            Request::NonResource { verb: str_at(&n, "verb").into(), path: str_at(&n, "path").into() }
        }
        (None, None) => return Err(ApiError::BadRequest("no attributes to review".into())),
    })
}

/// The user a `SubjectAccessReview` asks about, exactly as given (no
/// `system:authenticated` added, as upstream).
fn spec_identity(obj: &Value) -> Identity {
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let groups = spec
        .get("groups")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default();
    Identity {
        user: str_at(&spec, "user").into(),
        uid: str_at(&spec, "uid").into(),
        groups,
        extra: spec_extra(&spec),
    }
}

/// `spec.extra` of a subject access review: lists of strings by key.
fn spec_extra(spec: &Value) -> std::collections::BTreeMap<String, Vec<String>> {
    let Some(extra) = spec.get("extra").and_then(Value::as_object) else { return Default::default() };
    extra
        .iter()
        .map(|(k, v)| {
            let values = v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect());
            (k.clone(), values.unwrap_or_default())
        })
        .collect()
}

/// A `LocalSubjectAccessReview` is in the request's namespace: an object
/// without one gets it, one with another is refused (as upstream's create
/// handler does for every namespaced kind).
fn local_namespace(ctx: &Ctx, obj: &mut Value) -> Result<(), ApiError> {
    let ns = ctx.req.namespace.clone();
    if ns.is_empty() {
        return Err(ApiError::BadRequest("namespace is required on this type: ".into()));
    }
    let meta = crate::objects::meta_mut(obj);
    match meta.get("namespace").and_then(Value::as_str) {
        None | Some("") => {
            meta.insert("namespace".into(), json!(ns));
            Ok(())
        }
        Some(given) if given == ns => Ok(()),
        Some(_) => Err(ApiError::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request".into(),
        )),
    }
}

/// The review with `status` as upstream's authorizer chain answers it.
async fn access(ctx: &Ctx, mut obj: Value, who: &Identity, request: &Request) -> Result<Value, ApiError> {
    let decision = authz::decide(&ctx.api, who, request).await?;
    let mut status = json!({"allowed": decision.allowed});
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    obj["status"] = status;
    if obj.get("metadata").is_none_or(Value::is_null) {
        obj["metadata"] = json!({});
    }
    Ok(obj)
}

/// `SelfSubjectRulesReview`: every rule that applies to the caller in
/// `spec.namespace`.
async fn rules(ctx: &Ctx, obj: &Value) -> Result<Value, ApiError> {
    let namespace = obj.get("spec").map(|s| str_at(s, "namespace")).unwrap_or("");
    if namespace.is_empty() {
        return Err(ApiError::BadRequest("no namespace on request".into()));
    }
    let (rules, error) = authz::rules_for(&ctx.api, &ctx.identity, namespace).await?;
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for r in &rules {
        if !r.resources.is_empty() {
            let mut o = json!({"verbs": r.verbs});
            for (k, v) in [
                ("apiGroups", &r.api_groups),
                ("resources", &r.resources),
                ("resourceNames", &r.resource_names),
            ] {
                if !v.is_empty() {
                    o[k] = json!(v);
                }
            }
            resource_rules.push(o);
        }
        if !r.non_resource_urls.is_empty() {
            non_resource_rules.push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": false,
    });
    if let Some(e) = error {
        status["evaluationError"] = json!(e);
    }
    Ok(json!({
        "kind": ctx.res.kind,
        "apiVersion": ctx.res.api_version(),
        "metadata": {},
        "spec": {},
        "status": status,
    }))
}

/// `SelfSubjectReview`: who the server thinks the caller is.
fn whoami(ctx: &Ctx) -> Value {
    let id = &ctx.identity;
    let mut user = json!({"username": id.user});
    if !id.uid.is_empty() {
        user["uid"] = json!(id.uid);
    }
    if !id.groups.is_empty() {
        user["groups"] = json!(id.groups);
    }
    if !id.extra.is_empty() {
        user["extra"] = json!(id.extra);
    }
    json!({
        "kind": ctx.res.kind,
        "apiVersion": ctx.res.api_version(),
        "metadata": {"creationTimestamp": crate::objects::now_rfc3339()},
        "status": {"userInfo": user},
    })
}

#[cfg(test)]
#[path = "reviews_tests.rs"]
pub(crate) mod tests;
