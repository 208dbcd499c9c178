use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rcgen::{CertificateParams, DnType, KeyPair, SanType};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;
use crate::{PkiOptions, clock};

const DAY: u64 = 86_400;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(clock::DEFAULT_CLOCK_FLOOR_UNIX_SECS + 100 * DAY)
}

fn pki(dir: &std::path::Path) -> Pki {
    let mut opts = PkiOptions::new(dir.join("pki"), "node1");
    opts.now = now();
    Pki::load_or_create(&opts).unwrap().0
}

fn csr(key: &KeyPair, cn: &str, orgs: &[&str], sans: Vec<SanType>) -> String {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    // rcgen keeps one value per type: a second O goes in under a custom
    // type with organizationName's OID.
    for (i, o) in orgs.iter().enumerate() {
        let ty = if i == 0 { DnType::OrganizationName } else { DnType::CustomDnType(vec![2, 5, 4, 10]) };
        params.distinguished_name.push(ty, *o);
    }
    assert!(orgs.len() <= 2, "at most two organizations");
    if !cn.is_empty() {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params.subject_alt_names = sans;
    params.serialize_request(key).unwrap().pem().unwrap()
}

fn der(pem: &str) -> Vec<u8> {
    inspect::cert_der(pem).unwrap()
}

fn key(alg: &'static SignatureAlgorithm) -> KeyPair {
    KeyPair::generate_for(alg).unwrap()
}

fn rsa_key() -> KeyPair {
    KeyPair::from_pem(include_str!("../../tests/data/rsa2048.key")).unwrap()
}

/// Checks that `cert_pem` was issued by the cluster CA for `key` and returns
/// (CN, O, DNS, IPs, client auth, server auth, not_before, not_after).
struct Issued {
    cn: String,
    orgs: Vec<String>,
    dns: Vec<String>,
    ips: Vec<Vec<u8>>,
    client_auth: bool,
    server_auth: bool,
    key_encipherment: bool,
    not_before: i64,
    not_after: i64,
}

fn check(cert_pem: &str, pki: &Pki, key: &KeyPair) -> Issued {
    let (leaf_der, ca_der) = (der(cert_pem), der(&pki.ca_cert_pem));
    let leaf = X509Certificate::from_der(&leaf_der).unwrap().1;
    let ca = X509Certificate::from_der(&ca_der).unwrap().1;
    assert_eq!(leaf.issuer(), ca.subject());
    leaf.verify_signature(Some(ca.public_key())).expect("chains to the cluster CA");
    assert_eq!(leaf.public_key().raw, key.subject_public_key_info(), "certifies the request's key");
    assert!(!leaf.basic_constraints().unwrap().unwrap().value.ca, "not a CA");
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    let ku = leaf.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature());
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Some(san) = leaf.subject_alternative_name().unwrap() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => dns.push((*d).to_owned()),
                GeneralName::IPAddress(b) => ips.push(b.to_vec()),
                other => panic!("unexpected name {other:?}"),
            }
        }
    }
    let s = |v: &x509_parser::x509::AttributeTypeAndValue<'_>| v.as_str().unwrap().to_owned();
    Issued {
        cn: leaf.subject().iter_common_name().map(s).collect(),
        orgs: leaf.subject().iter_organization().map(s).collect(),
        dns,
        ips,
        client_auth: eku.client_auth,
        server_auth: eku.server_auth,
        key_encipherment: ku.key_encipherment(),
        not_before: leaf.validity().not_before.timestamp(),
        not_after: leaf.validity().not_after.timestamp(),
    }
}

fn secs(t: SystemTime) -> i64 {
    i64::try_from(t.duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

#[test]
fn a_p256_request_is_signed_with_its_subject_and_chains_to_the_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(tmp.path());
    let k = key(&rcgen::PKCS_ECDSA_P256_SHA256);
    let req = csr(&k, "system:node:n1", &["system:nodes"], vec![]);
    let day = Duration::from_secs(DAY);
    let pem = pki.sign_csr(req.as_bytes(), Usage::ClientAuth, day, now()).unwrap();
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 1);
    let c = check(&pem, &pki, &k);
    assert_eq!(c.cn, "system:node:n1");
    assert_eq!(c.orgs, ["system:nodes"]);
    assert!(c.client_auth && !c.server_auth);
    assert!(!c.key_encipherment, "an ECDSA key cannot encipher");
    assert_eq!(c.not_before, secs(now()) - 3600, "backdated an hour as the other leaves");
    assert_eq!(c.not_after, secs(now()) + 86_400);
}

#[test]
fn serving_requests_keep_dns_and_ip_names() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(tmp.path());
    let k = key(&rcgen::PKCS_ECDSA_P256_SHA256);
    let sans = vec![
        SanType::DnsName("n1.example.com".try_into().unwrap()),
        SanType::IpAddress("10.0.0.7".parse().unwrap()),
    ];
    let req = csr(&k, "system:node:n1", &["system:nodes"], sans);
    let parsed = CertificateRequest::parse(req.as_bytes()).unwrap();
    assert_eq!(parsed.dns_names, ["n1.example.com"]);
    assert_eq!(parsed.ip_addresses, ["10.0.0.7".parse::<IpAddr>().unwrap()]);
    let pem = pki.sign_csr(req.as_bytes(), Usage::ServerAuth, Duration::from_secs(DAY), now()).unwrap();
    let c = check(&pem, &pki, &k);
    assert!(c.server_auth && !c.client_auth);
    assert_eq!(c.dns, ["n1.example.com"]);
    assert_eq!(c.ips, [vec![10, 0, 0, 7]]);
}

#[test]
fn a_tampered_request_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(tmp.path());
    let k = key(&rcgen::PKCS_ECDSA_P256_SHA256);
    let req = csr(&k, "system:node:n1", &["system:nodes"], vec![]);
    let (_, block) = parse_x509_pem(req.as_bytes()).unwrap();
    let mut der = block.contents.clone();
    // Rename the subject: the request still parses, its signature no longer holds.
    let at = der.windows(2).position(|w| w == b"n1").unwrap();
    der[at + 1] = b'2';
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    let tampered = format!("-----BEGIN CERTIFICATE REQUEST-----\n{b64}\n-----END CERTIFICATE REQUEST-----\n");
    let err =
        pki.sign_csr(tampered.as_bytes(), Usage::ClientAuth, Duration::from_secs(DAY), now()).unwrap_err();
    assert!(err.to_string().contains("signature does not verify"), "{err}");
    assert!(CertificateRequest::parse(tampered.as_bytes()).is_err());
}

#[test]
fn p384_ed25519_and_rsa_requests_are_signed() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(tmp.path());
    for (k, alg) in [
        (key(&rcgen::PKCS_ECDSA_P384_SHA384), KeyAlgorithm::EcdsaP384),
        (key(&rcgen::PKCS_ED25519), KeyAlgorithm::Ed25519),
        (rsa_key(), KeyAlgorithm::Rsa),
    ] {
        let req = csr(&k, "jane", &["dev", "ops"], vec![]);
        assert_eq!(CertificateRequest::parse(req.as_bytes()).unwrap().key_algorithm, alg);
        let pem = pki.sign_csr(req.as_bytes(), Usage::ClientAuth, Duration::from_secs(DAY), now()).unwrap();
        let c = check(&pem, &pki, &k);
        assert_eq!((c.cn.as_str(), c.orgs.as_slice()), ("jane", &["dev".to_owned(), "ops".to_owned()][..]));
        assert_eq!(c.key_encipherment, alg == KeyAlgorithm::Rsa, "{alg:?}");
    }
}

#[test]
fn validity_stops_at_the_ca_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(tmp.path());
    let k = key(&rcgen::PKCS_ECDSA_P256_SHA256);
    let req = csr(&k, "jane", &[], vec![]);
    let forever = Duration::from_secs(100 * 365 * DAY);
    let pem = pki.sign_csr(req.as_bytes(), Usage::ClientAuth, forever, now()).unwrap();
    let ca_der = der(&pki.ca_cert_pem);
    let ca = X509Certificate::from_der(&ca_der).unwrap().1;
    assert_eq!(check(&pem, &pki, &k).not_after, ca.validity().not_after.timestamp());
}

#[test]
fn requests_that_cannot_be_signed_say_why() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(tmp.path());
    let k = key(&rcgen::PKCS_ECDSA_P256_SHA256);
    let sign = |pem: &str| {
        pki.sign_csr(pem.as_bytes(), Usage::ClientAuth, Duration::from_secs(DAY), now())
            .unwrap_err()
            .to_string()
    };
    assert!(sign(&csr(&k, "", &["dev"], vec![])).contains("no common name"));
    let email = vec![SanType::Rfc822Name("a@example.com".try_into().unwrap())];
    assert!(sign(&csr(&k, "jane", &[], email)).contains("only DNS and IP"));
    let uri = vec![SanType::URI("spiffe://x/y".try_into().unwrap())];
    let parsed = CertificateRequest::parse(csr(&k, "jane", &[], uri.clone()).as_bytes()).unwrap();
    assert_eq!(parsed.uris, ["spiffe://x/y"]);
    assert!(sign(&csr(&k, "jane", &[], uri)).contains("only DNS and IP"));
    assert!(sign(&pki.ca_cert_pem).contains("not a CERTIFICATE REQUEST"), "{}", sign(&pki.ca_cert_pem));
    assert!(sign("hello").contains("not a PEM block"));
}
