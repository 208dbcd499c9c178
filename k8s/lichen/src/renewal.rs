//! Renewing a server node's own certificates while it runs. `lichen
//! server` loads (and renews, within 30 days of expiry) the API server's
//! serving certificate at start, and issues its in-process agent's client
//! and endpoint certificates and the API server's client certificate
//! towards agents for a year at every start. A server that runs longer than
//! that without a restart would find them expired; k3s has the same limit
//! (its certificates are renewed only at start). Here each one is held as
//! a [`LiveCertificate`] and replaced in place when it comes within
//! [`lichen_pki::clock::RENEW_BEFORE`] of its end, looked at hourly.

use std::time::{Duration, SystemTime};

use lichen_kubelet::client::LiveCertificate;
use lichen_pki::{CertPair, Pki, PkiOptions};

/// What a held certificate is, and so how a new one is made.
#[derive(Debug, Clone)]
pub enum Kind {
    /// The API server's serving certificate (`<data-dir>/pki`, renewed on
    /// disk by [`Pki::load_or_create`], which also renews the admin
    /// kubeconfig's).
    ApiServing,
    /// The API server's client certificate towards agents.
    KubeletClient,
    /// The in-process agent's client certificate.
    AgentClient { node: String },
    /// The in-process agent's endpoint certificate.
    AgentServing { node: String, names: Vec<String> },
}

/// A certificate in use, its kind and when it ends.
pub struct Held {
    pub kind: Kind,
    pub live: LiveCertificate,
    /// Seconds since the epoch.
    pub not_after: i64,
}

impl Held {
    pub fn new(kind: Kind, pair: &CertPair) -> anyhow::Result<Held> {
        let live = LiveCertificate::new(&pair.cert_pem, &pair.key_pem)?;
        Held::sharing(kind, live, pair)
    }

    /// `pair`, already in use as `live` (e.g. inside a client).
    pub fn sharing(kind: Kind, live: LiveCertificate, pair: &CertPair) -> anyhow::Result<Held> {
        Ok(Held { kind, live, not_after: not_after(pair)? })
    }
}

/// How long an issued certificate lasts (the PKI's leaf lifetime).
pub const VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
const CHECK_EVERY: Duration = Duration::from_secs(3600);

fn not_after(pair: &CertPair) -> anyhow::Result<i64> {
    lichen_pki::join::validity_of_pem(&pair.cert_pem)
        .map(|(_, end)| end)
        .ok_or_else(|| anyhow::anyhow!("an issued certificate cannot be read"))
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn due(held: &Held, now: SystemTime) -> bool {
    let before = i64::try_from(lichen_pki::clock::RENEW_BEFORE.as_secs()).unwrap_or(i64::MAX);
    held.not_after.saturating_sub(unix(now)) <= before
}

/// Replaces every held certificate that is due at `now`; returns how many.
pub fn renew_due(opts: &PkiOptions, held: &mut [Held], now: SystemTime) -> anyhow::Result<usize> {
    if !held.iter().any(|h| due(h, now)) {
        return Ok(0);
    }
    let mut opts = opts.clone();
    opts.now = now;
    let (pki, _) = Pki::load_or_create(&opts)?;
    let mut renewed = 0;
    for h in held.iter_mut().filter(|h| due(h, now)) {
        // One that fails does not hold up the others; it is tried again.
        let replaced = issue(&pki, &h.kind, now).and_then(|pair| {
            let end = not_after(&pair)?;
            if end <= h.not_after {
                anyhow::bail!("the new certificate ends no later than the one in use");
            }
            h.live.replace(&pair.cert_pem, &pair.key_pem)?;
            Ok(end)
        });
        match replaced {
            Ok(end) => {
                h.not_after = end;
                let until = lichen_apimachinery::timestamp::format_rfc3339(end);
                tracing::info!(certificate = ?h.kind, %until, "certificate renewed");
                renewed += 1;
            }
            Err(e) => tracing::warn!(certificate = ?h.kind, error = %e, "renewing a certificate failed"),
        }
    }
    Ok(renewed)
}

fn issue(pki: &Pki, kind: &Kind, now: SystemTime) -> anyhow::Result<CertPair> {
    Ok(match kind {
        Kind::ApiServing => pki.serving.clone(),
        Kind::KubeletClient => {
            pki.issue_client(lichen_kubelet::server::APISERVER_CLIENT_CN, &[], VALIDITY, now)?
        }
        Kind::AgentClient { node } => {
            pki.issue_client(&lichen_pki::join::node_user(node), &["system:nodes"], VALIDITY, now)?
        }
        Kind::AgentServing { node, names } => pki.issue_serving(node, names, VALIDITY, now)?,
    })
}

/// Checks hourly for the life of the process.
pub async fn keep_renewed(opts: PkiOptions, mut held: Vec<Held>) {
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        if let Err(e) = renew_due(&opts, &mut held, SystemTime::now()) {
            tracing::warn!(error = %e, "renewing the server's certificates failed; retrying in an hour");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    #[test]
    fn certificates_within_thirty_days_of_their_end_are_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let mut opts = PkiOptions::new(tmp.path(), "server");
        opts.clock_floor = SystemTime::UNIX_EPOCH;
        let now = SystemTime::now();
        // Made 340 days ago: a year's certificates have 25 days left.
        opts.now = now - Duration::from_secs(340 * DAY);
        let (pki, _) = Pki::load_or_create(&opts).unwrap();
        let old_serving = pki.serving.clone();
        let client = pki.issue_client("system:node:s", &["system:nodes"], VALIDITY, opts.now).unwrap();
        // And one made 100 days ago, with most of its year to go.
        let recent = now - Duration::from_secs(100 * DAY);
        let kubelet =
            pki.issue_client(lichen_kubelet::server::APISERVER_CLIENT_CN, &[], VALIDITY, recent).unwrap();
        let mut held = vec![
            Held::new(Kind::ApiServing, &old_serving).unwrap(),
            Held::new(Kind::AgentClient { node: "s".into() }, &client).unwrap(),
            Held::new(Kind::KubeletClient, &kubelet).unwrap(),
        ];
        let before: Vec<i64> = held.iter().map(|h| h.not_after).collect();

        assert_eq!(renew_due(&opts, &mut held, now - Duration::from_secs(330 * DAY)).unwrap(), 0);
        assert_eq!(renew_due(&opts, &mut held, now).unwrap(), 2);
        let year_on = unix(now) + i64::try_from(VALIDITY.as_secs()).unwrap();
        for h in &held[..2] {
            assert!((h.not_after - year_on).abs() < 120, "{:?} renewed for a year: {}", h.kind, h.not_after);
        }
        assert_eq!(held[2].not_after, before[2], "not due: kept");
        // The serving certificate is renewed on disk too, for the next start.
        let on_disk = std::fs::read_to_string(tmp.path().join(lichen_pki::file::SERVING_CERT)).unwrap();
        assert_ne!(on_disk, old_serving.cert_pem);
        assert_eq!(lichen_pki::join::validity_of_pem(&on_disk).unwrap().1, held[0].not_after);
        assert_eq!(renew_due(&opts, &mut held, now).unwrap(), 0, "nothing is due any more");
    }
}
