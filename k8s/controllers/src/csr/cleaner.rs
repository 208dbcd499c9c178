//! Upstream's `csrcleaner`: deletes CertificateSigningRequests that have
//! served their purpose, so that a fleet of agents joining and renewing
//! does not grow the list for ever. As upstream's, it deletes requests
//! - issued and approved more than an hour ago, or whose certificate has
//!   expired;
//! - denied or failed more than an hour ago;
//! - still pending a day after they were made.
//!
//! The agent that asked keeps its certificate in its own files; the
//! request is only the conversation that got it there.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use lichen_client::Client;
use serde_json::{Value, json};

use super::rules;
use crate::informer::Informer;
use crate::meta;

/// How often upstream's cleaner looks.
pub const INTERVAL: Duration = Duration::from_secs(3600);
const DECIDED: Duration = Duration::from_secs(3600);
const PENDING: Duration = Duration::from_secs(24 * 3600);

/// Why `csr` is due for deletion at `now`, if it is.
pub fn due(csr: &Value, now: SystemTime) -> Option<&'static str> {
    let older = |t: Option<SystemTime>, age: Duration| t.is_some_and(|t| t + age <= now);
    let created = meta::time(&csr["metadata"]["creationTimestamp"]);
    // A condition set without times (a client's own) counts from creation.
    let updated = |kind: &str| {
        let c = csr["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)?;
        meta::time(&c["lastUpdateTime"]).or_else(|| meta::time(&c["lastTransitionTime"])).or(created)
    };
    if rules::issued(csr) {
        if certificate_expired(csr, now) {
            return Some("its certificate has expired");
        }
        if rules::approved(csr) && older(updated("Approved"), DECIDED) {
            return Some("issued more than an hour ago");
        }
        return None;
    }
    if rules::denied(csr) && older(updated("Denied"), DECIDED) {
        return Some("denied more than an hour ago");
    }
    if rules::failed(csr) && older(updated("Failed"), DECIDED) {
        return Some("failed more than an hour ago");
    }
    let undecided = csr["status"]["conditions"].as_array().is_none_or(Vec::is_empty);
    if undecided && older(created, PENDING) {
        return Some("pending for more than a day");
    }
    None
}

fn certificate_expired(csr: &Value, now: SystemTime) -> bool {
    let Some(b64) = csr["status"]["certificate"].as_str() else { return false };
    let Ok(pem) = base64::engine::general_purpose::STANDARD.decode(b64) else { return false };
    let Some((_, not_after)) =
        String::from_utf8(pem).ok().as_deref().and_then(lichen_pki::join::validity_of_pem)
    else {
        return false;
    };
    let now = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    u64::try_from(not_after).is_ok_and(|t| t < now)
}

/// Looks every `every` through the cache and deletes what is due.
pub(super) async fn run(client: Client, csrs: Informer, every: Duration) {
    csrs.synced().await;
    loop {
        let now = meta::now();
        for csr in csrs.list() {
            let Some(why) = due(&csr, now) else { continue };
            let name = meta::name(&csr);
            // Only the request looked at, not one made since with its name.
            let options = json!({"preconditions": {"uid": csr["metadata"]["uid"]}});
            match client.delete(&format!("{}/{name}", super::PATH), &options).await {
                Ok(_) => tracing::info!(csr = name, why, "certificate request deleted"),
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => tracing::info!(csr = name, error = %e, "deleting a certificate request failed"),
            }
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn stamp(secs: u64) -> String {
        meta::rfc3339(at(secs))
    }

    fn csr(conditions: Value, certificate: Option<&str>) -> Value {
        let mut c = json!({"metadata": {"name": "x", "creationTimestamp": stamp(1_000_000)}, "status": {"conditions": conditions}});
        if let Some(cert) = certificate {
            c["status"]["certificate"] = json!(cert);
        }
        c
    }

    fn condition(kind: &str, secs: u64) -> Value {
        json!({"type": kind, "status": "True", "lastUpdateTime": stamp(secs)})
    }

    #[test]
    fn decided_requests_go_an_hour_after_the_decision_pending_ones_after_a_day() {
        let t0 = 1_000_000;
        let pending = csr(json!([]), None);
        assert_eq!(due(&pending, at(t0 + 23 * 3600)), None);
        assert_eq!(due(&pending, at(t0 + 24 * 3600)), Some("pending for more than a day"));

        let denied = csr(json!([condition("Denied", t0 + 60)]), None);
        assert_eq!(due(&denied, at(t0 + 3600)), None);
        assert_eq!(due(&denied, at(t0 + 3660)), Some("denied more than an hour ago"));

        let failed = csr(json!([condition("Approved", t0), condition("Failed", t0 + 10)]), None);
        assert_eq!(due(&failed, at(t0 + 3610)), Some("failed more than an hour ago"));

        // A condition without times counts from the request's creation.
        let untimed = csr(json!([{"type": "Denied", "status": "True"}]), None);
        assert_eq!(due(&untimed, at(t0 + 3600)), Some("denied more than an hour ago"));

        // Approved but not issued yet: the signer's business, left alone.
        let approved = csr(json!([condition("Approved", t0)]), None);
        assert_eq!(due(&approved, at(t0 + 48 * 3600)), None);
    }

    #[test]
    fn issued_requests_go_an_hour_after_approval_or_when_the_certificate_expired() {
        let tmp = tempfile::tempdir().unwrap();
        let (pki, _) =
            lichen_pki::Pki::load_or_create(&lichen_pki::PkiOptions::new(tmp.path(), "s")).unwrap();
        let (_, req) = lichen_pki::join::node_client_request("n1").unwrap();
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let cert = pki.sign_csr(req.as_bytes(), lichen_pki::Usage::ClientAuth, day, now).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert);
        let secs = now.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        let issued = csr(json!([condition("Approved", secs)]), Some(&b64));
        assert_eq!(due(&issued, at(secs + 60)), None);
        assert_eq!(due(&issued, at(secs + 3600)), Some("issued more than an hour ago"));
        // Its approval is recent, but the certificate is past its end.
        let fresh = csr(json!([condition("Approved", secs + 3 * 86_400)]), Some(&b64));
        assert_eq!(due(&fresh, at(secs + 3 * 86_400)), Some("its certificate has expired"));
    }
}
