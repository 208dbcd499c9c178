//! First-boot growth of DATA: the image carries a small DATA partition; on a
//! bigger disk, stage 1 extends the partition to the end of the disk (GPT
//! rewrite + BLKPG) before mounting it, and the ext4 online after mounting
//! (EXT4_IOC_RESIZE_FS). Both steps check before acting, so they run on every
//! boot and finish the job if power was cut halfway.

use std::path::Path;

use crate::disks::Disk;
use crate::sys::Kernel;

#[derive(Debug, thiserror::Error)]
pub enum GrowError {
    #[error("cannot size {dev}")]
    Size { dev: String, source: std::io::Error },
    #[error("partition table of {dev}")]
    Gpt { dev: String, source: lichen_formats::gpt::GptError },
    #[error("writing the partition table of {dev}")]
    Write { dev: String, source: std::io::Error },
    #[error("telling the kernel partition {number} of {dev} grew")]
    Blkpg { dev: String, number: u32, source: std::io::Error },
    #[error("reading the ext4 superblock of {dev}")]
    Superblock { dev: String, source: std::io::Error },
    #[error("{dev} is not ext4 (bad superblock magic)")]
    NotExt4 { dev: String },
    #[error("resizing the ext4 on {mountpoint} to {blocks} blocks")]
    Resize { mountpoint: String, blocks: u64, source: std::io::Error },
}

/// The partition's new extent, if it grew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grown {
    pub old_bytes: u64,
    pub new_bytes: u64,
}

/// Extends partition `label` (the last one) to the end of its disk.
pub fn grow_partition(k: &mut dyn Kernel, disk: &Disk, label: &str) -> Result<Option<Grown>, GrowError> {
    let dev = disk.dev.display().to_string();
    let size = k.device_size(&disk.dev).map_err(|source| GrowError::Size { dev: dev.clone(), source })?;
    let gpt_err = |source| GrowError::Gpt { dev: dev.clone(), source };
    let Some(new) = disk.gpt.grow_last(label, size).map_err(gpt_err)? else {
        return Ok(None);
    };
    let bytes = new.serialize(size).map_err(gpt_err)?;
    // Backup first: until the primary is rewritten the old primary (and the
    // old backup it points to) stay valid, so a power cut loses nothing.
    k.write_at(&disk.dev, bytes.backup_offset, &bytes.backup)
        .map_err(|source| GrowError::Write { dev: dev.clone(), source })?;
    k.write_at(&disk.dev, 0, &bytes.primary)
        .map_err(|source| GrowError::Write { dev: dev.clone(), source })?;
    let (Some(old), Some(p), Some(number)) = (disk.gpt.find(label), new.find(label), new.number(label))
    else {
        return Ok(None);
    };
    let ss = disk.sector_size;
    k.resize_partition(&disk.dev, number, p.first_lba * ss, (p.last_lba - p.first_lba + 1) * ss)
        .map_err(|source| GrowError::Blkpg { dev: dev.clone(), number, source })?;
    Ok(Some(Grown {
        old_bytes: (old.last_lba - old.first_lba + 1) * ss,
        new_bytes: (p.last_lba - p.first_lba + 1) * ss,
    }))
}

/// Block size and block count from an ext4 superblock (the 1024 bytes at
/// offset 1024).
pub fn ext4_geometry(sb: &[u8]) -> Option<(u64, u64)> {
    let u32_at = |o: usize| sb.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let magic = sb.get(0x38..0x3a).map(|b| u16::from_le_bytes([b[0], b[1]]))?;
    if magic != 0xEF53 {
        return None;
    }
    let log = u32_at(0x18)?;
    let block = 1024u64.checked_shl(log)?;
    let lo = u64::from(u32_at(0x04)?);
    let incompat = u32_at(0x60)?;
    let hi = if incompat & 0x80 != 0 { u64::from(u32_at(0x150)?) } else { 0 };
    Some((block, hi << 32 | lo))
}

/// Grows the mounted ext4 on `dev` at `mountpoint` to fill `dev`.
/// Returns the new block count if it grew.
pub fn grow_ext4(k: &mut dyn Kernel, dev: &Path, mountpoint: &Path) -> Result<Option<u64>, GrowError> {
    let d = dev.display().to_string();
    let sb = k.read_at(dev, 1024, 1024).map_err(|source| GrowError::Superblock { dev: d.clone(), source })?;
    let (block, blocks) = ext4_geometry(&sb).ok_or_else(|| GrowError::NotExt4 { dev: d.clone() })?;
    let size = k.device_size(dev).map_err(|source| GrowError::Size { dev: d.clone(), source })?;
    let want = size / block;
    // Less than 1 MiB to gain is not worth a resize.
    if want <= blocks || (want - blocks) * block < (1 << 20) {
        return Ok(None);
    }
    k.grow_ext4(mountpoint, want).map_err(|source| GrowError::Resize {
        mountpoint: mountpoint.display().to_string(),
        blocks: want,
        source,
    })?;
    Ok(Some(want))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disks::tests::image;
    use crate::sys::fake::Fake;
    use lichen_formats::gpt::Gpt;
    use std::path::PathBuf;

    fn disk(k: &mut Fake, image_size: u64, disk_size: u64) -> Disk {
        let mut bytes = image(image_size, &[("BOOT", 2), ("DATA", 2)]);
        // The image written to a bigger disk: the rest is zeros, the backup
        // GPT sits in the middle.
        bytes.resize(usize::try_from(disk_size).unwrap(), 0);
        let gpt = Gpt::parse(&bytes, 512).unwrap();
        k.devices.insert("/dev/vda".into(), bytes);
        Disk { dev: "/dev/vda".into(), sector_size: 512, gpt, partitions: vec![] }
    }

    #[test]
    fn data_grows_to_the_disk_end_backup_first() {
        let mut k = Fake::new();
        let d = disk(&mut k, 6 << 20, 64 << 20);
        let g = grow_partition(&mut k, &d, "DATA").unwrap().unwrap();
        assert_eq!(g.old_bytes, 2 << 20);
        // 64 MiB disk: DATA starts at 3 MiB, ends at the last whole MiB
        // before the backup GPT.
        assert_eq!(g.new_bytes, 60 << 20);
        let writes = k.calls_starting("write");
        assert_eq!(writes.len(), 2);
        assert!(writes[1].contains("@0 "), "primary written last: {writes:?}");
        let blkpg = k.calls_starting("blkpg-resize");
        assert_eq!(blkpg, [format!("blkpg-resize /dev/vda 2 {} {}", 3 << 20, 60 << 20)]);
        // The device now parses with the new table.
        let gpt = Gpt::parse(&k.devices[&PathBuf::from("/dev/vda")], 512).unwrap();
        assert_eq!(gpt.find("DATA").unwrap().last_lba + 1, (63 << 20) / 512);
    }

    #[test]
    fn nothing_to_do_on_a_disk_of_image_size() {
        let mut k = Fake::new();
        let d = disk(&mut k, 6 << 20, 6 << 20);
        assert_eq!(grow_partition(&mut k, &d, "DATA").unwrap(), None);
        assert!(k.calls.is_empty());
    }

    fn superblock(block_log: u32, blocks: u32) -> Vec<u8> {
        let mut sb = vec![0u8; 1024];
        sb[0x04..0x08].copy_from_slice(&blocks.to_le_bytes());
        sb[0x18..0x1c].copy_from_slice(&block_log.to_le_bytes());
        sb[0x38..0x3a].copy_from_slice(&0xEF53u16.to_le_bytes());
        sb
    }

    #[test]
    fn ext4_grows_to_partition_size() {
        let mut k = Fake::new();
        let mut dev = vec![0u8; 64 << 20];
        dev[1024..2048].copy_from_slice(&superblock(2, 4096)); // 4 KiB blocks, 16 MiB
        k.devices.insert("/dev/vda4".into(), dev);
        let n = grow_ext4(&mut k, Path::new("/dev/vda4"), Path::new("/sysroot/var")).unwrap();
        assert_eq!(n, Some(16384));
        assert_eq!(k.calls_starting("resize-ext4"), ["resize-ext4 /sysroot/var 16384"]);
        // Already full size: no call.
        let mut k2 = Fake::new();
        let mut dev = vec![0u8; 16 << 20];
        dev[1024..2048].copy_from_slice(&superblock(2, 4096));
        k2.devices.insert("/dev/vda4".into(), dev);
        assert_eq!(grow_ext4(&mut k2, Path::new("/dev/vda4"), Path::new("/v")).unwrap(), None);
    }

    #[test]
    fn not_ext4_is_an_error() {
        let mut k = Fake::new();
        k.devices.insert("/dev/x".into(), vec![0u8; 1 << 20]);
        let e = grow_ext4(&mut k, Path::new("/dev/x"), Path::new("/v")).unwrap_err().to_string();
        assert!(e.contains("not ext4"), "{e}");
    }
}
