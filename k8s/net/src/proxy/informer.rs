//! A cache of one resource kind: list, then watch from the list's
//! resourceVersion; list again after 410 Gone or any error, with back-off.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lichen_client::{Client, ClientError, q};
use serde_json::Value;
use tokio::sync::Notify;

/// The objects of one kind by `namespace/name`, once listed.
#[derive(Default)]
pub struct Cache {
    pub objects: BTreeMap<String, Value>,
    pub synced: bool,
}

pub type Shared = Arc<Mutex<Cache>>;

fn key(obj: &Value) -> String {
    let meta = &obj["metadata"];
    format!("{}/{}", meta["namespace"].as_str().unwrap_or(""), meta["name"].as_str().unwrap_or(""))
}

fn lock(cache: &Shared) -> std::sync::MutexGuard<'_, Cache> {
    // A panic while holding the lock leaves a consistent map behind.
    cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why a list or watch stopped.
enum Stop {
    /// The stream ended: watch again from the last version.
    Ended,
    /// 410 Gone or an error: list again.
    Relist(Option<ClientError>),
}

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Keeps `cache` equal to the objects under `path` (a collection path
/// such as `/api/v1/services`) matching `selector`, notifying `changed`
/// after every change. Never returns.
pub async fn run(
    client: Client,
    path: &'static str,
    selector: &'static str,
    cache: Shared,
    changed: Arc<Notify>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let rv = match list(&client, path, selector, &cache).await {
            Ok(rv) => {
                changed.notify_one();
                backoff = BACKOFF_MIN;
                rv
            }
            Err(e) => {
                tracing::warn!(path, error = %e, retry_in = ?backoff, "listing failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let mut rv = rv;
        loop {
            match watch(&client, path, selector, &mut rv, &cache, &changed).await {
                Stop::Ended => continue,
                Stop::Relist(None) => {
                    tracing::debug!(path, "watch expired (410 Gone); listing again");
                    break;
                }
                Stop::Relist(Some(e)) => {
                    tracing::warn!(path, error = %e, retry_in = ?backoff, "watch failed; listing again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    break;
                }
            }
        }
    }
}

async fn list(client: &Client, path: &str, selector: &str, cache: &Shared) -> Result<String, ClientError> {
    let list = client.get(&format!("{path}?labelSelector={}", q(selector))).await?;
    let rv = list.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("").to_owned();
    let objects = list["items"].as_array().into_iter().flatten().map(|o| (key(o), o.clone())).collect();
    let mut c = lock(cache);
    c.objects = objects;
    c.synced = true;
    Ok(rv)
}

async fn watch(
    client: &Client,
    path: &str,
    selector: &str,
    rv: &mut String,
    cache: &Shared,
    changed: &Notify,
) -> Stop {
    let url = format!(
        "{path}?watch=true&allowWatchBookmarks=true&resourceVersion={}&labelSelector={}&timeoutSeconds=300",
        q(rv),
        q(selector)
    );
    let mut events = match client.watch(&url).await {
        Ok(rx) => rx,
        Err(e) if e.is_gone() => return Stop::Relist(None),
        Err(e) => return Stop::Relist(Some(e)),
    };
    while let Some(event) = events.recv().await {
        let event = match event {
            Ok(ev) => ev,
            Err(e) => return Stop::Relist(Some(e)),
        };
        if let Some(v) = event.object.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
            v.clone_into(rv);
        }
        match event.kind.as_str() {
            "ADDED" | "MODIFIED" => {
                lock(cache).objects.insert(key(&event.object), event.object);
            }
            "DELETED" => {
                lock(cache).objects.remove(&key(&event.object));
            }
            "BOOKMARK" => continue,
            _ => {
                // ERROR: a Status; 410 means the version was compacted.
                let code = event.object["code"].as_u64();
                tracing::debug!(path, ?code, message = event.object["message"].as_str(), "watch error event");
                return Stop::Relist(None);
            }
        }
        changed.notify_one();
    }
    Stop::Ended
}
