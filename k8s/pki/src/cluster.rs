//! The cluster-wide secrets alone, made once on a workstation and baked into
//! every device image of a fleet: the CA, the service-account key, the admin
//! client certificate and kubeconfig, and a join token. No serving
//! certificate: each device makes its own from the CA, since only the device
//! knows its names.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rcgen::{ExtendedKeyUsagePurpose, Issuer};
use ring::rand::SecureRandom as _;

use crate::clock::{self, Clock};
use crate::files::{self, SECRET};
use crate::issue::{LEAF_VALIDITY, LeafSpec};
use crate::{
    ADMIN_USER, CertPair, Item, Leaves, Outcome, PkiError, Report, file, identity, inspect, kubeconfig,
    load_or_create_ca, load_or_create_sa, write_if_changed,
};

/// The join token's `<id>` part: tokens made here join as the server.
pub const TOKEN_ID: &str = "server";

/// What [`ClusterSecrets::load_or_create`] needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSecretsOptions {
    /// Where the files live. Created with mode 0700.
    pub dir: PathBuf,
    /// The cluster's name in the kubeconfig.
    pub cluster_name: String,
    /// The API server URL written into the admin kubeconfig.
    pub server_url: String,
    /// The time to issue at.
    pub now: SystemTime,
    /// A time known to have passed; see [`clock`].
    pub clock_floor: SystemTime,
}

impl ClusterSecretsOptions {
    /// Options with lichen's defaults: cluster `lichen`, server
    /// `https://127.0.0.1:6443`, the system clock and the default floor.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ClusterSecretsOptions {
            dir: dir.into(),
            cluster_name: "lichen".to_owned(),
            server_url: "https://127.0.0.1:6443".to_owned(),
            now: SystemTime::now(),
            clock_floor: clock::default_clock_floor(),
        }
    }
}

/// The loaded cluster-wide secrets.
pub struct ClusterSecrets {
    /// The CA certificate (PEM).
    pub ca_cert_pem: String,
    /// Lowercase hex SHA-256 of the CA certificate's DER.
    pub ca_hash: String,
    /// The service-account public key (SPKI PEM).
    pub sa_pub_pem: String,
    /// The admin client certificate and key.
    pub admin: CertPair,
    /// The join token, `K10<ca_hash>::server:<32 hex digits>`.
    pub token: String,
    /// The directory the files are in.
    pub dir: PathBuf,
}

impl fmt::Debug for ClusterSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterSecrets")
            .field("dir", &self.dir)
            .field("ca_hash", &self.ca_hash)
            .field("admin", &self.admin)
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl ClusterSecrets {
    /// Loads what exists in `opts.dir` and creates what is missing: `ca.crt`,
    /// `ca.key`, `sa.key`, `sa.pub`, `admin.crt`, `admin.key`,
    /// `admin.kubeconfig` (for `opts.server_url`) and `token`.
    ///
    /// The rules of [`crate::Pki::load_or_create`] hold: the CA and the
    /// service-account key are never replaced (a damaged one is an error
    /// naming the file), the admin certificate is renewed when it nears
    /// expiry, writes are atomic and keys, the kubeconfig and the token get
    /// mode 0600. An existing token is kept; one that is malformed or pins
    /// another CA is an error, never silently replaced (devices may carry it).
    pub fn load_or_create(opts: &ClusterSecretsOptions) -> Result<(ClusterSecrets, Report), PkiError> {
        let clock = Clock::new(opts.now, opts.clock_floor);
        let dir = opts.dir.as_path();
        files::ensure_dir(dir)?;
        let mut report = Report::default();

        let (ca_cert_pem, ca_key, ca_der) = load_or_create_ca(dir, &clock, &mut report)?;
        let (_, sa_pub_pem) = load_or_create_sa(dir, &mut report)?;
        let ca_x509 = inspect::parse(&ca_der).map_err(|problem| identity(dir, file::CA_CERT, problem))?;
        let issuer = Issuer::from_ca_cert_der(&ca_der.as_slice().into(), &ca_key)
            .map_err(|_| identity(dir, file::CA_CERT, "cannot be used as an issuer".to_owned()))?;
        let leaf = Leaves { dir, issuer: &issuer, ca: &ca_x509, clock: &clock };
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

        let kubeconfig = kubeconfig::Kubeconfig {
            server: &opts.server_url,
            cluster: &opts.cluster_name,
            user: ADMIN_USER,
            ca_pem: &ca_cert_pem,
            cert_pem: &admin.cert_pem,
            key_pem: &admin.key_pem,
        }
        .render();
        let outcome = write_if_changed(&dir.join(file::ADMIN_KUBECONFIG), &kubeconfig, SECRET)?;
        report.push(Item::Kubeconfig, outcome);

        let ca_hash = crate::hex_sha256(&ca_der);
        let token = load_or_create_token(dir, &ca_hash, &mut report)?;
        let secrets =
            ClusterSecrets { ca_cert_pem, ca_hash, sa_pub_pem, admin, token, dir: opts.dir.clone() };
        Ok((secrets, report))
    }
}

pub(crate) fn load_or_create_token(
    dir: &Path,
    ca_hash: &str,
    report: &mut Report,
) -> Result<String, PkiError> {
    let path = dir.join(file::TOKEN);
    if let Some(existing) = files::read_optional(&path)? {
        let token = existing.trim();
        let parsed = crate::join::JoinToken::parse(token)
            .map_err(|e| identity(dir, file::TOKEN, format!("not a join token: {e}")))?;
        if parsed.ca_hash != ca_hash {
            return Err(identity(dir, file::TOKEN, format!("pins another CA than {}", file::CA_CERT)));
        }
        files::set_mode(&path, SECRET)?;
        report.push(Item::Token, Outcome::Reused);
        return Ok(token.to_owned());
    }
    let mut secret = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut secret).map_err(|_| PkiError::Random)?;
    let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let token = format!("K10{ca_hash}::{TOKEN_ID}:{secret}");
    files::write_atomic(&path, format!("{token}\n").as_bytes(), SECRET)?;
    report.push(Item::Token, Outcome::Created);
    Ok(token)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::join::{Credential, JoinToken};
    use crate::{Pki, PkiOptions};

    fn options(dir: &Path) -> ClusterSecretsOptions {
        let mut o = ClusterSecretsOptions::new(dir.join("secrets"));
        o.now = UNIX_EPOCH + Duration::from_secs(clock::DEFAULT_CLOCK_FLOOR_UNIX_SECS + 86_400);
        o.server_url = "https://10.0.0.1:6443".to_owned();
        o
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn creates_only_the_cluster_wide_files() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = options(tmp.path());
        let (s, report) = ClusterSecrets::load_or_create(&opts).unwrap();
        let mut names: Vec<String> =
            fs::read_dir(&opts.dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        let want =
            ["admin.crt", "admin.key", "admin.kubeconfig", "ca.crt", "ca.key", "sa.key", "sa.pub", "token"];
        assert_eq!(names, want);
        for secret in ["ca.key", "sa.key", "admin.key", "admin.kubeconfig", "token"] {
            assert_eq!(mode(&opts.dir.join(secret)), 0o600, "{secret}");
        }
        assert_eq!(mode(&opts.dir), 0o700);
        assert!(report.entries.iter().all(|(_, o)| *o == Outcome::Created), "{report}");
        let kubeconfig = fs::read_to_string(opts.dir.join("admin.kubeconfig")).unwrap();
        assert!(kubeconfig.contains("server: \"https://10.0.0.1:6443\""), "{kubeconfig}");
        assert_eq!(s.ca_cert_pem, fs::read_to_string(opts.dir.join("ca.crt")).unwrap());
    }

    #[test]
    fn token_pins_the_ca_and_has_a_random_secret() {
        let tmp = tempfile::tempdir().unwrap();
        let (s, _) = ClusterSecrets::load_or_create(&options(tmp.path())).unwrap();
        let file = fs::read_to_string(tmp.path().join("secrets/token")).unwrap();
        assert_eq!(file, format!("{}\n", s.token));
        let parsed = JoinToken::parse(&s.token).unwrap();
        assert_eq!(parsed.ca_hash, s.ca_hash);
        let Credential::Server { secret } = parsed.credential else { panic!("not a server token") };
        assert_eq!(secret.len(), 32);
        assert!(secret.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{secret}");
        let other = tempfile::tempdir().unwrap();
        let (s2, _) = ClusterSecrets::load_or_create(&options(other.path())).unwrap();
        let Credential::Server { secret: secret2 } = JoinToken::parse(&s2.token).unwrap().credential else {
            panic!("not a server token")
        };
        assert_ne!(secret2, secret, "a fresh secret per cluster");
    }

    #[test]
    fn second_run_keeps_everything() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = options(tmp.path());
        ClusterSecrets::load_or_create(&opts).unwrap();
        let read = |n: &str| fs::read(opts.dir.join(n)).unwrap();
        let before: Vec<Vec<u8>> = ["ca.crt", "ca.key", "sa.key", "admin.crt", "token"].map(read).to_vec();
        let (_, report) = ClusterSecrets::load_or_create(&opts).unwrap();
        let after: Vec<Vec<u8>> = ["ca.crt", "ca.key", "sa.key", "admin.crt", "token"].map(read).to_vec();
        assert!(before == after, "files changed on the second run");
        assert!(report.entries.iter().all(|(_, o)| *o == Outcome::Reused), "{report}");
        assert_eq!(report.outcome(Item::Token), Some(&Outcome::Reused));
    }

    #[test]
    fn device_pki_reuses_the_fleet_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = options(tmp.path());
        let (s, _) = ClusterSecrets::load_or_create(&opts).unwrap();
        // What a device does with the copied ca.* and sa.* files.
        let device = tmp.path().join("device");
        fs::create_dir_all(&device).unwrap();
        for f in ["ca.crt", "ca.key", "sa.key", "sa.pub"] {
            fs::copy(opts.dir.join(f), device.join(f)).unwrap();
        }
        let mut popts = PkiOptions::new(&device, "node1");
        popts.now = opts.now;
        let (pki, report) = Pki::load_or_create(&popts).unwrap();
        assert_eq!(report.outcome(Item::Ca), Some(&Outcome::Reused));
        assert_eq!(report.outcome(Item::ServiceAccountKey), Some(&Outcome::Reused));
        assert_eq!(pki.ca_hash(), s.ca_hash);
    }

    #[test]
    fn a_bad_token_is_never_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = options(tmp.path());
        ClusterSecrets::load_or_create(&opts).unwrap();
        let path = opts.dir.join("token");
        fs::write(&path, "garbage\n").unwrap();
        let e = ClusterSecrets::load_or_create(&opts).unwrap_err().to_string();
        assert!(e.contains("token") && e.contains("refusing"), "{e}");
        let foreign = format!("K10{}::server:{}\n", "ab".repeat(32), "0".repeat(32));
        fs::write(&path, &foreign).unwrap();
        let e = ClusterSecrets::load_or_create(&opts).unwrap_err().to_string();
        assert!(e.contains("another CA"), "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), foreign);
    }
}
