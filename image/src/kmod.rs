//! Kernel modules: read each `.ko`'s `.modinfo` (what depmod reads), take the
//! closure of the modules a board asks for, and write a `modules.dep` for just
//! that subset, so the image carries a few MB of modules instead of 390 MB.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection};

#[derive(Debug, thiserror::Error)]
pub enum KmodError {
    #[error(
        "unknown kernel module {name:?} (asked for by {wanted_by}): no such .ko in {dir} and not built in"
    )]
    Unknown { name: String, wanted_by: String, dir: PathBuf },
    #[error("cannot read {path}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a kernel module: {message}")]
    Parse { path: PathBuf, message: String },
}

/// Canonical module name: dashes become underscores, as the kernel does.
pub fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

#[derive(Debug, Clone)]
pub struct Module {
    /// Path relative to `/lib/modules/<version>/`.
    pub rel: PathBuf,
    pub depends: Vec<String>,
    /// `softdep pre:` modules (for example ext4 wants crc32c first).
    pub soft_pre: Vec<String>,
}

/// All modules of one kernel version.
pub struct ModuleTree {
    pub dir: PathBuf,
    pub modules: BTreeMap<String, Module>,
    pub builtin: BTreeSet<String>,
    /// Plain (non-pattern) aliases -> modules that provide them, e.g.
    /// `crc32c` -> crc32c_generic, crc32c_intel (ext4's soft dependency).
    pub aliases: BTreeMap<String, BTreeSet<String>>,
}

impl ModuleTree {
    /// Indexes `<dir>` = `.../lib/modules/<version>`.
    pub fn scan(dir: &Path) -> Result<ModuleTree, KmodError> {
        let mut modules = BTreeMap::new();
        let mut aliases: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut stack = vec![dir.join("kernel")];
        while let Some(d) = stack.pop() {
            let entries =
                std::fs::read_dir(&d).map_err(|source| KmodError::Io { path: d.clone(), source })?;
            for e in entries {
                let e = e.map_err(|source| KmodError::Io { path: d.clone(), source })?;
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "ko") {
                    let (name, m, plain) = read_module(dir, &p)?;
                    // Keyed like softdep names, which are canonicalised
                    // (ext4 wants "crypto-crc32c").
                    for a in plain {
                        aliases.entry(canonical(&a)).or_default().insert(name.clone());
                    }
                    modules.insert(name, m);
                }
            }
        }
        let builtin = std::fs::read_to_string(dir.join("modules.builtin"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| Path::new(l).file_stem().map(|s| canonical(&s.to_string_lossy())))
            .collect();
        Ok(ModuleTree { dir: dir.to_path_buf(), modules, builtin, aliases })
    }

    /// Every module needed to load `wanted`, dependencies included. Built-in
    /// modules are satisfied without a file; unknown names are an error.
    pub fn closure(&self, wanted: &[String], wanted_by: &str) -> Result<BTreeSet<String>, KmodError> {
        let mut out = BTreeSet::new();
        let mut stack: Vec<(String, String)> =
            wanted.iter().map(|w| (canonical(w), wanted_by.to_string())).collect();
        while let Some((name, by)) = stack.pop() {
            if out.contains(&name) || self.builtin.contains(&name) {
                continue;
            }
            let Some(m) = self.modules.get(&name) else {
                return Err(KmodError::Unknown { name, wanted_by: by, dir: self.dir.clone() });
            };
            out.insert(name.clone());
            for d in &m.depends {
                stack.push((d.clone(), format!("module {name}")));
            }
            for d in self.soft_pre(m) {
                stack.push((d, format!("module {name}")));
            }
        }
        Ok(out)
    }

    /// A module's soft dependencies as module names: aliases (ext4 wants
    /// "crc32c") resolved to the modules providing them; names this kernel
    /// lacks dropped (soft dependencies are hints).
    pub fn soft_pre(&self, m: &Module) -> Vec<String> {
        let mut out = Vec::new();
        for d in &m.soft_pre {
            if self.modules.contains_key(d) {
                out.push(d.clone());
            } else if let Some(providers) = self.aliases.get(d) {
                out.extend(providers.iter().cloned());
            }
        }
        out
    }

    /// `modules.dep` in depmod's format for the given subset: each line names
    /// a module and all its transitive dependencies, the one to load first
    /// last.
    pub fn modules_dep(&self, subset: &BTreeSet<String>) -> String {
        let mut text = String::new();
        for name in subset {
            let Some(m) = self.modules.get(name) else {
                continue;
            };
            let mut order = Vec::new();
            let mut seen = BTreeSet::new();
            for d in &m.depends {
                self.post_order(d, &mut seen, &mut order);
            }
            order.reverse();
            let deps: Vec<String> = order
                .iter()
                .filter_map(|d| self.modules.get(d))
                .map(|d| d.rel.display().to_string())
                .collect();
            text.push_str(&format!("{}:", m.rel.display()));
            for d in deps {
                text.push(' ');
                text.push_str(&d);
            }
            text.push('\n');
        }
        text
    }

    /// Lines for `modules.softdep` (`softdep NAME pre: A B`).
    pub fn softdeps(&self, subset: &BTreeSet<String>) -> String {
        let mut text = String::new();
        for name in subset {
            if let Some(m) = self.modules.get(name) {
                let pre: Vec<String> = self.soft_pre(m).into_iter().filter(|d| subset.contains(d)).collect();
                if !pre.is_empty() {
                    text.push_str(&format!("softdep {name} pre: {}\n", pre.join(" ")));
                }
            }
        }
        text
    }

    fn post_order(&self, name: &str, seen: &mut BTreeSet<String>, out: &mut Vec<String>) {
        if !seen.insert(name.to_string()) {
            return;
        }
        if let Some(m) = self.modules.get(name) {
            for d in &m.depends {
                self.post_order(d, seen, out);
            }
        }
        out.push(name.to_string());
    }
}

fn read_module(root: &Path, path: &Path) -> Result<(String, Module, Vec<String>), KmodError> {
    let data = std::fs::read(path).map_err(|source| KmodError::Io { path: path.into(), source })?;
    let info = modinfo(&data).map_err(|message| KmodError::Parse { path: path.into(), message })?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let mut name = canonical(&stem);
    let mut depends = Vec::new();
    let mut soft_pre = Vec::new();
    let mut plain_aliases = Vec::new();
    for (k, v) in info {
        match k.as_str() {
            "alias" if !v.contains(['*', '?', '[', ':']) => plain_aliases.push(v),
            "name" => name = canonical(&v),
            "depends" => depends.extend(v.split(',').filter(|s| !s.is_empty()).map(canonical)),
            "softdep" => soft_pre.extend(parse_softdep_pre(&v)),
            _ => {}
        }
    }
    let rel = path.strip_prefix(root).unwrap_or(path).to_path_buf();
    Ok((name, Module { rel, depends, soft_pre }, plain_aliases))
}

/// `pre: a b post: c` -> [a, b]
fn parse_softdep_pre(v: &str) -> Vec<String> {
    let mut pre = Vec::new();
    let mut in_pre = false;
    for word in v.split_whitespace() {
        match word {
            "pre:" => in_pre = true,
            "post:" => in_pre = false,
            w if in_pre => pre.push(canonical(w)),
            _ => {}
        }
    }
    pre
}

/// Key/value pairs of a module's `.modinfo` section.
pub fn modinfo(data: &[u8]) -> Result<Vec<(String, String)>, String> {
    let file = object::File::parse(data).map_err(|e| e.to_string())?;
    let section = file.section_by_name(".modinfo").ok_or("no .modinfo section")?;
    let bytes = section.data().map_err(|e| e.to_string())?;
    Ok(bytes
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let s = std::str::from_utf8(kv).ok()?;
            let (k, v) = s.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(mods: &[(&str, &[&str])]) -> ModuleTree {
        ModuleTree {
            dir: PathBuf::from("/lib/modules/x"),
            modules: mods
                .iter()
                .map(|(n, d)| {
                    (
                        n.to_string(),
                        Module {
                            rel: PathBuf::from(format!("kernel/{n}.ko")),
                            depends: d.iter().map(|s| s.to_string()).collect(),
                            soft_pre: vec![],
                        },
                    )
                })
                .collect(),
            builtin: ["virtio".to_string()].into(),
            aliases: [("crc32c".to_string(), ["c".to_string()].into())].into(),
        }
    }

    #[test]
    fn closure_follows_dependencies_and_skips_builtins() {
        let t = tree(&[("a", &["b", "virtio"]), ("b", &["c"]), ("c", &[]), ("d", &[])]);
        let c = t.closure(&["a".into()], "board").unwrap();
        assert_eq!(c.into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn unknown_module_names_who_wanted_it() {
        let t = tree(&[("a", &["zz"])]);
        let e = t.closure(&["a".into()], "board").unwrap_err().to_string();
        assert!(e.contains("\"zz\"") && e.contains("module a"), "{e}");
        let e = t.closure(&["nope".into()], "board x").unwrap_err().to_string();
        assert!(e.contains("\"nope\"") && e.contains("board x"), "{e}");
    }

    #[test]
    fn dashes_are_canonicalised() {
        let t = tree(&[("nls_cp437", &[])]);
        assert!(t.closure(&["nls-cp437".into()], "b").unwrap().contains("nls_cp437"));
    }

    #[test]
    fn modules_dep_lists_first_to_load_last() {
        let t = tree(&[("a", &["b"]), ("b", &["c"]), ("c", &[])]);
        let all = t.closure(&["a".into()], "b").unwrap();
        let dep = t.modules_dep(&all);
        assert!(dep.contains("kernel/a.ko: kernel/b.ko kernel/c.ko\n"), "{dep}");
        assert!(dep.contains("kernel/c.ko:\n"), "{dep}");
    }

    #[test]
    fn soft_dependencies_through_aliases_are_followed() {
        let mut t = tree(&[("ext4", &[]), ("c", &[])]);
        t.modules.get_mut("ext4").unwrap().soft_pre = vec!["crc32c".into(), "missing".into()];
        let all = t.closure(&["ext4".into()], "b").unwrap();
        assert!(all.contains("c"), "{all:?}");
        assert_eq!(t.softdeps(&all), "softdep ext4 pre: c\n");
    }

    #[test]
    fn softdep_pre_parsing() {
        assert_eq!(parse_softdep_pre("pre: crc32c post: x"), vec!["crc32c"]);
    }
}
