//! The cluster PKI of `lichen server`: a CA, the API server's serving certificate,
//! the admin client certificate and kubeconfig, and the service-account signing key.
//!
//! [`Pki::load_or_create`] makes what is missing on first start and reuses it
//! afterwards. It never replaces the CA or the service-account key (that would
//! invalidate every kubeconfig, join token and token); it renews the serving and
//! admin certificates when they near expiry, when the wanted names change, or when
//! they are damaged. All keys are ECDSA P-256 made with rcgen's ring backend.
//! Devices whose clock starts in 1970 are handled as [`clock`] describes.
//! [`Pki::sign_csr`] signs PKCS#10 requests (the CertificateSigningRequest API).
//! [`ClusterSecrets::load_or_create`] makes only the cluster-wide part (CA,
//! service-account key, admin credentials, a join token) for fleet images.
//!
//! This crate only makes and checks files in one directory. It must not serve TLS,
//! sign tokens or talk to the network; those belong to the API server.

#![forbid(unsafe_code)]

pub mod clock;
mod cluster;
mod error;
mod files;
mod inspect;
mod issue;
pub mod join;
mod kubeconfig;
mod names;
mod report;
mod sign;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{ExtendedKeyUsagePurpose, Issuer, KeyPair};

use crate::clock::Clock;
pub use crate::cluster::{ClusterSecrets, ClusterSecretsOptions, TOKEN_ID};
pub use crate::error::PkiError;
use crate::files::{PUBLIC, SECRET};
use crate::issue::{LEAF_VALIDITY, LeafSpec};
use crate::names::San;
pub use crate::report::{Item, Outcome, Reason, Report};
pub use crate::sign::{CertificateRequest, KeyAlgorithm, Usage};

/// File names inside [`PkiOptions::dir`].
pub mod file {
    /// The CA certificate (PEM).
    pub const CA_CERT: &str = "ca.crt";
    /// The CA private key (PKCS#8 PEM, mode 0600).
    pub const CA_KEY: &str = "ca.key";
    /// The API server's serving certificate.
    pub const SERVING_CERT: &str = "server.crt";
    /// The API server's serving key.
    pub const SERVING_KEY: &str = "server.key";
    /// The admin client certificate (CN system:admin, O system:masters).
    pub const ADMIN_CERT: &str = "admin.crt";
    /// The admin client key.
    pub const ADMIN_KEY: &str = "admin.key";
    /// The service-account signing key (ES256, PKCS#8 PEM).
    pub const SA_KEY: &str = "sa.key";
    /// The service-account public key (SPKI PEM).
    pub const SA_PUB: &str = "sa.pub";
    /// A kubeconfig for the admin user.
    pub const ADMIN_KUBECONFIG: &str = "admin.kubeconfig";
    /// The join token, `K10<ca hash>::server:<secret>` and a newline (mode
    /// 0600); written by [`crate::ClusterSecrets::load_or_create`].
    pub const TOKEN: &str = "token";
}

/// The user name in the admin kubeconfig written by [`Pki::load_or_create`].
pub const ADMIN_USER: &str = "admin";

/// What [`Pki::load_or_create`] needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiOptions {
    /// Where the files live, e.g. `<data-dir>/pki`. Created with mode 0700.
    pub dir: PathBuf,
    /// The cluster's name in the kubeconfig.
    pub cluster_name: String,
    /// This host's name: a serving-certificate name.
    pub hostname: String,
    /// This node's addresses: serving-certificate names.
    pub node_ips: Vec<IpAddr>,
    /// `--tls-san` values, each an IP address or a DNS name.
    pub extra_sans: Vec<String>,
    /// The first address of the service CIDR (the `kubernetes` service).
    pub service_ip: IpAddr,
    /// The API server URL written into the admin kubeconfig.
    pub server_url: String,
    /// The time to issue at. Injected so tests and bad clocks can be handled.
    pub now: SystemTime,
    /// A time known to have passed (the build time); see [`clock`].
    pub clock_floor: SystemTime,
}

impl PkiOptions {
    /// Options with lichen's defaults: cluster `lichen`, service IP 10.43.0.1,
    /// server `https://127.0.0.1:6443`, the system clock and the default floor.
    pub fn new(dir: impl Into<PathBuf>, hostname: impl Into<String>) -> Self {
        PkiOptions {
            dir: dir.into(),
            cluster_name: "lichen".to_owned(),
            hostname: hostname.into(),
            node_ips: Vec::new(),
            extra_sans: Vec::new(),
            service_ip: IpAddr::V4(Ipv4Addr::new(10, 43, 0, 1)),
            server_url: "https://127.0.0.1:6443".to_owned(),
            now: SystemTime::now(),
            clock_floor: clock::default_clock_floor(),
        }
    }
}

/// A certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct CertPair {
    /// The certificate.
    pub cert_pem: String,
    /// The PKCS#8 private key.
    pub key_pem: String,
}

impl fmt::Debug for CertPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertPair").field("cert_pem", &self.cert_pem).field("key_pem", &"<redacted>").finish()
    }
}

/// The loaded cluster PKI.
pub struct Pki {
    /// The CA certificate: clients' trust anchor.
    pub ca_cert_pem: String,
    ca_key: KeyPair,
    ca_der: Vec<u8>,
    /// The API server's certificate and key.
    pub serving: CertPair,
    /// The admin client certificate and key.
    pub admin: CertPair,
    /// The service-account signing key (ES256, P-256, PKCS#8 PEM).
    pub sa_key_pem: String,
    /// The service-account public key (SPKI PEM).
    pub sa_pub_pem: String,
    /// The directory the files are in.
    pub dir: PathBuf,
    clock_floor: SystemTime,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .field("ca_hash", &self.ca_hash())
            .field("serving", &self.serving)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// Loads what exists in `opts.dir`, creates what is missing, and writes the
    /// admin kubeconfig for `opts.server_url`.
    ///
    /// - A CA or service-account key that is damaged, half present or not a
    ///   P-256 key is an error naming the file: it is never replaced.
    /// - The serving and admin certificates are regenerated (same CA) when
    ///   damaged, not signed by the CA, missing a half, expiring within 30 days,
    ///   or (serving) when the wanted names changed. The [`Report`] says which.
    /// - Writes are atomic; keys and the kubeconfig get mode 0600, the directory 0700.
    pub fn load_or_create(opts: &PkiOptions) -> Result<(Pki, Report), PkiError> {
        // Check the names before touching the disk.
        let sans = names::serving_sans(opts)?;
        let clock = Clock::new(opts.now, opts.clock_floor);
        let dir = opts.dir.as_path();
        files::ensure_dir(dir)?;
        let mut report = Report::default();

        let (ca_cert_pem, ca_key, ca_der) = load_or_create_ca(dir, &clock, &mut report)?;
        let (sa_key_pem, sa_pub_pem) = load_or_create_sa(dir, &mut report)?;

        let ca_x509 = inspect::parse(&ca_der).map_err(|problem| identity(dir, file::CA_CERT, problem))?;
        let issuer = Issuer::from_ca_cert_der(&ca_der.as_slice().into(), &ca_key)
            .map_err(|_| identity(dir, file::CA_CERT, "cannot be used as an issuer".to_owned()))?;
        let leaf = Leaves { dir, issuer: &issuer, ca: &ca_x509, clock: &clock };
        let serving = leaf.load_or_renew(
            Item::Serving,
            (file::SERVING_CERT, file::SERVING_KEY),
            &LeafSpec {
                common_name: "kube-apiserver",
                organizations: &[],
                sans: &sans,
                usage: ExtendedKeyUsagePurpose::ServerAuth,
                validity: LEAF_VALIDITY,
            },
            &mut report,
        )?;
        let admin = leaf.load_or_renew(
            Item::Admin,
            (file::ADMIN_CERT, file::ADMIN_KEY),
            &LeafSpec {
                common_name: "system:admin",
                organizations: &["system:masters"],
                sans: &[],
                usage: ExtendedKeyUsagePurpose::ClientAuth,
                validity: LEAF_VALIDITY,
            },
            &mut report,
        )?;
        drop(issuer);

        let pki = Pki {
            ca_cert_pem,
            ca_key,
            ca_der,
            serving,
            admin,
            sa_key_pem,
            sa_pub_pem,
            dir: opts.dir.clone(),
            clock_floor: opts.clock_floor,
        };
        let kubeconfig = pki.admin_kubeconfig(&opts.server_url, &opts.cluster_name, ADMIN_USER);
        let outcome = write_if_changed(&dir.join(file::ADMIN_KUBECONFIG), &kubeconfig, SECRET)?;
        report.push(Item::Kubeconfig, outcome);
        Ok((pki, report))
    }

    /// A client certificate signed by the cluster CA, e.g. CN `system:node:<name>`
    /// with O `system:nodes` for an agent. Follows the [`clock`] rules.
    pub fn issue_client(
        &self,
        common_name: &str,
        organizations: &[&str],
        validity: Duration,
        now: SystemTime,
    ) -> Result<CertPair, PkiError> {
        if common_name.is_empty() {
            return Err(PkiError::InvalidRequest("empty common name"));
        }
        if validity.is_zero() {
            return Err(PkiError::InvalidRequest("zero validity"));
        }
        let issuer = Issuer::from_ca_cert_der(&self.ca_der.as_slice().into(), &self.ca_key)
            .map_err(PkiError::generate("a client certificate"))?;
        let spec = LeafSpec {
            common_name,
            organizations,
            sans: &[],
            usage: ExtendedKeyUsagePurpose::ClientAuth,
            validity,
        };
        issue::new_leaf(&spec, &issuer, &Clock::new(now, self.clock_floor))
    }

    /// A serving certificate signed by the cluster CA for `names` (each an
    /// IP address or DNS name), e.g. an agent's streaming endpoint.
    pub fn issue_serving(
        &self,
        common_name: &str,
        names: &[String],
        validity: Duration,
        now: SystemTime,
    ) -> Result<CertPair, PkiError> {
        if common_name.is_empty() {
            return Err(PkiError::InvalidRequest("empty common name"));
        }
        let sans = names.iter().map(|n| names::parse_san(n)).collect::<Result<Vec<_>, _>>()?;
        let issuer = Issuer::from_ca_cert_der(&self.ca_der.as_slice().into(), &self.ca_key)
            .map_err(PkiError::generate("a serving certificate"))?;
        let spec = LeafSpec {
            common_name,
            organizations: &[],
            sans: &sans,
            usage: ExtendedKeyUsagePurpose::ServerAuth,
            validity,
        };
        issue::new_leaf(&spec, &issuer, &Clock::new(now, self.clock_floor))
    }

    /// A kubeconfig with the CA and the admin certificate and key embedded
    /// (base64 of the PEM), one context named `cluster`, made current.
    pub fn admin_kubeconfig(&self, server_url: &str, cluster: &str, user: &str) -> String {
        kubeconfig::Kubeconfig {
            server: server_url,
            cluster,
            user,
            ca_pem: &self.ca_cert_pem,
            cert_pem: &self.admin.cert_pem,
            key_pem: &self.admin.key_pem,
        }
        .render()
    }

    /// The cluster's own join token (`<dir>/token`, see
    /// [`file::TOKEN`]), made now if missing, as
    /// [`ClusterSecrets::load_or_create`] makes it.
    pub fn load_or_create_token(&self) -> Result<String, PkiError> {
        cluster::load_or_create_token(&self.dir, &self.ca_hash(), &mut Report::default())
    }

    /// Lowercase hex SHA-256 of the CA certificate's DER, for join tokens
    /// (`K10<hash>::<credential>`) that pin the CA.
    pub fn ca_hash(&self) -> String {
        hex_sha256(&self.ca_der)
    }
}

/// Lowercase hex SHA-256.
pub(crate) fn hex_sha256(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn identity(dir: &Path, name: &str, problem: String) -> PkiError {
    PkiError::Identity { path: dir.join(name), problem }
}

/// The CA: reused if both files are good, created if both are absent, else an error.
fn load_or_create_ca(
    dir: &Path,
    clock: &Clock,
    report: &mut Report,
) -> Result<(String, KeyPair, Vec<u8>), PkiError> {
    let cert_path = dir.join(file::CA_CERT);
    let key_path = dir.join(file::CA_KEY);
    match (files::read_optional(&cert_path)?, files::read_optional(&key_path)?) {
        (Some(cert_pem), Some(key_pem)) => {
            let der = inspect::cert_der(&cert_pem).map_err(|p| identity(dir, file::CA_CERT, p))?;
            let cert = inspect::parse(&der).map_err(|p| identity(dir, file::CA_CERT, p))?;
            inspect::check_ca(&cert).map_err(|p| identity(dir, file::CA_CERT, p))?;
            if clock.expired(cert.validity().not_after.to_datetime()) {
                let p = format!("expired on {}; rotate the cluster CA by hand", cert.validity().not_after);
                return Err(identity(dir, file::CA_CERT, p));
            }
            let key = inspect::p256_key(&key_pem).map_err(|p| identity(dir, file::CA_KEY, p))?;
            if !inspect::key_matches(&cert, &key) {
                return Err(identity(dir, file::CA_KEY, format!("does not match {}", file::CA_CERT)));
            }
            files::set_mode(&key_path, SECRET)?;
            report.push(Item::Ca, Outcome::Reused);
            Ok((cert_pem, key, der))
        }
        (None, None) => {
            let (cert_pem, key) = issue::new_ca(clock)?;
            // Key first: a crash in between leaves a key without a certificate,
            // which the next start reports instead of silently making a new CA.
            files::write_atomic(&key_path, key.serialize_pem().as_bytes(), SECRET)?;
            files::write_atomic(&cert_path, cert_pem.as_bytes(), PUBLIC)?;
            let der = inspect::cert_der(&cert_pem).map_err(|p| identity(dir, file::CA_CERT, p))?;
            report.push(Item::Ca, Outcome::Created);
            Ok((cert_pem, key, der))
        }
        (Some(_), None) => {
            Err(identity(dir, file::CA_KEY, format!("missing while {} exists", file::CA_CERT)))
        }
        (None, Some(_)) => {
            Err(identity(dir, file::CA_CERT, format!("missing while {} exists", file::CA_KEY)))
        }
    }
}

/// The service-account key pair; `sa.pub` is rewritten from `sa.key` when needed.
fn load_or_create_sa(dir: &Path, report: &mut Report) -> Result<(String, String), PkiError> {
    let key_path = dir.join(file::SA_KEY);
    let pub_path = dir.join(file::SA_PUB);
    let existing_pub = files::read_optional(&pub_path)?;
    let (key_pem, key, outcome) = match files::read_optional(&key_path)? {
        Some(key_pem) => {
            let key = inspect::p256_key(&key_pem).map_err(|p| identity(dir, file::SA_KEY, p))?;
            files::set_mode(&key_path, SECRET)?;
            (key_pem, key, Outcome::Reused)
        }
        None if existing_pub.is_some() => {
            return Err(identity(dir, file::SA_KEY, format!("missing while {} exists", file::SA_PUB)));
        }
        None => {
            let key = issue::new_key("the service-account key")?;
            let key_pem = key.serialize_pem();
            files::write_atomic(&key_path, key_pem.as_bytes(), SECRET)?;
            (key_pem, key, Outcome::Created)
        }
    };
    let pub_pem = key.public_key_pem();
    let outcome = match existing_pub {
        Some(existing) if existing == pub_pem => outcome,
        _ => {
            files::write_atomic(&pub_path, pub_pem.as_bytes(), PUBLIC)?;
            if outcome == Outcome::Reused { Outcome::Replaced(Reason::Stale) } else { outcome }
        }
    };
    report.push(Item::ServiceAccountKey, outcome);
    Ok((key_pem, pub_pem))
}

/// Writes `contents` unless the file already holds exactly that.
fn write_if_changed(path: &Path, contents: &str, mode: u32) -> Result<Outcome, PkiError> {
    match files::read_optional(path)? {
        Some(existing) if existing == contents => {
            files::set_mode(path, mode)?;
            Ok(Outcome::Reused)
        }
        existing => {
            files::write_atomic(path, contents.as_bytes(), mode)?;
            Ok(if existing.is_some() { Outcome::Replaced(Reason::Stale) } else { Outcome::Created })
        }
    }
}

/// Loads or renews the leaf certificates signed by one CA.
struct Leaves<'a> {
    dir: &'a Path,
    issuer: &'a Issuer<'a, &'a KeyPair>,
    ca: &'a x509_parser::certificate::X509Certificate<'a>,
    clock: &'a Clock,
}

impl Leaves<'_> {
    fn load_or_renew(
        &self,
        item: Item,
        (cert_name, key_name): (&'static str, &'static str),
        spec: &LeafSpec<'_>,
        report: &mut Report,
    ) -> Result<CertPair, PkiError> {
        let cert_path = self.dir.join(cert_name);
        let key_path = self.dir.join(key_name);
        let cert = files::read_optional(&cert_path)?;
        let key = files::read_optional(&key_path)?;
        let outcome = match (cert, key) {
            (Some(cert_pem), Some(key_pem)) => {
                match self.examine((&cert_pem, &key_pem), (cert_name, key_name), spec) {
                    Ok(None) => {
                        files::set_mode(&key_path, SECRET)?;
                        report.push(item, Outcome::Reused);
                        return Ok(CertPair { cert_pem, key_pem });
                    }
                    Ok(Some(reason)) => Outcome::Replaced(reason),
                    Err((name, problem)) => {
                        Outcome::Replaced(Reason::Invalid { file: self.dir.join(name), problem })
                    }
                }
            }
            (None, None) => Outcome::Created,
            (Some(_), None) => Outcome::Replaced(Reason::Missing { file: key_path.clone() }),
            (None, Some(_)) => Outcome::Replaced(Reason::Missing { file: cert_path.clone() }),
        };
        let pair = issue::new_leaf(spec, self.issuer, self.clock)?;
        files::write_atomic(&key_path, pair.key_pem.as_bytes(), SECRET)?;
        files::write_atomic(&cert_path, pair.cert_pem.as_bytes(), PUBLIC)?;
        report.push(item, outcome);
        Ok(pair)
    }

    /// `Ok(None)` when the pair is good as it is; `Ok(Some(_))` when it should be
    /// renewed; `Err((file, problem))` when a file is damaged.
    fn examine(
        &self,
        (cert_pem, key_pem): (&str, &str),
        (cert_name, key_name): (&'static str, &'static str),
        spec: &LeafSpec<'_>,
    ) -> Result<Option<Reason>, (&'static str, String)> {
        let der = inspect::cert_der(cert_pem).map_err(|p| (cert_name, p))?;
        let cert = inspect::parse(&der).map_err(|p| (cert_name, p))?;
        let key = inspect::p256_key(key_pem).map_err(|p| (key_name, p))?;
        let leaf = inspect::check_leaf(&cert, &key, self.ca).map_err(|p| (cert_name, p))?;
        if leaf.common_name.as_deref() != Some(spec.common_name) {
            return Err((cert_name, format!("common name is not {:?}", spec.common_name)));
        }
        let wanted: std::collections::BTreeSet<San> = spec.sans.iter().cloned().collect();
        if leaf.sans != wanted {
            return Ok(Some(Reason::SansChanged));
        }
        // Only the expiry is checked, never not_before: see the `clock` module.
        if self.clock.needs_renewal(leaf.not_after) {
            let not_after = SystemTime::UNIX_EPOCH
                + Duration::from_secs(u64::try_from(leaf.not_after.unix_timestamp()).unwrap_or(0));
            return Ok(Some(Reason::ExpiresSoon { not_after }));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests;
