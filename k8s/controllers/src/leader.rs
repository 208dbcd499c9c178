//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go's
//! `leaderelection`: whoever holds a Lease that has been renewed recently
//! leads; the others retry. Expiry is judged by when *this* process last saw
//! the record change, not by comparing clocks with the holder.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lichen_client::{Client, ClientError};
use serde_json::{Value, json};

#[derive(Clone)]
pub struct Election {
    pub namespace: String,
    pub name: String,
    /// Who we are: unique per process.
    pub identity: String,
    /// How long a Lease holds without renewal.
    pub lease_duration: Duration,
    /// The leader gives up after failing to renew for this long.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

impl Election {
    /// Upstream's defaults: 15 s lease, 10 s renew deadline, 2 s retry.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Election {
        Election {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    fn path(&self) -> String {
        format!("/apis/coordination.k8s.io/v1/namespaces/{}/leases/{}", self.namespace, self.name)
    }

    /// Campaigns forever; while leading, runs `lead()`. When leadership is
    /// lost, the task running `lead()` is aborted and the campaign resumes.
    pub async fn run<F, Fut>(self, client: Client, mut lead: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut seen = Observed::default();
        loop {
            match self.try_acquire_or_renew(&client, &mut seen).await {
                Ok(true) => {}
                Ok(false) => {
                    tokio::time::sleep(self.retry_period).await;
                    continue;
                }
                Err(e) => {
                    tracing::debug!(error = %e, lease = %self.name, "lease not acquired");
                    tokio::time::sleep(self.retry_period).await;
                    continue;
                }
            }
            tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
            let task = tokio::spawn(lead());
            let mut last_renew = Instant::now();
            loop {
                tokio::time::sleep(self.retry_period).await;
                // A renewal that hangs must not keep us leading past the
                // deadline, or two servers would run controllers.
                let left = self.renew_deadline.saturating_sub(last_renew.elapsed());
                match tokio::time::timeout(left, self.try_acquire_or_renew(&client, &mut seen)).await {
                    Ok(Ok(true)) => last_renew = Instant::now(),
                    Ok(Ok(false)) => break,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "lease renewal failed");
                        if last_renew.elapsed() > self.renew_deadline {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            tracing::warn!(lease = %self.name, "lost leadership; controllers stopped");
            task.abort();
        }
    }

    /// One attempt; `Ok(true)` when we hold the Lease afterwards.
    async fn try_acquire_or_renew(&self, client: &Client, seen: &mut Observed) -> Result<bool, ClientError> {
        let now = micro_time(SystemTime::now());
        let secs = i64::try_from(self.lease_duration.as_secs()).unwrap_or(15);
        let Some(mut lease) = client.get_opt(&self.path()).await? else {
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": secs,
                    "acquireTime": now,
                    "renewTime": now,
                    "leaseTransitions": 0,
                },
            });
            let path = format!("/apis/coordination.k8s.io/v1/namespaces/{}/leases", self.namespace);
            return match client.create(&path, &lease).await {
                Ok(_) => Ok(true),
                Err(e) if e.is_conflict() => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = &lease["spec"];
        let holder = spec["holderIdentity"].as_str().unwrap_or("").to_owned();
        let record = format!("{holder}|{}", spec["renewTime"].as_str().unwrap_or(""));
        if seen.record != record {
            seen.record = record;
            seen.at = Some(Instant::now());
        }
        let held_by_other = !holder.is_empty() && holder != self.identity;
        if held_by_other {
            let duration = Duration::from_secs(spec["leaseDurationSeconds"].as_u64().unwrap_or(15));
            if seen.at.is_some_and(|t| t.elapsed() < duration) {
                return Ok(false);
            }
        }
        let s = &mut lease["spec"];
        if holder != self.identity {
            s["acquireTime"] = json!(now);
            s["leaseTransitions"] = json!(s["leaseTransitions"].as_i64().unwrap_or(0) + 1);
        }
        s["holderIdentity"] = json!(self.identity);
        s["leaseDurationSeconds"] = json!(secs);
        s["renewTime"] = json!(now);
        match client.replace(&self.path(), &lease).await {
            Ok(v) => {
                seen.record = record_of(&v);
                seen.at = Some(Instant::now());
                Ok(true)
            }
            Err(e) if e.is_conflict() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[derive(Default)]
struct Observed {
    record: String,
    at: Option<Instant>,
}

fn record_of(lease: &Value) -> String {
    format!(
        "{}|{}",
        lease["spec"]["holderIdentity"].as_str().unwrap_or(""),
        lease["spec"]["renewTime"].as_str().unwrap_or("")
    )
}

/// `metav1.MicroTime`: RFC 3339 with microseconds.
pub fn micro_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    lichen_apimachinery::timestamp::format_rfc3339_micros(
        i64::try_from(d.as_secs()).unwrap_or(0),
        d.subsec_micros(),
    )
}
