//! Join tokens and what an agent needs to join with one.
//!
//! A join token is `K10<ca hash>::<credential>`, as k3s's: the lowercase
//! hex SHA-256 of the cluster CA certificate's DER, which pins the CA (an
//! agent refuses a server whose CA hashes otherwise), then the credential:
//! - `server:<secret>`: the cluster's own token (`pki/token`, made with
//!   the CA; it never expires);
//! - `<id>.<secret>`: a bootstrap token (six and sixteen characters of
//!   `[a-z0-9]`, as upstream's), stored in the cluster as the Secret
//!   `kube-system/bootstrap-token-<id>`, which `lichen token` creates with
//!   an expiry and deletes to revoke.
//!
//! This module only parses and makes values: it never talks to a server.

use rcgen::{CertificateParams, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
use ring::rand::SecureRandom;

use crate::PkiError;
use crate::names::San;

/// The user a node's client certificate names: `system:node:<name>`.
pub fn node_user(node: &str) -> String {
    format!("system:node:{node}")
}

/// The group of nodes' client certificates.
pub const NODES_GROUP: &str = "system:nodes";

/// A parsed join token.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// Lowercase hex SHA-256 of the cluster CA's DER.
    pub ca_hash: String,
    pub credential: Credential,
}

/// What follows `::` in a join token.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// `server:<secret>`, the cluster's own token.
    Server { secret: String },
    /// `<id>.<secret>`, a bootstrap token.
    Bootstrap { id: String, secret: String },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        match self {
            Credential::Server { .. } => f.write_str("Server"),
            Credential::Bootstrap { id, .. } => write!(f, "Bootstrap({id})"),
        }
    }
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinToken")
            .field("ca_hash", &self.ca_hash)
            .field("credential", &self.credential)
            .finish()
    }
}

/// Why a string is not a join token (never includes the secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    #[error("a join token starts with K10 followed by the CA's sha256 (64 hex digits) and ::")]
    Prefix,
    #[error(
        "a join token's credential is server:<secret> or a bootstrap token <id>.<secret> ([a-z0-9]{{6}}.[a-z0-9]{{16}})"
    )]
    Credential,
}

impl JoinToken {
    pub fn parse(token: &str) -> Result<JoinToken, TokenFormatError> {
        let token = token.trim();
        let rest = token.strip_prefix("K10").ok_or(TokenFormatError::Prefix)?;
        let (hash, credential) = rest.split_once("::").ok_or(TokenFormatError::Prefix)?;
        let hex64 = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex64 {
            return Err(TokenFormatError::Prefix);
        }
        let credential = if let Some(secret) = credential.strip_prefix("server:") {
            if secret.is_empty() || secret.contains(char::is_whitespace) {
                return Err(TokenFormatError::Credential);
            }
            Credential::Server { secret: secret.to_owned() }
        } else {
            let (id, secret) = parse_bootstrap(credential).ok_or(TokenFormatError::Credential)?;
            Credential::Bootstrap { id: id.to_owned(), secret: secret.to_owned() }
        };
        Ok(JoinToken { ca_hash: hash.to_owned(), credential })
    }

    /// The token as text, `K10<hash>::<credential>`.
    pub fn render(&self) -> String {
        match &self.credential {
            Credential::Server { secret } => format!("K10{}::server:{secret}", self.ca_hash),
            Credential::Bootstrap { id, secret } => format!("K10{}::{id}.{secret}", self.ca_hash),
        }
    }
}

/// Splits a bootstrap token `<id>.<secret>` (`[a-z0-9]{6}.[a-z0-9]{16}`).
pub fn parse_bootstrap(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9'));
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

/// A fresh random bootstrap token's id and secret.
pub fn new_bootstrap_token() -> Result<(String, String), PkiError> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let rng = ring::rand::SystemRandom::new();
    let pick = |n: usize| -> Result<String, PkiError> {
        let mut out = String::with_capacity(n);
        while out.len() < n {
            let mut b = [0u8; 1];
            rng.fill(&mut b).map_err(|_| PkiError::Random)?;
            // 252 = 7 * 36: reject the tail so every character is equally likely.
            if b[0] < 252 {
                out.push(char::from(ALPHABET[usize::from(b[0] % 36)]));
            }
        }
        Ok(out)
    };
    Ok((pick(6)?, pick(16)?))
}

/// Lowercase hex SHA-256 of the first certificate in `pem` (the CA hash a
/// join token pins); `None` when `pem` holds no certificate.
pub fn ca_hash_of_pem(pem: &str) -> Option<String> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    (block.label == "CERTIFICATE").then(|| crate::hex_sha256(&block.contents))
}

/// When the first certificate in `pem` starts and stops being valid
/// (seconds since the epoch).
pub fn validity_of_pem(pem: &str) -> Option<(i64, i64)> {
    let der = crate::inspect::cert_der(pem).ok()?;
    let cert = crate::inspect::parse(&der).ok()?;
    let v = cert.validity();
    Some((v.not_before.timestamp(), v.not_after.timestamp()))
}

/// The subject alternative names of the first certificate in `pem`: DNS
/// names (lowercase) and IP addresses as text.
pub fn subject_alt_names(pem: &str) -> Vec<String> {
    let Ok(der) = crate::inspect::cert_der(pem) else { return Vec::new() };
    let Ok(cert) = crate::inspect::parse(&der) else { return Vec::new() };
    let name = |san: San| match san {
        San::Dns(d) => d,
        San::Ip(ip) => ip.to_string(),
    };
    crate::inspect::sans(&cert).into_iter().map(name).collect()
}

/// A new ECDSA P-256 key (PKCS#8 PEM) and a PKCS#10 request (PEM) for a
/// node's client certificate: CN `system:node:<node>`, O `system:nodes`,
/// as the `kubernetes.io/kube-apiserver-client-kubelet` signer requires.
pub fn node_client_request(node: &str) -> Result<(String, String), PkiError> {
    node_request(node, &[], "node client")
}

/// A new key and request for a node's serving certificate (the agent
/// endpoint, port 10250): the client request's subject plus the node's
/// name and addresses as subject alternative names, as the
/// `kubernetes.io/kubelet-serving` signer requires.
pub fn node_serving_request(node: &str, ips: &[std::net::IpAddr]) -> Result<(String, String), PkiError> {
    let mut sans = vec![crate::names::parse_san(node)?];
    sans.extend(ips.iter().map(|ip| San::Ip(*ip)));
    node_request(node, &sans, "node serving")
}

fn node_request(node: &str, sans: &[San], what: &'static str) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::generate(what))?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::OrganizationName, NODES_GROUP);
    params.distinguished_name.push(DnType::CommonName, node_user(node));
    params.subject_alt_names = sans.iter().map(San::to_rcgen).collect::<Result<_, _>>()?;
    let csr = params.serialize_request(&key).map_err(PkiError::generate(what))?;
    let pem = csr.pem().map_err(PkiError::generate(what))?;
    Ok((key.serialize_pem(), pem))
}

/// File names of a joined node's credentials in its directory.
pub const NODE_CA: &str = "ca.crt";
pub const NODE_CERT: &str = "client.crt";
pub const NODE_KEY: &str = "client.key";
/// The agent endpoint's certificate and key, beside them.
pub const NODE_SERVING_CERT: &str = "serving.crt";
pub const NODE_SERVING_KEY: &str = "serving.key";

/// Saves a joined node's credentials in `dir` (made 0700): the CA, then
/// the client pair as [`save_pair`] does (the key 0600).
pub fn save_node_credentials(
    dir: &std::path::Path,
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<(), PkiError> {
    use crate::files;
    files::ensure_dir(dir)?;
    files::write_atomic(&dir.join(NODE_CA), ca_pem.as_bytes(), files::PUBLIC)?;
    save_pair(dir, NODE_CERT, NODE_KEY, cert_pem, key_pem)
}

/// Saves a node's serving certificate and key in `dir`, as
/// [`save_node_credentials`] does.
pub fn save_node_serving(dir: &std::path::Path, cert_pem: &str, key_pem: &str) -> Result<(), PkiError> {
    crate::files::ensure_dir(dir)?;
    save_pair(dir, NODE_SERVING_CERT, NODE_SERVING_KEY, cert_pem, key_pem)
}

/// Replaces a certificate and its key so that a power cut at any moment
/// leaves a pair that belongs together: the certificate is staged as
/// `<cert>.next`, the key replaced, then the staged certificate renamed
/// into place; [`load_pair`] finishes a replacement a cut interrupted.
fn save_pair(
    dir: &std::path::Path,
    cert: &str,
    key: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<(), PkiError> {
    use crate::files;
    let staged = dir.join(format!("{cert}.next"));
    files::write_atomic(&staged, cert_pem.as_bytes(), files::PUBLIC)?;
    files::write_atomic(&dir.join(key), key_pem.as_bytes(), files::SECRET)?;
    std::fs::rename(&staged, dir.join(cert))
        .map_err(PkiError::io("cannot rename into place", &dir.join(cert)))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(PkiError::io("cannot sync directory", dir))
}

/// Reads a certificate and key saved by [`save_pair`] as (certificate,
/// key) PEM, finishing a replacement a power cut interrupted: a staged
/// certificate that matches the key is moved into place, one that does not
/// (the cut came before the key was replaced) is dropped.
pub fn load_pair(dir: &std::path::Path, cert: &str, key: &str) -> Option<(String, String)> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let key_pem = read(key)?;
    let staged = dir.join(format!("{cert}.next"));
    if let Ok(next) = std::fs::read_to_string(&staged) {
        if pair_matches(&next, &key_pem) && std::fs::rename(&staged, dir.join(cert)).is_ok() {
            return Some((next, key_pem));
        }
        let _ = std::fs::remove_file(&staged);
    }
    Some((read(cert)?, key_pem))
}

fn pair_matches(cert_pem: &str, key_pem: &str) -> bool {
    use crate::inspect;
    let (Ok(der), Ok(key)) = (inspect::cert_der(cert_pem), inspect::p256_key(key_pem)) else { return false };
    inspect::parse(&der).is_ok_and(|cert| inspect::key_matches(&cert, &key))
}

/// Checks a node's saved client credentials: the certificate is issued by
/// `ca_pem`, belongs to `key_pem`, names `system:node:<node>` and is still
/// valid at `now` (seconds since the epoch). Returns when it expires
/// (seconds since the epoch), or what is wrong.
pub fn check_node_credentials(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    node: &str,
    now: i64,
) -> Result<i64, String> {
    check_node_certificate(ca_pem, cert_pem, key_pem, node, &[], now)
}

/// Checks a node's saved serving certificate as
/// [`check_node_credentials`] does, and that it names the node and each of
/// `ips` (a certificate for an address the node no longer has is of no use).
pub fn check_node_serving(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    node: &str,
    ips: &[std::net::IpAddr],
    now: i64,
) -> Result<i64, String> {
    let mut sans = vec![crate::names::parse_san(node).map_err(|e| e.to_string())?];
    sans.extend(ips.iter().map(|ip| San::Ip(*ip)));
    check_node_certificate(ca_pem, cert_pem, key_pem, node, &sans, now)
}

fn check_node_certificate(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    node: &str,
    sans: &[San],
    now: i64,
) -> Result<i64, String> {
    use crate::inspect;
    let ca_der = inspect::cert_der(ca_pem).map_err(|e| format!("CA: {e}"))?;
    let ca = inspect::parse(&ca_der)?;
    let der = inspect::cert_der(cert_pem).map_err(|e| format!("certificate: {e}"))?;
    let cert = inspect::parse(&der)?;
    let key = inspect::p256_key(key_pem).map_err(|e| format!("key: {e}"))?;
    let leaf = inspect::check_leaf(&cert, &key, &ca)?;
    let want = node_user(node);
    if leaf.common_name.as_deref() != Some(want.as_str()) {
        return Err(format!("names {:?}, not {want:?}", leaf.common_name.unwrap_or_default()));
    }
    if let Some(missing) = sans.iter().find(|san| !leaf.sans.contains(san)) {
        return Err(format!("does not name {missing}"));
    }
    let not_after = leaf.not_after.unix_timestamp();
    if not_after <= now {
        return Err(format!("expired at {} (unix)", not_after));
    }
    Ok(not_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash() -> String {
        "ab".repeat(32)
    }

    #[test]
    fn server_and_bootstrap_tokens_parse_and_render() {
        let t = JoinToken::parse(&format!("K10{}::server:0123abcd\n", hash())).unwrap();
        assert_eq!(t.credential, Credential::Server { secret: "0123abcd".into() });
        assert_eq!(t.render(), format!("K10{}::server:0123abcd", hash()));
        let t = JoinToken::parse(&format!("K10{}::abcdef.0123456789abcdef", hash())).unwrap();
        assert_eq!(
            t.credential,
            Credential::Bootstrap { id: "abcdef".into(), secret: "0123456789abcdef".into() }
        );
        assert_eq!(t.render(), format!("K10{}::abcdef.0123456789abcdef", hash()));
        assert!(!format!("{t:?}").contains("0123456789abcdef"), "the secret is never printed");
    }

    #[test]
    fn malformed_tokens_say_what_is_wrong() {
        let h = hash();
        assert_eq!(JoinToken::parse("abcdef.0123456789abcdef"), Err(TokenFormatError::Prefix));
        assert_eq!(JoinToken::parse(&format!("K10{}::server:x", &h[1..])), Err(TokenFormatError::Prefix));
        assert_eq!(
            JoinToken::parse(&format!("K10{}::server:x", h.to_uppercase())),
            Err(TokenFormatError::Prefix)
        );
        assert_eq!(JoinToken::parse(&format!("K10{h}::server:")), Err(TokenFormatError::Credential));
        assert_eq!(
            JoinToken::parse(&format!("K10{h}::abcde.0123456789abcdef")),
            Err(TokenFormatError::Credential)
        );
        assert_eq!(
            JoinToken::parse(&format!("K10{h}::ABCDEF.0123456789abcdef")),
            Err(TokenFormatError::Credential)
        );
        assert_eq!(
            JoinToken::parse(&format!("K10{h}::abcdef:0123456789abcdef")),
            Err(TokenFormatError::Credential)
        );
    }

    #[test]
    fn fresh_bootstrap_tokens_are_well_formed_and_differ() {
        let (id, secret) = new_bootstrap_token().unwrap();
        let joined = format!("{id}.{secret}");
        assert_eq!(parse_bootstrap(&joined), Some((id.as_str(), secret.as_str())));
        let (id2, secret2) = new_bootstrap_token().unwrap();
        assert_ne!((id, secret), (id2, secret2));
    }

    #[test]
    fn node_requests_name_the_node_and_the_nodes_group() {
        let (key, csr) = node_client_request("edge-1").unwrap();
        assert!(key.contains("PRIVATE KEY"));
        let req = crate::CertificateRequest::parse(csr.as_bytes()).unwrap();
        assert_eq!(req.common_name, "system:node:edge-1");
        assert_eq!(req.organizations, vec!["system:nodes".to_owned()]);
    }

    #[test]
    fn the_ca_hash_of_a_pem_is_the_hash_of_its_der() {
        let tmp = tempfile::tempdir().unwrap();
        let (s, _) =
            crate::ClusterSecrets::load_or_create(&crate::ClusterSecretsOptions::new(tmp.path())).unwrap();
        assert_eq!(ca_hash_of_pem(&s.ca_cert_pem).as_deref(), Some(s.ca_hash.as_str()));
        assert_eq!(ca_hash_of_pem("no certificate"), None);
    }

    #[test]
    fn saved_node_credentials_are_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let (pki, _) = crate::Pki::load_or_create(&crate::PkiOptions::new(tmp.path(), "server")).unwrap();
        let (key, csr) = node_client_request("edge-1").unwrap();
        let now = std::time::SystemTime::now();
        let day = std::time::Duration::from_secs(86_400);
        let cert = pki.sign_csr(csr.as_bytes(), crate::Usage::ClientAuth, day, now).unwrap();
        let secs = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let until = check_node_credentials(&pki.ca_cert_pem, &cert, &key, "edge-1", secs).unwrap();
        assert!(until > secs && until <= secs + 86_400 + 60, "{until} vs {secs}");
        let e = check_node_credentials(&pki.ca_cert_pem, &cert, &key, "edge-2", secs).unwrap_err();
        assert!(e.contains("system:node:edge-2"), "{e}");
        assert!(
            check_node_credentials(&pki.ca_cert_pem, &cert, &key, "edge-1", until)
                .unwrap_err()
                .contains("expired")
        );
        let (other_key, _) = node_client_request("edge-1").unwrap();
        assert!(check_node_credentials(&pki.ca_cert_pem, &cert, &other_key, "edge-1", secs).is_err());
        let other = tempfile::tempdir().unwrap();
        let (other_ca, _) =
            crate::ClusterSecrets::load_or_create(&crate::ClusterSecretsOptions::new(other.path())).unwrap();
        assert!(check_node_credentials(&other_ca.ca_cert_pem, &cert, &key, "edge-1", secs).is_err());
    }

    #[test]
    fn serving_requests_name_the_node_and_its_addresses_and_are_checked() {
        let ip: std::net::IpAddr = "10.77.0.2".parse().unwrap();
        let (key, csr) = node_serving_request("edge-1", &[ip]).unwrap();
        let req = crate::CertificateRequest::parse(csr.as_bytes()).unwrap();
        assert_eq!(req.common_name, "system:node:edge-1");
        assert_eq!(req.organizations, vec!["system:nodes".to_owned()]);
        assert_eq!(req.dns_names, vec!["edge-1".to_owned()]);
        assert_eq!(req.ip_addresses, vec![ip]);

        let tmp = tempfile::tempdir().unwrap();
        let (pki, _) = crate::Pki::load_or_create(&crate::PkiOptions::new(tmp.path(), "server")).unwrap();
        let now = std::time::SystemTime::now();
        let day = std::time::Duration::from_secs(86_400);
        let cert = pki.sign_csr(csr.as_bytes(), crate::Usage::ServerAuth, day, now).unwrap();
        let secs = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        assert!(check_node_serving(&pki.ca_cert_pem, &cert, &key, "edge-1", &[ip], secs).is_ok());
        assert_eq!(subject_alt_names(&cert), ["edge-1", "10.77.0.2"]);
        let moved: std::net::IpAddr = "10.77.0.9".parse().unwrap();
        let e = check_node_serving(&pki.ca_cert_pem, &cert, &key, "edge-1", &[moved], secs).unwrap_err();
        assert_eq!(e, "does not name IP:10.77.0.9");
        let e = check_node_serving(&pki.ca_cert_pem, &cert, &key, "edge-2", &[ip], secs).unwrap_err();
        assert!(e.contains("system:node:edge-2"), "{e}");
        save_node_serving(tmp.path(), &cert, &key).unwrap();
        assert_eq!(std::fs::read_to_string(tmp.path().join(NODE_SERVING_CERT)).unwrap(), cert);
    }

    #[test]
    fn a_replacement_cut_short_is_finished_or_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let (pki, _) = crate::Pki::load_or_create(&crate::PkiOptions::new(tmp.path(), "server")).unwrap();
        let dir = tmp.path().join("node");
        let day = std::time::Duration::from_secs(86_400);
        let now = std::time::SystemTime::now();
        let issue = || {
            let (key, csr) = node_client_request("edge-1").unwrap();
            (pki.sign_csr(csr.as_bytes(), crate::Usage::ClientAuth, day, now).unwrap(), key)
        };
        let (old_cert, old_key) = issue();
        save_node_credentials(&dir, &pki.ca_cert_pem, &old_cert, &old_key).unwrap();
        assert_eq!(load_pair(&dir, NODE_CERT, NODE_KEY), Some((old_cert.clone(), old_key.clone())));
        let (new_cert, new_key) = issue();
        // Cut after the staging: the old pair stands, the stage goes.
        std::fs::write(dir.join("client.crt.next"), &new_cert).unwrap();
        assert_eq!(load_pair(&dir, NODE_CERT, NODE_KEY), Some((old_cert.clone(), old_key)));
        assert!(!dir.join("client.crt.next").exists());
        // Cut after the key: the staged certificate is moved into place.
        std::fs::write(dir.join("client.crt.next"), &new_cert).unwrap();
        std::fs::write(dir.join(NODE_KEY), &new_key).unwrap();
        assert_eq!(load_pair(&dir, NODE_CERT, NODE_KEY), Some((new_cert.clone(), new_key)));
        assert_eq!(std::fs::read_to_string(dir.join(NODE_CERT)).unwrap(), new_cert);
        assert!(!dir.join("client.crt.next").exists());
    }
}
