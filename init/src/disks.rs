//! Finding Lichen's partitions by their GPT names on whichever disk holds
//! them (virtio `vda`, SATA/USB `sda`, NVMe `nvme0n1`, MMC `mmcblk0`), by
//! reading the partition table ourselves: no udev, no blkid.

use std::path::{Path, PathBuf};

use lichen_formats::gpt::Gpt;

use crate::sys::Kernel;

/// A partition found on a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub label: String,
    /// Partition number (1-based GPT entry index).
    pub number: u32,
    /// `/dev/vda4`
    pub dev: PathBuf,
    pub first_lba: u64,
    pub last_lba: u64,
}

/// A disk with a GPT.
#[derive(Debug, Clone)]
pub struct Disk {
    /// `/dev/vda`
    pub dev: PathBuf,
    pub sector_size: u64,
    pub gpt: Gpt,
    pub partitions: Vec<Found>,
}

impl Disk {
    pub fn find(&self, label: &str) -> Option<&Found> {
        self.partitions.iter().find(|p| p.label == label)
    }
}

/// Whole-disk names under `/sys/block` worth reading, sorted.
pub fn candidates(sys_block: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(sys_block)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    names.retain(|n| {
        !["loop", "ram", "zram", "sr", "fd", "dm-", "md", "nbd"].iter().any(|p| n.starts_with(p))
    });
    names.sort();
    names
}

/// Device name of partition `number` of disk `disk` (`vda`+4 -> `vda4`,
/// `nvme0n1`+4 -> `nvme0n1p4`), preferring what sysfs says.
pub fn partition_name(sys_block: &Path, disk: &str, number: u32) -> String {
    if let Ok(rd) = std::fs::read_dir(sys_block.join(disk)) {
        for e in rd.filter_map(Result::ok) {
            let n = e.file_name().to_string_lossy().to_string();
            if !n.starts_with(disk) {
                continue;
            }
            let p = std::fs::read_to_string(e.path().join("partition")).unwrap_or_default();
            if p.trim() == number.to_string() {
                return n;
            }
        }
    }
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{number}")
    } else {
        format!("{disk}{number}")
    }
}

/// Reads the GPT of every disk; disks without one are skipped.
pub fn scan(k: &mut dyn Kernel, sys_block: &Path, dev_dir: &Path) -> Vec<Disk> {
    let mut disks = Vec::new();
    for name in candidates(sys_block) {
        let sector_size = std::fs::read_to_string(sys_block.join(&name).join("queue/logical_block_size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(512u64);
        let dev = dev_dir.join(&name);
        let head_len = usize::try_from(Gpt::head_len(sector_size)).unwrap_or(17 * 1024);
        let Ok(head) = k.read_at(&dev, 0, head_len) else {
            continue;
        };
        let Ok(gpt) = Gpt::parse(&head, sector_size) else {
            continue;
        };
        let partitions = gpt
            .partitions
            .iter()
            .filter_map(|p| {
                let number = gpt.number(&p.name)?;
                Some(Found {
                    label: p.name.clone(),
                    number,
                    dev: dev_dir.join(partition_name(sys_block, &name, number)),
                    first_lba: p.first_lba,
                    last_lba: p.last_lba,
                })
            })
            .collect();
        disks.push(Disk { dev, sector_size, gpt, partitions });
    }
    disks
}

/// The disk holding all of `labels`; the first (by name) when several do.
pub fn find_disk<'a>(disks: &'a [Disk], labels: &[&str]) -> Option<&'a Disk> {
    disks.iter().find(|d| labels.iter().all(|l| d.find(l).is_some()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sys::fake::Fake;
    use lichen_formats::gpt::{Guid, Partition};

    pub(crate) fn image(size: u64, labels: &[(&str, u64)]) -> Vec<u8> {
        let mut gpt = Gpt::new(Guid::derive(b"t", "disk"), 512, size).unwrap();
        let mut lba = 2048;
        for (label, mib) in labels {
            let sectors = mib * 2048;
            gpt.add(Partition {
                type_guid: Guid::LINUX_FS,
                unique_guid: Guid::derive(b"t", label),
                first_lba: lba,
                last_lba: lba + sectors - 1,
                attributes: 0,
                name: label.to_string(),
            })
            .unwrap();
            lba += sectors;
        }
        let b = gpt.serialize(size).unwrap();
        let mut disk = vec![0u8; usize::try_from(size).unwrap()];
        disk[..b.primary.len()].copy_from_slice(&b.primary);
        let off = usize::try_from(b.backup_offset).unwrap();
        disk[off..off + b.backup.len()].copy_from_slice(&b.backup);
        disk
    }

    fn sys(dir: &Path, disks: &[(&str, &[&str])]) {
        for (d, parts) in disks {
            std::fs::create_dir_all(dir.join(d).join("queue")).unwrap();
            std::fs::write(dir.join(d).join("queue/logical_block_size"), "512\n").unwrap();
            for (i, p) in parts.iter().enumerate() {
                std::fs::create_dir_all(dir.join(d).join(p)).unwrap();
                std::fs::write(dir.join(d).join(p).join("partition"), format!("{}\n", i + 1)).unwrap();
            }
        }
    }

    #[test]
    fn finds_labels_on_nvme_and_skips_disks_without_gpt() {
        let t = tempfile::tempdir().unwrap();
        let sysb = t.path().join("block");
        sys(&sysb, &[("loop0", &[]), ("nvme0n1", &["nvme0n1p1", "nvme0n1p2"]), ("sda", &[])]);
        let mut k = Fake::new();
        k.devices.insert("/dev/nvme0n1".into(), image(8 << 20, &[("BOOT", 2), ("DATA", 2)]));
        k.devices.insert("/dev/sda".into(), vec![0; 1 << 20]);
        let disks = scan(&mut k, &sysb, Path::new("/dev"));
        assert_eq!(disks.len(), 1);
        let d = find_disk(&disks, &["BOOT", "DATA"]).unwrap();
        assert_eq!(d.dev, Path::new("/dev/nvme0n1"));
        let data = d.find("DATA").unwrap();
        assert_eq!(data.dev, Path::new("/dev/nvme0n1p2"));
        assert_eq!(data.number, 2);
        assert!(find_disk(&disks, &["ROOT-A"]).is_none());
    }

    #[test]
    fn partition_names_without_sysfs() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(partition_name(t.path(), "vda", 4), "vda4");
        assert_eq!(partition_name(t.path(), "mmcblk0", 2), "mmcblk0p2");
    }
}
