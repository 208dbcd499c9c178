//! The timing every sync loop here shares (proxy, policy, overlay): a
//! change from the informers makes a sync pending; pending syncs run at
//! most once per `min_sync` (a burst of changes is one sync); a periodic
//! resync looks at the kernel for drift; a failed sync is retried with
//! exponential back-off (2 s doubling to 30 s), and a success resets it.

use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The back-off after the n-th failure in a row: this × 2ⁿ, at most RETRY_MAX.
const RETRY_BASE: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Why [`Pacer::tick`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Something changed; the sync is pending (and waits for `min_sync`).
    Changed,
    /// The periodic resync is due: look at the kernel.
    Resync,
    /// A deadline passed: see [`Pacer::take_ready`].
    Deadline,
}

pub(crate) struct Pacer {
    pending: bool,
    not_before: Instant,
    next_resync: Instant,
    resync: Duration,
    min_sync: Duration,
    failures: u32,
}

impl Pacer {
    /// `pending`: whether a first sync is due before any change.
    pub(crate) fn new(resync: Duration, min_sync: Duration, pending: bool) -> Pacer {
        let now = Instant::now();
        Pacer { pending, not_before: now, next_resync: now + resync, resync, min_sync, failures: 0 }
    }

    /// Waits for a change or the next deadline.
    pub(crate) async fn tick(&mut self, changed: &Notify) -> Tick {
        let wake = if self.pending { self.not_before } else { self.next_resync };
        tokio::select! {
            () = changed.notified() => {
                self.pending = true;
                return Tick::Changed;
            }
            () = tokio::time::sleep_until(wake) => {}
        }
        let now = Instant::now();
        if now >= self.next_resync {
            self.next_resync = now + self.resync;
            return Tick::Resync;
        }
        Tick::Deadline
    }

    /// Makes a sync pending (e.g. the kernel drifted).
    pub(crate) fn set_pending(&mut self) {
        self.pending = true;
    }

    /// Whether a sync is due now; if so it is no longer pending.
    pub(crate) fn take_ready(&mut self) -> bool {
        if !self.pending || Instant::now() < self.not_before {
            return false;
        }
        self.pending = false;
        true
    }

    /// Runs the next sync now, due or not (a resync that must act).
    pub(crate) fn take(&mut self) {
        self.pending = false;
    }

    /// A sync succeeded; returns whether it ended a run of failures.
    pub(crate) fn succeeded(&mut self) -> bool {
        let recovered = self.failures > 0;
        self.failures = 0;
        self.not_before = Instant::now() + self.min_sync;
        recovered
    }

    /// A sync failed: it is pending again after the back-off, returned.
    pub(crate) fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let delay = RETRY_BASE.saturating_mul(1 << self.failures.min(5)).min(RETRY_MAX);
        self.pending = true;
        self.not_before = Instant::now() + delay;
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn changes_coalesce_resyncs_come_and_failures_back_off() {
        let changed = Notify::new();
        let mut p = Pacer::new(Duration::from_secs(60), Duration::from_millis(500), true);
        // The first sync is due at once.
        assert_eq!(p.tick(&changed).await, Tick::Deadline);
        assert!(p.take_ready());
        assert!(!p.succeeded());
        // A change right after waits for min_sync.
        changed.notify_one();
        assert_eq!(p.tick(&changed).await, Tick::Changed);
        assert!(!p.take_ready(), "within min_sync");
        let start = Instant::now();
        assert_eq!(p.tick(&changed).await, Tick::Deadline);
        assert_eq!(start.elapsed(), Duration::from_millis(500));
        assert!(p.take_ready());
        // Failures back off 2 s, 4 s, … up to 30 s; a success resets.
        assert_eq!(p.failed(), Duration::from_secs(2));
        assert_eq!(p.failed(), Duration::from_secs(4));
        for _ in 0..5 {
            p.failed();
        }
        assert_eq!(p.failed(), Duration::from_secs(30));
        assert!(p.succeeded(), "recovered");
        assert!(!p.succeeded(), "no longer failing");
        p.take();
        // Nothing pending: the next wake is the resync.
        let start = Instant::now();
        assert_eq!(p.tick(&changed).await, Tick::Resync);
        assert!(start.elapsed() >= Duration::from_secs(59));
        assert!(!p.take_ready());
    }
}
