//! Pod garbage collection, as upstream's PodGC: terminated pods beyond
//! the threshold (oldest first), pods bound to nodes that no longer exist
//! (after a quarantine), and terminating pods that were never scheduled
//! are deleted. Runs every 20 s.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lichen_client::Client;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::{Informers, meta};

/// Upstream's `--terminated-pod-gc-threshold` default.
pub const THRESHOLD: usize = 12500;
const PERIOD: Duration = Duration::from_secs(20);
/// How long a node must be gone before its pods are.
const QUARANTINE: Duration = Duration::from_secs(40);

pub fn start(tasks: &mut JoinSet<()>, client: &Client, informers: &Informers, threshold: usize) {
    let (client, pods, nodes) = (client.clone(), informers.pods.clone(), informers.nodes.clone());
    pods.needed();
    nodes.needed();
    tasks.spawn(async move {
        pods.synced().await;
        nodes.synced().await;
        let mut missing: HashMap<String, Instant> = HashMap::new();
        loop {
            tokio::time::sleep(PERIOD).await;
            let all = pods.list();
            let mut doomed: Vec<&Value> = Vec::new();
            // Terminated pods beyond the threshold, oldest first.
            let mut done: Vec<&Value> = all
                .iter()
                .map(|p| &**p)
                .filter(|p| matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
                .collect();
            if done.len() > threshold {
                done.sort_by_key(|p| meta::creation(p));
                let extra = done.len() - threshold;
                doomed.extend(done.into_iter().take(extra));
            }
            // Pods on nodes that are gone.
            let mut seen_missing = HashMap::new();
            for p in all.iter().map(|p| &**p) {
                let node = p["spec"]["nodeName"].as_str().unwrap_or("");
                if node.is_empty() || nodes.get(node).is_some() {
                    continue;
                }
                let since = *missing.get(node).unwrap_or(&Instant::now());
                seen_missing.insert(node.to_owned(), since);
                if since.elapsed() > QUARANTINE {
                    doomed.push(p);
                }
            }
            missing = seen_missing;
            // Terminating pods no node will ever finish.
            for p in all.iter().map(|p| &**p) {
                if meta::is_terminating(p) && p["spec"]["nodeName"].as_str().unwrap_or("").is_empty() {
                    doomed.push(p);
                }
            }
            for p in doomed {
                let path = meta::path("v1", "pods", meta::namespace(p), meta::name(p));
                let opts = json!({"gracePeriodSeconds": 0, "preconditions": {"uid": meta::uid(p)}});
                match client.delete(&path, &opts).await {
                    Ok(_) => pods.assume_deleted(&meta::key_of(p)),
                    Err(e) => tracing::debug!(pod = %meta::name(p), error = %e, "pod GC delete failed"),
                }
            }
        }
    });
}
