//! A recording fake of [`Kernel`] for tests: block devices are byte vectors,
//! every call is logged as a line of text.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use super::{Halt, Kernel, MountFlags};

#[derive(Default)]
pub struct Fake {
    pub calls: Vec<String>,
    pub devices: BTreeMap<PathBuf, Vec<u8>>,
    /// Mount targets that fail with EINVAL (a corrupt file system).
    pub bad_mounts: BTreeSet<PathBuf>,
    /// Module files that fail to load with ENODEV.
    pub bad_modules: BTreeSet<PathBuf>,
    /// Mount targets that refuse to unmount (EBUSY).
    pub busy: BTreeSet<PathBuf>,
}

impl Fake {
    pub fn new() -> Fake {
        Fake::default()
    }

    fn device(&mut self, dev: &Path) -> io::Result<&mut Vec<u8>> {
        self.devices.get_mut(dev).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    /// Calls whose text starts with `prefix`.
    pub fn calls_starting(&self, prefix: &str) -> Vec<&str> {
        self.calls.iter().filter(|c| c.starts_with(prefix)).map(String::as_str).collect()
    }
}

impl Kernel for Fake {
    fn mount(
        &mut self,
        source: &str,
        target: &Path,
        fstype: &str,
        flags: MountFlags,
        data: &str,
    ) -> io::Result<()> {
        self.calls.push(format!("mount {source} {} {fstype} {flags:?} {data}", target.display()));
        if self.bad_mounts.contains(target) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        Ok(())
    }
    fn move_mount(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.calls.push(format!("move {} {}", from.display(), to.display()));
        Ok(())
    }
    fn unmount(&mut self, target: &Path) -> io::Result<()> {
        self.calls.push(format!("umount {}", target.display()));
        if self.busy.contains(target) {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        Ok(())
    }
    fn remount_ro(&mut self, target: &Path) -> io::Result<()> {
        self.calls.push(format!("remount-ro {}", target.display()));
        Ok(())
    }
    fn remount(&mut self, target: &Path, flags: MountFlags) -> io::Result<()> {
        let ro = if flags.contains(MountFlags::RDONLY) { "ro" } else { "rw" };
        self.calls.push(format!("remount-{ro} {}", target.display()));
        Ok(())
    }
    fn load_module(&mut self, path: &Path) -> io::Result<()> {
        self.calls.push(format!("insmod {}", path.display()));
        if self.bad_modules.contains(path) {
            return Err(io::Error::from_raw_os_error(libc::ENODEV));
        }
        Ok(())
    }
    fn device_size(&mut self, dev: &Path) -> io::Result<u64> {
        Ok(self.device(dev)?.len() as u64)
    }
    fn read_at(&mut self, dev: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let d = self.device(dev)?;
        let start = usize::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        d.get(start..start + len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
    }
    fn write_at(&mut self, dev: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        self.calls.push(format!("write {} @{offset} {}", dev.display(), data.len()));
        let d = self.device(dev)?;
        let start = usize::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        if start + data.len() > d.len() {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        d[start..start + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn resize_partition(&mut self, disk: &Path, partno: u32, start: u64, len: u64) -> io::Result<()> {
        self.calls.push(format!("blkpg-resize {} {partno} {start} {len}", disk.display()));
        Ok(())
    }
    fn grow_ext4(&mut self, mountpoint: &Path, blocks: u64) -> io::Result<()> {
        self.calls.push(format!("resize-ext4 {} {blocks}", mountpoint.display()));
        Ok(())
    }
    fn sethostname(&mut self, name: &str) -> io::Result<()> {
        self.calls.push(format!("hostname {name}"));
        Ok(())
    }
    fn set_time(&mut self, secs: u64) -> io::Result<()> {
        self.calls.push(format!("set_time {secs}"));
        Ok(())
    }
    fn write_sysctl(&mut self, key: &str, value: &str) -> io::Result<()> {
        self.calls.push(format!("sysctl {key}={value}"));
        Ok(())
    }
    fn sync(&mut self) {
        self.calls.push("sync".into());
    }
    fn halt(&mut self, how: Halt) -> io::Result<()> {
        self.calls.push(format!("halt {how:?}"));
        Ok(())
    }
}
