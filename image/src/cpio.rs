//! A `newc` cpio archive writer (the format the kernel unpacks as initramfs).
//!
//! Written here rather than taken from a crate because it is forty lines and
//! because the image needs entries no unprivileged host file can supply: a
//! `/dev/console` character device owned by root.

use std::io::{self, Write};

#[derive(Debug, Clone)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    CharDev { major: u32, minor: u32 },
}

#[derive(Debug, Clone)]
pub struct Entry {
    /// Path without leading slash, e.g. `bin/busybox`.
    pub path: String,
    pub mode: u32,
    pub kind: Kind,
}

/// Writes `entries` in the order given (parents must precede children),
/// every entry owned by root with modification time `mtime`.
pub fn write<W: Write>(out: &mut W, entries: &[Entry], mtime: u32) -> io::Result<()> {
    let mut w = Counter { inner: out, n: 0 };
    for (i, e) in entries.iter().enumerate() {
        let (fmt, data, dev): (u32, &[u8], (u32, u32)) = match &e.kind {
            Kind::Dir => (0o040000, &[], (0, 0)),
            Kind::File(d) => (0o100000, d, (0, 0)),
            Kind::Symlink(t) => (0o120000, t.as_bytes(), (0, 0)),
            Kind::CharDev { major, minor } => (0o020000, &[], (*major, *minor)),
        };
        let nlink = if matches!(e.kind, Kind::Dir) { 2 } else { 1 };
        let ino = u32::try_from(i + 1).map_err(|_| io::Error::other("too many cpio entries"))?;
        header(&mut w, ino, fmt | (e.mode & 0o7777), nlink, mtime, data.len(), dev, &e.path)?;
        w.write_all(data)?;
        pad(&mut w)?;
    }
    header(&mut w, 0, 0, 1, 0, 0, (0, 0), "TRAILER!!!")?;
    // The kernel wants the archive padded to a 512-byte block.
    let rest = (512 - w.n % 512) % 512;
    w.write_all(&vec![0; rest])?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn header<W: Write>(
    w: &mut Counter<W>,
    ino: u32,
    mode: u32,
    nlink: u32,
    mtime: u32,
    size: usize,
    rdev: (u32, u32),
    name: &str,
) -> io::Result<()> {
    let size = u32::try_from(size).map_err(|_| io::Error::other(format!("{name} is over 4 GiB")))?;
    let namesize = u32::try_from(name.len() + 1).map_err(|_| io::Error::other("name too long"))?;
    let fields = [ino, mode, 0, 0, nlink, mtime, size, 0, 0, rdev.0, rdev.1, namesize, 0];
    let mut h = String::from("070701");
    for f in fields {
        h.push_str(&format!("{f:08X}"));
    }
    w.write_all(h.as_bytes())?;
    w.write_all(name.as_bytes())?;
    w.write_all(&[0])?;
    pad(w)
}

fn pad<W: Write>(w: &mut Counter<W>) -> io::Result<()> {
    let rest = (4 - w.n % 4) % 4;
    w.write_all(&[0u8; 3][..rest])
}

struct Counter<W> {
    inner: W,
    n: usize,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let entries = vec![
            Entry { path: "dev".into(), mode: 0o755, kind: Kind::Dir },
            Entry { path: "dev/console".into(), mode: 0o600, kind: Kind::CharDev { major: 5, minor: 1 } },
            Entry { path: "init".into(), mode: 0o755, kind: Kind::File(b"#!/bin/sh\n".to_vec()) },
            Entry { path: "sh".into(), mode: 0o777, kind: Kind::Symlink("busybox".into()) },
        ];
        let mut out = Vec::new();
        write(&mut out, &entries, 1_700_000_000).unwrap();
        out
    }

    #[test]
    fn archive_is_block_padded_and_ends_with_trailer() {
        let a = sample();
        assert_eq!(a.len() % 512, 0);
        assert!(a.starts_with(b"070701"));
        assert!(a.windows(10).any(|w| w == b"TRAILER!!!"));
        assert_eq!(a, sample(), "deterministic");
    }

    /// The host's cpio (GNU) must list what we wrote, device node included.
    #[test]
    fn gnu_cpio_reads_it() {
        if std::process::Command::new("cpio").arg("--version").output().is_err() {
            eprintln!("cpio not installed; skipping");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.cpio");
        std::fs::write(&f, sample()).unwrap();
        let out = std::process::Command::new("cpio").args(["-itv", "-F"]).arg(&f).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("crw-------") && text.contains("dev/console"), "{text}");
        assert!(text.contains("sh -> busybox"), "{text}");
        assert!(text.contains("init"), "{text}");
    }
}
