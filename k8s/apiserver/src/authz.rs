//! May this identity do this? As kube-apiserver's authorizer chain:
//! members of `system:masters` may do anything, everyone else is
//! evaluated by RBAC ([`crate::rbac`]). A refusal is upstream's 403, word
//! for word (`pods is forbidden: User "bob" cannot list resource "pods" in
//! API group "" in the namespace "default"`).

use std::sync::Arc;

use axum::http::Method;
use lichen_apimachinery::selector::FieldSelector;

use crate::api::{Api, Ctx, Params};
use crate::authn::Identity;
use crate::rbac::{Decision, PolicyRule, Request, ResourceAttributes};
use crate::request::{ResourceRequest, Verb};
use crate::status::{ApiError, qualified};

/// Authorizes a resource request that has been routed to its handler.
pub async fn authorize(ctx: &Ctx) -> Result<(), ApiError> {
    let request = Request::Resource(resource_attributes(&ctx.req, &ctx.params));
    authorize_request(&ctx.api, &ctx.identity, &request).await
}

/// Authorizes `request`; a 403 with upstream's message when not allowed.
pub async fn authorize_request(
    api: &Arc<Api>,
    identity: &Identity,
    request: &Request,
) -> Result<(), ApiError> {
    let decision = decide(api, identity, request).await?;
    if decision.allowed { Ok(()) } else { Err(forbidden_message(identity, request, &decision.reason)) }
}

/// The decision and its reason, as the access reviews report them.
pub async fn decide(api: &Arc<Api>, identity: &Identity, request: &Request) -> Result<Decision, ApiError> {
    // Upstream's privileged-group authorizer runs first and gives no reason.
    if identity.is_master() {
        return Ok(Decision { allowed: true, reason: String::new() });
    }
    let api = api.clone();
    let (identity, request) = (identity.clone(), request.clone());
    tokio::task::spawn_blocking(move || {
        let policy =
            api.rbac.policy(&api).map_err(|e| ApiError::Internal(format!("reading RBAC policy: {e}")))?;
        Ok(policy.authorize(&identity, &request))
    })
    .await
    .map_err(ApiError::internal)?
}

/// Every rule that applies to `identity` in `namespace` and the errors met
/// resolving them (`SelfSubjectRulesReview`).
pub async fn rules_for(
    api: &Arc<Api>,
    identity: &Identity,
    namespace: &str,
) -> Result<(Vec<PolicyRule>, Option<String>), ApiError> {
    let api = api.clone();
    let (identity, namespace) = (identity.clone(), namespace.to_string());
    tokio::task::spawn_blocking(move || {
        let policy =
            api.rbac.policy(&api).map_err(|e| ApiError::Internal(format!("reading RBAC policy: {e}")))?;
        Ok(policy.rules_for(&identity, &namespace))
    })
    .await
    .map_err(ApiError::internal)?
}

/// Upstream's `RequestInfo` attributes of a resource request: a namespace
/// object is in its own namespace, and a list or watch pinned to one name
/// by `fieldSelector=metadata.name=x` is about that name.
pub fn resource_attributes(req: &ResourceRequest, params: &Params) -> ResourceAttributes {
    let mut name = req.name.clone().unwrap_or_default();
    if name.is_empty()
        && matches!(req.verb, Verb::List | Verb::Watch)
        && let Some(sel) = params.get("fieldSelector").and_then(|s| FieldSelector::parse(s).ok())
        && let Some(n) = sel.requires_exact_match("metadata.name")
        && !n.is_empty()
        && n != "."
        && n != ".."
        && !n.contains(['/', '%'])
    {
        name = n.to_string();
    }
    let namespace = if req.plural == "namespaces" && req.namespace.is_empty() && req.name.is_some() {
        name.clone()
    } else {
        req.namespace.clone()
    };
    // Streaming into a pod (WebSocket GETs included) needs `create`, as
    // upstream since 1.31 (AuthorizePodWebsocketUpgradeCreatePermission):
    // `get pods/exec` alone must not open a shell.
    let streaming = req.group.is_empty()
        && req.plural == "pods"
        && matches!(req.subresource.as_deref(), Some("exec" | "attach" | "portforward"));
    let verb = if streaming { "create" } else { req.verb.as_str() };
    ResourceAttributes {
        verb: verb.into(),
        namespace,
        group: req.group.clone(),
        version: req.version.clone(),
        resource: req.plural.clone(),
        subresource: req.subresource.clone().unwrap_or_default(),
        name,
    }
}

/// A request outside the resource paths: discovery, `/openapi`, unknown
/// paths.
pub fn non_resource(method: &Method, path: &str) -> Request {
    Request::NonResource { verb: method.as_str().to_ascii_lowercase(), path: path.to_string() }
}

/// `configmaps "x" is forbidden: User "bob" cannot get resource "configmaps"
/// in API group "" in the namespace "default"`.
pub fn forbidden(ctx: &Ctx) -> ApiError {
    let request = Request::Resource(resource_attributes(&ctx.req, &ctx.params));
    forbidden_message(&ctx.identity, &request, "")
}

/// Upstream's `responsewriters.Forbidden`: the message (HTML-sanitized),
/// then the authorizer's reason if it gave one.
pub fn forbidden_message(identity: &Identity, request: &Request, reason: &str) -> ApiError {
    let user = &identity.user;
    let (prefix, msg) = match request {
        Request::NonResource { verb, path } => {
            ("forbidden".to_string(), format!("User {user:?} cannot {verb} path {path:?}"))
        }
        Request::Resource(r) => {
            let what = qualified(&r.group, &r.resource);
            let prefix = if r.name.is_empty() {
                format!("{what} is forbidden")
            } else {
                format!("{what} {:?} is forbidden", r.name)
            };
            let resource = if r.subresource.is_empty() {
                r.resource.clone()
            } else {
                format!("{}/{}", r.resource, r.subresource)
            };
            let scope = if r.namespace.is_empty() {
                "at the cluster scope".to_string()
            } else {
                format!("in the namespace {:?}", r.namespace)
            };
            (
                prefix,
                format!(
                    "User {user:?} cannot {} resource {resource:?} in API group {:?} {scope}",
                    r.verb, r.group
                ),
            )
        }
    };
    let msg = msg.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let msg = if reason.is_empty() { msg } else { format!("{msg}: {reason}") };
    ApiError::Forbidden(format!("{prefix}: {msg}"))
}

/// Upstream's escalation check on RBAC writes: a Role or ClusterRole may
/// only grant what the writer holds (unless they may `escalate` it), a
/// binding may only bind a role whose permissions the writer holds (unless
/// they may `bind` it). `system:masters` skip it, as upstream.
pub async fn check_escalation(ctx: &Ctx, obj: &serde_json::Value) -> Result<(), ApiError> {
    use crate::rbac::escalation;
    const GROUP: &str = "rbac.authorization.k8s.io";
    if ctx.res.group != GROUP || ctx.identity.is_master() || ctx.req.subresource.is_some() {
        return Ok(());
    }
    let name = crate::objects::meta_str(obj, "name").unwrap_or("").to_string();
    let ns = ctx.req.namespace.clone();
    let (held, _) = rules_for(&ctx.api, &ctx.identity, &ns).await?;
    let missing = match ctx.res.plural.as_str() {
        "roles" | "clusterroles" => {
            let escalate = escalation::special_verb("escalate", GROUP, &ctx.res.plural, &ns, &name);
            if escalation::allowed(&held, &escalate) {
                return Ok(());
            }
            escalation::uncovered(&held, &PolicyRule::list(obj))
        }
        "rolebindings" | "clusterrolebindings" => {
            let Some(binding) = crate::rbac::policy::Binding::from_object(obj) else { return Ok(()) };
            let kind = if binding.role_ref.kind == "Role" { "roles" } else { "clusterroles" };
            let role_ns = if kind == "roles" { ns.as_str() } else { "" };
            let bind = escalation::special_verb("bind", GROUP, kind, role_ns, &binding.role_ref.name);
            if escalation::allowed(&held, &bind) {
                return Ok(());
            }
            let api = ctx.api.clone();
            let role_rules = tokio::task::spawn_blocking(move || {
                let policy = api
                    .rbac
                    .policy(&api)
                    .map_err(|e| ApiError::Internal(format!("reading RBAC policy: {e}")))?;
                policy
                    .role_ref_rules(&binding.role_ref, &ns)
                    .map(<[PolicyRule]>::to_vec)
                    .map_err(ApiError::Forbidden)
            })
            .await
            .map_err(ApiError::internal)??;
            escalation::uncovered(&held, &role_rules)
        }
        _ => Vec::new(),
    };
    if missing.is_empty() {
        return Ok(());
    }
    let groups: Vec<String> = ctx.identity.groups.iter().map(|g| format!("{g:?}")).collect();
    Err(ApiError::Forbidden(format!(
        "{} {name:?} is forbidden: user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        ctx.qualified(),
        ctx.identity.user,
        groups.join(" "),
        escalation::describe(&missing)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bob() -> Identity {
        Identity {
            user: "bob".into(),
            uid: String::new(),
            groups: vec!["system:authenticated".into()],
            extra: Default::default(),
        }
    }

    fn rr(
        verb: Verb,
        ns: &str,
        group: &str,
        plural: &str,
        name: Option<&str>,
        sub: Option<&str>,
    ) -> ResourceRequest {
        ResourceRequest {
            group: group.into(),
            version: "v1".into(),
            namespace: ns.into(),
            plural: plural.into(),
            name: name.map(String::from),
            subresource: sub.map(String::from),
            verb,
        }
    }

    fn message(req: &ResourceRequest, query: &str, reason: &str) -> String {
        let params = Params::parse(Some(query)).unwrap();
        forbidden_message(&bob(), &Request::Resource(resource_attributes(req, &params)), reason).to_string()
    }

    #[test]
    fn messages_are_upstreams() {
        assert_eq!(
            message(&rr(Verb::List, "default", "", "pods", None, None), "", ""),
            "pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        assert_eq!(
            message(&rr(Verb::Update, "web", "apps", "deployments", Some("d"), Some("scale")), "", ""),
            "deployments.apps \"d\" is forbidden: User \"bob\" cannot update resource \"deployments/scale\" in API group \"apps\" in the namespace \"web\""
        );
        assert_eq!(
            message(
                &rr(Verb::List, "", "", "nodes", None, None),
                "",
                "RBAC: clusterrole.rbac.authorization.k8s.io \"x\" not found"
            ),
            "nodes is forbidden: User \"bob\" cannot list resource \"nodes\" in API group \"\" at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io \"x\" not found"
        );
        let path = forbidden_message(&bob(), &non_resource(&Method::GET, "/metrics"), "");
        assert_eq!(path.to_string(), "forbidden: User \"bob\" cannot get path \"/metrics\"");
        let html = forbidden_message(&bob(), &non_resource(&Method::GET, "/<b>"), "");
        assert_eq!(html.to_string(), "forbidden: User \"bob\" cannot get path \"/&lt;b&gt;\"");
    }

    #[test]
    fn namespaces_are_in_themselves() {
        let a =
            resource_attributes(&rr(Verb::Get, "", "", "namespaces", Some("dev"), None), &Params::default());
        assert_eq!((a.namespace.as_str(), a.name.as_str()), ("dev", "dev"));
        let a = resource_attributes(&rr(Verb::List, "", "", "namespaces", None, None), &Params::default());
        assert_eq!(a.namespace, "");
    }

    #[test]
    fn a_name_field_selector_names_the_object() {
        let req = rr(Verb::Watch, "default", "", "pods", None, None);
        assert_eq!(
            message(&req, "watch=true&fieldSelector=metadata.name%3Dweb", ""),
            "pods \"web\" is forbidden: User \"bob\" cannot watch resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        let params = Params::parse(Some("fieldSelector=metadata.name!%3Dweb")).unwrap();
        assert_eq!(resource_attributes(&rr(Verb::List, "d", "", "pods", None, None), &params).name, "");
        let params = Params::parse(Some("fieldSelector=metadata.name%3Dweb")).unwrap();
        let create = resource_attributes(&rr(Verb::Create, "d", "", "pods", None, None), &params);
        assert_eq!(create.name, "", "only lists and watches");
    }

    #[test]
    fn non_resource_verbs_are_lowercase_methods() {
        assert_eq!(
            non_resource(&Method::HEAD, "/api"),
            Request::NonResource { verb: "head".into(), path: "/api".into() }
        );
    }
}
