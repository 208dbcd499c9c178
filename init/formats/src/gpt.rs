//! GUID Partition Table (UEFI 2.x, chapter 5): build, parse, serialize, grow.
//!
//! Disk layout for a disk of `n` sectors and an entry array of `e` sectors
//! (32 for the standard 128 entries of 128 bytes on 512-byte sectors):
//!
//! ```text
//! LBA 0            protective MBR
//! LBA 1            primary header
//! LBA 2 .. 2+e     primary entry array
//! LBA 2+e ..       usable area (first_usable_lba ..= last_usable_lba)
//! LBA n-1-e ..     backup entry array
//! LBA n-1          backup header
//! ```
//!
//! Serialization is byte-deterministic. A table is kept as a list of used
//! entries in slot order, so partition number `i + 1` (as the kernel counts)
//! is `partitions[i]`; tables with an empty slot before a used one are
//! rejected by [`Gpt::parse`] rather than silently renumbered.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

const SIGNATURE: &[u8; 8] = b"EFI PART";
const REVISION: u32 = 0x0001_0000;
const HEADER_SIZE: usize = 92;
const NAME_UNITS: usize = 36;
const MIB: u64 = 1 << 20;
/// Largest entry array accepted, far above the 16 KiB every tool writes.
const MAX_ENTRY_ARRAY: u64 = MIB;

/// Entry count of a standard table.
pub const DEFAULT_NUM_ENTRIES: u32 = 128;
/// Entry size of a standard table, in bytes.
pub const DEFAULT_ENTRY_SIZE: u32 = 128;

/// Errors from building, parsing, serializing or growing a [`Gpt`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum GptError {
    #[error("sector size {size} is not a power of two from 512 to 65536")]
    BadSectorSize { size: u64 },
    #[error("disk of {size} bytes is too small, need at least {need}")]
    DiskTooSmall { size: u64, need: u64 },
    #[error("{text:?} is not a GUID, expected XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX")]
    BadGuid { text: String },
    #[error("partition table needs {need} bytes, got {have}")]
    Truncated { need: u64, have: u64 },
    #[error("no GPT signature at LBA {lba}")]
    BadSignature { lba: u64 },
    #[error("bad GPT header at LBA {lba}: {reason}")]
    BadHeader { lba: u64, reason: &'static str },
    #[error("GPT header CRC mismatch at LBA {lba}: stored {expected:#010x}, computed {found:#010x}")]
    HeaderCrc { lba: u64, expected: u32, found: u32 },
    #[error("partition entries CRC mismatch at LBA {lba}: stored {expected:#010x}, computed {found:#010x}")]
    EntriesCrc { lba: u64, expected: u32, found: u32 },
    #[error("bad table layout: {reason}")]
    BadLayout { reason: &'static str },
    #[error("partition entry {slot} has a name that is not valid UTF-16")]
    BadNameEncoding { slot: u32 },
    #[error("partition entry {slot} follows an empty entry; tables with gaps are not supported")]
    Gap { slot: u32 },
    #[error("partition name {name:?} is longer than 36 UTF-16 code units")]
    NameTooLong { name: String },
    #[error("partition name {name:?} contains a NUL character")]
    NameHasNul { name: String },
    #[error("partition name {name:?} is already used")]
    DuplicateName { name: String },
    #[error("partition {name:?} has the all-zero type GUID, which marks an unused entry")]
    EmptyType { name: String },
    #[error("partition {name:?} ends at LBA {last_lba} before it starts at LBA {first_lba}")]
    BadRange { name: String, first_lba: u64, last_lba: u64 },
    #[error(
        "partition {name:?} spans LBA {first_lba}..={last_lba}, outside the usable LBA {first_usable}..={last_usable}"
    )]
    OutOfBounds { name: String, first_lba: u64, last_lba: u64, first_usable: u64, last_usable: u64 },
    #[error("partitions {a:?} and {b:?} overlap")]
    Overlap { a: String, b: String },
    #[error("partition table is full ({max} entries)")]
    TableFull { max: u32 },
    #[error("no partition named {name:?}")]
    NotFound { name: String },
    #[error("partition {name:?} is not the last on the disk, {last:?} is")]
    NotLast { name: String, last: String },
}

/// A GUID, stored in its on-disk (mixed-endian) byte order.
///
/// Displays and parses as canonical uppercase `8-4-4-4-12` text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The all-zero GUID; as a type GUID it marks an unused entry.
    pub const ZERO: Guid = Guid([0; 16]);
    /// EFI System Partition.
    pub const EFI_SYSTEM: Guid = Guid::from_u128(0xC12A7328_F81F_11D2_BA4B_00A0C93EC93B);
    /// Microsoft basic data (FAT partitions that firmware should read).
    pub const BASIC_DATA: Guid = Guid::from_u128(0xEBD0A0A2_B9E5_4433_87C0_68B6B72699C7);
    /// Linux filesystem data.
    pub const LINUX_FS: Guid = Guid::from_u128(0x0FC63DAF_8483_4772_8E79_3D69D8477DE4);

    /// Builds a GUID from its canonical text read as one big-endian number,
    /// e.g. `0xC12A7328_F81F_11D2_BA4B_00A0C93EC93B`.
    pub const fn from_u128(v: u128) -> Guid {
        let b = v.to_be_bytes();
        Guid([
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
            b[15],
        ])
    }

    /// The inverse of [`Guid::from_u128`].
    pub const fn to_u128(self) -> u128 {
        let d = self.0;
        u128::from_be_bytes([
            d[3], d[2], d[1], d[0], d[5], d[4], d[7], d[6], d[8], d[9], d[10], d[11], d[12], d[13], d[14],
            d[15],
        ])
    }

    /// Whether this is the all-zero GUID.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }

    /// A deterministic, version-4-shaped GUID for `label` within `seed`, for
    /// reproducible images. The function is fixed: changing it changes every
    /// image, so a test pins its output.
    pub fn derive(seed: &[u8], label: &str) -> Guid {
        // FNV-1a over an unambiguous encoding, then a SplitMix64 finalizer so
        // that similar labels give unrelated GUIDs.
        const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
        const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
        let seed_len = u64::try_from(seed.len()).unwrap_or(u64::MAX);
        let mut h = OFFSET;
        for &byte in seed_len.to_le_bytes().iter().chain(seed).chain(label.as_bytes()) {
            h = (h ^ u128::from(byte)).wrapping_mul(PRIME);
        }
        let [lo, hi] = split_u128(h);
        let a = mix64(lo ^ mix64(hi));
        let b = mix64(hi ^ a);
        let mut canon = [0u8; 16];
        canon[..8].copy_from_slice(&a.to_be_bytes());
        canon[8..].copy_from_slice(&b.to_be_bytes());
        canon[6] = (canon[6] & 0x0f) | 0x40; // version 4
        canon[8] = (canon[8] & 0x3f) | 0x80; // RFC 4122 variant
        Guid::from_u128(u128::from_be_bytes(canon))
    }
}

fn split_u128(v: u128) -> [u64; 2] {
    let b = v.to_le_bytes();
    [le_u64(&b, 0), le_u64(&b, 8)]
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.to_u128().to_be_bytes().iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

impl FromStr for Guid {
    type Err = GptError;

    /// Parses `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`, hex digits in either case.
    fn from_str(s: &str) -> Result<Guid, GptError> {
        let bad = || GptError::BadGuid { text: s.to_owned() };
        let text = s.as_bytes();
        if text.len() != 36 {
            return Err(bad());
        }
        let mut v: u128 = 0;
        for (i, &c) in text.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(bad());
                }
                continue;
            }
            let digit = char::from(c).to_digit(16).ok_or_else(bad)?;
            v = (v << 4) | u128::from(digit);
        }
        Ok(Guid::from_u128(v))
    }
}

/// One used partition entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// What the partition holds, e.g. [`Guid::LINUX_FS`].
    pub type_guid: Guid,
    /// This partition's own GUID (`PARTUUID`).
    pub unique_guid: Guid,
    /// First sector.
    pub first_lba: u64,
    /// Last sector, inclusive.
    pub last_lba: u64,
    /// Attribute bits, e.g. [`Partition::ATTR_LEGACY_BIOS_BOOTABLE`].
    pub attributes: u64,
    /// Name (`PARTLABEL`), at most 36 UTF-16 code units, no NUL.
    pub name: String,
}

impl Partition {
    /// Attribute bit 0: the platform needs this partition to function.
    pub const ATTR_REQUIRED: u64 = 1 << 0;
    /// Attribute bit 2: legacy BIOS bootable; U-Boot's distro boot looks for it.
    pub const ATTR_LEGACY_BIOS_BOOTABLE: u64 = 1 << 2;

    /// Size in sectors (0 if `last_lba < first_lba`).
    pub fn sectors(&self) -> u64 {
        self.last_lba.saturating_add(1).saturating_sub(self.first_lba)
    }

    fn check_name(&self) -> Result<(), GptError> {
        if self.name.contains('\0') {
            return Err(GptError::NameHasNul { name: self.name.clone() });
        }
        if self.name.encode_utf16().count() > NAME_UNITS {
            return Err(GptError::NameTooLong { name: self.name.clone() });
        }
        Ok(())
    }

    fn overlaps(&self, other: &Partition) -> bool {
        self.first_lba <= other.last_lba && other.first_lba <= self.last_lba
    }
}

/// A GUID partition table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gpt {
    /// The disk GUID.
    pub disk_guid: Guid,
    /// Logical sector size in bytes (512 or 4096 in practice).
    pub sector_size: u64,
    /// First sector a partition may use.
    pub first_usable_lba: u64,
    /// Last sector a partition may use, inclusive.
    pub last_usable_lba: u64,
    /// Used entries in slot order: `partitions[i]` is partition number `i + 1`.
    pub partitions: Vec<Partition>,
    /// Number of entry slots (128).
    pub num_entries: u32,
    /// Size of one entry in bytes (128).
    pub entry_size: u32,
}

/// The bytes of a serialized table and where they go on the disk.
///
/// Write `backup` at `backup_offset` first, then `primary` at offset 0, so a
/// power cut leaves at least one valid table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GptBytes {
    /// Protective MBR, primary header and primary entries, for offset 0.
    pub primary: Vec<u8>,
    /// Backup entries and backup header, for `backup_offset`.
    pub backup: Vec<u8>,
    /// Byte offset of `backup` on the disk.
    pub backup_offset: u64,
}

impl Gpt {
    /// An empty standard table (128 entries of 128 bytes) for a disk of
    /// `disk_size_bytes`; a trailing partial sector is ignored.
    pub fn new(disk_guid: Guid, sector_size: u64, disk_size_bytes: u64) -> Result<Gpt, GptError> {
        check_sector_size(sector_size)?;
        let mut gpt = Gpt {
            disk_guid,
            sector_size,
            first_usable_lba: 0,
            last_usable_lba: 0,
            partitions: Vec::new(),
            num_entries: DEFAULT_NUM_ENTRIES,
            entry_size: DEFAULT_ENTRY_SIZE,
        };
        gpt.first_usable_lba = 2 + gpt.entry_sectors();
        gpt.last_usable_lba = gpt.last_usable_for(disk_size_bytes)?;
        Ok(gpt)
    }

    /// Bytes to read from the start of a disk for [`Gpt::parse`] of a
    /// standard table. A table with a bigger entry array makes `parse` return
    /// [`GptError::Truncated`] with the length actually needed.
    pub fn head_len(sector_size: u64) -> u64 {
        (2 + standard_entry_sectors(sector_size)) * sector_size
    }

    /// Bytes to read from the end of a disk for [`Gpt::parse_backup`] of a
    /// standard table.
    pub fn tail_len(sector_size: u64) -> u64 {
        (1 + standard_entry_sectors(sector_size)) * sector_size
    }

    /// Appends `p` in the next slot, after checking its name, its bounds and
    /// that it neither overlaps nor shares a name with another partition.
    pub fn add(&mut self, p: Partition) -> Result<(), GptError> {
        self.check_partition(&p)?;
        if let Some(q) = self.partitions.iter().find(|q| p.overlaps(q)) {
            return Err(GptError::Overlap { a: q.name.clone(), b: p.name });
        }
        if !p.name.is_empty() && self.find(&p.name).is_some() {
            return Err(GptError::DuplicateName { name: p.name });
        }
        if self.partitions.len() >= usize_of(u64::from(self.num_entries)) {
            return Err(GptError::TableFull { max: self.num_entries });
        }
        self.partitions.push(p);
        Ok(())
    }

    /// The first partition named `name`.
    pub fn find(&self, name: &str) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.name == name)
    }

    /// The kernel's partition number (1-based) of the first partition named
    /// `name`, as in `/dev/sda<N>` or `/dev/mmcblk0p<N>`.
    pub fn number(&self, name: &str) -> Option<u32> {
        let i = self.partitions.iter().position(|p| p.name == name)?;
        u32::try_from(i + 1).ok()
    }

    /// Serializes the table for a disk of `disk_size_bytes`, after checking
    /// that the layout fits that disk.
    pub fn serialize(&self, disk_size_bytes: u64) -> Result<GptBytes, GptError> {
        self.check_layout()?;
        let last_usable_max = self.last_usable_for(disk_size_bytes)?;
        if self.last_usable_lba > last_usable_max {
            return Err(GptError::DiskTooSmall {
                size: disk_size_bytes,
                need: self.disk_bytes_for(self.last_usable_lba),
            });
        }
        self.check_partitions()?;

        let sector = usize_of(self.sector_size);
        let entry_sectors = self.entry_sectors();
        let last_lba = last_usable_max + 1 + entry_sectors;
        let backup_entry_lba = last_lba - entry_sectors;

        let entries = self.entry_array();
        let entries_crc = crc32fast::hash(&entries);

        let mut primary = vec![0u8; usize_of(2 + entry_sectors) * sector];
        primary[..512].copy_from_slice(&protective_mbr(last_lba));
        primary[sector..sector + HEADER_SIZE].copy_from_slice(&self.header(1, last_lba, 2, entries_crc));
        primary[2 * sector..2 * sector + entries.len()].copy_from_slice(&entries);

        let mut backup = vec![0u8; usize_of(1 + entry_sectors) * sector];
        backup[..entries.len()].copy_from_slice(&entries);
        let at = usize_of(entry_sectors) * sector;
        backup[at..at + HEADER_SIZE].copy_from_slice(&self.header(
            last_lba,
            1,
            backup_entry_lba,
            entries_crc,
        ));

        Ok(GptBytes { primary, backup, backup_offset: backup_entry_lba * self.sector_size })
    }

    /// Parses the primary table from the first bytes of a disk (at least
    /// through the end of the primary entry array, see [`Gpt::head_len`]),
    /// checking signature, CRCs, sizes and partition bounds.
    pub fn parse(head: &[u8], sector_size: u64) -> Result<Gpt, GptError> {
        check_sector_size(sector_size)?;
        let sector = usize_of(sector_size);
        let have = u64::try_from(head.len()).unwrap_or(u64::MAX);
        let header_bytes =
            head.get(sector..2 * sector).ok_or(GptError::Truncated { need: 2 * sector_size, have })?;
        let h = Header::read(header_bytes, 1)?;
        if h.my_lba != 1 {
            return Err(h.bad("header does not point at itself"));
        }
        let entry_sectors = h.array_len().div_ceil(sector_size);
        if h.entry_lba < 2 || h.entry_lba + entry_sectors > h.first_usable {
            return Err(h.bad("entry array overlaps the header or the usable area"));
        }
        let start = h.entry_lba * sector_size;
        let end = start + h.array_len();
        let array =
            head.get(usize_of(start)..usize_of(end)).ok_or(GptError::Truncated { need: end, have })?;
        h.into_gpt(array, sector_size)
    }

    /// Parses the backup table from the last bytes of a disk of
    /// `disk_size_bytes` (at least the backup entry array and header, see
    /// [`Gpt::tail_len`]), for recovery when the primary is damaged.
    pub fn parse_backup(tail: &[u8], sector_size: u64, disk_size_bytes: u64) -> Result<Gpt, GptError> {
        check_sector_size(sector_size)?;
        let have = u64::try_from(tail.len()).unwrap_or(u64::MAX);
        let disk_sectors = disk_size_bytes / sector_size;
        if have % sector_size != 0 || have < sector_size || have / sector_size > disk_sectors {
            return Err(GptError::BadLayout {
                reason: "tail is not a whole number of the disk's last sectors",
            });
        }
        let last_lba = disk_sectors - 1;
        let tail_lba = disk_sectors - have / sector_size;
        let header_at = usize_of(have - sector_size);
        let h = Header::read(&tail[header_at..], last_lba)?;
        if h.my_lba != last_lba {
            return Err(h.bad("header does not point at itself"));
        }
        let entry_sectors = h.array_len().div_ceil(sector_size);
        if h.entry_lba <= h.last_usable || h.entry_lba + entry_sectors > last_lba {
            return Err(h.bad("entry array overlaps the header or the usable area"));
        }
        if h.entry_lba < tail_lba {
            return Err(GptError::Truncated { need: (disk_sectors - h.entry_lba) * sector_size, have });
        }
        let start = (h.entry_lba - tail_lba) * sector_size;
        let array = &tail[usize_of(start)..usize_of(start + h.array_len())];
        h.into_gpt(array, sector_size)
    }

    /// Plans growing partition `name`, which must end last on the disk, to
    /// the end of a disk of `disk_size_bytes`, its end aligned down to 1 MiB.
    ///
    /// Returns `Ok(None)` when that gains less than 1 MiB (already grown),
    /// else the new table, with `last_usable_lba` moved to the new disk end.
    pub fn grow_last(&self, name: &str, disk_size_bytes: u64) -> Result<Option<Gpt>, GptError> {
        self.check_layout()?;
        let index = self
            .partitions
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| GptError::NotFound { name: name.to_owned() })?;
        let part = &self.partitions[index];
        if let Some(last) = self.partitions.iter().max_by_key(|p| p.last_lba)
            && last.last_lba > part.last_lba
        {
            return Err(GptError::NotLast { name: name.to_owned(), last: last.name.clone() });
        }
        let new_last_usable = self.last_usable_for(disk_size_bytes)?;
        if new_last_usable < part.last_lba {
            return Err(GptError::DiskTooSmall {
                size: disk_size_bytes,
                need: self.disk_bytes_for(part.last_lba),
            });
        }
        let per_mib = (MIB / self.sector_size).max(1);
        let aligned_end = (new_last_usable + 1) / per_mib * per_mib;
        match aligned_end.checked_sub(1) {
            Some(new_last) if new_last >= part.last_lba + per_mib => {
                let mut grown = self.clone();
                grown.last_usable_lba = new_last_usable;
                grown.partitions[index].last_lba = new_last;
                Ok(Some(grown))
            }
            _ => Ok(None),
        }
    }

    fn entry_sectors(&self) -> u64 {
        self.array_len().div_ceil(self.sector_size)
    }

    fn array_len(&self) -> u64 {
        u64::from(self.num_entries) * u64::from(self.entry_size)
    }

    /// The largest `last_usable_lba` of a disk of `disk_size_bytes`.
    fn last_usable_for(&self, disk_size_bytes: u64) -> Result<u64, GptError> {
        let entry_sectors = self.entry_sectors();
        let disk_sectors = disk_size_bytes / self.sector_size;
        let overhead = 2 + entry_sectors; // backup header and entries, plus one
        match disk_sectors.checked_sub(overhead) {
            Some(last) if last >= self.first_usable_lba => Ok(last),
            _ => Err(GptError::DiskTooSmall {
                size: disk_size_bytes,
                need: self.disk_bytes_for(self.first_usable_lba.max(2 + entry_sectors)),
            }),
        }
    }

    /// Bytes of the smallest disk whose last usable LBA is `last_usable`.
    fn disk_bytes_for(&self, last_usable: u64) -> u64 {
        last_usable.saturating_add(2 + self.entry_sectors()).saturating_mul(self.sector_size)
    }

    fn check_layout(&self) -> Result<(), GptError> {
        check_sector_size(self.sector_size)?;
        let bad = |reason| Err(GptError::BadLayout { reason });
        if self.entry_size < DEFAULT_ENTRY_SIZE || !self.entry_size.is_power_of_two() {
            return bad("entry size is not a power of two of at least 128");
        }
        if self.num_entries == 0 || self.array_len() > MAX_ENTRY_ARRAY {
            return bad("entry array is empty or larger than 1 MiB");
        }
        if self.partitions.len() > usize_of(u64::from(self.num_entries)) {
            return bad("more partitions than entry slots");
        }
        if self.first_usable_lba < 2 + self.entry_sectors() {
            return bad("first usable LBA is inside the primary entry array");
        }
        if self.first_usable_lba > self.last_usable_lba {
            return bad("first usable LBA is after the last usable LBA");
        }
        Ok(())
    }

    fn check_partition(&self, p: &Partition) -> Result<(), GptError> {
        p.check_name()?;
        if p.type_guid.is_zero() {
            return Err(GptError::EmptyType { name: p.name.clone() });
        }
        if p.last_lba < p.first_lba {
            return Err(GptError::BadRange {
                name: p.name.clone(),
                first_lba: p.first_lba,
                last_lba: p.last_lba,
            });
        }
        if p.first_lba < self.first_usable_lba || p.last_lba > self.last_usable_lba {
            return Err(GptError::OutOfBounds {
                name: p.name.clone(),
                first_lba: p.first_lba,
                last_lba: p.last_lba,
                first_usable: self.first_usable_lba,
                last_usable: self.last_usable_lba,
            });
        }
        Ok(())
    }

    /// Every partition valid and no two overlapping (names may repeat).
    fn check_partitions(&self) -> Result<(), GptError> {
        for (i, p) in self.partitions.iter().enumerate() {
            self.check_partition(p)?;
            if let Some(q) = self.partitions[..i].iter().find(|q| p.overlaps(q)) {
                return Err(GptError::Overlap { a: q.name.clone(), b: p.name.clone() });
            }
        }
        Ok(())
    }

    fn entry_array(&self) -> Vec<u8> {
        let size = usize_of(u64::from(self.entry_size));
        let mut array = vec![0u8; usize_of(self.array_len())];
        for (p, entry) in self.partitions.iter().zip(array.chunks_exact_mut(size)) {
            entry[0..16].copy_from_slice(&p.type_guid.0);
            entry[16..32].copy_from_slice(&p.unique_guid.0);
            entry[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
            entry[40..48].copy_from_slice(&p.last_lba.to_le_bytes());
            entry[48..56].copy_from_slice(&p.attributes.to_le_bytes());
            for (unit, out) in p.name.encode_utf16().zip(entry[56..128].chunks_exact_mut(2)) {
                out.copy_from_slice(&unit.to_le_bytes());
            }
        }
        array
    }

    fn header(&self, my_lba: u64, alternate_lba: u64, entry_lba: u64, entries_crc: u32) -> [u8; 92] {
        let mut h = [0u8; HEADER_SIZE];
        h[0..8].copy_from_slice(SIGNATURE);
        h[8..12].copy_from_slice(&REVISION.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&my_lba.to_le_bytes());
        h[32..40].copy_from_slice(&alternate_lba.to_le_bytes());
        h[40..48].copy_from_slice(&self.first_usable_lba.to_le_bytes());
        h[48..56].copy_from_slice(&self.last_usable_lba.to_le_bytes());
        h[56..72].copy_from_slice(&self.disk_guid.0);
        h[72..80].copy_from_slice(&entry_lba.to_le_bytes());
        h[80..84].copy_from_slice(&self.num_entries.to_le_bytes());
        h[84..88].copy_from_slice(&self.entry_size.to_le_bytes());
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32fast::hash(&h);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    }
}

/// The fields of an on-disk header that has passed its own checks.
struct Header {
    lba: u64,
    my_lba: u64,
    first_usable: u64,
    last_usable: u64,
    disk_guid: Guid,
    entry_lba: u64,
    num_entries: u32,
    entry_size: u32,
    entries_crc: u32,
}

impl Header {
    /// Checks signature, size, CRC and field sanity of the header sector at `lba`.
    fn read(sector: &[u8], lba: u64) -> Result<Header, GptError> {
        if sector.len() < HEADER_SIZE || &sector[0..8] != SIGNATURE {
            return Err(GptError::BadSignature { lba });
        }
        let bad = |reason| GptError::BadHeader { lba, reason };
        let size = usize_of(u64::from(le_u32(sector, 12)));
        if size < HEADER_SIZE || size > sector.len() {
            return Err(bad("header size out of range"));
        }
        let expected = le_u32(sector, 16);
        let mut copy = sector[..size].to_vec();
        copy[16..20].fill(0);
        let found = crc32fast::hash(&copy);
        if expected != found {
            return Err(GptError::HeaderCrc { lba, expected, found });
        }
        if le_u32(sector, 8) >> 16 != 1 {
            return Err(bad("unsupported revision"));
        }
        let h = Header {
            lba,
            my_lba: le_u64(sector, 24),
            first_usable: le_u64(sector, 40),
            last_usable: le_u64(sector, 48),
            disk_guid: Guid(sector[56..72].try_into().unwrap_or_default()),
            entry_lba: le_u64(sector, 72),
            num_entries: le_u32(sector, 80),
            entry_size: le_u32(sector, 84),
            entries_crc: le_u32(sector, 88),
        };
        if h.entry_size < DEFAULT_ENTRY_SIZE || !h.entry_size.is_power_of_two() {
            return Err(bad("entry size is not a power of two of at least 128"));
        }
        if h.num_entries == 0 || h.array_len() > MAX_ENTRY_ARRAY {
            return Err(bad("entry array is empty or larger than 1 MiB"));
        }
        if h.first_usable > h.last_usable || h.last_usable >= u64::MAX / 2 {
            return Err(bad("usable range is empty or too large"));
        }
        if h.entry_lba >= u64::MAX / 2 / MAX_ENTRY_ARRAY {
            return Err(bad("entry array LBA out of range"));
        }
        Ok(h)
    }

    fn bad(&self, reason: &'static str) -> GptError {
        GptError::BadHeader { lba: self.lba, reason }
    }

    fn array_len(&self) -> u64 {
        u64::from(self.num_entries) * u64::from(self.entry_size)
    }

    /// Checks the entry array's CRC and decodes it into a table.
    fn into_gpt(self, array: &[u8], sector_size: u64) -> Result<Gpt, GptError> {
        let found = crc32fast::hash(array);
        if found != self.entries_crc {
            return Err(GptError::EntriesCrc { lba: self.entry_lba, expected: self.entries_crc, found });
        }
        let mut partitions = Vec::new();
        let mut seen_empty = false;
        let entry_size = usize_of(u64::from(self.entry_size));
        for (slot, entry) in (0u32..).zip(array.chunks_exact(entry_size)) {
            let type_guid = Guid(entry[0..16].try_into().unwrap_or_default());
            if type_guid.is_zero() {
                seen_empty = true;
                continue;
            }
            if seen_empty {
                return Err(GptError::Gap { slot });
            }
            let units: Vec<u16> = entry[56..128]
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .take_while(|&u| u != 0)
                .collect();
            let name = String::from_utf16(&units).map_err(|_| GptError::BadNameEncoding { slot })?;
            partitions.push(Partition {
                type_guid,
                unique_guid: Guid(entry[16..32].try_into().unwrap_or_default()),
                first_lba: le_u64(entry, 32),
                last_lba: le_u64(entry, 40),
                attributes: le_u64(entry, 48),
                name,
            });
        }
        let gpt = Gpt {
            disk_guid: self.disk_guid,
            sector_size,
            first_usable_lba: self.first_usable,
            last_usable_lba: self.last_usable,
            partitions,
            num_entries: self.num_entries,
            entry_size: self.entry_size,
        };
        gpt.check_partitions()?;
        Ok(gpt)
    }
}

/// LBA 0: a single 0xEE partition covering the disk, as the spec requires.
fn protective_mbr(last_lba: u64) -> [u8; 512] {
    let mut mbr = [0u8; 512];
    let size = u32::try_from(last_lba).unwrap_or(u32::MAX);
    // status, CHS start (0/0/2), type, CHS end (saturated), start LBA, size
    mbr[446..454].copy_from_slice(&[0x00, 0x00, 0x02, 0x00, 0xEE, 0xFF, 0xFF, 0xFF]);
    mbr[454..458].copy_from_slice(&1u32.to_le_bytes());
    mbr[458..462].copy_from_slice(&size.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    mbr
}

fn check_sector_size(size: u64) -> Result<(), GptError> {
    if size.is_power_of_two() && (512..=65536).contains(&size) {
        Ok(())
    } else {
        Err(GptError::BadSectorSize { size })
    }
}

fn standard_entry_sectors(sector_size: u64) -> u64 {
    (u64::from(DEFAULT_NUM_ENTRIES) * u64::from(DEFAULT_ENTRY_SIZE)).div_ceil(sector_size.max(1))
}

/// Lengths here are bounded by checked layouts; saturate rather than wrap.
fn usize_of(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GIB: u64 = 1 << 30;
    const SFDISK_HEAD: &[u8] = include_bytes!("../tests/data/sfdisk-16m-head.bin");
    const SFDISK_TAIL: &[u8] = include_bytes!("../tests/data/sfdisk-16m-tail.bin");

    fn part(name: &str, first_lba: u64, last_lba: u64) -> Partition {
        Partition {
            type_guid: Guid::LINUX_FS,
            unique_guid: Guid::derive(b"test", name),
            first_lba,
            last_lba,
            attributes: 0,
            name: name.to_owned(),
        }
    }

    /// The layout the image builder makes: ESP, two roots, DATA last.
    fn image(sector: u64, disk: u64) -> Gpt {
        let mib = MIB / sector;
        let mut gpt = Gpt::new(Guid::derive(b"test", "disk"), sector, disk).unwrap();
        let mut esp = part("EFI", mib, 65 * mib - 1);
        esp.type_guid = Guid::EFI_SYSTEM;
        esp.attributes = Partition::ATTR_REQUIRED;
        gpt.add(esp).unwrap();
        gpt.add(part("ROOT-A", 65 * mib, 321 * mib - 1)).unwrap();
        gpt.add(part("ROOT-B", 321 * mib, 577 * mib - 1)).unwrap();
        gpt.add(part("DATA", 577 * mib, 640 * mib - 1)).unwrap();
        gpt
    }

    /// Recomputes both CRCs of a primary table after a deliberate edit.
    fn refresh_crcs(primary: &mut [u8], sector: usize) {
        let entries_crc = crc32fast::hash(&primary[2 * sector..2 * sector + 16384]);
        let h = &mut primary[sector..sector + HEADER_SIZE];
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        h[16..20].fill(0);
        let crc = crc32fast::hash(h);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn guid_text_matches_on_disk_bytes() {
        let esp = Guid::EFI_SYSTEM;
        assert_eq!(esp.to_string(), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        assert_eq!(
            esp.0,
            [0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B]
        );
        assert_eq!("c12a7328-f81f-11d2-ba4b-00a0c93ec93b".parse::<Guid>(), Ok(esp));
        assert_eq!(Guid::LINUX_FS.to_string(), "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
        assert_eq!(Guid::BASIC_DATA.to_string(), "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7");
        for bad in [
            "",
            "C12A7328F81F11D2BA4B00A0C93EC93B",
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93G",
            "C12A7328-F81F-11D2-BA4B+00A0C93EC93B",
            "{C12A7328-F81F-11D2-BA4B-00A0C93EC93B}",
            "C12A7328-F81F-11D2-BA4B-00A0C93EC9é",
        ] {
            assert!(matches!(bad.parse::<Guid>(), Err(GptError::BadGuid { .. })), "{bad}");
        }
    }

    #[test]
    fn derived_guids_are_stable_distinct_and_version_4() {
        let a = Guid::derive(b"lichen-1.0", "ROOT-A");
        let b = Guid::derive(b"lichen-1.0", "ROOT-B");
        assert_eq!(a, Guid::derive(b"lichen-1.0", "ROOT-A"));
        assert_ne!(a, b);
        assert_ne!(Guid::derive(b"ab", "c"), Guid::derive(b"a", "bc"));
        for g in [a, b] {
            let text = g.to_string();
            assert_eq!(&text[14..15], "4", "{text}");
            assert!("89AB".contains(&text[19..20]), "{text}");
        }
        // Pinned: a change here changes the GUIDs of every image ever built.
        assert_eq!(a.to_string(), "A20A84EC-947A-4D76-94B5-B356DA76C416");
    }

    #[test]
    fn new_table_has_standard_layout() {
        let gpt = Gpt::new(Guid::ZERO, 512, GIB).unwrap();
        assert_eq!(gpt.first_usable_lba, 34);
        assert_eq!(gpt.last_usable_lba, GIB / 512 - 34);
        let gpt = Gpt::new(Guid::ZERO, 4096, GIB).unwrap();
        assert_eq!(gpt.first_usable_lba, 6);
        assert_eq!(gpt.last_usable_lba, GIB / 4096 - 6);
        // A trailing partial sector is not part of the disk.
        let gpt = Gpt::new(Guid::ZERO, 512, GIB + 100).unwrap();
        assert_eq!(gpt.last_usable_lba, GIB / 512 - 34);
        assert_eq!(Gpt::new(Guid::ZERO, 1000, GIB), Err(GptError::BadSectorSize { size: 1000 }));
        assert_eq!(
            Gpt::new(Guid::ZERO, 512, 67 * 512),
            Err(GptError::DiskTooSmall { size: 67 * 512, need: 68 * 512 })
        );
        assert!(Gpt::new(Guid::ZERO, 512, 68 * 512).is_ok());
    }

    #[test]
    fn serialize_writes_mbr_headers_and_round_trips() {
        let gpt = image(512, GIB);
        let bytes = gpt.serialize(GIB).unwrap();
        let last_lba = GIB / 512 - 1;
        assert_eq!(bytes.primary.len(), 34 * 512);
        assert_eq!(bytes.backup.len(), 33 * 512);
        assert_eq!(bytes.backup_offset, (last_lba - 32) * 512);
        assert_eq!(bytes.backup_offset + 33 * 512, GIB);

        let mbr = &bytes.primary[..512];
        assert_eq!(mbr[450], 0xEE);
        assert_eq!(le_u32(mbr, 454), 1);
        assert_eq!(u64::from(le_u32(mbr, 458)), last_lba);
        assert_eq!(mbr[510..], [0x55, 0xAA]);

        let primary = &bytes.primary[512..1024];
        let backup = &bytes.backup[32 * 512..];
        assert_eq!(&primary[..8], b"EFI PART");
        assert_eq!((le_u64(primary, 24), le_u64(primary, 32)), (1, last_lba));
        assert_eq!((le_u64(backup, 24), le_u64(backup, 32)), (last_lba, 1));
        assert_eq!((le_u64(primary, 72), le_u64(backup, 72)), (2, last_lba - 32));
        assert_eq!(gpt.serialize(GIB).unwrap(), bytes, "not deterministic");

        assert_eq!(Gpt::parse(&bytes.primary, 512).unwrap(), gpt);
        assert_eq!(Gpt::parse_backup(&bytes.backup, 512, GIB).unwrap(), gpt);
        assert_eq!(gpt.number("ROOT-B"), Some(3));
        assert_eq!(gpt.find("DATA").unwrap().first_lba, 577 * 2048);
        assert_eq!(gpt.find("data"), None);
    }

    #[test]
    fn four_k_sectors_round_trip() {
        let gpt = image(4096, GIB);
        let bytes = gpt.serialize(GIB).unwrap();
        assert_eq!(bytes.primary.len(), 6 * 4096);
        assert_eq!(bytes.backup.len(), 5 * 4096);
        assert_eq!(&bytes.primary[4096..4104], b"EFI PART");
        assert_eq!(bytes.primary[4094..4096], [0, 0], "MBR is 512 bytes");
        assert_eq!(bytes.primary[510..512], [0x55, 0xAA]);
        assert_eq!(Gpt::parse(&bytes.primary, 4096).unwrap(), gpt);
        assert_eq!(Gpt::parse_backup(&bytes.backup, 4096, GIB).unwrap(), gpt);
        // Read with the wrong sector size, the header is not where expected.
        assert_eq!(Gpt::parse(&bytes.primary, 512), Err(GptError::BadSignature { lba: 1 }));
    }

    #[test]
    fn reads_and_rewrites_an_sfdisk_table_byte_for_byte() {
        let size = 16 * MIB;
        let gpt = Gpt::parse(SFDISK_HEAD, 512).unwrap();
        assert_eq!(gpt.disk_guid.to_string(), "8F3C1D2A-5B6E-4A7F-9C0D-1E2F3A4B5C6D");
        let names: Vec<&str> = gpt.partitions.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["EFI", "ROOT-A", "Wurzel-ß-€", "DATA"]);
        let root = gpt.find("ROOT-A").unwrap();
        assert_eq!((root.first_lba, root.last_lba), (6144, 14335));
        assert_eq!(root.attributes, Partition::ATTR_LEGACY_BIOS_BOOTABLE);
        assert_eq!(root.unique_guid.to_string(), "21111111-2222-4333-8444-555555555555");
        assert_eq!(gpt.partitions[0].type_guid, Guid::EFI_SYSTEM);
        assert_eq!(gpt.number("DATA"), Some(4));
        assert_eq!(Gpt::parse_backup(SFDISK_TAIL, 512, size).unwrap(), gpt);

        let bytes = gpt.serialize(size).unwrap();
        assert!(bytes.primary == SFDISK_HEAD, "primary differs from sfdisk's");
        assert!(bytes.backup == SFDISK_TAIL, "backup differs from sfdisk's");
        assert_eq!(bytes.backup_offset, size - SFDISK_TAIL.len() as u64);
    }

    #[test]
    fn corruption_is_detected() {
        let bytes = image(512, GIB).serialize(GIB).unwrap();

        let mut head = bytes.primary.clone();
        head[512 + 40] ^= 1; // first usable LBA
        assert!(matches!(Gpt::parse(&head, 512), Err(GptError::HeaderCrc { lba: 1, .. })));

        let mut head = bytes.primary.clone();
        head[2 * 512 + 128 + 60] ^= 1; // a letter of ROOT-A's name
        assert!(matches!(Gpt::parse(&head, 512), Err(GptError::EntriesCrc { lba: 2, .. })));

        let mut head = bytes.primary.clone();
        head[512] = b'X';
        assert_eq!(Gpt::parse(&head, 512), Err(GptError::BadSignature { lba: 1 }));

        // A damaged primary leaves the backup readable.
        let mut tail = bytes.backup.clone();
        assert_eq!(Gpt::parse_backup(&tail, 512, GIB).unwrap(), image(512, GIB));
        tail[100] ^= 0x80;
        assert!(matches!(Gpt::parse_backup(&tail, 512, GIB), Err(GptError::EntriesCrc { .. })));
        // The backup is only found at the very end of the disk.
        assert_eq!(
            Gpt::parse_backup(&bytes.backup, 512, 2 * GIB),
            Err(GptError::BadHeader { lba: 2 * GIB / 512 - 1, reason: "header does not point at itself" })
        );
    }

    #[test]
    fn short_input_reports_what_is_needed() {
        let bytes = image(512, GIB).serialize(GIB).unwrap();
        assert_eq!(
            Gpt::parse(&bytes.primary[..700], 512),
            Err(GptError::Truncated { need: 1024, have: 700 })
        );
        assert_eq!(
            Gpt::parse(&bytes.primary[..2048], 512),
            Err(GptError::Truncated { need: 34 * 512, have: 2048 })
        );
        assert_eq!(
            Gpt::parse_backup(&bytes.backup[16 * 512..], 512, GIB),
            Err(GptError::Truncated { need: 33 * 512, have: 17 * 512 })
        );
        assert_eq!(Gpt::head_len(512), 34 * 512);
        assert_eq!(Gpt::tail_len(512), 33 * 512);
        assert_eq!(Gpt::head_len(4096), 6 * 4096);
    }

    #[test]
    fn gaps_and_bad_names_on_disk_are_rejected() {
        let mut head = image(512, GIB).serialize(GIB).unwrap().primary;
        head[2 * 512..2 * 512 + 16].fill(0); // empty slot 0, slot 1 still used
        refresh_crcs(&mut head, 512);
        assert_eq!(Gpt::parse(&head, 512), Err(GptError::Gap { slot: 1 }));

        let mut head = image(512, GIB).serialize(GIB).unwrap().primary;
        head[2 * 512 + 128 + 56..2 * 512 + 128 + 58].copy_from_slice(&0xD800u16.to_le_bytes());
        refresh_crcs(&mut head, 512);
        assert_eq!(Gpt::parse(&head, 512), Err(GptError::BadNameEncoding { slot: 1 }));
    }

    #[test]
    fn overlapping_table_on_disk_is_rejected() {
        let mut head = image(512, GIB).serialize(GIB).unwrap().primary;
        // ROOT-B's first LBA moves back into ROOT-A.
        let at = 2 * 512 + 2 * 128 + 32;
        head[at..at + 8].copy_from_slice(&(100u64 * 2048).to_le_bytes());
        refresh_crcs(&mut head, 512);
        assert_eq!(Gpt::parse(&head, 512), Err(GptError::Overlap { a: "ROOT-A".into(), b: "ROOT-B".into() }));
    }

    #[test]
    fn add_rejects_bad_partitions() {
        let mut gpt = image(512, GIB);
        let last = gpt.last_usable_lba;
        assert_eq!(
            gpt.add(part("X", 330 * 2048, 700 * 2048)),
            Err(GptError::Overlap { a: "ROOT-B".into(), b: "X".into() })
        );
        assert_eq!(
            gpt.add(part("X", last, last + 1)),
            Err(GptError::OutOfBounds {
                name: "X".into(),
                first_lba: last,
                last_lba: last + 1,
                first_usable: 34,
                last_usable: last
            })
        );
        assert!(matches!(gpt.add(part("X", 33, 40)), Err(GptError::OutOfBounds { .. })));
        assert!(matches!(gpt.add(part("X", 700 * 2048, 699 * 2048)), Err(GptError::BadRange { .. })));
        assert_eq!(
            gpt.add(part("DATA", 700 * 2048, 701 * 2048)),
            Err(GptError::DuplicateName { name: "DATA".into() })
        );
        let mut empty = part("X", 700 * 2048, 701 * 2048);
        empty.type_guid = Guid::ZERO;
        assert!(matches!(gpt.add(empty), Err(GptError::EmptyType { .. })));
        assert!(matches!(gpt.add(part("a\0b", 700 * 2048, 701 * 2048)), Err(GptError::NameHasNul { .. })));
        // The rejected partitions left the table as it was.
        assert_eq!(gpt, image(512, GIB));
        // Adjacent is fine.
        gpt.add(part("X", 640 * 2048, last)).unwrap();
    }

    #[test]
    fn names_are_utf16_limited_to_36_units() {
        let mut gpt = Gpt::new(Guid::ZERO, 512, GIB).unwrap();
        let fits = "😀".repeat(18); // 36 units in 18 chars
        let too_long = format!("{fits}a");
        assert_eq!(gpt.add(part(&too_long, 2048, 4095)), Err(GptError::NameTooLong { name: too_long }));
        gpt.add(part(&fits, 2048, 4095)).unwrap();
        gpt.add(part("Données-système ÄÖÜ", 4096, 8191)).unwrap();
        gpt.add(part("", 8192, 9000)).unwrap();
        gpt.add(part("", 9001, 9002)).unwrap(); // empty names may repeat
        let bytes = gpt.serialize(GIB).unwrap();
        let back = Gpt::parse(&bytes.primary, 512).unwrap();
        assert_eq!(back, gpt);
        assert!(back.find("Données-système ÄÖÜ").is_some());
    }

    #[test]
    fn table_full_after_128_partitions() {
        let mut gpt = Gpt::new(Guid::ZERO, 512, GIB).unwrap();
        for i in 0..128u64 {
            gpt.add(part(&format!("p{i}"), 2048 + i, 2048 + i)).unwrap();
        }
        assert_eq!(gpt.add(part("p128", 4096, 4096)), Err(GptError::TableFull { max: 128 }));
        let bytes = gpt.serialize(GIB).unwrap();
        assert_eq!(Gpt::parse(&bytes.primary, 512).unwrap(), gpt);
    }

    #[test]
    fn serialize_refuses_a_disk_too_small_for_the_table() {
        let gpt = image(512, GIB);
        assert_eq!(gpt.serialize(GIB / 2), Err(GptError::DiskTooSmall { size: GIB / 2, need: GIB }));
        // A bigger disk is fine: the backup goes to its end.
        let bytes = gpt.serialize(2 * GIB).unwrap();
        assert_eq!(bytes.backup_offset + 33 * 512, 2 * GIB);
        assert_eq!(Gpt::parse_backup(&bytes.backup, 512, 2 * GIB).unwrap(), gpt);
    }

    #[test]
    fn grow_last_fills_a_bigger_disk_to_a_mib_boundary() {
        let gpt = image(512, GIB);
        let grown = gpt.grow_last("DATA", 4 * GIB).unwrap().unwrap();
        assert_eq!(grown.last_usable_lba, 4 * GIB / 512 - 34);
        let data = grown.find("DATA").unwrap();
        assert_eq!(data.first_lba, 577 * 2048);
        assert_eq!(data.last_lba, 4 * GIB / 512 - 2048 - 1);
        assert_eq!((data.last_lba + 1) % 2048, 0);
        // Everything else is untouched.
        assert_eq!(grown.partitions[..3], gpt.partitions[..3]);
        assert_eq!(grown.disk_guid, gpt.disk_guid);
        // The grown table serializes for the new disk and reads back.
        let bytes = grown.serialize(4 * GIB).unwrap();
        assert_eq!(Gpt::parse(&bytes.primary, 512).unwrap(), grown);
        // Second boot: nothing left to gain.
        assert_eq!(grown.grow_last("DATA", 4 * GIB), Ok(None));
    }

    #[test]
    fn grow_last_needs_at_least_a_mib() {
        let gpt = image(512, GIB);
        // DATA ends at 640 MiB on a 1 GiB disk: there is room.
        assert!(gpt.grow_last("DATA", GIB).unwrap().is_some());
        // sfdisk already ended DATA at the last whole MiB of its 16 MiB disk.
        let sfdisk = Gpt::parse(SFDISK_HEAD, 512).unwrap();
        assert_eq!(sfdisk.grow_last("DATA", 16 * MIB), Ok(None));
        // With the 34 sectors of backup table and slack, the next MiB
        // boundary (LBA 32768) becomes usable on a disk of 32801 sectors.
        assert_eq!(sfdisk.grow_last("DATA", 32800 * 512), Ok(None));
        let grown = sfdisk.grow_last("DATA", 32801 * 512).unwrap().unwrap();
        assert_eq!(grown.find("DATA").unwrap().last_lba, 16 * 2048 - 1);
        assert_eq!(grown.last_usable_lba, 32801 - 34);
    }

    #[test]
    fn grow_last_with_4k_sectors() {
        let gpt = image(4096, GIB);
        let grown = gpt.grow_last("DATA", 4 * GIB).unwrap().unwrap();
        assert_eq!(grown.last_usable_lba, 4 * GIB / 4096 - 6);
        let data = grown.find("DATA").unwrap();
        assert_eq!((data.last_lba + 1) % 256, 0);
        assert_eq!(data.last_lba, 4 * GIB / 4096 - 256 - 1);
    }

    #[test]
    fn grow_last_errors() {
        let gpt = image(512, GIB);
        assert_eq!(
            gpt.grow_last("ROOT-A", 4 * GIB),
            Err(GptError::NotLast { name: "ROOT-A".into(), last: "DATA".into() })
        );
        assert_eq!(gpt.grow_last("HOME", 4 * GIB), Err(GptError::NotFound { name: "HOME".into() }));
        assert!(matches!(gpt.grow_last("DATA", 600 * MIB), Err(GptError::DiskTooSmall { .. })));
    }

    fn arb_table() -> impl Strategy<Value = (Gpt, u64)> {
        let part = (
            0u64..3000,
            1u64..3000,
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u64>(),
            "[a-zA-Z0-9 _äß€😀-]{0,16}",
        );
        (
            prop::sample::select(vec![512u64, 4096]),
            any::<[u8; 16]>(),
            prop::collection::vec(part, 0..12),
            1u64..3000,
            0u64..512,
        )
            .prop_map(|(sector, disk_guid, parts, slack, partial)| {
                let entry_sectors = 16384 / sector;
                let mut lba = 2 + entry_sectors;
                let mut partitions = Vec::new();
                for (i, (gap, len, mut type_guid, unique, attributes, name)) in parts.into_iter().enumerate()
                {
                    type_guid[0] |= 1;
                    let first_lba = lba + gap;
                    lba = first_lba + len;
                    partitions.push(Partition {
                        type_guid: Guid(type_guid),
                        unique_guid: Guid(unique),
                        first_lba,
                        last_lba: lba - 1,
                        attributes,
                        name: format!("{i}{name}"),
                    });
                }
                let disk = (lba + slack + 1 + entry_sectors) * sector + partial;
                let mut gpt = Gpt::new(Guid(disk_guid), sector, disk).unwrap();
                for p in partitions {
                    gpt.add(p).unwrap();
                }
                (gpt, disk)
            })
    }

    proptest! {
        #[test]
        fn valid_tables_round_trip((gpt, disk) in arb_table()) {
            let bytes = gpt.serialize(disk).unwrap();
            prop_assert_eq!(Gpt::parse(&bytes.primary, gpt.sector_size).unwrap(), gpt.clone());
            prop_assert_eq!(
                Gpt::parse_backup(&bytes.backup, gpt.sector_size, disk).unwrap(),
                gpt.clone()
            );
            let end = bytes.backup_offset + bytes.backup.len() as u64;
            prop_assert_eq!(end, disk / gpt.sector_size * gpt.sector_size);
        }

        #[test]
        fn any_flipped_byte_in_the_table_is_caught(at in 0usize..34 * 512, flip in 1u8..=255) {
            let gpt = image(512, GIB);
            let mut head = gpt.serialize(GIB).unwrap().primary;
            head[at] ^= flip;
            let protected = (512..512 + HEADER_SIZE).contains(&at) || at >= 1024;
            match Gpt::parse(&head, 512) {
                Ok(parsed) => {
                    prop_assert!(!protected, "flip at {} not detected", at);
                    prop_assert_eq!(parsed, gpt);
                }
                Err(_) => prop_assert!(protected),
            }
        }

        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048), sector in prop::sample::select(vec![0u64, 512, 1000, 4096])) {
            let _ = Gpt::parse(&bytes, sector);
            let _ = Gpt::parse_backup(&bytes, sector, 1 << 40);
        }
    }
}
