//! The clock of a device that may have no real-time clock (a Raspberry Pi
//! boots in 1970). Certificates, tokens and TLS need a time that is at
//! least roughly right, so before anything looks at the clock:
//!
//! 1. The *floor* is the latest of two times known to have passed: the
//!    build time (the root file system's timestamps, which the image builder
//!    sets to `SOURCE_DATE_EPOCH`) and the time last saved on DATA.
//! 2. A clock behind the floor is set to it ([`restore`]); a clock ahead is
//!    left alone (an RTC, or a previous SNTP sync survived a warm reboot).
//! 3. The time is saved on DATA every [`SAVE_EVERY`] and at shutdown
//!    ([`save`]), so a device without an RTC resumes near where it stopped
//!    instead of at the build time. Saving rarely spares SD cards.
//!
//! 4. SNTP ([`sntp`]) then corrects it, from the servers the DHCP lease
//!    names; with none, a device without an RTC runs on from the floor.
//!
//! Certificates are issued from `now - 1 h` and never before the
//! floor (lichen-pki's clock rules), so they are valid under any clock this
//! module can produce.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::sys::Kernel;

pub mod sntp;

/// The last known time, seconds since the epoch, on DATA.
pub const SAVED: &str = "/var/lib/lichen/clock";
/// A file of the read-only root whose modification time is the build time.
pub const BUILD_STAMP: &str = "/sbin/init";
/// How often the time is saved while running.
pub const SAVE_EVERY: Duration = Duration::from_secs(3600);

/// What [`restore`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// The clock was behind the floor and now reads `to`.
    Set { from: u64, to: u64 },
    /// The clock was at or past the floor.
    Kept { now: u64, floor: u64 },
}

/// The floor: the later of the build time and the saved time.
pub fn floor(build: Option<u64>, saved: Option<u64>) -> u64 {
    build.unwrap_or(0).max(saved.unwrap_or(0))
}

/// Reads a saved time: one decimal number of seconds; anything else is
/// ignored (a torn write after a power cut must not stop the boot).
pub fn read_saved(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The build time: the modification time of `stamp` on the read-only root.
pub fn build_time(stamp: &Path) -> Option<u64> {
    let modified = std::fs::metadata(stamp).ok()?.modified().ok()?;
    modified.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Sets the clock to the floor if it is behind it.
pub fn restore(k: &mut dyn Kernel, now: u64, floor: u64) -> std::io::Result<Restored> {
    if now >= floor {
        return Ok(Restored::Kept { now, floor });
    }
    k.set_time(floor)?;
    Ok(Restored::Set { from: now, to: floor })
}

/// Restores the clock on the device, logging what it did.
pub fn restore_on_device(k: &mut dyn Kernel) {
    let build = build_time(Path::new(BUILD_STAMP));
    let saved = read_saved(Path::new(SAVED));
    match restore(k, unix_now(), floor(build, saved)) {
        Ok(Restored::Set { from, to }) => crate::info!(
            "clock: {from} is behind the last known time; set to {to} (build {build:?}, saved {saved:?})"
        ),
        Ok(Restored::Kept { now, .. }) => crate::info!("clock: {now} (build {build:?}, saved {saved:?})"),
        Err(e) => crate::warn!("clock: cannot set the time: {e}"),
    }
}

/// Keeps the clock right with SNTP in a thread of its own: every hour once
/// a server answered, every minute until then; the time is saved after
/// each step.
pub fn start_sntp() {
    let spawned = std::thread::Builder::new().name("sntp".into()).spawn(|| {
        let mut k = crate::sys::linux::Linux;
        loop {
            let servers: Vec<std::net::SocketAddr> =
                sntp::servers().into_iter().map(|ip| std::net::SocketAddr::from((ip, 123))).collect();
            let wait = if servers.is_empty() {
                sntp::RETRY
            } else {
                match sntp::sync(&mut k, &servers) {
                    Some(off) => {
                        if off != 0
                            && let Err(e) = save(Path::new(SAVED))
                        {
                            crate::warn!("clock: cannot save the time: {e}");
                        }
                        sntp::EVERY
                    }
                    None => sntp::RETRY,
                }
            };
            std::thread::sleep(wait);
        }
    });
    if let Err(e) = spawned {
        crate::warn!("clock: no SNTP thread: {e}");
    }
}

/// Saves the current time on DATA (atomically, then flushed).
pub fn save(path: &Path) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, format!("{}\n", unix_now()).as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Fake;

    #[test]
    fn a_clock_in_1970_is_set_to_the_later_of_build_and_saved_time() {
        let mut k = Fake::new();
        let f = floor(Some(1_780_000_000), Some(1_790_000_000));
        assert_eq!(f, 1_790_000_000);
        assert_eq!(restore(&mut k, 12, f).unwrap(), Restored::Set { from: 12, to: 1_790_000_000 });
        assert_eq!(k.calls, ["set_time 1790000000"]);
        assert_eq!(floor(Some(1_780_000_000), None), 1_780_000_000);
        assert_eq!(floor(None, None), 0);
    }

    #[test]
    fn a_clock_ahead_of_the_floor_is_left_alone() {
        let mut k = Fake::new();
        assert_eq!(
            restore(&mut k, 1_800_000_000, 1_790_000_000).unwrap(),
            Restored::Kept { now: 1_800_000_000, floor: 1_790_000_000 }
        );
        assert!(k.calls.is_empty());
    }

    #[test]
    fn saved_time_round_trips_and_garbage_is_ignored() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("clock");
        assert_eq!(read_saved(&p), None);
        save(&p).unwrap();
        let t = read_saved(&p).unwrap();
        assert!(t.abs_diff(unix_now()) < 5);
        std::fs::write(&p, b"17900\0\0garbage").unwrap();
        assert_eq!(read_saved(&p), None);
        assert!(build_time(&p).is_some());
    }
}
