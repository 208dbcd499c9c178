//! The BOOT partition: a FAT32 file system written with the `fatfs` crate
//! (no mtools, no loop mount), every timestamp pinned to `SOURCE_DATE_EPOCH`.

use std::io::{Cursor, Write};

use fatfs::{Date, DateTime, FatType, FormatVolumeOptions, FsOptions, Time, TimeProvider};

#[derive(Debug, thiserror::Error)]
pub enum BootFsError {
    #[error("BOOT partition: formatting {size_mib} MiB as FAT32")]
    Format { size_mib: u64, source: std::io::Error },
    #[error("BOOT partition: writing {path}")]
    Write { path: String, source: std::io::Error },
    #[error(
        "BOOT partition: {used_mib} MiB of files do not fit in {size_mib} MiB; raise partitions.boot_mib"
    )]
    Full { used_mib: u64, size_mib: u64 },
}

/// A file to put on BOOT: path with `/` separators, no leading slash.
pub struct BootFile {
    pub path: String,
    pub data: Vec<u8>,
}

#[derive(Debug)]
struct FixedTime(DateTime);

impl TimeProvider for FixedTime {
    fn get_current_date(&self) -> Date {
        self.0.date
    }
    fn get_current_date_time(&self) -> DateTime {
        self.0
    }
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u16, u16) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, u16::try_from(m).unwrap_or(1), u16::try_from(d).unwrap_or(1))
}

/// FAT's DOS time for a Unix time (clamped to 1980..2107, as FAT requires).
pub fn dos_time(epoch: u64) -> DateTime {
    let secs = i64::try_from(epoch).unwrap_or(i64::MAX).clamp(315_532_800, 4_354_819_199);
    let (y, month, day) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let hms = |v: i64| u16::try_from(v).unwrap_or(0);
    DateTime {
        date: Date { year: u16::try_from(y).unwrap_or(1980), month, day },
        time: Time { hour: hms(rem / 3600), min: hms(rem % 3600 / 60), sec: hms(rem % 60), millis: 0 },
    }
}

/// Builds the FAT32 image in memory.
pub fn build(
    size_mib: u64,
    volume_id: u32,
    epoch: u64,
    files: &[BootFile],
    dirs: &[&str],
) -> Result<Vec<u8>, BootFsError> {
    let used: u64 = files.iter().map(|f| f.data.len() as u64).sum();
    if used + (4 << 20) > size_mib << 20 {
        return Err(BootFsError::Full { used_mib: used >> 20, size_mib });
    }
    let size =
        usize::try_from(size_mib << 20).map_err(|_| BootFsError::Full { used_mib: used >> 20, size_mib })?;
    let mut disk = Cursor::new(vec![0u8; size]);
    let fmt = |source| BootFsError::Format { size_mib, source };
    fatfs::format_volume(
        &mut disk,
        FormatVolumeOptions::new()
            .fat_type(FatType::Fat32)
            .volume_label(*b"BOOT       ")
            .volume_id(volume_id)
            .bytes_per_cluster(512),
    )
    .map_err(fmt)?;
    disk.set_position(0);
    // fatfs wants a 'static provider; one small leak per image build.
    let clock: &'static FixedTime = Box::leak(Box::new(FixedTime(dos_time(epoch))));
    let fs = fatfs::FileSystem::new(&mut disk, FsOptions::new().time_provider(clock)).map_err(fmt)?;
    {
        let root = fs.root_dir();
        let mut sorted: Vec<&BootFile> = files.iter().collect();
        sorted.sort_by(|a, b| a.path.cmp(&b.path));
        let mut all_dirs: Vec<String> = dirs.iter().map(|d| d.to_string()).collect();
        for f in &sorted {
            if let Some((parent, _)) = f.path.rsplit_once('/') {
                all_dirs.push(parent.to_string());
            }
        }
        all_dirs.sort();
        all_dirs.dedup();
        for d in &all_dirs {
            let mut acc = String::new();
            for part in d.split('/') {
                if !acc.is_empty() {
                    acc.push('/');
                }
                acc.push_str(part);
                root.create_dir(&acc).map_err(|source| BootFsError::Write { path: acc.clone(), source })?;
            }
        }
        for f in sorted {
            let wr = |source| BootFsError::Write { path: f.path.clone(), source };
            let mut file = root.create_file(&f.path).map_err(wr)?;
            file.truncate().map_err(wr)?;
            file.write_all(&f.data).map_err(wr)?;
        }
    }
    fs.unmount().map_err(fmt)?;
    Ok(disk.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn dos_time_of_known_epochs() {
        let t = dos_time(1_700_000_000); // 2023-11-14 22:13:20 UTC
        assert_eq!((t.date.year, t.date.month, t.date.day), (2023, 11, 14));
        assert_eq!((t.time.hour, t.time.min, t.time.sec), (22, 13, 20));
        let t = dos_time(0);
        assert_eq!((t.date.year, t.date.month, t.date.day), (1980, 1, 1));
    }

    #[test]
    fn image_reads_back_and_is_reproducible() {
        let files = vec![
            BootFile { path: "EFI/BOOT/grub.cfg".into(), data: b"set timeout=0\n".to_vec() },
            BootFile { path: "slot-a/vmlinuz".into(), data: vec![7; 100_000] },
        ];
        let a = build(40, 0x1234_5678, 1_700_000_000, &files, &["slot-b"]).unwrap();
        let b = build(40, 0x1234_5678, 1_700_000_000, &files, &["slot-b"]).unwrap();
        assert!(a == b, "same inputs, same bytes");
        let fs = fatfs::FileSystem::new(Cursor::new(a), FsOptions::new()).unwrap();
        assert_eq!(fs.fat_type(), FatType::Fat32);
        assert_eq!(fs.volume_label(), "BOOT");
        let mut s = String::new();
        fs.root_dir().open_file("EFI/BOOT/grub.cfg").unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "set timeout=0\n");
        assert!(fs.root_dir().open_dir("slot-b").is_ok());
    }

    #[test]
    fn too_many_files_for_the_partition() {
        let files = vec![BootFile { path: "big".into(), data: vec![0; 40 << 20] }];
        let e = build(40, 1, 0, &files, &[]).unwrap_err().to_string();
        assert!(e.contains("boot_mib"), "{e}");
    }
}
