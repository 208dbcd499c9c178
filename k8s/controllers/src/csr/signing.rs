//! Issuing certificates for approved requests, as upstream's `csrsigning`
//! controller for its three `kubernetes.io/` signers.

use std::time::Duration;

use base64::Engine as _;
use lichen_client::Client;
use serde_json::{Value, json};

use super::{Signer, rules};
use crate::Error;
use crate::informer::Informer;

#[derive(Clone)]
pub(super) struct Signing {
    pub(super) client: Client,
    pub(super) csrs: Informer,
    pub(super) signer: Signer,
}

impl Signing {
    pub(super) async fn sync(&self, name: &str) -> Result<Option<Duration>, Error> {
        let Some(csr) = self.csrs.get(name) else { return Ok(None) };
        if !rules::approved(&csr) || rules::failed(&csr) || rules::issued(&csr) {
            return Ok(None);
        }
        let signer_name = csr["spec"]["signerName"].as_str().unwrap_or("");
        if !rules::serves(signer_name) {
            return Ok(None);
        }
        let checked = super::parse(&csr).and_then(|(req, pem)| {
            match rules::check(signer_name, &req, &rules::usages(&csr)) {
                Some(Ok(usage)) => Ok((usage, pem)),
                Some(Err(why)) => Err(why),
                None => Err(format!("unknown signer {signer_name}")),
            }
        });
        let mut out = (*csr).clone();
        match checked {
            Ok((usage, pem)) => {
                let validity = rules::validity(csr["spec"]["expirationSeconds"].as_i64());
                let cert = self
                    .signer
                    .sign(&pem, usage, validity)
                    .map_err(|e| Error::Invalid(format!("signing failed: {e}")))?;
                out["status"]["certificate"] =
                    json!(base64::engine::general_purpose::STANDARD.encode(cert.as_bytes()));
                tracing::info!(csr = name, signer = signer_name, "certificate issued");
            }
            Err(why) => {
                fail(&mut out, &why);
                tracing::info!(csr = name, signer = signer_name, reason = %why, "certificate request failed");
            }
        }
        let stored = self.client.replace(&super::object_path(name, "status"), &out).await?;
        self.csrs.assume(&stored);
        Ok(None)
    }
}

/// Adds upstream's `Failed` condition for a request its signer refuses.
fn fail(csr: &mut Value, why: &str) {
    super::add_condition(csr, "Failed", "SignerValidationFailure", why);
}
