//! Who is asking: the subject of a client certificate signed by the cluster
//! CA (CN is the user, each O a group), as upstream's x509 authenticator.
//! Bearer tokens from the static token file are in [`crate::tokens`].

use x509_parser::prelude::{FromDer, X509Certificate};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    /// Empty when the authenticator knows none (certificates).
    pub uid: String,
    pub groups: Vec<String>,
}

impl Identity {
    /// Members of `system:masters` may do anything, as upstream (RBAC is
    /// never consulted for them).
    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

/// The identity in a verified client certificate (DER); `None` without a
/// common name.
pub fn from_certificate(der: &[u8]) -> Option<Identity> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    let user = subject.iter_common_name().next()?.as_str().ok()?.to_string();
    if user.is_empty() {
        return None;
    }
    let mut groups: Vec<String> =
        subject.iter_organization().filter_map(|o| o.as_str().ok().map(String::from)).collect();
    groups.push("system:authenticated".into());
    Some(Identity { user, uid: String::new(), groups })
}
