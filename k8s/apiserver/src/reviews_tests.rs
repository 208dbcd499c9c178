//! The reviews and authorization end to end, through `api::handle`.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, header};
use http_body_util::BodyExt;
use lichen_store::MemoryStore;
use serde_json::{Value, json};

use crate::api::{Api, handle};
use crate::authn::Identity;
use crate::services::ServiceCidr;
use crate::tokens::Tokens;

fn api() -> Arc<Api> {
    let tokens = Tokens::parse("bobtoken,bob,uid-bob,dev\n", std::path::Path::new("t.csv")).unwrap();
    let api = Arc::new(Api::new(Arc::new(MemoryStore::new()), ServiceCidr::default()).with_tokens(tokens));
    crate::rbac::install::ensure(&api).unwrap();
    api
}

pub(crate) fn admin() -> Identity {
    Identity {
        user: "admin".into(),
        uid: String::new(),
        groups: vec!["system:masters".into()],
        extra: Default::default(),
    }
}

/// (status code, body) of one request; `who` is a client certificate
/// identity, `token` a bearer token.
pub(crate) async fn call(
    api: &Arc<Api>,
    who: Option<Identity>,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = axum::http::Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = handle(State(api.clone()), who.map(Extension), req).await;
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn ssar(attrs: Value) -> Value {
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": attrs})
}

const SSAR: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

#[tokio::test]
async fn no_credentials_or_a_bad_token_is_401() {
    let api = api();
    for path in ["/api", "/api/v1/namespaces/default/pods", "/openapi/v3", "/nothing/here"] {
        let (code, body) = call(&api, None, None, Method::GET, path, None).await;
        assert_eq!((code, body["reason"].as_str()), (401, Some("Unauthorized")), "{path}");
        let (code, _) = call(&api, None, Some("wrong"), Method::GET, path, None).await;
        assert_eq!(code, 401, "{path}");
    }
}

#[tokio::test]
async fn a_token_user_may_discover_but_not_list_pods() {
    let api = api();
    let (code, _) = call(&api, None, Some("bobtoken"), Method::GET, "/api", None).await;
    assert_eq!(code, 200);
    let (code, body) =
        call(&api, None, Some("bobtoken"), Method::GET, "/api/v1/namespaces/default/pods", None).await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    // Authorization comes before routing: unknown things are 403, not 404.
    let (code, body) = call(&api, None, Some("bobtoken"), Method::GET, "/metrics", None).await;
    assert_eq!(
        (code, body["message"].as_str()),
        (403, Some("forbidden: User \"bob\" cannot get path \"/metrics\""))
    );
    let (code, _) = call(&api, Some(admin()), None, Method::GET, "/metrics", None).await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn self_subject_access_review() {
    let api = api();
    let pods =
        ssar(json!({"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}}));
    let (code, body) = call(&api, None, Some("bobtoken"), Method::POST, SSAR, Some(pods.clone())).await;
    assert_eq!(code, 201);
    assert_eq!(body["status"], json!({"allowed": false}));
    assert_eq!(body["spec"], pods["spec"], "the spec is echoed");
    let (_, body) = call(&api, Some(admin()), None, Method::POST, SSAR, Some(pods)).await;
    assert_eq!(body["status"], json!({"allowed": true}), "system:masters are allowed without a reason");
    let me = ssar(
        json!({"resourceAttributes": {"verb": "create", "group": "authorization.k8s.io", "resource": "selfsubjectaccessreviews"}}),
    );
    let (_, body) = call(&api, None, Some("bobtoken"), Method::POST, SSAR, Some(me)).await;
    assert_eq!(
        body["status"]["reason"],
        "RBAC: allowed by ClusterRoleBinding \"system:basic-user\" of ClusterRole \"system:basic-user\" to Group \"system:authenticated\""
    );
    let path = ssar(json!({"nonResourceAttributes": {"verb": "get", "path": "/healthz"}}));
    let (_, body) = call(&api, None, Some("bobtoken"), Method::POST, SSAR, Some(path)).await;
    assert_eq!(body["status"]["allowed"], true);
}

#[tokio::test]
async fn invalid_reviews_are_422() {
    let api = api();
    let (code, body) = call(&api, Some(admin()), None, Method::POST, SSAR, Some(ssar(json!({})))).await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified"
    );
    let sar = json!({"spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}});
    let (code, body) = call(
        &api,
        Some(admin()),
        None,
        Method::POST,
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        Some(sar),
    )
    .await;
    assert_eq!(code, 422);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("spec.user: Invalid value: \"\": at least one of user or group must be specified")
    );
    let (code, _) = call(&api, Some(admin()), None, Method::GET, SSAR, None).await;
    assert_eq!(code, 405);
}

#[tokio::test]
async fn subject_access_reviews_ask_about_someone_else() {
    let api = api();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}});
    let (code, _) = call(&api, Some(admin()), None, Method::POST, "/api/v1/namespaces", Some(ns)).await;
    assert_eq!(code, 201);
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "bob-views", "namespace": "dev"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "bob"}],
    });
    let (code, _) = call(
        &api,
        Some(admin()),
        None,
        Method::POST,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/dev/rolebindings",
        Some(binding),
    )
    .await;
    assert_eq!(code, 201);
    let sar = json!({"spec": {"user": "bob", "resourceAttributes": {"namespace": "dev", "verb": "get", "resource": "pods", "subresource": "log"}}});
    let (code, body) = call(
        &api,
        Some(admin()),
        None,
        Method::POST,
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        Some(sar),
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(
        body["status"]["reason"],
        "RBAC: allowed by RoleBinding \"bob-views/dev\" of ClusterRole \"view\" to User \"bob\""
    );
    // The same through a LocalSubjectAccessReview, which takes the URL's namespace.
    let lsar = json!({"spec": {"user": "bob", "resourceAttributes": {"namespace": "dev", "verb": "get", "resource": "secrets"}}});
    let url = "/apis/authorization.k8s.io/v1/namespaces/dev/localsubjectaccessreviews";
    let (code, body) = call(&api, Some(admin()), None, Method::POST, url, Some(lsar)).await;
    assert_eq!(code, 201);
    assert_eq!(
        (body["status"]["allowed"].as_bool(), body["metadata"]["namespace"].as_str()),
        (Some(false), Some("dev"))
    );
    let other = json!({"spec": {"user": "bob", "resourceAttributes": {"namespace": "prod", "verb": "get", "resource": "pods"}}});
    let (code, body) = call(&api, Some(admin()), None, Method::POST, url, Some(other)).await;
    assert_eq!(code, 422);
    assert!(body["message"].as_str().unwrap().contains(
        "spec.resourceAttributes.namespace: Invalid value: \"prod\": must match metadata.namespace"
    ));
    // And bob, now allowed, lists pods in dev.
    let (code, _) =
        call(&api, None, Some("bobtoken"), Method::GET, "/api/v1/namespaces/dev/pods", None).await;
    assert_eq!(code, 200);
    let (code, _) =
        call(&api, None, Some("bobtoken"), Method::GET, "/api/v1/namespaces/dev/secrets", None).await;
    assert_eq!(code, 403);
}

#[tokio::test]
async fn rules_review_and_whoami() {
    let api = api();
    let ssrr = json!({"spec": {"namespace": "default"}});
    let url = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews";
    let (code, body) = call(&api, None, Some("bobtoken"), Method::POST, url, Some(ssrr)).await;
    assert_eq!(code, 201);
    assert_eq!(body["status"]["incomplete"], false);
    let resources = body["status"]["resourceRules"].as_array().unwrap();
    assert!(resources.contains(&json!({"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]})));
    let urls = body["status"]["nonResourceRules"].as_array().unwrap();
    assert!(urls.iter().any(|r| r["nonResourceURLs"].as_array().unwrap().contains(&json!("/apis/*"))));
    let (code, body) = call(&api, None, Some("bobtoken"), Method::POST, url, Some(json!({"spec": {}}))).await;
    assert_eq!((code, body["message"].as_str()), (400, Some("no namespace on request")));

    let whoami = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let (code, body) = call(
        &api,
        None,
        Some("bobtoken"),
        Method::POST,
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        Some(whoami),
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(
        body["status"]["userInfo"],
        json!({"username": "bob", "uid": "uid-bob", "groups": ["dev", "system:authenticated"]})
    );
    assert_eq!(body["kind"], "SelfSubjectReview");
}
