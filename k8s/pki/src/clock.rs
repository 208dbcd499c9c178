//! Validity windows for devices whose clock may be wrong.
//!
//! A board without a real-time clock boots in 1970 until SNTP corrects it. The
//! rules, applied everywhere in this crate:
//!
//! 1. The *effective now* is `max(now, floor)`, where the floor is a time known to
//!    have passed (the build time, or [`default_clock_floor`]). A clock in 1970 thus
//!    acts as if it were the floor.
//! 2. New certificates start at `effective now - 1 hour` (tolerates peers whose
//!    clocks are a little behind) but never before the floor, and end at
//!    `effective now + validity`.
//! 3. On reuse, a certificate is renewed only when it expires within
//!    [`RENEW_BEFORE`] of the effective now. Its `not_before` is never checked: a
//!    certificate that is "not yet valid" only says that this boot's clock is
//!    behind the one that issued it, and regenerating it would churn certificates
//!    on every boot of such a device (and the new one would be just as wrong once
//!    the clock is fixed).
//!
//! Known limit: a clock that jumped far *forward*, issued certificates, and was then
//! set back leaves certificates that are not yet valid for a while; rule 3 keeps
//! them. Remove `server.crt` and `admin.crt` to force new ones.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

/// 2026-01-01T00:00:00Z, the default floor for the clock.
pub const DEFAULT_CLOCK_FLOOR_UNIX_SECS: u64 = 1_767_225_600;

/// How far before its expiry a leaf certificate is renewed.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// How far before "now" new certificates start.
const BACKDATE: Duration = Duration::from_secs(3600);

/// [`DEFAULT_CLOCK_FLOOR_UNIX_SECS`] as a [`SystemTime`].
pub fn default_clock_floor() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(DEFAULT_CLOCK_FLOOR_UNIX_SECS)
}

/// A clock reading corrected by the floor, in whole seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Clock {
    now: u64,
    floor: u64,
}

impl Clock {
    pub(crate) fn new(now: SystemTime, floor: SystemTime) -> Self {
        let floor = unix_secs(floor);
        Clock { now: unix_secs(now).max(floor), floor }
    }

    /// The effective now, in seconds since the epoch.
    pub(crate) fn now_secs(&self) -> u64 {
        self.now
    }

    /// `(not_before, not_after)` for a new certificate valid for `validity`.
    pub(crate) fn window(&self, validity: Duration) -> (OffsetDateTime, OffsetDateTime) {
        let not_before = self.now.saturating_sub(BACKDATE.as_secs()).max(self.floor);
        let not_after = self.now.saturating_add(validity.as_secs());
        (at(not_before), at(not_after))
    }

    /// Whether a certificate ending at `not_after` must be renewed (rule 3).
    pub(crate) fn needs_renewal(&self, not_after: OffsetDateTime) -> bool {
        let deadline = self.now.saturating_add(RENEW_BEFORE.as_secs());
        not_after.unix_timestamp() < i64::try_from(deadline).unwrap_or(i64::MAX)
    }

    /// Whether a certificate ending at `not_after` has expired.
    pub(crate) fn expired(&self, not_after: OffsetDateTime) -> bool {
        not_after.unix_timestamp() < i64::try_from(self.now).unwrap_or(i64::MAX)
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Seconds since the epoch as a date; clamps to the latest date X.509 can carry.
fn at(secs: u64) -> OffsetDateTime {
    // 9999-12-31T23:59:59Z, GeneralizedTime's limit.
    const MAX: i64 = 253_402_300_799;
    let secs = i64::try_from(secs).unwrap_or(MAX).min(MAX);
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn clock_in_1970_acts_as_the_floor() {
        let floor = DEFAULT_CLOCK_FLOOR_UNIX_SECS;
        let clock = Clock::new(t(42), t(floor));
        let (nb, na) = clock.window(Duration::from_secs(365 * DAY));
        assert_eq!(nb.unix_timestamp(), i64::try_from(floor).unwrap());
        assert_eq!(na.unix_timestamp(), i64::try_from(floor + 365 * DAY).unwrap());
    }

    #[test]
    fn good_clock_backdates_one_hour() {
        let floor = DEFAULT_CLOCK_FLOOR_UNIX_SECS;
        let now = floor + 100 * DAY;
        let (nb, _) = Clock::new(t(now), t(floor)).window(Duration::from_secs(DAY));
        assert_eq!(nb.unix_timestamp(), i64::try_from(now - 3600).unwrap());
    }

    #[test]
    fn backdating_stops_at_the_floor() {
        let floor = DEFAULT_CLOCK_FLOOR_UNIX_SECS;
        let (nb, _) = Clock::new(t(floor + 60), t(floor)).window(Duration::from_secs(DAY));
        assert_eq!(nb.unix_timestamp(), i64::try_from(floor).unwrap());
    }

    #[test]
    fn renewal_thirty_days_before_expiry() {
        let clock = Clock::new(t(DEFAULT_CLOCK_FLOOR_UNIX_SECS), t(0));
        let now = i64::try_from(DEFAULT_CLOCK_FLOOR_UNIX_SECS).unwrap();
        let day = i64::try_from(DAY).unwrap();
        assert!(!clock.needs_renewal(OffsetDateTime::from_unix_timestamp(now + 31 * day).unwrap()));
        assert!(clock.needs_renewal(OffsetDateTime::from_unix_timestamp(now + 29 * day).unwrap()));
    }

    #[test]
    fn huge_validity_is_clamped() {
        let clock = Clock::new(t(DEFAULT_CLOCK_FLOOR_UNIX_SECS), t(0));
        let (_, na) = clock.window(Duration::from_secs(u64::MAX));
        assert_eq!(na.year(), 9999);
    }
}
