//! Events as upstream's controllers record them (`source.component` is the
//! controller), with upstream's correlation: the same reason and message
//! about the same object within ten minutes bumps `count` and
//! `lastTimestamp` instead of creating another Event. Best effort: a failed
//! write is logged, never retried.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lichen_client::{Client, PatchType};
use serde_json::{Value, json};

use crate::meta;

const WINDOW: Duration = Duration::from_secs(600);
const REMEMBERED: usize = 4096;

#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: Arc<str>,
    seen: Arc<Mutex<HashMap<String, Seen>>>,
}

struct Seen {
    name: String,
    namespace: String,
    count: u64,
    at: Instant,
}

impl Recorder {
    pub fn new(client: Client, component: &str) -> Recorder {
        Recorder { client, component: Arc::from(component), seen: Arc::default() }
    }

    pub fn normal(&self, about: &Value, reason: &str, message: impl Into<String>) {
        self.record(about, "Normal", reason, message.into());
    }

    pub fn warning(&self, about: &Value, reason: &str, message: impl Into<String>) {
        self.record(about, "Warning", reason, message.into());
    }

    fn record(&self, about: &Value, kind: &str, reason: &str, message: String) {
        let ns = match meta::namespace(about) {
            "" => "default",
            ns => ns,
        };
        let now = meta::now_rfc3339();
        let correlation = format!("{}|{kind}|{reason}|{message}", meta::uid(about));
        // Ok: a repeat of a recent event; Err: a new event's name.
        let repeat = {
            let Ok(mut seen) = self.seen.lock() else { return };
            if seen.len() > REMEMBERED {
                // Forget the old; if all are recent (a burst), forget all
                // rather than scan on every event.
                seen.retain(|_, s| s.at.elapsed() < WINDOW);
                if seen.len() > REMEMBERED / 2 {
                    seen.clear();
                }
            }
            match seen.get_mut(&correlation) {
                Some(s) if s.at.elapsed() < WINDOW => {
                    s.count += 1;
                    s.at = Instant::now();
                    Ok((s.name.clone(), s.namespace.clone(), s.count))
                }
                _ => {
                    let nanos = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos())
                        .unwrap_or(0);
                    let name = format!("{}.{nanos:x}", meta::name(about));
                    seen.insert(
                        correlation,
                        Seen { name: name.clone(), namespace: ns.to_owned(), count: 1, at: Instant::now() },
                    );
                    Err(name)
                }
            }
        };
        let client = self.client.clone();
        match repeat {
            Ok((name, ns, count)) => {
                let path = meta::path("v1", "events", &ns, &name);
                let patch = json!({"count": count, "lastTimestamp": now});
                tokio::spawn(async move {
                    if let Err(e) = client.patch(&path, PatchType::Merge, &patch).await {
                        tracing::debug!(error = %e, "event not updated");
                    }
                });
            }
            Err(name) => {
                let mut involved = json!({
                    "apiVersion": about["apiVersion"],
                    "kind": about["kind"],
                    "name": meta::name(about),
                    "uid": meta::uid(about),
                    "resourceVersion": meta::resource_version(about),
                });
                if !meta::namespace(about).is_empty() {
                    involved["namespace"] = json!(meta::namespace(about));
                }
                let ev = json!({
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": name, "namespace": ns},
                    "involvedObject": involved,
                    "reason": reason,
                    "message": message,
                    "type": kind,
                    "source": {"component": &*self.component},
                    "reportingComponent": &*self.component,
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "count": 1,
                });
                let path = meta::path("v1", "events", ns, "");
                tokio::spawn(async move {
                    if let Err(e) = client.create(&path, &ev).await {
                        tracing::debug!(error = %e, "event not recorded");
                    }
                });
            }
        }
    }
}
