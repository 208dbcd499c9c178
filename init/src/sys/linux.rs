//! The real kernel.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rustix::mount::{MountFlags, UnmountFlags};

use super::{Halt, Kernel};

pub struct Linux;

/// `struct blkpg_partition` from <linux/blkpg.h>.
#[repr(C)]
struct BlkpgPartition {
    start: libc::c_longlong,
    length: libc::c_longlong,
    pno: libc::c_int,
    devname: [libc::c_char; 64],
    volname: [libc::c_char; 64],
}

/// `struct blkpg_ioctl_arg` from <linux/blkpg.h>.
#[repr(C)]
struct BlkpgIoctlArg {
    op: libc::c_int,
    flags: libc::c_int,
    datalen: libc::c_int,
    data: *mut libc::c_void,
}

const BLKPG: libc::c_ulong = 0x1269;
const BLKPG_RESIZE_PARTITION: libc::c_int = 3;
/// `_IOW('f', 16, __u64)`
const EXT4_IOC_RESIZE_FS: libc::c_ulong = 0x4008_6610;

fn to_i64(v: u64) -> io::Result<i64> {
    i64::try_from(v).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))
}

impl Kernel for Linux {
    fn mount(
        &mut self,
        source: &str,
        target: &Path,
        fstype: &str,
        flags: MountFlags,
        data: &str,
    ) -> io::Result<()> {
        let data = std::ffi::CString::new(data).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        Ok(rustix::mount::mount(source, target, fstype, flags, data.as_c_str())?)
    }

    fn move_mount(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        Ok(rustix::mount::mount_move(from, to)?)
    }

    fn unmount(&mut self, target: &Path) -> io::Result<()> {
        Ok(rustix::mount::unmount(target, UnmountFlags::empty())?)
    }

    fn remount_ro(&mut self, target: &Path) -> io::Result<()> {
        Ok(rustix::mount::mount_remount(target, MountFlags::RDONLY, "")?)
    }

    fn remount(&mut self, target: &Path, flags: MountFlags) -> io::Result<()> {
        Ok(rustix::mount::mount_remount(target, flags, "")?)
    }

    fn load_module(&mut self, path: &Path) -> io::Result<()> {
        let f = std::fs::File::open(path)?;
        Ok(rustix::system::finit_module(&f, c"", 0)?)
    }

    fn device_size(&mut self, dev: &Path) -> io::Result<u64> {
        // Seeking to the end of a block device yields its size (no ioctl).
        use std::io::Seek;
        std::fs::File::open(dev)?.seek(io::SeekFrom::End(0))
    }

    fn read_at(&mut self, dev: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let f = std::fs::File::open(dev)?;
        let mut buf = vec![0; len];
        f.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    fn write_at(&mut self, dev: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        let f = OpenOptions::new().write(true).open(dev)?;
        f.write_all_at(data, offset)?;
        f.sync_all()
    }

    fn resize_partition(&mut self, disk: &Path, partno: u32, start: u64, len: u64) -> io::Result<()> {
        let f = std::fs::File::open(disk)?;
        let mut part = BlkpgPartition {
            start: to_i64(start)?,
            length: to_i64(len)?,
            pno: libc::c_int::try_from(partno).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
            devname: [0; 64],
            volname: [0; 64],
        };
        let mut arg = BlkpgIoctlArg {
            op: BLKPG_RESIZE_PARTITION,
            flags: 0,
            datalen: libc::c_int::try_from(std::mem::size_of::<BlkpgPartition>()).unwrap_or(0),
            data: (&mut part as *mut BlkpgPartition).cast(),
        };
        // SAFETY: BLKPG reads a blkpg_ioctl_arg whose data pointer refers to
        // a blkpg_partition of datalen bytes; both live on this stack frame
        // for the duration of the call and match the kernel's layout.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), BLKPG, &mut arg as *mut BlkpgIoctlArg) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn grow_ext4(&mut self, mountpoint: &Path, blocks: u64) -> io::Result<()> {
        let f = std::fs::File::open(mountpoint)?;
        let count: u64 = blocks;
        // SAFETY: EXT4_IOC_RESIZE_FS reads one u64 through the pointer, which
        // points at a live u64; the fd is an open directory on the ext4.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), EXT4_IOC_RESIZE_FS, &count as *const u64) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn sethostname(&mut self, name: &str) -> io::Result<()> {
        Ok(rustix::system::sethostname(name.as_bytes())?)
    }

    fn set_time(&mut self, secs: u64) -> io::Result<()> {
        let ts = rustix::time::Timespec { tv_sec: to_i64(secs)?, tv_nsec: 0 };
        Ok(rustix::time::clock_settime(rustix::time::ClockId::Realtime, ts)?)
    }

    fn write_sysctl(&mut self, key: &str, value: &str) -> io::Result<()> {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(path, value)
    }

    fn sync(&mut self) {
        rustix::fs::sync();
    }

    fn halt(&mut self, how: Halt) -> io::Result<()> {
        let cmd = match how {
            Halt::PowerOff => rustix::system::RebootCommand::PowerOff,
            Halt::Reboot => rustix::system::RebootCommand::Restart,
        };
        Ok(rustix::system::reboot(cmd)?)
    }
}
