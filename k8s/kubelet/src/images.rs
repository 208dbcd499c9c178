//! Air-gap images: OCI or docker-archive tarballs (optionally gzip or
//! zstd compressed) dropped into the images directory are imported into
//! containerd's `k8s.io` namespace at start and whenever a file appears
//! or changes.
//!
//! The import itself is containerd's own `ctr images import` (shipped in
//! the image): unpacking layers into the snapshotter is most of the work
//! and containerd's client library is the only complete implementation;
//! re-doing it over the content, images, diff and snapshot services would
//! be a second copy of containerd's client in Rust.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::Agent;

/// How often the directory is looked at.
const SCAN_EVERY: Duration = Duration::from_secs(5);
/// An import that takes longer is abandoned (and retried on the next change).
const IMPORT_TIMEOUT: Duration = Duration::from_secs(600);

/// A file as last seen: size and modification time.
type Seen = HashMap<PathBuf, (u64, SystemTime)>;

fn is_archive(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    [".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd"].iter().any(|s| name.ends_with(s))
}

/// Archives that are new or changed since `seen`.
fn changed(dir: &Path, seen: &Seen) -> Vec<(PathBuf, (u64, SystemTime))> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_archive(p))
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            let key = (m.len(), m.modified().ok()?);
            (seen.get(&p) != Some(&key)).then_some((p, key))
        })
        .collect();
    out.sort();
    out
}

/// Imports one archive; the error says which file and what ctr said.
pub async fn import(agent: &Agent, path: &Path) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new(&agent.cfg.ctr);
    cmd.arg("--address")
        .arg(&agent.cfg.containerd_socket)
        .args(["--namespace", "k8s.io", "images", "import", "--all-platforms"])
        .arg(path)
        .kill_on_drop(true);
    let out = tokio::time::timeout(IMPORT_TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("importing {}: timed out after {}s", path.display(), IMPORT_TIMEOUT.as_secs()))?
        .map_err(|e| format!("importing {}: cannot run {}: {e}", path.display(), agent.cfg.ctr.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(format!("importing {}: {}", path.display(), err.trim()))
}

/// One pass: imports what is new or changed. Returns how many imported.
async fn scan(agent: &Agent, seen: &mut Seen) -> usize {
    let mut imported = 0;
    for (path, key) in changed(&agent.cfg.images_dir, seen) {
        let started = std::time::Instant::now();
        match import(agent, &path).await {
            Ok(()) => {
                imported += 1;
                tracing::info!(file = %path.display(), ms = started.elapsed().as_millis(), "air-gap image imported");
            }
            // Not retried until the file changes: a broken archive stays broken.
            Err(e) => tracing::error!(error = %e, "air-gap image not imported"),
        }
        seen.insert(path, key);
    }
    imported
}

/// Imports what is there once the runtime answers (the caller waits for
/// this before starting pods), then keeps watching the directory.
pub async fn initial_then_watch(agent: Agent) -> tokio::task::JoinHandle<()> {
    let mut ready = agent.runtime_ready.subscribe();
    let _ = tokio::time::timeout(Duration::from_secs(60), ready.wait_for(|r| *r)).await;
    let mut seen = Seen::new();
    if *agent.runtime_ready.borrow() {
        scan(&agent, &mut seen).await;
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SCAN_EVERY).await;
            if *agent.runtime_ready.borrow() {
                scan(&agent, &mut seen).await;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_and_changed_archives_only() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let a = dir.path().join("a.tar");
        std::fs::write(&a, b"x").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("b.tar.zst"), b"x").unwrap_or_else(|e| panic!("{e}"));
        let mut seen = Seen::new();
        let first = changed(dir.path(), &seen);
        assert_eq!(first.len(), 2);
        seen.extend(first);
        assert!(changed(dir.path(), &seen).is_empty());
        std::fs::write(&a, b"xy").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(changed(dir.path(), &seen).iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(), [a]);
    }
}
