//! Server-side apply and managedFields through the API handler, on an
//! in-memory store.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use http_body_util::BodyExt;
use lichen_store::MemoryStore;
use serde_json::{Value, json};

use crate::api::{Api, handle};
use crate::authn::Identity;

const UA: &str = "kubectl/v1.37.1 (linux/amd64) kubernetes/f78e722";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

struct Server(Arc<Api>);

impl Server {
    async fn new() -> Self {
        let s = Server(Arc::new(Api::new(Arc::new(MemoryStore::new()), Default::default())));
        let (code, body) = s
            .call(
                Method::POST,
                "/api/v1/namespaces",
                "application/json",
                &json!({
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}
                }),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        s
    }

    async fn call(&self, method: Method, uri: &str, content_type: &str, body: &Value) -> (u16, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::USER_AGENT, UA)
            .body(Body::from(body.to_string()))
            .unwrap();
        let identity = Identity {
            user: "admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into()],
            extra: Default::default(),
        };
        let r = handle(State(self.0.clone()), Some(Extension(identity)), req).await;
        let code = r.status().as_u16();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn apply(&self, query: &str, body: &Value) -> (u16, Value) {
        let uri = format!("{DEPLOYMENTS}/web?{query}");
        self.call(Method::PATCH, &uri, "application/apply-patch+yaml", body).await
    }

    async fn get(&self) -> Value {
        self.call(Method::GET, &format!("{DEPLOYMENTS}/web"), "", &Value::Null).await.1
    }
}

fn deploy(replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]},
            },
        },
    })
}

fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

#[tokio::test]
async fn apply_needs_a_field_manager_and_force_needs_apply() {
    let s = Server::new().await;
    let (code, body) = s.apply("", &deploy(1)).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["details"]["causes"][0]["message"], "Required value: is required for apply patch");
    assert_eq!(body["details"]["causes"][0]["field"], "fieldManager");
    assert_eq!(body["details"]["kind"], "PatchOptions");
    let uri = format!("{DEPLOYMENTS}/web?force=true");
    let (code, body) = s.call(Method::PATCH, &uri, "application/merge-patch+json", &json!({})).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["details"]["causes"][0]["message"],
        "Forbidden: may not be specified for non-apply patch"
    );
}

#[tokio::test]
async fn apply_creates_then_conflicts_with_an_updater_then_forces() {
    let s = Server::new().await;
    let (code, created) =
        s.apply("fieldManager=kubectl&fieldValidation=Strict&force=false", &deploy(1)).await;
    assert_eq!(code, 201, "{created}");
    assert!(created["metadata"]["uid"].is_string(), "went through the create path: {created}");
    assert_eq!(created["spec"]["strategy"]["type"], "RollingUpdate", "defaulted");
    let applied = entry(&created, "kubectl", "Apply").expect("applier entry");
    assert_eq!(applied["apiVersion"], "apps/v1");
    assert_eq!(applied["fieldsType"], "FieldsV1");
    assert_eq!(applied["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    assert!(applied["time"].is_string());

    // Re-applying the same configuration writes nothing.
    let (code, again) = s.apply("fieldManager=kubectl", &deploy(1)).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"]);

    let uri = format!("{DEPLOYMENTS}/web?fieldManager=kubectl-patch");
    let (code, patched) =
        s.call(Method::PATCH, &uri, "application/merge-patch+json", &json!({"spec": {"replicas": 3}})).await;
    assert_eq!(code, 200, "{patched}");
    let updater = entry(&patched, "kubectl-patch", "Update").expect("updater entry");
    assert_eq!(updater["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    assert!(entry(&patched, "kubectl", "Apply").unwrap()["fieldsV1"]["f:spec"].get("f:replicas").is_none());

    let (code, conflict) = s.apply("fieldManager=kubectl&force=false", &deploy(5)).await;
    assert_eq!(code, 409, "{conflict}");
    assert_eq!(conflict["reason"], "Conflict");
    assert_eq!(
        conflict["message"],
        "Apply failed with 1 conflict: conflict with \"kubectl-patch\" using apps/v1: .spec.replicas"
    );
    assert_eq!(
        conflict["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-patch\" using apps/v1", "field": ".spec.replicas"}])
    );
    assert_eq!(s.get().await["spec"]["replicas"], 3, "nothing written");

    let (code, forced) = s.apply("fieldManager=kubectl&force=true", &deploy(5)).await;
    assert_eq!(code, 200, "{forced}");
    assert_eq!(forced["spec"]["replicas"], 5);
    assert!(entry(&forced, "kubectl-patch", "Update").is_none(), "a manager of nothing is dropped");
}

#[tokio::test]
async fn updates_record_the_user_agent_and_respect_or_reset_sent_managed_fields() {
    let s = Server::new().await;
    let mut d = deploy(2);
    d["status"] = json!({"replicas": 7});
    let (code, created) = s.call(Method::POST, DEPLOYMENTS, "application/json", &d).await;
    assert_eq!(code, 201, "{created}");
    let creator = entry(&created, "kubectl", "Update").expect("manager from the User-Agent");
    assert_eq!(creator["fieldsV1"]["f:metadata"], json!({"f:labels": {".": {}, "f:app": {}}}));
    assert!(creator["fieldsV1"].get("f:status").is_none(), "status is not the main resource's");

    // A PUT without managedFields keeps the live ones.
    let mut put = created.clone();
    put["metadata"].as_object_mut().unwrap().remove("managedFields");
    put["spec"]["replicas"] = json!(4);
    let uri = format!("{DEPLOYMENTS}/web?fieldManager=kubectl-edit");
    let (code, updated) = s.call(Method::PUT, &uri, "application/json", &put).await;
    assert_eq!(code, 200, "{updated}");
    assert!(entry(&updated, "kubectl", "Update").is_some());
    assert_eq!(
        entry(&updated, "kubectl-edit", "Update").unwrap()["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );

    // `[{}]` resets them, and the object stays untracked.
    let mut reset = updated.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    let (code, cleared) = s.call(Method::PUT, &uri, "application/json", &reset).await;
    assert_eq!(code, 200, "{cleared}");
    assert!(cleared["metadata"].get("managedFields").is_none(), "{cleared}");
}

#[tokio::test]
async fn scale_and_status_writes_are_recorded_with_their_subresource() {
    let s = Server::new().await;
    assert_eq!(s.apply("fieldManager=kubectl", &deploy(1)).await.0, 201);
    let uri = format!("{DEPLOYMENTS}/web/scale");
    let (code, body) =
        s.call(Method::PATCH, &uri, "application/merge-patch+json", &json!({"spec": {"replicas": 4}})).await;
    assert_eq!(code, 200, "{body}");
    let live = s.get().await;
    let scaler = entry(&live, "kubectl", "Update").expect("scaler");
    assert_eq!(scaler["subresource"], "scale");
    assert_eq!(scaler["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));

    let (code, conflict) = s.apply("fieldManager=kubectl", &deploy(2)).await;
    assert_eq!(code, 409, "{conflict}");
    assert_eq!(
        conflict["message"],
        "Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" using apps/v1: .spec.replicas"
    );
}

#[tokio::test]
async fn apply_refuses_wrong_versions_and_managed_fields() {
    let s = Server::new().await;
    let mut d = deploy(1);
    d["apiVersion"] = json!("apps/v2");
    let (code, body) = s.apply("fieldManager=x", &d).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["message"],
        "Incorrect version specified in apply patch. Specified patch version: apps/v2, expected: apps/v1"
    );
    let mut d = deploy(1);
    d["metadata"]["managedFields"] = json!([]);
    let (code, body) = s.apply("fieldManager=x", &d).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["message"], "metadata.managedFields must be nil");
    let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web}\n";
    let req = Request::builder()
        .method(Method::PATCH)
        .uri(format!("{DEPLOYMENTS}/web?fieldManager=yaml"))
        .header(header::CONTENT_TYPE, "application/apply-patch+yaml")
        .body(Body::from(yaml))
        .unwrap();
    let identity = Identity {
        user: "admin".into(),
        uid: String::new(),
        groups: vec!["system:masters".into()],
        extra: Default::default(),
    };
    let r = handle(State(s.0.clone()), Some(Extension(identity)), req).await;
    assert_eq!(r.status().as_u16(), 201, "YAML bodies apply");
    assert_eq!(s.get().await["metadata"]["labels"]["app"], "web");
}

#[tokio::test]
async fn a_resource_version_in_the_configuration_is_a_precondition() {
    let s = Server::new().await;
    let (_, created) = s.apply("fieldManager=kubectl", &deploy(1)).await;
    let mut stale = deploy(2);
    stale["metadata"]["resourceVersion"] = json!("1");
    let (code, body) = s.apply("fieldManager=kubectl", &stale).await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["reason"], "Conflict");
    let mut current = deploy(2);
    current["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
    let (code, body) = s.apply("fieldManager=kubectl", &current).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["spec"]["replicas"], 2);
}
