//! A ustar archive written in memory: owner root, mtime 0, entries in the
//! order they are added, so that the same calls give the same bytes.

/// A name or link target that does not fit in a ustar header.
#[derive(Debug, thiserror::Error)]
#[error("{name:?} (-> {link:?}) is longer than ustar's 100 bytes")]
pub struct TarError {
    /// The entry's name.
    pub name: String,
    /// The link target, if any.
    pub link: String,
}

/// A ustar archive in memory.
#[derive(Debug, Default)]
pub struct TarWriter {
    buf: Vec<u8>,
}

impl TarWriter {
    const MTIME: u64 = 0;

    /// A directory; `name` ends with `/`.
    pub fn dir(&mut self, name: &str, mode: u32) -> Result<(), TarError> {
        self.header(name, mode, 0, b'5', "")
    }

    /// A regular file.
    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<(), TarError> {
        self.header(name, mode, data.len() as u64, b'0', "")?;
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.resize(self.buf.len() + pad, 0);
        Ok(())
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> Result<(), TarError> {
        self.header(name, 0o777, 0, b'2', target)
    }

    fn header(&mut self, name: &str, mode: u32, size: u64, kind: u8, link: &str) -> Result<(), TarError> {
        if name.len() > 100 || link.len() > 100 {
            return Err(TarError { name: name.to_owned(), link: link.to_owned() });
        }
        let mut h = [0u8; 512];
        let put = |h: &mut [u8; 512], at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
        put(&mut h, 0, name.as_bytes());
        put(&mut h, 100, format!("{mode:07o}\0").as_bytes());
        put(&mut h, 108, b"0000000\0"); // uid
        put(&mut h, 116, b"0000000\0"); // gid
        put(&mut h, 124, format!("{size:011o}\0").as_bytes());
        put(&mut h, 136, format!("{:011o}\0", Self::MTIME).as_bytes());
        put(&mut h, 148, b"        "); // checksum, counted as spaces
        h[156] = kind;
        put(&mut h, 157, link.as_bytes());
        put(&mut h, 257, b"ustar\0");
        put(&mut h, 263, b"00");
        put(&mut h, 265, b"root");
        put(&mut h, 297, b"root");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
        self.buf.extend_from_slice(&h);
        Ok(())
    }

    /// The archive with its two zero end blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.resize(self.buf.len() + 1024, 0);
        self.buf
    }
}
