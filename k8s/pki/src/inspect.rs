//! Checks on certificates and keys read back from disk.
//!
//! Problems are plain strings: the caller knows the file and decides whether a
//! problem is fatal (CA, service-account key) or means "issue a new one" (leaves).

use std::collections::BTreeSet;

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::parse_x509_pem;
use x509_parser::prelude::FromDer;

use crate::names::San;

/// A certificate's DER, taken from the single PEM block of a file.
pub(crate) fn cert_der(pem_text: &str) -> Result<Vec<u8>, String> {
    let (_, pem) = parse_x509_pem(pem_text.as_bytes()).map_err(|_| "not a PEM file".to_owned())?;
    if pem.label != "CERTIFICATE" {
        return Err(format!("holds a {:?} PEM block, not a certificate", pem.label));
    }
    parse(&pem.contents)?;
    Ok(pem.contents)
}

/// Parses DER that [`cert_der`] already accepted (or that this crate made).
pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    X509Certificate::from_der(der).map(|(_, c)| c).map_err(|e| format!("not a valid certificate ({e})"))
}

/// An ECDSA P-256 PKCS#8 private key.
pub(crate) fn p256_key(pem_text: &str) -> Result<KeyPair, String> {
    let key = KeyPair::from_pem(pem_text).map_err(|_| "not a PKCS#8 PEM private key".to_owned())?;
    if key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
        return Err("not an ECDSA P-256 key".to_owned());
    }
    Ok(key)
}

/// Whether `key` is the private half of the key certified by `cert`.
pub(crate) fn key_matches(cert: &X509Certificate<'_>, key: &KeyPair) -> bool {
    key.subject_public_key_info() == cert.tbs_certificate.subject_pki.raw
}

/// Checks that the CA certificate is one and belongs to `key`.
pub(crate) fn check_ca(cert: &X509Certificate<'_>) -> Result<(), String> {
    match cert.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => Ok(()),
        _ => Err("not a CA certificate (no basicConstraints CA:TRUE)".to_owned()),
    }
}

/// What matters about a leaf certificate that passed [`check_leaf`].
pub(crate) struct Leaf {
    pub(crate) not_after: OffsetDateTime,
    pub(crate) sans: BTreeSet<San>,
    pub(crate) common_name: Option<String>,
}

/// Checks a leaf certificate against its key and the CA.
pub(crate) fn check_leaf(
    cert: &X509Certificate<'_>,
    key: &KeyPair,
    ca: &X509Certificate<'_>,
) -> Result<Leaf, String> {
    if cert.issuer().as_raw() != ca.subject().as_raw() {
        return Err("not issued by the cluster CA (issuer differs)".to_owned());
    }
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|_| "signature does not verify against the cluster CA".to_owned())?;
    if !key_matches(cert, key) {
        return Err("key does not match the certificate".to_owned());
    }
    let sans = sans(cert);
    let common_name =
        cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned);
    Ok(Leaf { not_after: cert.validity().not_after.to_datetime(), sans, common_name })
}

/// A certificate's DNS (lowercase) and IP subject alternative names.
pub(crate) fn sans(cert: &X509Certificate<'_>) -> BTreeSet<San> {
    let Ok(Some(ext)) = cert.subject_alternative_name() else { return BTreeSet::new() };
    ext.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(San::Dns(dns.to_ascii_lowercase())),
            GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(San::Ip),
            _ => None,
        })
        .collect()
}

pub(crate) fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(v4.into());
    }
    <[u8; 16]>::try_from(bytes).ok().map(Into::into)
}
