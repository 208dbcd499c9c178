//! The staging tree of the root filesystem: files taken from Debian packages
//! (filtered by the board's globs), kernel modules, the overlays and the files
//! Lichen generates (os-release, module lists, SBOM).

use std::path::{Path, PathBuf};

use glob::{MatchOptions, Pattern};

use crate::apt::Package;
use crate::board::PackageSpec;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{path}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("package {package}: bad include glob {glob:?}: {message}")]
    Glob { package: String, glob: String, message: String },
    #[error("package {package}: include glob {glob:?} matches no file; fix the board's [packages.{package}]")]
    NoMatch { package: String, glob: String },
    #[error("overlay {path}: {message}")]
    Overlay { path: PathBuf, message: String },
    #[error(
        "[symlinks] \"{link}\" = \"{target}\": the target is not a file in the rootfs; \
         add the package that ships it or fix the board's [symlinks]"
    )]
    DanglingSymlink { link: String, target: String },
}

/// Paths no image needs: documentation and other init systems' files.
const ALWAYS_DROP: &[&str] = &[
    "usr/share/doc/**",
    "usr/share/man/**",
    "usr/share/info/**",
    "usr/share/lintian/**",
    "usr/share/bug/**",
    "usr/share/locale/**",
    "usr/share/bash-completion/**",
    "usr/share/zsh/**",
    "lib/systemd/**",
    "usr/lib/systemd/**",
    "etc/init.d/**",
    "etc/default/**",
    "etc/logrotate.d/**",
];

const OPTS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

pub fn io(path: &Path, source: std::io::Error) -> RootfsError {
    RootfsError::Io { path: path.to_path_buf(), source }
}

/// Lays `pkg`'s files matching `spec` into `root`. Returns the file count.
pub fn add_package(root: &Path, pkg: &Package, spec: &PackageSpec) -> Result<usize, RootfsError> {
    let compile = |g: &str| {
        Pattern::new(g).map_err(|e| RootfsError::Glob {
            package: pkg.name.clone(),
            glob: g.to_string(),
            message: e.msg.to_string(),
        })
    };
    let include: Vec<Pattern> = spec.include.iter().map(|g| compile(g)).collect::<Result<_, _>>()?;
    let drop: Vec<Pattern> = ALWAYS_DROP.iter().map(|g| compile(g)).collect::<Result<_, _>>()?;
    let mut used = vec![false; include.len()];
    let mut count = 0;
    for rel in list_tree(&pkg.root)? {
        let s = rel.to_string_lossy();
        if s == ".complete" || drop.iter().any(|p| p.matches_with(&s, OPTS)) {
            continue;
        }
        if !include.is_empty() {
            let hit: Vec<usize> = include
                .iter()
                .enumerate()
                .filter(|(_, p)| p.matches_with(&s, OPTS))
                .map(|(i, _)| i)
                .collect();
            if hit.is_empty() {
                continue;
            }
            for i in hit {
                used[i] = true;
            }
        }
        copy_entry(&pkg.root.join(&rel), &root.join(&rel))?;
        count += 1;
    }
    if let Some(i) = used.iter().position(|u| !u) {
        // A glob that matches nothing hides a renamed file; say so. Globs for
        // other architectures' paths are written with wildcards, so they match.
        let any_other_matched = used.iter().any(|u| *u);
        if !any_other_matched || !spec.include[i].contains('*') {
            return Err(RootfsError::NoMatch { package: pkg.name.clone(), glob: spec.include[i].clone() });
        }
    }
    Ok(count)
}

/// Copies a tree (an overlay) into root, files and symlinks, keeping modes.
pub fn add_tree(root: &Path, tree: &Path) -> Result<usize, RootfsError> {
    if !tree.is_dir() {
        return Err(RootfsError::Overlay { path: tree.to_path_buf(), message: "not a directory".into() });
    }
    let mut n = 0;
    for rel in list_tree(tree)? {
        copy_entry(&tree.join(&rel), &root.join(&rel))?;
        n += 1;
    }
    Ok(n)
}

/// Non-directory entries below `dir`, relative and sorted.
pub fn list_tree(dir: &Path) -> Result<Vec<PathBuf>, RootfsError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let d = dir.join(&rel);
        for e in std::fs::read_dir(&d).map_err(|s| io(&d, s))? {
            let e = e.map_err(|s| io(&d, s))?;
            let ft = e.file_type().map_err(|s| io(&e.path(), s))?;
            let r = rel.join(e.file_name());
            if ft.is_dir() {
                stack.push(r);
            } else {
                out.push(r);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Copies one file or symlink, creating parent directories (0755).
pub fn copy_entry(from: &Path, to: &Path) -> Result<(), RootfsError> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|s| io(parent, s))?;
    }
    let meta = std::fs::symlink_metadata(from).map_err(|s| io(from, s))?;
    if std::fs::symlink_metadata(to).is_ok() {
        std::fs::remove_file(to).map_err(|s| io(to, s))?;
    }
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(from).map_err(|s| io(from, s))?;
        std::os::unix::fs::symlink(target, to).map_err(|s| io(to, s))?;
    } else {
        std::fs::copy(from, to).map_err(|s| io(from, s))?;
    }
    Ok(())
}

/// Writes a generated file with the given mode.
pub fn write_file(root: &Path, rel: &str, data: &[u8], mode: u32) -> Result<(), RootfsError> {
    use std::os::unix::fs::PermissionsExt;
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).map_err(|s| io(parent, s))?;
    }
    std::fs::write(&p, data).map_err(|s| io(&p, s))?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).map_err(|s| io(&p, s))
}

pub fn symlink(root: &Path, rel: &str, target: &str) -> Result<(), RootfsError> {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).map_err(|s| io(parent, s))?;
    }
    let _ = std::fs::remove_file(&p);
    std::os::unix::fs::symlink(target, &p).map_err(|s| io(&p, s))
}

/// Makes the board's `[symlinks]` (path relative to / → target), then
/// checks that each ends at a file of the rootfs: a dangling link is an
/// error naming it. Call it once the tree is complete (packages, overlays).
pub fn add_symlinks(
    root: &Path,
    links: &std::collections::BTreeMap<String, String>,
) -> Result<(), RootfsError> {
    for (link, target) in links {
        symlink(root, link, target)?;
    }
    for (link, target) in links {
        if crate::elfcheck::resolve(root, &Path::new("/").join(link)).is_none() {
            return Err(RootfsError::DanglingSymlink { link: link.clone(), target: target.clone() });
        }
    }
    Ok(())
}

pub fn mkdirs(root: &Path, dirs: &[&str]) -> Result<(), RootfsError> {
    for d in dirs {
        let p = root.join(d);
        std::fs::create_dir_all(&p).map_err(|s| io(&p, s))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(dir: &Path) -> Package {
        for f in ["usr/bin/a", "usr/bin/b", "usr/share/doc/x/copyright", "lib/systemd/system/a.service"] {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        std::os::unix::fs::symlink("a", dir.join("usr/bin/c")).unwrap();
        Package {
            name: "p".into(),
            version: "1".into(),
            arch: "amd64".into(),
            sha256: String::new(),
            deb: PathBuf::new(),
            root: dir.to_path_buf(),
        }
    }

    #[test]
    fn include_globs_filter_and_docs_are_dropped() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let p = pkg(src.path());
        let n = add_package(dst.path(), &p, &PackageSpec::default()).unwrap();
        assert_eq!(n, 3, "docs and systemd units dropped");
        let dst2 = tempfile::tempdir().unwrap();
        let spec = PackageSpec { include: vec!["usr/bin/a".into(), "usr/bin/c".into()] };
        assert_eq!(add_package(dst2.path(), &p, &spec).unwrap(), 2);
        assert!(std::fs::symlink_metadata(dst2.path().join("usr/bin/c")).unwrap().file_type().is_symlink());
        assert!(!dst2.path().join("usr/bin/b").exists());
    }

    #[test]
    fn board_symlinks_are_made_and_checked() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write_file(r, "usr/sbin/xtables-nft-multi", b"x", 0o755).unwrap();
        let mut links = std::collections::BTreeMap::new();
        links.insert("usr/sbin/iptables".to_string(), "xtables-nft-multi".to_string());
        links.insert("usr/bin/iptables".to_string(), "../sbin/iptables".to_string());
        links.insert("bin/iptables".to_string(), "/usr/sbin/iptables".to_string());
        add_symlinks(r, &links).unwrap();
        assert_eq!(std::fs::read_link(r.join("usr/sbin/iptables")).unwrap(), Path::new("xtables-nft-multi"));
        assert_eq!(std::fs::read(r.join("usr/bin/iptables")).unwrap(), b"x");

        links.insert("usr/sbin/nft".to_string(), "nft-multi".to_string());
        let e = add_symlinks(r, &links).unwrap_err().to_string();
        assert!(e.contains("\"usr/sbin/nft\" = \"nft-multi\"") && e.contains("[symlinks]"), "{e}");
    }

    #[test]
    fn glob_matching_nothing_is_an_error() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let spec = PackageSpec { include: vec!["usr/bin/zzz".into()] };
        let e = add_package(dst.path(), &pkg(src.path()), &spec).unwrap_err().to_string();
        assert!(e.contains("usr/bin/zzz") && e.contains("[packages.p]"), "{e}");
    }
}
