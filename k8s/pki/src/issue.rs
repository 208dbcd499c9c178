//! Making keys and certificates.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

use crate::clock::Clock;
use crate::names::San;
use crate::{CertPair, PkiError};

/// Lifetime of the cluster CA.
pub(crate) const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Lifetime of the serving and admin certificates.
pub(crate) const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// A new ECDSA P-256 key (ring).
pub(crate) fn new_key(what: &'static str) -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::generate(what))
}

/// A new self-signed cluster CA: its certificate PEM and key.
pub(crate) fn new_ca(clock: &Clock) -> Result<(String, KeyPair), PkiError> {
    let key = new_key("the CA key")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("lichen-ca@{}", clock.now_secs()));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (params.not_before, params.not_after) = clock.window(CA_VALIDITY);
    let cert = params.self_signed(&key).map_err(PkiError::generate("the CA certificate"))?;
    Ok((cert.pem(), key))
}

/// What a leaf certificate says about its holder.
pub(crate) struct LeafSpec<'a> {
    pub(crate) common_name: &'a str,
    pub(crate) organizations: &'a [&'a str],
    pub(crate) sans: &'a [San],
    pub(crate) usage: ExtendedKeyUsagePurpose,
    pub(crate) validity: Duration,
}

/// A new key and a certificate for it signed by the CA.
pub(crate) fn new_leaf(
    spec: &LeafSpec<'_>,
    issuer: &Issuer<'_, &KeyPair>,
    clock: &Clock,
) -> Result<CertPair, PkiError> {
    let key = new_key("a certificate key")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for org in spec.organizations {
        dn.push(DnType::OrganizationName, *org);
    }
    dn.push(DnType::CommonName, spec.common_name);
    params.distinguished_name = dn;
    params.subject_alt_names = spec.sans.iter().map(San::to_rcgen).collect::<Result<_, _>>()?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![spec.usage.clone()];
    params.use_authority_key_identifier_extension = true;
    (params.not_before, params.not_after) = clock.window(spec.validity);
    let cert = params.signed_by(&key, issuer).map_err(PkiError::generate("a certificate"))?;
    Ok(CertPair { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}
