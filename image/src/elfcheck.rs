//! Proves that every ELF program and library in a root filesystem finds its
//! interpreter and every `DT_NEEDED` library inside that root filesystem, the
//! way the dynamic loader on the device will look for them.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use object::read::elf::{Dyn, FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, FileKind, elf};

/// One unresolved reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub binary: String,
    pub library: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ElfCheckError {
    #[error("the root filesystem lacks libraries: {}; add the Debian package that ships each to the board's [packages]", list(.0))]
    Missing(Vec<Missing>),
    #[error("cannot read {path}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: malformed ELF: {message}")]
    Parse { path: PathBuf, message: String },
}

fn list(m: &[Missing]) -> String {
    m.iter().map(|m| format!("/{} needs {}", m.binary, m.library)).collect::<Vec<_>>().join(", ")
}

#[derive(Debug, Default)]
struct ElfDeps {
    interp: Option<String>,
    needed: Vec<String>,
    runpath: Vec<String>,
}

/// Checks every ELF file under `root`. Returns how many were checked.
pub fn check(root: &Path) -> Result<usize, ElfCheckError> {
    let mut missing = Vec::new();
    let mut checked = 0;
    let files = walk(root)?;
    let lib_dirs = library_dirs(root);
    for rel in files {
        let path = root.join(&rel);
        if rel.extension().is_some_and(|e| e == "ko") {
            continue;
        }
        let data = std::fs::read(&path).map_err(|source| ElfCheckError::Io { path: path.clone(), source })?;
        if !data.starts_with(b"\x7fELF") {
            continue;
        }
        let deps = parse(&data).map_err(|message| ElfCheckError::Parse { path: path.clone(), message })?;
        let Some(deps) = deps else { continue };
        checked += 1;
        let name = rel.display().to_string();
        if let Some(interp) = &deps.interp
            && resolve(root, Path::new(interp)).is_none()
        {
            missing.push(Missing { binary: name.clone(), library: interp.clone() });
        }
        let origin = Path::new("/").join(rel.parent().unwrap_or(Path::new("")));
        for lib in &deps.needed {
            let mut dirs: Vec<PathBuf> = deps
                .runpath
                .iter()
                .map(|r| PathBuf::from(r.replace("$ORIGIN", &origin.display().to_string())))
                .collect();
            dirs.extend(lib_dirs.iter().cloned());
            if !dirs.iter().any(|d| resolve(root, &d.join(lib)).is_some()) {
                missing.push(Missing { binary: name.clone(), library: lib.clone() });
            }
        }
    }
    if missing.is_empty() { Ok(checked) } else { Err(ElfCheckError::Missing(missing)) }
}

/// The loader's default search path, multiarch directories first.
fn library_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for base in ["lib", "usr/lib"] {
        if let Ok(rd) = std::fs::read_dir(root.join(base)) {
            let mut multi: Vec<PathBuf> = rd
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.contains("-linux-gnu"))
                .map(|n| Path::new("/").join(base).join(n))
                .collect();
            multi.sort();
            dirs.extend(multi);
        }
    }
    for d in ["/lib", "/usr/lib", "/lib64", "/usr/lib64"] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

/// Resolves an absolute path inside `root`, following symlinks (absolute
/// ones relative to `root`). Returns the host path of the final file.
pub fn resolve(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<String> = Vec::new();
    let mut todo: Vec<String> = components(path).into_iter().rev().collect();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            parts.pop();
            continue;
        }
        parts.push(c);
        let host = root.join(parts.join("/"));
        let meta = std::fs::symlink_metadata(&host).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&host).ok()?;
            parts.pop();
            if target.is_absolute() {
                parts.clear();
            }
            todo.extend(components(&target).into_iter().rev());
        }
    }
    let host = root.join(parts.join("/"));
    host.is_file().then_some(host)
}

fn components(p: &Path) -> Vec<String> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().to_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Regular files under root, relative, sorted.
fn walk(root: &Path) -> Result<Vec<PathBuf>, ElfCheckError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let rd = std::fs::read_dir(&dir).map_err(|source| ElfCheckError::Io { path: dir.clone(), source })?;
        for e in rd {
            let e = e.map_err(|source| ElfCheckError::Io { path: dir.clone(), source })?;
            let ft = e.file_type().map_err(|source| ElfCheckError::Io { path: e.path(), source })?;
            let r = rel.join(e.file_name());
            if ft.is_dir() {
                stack.push(r);
            } else if ft.is_file() {
                out.push(r);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Interpreter, needed libraries and runpath of an executable or shared
/// object; `None` for relocatable objects and other ELF kinds.
fn parse(data: &[u8]) -> Result<Option<ElfDeps>, String> {
    match FileKind::parse(data).map_err(|e| e.to_string())? {
        FileKind::Elf32 => parse_as::<elf::FileHeader32<Endianness>>(data),
        FileKind::Elf64 => parse_as::<elf::FileHeader64<Endianness>>(data),
        other => Err(format!("unexpected file kind {other:?}")),
    }
}

fn parse_as<H: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<Option<ElfDeps>, String> {
    let err = |e: object::read::Error| e.to_string();
    let header = H::parse(data).map_err(err)?;
    let endian = header.endian().map_err(err)?;
    let e_type = header.e_type(endian);
    if e_type != elf::ET_EXEC && e_type != elf::ET_DYN {
        return Ok(None);
    }
    let mut deps = ElfDeps::default();
    for ph in header.program_headers(endian, data).map_err(err)? {
        if ph.p_type(endian) == elf::PT_INTERP {
            let raw = ph.data(endian, data).map_err(|()| "bad PT_INTERP".to_string())?;
            let s = raw.split(|b| *b == 0).next().unwrap_or(&[]);
            deps.interp = Some(String::from_utf8_lossy(s).to_string());
        }
    }
    let sections = header.sections(endian, data).map_err(err)?;
    let mut by_tag: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for section in sections.iter() {
        if section.sh_type(endian) != elf::SHT_DYNAMIC {
            continue;
        }
        let Some((dyns, link)) = section.dynamic(endian, data).map_err(err)? else {
            continue;
        };
        let strings = sections.strings(endian, data, link).map_err(err)?;
        for d in dyns {
            let Some(tag) = d.tag32(endian) else { continue };
            if matches!(tag, elf::DT_NEEDED | elf::DT_RUNPATH | elf::DT_RPATH) {
                let s = d.string(endian, strings).map_err(err)?;
                by_tag.entry(tag).or_default().push(String::from_utf8_lossy(s).to_string());
            }
        }
    }
    deps.needed = by_tag.remove(&elf::DT_NEEDED).unwrap_or_default();
    for tag in [elf::DT_RUNPATH, elf::DT_RPATH] {
        for r in by_tag.remove(&tag).unwrap_or_default() {
            deps.runpath.extend(r.split(':').map(str::to_string));
        }
    }
    Ok(Some(deps))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Copies a real dynamically linked binary of this host (with its
    /// interpreter and libc, or without) and checks the verdict.
    fn host_binary() -> Option<PathBuf> {
        ["/usr/bin/true", "/bin/true"].iter().map(PathBuf::from).find(|p| p.exists())
    }

    #[test]
    fn missing_library_is_named() {
        let Some(bin) = host_binary() else { return };
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("usr/bin")).unwrap();
        std::fs::copy(&bin, root.path().join("usr/bin/true")).unwrap();
        let err = check(root.path()).unwrap_err().to_string();
        assert!(err.contains("/usr/bin/true needs libc.so.6"), "{err}");
        assert!(err.contains("ld-linux"), "{err}");
    }

    #[test]
    fn resolved_through_symlinks_passes() {
        let Some(bin) = host_binary() else { return };
        let data = std::fs::read(&bin).unwrap();
        let deps = parse(&data).unwrap().unwrap();
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::fs::copy(&bin, r.join("usr/bin/true")).unwrap();
        // Lay the interpreter behind an absolute symlink, as Debian does.
        let interp = PathBuf::from(deps.interp.unwrap());
        let real = r.join("lib/real-ld.so");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, b"not elf").unwrap();
        let link = r.join(interp.strip_prefix("/").unwrap());
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/lib/real-ld.so", &link).unwrap();
        for lib in deps.needed {
            std::fs::write(r.join("lib").join(lib), b"not elf").unwrap();
        }
        assert_eq!(check(r).unwrap(), 1);
    }

    #[test]
    fn resolve_handles_relative_and_dotdot_links() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/sbin")).unwrap();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::fs::write(r.join("usr/sbin/runc"), b"x").unwrap();
        std::os::unix::fs::symlink("../sbin/runc", r.join("usr/bin/runc")).unwrap();
        assert!(resolve(r, Path::new("/usr/bin/runc")).is_some());
        assert!(resolve(r, Path::new("/usr/bin/nothing")).is_none());
    }
}
