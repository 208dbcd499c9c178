//! ES256 JSON Web Tokens as upstream's bound service-account tokens
//! (`pkg/serviceaccount/claims.go`, `jwt.go`): the claims, signing with the
//! service-account key and verification of signature, algorithm, issuer,
//! time (60 s leeway) and audience. No I/O.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};
use serde::{Deserialize, Serialize};

/// The clock skew tolerated on `exp`, `nbf` and `iat` (go-jose's
/// `DefaultLeeway`, which upstream uses).
pub const LEEWAY_SECONDS: i64 = 60;

/// DER of a P-256 `SubjectPublicKeyInfo` up to the key: SEQUENCE,
/// AlgorithmIdentifier (id-ecPublicKey, prime256v1), BIT STRING header. The
/// uncompressed point (65 bytes) follows.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
    0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const P256_POINT_LEN: usize = 65;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("service-account signing key: bad PKCS#8 PEM")]
    PrivatePem(#[source] rustls::pki_types::pem::Error),
    #[error("service-account signing key: not an ECDSA P-256 key ({0})")]
    NotP256(String),
    #[error("service-account public key: bad PEM")]
    PublicPem(#[source] rustls::pki_types::pem::Error),
    #[error("service-account public key: not an ECDSA P-256 key")]
    PublicNotP256,
    #[error("service-account public key does not belong to the signing key")]
    Mismatch,
}

/// Why a token is refused. Every variant is 401 at the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("unsupported signing algorithm {0:?}")]
    Algorithm(String),
    #[error("invalid signature")]
    Signature,
    #[error("token issuer {0:?} is not this server")]
    Issuer(String),
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issued in the future")]
    IssuedInFuture,
    #[error("token audiences {token:?} are invalid for the target audiences {server:?}")]
    Audience { token: Vec<String>, server: Vec<String> },
}

#[derive(Debug, thiserror::Error)]
#[error("signing a service-account token")]
pub struct SignError;

/// `{name, uid}` of an object a token names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ref {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// The `kubernetes.io` private claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Private {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
    #[serde(default)]
    pub serviceaccount: Ref,
    /// When a token whose lifetime was extended should have expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnafter: Option<i64>,
}

/// The claims of a bound token, in upstream's (alphabetical) order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
    pub iss: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: Private,
    #[serde(default)]
    pub nbf: i64,
    pub sub: String,
}

/// RFC 7519 allows `aud` to be one string.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Aud::deserialize(d)? {
        Aud::One(s) => vec![s],
        Aud::Many(v) => v,
    })
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    kid: String,
}

/// The service-account key: signs new tokens and verifies presented ones.
pub struct Keys {
    signing: EcdsaKeyPair,
    /// The uncompressed public point.
    public: Vec<u8>,
    /// DER `SubjectPublicKeyInfo` of the public key.
    spki: Vec<u8>,
    kid: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("Keys").field("kid", &self.kid).finish()
    }
}

impl Keys {
    /// Loads the PKCS#8 private key; `public_pem` (SPKI), when not empty,
    /// must be its public half.
    pub fn from_pem(private_pem: &str, public_pem: &str) -> Result<Self, KeyError> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(private_pem.as_bytes()).map_err(KeyError::PrivatePem)?;
        let rng = SystemRandom::new();
        let signing = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| KeyError::NotP256(e.to_string()))?;
        let public = signing.public_key().as_ref().to_vec();
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(&public);
        if !public_pem.trim().is_empty() {
            let given = SubjectPublicKeyInfoDer::from_pem_slice(public_pem.as_bytes())
                .map_err(KeyError::PublicPem)?;
            let given = given.as_ref();
            if given.len() != P256_SPKI_PREFIX.len() + P256_POINT_LEN || !given.starts_with(&P256_SPKI_PREFIX)
            {
                return Err(KeyError::PublicNotP256);
            }
            if given != spki.as_slice() {
                return Err(KeyError::Mismatch);
            }
        }
        let kid = key_id(&spki);
        Ok(Keys { signing, public, spki, kid, rng })
    }

    /// Upstream's key id: base64url(SHA-256(DER SPKI)).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public point's coordinates (for the JWKS).
    pub fn coordinates(&self) -> (&[u8], &[u8]) {
        (&self.public[1..33], &self.public[33..65])
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The JWS compact form of `claims`, header `{"alg":"ES256","kid":…}`.
    pub fn sign(&self, claims: &Claims) -> Result<String, SignError> {
        let header = Header { alg: "ES256".into(), kid: self.kid.clone() };
        let header = serde_json::to_vec(&header).map_err(|_| SignError)?;
        let payload = serde_json::to_vec(claims).map_err(|_| SignError)?;
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
        let sig = self.signing.sign(&self.rng, input.as_bytes()).map_err(|_| SignError)?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
    }

    /// The claims of `token` if it is signed by this key with ES256, issued
    /// by `issuer`, valid at `now` (unix seconds, with [`LEEWAY_SECONDS`])
    /// and meant for one of `audiences`.
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        audiences: &[String],
        now: i64,
    ) -> Result<Claims, VerifyError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::Malformed("not three dot-separated parts"));
        };
        let header: Header = decode_json(h).ok_or(VerifyError::Malformed("header"))?;
        // Only the algorithm of our key: never `none`, never HS256 keyed
        // with the public key.
        if header.alg != "ES256" {
            return Err(VerifyError::Algorithm(header.alg));
        }
        let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| VerifyError::Malformed("signature encoding"))?;
        let input = &token[..h.len() + 1 + p.len()];
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &self.public)
            .verify(input.as_bytes(), &sig)
            .map_err(|_| VerifyError::Signature)?;
        let claims: Claims = decode_json(p).ok_or(VerifyError::Malformed("claims"))?;
        if claims.iss != issuer {
            return Err(VerifyError::Issuer(claims.iss));
        }
        if claims.nbf != 0 && now + LEEWAY_SECONDS < claims.nbf {
            return Err(VerifyError::NotYetValid);
        }
        if claims.exp == 0 || now - LEEWAY_SECONDS > claims.exp {
            return Err(VerifyError::Expired);
        }
        if claims.iat != 0 && now + LEEWAY_SECONDS < claims.iat {
            return Err(VerifyError::IssuedInFuture);
        }
        if !claims.aud.iter().any(|a| audiences.contains(a)) {
            return Err(VerifyError::Audience { token: claims.aud, server: audiences.to_vec() });
        }
        Ok(claims)
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn key_id(spki: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, spki))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://kubernetes.default.svc.cluster.local";
    const NOW: i64 = 1_800_000_000;

    fn keys() -> Keys {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pem = pem_of("PRIVATE KEY", pkcs8.as_ref());
        Keys::from_pem(&pem, "").unwrap()
    }

    fn pem_of(label: &str, der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    }

    fn claims() -> Claims {
        Claims {
            aud: vec![ISS.into()],
            exp: NOW + 3600,
            iat: NOW,
            iss: ISS.into(),
            jti: "0b5f3c8e-1111-4222-8333-444455556666".into(),
            kubernetes: Private {
                namespace: "default".into(),
                serviceaccount: Ref { name: "sa1".into(), uid: "u-sa".into() },
                pod: Some(Ref { name: "p".into(), uid: "u-p".into() }),
                ..Private::default()
            },
            nbf: NOW,
            sub: "system:serviceaccount:default:sa1".into(),
        }
    }

    fn auds() -> Vec<String> {
        vec![ISS.to_string(), "k3s".to_string()]
    }

    /// Replaces one part (0 header, 1 payload, 2 signature) of a token.
    fn with_part(token: &str, i: usize, part: &str) -> String {
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[i] = part;
        parts.join(".")
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let k = keys();
        let token = k.sign(&claims()).unwrap();
        let header: serde_json::Value = decode_json(token.split('.').next().unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "ES256", "kid": k.kid()}));
        assert_eq!(k.verify(&token, ISS, &auds(), NOW + 10).unwrap(), claims());
        // Upstream's layout of the private claim.
        let payload: serde_json::Value = decode_json(token.split('.').nth(1).unwrap()).unwrap();
        assert_eq!(
            payload["kubernetes.io"]["serviceaccount"],
            serde_json::json!({"name": "sa1", "uid": "u-sa"})
        );
        assert_eq!(payload["kubernetes.io"]["pod"]["name"], "p");
        assert!(payload["kubernetes.io"].get("secret").is_none());
        assert_eq!(payload["aud"], serde_json::json!([ISS]));
    }

    #[test]
    fn kid_is_sha256_of_the_spki() {
        let k = keys();
        assert_eq!(k.spki_der().len(), 91);
        let want = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, k.spki_der()));
        assert_eq!(k.kid(), want);
        assert_eq!(k.kid().len(), 43);
        let (x, y) = k.coordinates();
        assert_eq!((x.len(), y.len()), (32, 32));
    }

    #[test]
    fn public_key_must_match_the_private_key() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pem = pem_of("PRIVATE KEY", pkcs8.as_ref());
        let k = Keys::from_pem(&pem, "").unwrap();
        let own = pem_of("PUBLIC KEY", k.spki_der());
        assert!(Keys::from_pem(&pem, &own).is_ok());
        let other = pem_of("PUBLIC KEY", keys().spki_der());
        assert!(matches!(Keys::from_pem(&pem, &other), Err(KeyError::Mismatch)));
        assert!(matches!(Keys::from_pem("garbage", ""), Err(KeyError::PrivatePem(_))));
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let k = keys();
        let token = k.sign(&claims()).unwrap();
        let mut evil = claims();
        evil.kubernetes.serviceaccount.name = "admin".into();
        evil.sub = "system:serviceaccount:kube-system:admin".into();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&evil).unwrap());
        assert_eq!(k.verify(&with_part(&token, 1, &payload), ISS, &auds(), NOW), Err(VerifyError::Signature));
        let sig = token.rsplit('.').next().unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
        bytes[10] ^= 1;
        let flipped = with_part(&token, 2, &URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(k.verify(&flipped, ISS, &auds(), NOW), Err(VerifyError::Signature));
        // Another key's signature.
        let foreign = keys().sign(&claims()).unwrap();
        assert_eq!(k.verify(&foreign, ISS, &auds(), NOW), Err(VerifyError::Signature));
        assert!(matches!(k.verify("a.b", ISS, &auds(), NOW), Err(VerifyError::Malformed(_))));
        assert!(matches!(k.verify(&format!("{token}.x"), ISS, &auds(), NOW), Err(VerifyError::Malformed(_))));
        assert!(matches!(k.verify("", ISS, &auds(), NOW), Err(VerifyError::Malformed(_))));
    }

    #[test]
    fn other_algorithms_and_none_are_refused() {
        let k = keys();
        let token = k.sign(&claims()).unwrap();
        for alg in ["none", "HS256", "RS256", "ES384", "es256"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, k.kid()));
            let forged = with_part(&token, 0, &header);
            assert_eq!(
                k.verify(&forged, ISS, &auds(), NOW),
                Err(VerifyError::Algorithm(alg.into())),
                "{alg}"
            );
            let unsigned = with_part(&forged, 2, "");
            assert_eq!(
                k.verify(&unsigned, ISS, &auds(), NOW),
                Err(VerifyError::Algorithm(alg.into())),
                "{alg}"
            );
        }
    }

    #[test]
    fn time_is_checked_with_a_minute_of_leeway() {
        let k = keys();
        let token = k.sign(&claims()).unwrap();
        let exp = NOW + 3600;
        assert!(k.verify(&token, ISS, &auds(), exp + LEEWAY_SECONDS).is_ok());
        assert_eq!(k.verify(&token, ISS, &auds(), exp + LEEWAY_SECONDS + 1), Err(VerifyError::Expired));
        assert!(k.verify(&token, ISS, &auds(), NOW - LEEWAY_SECONDS).is_ok());
        assert_eq!(k.verify(&token, ISS, &auds(), NOW - LEEWAY_SECONDS - 1), Err(VerifyError::NotYetValid));
        let mut future = claims();
        future.nbf = 0;
        future.iat = NOW + 600;
        let token = k.sign(&future).unwrap();
        assert_eq!(k.verify(&token, ISS, &auds(), NOW), Err(VerifyError::IssuedInFuture));
        let mut no_exp = claims();
        no_exp.exp = 0;
        assert_eq!(k.verify(&k.sign(&no_exp).unwrap(), ISS, &auds(), NOW), Err(VerifyError::Expired));
    }

    #[test]
    fn issuer_and_audience_must_be_ours() {
        let k = keys();
        let token = k.sign(&claims()).unwrap();
        assert!(matches!(
            k.verify(&token, "https://elsewhere", &auds(), NOW),
            Err(VerifyError::Issuer(i)) if i == ISS
        ));
        let err = k.verify(&token, ISS, &["vault".to_string()], NOW).unwrap_err();
        assert!(matches!(err, VerifyError::Audience { .. }), "{err}");
        let mut vault = claims();
        vault.aud = vec!["vault".into(), "k3s".into()];
        assert!(
            k.verify(&k.sign(&vault).unwrap(), ISS, &auds(), NOW).is_ok(),
            "one shared audience is enough"
        );
        // A single-string audience (RFC 7519) is read too.
        let mut payload: serde_json::Value = serde_json::to_value(claims()).unwrap();
        payload["aud"] = serde_json::json!(ISS);
        let c: Claims = serde_json::from_value(payload).unwrap();
        assert_eq!(c.aud, [ISS]);
    }
}
