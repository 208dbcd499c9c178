//! Pod volumes on the host, under `<root>/pods/<uid>/volumes/<kind>/<name>`:
//! emptyDir (a directory, or tmpfs for `medium: Memory`), hostPath, and
//! the API-backed kinds (configMap, secret, downwardAPI, projected), which
//! are rewritten on every sync so updates reach running pods.
//!
//! API-backed volumes are written as upstream's atomic writer does: the
//! files go into a fresh `..<timestamp>` directory, the `..data` symlink is
//! swapped to it with a rename, and each top-level name is a symlink
//! through `..data`. A container never sees half an update.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

use super::env::{Lookup, field_value, resource_value};
use crate::spec::{DownwardApiFile, KeyToPath, Pod, Volume};

/// Files of an API-backed volume: relative path → (bytes, mode).
type Payload = BTreeMap<String, (Vec<u8>, u32)>;

pub fn pod_dir(root: &Path, uid: &str) -> PathBuf {
    root.join("pods").join(uid)
}

/// Whether `s` is a DNS-1123 label (lowercase alphanumerics and '-', at
/// most 63, alphanumeric at both ends). Host paths are built from volume
/// and container names, so nothing else may pass (the API server does not
/// validate pod specs yet).
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Makes every volume of the pod ready; returns the host path of each by
/// name. The error is the message users see (upstream's FailedMount text).
pub async fn prepare(
    root: &Path,
    pod: &Pod,
    lookup: &mut Lookup,
    pod_ips: &[String],
) -> Result<HashMap<String, PathBuf>, String> {
    let base = pod_dir(root, &pod.metadata.uid).join("volumes");
    let mut out = HashMap::new();
    for v in &pod.spec.volumes {
        if !is_dns_label(&v.name) {
            return Err(format!("volume name {:?} is not a DNS-1123 label", v.name));
        }
        let fail = |e: String| format!("MountVolume.SetUp failed for volume \"{}\" : {e}", v.name);
        let path = prepare_one(&base, pod, v, lookup, pod_ips).await.map_err(fail)?;
        out.insert(v.name.clone(), path);
    }
    Ok(out)
}

async fn prepare_one(
    base: &Path,
    pod: &Pod,
    v: &Volume,
    lookup: &mut Lookup,
    pod_ips: &[String],
) -> Result<PathBuf, String> {
    let io = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    if let Some(e) = &v.empty_dir {
        let dir = base.join("kubernetes.io~empty-dir").join(&v.name);
        std::fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| io("cannot chmod", &dir, e))?;
        if e.medium.as_deref() == Some("Memory") && !is_mountpoint(&dir) {
            mount_tmpfs(&dir).map_err(|e| io("cannot mount tmpfs on", &dir, e))?;
        }
        return Ok(dir);
    }
    if let Some(h) = &v.host_path {
        let path = PathBuf::from(&h.path);
        check_host_path(&path, h.kind.as_deref().unwrap_or(""))?;
        return Ok(path);
    }
    if v.persistent_volume_claim.is_some() {
        return Err("persistentVolumeClaim volumes are not supported by this node yet".into());
    }
    let (kind, payload) = if let Some(c) = &v.config_map {
        let mode = c.default_mode.unwrap_or(0o644);
        let Some(data) = lookup.config_map(&c.name).await.map_err(|e| e.to_string())? else {
            if c.optional == Some(true) {
                return write_volume(base, "kubernetes.io~configmap", &v.name, Payload::new());
            }
            return Err(format!("configmap \"{}\" not found", c.name));
        };
        ("kubernetes.io~configmap", project_keys(&data, &c.items, mode, "ConfigMap", &c.name, c.optional)?)
    } else if let Some(s) = &v.secret {
        let mode = s.default_mode.unwrap_or(0o644);
        let Some(data) = lookup.secret(&s.secret_name).await.map_err(|e| e.to_string())? else {
            if s.optional == Some(true) {
                return write_volume(base, "kubernetes.io~secret", &v.name, Payload::new());
            }
            return Err(format!("secret \"{}\" not found", s.secret_name));
        };
        ("kubernetes.io~secret", project_keys(&data, &s.items, mode, "Secret", &s.secret_name, s.optional)?)
    } else if let Some(d) = &v.downward_api {
        ("kubernetes.io~downward-api", downward(pod, &d.items, d.default_mode.unwrap_or(0o644), pod_ips)?)
    } else if let Some(p) = &v.projected {
        let mode = p.default_mode.unwrap_or(0o644);
        let mut all = Payload::new();
        for src in &p.sources {
            if let Some(c) = &src.config_map {
                match lookup.config_map(&c.name).await.map_err(|e| e.to_string())? {
                    Some(data) => {
                        all.extend(project_keys(&data, &c.items, mode, "ConfigMap", &c.name, c.optional)?)
                    }
                    None if c.optional == Some(true) => {}
                    None => return Err(format!("configmap \"{}\" not found", c.name)),
                }
            }
            if let Some(s) = &src.secret {
                match lookup.secret(&s.name).await.map_err(|e| e.to_string())? {
                    Some(data) => {
                        all.extend(project_keys(&data, &s.items, mode, "Secret", &s.name, s.optional)?)
                    }
                    None if s.optional == Some(true) => {}
                    None => return Err(format!("secret \"{}\" not found", s.name)),
                }
            }
            if let Some(d) = &src.downward_api {
                all.extend(downward(pod, &d.items, mode, pod_ips)?);
            }
            if let Some(t) = &src.service_account_token {
                let token = lookup.service_account_token(pod, t).await?;
                all.insert(t.path.clone(), (token.into_bytes(), mode));
            }
        }
        ("kubernetes.io~projected", all)
    } else {
        return Err("volume type not supported by this node".into());
    };
    write_volume(base, kind, &v.name, payload)
}

/// The keys of a ConfigMap's or Secret's data (already decoded to bytes)
/// as files: all keys, or the listed `items` with their paths and modes.
fn project_keys(
    data: &BTreeMap<String, Vec<u8>>,
    items: &[KeyToPath],
    mode: u32,
    kind: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<Payload, String> {
    let mut out = Payload::new();
    if items.is_empty() {
        for (k, v) in data {
            out.insert(k.clone(), (v.clone(), mode));
        }
        return Ok(out);
    }
    for item in items {
        match data.get(&item.key) {
            Some(v) => {
                out.insert(item.path.clone(), (v.clone(), item.mode.unwrap_or(mode)));
            }
            None if optional == Some(true) => {}
            None if kind == "Secret" => {
                return Err(format!("secret {name} references non-existent secret key: {}", item.key));
            }
            None => return Err(format!("configmap {name} references non-existent config key: {}", item.key)),
        }
    }
    Ok(out)
}

fn downward(pod: &Pod, items: &[DownwardApiFile], mode: u32, pod_ips: &[String]) -> Result<Payload, String> {
    let mut out = Payload::new();
    for item in items {
        let text = if let Some(f) = &item.field_ref {
            field_value(pod, &f.field_path, pod_ips, "")?
        } else if let Some(r) = &item.resource_field_ref {
            let c = r.container_name.as_deref().unwrap_or("");
            resource_value(pod, c, r)?
        } else {
            return Err(format!(
                "downwardAPI item {:?} has neither fieldRef nor resourceFieldRef",
                item.path
            ));
        };
        out.insert(item.path.clone(), (text.into_bytes(), item.mode.unwrap_or(mode)));
    }
    Ok(out)
}

/// Writes the payload atomically unless it is already there.
fn write_volume(base: &Path, kind: &str, name: &str, payload: Payload) -> Result<PathBuf, String> {
    let dir = base.join(kind).join(name);
    atomic_write(&dir, &payload).map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
    Ok(dir)
}

fn current_payload(dir: &Path) -> Option<Payload> {
    let data = dir.join("..data");
    let target = std::fs::read_link(&data).ok()?;
    let mut out = Payload::new();
    fn walk(root: &Path, rel: &Path, out: &mut Payload) -> std::io::Result<()> {
        for e in std::fs::read_dir(root.join(rel))? {
            let e = e?;
            let r = rel.join(e.file_name());
            let meta = e.metadata()?;
            if meta.is_dir() {
                walk(root, &r, out)?;
            } else {
                out.insert(
                    r.to_string_lossy().into_owned(),
                    (std::fs::read(root.join(&r))?, meta.permissions().mode() & 0o777),
                );
            }
        }
        Ok(())
    }
    walk(&dir.join(target), Path::new(""), &mut out).ok()?;
    Some(out)
}

pub fn atomic_write(dir: &Path, payload: &Payload) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if current_payload(dir).as_ref() == Some(payload) {
        return Ok(());
    }
    for path in payload.keys() {
        if path.is_empty()
            || path.starts_with('/')
            || path.split('/').any(|c| c == ".." || c.starts_with(".."))
        {
            return Err(std::io::Error::other(format!("invalid file path {path:?}")));
        }
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let ts = format!("..{}_{:09}", now.as_secs(), now.subsec_nanos());
    let new = dir.join(&ts);
    std::fs::create_dir_all(&new)?;
    for (path, (bytes, mode)) in payload {
        let p = new.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, bytes)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))?;
    }
    let old = std::fs::read_link(dir.join("..data")).ok();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(&ts, &tmp)?;
    std::fs::rename(&tmp, dir.join("..data"))?;
    // Top-level names link through ..data; stale ones go.
    let tops: std::collections::BTreeSet<String> =
        payload.keys().map(|p| p.split('/').next().unwrap_or(p).to_owned()).collect();
    for top in &tops {
        let link = dir.join(top);
        if std::fs::read_link(&link).ok().as_deref() != Some(Path::new(&format!("..data/{top}"))) {
            let _ = std::fs::remove_file(&link);
            symlink(format!("..data/{top}"), &link)?;
        }
    }
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !tops.contains(&name) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    if let Some(old) = old
        && old != Path::new(&ts)
    {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(())
}

fn check_host_path(path: &Path, kind: &str) -> Result<(), String> {
    let meta = std::fs::metadata(path);
    let missing = || format!("hostPath type check failed: {} is not a {}", path.display(), kind_noun(kind));
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            if meta.is_err() {
                std::fs::create_dir_all(path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        "FileOrCreate" => {
            if meta.is_err() {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                }
                std::fs::write(path, b"").map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            }
            Ok(())
        }
        "Directory" => meta.ok().filter(|m| m.is_dir()).map(|_| ()).ok_or_else(missing),
        "File" => meta.ok().filter(|m| m.is_file()).map(|_| ()).ok_or_else(missing),
        "Socket" | "CharDevice" | "BlockDevice" => {
            use std::os::unix::fs::FileTypeExt;
            let ok = meta.as_ref().is_ok_and(|m| {
                let t = m.file_type();
                match kind {
                    "Socket" => t.is_socket(),
                    "CharDevice" => t.is_char_device(),
                    _ => t.is_block_device(),
                }
            });
            if ok { Ok(()) } else { Err(missing()) }
        }
        other => Err(format!("invalid hostPath type {other:?}")),
    }
}

fn kind_noun(kind: &str) -> &'static str {
    match kind {
        "Directory" => "directory",
        "File" => "file",
        "Socket" => "socket",
        "CharDevice" => "character device",
        "BlockDevice" => "block device",
        _ => "path",
    }
}

fn is_mountpoint(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let want = dir.to_string_lossy();
    text.lines().any(|l| l.split(' ').nth(4) == Some(&want))
}

fn mount_tmpfs(dir: &Path) -> std::io::Result<()> {
    rustix::mount::mount(
        "tmpfs",
        dir,
        "tmpfs",
        rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV,
        c"mode=0777",
    )
    .map_err(std::io::Error::from)
}

/// Unmounts tmpfs volumes and removes the pod's directory.
pub fn remove_pod_dir(root: &Path, uid: &str) {
    let dir = pod_dir(root, uid);
    if let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") {
        let prefix = dir.to_string_lossy().into_owned();
        let mut mounts: Vec<&str> =
            text.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(&prefix)).collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = rustix::mount::unmount(m, rustix::mount::UnmountFlags::DETACH);
        }
    }
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove pod directory");
    }
}

/// A ConfigMap's `data` and `binaryData`, or a Secret's `data` (base64)
/// and `stringData`, as bytes by key.
pub fn decode_data(obj: &Value, secret: bool) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(m) = obj["data"].as_object() {
        for (k, v) in m {
            let s = v.as_str().unwrap_or("");
            let bytes = if secret { b64.decode(s).unwrap_or_default() } else { s.as_bytes().to_vec() };
            out.insert(k.clone(), bytes);
        }
    }
    if let Some(m) = obj["binaryData"].as_object() {
        for (k, v) in m {
            out.insert(k.clone(), b64.decode(v.as_str().unwrap_or("")).unwrap_or_default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(items: &[(&str, &str)]) -> Payload {
        items.iter().map(|(k, v)| ((*k).to_owned(), (v.as_bytes().to_vec(), 0o644))).collect()
    }

    #[test]
    fn atomic_updates_swap_data_and_drop_stale_keys() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = t.path().join("vol");
        atomic_write(&dir, &payload(&[("a", "1"), ("b", "2")])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap_or_default(), "1");
        let first = std::fs::read_link(dir.join("..data")).unwrap_or_default();
        // Same payload: nothing rewritten.
        atomic_write(&dir, &payload(&[("a", "1"), ("b", "2")])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read_link(dir.join("..data")).unwrap_or_default(), first);
        atomic_write(&dir, &payload(&[("a", "3"), ("c/d", "4")])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap_or_default(), "3");
        assert_eq!(std::fs::read_to_string(dir.join("c/d")).unwrap_or_default(), "4");
        assert!(!dir.join("b").exists());
        assert!(!dir.join(&first).exists(), "old generation removed");
    }

    #[test]
    fn names_must_be_labels() {
        for good in ["a", "web-1", "x0"] {
            assert!(is_dns_label(good), "{good}");
        }
        for bad in ["", "/etc", "../x", "A", "a/b", "-a", "a-", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }

    #[test]
    fn paths_cannot_escape() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for bad in ["../x", "/etc/passwd", "a/../../b", "..data"] {
            assert!(atomic_write(&t.path().join("v"), &payload(&[(bad, "x")])).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_path_types() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let d = t.path().join("made");
        assert!(check_host_path(&d, "DirectoryOrCreate").is_ok() && d.is_dir());
        let f = t.path().join("f");
        assert!(check_host_path(&f, "FileOrCreate").is_ok() && f.is_file());
        assert!(check_host_path(&f, "Directory").unwrap_err().contains("is not a directory"));
        assert!(check_host_path(&t.path().join("nope"), "File").is_err());
    }
}
