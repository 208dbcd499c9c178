//! Every kernel call PID 1 makes that changes the system goes through
//! [`Kernel`], with [`linux::Linux`] for the device and [`fake::Fake`], which
//! records calls, for tests. This module (with `net::link` for network
//! ioctls) holds all of the crate's `unsafe`.

use std::io;
use std::path::Path;

pub mod fake;
pub mod linux;
pub mod signals;

pub use rustix::mount::MountFlags;

/// How the machine goes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    PowerOff,
    Reboot,
}

pub trait Kernel {
    fn mount(
        &mut self,
        source: &str,
        target: &Path,
        fstype: &str,
        flags: MountFlags,
        data: &str,
    ) -> io::Result<()>;
    fn move_mount(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    fn unmount(&mut self, target: &Path) -> io::Result<()>;
    /// Remount read-only (when unmounting is refused at shutdown).
    fn remount_ro(&mut self, target: &Path) -> io::Result<()>;
    /// Remount with exactly `flags` (e.g. BOOT writable for a moment).
    fn remount(&mut self, target: &Path, flags: MountFlags) -> io::Result<()>;
    /// `finit_module` on the file at `path`.
    fn load_module(&mut self, path: &Path) -> io::Result<()>;
    /// Size in bytes of a block device.
    fn device_size(&mut self, dev: &Path) -> io::Result<u64>;
    fn read_at(&mut self, dev: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Writes and flushes to stable storage before returning.
    fn write_at(&mut self, dev: &Path, offset: u64, data: &[u8]) -> io::Result<()>;
    /// BLKPG_RESIZE_PARTITION: tell the kernel partition `partno` of `disk`
    /// now spans `start..start+len` (bytes).
    fn resize_partition(&mut self, disk: &Path, partno: u32, start: u64, len: u64) -> io::Result<()>;
    /// EXT4_IOC_RESIZE_FS on a mounted ext4.
    fn grow_ext4(&mut self, mountpoint: &Path, blocks: u64) -> io::Result<()>;
    fn sethostname(&mut self, name: &str) -> io::Result<()>;
    /// Sets the system clock (CLOCK_REALTIME) to `secs` since the epoch.
    fn set_time(&mut self, secs: u64) -> io::Result<()>;
    fn write_sysctl(&mut self, key: &str, value: &str) -> io::Result<()>;
    fn sync(&mut self);
    fn halt(&mut self, how: Halt) -> io::Result<()>;
}
