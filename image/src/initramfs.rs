//! The initramfs: `lichen-init` as `/init`, busybox for the rescue shell, the
//! stage-1 kernel modules with their `modules.dep`, and `/dev/console`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::cpio::{Entry, Kind};

#[derive(Default)]
pub struct Initramfs {
    entries: BTreeMap<String, Entry>,
}

impl Initramfs {
    pub fn dir(&mut self, path: &str) {
        let mut acc = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            self.entries.entry(acc.clone()).or_insert_with(|| Entry {
                path: acc.clone(),
                mode: 0o755,
                kind: Kind::Dir,
            });
        }
    }

    fn parent(&mut self, path: &str) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
    }

    pub fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) {
        self.parent(path);
        self.entries.insert(path.into(), Entry { path: path.into(), mode, kind: Kind::File(data) });
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.parent(path);
        self.entries.insert(
            path.into(),
            Entry { path: path.into(), mode: 0o777, kind: Kind::Symlink(target.into()) },
        );
    }

    pub fn char_dev(&mut self, path: &str, mode: u32, major: u32, minor: u32) {
        self.parent(path);
        self.entries
            .insert(path.into(), Entry { path: path.into(), mode, kind: Kind::CharDev { major, minor } });
    }

    /// Copies a host file.
    pub fn host_file(&mut self, path: &str, host: &Path, mode: u32) -> std::io::Result<()> {
        let data = std::fs::read(host)?;
        self.file(path, data, mode);
        Ok(())
    }

    /// The gzip-compressed newc archive.
    pub fn to_gzip(&self, mtime: u32) -> std::io::Result<Vec<u8>> {
        let entries: Vec<Entry> = self.entries.values().cloned().collect();
        let mut raw = Vec::new();
        crate::cpio::write(&mut raw, &entries, mtime)?;
        // gzip's header holds no name and mtime 0 with flate2's default, so
        // the output depends on the input alone.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&raw)?;
        gz.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_created_and_output_is_stable() {
        let mut i = Initramfs::default();
        i.file("lib/modules/6.1/kernel/a.ko", b"ko".to_vec(), 0o644);
        i.char_dev("dev/console", 0o600, 5, 1);
        assert!(i.entries.contains_key("lib/modules/6.1/kernel"));
        assert!(i.entries.contains_key("dev"));
        assert_eq!(i.to_gzip(1).unwrap(), i.to_gzip(1).unwrap());
    }
}
