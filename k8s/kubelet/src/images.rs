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

use std::collections::{HashMap, HashSet};
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

/// Imports one archive; returns the image names it held. The error says
/// which file and what ctr said.
pub async fn import(agent: &Agent, path: &Path) -> Result<Vec<String>, String> {
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
        // ctr prints `unpacking <name> (sha256:…)...done` per image.
        let names = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("unpacking "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect();
        return Ok(names);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let said = if err.trim().is_empty() {
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    } else {
        err.trim().to_owned()
    };
    Err(format!("importing {}: ctr {}: {said}", path.display(), out.status))
}

/// Failed imports: how many times, and not before when to try again.
type Failed = HashMap<PathBuf, (u32, std::time::Instant)>;

/// Back-off between attempts at an archive that failed: 5 s doubling to
/// 5 min. A failure may be containerd's (restarting, still starting up),
/// so it is retried; a broken archive is retried rarely.
fn retry_after(failures: u32) -> Duration {
    SCAN_EVERY.saturating_mul(1 << failures.saturating_sub(1).min(6)).min(Duration::from_secs(300))
}

/// One pass: imports what is new or changed, adding the names to `pinned`.
async fn scan(agent: &Agent, seen: &mut Seen, failed: &mut Failed, pinned: &mut HashSet<String>) {
    let now = std::time::Instant::now();
    let found = agent.cfg.images_dirs.iter().flat_map(|dir| changed(dir, seen));
    let due: Vec<_> = found.filter(|(p, _)| failed.get(p).is_none_or(|(_, at)| *at <= now)).collect();
    for (path, key) in due {
        let started = std::time::Instant::now();
        match import(agent, &path).await {
            Ok(names) => {
                tracing::info!(file = %path.display(), images = ?names, ms = started.elapsed().as_millis(), "air-gap image imported");
                pinned.extend(names);
                failed.remove(&path);
                seen.insert(path, key);
            }
            Err(e) => {
                let n = failed.get(&path).map_or(1, |(n, _)| n + 1);
                let wait = retry_after(n);
                tracing::error!(error = %e, retry_in_s = wait.as_secs(), "air-gap image not imported");
                failed.insert(path, (n, std::time::Instant::now() + wait));
            }
        }
    }
}

/// How often image garbage collection looks at the image filesystem.
const GC_EVERY: Duration = Duration::from_secs(30);

/// Imports what is there once the runtime answers (the caller waits for
/// this before starting pods), then keeps watching the directory and
/// collecting image garbage.
pub async fn initial_then_watch(agent: Agent) -> tokio::task::JoinHandle<()> {
    let mut ready = agent.runtime_ready.subscribe();
    let _ = tokio::time::timeout(Duration::from_secs(60), ready.wait_for(|r| *r)).await;
    let mut seen = Seen::new();
    let mut failed = Failed::new();
    let mut pinned = HashSet::new();
    if *agent.runtime_ready.borrow() {
        scan(&agent, &mut seen, &mut failed, &mut pinned).await;
    }
    tokio::spawn(async move {
        let mut usage = gc::Usage::default();
        let mut last_gc = std::time::Instant::now();
        loop {
            tokio::time::sleep(SCAN_EVERY).await;
            if !*agent.runtime_ready.borrow() {
                continue;
            }
            scan(&agent, &mut seen, &mut failed, &mut pinned).await;
            if last_gc.elapsed() >= GC_EVERY {
                gc::run_once(&agent, &mut usage, &pinned).await;
                last_gc = std::time::Instant::now();
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

    #[test]
    fn failed_imports_are_retried_ever_more_slowly() {
        let waits: Vec<u64> = (1..=9).map(|n| retry_after(n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
    }
}

/// Image garbage collection as upstream's image GC manager: when the image
/// filesystem is above `high` percent used, images no container uses are
/// removed, least recently used first, until it is below `low`. Pinned
/// images (the sandbox image, and every air-gap image: there is no
/// registry to pull them back from) are kept.
pub mod gc {
    use std::collections::{HashMap, HashSet};
    use std::time::Instant;

    use crate::Agent;
    use crate::cri::{api, describe};

    /// When each image was last seen in use (or first seen).
    #[derive(Default)]
    pub struct Usage {
        last_used: HashMap<String, Instant>,
        first_seen: HashMap<String, Instant>,
    }

    /// Percent of the image filesystem in use, from CRI's ImageFsInfo.
    async fn usage_percent(agent: &Agent) -> Option<(u64, u64)> {
        let mut is = agent.cri.images.clone();
        let info = is.image_fs_info(api::ImageFsInfoRequest {}).await.ok()?.into_inner();
        let fs = info.image_filesystems.first()?;
        let mount = fs.fs_id.as_ref()?.mountpoint.clone();
        let (capacity, available) = crate::node::fs_space(std::path::Path::new(&mount))?;
        Some((capacity.saturating_sub(available), capacity))
    }

    /// One pass; returns the images removed.
    pub async fn run_once(agent: &Agent, usage: &mut Usage, pinned: &HashSet<String>) -> Vec<String> {
        let (high, low) = (agent.cfg.image_gc_high_percent, agent.cfg.image_gc_low_percent);
        let Some((used, capacity)) = usage_percent(agent).await else {
            tracing::debug!("image GC: no image filesystem information");
            return Vec::new();
        };
        tracing::debug!(used, capacity, high, low, "image GC");
        if capacity == 0 {
            return Vec::new();
        }
        let mut is = agent.cri.images.clone();
        let mut rt = agent.cri.runtime.clone();
        let Ok(images) = is.list_images(api::ListImagesRequest { filter: None }).await else {
            return Vec::new();
        };
        let Ok(containers) = rt.list_containers(api::ListContainersRequest { filter: None }).await else {
            return Vec::new();
        };
        let in_use: HashSet<String> =
            containers.into_inner().containers.iter().map(|c| c.image_ref.clone()).collect();
        let now = Instant::now();
        let images = images.into_inner().images;
        for i in &images {
            usage.first_seen.entry(i.id.clone()).or_insert(now);
            let e = usage.last_used.entry(i.id.clone()).or_insert(now);
            if in_use.contains(&i.id) {
                *e = now;
            }
        }
        usage.last_used.retain(|id, _| images.iter().any(|i| &i.id == id));
        usage.first_seen.retain(|id, _| images.iter().any(|i| &i.id == id));
        if used * 100 < capacity * u64::from(high) {
            return Vec::new();
        }
        let target = capacity * u64::from(low) / 100;
        let mut to_free = used.saturating_sub(target);
        // Images younger than this are spared (upstream's
        // --minimum-image-ttl-duration): a pod may be about to start from one
        // just pulled.
        let min_age = agent.cfg.image_gc_min_age;
        let mut candidates: Vec<&api::Image> = images
            .iter()
            .filter(|i| !i.pinned && !in_use.contains(&i.id))
            .filter(|i| usage.first_seen.get(&i.id).is_some_and(|t| now.duration_since(*t) >= min_age))
            .filter(|i| !i.repo_tags.iter().any(|t| pinned.contains(t)))
            .collect();
        candidates.sort_by_key(|i| usage.last_used.get(&i.id).copied().unwrap_or(now));
        let mut removed = Vec::new();
        for i in candidates {
            if to_free == 0 {
                break;
            }
            let name = i.repo_tags.first().cloned().unwrap_or_else(|| i.id.clone());
            let spec = api::ImageSpec { image: i.id.clone(), ..Default::default() };
            match is.remove_image(api::RemoveImageRequest { image: Some(spec) }).await {
                Ok(_) => {
                    tracing::info!(image = %name, bytes = i.size, "image garbage-collected");
                    to_free = to_free.saturating_sub(i.size);
                    removed.push(name);
                }
                Err(e) => tracing::warn!(image = %name, error = %describe(&e), "image garbage collection"),
            }
        }
        removed
    }
}
