//! Upstream's `tokencleaner`: deletes bootstrap token Secrets
//! (`kube-system`, type `bootstrap.kubernetes.io/token`) whose
//! `expiration` has passed, so that `lichen token list` shows live tokens
//! only. The API server refuses an expired token whether or not it has been
//! cleaned up yet; this only tidies. Looks every `every`.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use lichen_client::Client;
use serde_json::Value;
use tokio::task::JoinSet;

const SECRETS: &str = "/api/v1/namespaces/kube-system/secrets";
const SELECTOR: &str = "fieldSelector=type%3Dbootstrap.kubernetes.io%2Ftoken";

/// The expiry of a bootstrap token Secret; `None` when it never expires
/// or the field is unreadable (left alone, as upstream).
pub fn expiration(secret: &Value) -> Option<SystemTime> {
    let text = secret["data"]["expiration"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    crate::meta::time(&Value::from(String::from_utf8(bytes).ok()?))
}

pub fn start(tasks: &mut JoinSet<()>, client: &Client, every: Duration) {
    let client = client.clone();
    tasks.spawn(async move {
        loop {
            if let Err(e) = clean(&client).await {
                tracing::info!(error = %e, "token cleaner: listing bootstrap tokens failed; retrying");
            }
            tokio::time::sleep(every).await;
        }
    });
}

async fn clean(client: &Client) -> Result<(), lichen_client::ClientError> {
    let list = client.get(&format!("{SECRETS}?{SELECTOR}")).await?;
    let now = crate::meta::now();
    for s in list["items"].as_array().into_iter().flatten() {
        let Some(at) = expiration(s).filter(|at| *at <= now) else { continue };
        let name = s["metadata"]["name"].as_str().unwrap_or_default();
        let uid = s["metadata"]["uid"].clone();
        // Only the Secret we looked at, not one made since with the same name.
        let options = serde_json::json!({"preconditions": {"uid": uid}});
        match client.delete(&format!("{SECRETS}/{name}"), &options).await {
            Ok(_) => {
                tracing::info!(secret = %name, expired = %crate::meta::rfc3339(at), "expired bootstrap token deleted")
            }
            Err(e) if e.is_not_found() || e.is_conflict() => {}
            Err(e) => {
                tracing::info!(secret = %name, error = %e, "deleting an expired bootstrap token failed")
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expiration_is_read_from_the_data() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let s = json!({"data": {"expiration": b64("2026-01-01T00:00:00Z")}});
        assert_eq!(expiration(&s), Some(std::time::UNIX_EPOCH + Duration::from_secs(1_767_225_600)));
        assert_eq!(expiration(&json!({"data": {}})), None);
        assert_eq!(expiration(&json!({"data": {"expiration": b64("soon")}})), None);
    }
}
