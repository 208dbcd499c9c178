//! Kernel module loading without kmod: read `modules.dep` (and
//! `modules.softdep`), order each wanted module after its dependencies, and
//! `finit_module` them one by one.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use crate::sys::Kernel;

pub fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

/// Parsed module metadata of one kernel release directory.
#[derive(Debug, Default)]
pub struct ModuleIndex {
    base: PathBuf,
    /// name -> (path relative to base, dependency names)
    modules: BTreeMap<String, (PathBuf, Vec<String>)>,
    soft_pre: BTreeMap<String, Vec<String>>,
    builtin: BTreeSet<String>,
}

fn name_of(rel: &str) -> String {
    let file = rel.rsplit('/').next().unwrap_or(rel);
    let stem = file.split(".ko").next().unwrap_or(file);
    canonical(stem)
}

impl ModuleIndex {
    /// Reads `<base>/modules.dep`, `modules.softdep` and `modules.builtin`.
    pub fn load(base: &Path) -> io::Result<ModuleIndex> {
        let dep = std::fs::read_to_string(base.join("modules.dep"))?;
        let soft = std::fs::read_to_string(base.join("modules.softdep")).unwrap_or_default();
        let builtin = std::fs::read_to_string(base.join("modules.builtin")).unwrap_or_default();
        Ok(ModuleIndex::parse(base, &dep, &soft, &builtin))
    }

    pub fn parse(base: &Path, dep: &str, soft: &str, builtin: &str) -> ModuleIndex {
        let mut idx = ModuleIndex { base: base.to_path_buf(), ..Default::default() };
        for line in dep.lines() {
            let Some((module, deps)) = line.split_once(':') else {
                continue;
            };
            let deps = deps.split_whitespace().map(name_of).collect();
            idx.modules.insert(name_of(module), (PathBuf::from(module.trim()), deps));
        }
        for line in soft.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("softdep") {
                continue;
            }
            let Some(name) = words.next() else { continue };
            let mut pre = Vec::new();
            let mut in_pre = false;
            for w in words {
                match w {
                    "pre:" => in_pre = true,
                    "post:" => in_pre = false,
                    w if in_pre => pre.push(canonical(w)),
                    _ => {}
                }
            }
            idx.soft_pre.insert(canonical(name), pre);
        }
        idx.builtin = builtin.lines().map(name_of).collect();
        idx
    }

    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&canonical(name))
    }

    /// Files to load, dependencies first, each once; and the names that are
    /// neither modules nor built in.
    pub fn load_order(&self, wanted: &[String]) -> (Vec<(String, PathBuf)>, Vec<String>) {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        let mut unknown = Vec::new();
        for w in wanted {
            let w = canonical(w);
            if !self.modules.contains_key(&w) && !self.builtin.contains(&w) {
                unknown.push(w);
                continue;
            }
            self.visit(&w, &mut seen, &mut order);
        }
        (order, unknown)
    }

    fn visit(&self, name: &str, seen: &mut BTreeSet<String>, order: &mut Vec<(String, PathBuf)>) {
        if !seen.insert(name.to_string()) {
            return;
        }
        for pre in self.soft_pre.get(name).into_iter().flatten() {
            if self.modules.contains_key(pre) {
                self.visit(pre, seen, order);
            }
        }
        let Some((rel, deps)) = self.modules.get(name) else {
            return;
        };
        for d in deps {
            self.visit(d, seen, order);
        }
        order.push((name.to_string(), self.base.join(rel)));
    }
}

/// What loading a list of modules did.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub loaded: usize,
    pub already: usize,
    pub failed: Vec<(String, io::Error)>,
    pub unknown: Vec<String>,
}

/// Loads `wanted` and their dependencies; a module that fails is reported,
/// not fatal (hardware drivers fail where their hardware is absent).
pub fn load(k: &mut dyn Kernel, idx: &ModuleIndex, wanted: &[String]) -> LoadReport {
    let (order, unknown) = idx.load_order(wanted);
    let mut r = LoadReport { unknown, ..Default::default() };
    for (name, path) in order {
        match k.load_module(&path) {
            Ok(()) => r.loaded += 1,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => r.already += 1,
            Err(e) => r.failed.push((name, e)),
        }
    }
    r
}

/// Loads the modules named in `list` for the running kernel, logging what
/// failed; boot goes on either way.
pub fn load_listed(k: &mut dyn Kernel, list: &Path) {
    let release = rustix::system::uname().release().to_string_lossy().to_string();
    let base = PathBuf::from("/lib/modules").join(&release);
    let idx = match ModuleIndex::load(&base) {
        Ok(i) => i,
        Err(e) => {
            crate::warn!("no module index at {}: {e}", base.display());
            return;
        }
    };
    let r = load(k, &idx, &read_list(list));
    for (name, e) in &r.failed {
        crate::warn!("module {name}: {e}");
    }
    for name in &r.unknown {
        crate::warn!("module {name} is not in this image");
    }
    crate::info!("{} modules loaded, {} already present (kernel {release})", r.loaded, r.already);
}

/// Module names from a list file: one per line, `#` comments.
pub fn read_list(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Fake;

    const DEP: &str = "kernel/fs/ext4/ext4.ko: kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko kernel/lib/crc16.ko\n\
kernel/fs/mbcache.ko:\nkernel/fs/jbd2/jbd2.ko:\nkernel/lib/crc16.ko:\n\
kernel/drivers/block/virtio_blk.ko:\nkernel/lib/crc32c_generic.ko:\n";

    fn idx() -> ModuleIndex {
        ModuleIndex::parse(
            Path::new("/lib/modules/6.1"),
            DEP,
            "softdep ext4 pre: crc32c_generic\n",
            "kernel/drivers/virtio/virtio_pci.ko\n",
        )
    }

    #[test]
    fn dependencies_and_softdeps_load_first() {
        let (order, unknown) = idx().load_order(&["ext4".into(), "virtio-pci".into(), "virtio_blk".into()]);
        let names: Vec<&str> = order.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["crc32c_generic", "mbcache", "jbd2", "crc16", "ext4", "virtio_blk"]);
        assert!(unknown.is_empty(), "built-in virtio_pci is not unknown");
        assert_eq!(order[4].1, Path::new("/lib/modules/6.1/kernel/fs/ext4/ext4.ko"));
    }

    #[test]
    fn each_module_loads_once_and_failures_are_reported() {
        let mut k = Fake::new();
        k.bad_modules.insert(PathBuf::from("/lib/modules/6.1/kernel/drivers/block/virtio_blk.ko"));
        let r = load(&mut k, &idx(), &["ext4".into(), "jbd2".into(), "virtio_blk".into(), "nope".into()]);
        assert_eq!(r.loaded, 5);
        assert_eq!(r.failed.len(), 1);
        assert_eq!(r.failed[0].0, "virtio_blk");
        assert_eq!(r.unknown, vec!["nope"]);
        assert_eq!(k.calls_starting("insmod").len(), 6);
    }
}
