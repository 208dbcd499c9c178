//! Auto-approval of kubelet client requests after a SubjectAccessReview,
//! as upstream's `sarapprove.go`, and of nodes' requests for their own
//! serving certificates (`rules::self_node_serving`).

use std::time::Duration;

use lichen_client::Client;
use serde_json::{Value, json};

use super::rules::{self, Recognized};
use crate::Error;
use crate::informer::Informer;

const REVIEWS: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
const SELF_SERVING: &str =
    "Auto approving self kubelet serving certificate: it names the node and addresses that are its own.";

#[derive(Clone)]
pub(super) struct Approver {
    pub(super) client: Client,
    pub(super) csrs: Informer,
    /// Names and addresses no node's serving certificate may carry.
    pub(super) reserved: std::sync::Arc<Vec<String>>,
}

impl Approver {
    pub(super) async fn sync(&self, name: &str) -> Result<Option<Duration>, Error> {
        let Some(csr) = self.csrs.get(name) else { return Ok(None) };
        if rules::issued(&csr) || rules::approved(&csr) || rules::denied(&csr) {
            return Ok(None);
        }
        let Ok((req, _)) = super::parse(&csr) else {
            // Not a request anyone could approve; the signer fails it if a
            // human approves it anyway.
            return Ok(None);
        };
        let tried = rules::recognize(&csr, &req);
        for permission in &tried {
            if self.allowed(&csr, *permission).await? {
                self.approve(name, &csr, permission.message()).await?;
                tracing::info!(
                    csr = name,
                    permission = permission.subresource(),
                    "certificate request approved"
                );
                return Ok(None);
            }
        }
        if !tried.is_empty() {
            let tried: Vec<&str> = tried.iter().map(|p| p.subresource()).collect();
            tracing::debug!(csr = name, ?tried, "recognized but the subject access review did not allow it");
        }
        if let Some(node) = rules::self_node_serving(&csr, &req) {
            if let Some(name) = rules::reserved_name(&req, &self.reserved) {
                tracing::warn!(csr = name, node, %name, "serving certificate request names the API server or a reserved name: not approved");
                return Ok(None);
            }
            let nodes = self.client.get("/api/v1/nodes").await?;
            let nodes = nodes["items"].as_array().cloned().unwrap_or_default();
            match rules::addresses_are_the_nodes(node, &req.ip_addresses, &nodes) {
                Ok(()) => {
                    self.approve(name, &csr, SELF_SERVING).await?;
                    tracing::info!(csr = name, node, "serving certificate request approved");
                }
                // Left pending: a human may still approve it.
                Err(why) => {
                    tracing::info!(csr = name, node, %why, "serving certificate request not auto-approved")
                }
            }
        }
        Ok(None)
    }

    /// Adds the Approved condition.
    async fn approve(&self, name: &str, csr: &Value, message: &str) -> Result<(), Error> {
        let mut approved = csr.clone();
        super::add_condition(&mut approved, "Approved", "AutoApproved", message);
        let stored = self.client.replace(&super::object_path(name, "approval"), &approved).await?;
        self.csrs.assume(&stored);
        Ok(())
    }

    /// Whether the requester may have the request approved as `permission`.
    async fn allowed(&self, csr: &Value, permission: Recognized) -> Result<bool, Error> {
        let spec = &csr["spec"];
        let mut review_spec = json!({
            "user": spec["username"].as_str().unwrap_or(""),
            "groups": spec["groups"].as_array().cloned().unwrap_or_default(),
            "resourceAttributes": {
                "group": "certificates.k8s.io", "version": "*", "resource": "certificatesigningrequests",
                "subresource": permission.subresource(), "verb": "create",
            },
        });
        if let Some(uid) = spec["uid"].as_str().filter(|u| !u.is_empty()) {
            review_spec["uid"] = json!(uid);
        }
        if spec["extra"].is_object() {
            review_spec["extra"] = spec["extra"].clone();
        }
        let review = json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": review_spec,
        });
        let answer = self.client.create(REVIEWS, &review).await?;
        Ok(answer["status"]["allowed"] == json!(true))
    }
}
