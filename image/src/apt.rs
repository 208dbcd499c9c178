//! Debian packages: resolve with `apt-cache`, download with `apt-get download`
//! into a cache, verify their sha256 and unpack them with `dpkg-deb`.
//!
//! apt is the one privileged-looking tool the build uses, and only to read the
//! package lists `make deps` keeps fresh; downloading and unpacking run as any
//! user.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum AptError {
    #[error(
        "package {package} ({arch}) is not known to apt; run `make deps` (apt-get update) or fix the board file"
    )]
    Unknown { package: String, arch: String },
    #[error("cannot run {tool}")]
    Spawn { tool: &'static str, source: std::io::Error },
    #[error("{tool} failed for {package}: {stderr}")]
    Tool { tool: &'static str, package: String, stderr: String },
    #[error("apt metadata for {package} has no {field}")]
    Metadata { package: String, field: &'static str },
    #[error("downloaded {path} has sha256 {found}, apt says {expected}")]
    Checksum { path: PathBuf, expected: String, found: String },
    #[error("{package} is a metapackage with no linux-image dependency")]
    NoKernel { package: String },
    #[error("cache {path}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// One resolved, downloaded and unpacked package: an SBOM entry.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// sha256 of the .deb file.
    pub sha256: String,
    #[serde(skip)]
    pub deb: PathBuf,
    /// Directory holding the unpacked file tree.
    #[serde(skip)]
    pub root: PathBuf,
}

/// Package cache rooted at `<cache>/debs/<arch>` and `<cache>/unpacked/<arch>`.
pub struct Apt {
    cache: PathBuf,
    arch: String,
}

impl Apt {
    pub fn new(cache: &Path, arch: &str) -> Apt {
        Apt { cache: cache.to_path_buf(), arch: arch.to_string() }
    }

    /// Resolves the candidate versions of `names`, downloads and unpacks
    /// them, with one `apt-cache` call (each call parses all package lists,
    /// about a second).
    pub fn fetch_all(&self, names: &[String]) -> Result<Vec<Package>, AptError> {
        let records = self.show_many(names)?;
        let mut out = Vec::new();
        for name in names {
            let meta = records
                .get(name)
                .ok_or_else(|| AptError::Unknown { package: name.clone(), arch: self.arch.clone() })?;
            out.push(self.fetch_record(name, meta)?);
        }
        Ok(out)
    }

    fn fetch_record(&self, name: &str, meta: &str) -> Result<Package, AptError> {
        let version = field(meta, "Version")
            .ok_or_else(|| AptError::Metadata { package: name.into(), field: "Version" })?;
        let sha256 = field(meta, "SHA256")
            .ok_or_else(|| AptError::Metadata { package: name.into(), field: "SHA256" })?;
        let pkg_arch = field(meta, "Architecture").unwrap_or_else(|| self.arch.clone());
        let debs = self.cache.join("debs").join(&self.arch);
        mkdir(&debs)?;
        let deb = debs.join(format!("{name}_{}_{pkg_arch}.deb", version.replace(':', "%3a")));
        let root = self.cache.join("unpacked").join(&self.arch).join(format!("{name}_{version}"));
        // An unpacked tree records the sha256 it came from; trust it rather
        // than hashing large .debs on every build.
        let stamp = root.join(".complete");
        if std::fs::read_to_string(&stamp).ok().as_deref() == Some(sha256.as_str()) && deb.exists() {
            return Ok(Package { name: name.into(), version, arch: pkg_arch, sha256, deb, root });
        }
        if !deb.exists() || sha256_file(&deb).map_err(|source| io(&deb, source))? != sha256 {
            self.download(name, &version, &debs)?;
        }
        let found = sha256_file(&deb).map_err(|source| io(&deb, source))?;
        if found != sha256 {
            return Err(AptError::Checksum { path: deb, expected: sha256, found });
        }
        unpack(&deb, &root, name)?;
        std::fs::write(&stamp, &sha256).map_err(|source| io(&stamp, source))?;
        Ok(Package { name: name.into(), version, arch: pkg_arch, sha256, deb, root })
    }

    /// `apt-cache show` records by package name.
    fn show_many(&self, names: &[String]) -> Result<std::collections::BTreeMap<String, String>, AptError> {
        let specs: Vec<String> = names.iter().map(|n| format!("{n}:{}", self.arch)).collect();
        let out = Command::new("apt-cache")
            .args(["show", "--no-all-versions"])
            .args(&specs)
            .env("LC_ALL", "C")
            .output()
            .map_err(|source| AptError::Spawn { tool: "apt-cache", source })?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut map = std::collections::BTreeMap::new();
        for para in text.split("\n\n") {
            if let Some(pkg) = field(para, "Package") {
                map.entry(pkg).or_insert_with(|| para.to_string());
            }
        }
        if let Some(missing) = names.iter().find(|n| !map.contains_key(*n)) {
            return Err(AptError::Unknown { package: missing.clone(), arch: self.arch.clone() });
        }
        Ok(map)
    }

    /// The versioned kernel package a metapackage such as linux-image-amd64
    /// points to (or the package itself when it is already versioned).
    pub fn resolve_kernel(&self, name: &str) -> Result<String, AptError> {
        let records = self.show_many(&[name.to_string()])?;
        let depends = records.get(name).and_then(|meta| field(meta, "Depends")).unwrap_or_default();
        if name.chars().any(|c| c.is_ascii_digit()) && depends.is_empty() {
            return Ok(name.to_string());
        }
        depends
            .split(',')
            .map(|d| d.split_whitespace().next().unwrap_or(""))
            .find(|d| d.starts_with("linux-image-"))
            .map(str::to_string)
            .ok_or_else(|| AptError::NoKernel { package: name.into() })
    }

    fn download(&self, name: &str, version: &str, dir: &Path) -> Result<(), AptError> {
        let spec = format!("{name}:{}={version}", self.arch);
        let out = Command::new("apt-get")
            .args(["download", "-q", &spec])
            .current_dir(dir)
            .env("LC_ALL", "C")
            .output()
            .map_err(|source| AptError::Spawn { tool: "apt-get", source })?;
        if !out.status.success() {
            return Err(AptError::Tool {
                tool: "apt-get download",
                package: name.into(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }
}

/// First value of `name:` in an apt-cache show record (first paragraph).
fn field(meta: &str, name: &str) -> Option<String> {
    let prefix = format!("{name}:");
    meta.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().to_string())
}

fn unpack(deb: &Path, root: &Path, name: &str) -> Result<(), AptError> {
    if root.exists() {
        std::fs::remove_dir_all(root).map_err(|source| io(root, source))?;
    }
    mkdir(root)?;
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(root)
        .output()
        .map_err(|source| AptError::Spawn { tool: "dpkg-deb", source })?;
    if !out.status.success() {
        return Err(AptError::Tool {
            tool: "dpkg-deb -x",
            package: name.into(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

fn mkdir(p: &Path) -> Result<(), AptError> {
    std::fs::create_dir_all(p).map_err(|source| io(p, source))
}

fn io(p: &Path, source: std::io::Error) -> AptError {
    AptError::Io { path: p.to_path_buf(), source }
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex(&h.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs apt's package lists (any Debian host); skipped elsewhere.
    #[test]
    fn unknown_package_is_named() {
        if Command::new("apt-cache").arg("--version").output().is_err() {
            eprintln!("apt-cache not installed; skipping");
            return;
        }
        let cache = tempfile::tempdir().unwrap();
        let apt = Apt::new(cache.path(), "amd64");
        let e = apt.fetch_all(&["lichen-no-such-package".into()]).unwrap_err().to_string();
        assert!(e.contains("lichen-no-such-package") && e.contains("board file"), "{e}");
    }

    #[test]
    fn field_reads_first_paragraph_only() {
        let meta = "Package: a\nVersion: 1.0\nSHA256: abc\n\nPackage: a\nVersion: 0.9\n";
        assert_eq!(field(meta, "Version").as_deref(), Some("1.0"));
        assert_eq!(field(meta, "SHA256").as_deref(), Some("abc"));
        assert_eq!(field(meta, "Depends"), None);
    }
}
