//! Signing PKCS#10 certificate requests (the CertificateSigningRequest API).
//!
//! [`CertificateRequest::parse`] reads a PEM request and checks its
//! self-signature (proof that the requester holds the key); [`Pki::sign_csr`]
//! issues a leaf from the cluster CA for it. Only the subject's common name
//! and organizations and the DNS and IP subject alternative names are
//! carried over; the requested extensions are ignored (the usage comes from
//! the caller, as upstream's signer takes it from `spec.usages`).

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose,
    PublicKeyData, SanType, SerialNumber, SignatureAlgorithm,
};
use time::OffsetDateTime;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_PKCS1_SHA1WITHRSA, OID_SHA1_WITH_RSA, OID_SIG_ED25519,
};
use x509_parser::pem::parse_x509_pem;
use x509_parser::prelude::FromDer;

use crate::clock::Clock;
use crate::{Pki, PkiError, inspect};

/// What a certificate signed for a request may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Usage {
    /// TLS client authentication (`client auth`).
    ClientAuth,
    /// TLS server authentication (`server auth`).
    ServerAuth,
}

/// The algorithm of the key a request certifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    Rsa,
    EcdsaP256,
    EcdsaP384,
    Ed25519,
}

/// A PKCS#10 request whose self-signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRequest {
    /// The subject's common name ("" when it has none).
    pub common_name: String,
    /// The subject's organizations, in order.
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    /// `rfc822Name` subject alternative names.
    pub emails: Vec<String>,
    pub uris: Vec<String>,
    /// Any other kind of subject alternative name (never signed).
    pub other_names: usize,
    pub key_algorithm: KeyAlgorithm,
    /// The subjectPublicKey bits.
    key: Vec<u8>,
    /// The subject, exact DER.
    subject: Vec<u8>,
}

fn bad(problem: impl Into<String>) -> PkiError {
    PkiError::Csr { problem: problem.into() }
}

impl CertificateRequest {
    /// Parses one PEM `CERTIFICATE REQUEST` block and verifies its signature.
    pub fn parse(pem: &[u8]) -> Result<CertificateRequest, PkiError> {
        let (_, block) = parse_x509_pem(pem).map_err(|_| bad("not a PEM block"))?;
        if block.label != "CERTIFICATE REQUEST" && block.label != "NEW CERTIFICATE REQUEST" {
            return Err(bad(format!("holds a {:?} PEM block, not a CERTIFICATE REQUEST", block.label)));
        }
        let (_, csr) = X509CertificationRequest::from_der(&block.contents)
            .map_err(|e| bad(format!("not a PKCS#10 request ({e})")))?;
        let sig = &csr.signature_algorithm.algorithm;
        if *sig == OID_PKCS1_SHA1WITHRSA || *sig == OID_SHA1_WITH_RSA {
            return Err(bad("signed with SHA-1; sign it with SHA-256 or better"));
        }
        csr.verify_signature().map_err(|e| bad(format!("signature does not verify ({e})")))?;

        let info = &csr.certification_request_info;
        let text = |what: &str, v: &x509_parser::x509::AttributeTypeAndValue<'_>| {
            v.as_str().map(str::to_owned).map_err(|_| bad(format!("subject {what} is not a string")))
        };
        let mut cns = info.subject.iter_common_name();
        let common_name = cns.next().map(|cn| text("common name", cn)).transpose()?.unwrap_or_default();
        if cns.next().is_some() {
            return Err(bad("subject has more than one common name"));
        }
        let organizations = info
            .subject
            .iter_organization()
            .map(|o| text("organization", o))
            .collect::<Result<Vec<_>, _>>()?;
        let key_algorithm = key_algorithm(&info.subject_pki)?;
        let mut req = CertificateRequest {
            common_name,
            organizations,
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            emails: Vec::new(),
            uris: Vec::new(),
            other_names: 0,
            key_algorithm,
            key: info.subject_pki.subject_public_key.data.to_vec(),
            subject: info.subject.as_raw().to_vec(),
        };
        for ext in csr.requested_extensions().into_iter().flatten() {
            let ParsedExtension::SubjectAlternativeName(san) = ext else { continue };
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(d) => req.dns_names.push((*d).to_owned()),
                    GeneralName::IPAddress(b) => match inspect::ip_from_bytes(b) {
                        Some(ip) => req.ip_addresses.push(ip),
                        None => return Err(bad("an IP subject alternative name is neither 4 nor 16 bytes")),
                    },
                    GeneralName::RFC822Name(e) => req.emails.push((*e).to_owned()),
                    GeneralName::URI(u) => req.uris.push((*u).to_owned()),
                    _ => req.other_names += 1,
                }
            }
        }
        Ok(req)
    }
}

fn key_algorithm(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Result<KeyAlgorithm, PkiError> {
    let alg = &spki.algorithm;
    if alg.algorithm == OID_PKCS1_RSAENCRYPTION {
        return Ok(KeyAlgorithm::Rsa);
    }
    if alg.algorithm == OID_SIG_ED25519 {
        return Ok(KeyAlgorithm::Ed25519);
    }
    if alg.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = alg.parameters.as_ref().and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 => Ok(KeyAlgorithm::EcdsaP256),
            Some(c) if c == OID_NIST_EC_P384 => Ok(KeyAlgorithm::EcdsaP384),
            _ => Err(bad("elliptic curve key on a curve other than P-256 or P-384")),
        };
    }
    Err(bad(format!("unsupported key algorithm {}", alg.algorithm)))
}

/// The request's public key, as rcgen writes it into the certificate.
impl PublicKeyData for CertificateRequest {
    fn der_bytes(&self) -> &[u8] {
        &self.key
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        // Only the key's algorithm identifier is taken from this.
        match self.key_algorithm {
            KeyAlgorithm::Rsa => &rcgen::PKCS_RSA_SHA256,
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }
}

impl Pki {
    /// Signs the PEM request `csr_pem` with the cluster CA for `usage`,
    /// valid for `validity` from `now` (backdated and floored as the
    /// [`crate::clock`] rules say) but never past the CA's own expiry.
    /// Returns the certificate as PEM: the chain up to, not including, the
    /// CA, which here is the leaf alone.
    ///
    /// Refused: a broken signature, no common name, email, URI or other
    /// subject alternative names, zero validity.
    pub fn sign_csr(
        &self,
        csr_pem: &[u8],
        usage: Usage,
        validity: Duration,
        now: SystemTime,
    ) -> Result<String, PkiError> {
        let req = CertificateRequest::parse(csr_pem)?;
        if req.common_name.is_empty() {
            return Err(bad("subject has no common name"));
        }
        if !req.emails.is_empty() || !req.uris.is_empty() || req.other_names > 0 {
            return Err(bad("only DNS and IP subject alternative names can be signed"));
        }
        if validity.is_zero() {
            return Err(PkiError::InvalidRequest("zero validity"));
        }
        let ca = inspect::parse(&self.ca_der)
            .map_err(|problem| PkiError::Identity { path: self.dir.join(crate::file::CA_CERT), problem })?;
        let ca_not_after = ca.validity().not_after.to_datetime();
        let issuer = Issuer::from_ca_cert_der(&self.ca_der.as_slice().into(), &self.ca_key)
            .map_err(PkiError::generate("a certificate for a request"))?;

        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        // Replaced by the request's subject below (see `subject`).
        dn.push(DnType::CommonName, "lichen-csr-subject-placeholder");
        params.distinguished_name = dn;
        for name in &req.dns_names {
            let dns = name.as_str().try_into().map_err(|_| bad(format!("DNS name {name:?} is not ASCII")))?;
            params.subject_alt_names.push(SanType::DnsName(dns));
        }
        params.subject_alt_names.extend(req.ip_addresses.iter().map(|ip| SanType::IpAddress(*ip)));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if req.key_algorithm == KeyAlgorithm::Rsa {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        params.extended_key_usages = vec![match usage {
            Usage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            Usage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
        }];
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        let (not_before, not_after) = Clock::new(now, self.clock_floor).window(validity);
        params.not_before = not_before;
        params.not_after = cap(not_after, ca_not_after);
        let cert =
            params.signed_by(&req, &issuer).map_err(PkiError::generate("a certificate for a request"))?;
        let placeholder = inspect::parse(cert.der())
            .map_err(|_| PkiError::Csr {
                problem: "internal error: generated certificate is malformed".into(),
            })?
            .subject()
            .as_raw()
            .to_vec();
        let der = subject::replace(cert.der(), &placeholder, &req.subject, &self.ca_key)?;
        Ok(pem(&der))
    }
}

fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn cap(not_after: OffsetDateTime, limit: OffsetDateTime) -> OffsetDateTime {
    not_after.min(limit)
}

/// 16 random bytes, positive: the same key may be certified many times.
fn random_serial() -> Result<SerialNumber, PkiError> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| PkiError::Random)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

mod subject;

#[cfg(test)]
mod tests;
