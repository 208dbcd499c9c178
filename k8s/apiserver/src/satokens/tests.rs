//! TokenRequest and service-account token authentication end to end,
//! through `api::handle` on a memory store.

use std::sync::Arc;

use axum::http::Method;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use lichen_store::MemoryStore;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

use super::{ISSUER, Issuer};
use crate::api::Api;
use crate::reviews::tests::{admin, call};
use crate::services::ServiceCidr;
use crate::tokens::Tokens;

fn issuer() -> Issuer {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
    let b64 = STANDARD.encode(pkcs8.as_ref());
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"));
    Issuer::from_pem(&pem, "").unwrap()
}

fn bare_api() -> Api {
    let tokens = Tokens::parse("bobtoken,bob,uid-bob\n", std::path::Path::new("t.csv")).unwrap();
    Api::new(Arc::new(MemoryStore::new()), ServiceCidr::default()).with_tokens(tokens)
}

fn setup(api: Api) -> Arc<Api> {
    let api = Arc::new(api);
    crate::bootstrap::ensure(&api, 6443, None).unwrap();
    crate::rbac::install::ensure(&api).unwrap();
    api
}

fn api() -> Arc<Api> {
    setup(bare_api().with_service_account_issuer(issuer()))
}

/// Creates an object as the admin; its uid.
async fn create(api: &Arc<Api>, path: &str, obj: Value) -> String {
    let (code, body) = call(api, Some(admin()), None, Method::POST, path, Some(obj)).await;
    assert_eq!(code, 201, "{body}");
    body["metadata"]["uid"].as_str().unwrap().to_string()
}

async fn delete(api: &Arc<Api>, path: &str) {
    let (code, body) = call(api, Some(admin()), None, Method::DELETE, path, None).await;
    assert!(code == 200 || code == 202, "{code} {body}");
}

async fn service_account(api: &Arc<Api>, name: &str) -> String {
    create(api, "/api/v1/namespaces/default/serviceaccounts", json!({"metadata": {"name": name}})).await
}

const TOKEN: &str = "/api/v1/namespaces/default/serviceaccounts/sa1/token";

fn token_request(spec: Value) -> Value {
    json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
}

/// Requests a token as the admin: (status code, answer).
async fn request(api: &Arc<Api>, spec: Value) -> (u16, Value) {
    call(api, Some(admin()), None, Method::POST, TOKEN, Some(token_request(spec))).await
}

async fn token(api: &Arc<Api>, spec: Value) -> String {
    let (code, body) = request(api, spec).await;
    assert_eq!(code, 201, "{body}");
    body["status"]["token"].as_str().unwrap().to_string()
}

fn payload(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

/// The user a token authenticates as (`auth whoami`), or the status code.
async fn whoami(api: &Arc<Api>, token: &str) -> Result<Value, u16> {
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let path = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
    match call(api, None, Some(token), Method::POST, path, Some(review)).await {
        (201, body) => Ok(body["status"]["userInfo"].clone()),
        (code, _) => Err(code),
    }
}

#[tokio::test]
async fn a_token_request_issues_a_token_that_authenticates_as_the_service_account() {
    let api = api();
    let uid = service_account(&api, "sa1").await;
    let before = crate::objects::now_unix();
    let (code, body) = request(&api, json!({})).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["kind"], "TokenRequest");
    assert_eq!(body["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(body["metadata"]["name"], "sa1");
    assert_eq!(body["metadata"]["uid"], json!(uid));
    assert_eq!(body["spec"]["audiences"], json!([ISSUER]));
    assert_eq!(body["spec"]["expirationSeconds"], 3600);
    let expires = body["status"]["expirationTimestamp"].as_str().unwrap();
    let expires = lichen_apimachinery::timestamp::parse_rfc3339(expires).unwrap();
    assert!((before + 3600..=before + 3602).contains(&expires), "{expires} vs {before}");

    let issued = body["status"]["token"].as_str().unwrap();
    let claims = payload(issued);
    assert_eq!(claims["sub"], "system:serviceaccount:default:sa1");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["exp"], json!(expires));
    assert_eq!(
        claims["kubernetes.io"],
        json!({"namespace": "default", "serviceaccount": {"name": "sa1", "uid": uid}})
    );
    assert_eq!(claims["jti"].as_str().unwrap().len(), 36);

    let user = whoami(&api, issued).await.unwrap();
    assert_eq!(user["username"], "system:serviceaccount:default:sa1");
    assert_eq!(user["uid"], json!(uid));
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(user["extra"], json!({"authentication.kubernetes.io/credential-id": [format!("JTI={jti}")]}));
    assert_eq!(
        user["groups"],
        json!(["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"])
    );
    // RBAC applies: nothing granted yet.
    let (code, body) =
        call(&api, None, Some(issued), Method::GET, "/api/v1/namespaces/default/pods", None).await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "pods is forbidden: User \"system:serviceaccount:default:sa1\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    // Another audience is not for the API server.
    let vault = token(&api, json!({"audiences": ["vault"]})).await;
    assert_eq!(payload(&vault)["aud"], json!(["vault"]));
    assert_eq!(whoami(&api, &vault).await, Err(401));
    // Static tokens still work next to them.
    assert_eq!(whoami(&api, "bobtoken").await.unwrap()["username"], "bob");
}

#[tokio::test]
async fn token_requests_are_validated_as_upstream() {
    let api = api();
    let (code, body) = request(&api, json!({})).await;
    assert_eq!((code, body["message"].as_str()), (404, Some("serviceaccounts \"sa1\" not found")));
    let uid = service_account(&api, "sa1").await;
    let (code, body) = request(&api, json!({"expirationSeconds": 60})).await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
    );
    assert_eq!(body["details"]["kind"], "TokenRequest");
    assert_eq!(body["details"]["group"], "authentication.k8s.io");
    let (code, body) = request(&api, json!({"expirationSeconds": (1_i64 << 32) + 1})).await;
    assert_eq!(code, 422);
    assert!(
        body["message"].as_str().unwrap().ends_with("may not specify a duration larger than 2^32 seconds")
    );
    // Long lifetimes are not capped (no --service-account-max-token-expiration).
    let (code, body) = request(&api, json!({"expirationSeconds": 48 * 3600 + 1})).await;
    assert_eq!(code, 201, "{body}");
    let claims = payload(body["status"]["token"].as_str().unwrap());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 48 * 3600 + 1);

    let mut other = token_request(json!({}));
    other["metadata"] = json!({"name": "sa2"});
    let (code, body) = call(&api, Some(admin()), None, Method::POST, TOKEN, Some(other)).await;
    assert_eq!(code, 422);
    assert!(body["message"].as_str().unwrap().contains("must match the service account name if specified"));
    let mut stale = token_request(json!({}));
    stale["metadata"] = json!({"uid": "not-the-uid"});
    let (code, body) = call(&api, Some(admin()), None, Method::POST, TOKEN, Some(stale)).await;
    assert_eq!(code, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&format!("does not match the UID of the service account ({uid})"))
    );
    // Only POST.
    let (code, _) = call(&api, Some(admin()), None, Method::GET, TOKEN, None).await;
    assert_eq!(code, 405);
}

#[tokio::test]
async fn creating_tokens_needs_create_on_serviceaccounts_token() {
    let api = api();
    service_account(&api, "sa1").await;
    let body = token_request(json!({}));
    let (code, answer) = call(&api, None, Some("bobtoken"), Method::POST, TOKEN, Some(body.clone())).await;
    assert_eq!(code, 403);
    assert_eq!(
        answer["message"],
        "serviceaccounts \"sa1\" is forbidden: User \"bob\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"default\""
    );
    let role = json!({"metadata": {"name": "tokens"}, "rules": [
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}
    ]});
    create(&api, "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles", role).await;
    let binding = json!({"metadata": {"name": "bob-tokens"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tokens"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"}]});
    create(&api, "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", binding).await;
    let (code, answer) = call(&api, None, Some("bobtoken"), Method::POST, TOKEN, Some(body)).await;
    assert_eq!(code, 201, "{answer}");
}

fn pod(name: &str, sa: &str, node: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {
        "serviceAccountName": sa, "nodeName": node, "containers": [{"name": "c", "image": "busybox"}]
    }})
}

const PODS: &str = "/api/v1/namespaces/default/pods";

#[tokio::test]
async fn bound_objects_must_exist_and_match() {
    let api = api();
    service_account(&api, "sa1").await;
    let bind =
        |kind: &str, name: &str| json!({"boundObjectRef": {"kind": kind, "apiVersion": "v1", "name": name}});
    let (code, body) = request(&api, bind("Pod", "p")).await;
    assert_eq!((code, body["message"].as_str()), (404, Some("pods \"p\" not found")));
    create(&api, PODS, pod("other", "default", "")).await;
    let (code, body) = request(&api, bind("Pod", "other")).await;
    assert_eq!(code, 400);
    assert_eq!(
        body["message"],
        "cannot bind token for serviceaccount \"sa1\" to pod running with different serviceaccount name."
    );
    let (code, body) = request(&api, bind("ConfigMap", "x")).await;
    assert_eq!(
        (code, body["message"].as_str()),
        (400, Some("cannot bind token to object of type /v1, Kind=ConfigMap"))
    );
    let pod_uid = create(&api, PODS, pod("p", "sa1", "no-such-node")).await;
    let (code, body) = request(
        &api,
        json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "not-it"}}),
    )
    .await;
    assert_eq!(code, 409);
    assert_eq!(
        body["message"],
        "Operation cannot be fulfilled on Pod \"p\": the UID in the bound object reference (not-it) does not match the UID in record. The object might have been deleted and then recreated"
    );
    let token = token(
        &api,
        json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": pod_uid}}),
    )
    .await;
    let claims = payload(&token);
    assert_eq!(claims["kubernetes.io"]["pod"], json!({"name": "p", "uid": pod_uid}));
    // The node does not exist: its name only.
    assert_eq!(claims["kubernetes.io"]["node"], json!({"name": "no-such-node"}));
    let extra = &whoami(&api, &token).await.unwrap()["extra"];
    assert_eq!(extra["authentication.kubernetes.io/pod-name"], json!(["p"]));
    assert_eq!(extra["authentication.kubernetes.io/pod-uid"], json!([pod_uid]));
    assert_eq!(extra["authentication.kubernetes.io/node-name"], json!(["no-such-node"]));
    assert!(extra.get("authentication.kubernetes.io/node-uid").is_none(), "{extra}");
    // The kubelet's lifetime for projected tokens is extended to a year.
    let (code, body) = request(
        &api,
        json!({"expirationSeconds": 3607, "boundObjectRef": bind("Pod", "p")["boundObjectRef"]}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let claims = payload(body["status"]["token"].as_str().unwrap());
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 365 * 24 * 3600);
    assert_eq!(claims["kubernetes.io"]["warnafter"].as_i64().unwrap() - iat, 3607);
    let expires = lichen_apimachinery::timestamp::parse_rfc3339(
        body["status"]["expirationTimestamp"].as_str().unwrap(),
    );
    assert_eq!(expires, Some(iat + 3607), "the status shows the requested lifetime");
}

#[tokio::test]
async fn tokens_die_with_their_service_account() {
    let api = api();
    service_account(&api, "sa1").await;
    let token = token(&api, json!({})).await;
    assert!(whoami(&api, &token).await.is_ok());
    delete(&api, "/api/v1/namespaces/default/serviceaccounts/sa1").await;
    assert_eq!(whoami(&api, &token).await, Err(401));
    // A new account of the same name is someone else.
    service_account(&api, "sa1").await;
    assert_eq!(whoami(&api, &token).await, Err(401));
}

/// Marks a stored object as deleted `ago` seconds ago (what a grace period
/// that has run out looks like while the node has not confirmed yet).
fn mark_deleted(api: &Arc<Api>, key: &str, ago: i64) {
    let kv = api.store.get(key, None).unwrap().unwrap();
    let mut obj: Value = serde_json::from_slice(&kv.value).unwrap();
    let at = lichen_apimachinery::timestamp::format_rfc3339(crate::objects::now_unix() - ago);
    obj["metadata"]["deletionTimestamp"] = json!(at);
    api.store.update(key, &serde_json::to_vec(&obj).unwrap(), kv.mod_revision).unwrap();
}

#[tokio::test]
async fn tokens_die_with_their_bound_pod_secret_or_node() {
    let api = api();
    service_account(&api, "sa1").await;
    create(&api, PODS, pod("p", "sa1", "n1")).await;
    let bind =
        |kind: &str, name: &str| json!({"boundObjectRef": {"kind": kind, "apiVersion": "v1", "name": name}});
    let pod_token = token(&api, bind("Pod", "p")).await;
    // A scheduled pod is deleted gracefully: the token lives through the
    // grace period, and a minute beyond it.
    delete(&api, "/api/v1/namespaces/default/pods/p").await;
    let (_, p) =
        call(&api, Some(admin()), None, Method::GET, "/api/v1/namespaces/default/pods/p", None).await;
    assert!(p["metadata"]["deletionTimestamp"].is_string(), "{p}");
    assert!(whoami(&api, &pod_token).await.is_ok());
    mark_deleted(&api, "/registry/core/pods/default/p", 30);
    assert!(whoami(&api, &pod_token).await.is_ok(), "within the leeway");
    mark_deleted(&api, "/registry/core/pods/default/p", 61);
    assert_eq!(whoami(&api, &pod_token).await, Err(401));
    api.store.delete("/registry/core/pods/default/p", None).unwrap();
    assert_eq!(whoami(&api, &pod_token).await, Err(401));
    // Recreated under the same name: another pod.
    create(&api, PODS, pod("p", "sa1", "n1")).await;
    assert_eq!(whoami(&api, &pod_token).await, Err(401));

    create(&api, "/api/v1/namespaces/default/secrets", json!({"metadata": {"name": "s"}})).await;
    let secret_token = token(&api, bind("Secret", "s")).await;
    assert_eq!(payload(&secret_token)["kubernetes.io"]["secret"]["name"], "s");
    assert!(whoami(&api, &secret_token).await.is_ok());
    delete(&api, "/api/v1/namespaces/default/secrets/s").await;
    assert_eq!(whoami(&api, &secret_token).await, Err(401));

    create(&api, "/api/v1/nodes", json!({"metadata": {"name": "n1"}})).await;
    let node_token = token(&api, bind("Node", "n1")).await;
    assert!(whoami(&api, &node_token).await.is_ok());
    // A pod-bound token names the pod's node, uid included, when it exists.
    let claims = payload(&token(&api, bind("Pod", "p")).await);
    assert!(claims["kubernetes.io"]["node"]["uid"].as_str().is_some_and(|u| !u.is_empty()), "{claims}");
    delete(&api, "/api/v1/nodes/n1").await;
    assert_eq!(whoami(&api, &node_token).await, Err(401));
}

#[tokio::test]
async fn issuer_discovery_documents() {
    let api = api();
    service_account(&api, "sa1").await;
    let token = token(&api, json!({})).await;
    let (code, config) =
        call(&api, None, Some(&token), Method::GET, "/.well-known/openid-configuration", None).await;
    assert_eq!(code, 200, "{config}");
    assert_eq!(config["issuer"], ISSUER);
    assert_eq!(config["jwks_uri"], format!("{ISSUER}/openid/v1/jwks"));
    assert_eq!(config["id_token_signing_alg_values_supported"], json!(["ES256"]));
    let (code, jwks) = call(&api, None, Some(&token), Method::GET, "/openid/v1/jwks", None).await;
    assert_eq!(code, 200);
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
    assert_eq!(
        (jwks["keys"][0]["kty"].as_str(), jwks["keys"][0]["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    // Bob is no service account: not granted.
    let (code, _) = call(&api, None, Some("bobtoken"), Method::GET, "/openid/v1/jwks", None).await;
    assert_eq!(code, 403);
    let (code, _) = call(&api, None, None, Method::GET, "/openid/v1/jwks", None).await;
    assert_eq!(code, 401);
}

#[tokio::test]
async fn without_a_key_there_is_no_token_subresource() {
    let keyless = setup(bare_api());
    service_account(&keyless, "sa1").await;
    let (code, _) = request(&keyless, json!({})).await;
    assert_eq!(code, 404);
    let (code, _) = call(&keyless, Some(admin()), None, Method::GET, "/openid/v1/jwks", None).await;
    assert_eq!(code, 404);
    // A token signed by some other server's key is refused.
    let foreign = api_token_elsewhere().await;
    assert_eq!(whoami(&keyless, &foreign).await, Err(401));
    let other = api();
    service_account(&other, "sa1").await;
    assert_eq!(whoami(&other, &foreign).await, Err(401), "another key");
}

async fn api_token_elsewhere() -> String {
    let elsewhere = api();
    service_account(&elsewhere, "sa1").await;
    token(&elsewhere, json!({})).await
}
