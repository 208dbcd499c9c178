//! Behaviour of `Pki::load_or_create` on a real directory.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;

const DAY: u64 = 86_400;
const ALL_FILES: [&str; 9] = [
    file::CA_CERT,
    file::CA_KEY,
    file::SERVING_CERT,
    file::SERVING_KEY,
    file::ADMIN_CERT,
    file::ADMIN_KEY,
    file::SA_KEY,
    file::SA_PUB,
    file::ADMIN_KUBECONFIG,
];

fn floor_secs() -> u64 {
    clock::DEFAULT_CLOCK_FLOOR_UNIX_SECS
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn options(dir: &Path) -> PkiOptions {
    let mut opts = PkiOptions::new(dir.join("pki"), "node1");
    opts.node_ips = vec!["192.168.1.10".parse().unwrap()];
    opts.now = at(floor_secs() + 100 * DAY);
    opts
}

fn snapshot(dir: &Path) -> BTreeMap<&'static str, Vec<u8>> {
    ALL_FILES.iter().map(|f| (*f, fs::read(dir.join(f)).unwrap())).collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn der(pem: &str) -> Vec<u8> {
    inspect::cert_der(pem).unwrap()
}

fn cert(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).unwrap().1
}

fn unix(t: &x509_parser::time::ASN1Time) -> u64 {
    u64::try_from(t.timestamp()).unwrap()
}

fn assert_signed_by_ca(leaf_pem: &str, ca_pem: &str) {
    let (leaf_der, ca_der) = (der(leaf_pem), der(ca_pem));
    let (leaf, ca) = (cert(&leaf_der), cert(&ca_der));
    assert_eq!(leaf.issuer(), ca.subject());
    leaf.verify_signature(Some(ca.public_key())).expect("signature verifies against the CA");
}

#[test]
fn first_start_creates_everything_with_the_right_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path());
    let (pki, report) = Pki::load_or_create(&opts).unwrap();

    for item in [Item::Ca, Item::ServiceAccountKey, Item::Serving, Item::Admin, Item::Kubeconfig] {
        assert_eq!(report.outcome(item), Some(&Outcome::Created), "{item}");
    }
    assert_eq!(mode(&opts.dir), 0o700);
    for f in [file::CA_KEY, file::SERVING_KEY, file::ADMIN_KEY, file::SA_KEY, file::ADMIN_KUBECONFIG] {
        assert_eq!(mode(&opts.dir.join(f)), 0o600, "{f}");
    }
    for f in [file::CA_CERT, file::SERVING_CERT, file::ADMIN_CERT, file::SA_PUB] {
        assert_eq!(mode(&opts.dir.join(f)), 0o644, "{f}");
    }
    assert_eq!(fs::read_to_string(opts.dir.join(file::CA_CERT)).unwrap(), pki.ca_cert_pem);
    assert_eq!(fs::read_to_string(opts.dir.join(file::SERVING_KEY)).unwrap(), pki.serving.key_pem);
    assert!(pki.sa_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(pki.sa_pub_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    // No temporary files are left behind.
    let names: Vec<_> = fs::read_dir(&opts.dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), ALL_FILES.len(), "{names:?}");
}

#[test]
fn second_start_reuses_everything_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path());
    let (first, _) = Pki::load_or_create(&opts).unwrap();
    let before = snapshot(&opts.dir);

    opts.now = at(floor_secs() + 101 * DAY);
    let (second, report) = Pki::load_or_create(&opts).unwrap();
    assert!(report.entries.iter().all(|(_, o)| *o == Outcome::Reused), "{report}");
    assert_eq!(snapshot(&opts.dir), before);
    assert_eq!(first.ca_hash(), second.ca_hash());
    assert_eq!(first.serving, second.serving);
    assert_eq!(first.sa_key_pem, second.sa_key_pem);
}

#[test]
fn ca_hash_is_sha256_of_the_ca_der() {
    let tmp = tempfile::tempdir().unwrap();
    let (pki, _) = Pki::load_or_create(&options(tmp.path())).unwrap();
    let hash = pki.ca_hash();
    assert_eq!(hash.len(), 64);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let expected = ring::digest::digest(&ring::digest::SHA256, &der(&pki.ca_cert_pem));
    let expected: String = expected.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hash, expected);
}

#[test]
fn a_new_tls_san_renews_only_the_serving_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path());
    Pki::load_or_create(&opts).unwrap();
    let before = snapshot(&opts.dir);

    opts.extra_sans = vec!["API.example.com".into(), "10.0.0.5".into()];
    let (pki, report) = Pki::load_or_create(&opts).unwrap();
    assert_eq!(report.outcome(Item::Serving), Some(&Outcome::Replaced(Reason::SansChanged)));
    assert_eq!(report.outcome(Item::Ca), Some(&Outcome::Reused));
    assert_eq!(report.outcome(Item::Admin), Some(&Outcome::Reused));
    let after = snapshot(&opts.dir);
    for f in ALL_FILES {
        let changed = before[f] != after[f];
        assert_eq!(changed, f == file::SERVING_CERT || f == file::SERVING_KEY, "{f}");
    }
    assert_signed_by_ca(&pki.serving.cert_pem, &pki.ca_cert_pem);
    let d = der(&pki.serving.cert_pem);
    let c = cert(&d);
    let names = &c.subject_alternative_name().unwrap().unwrap().value.general_names;
    assert!(names.contains(&GeneralName::DNSName("api.example.com")));
    assert!(names.contains(&GeneralName::IPAddress(&[10, 0, 0, 5])));

    // And removing it again renews once more.
    opts.extra_sans.clear();
    let (_, report) = Pki::load_or_create(&opts).unwrap();
    assert_eq!(report.outcome(Item::Serving), Some(&Outcome::Replaced(Reason::SansChanged)));
}

#[test]
fn certificates_say_what_they_should() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path());
    opts.extra_sans = vec!["lichen.lan".into(), "fd00::7".into()];
    let now = floor_secs() + 100 * DAY;
    let (pki, _) = Pki::load_or_create(&opts).unwrap();

    // CA
    let ca_der = der(&pki.ca_cert_pem);
    let ca = cert(&ca_der);
    let cn = ca.subject().iter_common_name().next().unwrap().as_str().unwrap();
    assert_eq!(cn, format!("lichen-ca@{now}"));
    assert!(ca.basic_constraints().unwrap().unwrap().value.ca);
    let ku = ca.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign());
    assert_eq!(unix(&ca.validity().not_before), now - 3600);
    assert_eq!(unix(&ca.validity().not_after), now + 10 * 365 * DAY);
    ca.verify_signature(None).unwrap();

    // Serving
    let d = der(&pki.serving.cert_pem);
    let s = cert(&d);
    assert_eq!(s.subject().iter_common_name().next().unwrap().as_str().unwrap(), "kube-apiserver");
    assert!(s.basic_constraints().unwrap().is_none_or(|bc| !bc.value.ca));
    let eku = s.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    assert!(s.key_usage().unwrap().unwrap().value.digital_signature());
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in &s.subject_alternative_name().unwrap().unwrap().value.general_names {
        match name {
            GeneralName::DNSName(n) => dns.push(n.to_string()),
            GeneralName::IPAddress(b) => ips.push(inspect::ip_from_bytes(b).unwrap().to_string()),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    assert_eq!(
        dns,
        [
            "node1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "lichen.lan"
        ]
    );
    assert_eq!(ips, ["127.0.0.1", "::1", "10.43.0.1", "192.168.1.10", "fd00::7"]);
    assert_eq!(unix(&s.validity().not_after), now + 365 * DAY);
    assert_signed_by_ca(&pki.serving.cert_pem, &pki.ca_cert_pem);

    // Admin
    let d = der(&pki.admin.cert_pem);
    let a = cert(&d);
    assert_eq!(a.subject().iter_common_name().next().unwrap().as_str().unwrap(), "system:admin");
    let org = a.subject().iter_organization().next().unwrap().as_str().unwrap();
    assert_eq!(org, "system:masters");
    let eku = a.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    assert_signed_by_ca(&pki.admin.cert_pem, &pki.ca_cert_pem);
}

#[test]
fn a_clock_in_1970_issues_from_the_floor_and_causes_no_churn() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path());
    opts.now = at(1000);
    let (pki, _) = Pki::load_or_create(&opts).unwrap();
    for pem in [&pki.ca_cert_pem, &pki.serving.cert_pem, &pki.admin.cert_pem] {
        let d = der(pem);
        let c = cert(&d);
        assert!(unix(&c.validity().not_before) >= floor_secs());
        assert!(unix(&c.validity().not_after) > floor_secs() + 300 * DAY);
    }
    let before = snapshot(&opts.dir);

    // The clock is corrected: nothing changes.
    opts.now = at(floor_secs() + 10 * DAY);
    let (_, report) = Pki::load_or_create(&opts).unwrap();
    assert!(report.entries.iter().all(|(_, o)| *o == Outcome::Reused), "{report}");
    assert_eq!(snapshot(&opts.dir), before);
}

#[test]
fn certificates_from_the_future_are_kept_on_a_boot_with_a_bad_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path());
    opts.now = at(floor_secs() + 200 * DAY);
    Pki::load_or_create(&opts).unwrap();
    let before = snapshot(&opts.dir);

    // Next boot: no RTC, the clock says 1970; not_before is now "in the future".
    opts.now = at(5);
    let (_, report) = Pki::load_or_create(&opts).unwrap();
    assert!(report.entries.iter().all(|(_, o)| *o == Outcome::Reused), "{report}");
    assert_eq!(snapshot(&opts.dir), before);
}

#[test]
fn leaf_certificates_are_renewed_within_thirty_days_of_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path());
    let (first, _) = Pki::load_or_create(&opts).unwrap();

    opts.now = at(floor_secs() + 100 * DAY + 334 * DAY);
    let (_, report) = Pki::load_or_create(&opts).unwrap();
    assert!(report.entries.iter().all(|(_, o)| *o == Outcome::Reused), "{report}");

    opts.now = at(floor_secs() + 100 * DAY + 336 * DAY);
    let (second, report) = Pki::load_or_create(&opts).unwrap();
    for item in [Item::Serving, Item::Admin] {
        assert!(
            matches!(report.outcome(item), Some(Outcome::Replaced(Reason::ExpiresSoon { .. }))),
            "{report}"
        );
    }
    assert_eq!(report.outcome(Item::Ca), Some(&Outcome::Reused));
    assert_eq!(report.outcome(Item::Kubeconfig), Some(&Outcome::Replaced(Reason::Stale)));
    assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
    assert_ne!(first.serving, second.serving);
    assert_signed_by_ca(&second.serving.cert_pem, &second.ca_cert_pem);
    assert!(report.to_string().contains("serving certificate: renewed: expires within 30 days"), "{report}");
}

#[test]
fn a_damaged_ca_key_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path());
    Pki::load_or_create(&opts).unwrap();
    let before = snapshot(&opts.dir);
    let ca_key = opts.dir.join(file::CA_KEY);

    fs::write(&ca_key, "garbage").unwrap();
    let err = Pki::load_or_create(&opts).unwrap_err();
    assert!(matches!(&err, PkiError::Identity { path, .. } if *path == ca_key), "{err:?}");
    assert!(err.to_string().contains("ca.key"), "{err}");
    assert!(err.to_string().starts_with("refusing to replace"), "{err}");

    // A good key that belongs to another CA.
    let other = tempfile::tempdir().unwrap();
    Pki::load_or_create(&options(other.path())).unwrap();
    fs::copy(other.path().join("pki").join(file::CA_KEY), &ca_key).unwrap();
    let err = Pki::load_or_create(&opts).unwrap_err();
    assert!(err.to_string().contains("ca.key: does not match ca.crt"), "{err}");

    // A missing key.
    fs::remove_file(&ca_key).unwrap();
    let err = Pki::load_or_create(&opts).unwrap_err();
    assert!(err.to_string().contains("ca.key: missing while ca.crt exists"), "{err}");

    // Nothing else was touched.
    assert_eq!(fs::read(opts.dir.join(file::CA_CERT)).unwrap(), before[file::CA_CERT]);
    assert_eq!(fs::read(opts.dir.join(file::SERVING_CERT)).unwrap(), before[file::SERVING_CERT]);
}

#[test]
fn a_damaged_ca_certificate_or_sa_key_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path());
    let (pki, _) = Pki::load_or_create(&opts).unwrap();

    // The serving certificate is not a CA.
    fs::write(opts.dir.join(file::CA_CERT), &pki.serving.cert_pem).unwrap();
    let err = Pki::load_or_create(&opts).unwrap_err();
    assert!(err.to_string().contains("ca.crt: not a CA certificate"), "{err}");
    fs::write(opts.dir.join(file::CA_CERT), &pki.ca_cert_pem).unwrap();

    fs::write(opts.dir.join(file::SA_KEY), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        .unwrap();
    let err = Pki::load_or_create(&opts).unwrap_err();
    assert!(err.to_string().contains("sa.key: not a PKCS#8 PEM private key"), "{err}");

    fs::remove_file(opts.dir.join(file::SA_KEY)).unwrap();
    let err = Pki::load_or_create(&opts).unwrap_err();
    assert!(err.to_string().contains("sa.key: missing while sa.pub exists"), "{err}");
}

#[test]
fn a_missing_sa_pub_is_rewritten_from_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path());
    let (first, _) = Pki::load_or_create(&opts).unwrap();
    fs::remove_file(opts.dir.join(file::SA_PUB)).unwrap();
    let (second, report) = Pki::load_or_create(&opts).unwrap();
    assert_eq!(report.outcome(Item::ServiceAccountKey), Some(&Outcome::Replaced(Reason::Stale)));
    assert_eq!(first.sa_key_pem, second.sa_key_pem);
    assert_eq!(fs::read_to_string(opts.dir.join(file::SA_PUB)).unwrap(), first.sa_pub_pem);
}

#[test]
fn a_damaged_serving_certificate_is_regenerated() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path());
    let (first, _) = Pki::load_or_create(&opts).unwrap();
    let server_crt = opts.dir.join(file::SERVING_CERT);
    fs::write(&server_crt, "not a certificate").unwrap();

    let (second, report) = Pki::load_or_create(&opts).unwrap();
    match report.outcome(Item::Serving) {
        Some(Outcome::Replaced(Reason::Invalid { file, .. })) => assert_eq!(*file, server_crt),
        other => panic!("{other:?}"),
    }
    assert!(report.to_string().contains("server.crt"), "{report}");
    assert_eq!(report.outcome(Item::Ca), Some(&Outcome::Reused));
    assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
    assert_signed_by_ca(&fs::read_to_string(&server_crt).unwrap(), &second.ca_cert_pem);
}

#[test]
fn leaf_certificates_from_another_ca_or_with_a_foreign_key_are_regenerated() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path());
    Pki::load_or_create(&opts).unwrap();
    let other = tempfile::tempdir().unwrap();
    let mut other_opts = options(other.path());
    // A different second, so the other CA's name differs too.
    other_opts.now = at(floor_secs() + 99 * DAY);
    Pki::load_or_create(&other_opts).unwrap();
    for f in [file::SERVING_CERT, file::SERVING_KEY] {
        fs::copy(other_opts.dir.join(f), opts.dir.join(f)).unwrap();
    }
    fs::copy(other_opts.dir.join(file::ADMIN_KEY), opts.dir.join(file::ADMIN_KEY)).unwrap();

    let (pki, report) = Pki::load_or_create(&opts).unwrap();
    let Some(Outcome::Replaced(Reason::Invalid { problem, .. })) = report.outcome(Item::Serving) else {
        panic!("{report}");
    };
    assert!(problem.contains("not issued by the cluster CA (issuer differs)"), "{problem}");
    let Some(Outcome::Replaced(Reason::Invalid { problem, .. })) = report.outcome(Item::Admin) else {
        panic!("{report}");
    };
    assert!(problem.contains("key does not match"), "{problem}");
    assert_signed_by_ca(&pki.serving.cert_pem, &pki.ca_cert_pem);

    // A missing key alone also regenerates the pair.
    fs::remove_file(opts.dir.join(file::ADMIN_KEY)).unwrap();
    let (_, report) = Pki::load_or_create(&opts).unwrap();
    let want = Reason::Missing { file: opts.dir.join(file::ADMIN_KEY) };
    assert_eq!(report.outcome(Item::Admin), Some(&Outcome::Replaced(want)));
}

#[test]
fn loose_key_modes_are_tightened_on_reuse() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path());
    Pki::load_or_create(&opts).unwrap();
    for f in [file::CA_KEY, file::SERVING_KEY, file::SA_KEY, file::ADMIN_KUBECONFIG] {
        fs::set_permissions(opts.dir.join(f), fs::Permissions::from_mode(0o644)).unwrap();
    }
    fs::set_permissions(&opts.dir, fs::Permissions::from_mode(0o755)).unwrap();
    Pki::load_or_create(&opts).unwrap();
    for f in [file::CA_KEY, file::SERVING_KEY, file::SA_KEY, file::ADMIN_KUBECONFIG] {
        assert_eq!(mode(&opts.dir.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&opts.dir), 0o700);
}

#[test]
fn an_invalid_tls_san_is_an_error_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path());
    opts.extra_sans = vec!["good.example.com".into(), "bad_name!".into()];
    let err = Pki::load_or_create(&opts).unwrap_err();
    assert!(matches!(&err, PkiError::InvalidName { value, .. } if value == "bad_name!"), "{err:?}");
    assert!(err.to_string().contains("\"bad_name!\""), "{err}");
    assert!(!opts.dir.exists());
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct KubeConfig {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    clusters: Vec<Named<ClusterEntry>>,
    contexts: Vec<Named<ContextEntry>>,
    users: Vec<Named<UserEntry>>,
    current_context: String,
}

#[derive(serde::Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "context", alias = "user")]
    value: T,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterEntry {
    certificate_authority_data: String,
    server: String,
}

#[derive(serde::Deserialize)]
struct ContextEntry {
    cluster: String,
    user: String,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UserEntry {
    client_certificate_data: String,
    client_key_data: String,
}

fn b64(s: &str) -> String {
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
}

#[test]
fn the_admin_kubeconfig_embeds_the_ca_and_admin_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path());
    let (pki, _) = Pki::load_or_create(&opts).unwrap();
    let text = fs::read_to_string(opts.dir.join(file::ADMIN_KUBECONFIG)).unwrap();
    assert_eq!(text, pki.admin_kubeconfig("https://127.0.0.1:6443", "lichen", "admin"));

    let kc: KubeConfig = serde_saphyr::from_str(&text).unwrap();
    assert_eq!((kc.api_version.as_str(), kc.kind.as_str()), ("v1", "Config"));
    assert_eq!(kc.current_context, "lichen");
    let [cluster] = &kc.clusters[..] else { panic!("one cluster") };
    assert_eq!(cluster.name, "lichen");
    assert_eq!(cluster.value.server, "https://127.0.0.1:6443");
    assert_eq!(b64(&cluster.value.certificate_authority_data), pki.ca_cert_pem);
    let [context] = &kc.contexts[..] else { panic!("one context") };
    assert_eq!((context.name.as_str(), context.value.cluster.as_str()), ("lichen", "lichen"));
    assert_eq!(context.value.user, "admin");
    let [user] = &kc.users[..] else { panic!("one user") };
    assert_eq!(user.name, "admin");
    assert_eq!(b64(&user.value.client_certificate_data), pki.admin.cert_pem);
    assert_eq!(b64(&user.value.client_key_data), pki.admin.key_pem);

    // Awkward names cannot break the structure.
    let odd = pki.admin_kubeconfig("https://[::1]:6443", "a: b\n- c", "\"u\" #x");
    let kc: KubeConfig = serde_saphyr::from_str(&odd).unwrap();
    assert_eq!(kc.clusters[0].name, "a: b\n- c");
    assert_eq!(kc.users[0].name, "\"u\" #x");
    assert_eq!(kc.clusters[0].value.server, "https://[::1]:6443");
}

#[test]
fn a_new_server_url_rewrites_only_the_kubeconfig() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path());
    Pki::load_or_create(&opts).unwrap();
    opts.server_url = "https://192.168.1.10:6443".into();
    let (_, report) = Pki::load_or_create(&opts).unwrap();
    assert_eq!(report.outcome(Item::Kubeconfig), Some(&Outcome::Replaced(Reason::Stale)));
    assert_eq!(report.outcome(Item::Serving), Some(&Outcome::Reused));
    let text = fs::read_to_string(opts.dir.join(file::ADMIN_KUBECONFIG)).unwrap();
    assert!(text.contains("server: \"https://192.168.1.10:6443\""), "{text}");
}

#[test]
fn issued_client_certificates_carry_the_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let (pki, _) = Pki::load_or_create(&options(tmp.path())).unwrap();
    let pair = pki
        .issue_client("system:node:node2", &["system:nodes"], Duration::from_secs(30 * DAY), at(3))
        .unwrap();
    assert_signed_by_ca(&pair.cert_pem, &pki.ca_cert_pem);
    let d = der(&pair.cert_pem);
    let c = cert(&d);
    assert_eq!(c.subject().iter_common_name().next().unwrap().as_str().unwrap(), "system:node:node2");
    assert_eq!(c.subject().iter_organization().next().unwrap().as_str().unwrap(), "system:nodes");
    assert!(c.extended_key_usage().unwrap().unwrap().value.client_auth);
    assert_eq!(unix(&c.validity().not_before), floor_secs());
    assert_eq!(unix(&c.validity().not_after), floor_secs() + 30 * DAY);
    assert!(inspect::key_matches(&c, &inspect::p256_key(&pair.key_pem).unwrap()));

    assert!(matches!(
        pki.issue_client("", &[], Duration::from_secs(1), at(0)),
        Err(PkiError::InvalidRequest(_))
    ));
    assert!(matches!(pki.issue_client("x", &[], Duration::ZERO, at(0)), Err(PkiError::InvalidRequest(_))));
    assert!(!format!("{pair:?}").contains("PRIVATE"));
    assert!(!format!("{pki:?}").contains("PRIVATE"));
}

fn openssl(args: &[&str], dir: &Path) -> String {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "openssl {args:?}: {text}");
    text
}

#[test]
fn openssl_accepts_the_chain() {
    if Command::new("openssl").arg("version").output().is_err() {
        println!("skipped: openssl is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path());
    // openssl checks validity against the real clock.
    opts.now = SystemTime::now();
    opts.extra_sans = vec!["api.example.com".into()];
    Pki::load_or_create(&opts).unwrap();
    let dir = opts.dir.as_path();

    let out = openssl(&["verify", "-CAfile", "ca.crt", "server.crt", "admin.crt"], dir);
    assert!(out.contains("server.crt: OK") && out.contains("admin.crt: OK"), "{out}");
    let out = openssl(&["verify", "-CAfile", "ca.crt", "-purpose", "sslserver", "server.crt"], dir);
    assert!(out.contains("OK"), "{out}");
    let out = openssl(&["verify", "-CAfile", "ca.crt", "-purpose", "sslclient", "admin.crt"], dir);
    assert!(out.contains("OK"), "{out}");

    let text = openssl(&["x509", "-noout", "-text", "-in", "server.crt"], dir);
    for want in [
        "DNS:node1",
        "DNS:kubernetes.default.svc.cluster.local",
        "DNS:api.example.com",
        "IP Address:127.0.0.1",
        "IP Address:10.43.0.1",
        "IP Address:192.168.1.10",
        "TLS Web Server Authentication",
        "ecdsa-with-SHA256",
        "Subject: CN = kube-apiserver",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let text = openssl(&["x509", "-noout", "-text", "-in", "ca.crt"], dir);
    assert!(text.contains("CA:TRUE") && text.contains("Certificate Sign, CRL Sign"), "{text}");
    let out = openssl(&["pkey", "-in", "sa.key", "-noout", "-text"], dir);
    assert!(out.contains("prime256v1") || out.contains("P-256"), "{out}");
}

#[test]
fn a_serving_certificate_from_a_same_named_ca_is_regenerated() {
    // Two CAs made in the same second share a subject; only the signature tells them apart.
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path());
    Pki::load_or_create(&opts).unwrap();
    let other = tempfile::tempdir().unwrap();
    let other_opts = options(other.path());
    Pki::load_or_create(&other_opts).unwrap();
    for f in [file::SERVING_CERT, file::SERVING_KEY] {
        fs::copy(other_opts.dir.join(f), opts.dir.join(f)).unwrap();
    }
    let (pki, report) = Pki::load_or_create(&opts).unwrap();
    let Some(Outcome::Replaced(Reason::Invalid { problem, .. })) = report.outcome(Item::Serving) else {
        panic!("{report}");
    };
    assert!(problem.contains("signature does not verify"), "{problem}");
    assert_signed_by_ca(&pki.serving.cert_pem, &pki.ca_cert_pem);
}
