//! The disk image: GPT with BOOT, ROOT-A, ROOT-B and DATA, each partition
//! aligned to 1 MiB, written sparsely.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use lichen_formats::gpt::{Gpt, Guid, Partition};
use serde::Serialize;

pub const MIB: u64 = 1 << 20;
const SECTOR: u64 = 512;

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error(
        "partition {label}: {size_mib} MiB of content does not fit in {slot_mib} MiB; raise partitions.{field} in the board file"
    )]
    TooBig { label: &'static str, size_mib: u64, slot_mib: u64, field: &'static str },
    #[error("partition table")]
    Gpt(#[from] lichen_formats::gpt::GptError),
    #[error("writing {path}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

/// Where each partition landed (also written to the manifest, for tests).
#[derive(Debug, Clone, Serialize)]
pub struct Placed {
    pub label: String,
    pub offset: u64,
    pub size: u64,
}

pub struct Part<'a> {
    pub label: &'static str,
    pub size_mib: u64,
    pub field: &'static str,
    pub type_guid: Guid,
    /// Content to place at the start of the partition (may be shorter).
    pub content: Option<&'a Path>,
}

pub fn write(out: &Path, seed: &[u8], parts: &[Part]) -> Result<Vec<Placed>, DiskError> {
    let io = |source| DiskError::Io { path: out.to_path_buf(), source };
    let total = MIB + parts.iter().map(|p| p.size_mib * MIB).sum::<u64>() + MIB;
    let mut gpt = Gpt::new(Guid::derive(seed, "disk"), SECTOR, total)?;
    let mut placed = Vec::new();
    let mut offset = MIB;
    for p in parts {
        if let Some(c) = p.content {
            let len = std::fs::metadata(c).map_err(io)?.len();
            if len > p.size_mib * MIB {
                return Err(DiskError::TooBig {
                    label: p.label,
                    size_mib: len.div_ceil(MIB),
                    slot_mib: p.size_mib,
                    field: p.field,
                });
            }
        }
        let size = p.size_mib * MIB;
        gpt.add(Partition {
            type_guid: p.type_guid,
            unique_guid: Guid::derive(seed, p.label),
            first_lba: offset / SECTOR,
            last_lba: (offset + size) / SECTOR - 1,
            attributes: 0,
            name: p.label.to_string(),
        })?;
        placed.push(Placed { label: p.label.to_string(), offset, size });
        offset += size;
    }
    let _ = std::fs::remove_file(out);
    let mut f = std::fs::File::create(out).map_err(io)?;
    f.set_len(total).map_err(io)?;
    let bytes = gpt.serialize(total)?;
    f.seek(SeekFrom::Start(bytes.backup_offset)).map_err(io)?;
    f.write_all(&bytes.backup).map_err(io)?;
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    f.write_all(&bytes.primary).map_err(io)?;
    for (p, at) in parts.iter().zip(&placed) {
        if let Some(c) = p.content {
            copy_sparse(c, &mut f, at.offset).map_err(io)?;
        }
    }
    f.sync_all().map_err(io)?;
    Ok(placed)
}

/// Copies `from` into `to` at `offset`, skipping all-zero blocks so the image
/// stays sparse on the host.
fn copy_sparse(from: &Path, to: &mut std::fs::File, offset: u64) -> std::io::Result<()> {
    let mut src = std::fs::File::open(from)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = offset;
    loop {
        let n = read_full(&mut src, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf[..n].iter().any(|b| *b != 0) {
            to.seek(SeekFrom::Start(pos))?;
            to.write_all(&buf[..n])?;
        }
        pos += n as u64;
    }
}

fn read_full(r: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_aligned_and_parseable() {
        let dir = tempfile::tempdir().unwrap();
        let content = dir.path().join("c");
        std::fs::write(&content, vec![0xAB; 5000]).unwrap();
        let img = dir.path().join("d.img");
        let parts = [
            Part {
                label: "BOOT",
                size_mib: 2,
                field: "boot_mib",
                type_guid: Guid::EFI_SYSTEM,
                content: Some(&content),
            },
            Part { label: "DATA", size_mib: 3, field: "data_mib", type_guid: Guid::LINUX_FS, content: None },
        ];
        let placed = write(&img, b"seed", &parts).unwrap();
        assert_eq!(placed[0].offset, MIB);
        assert_eq!(placed[1].offset, 3 * MIB);
        let data = std::fs::read(&img).unwrap();
        assert_eq!(data.len() as u64, 7 * MIB);
        assert_eq!(data[1 << 20], 0xAB);
        let gpt = Gpt::parse(&data, SECTOR).unwrap();
        assert_eq!(gpt.find("DATA").unwrap().first_lba, 3 * MIB / SECTOR);
    }

    #[test]
    fn content_too_big_names_the_board_field() {
        let dir = tempfile::tempdir().unwrap();
        let content = dir.path().join("c");
        std::fs::write(&content, vec![1u8; 2 << 20]).unwrap();
        let parts = [Part {
            label: "ROOT-A",
            size_mib: 1,
            field: "root_mib",
            type_guid: Guid::LINUX_FS,
            content: Some(&content),
        }];
        let e = write(&dir.path().join("d.img"), b"s", &parts).unwrap_err().to_string();
        assert!(e.contains("ROOT-A") && e.contains("root_mib"), "{e}");
    }
}
