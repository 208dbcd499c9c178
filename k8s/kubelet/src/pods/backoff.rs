//! Upstream's per-item exponential back-off (client-go `flowcontrol.Backoff`)
//! as the kubelet uses it for crashing containers and failing image pulls:
//! 10 s doubling to 5 min, forgotten after 10 min without an event.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub struct Backoff {
    items: HashMap<String, (Duration, Instant)>,
}

impl Backoff {
    /// Whether an event at `at` is still inside the item's back-off window.
    pub fn in_backoff_since(&self, key: &str, at: Instant) -> bool {
        match self.items.get(key) {
            Some((delay, last)) if !expired(at, *last) => at.elapsed() < *delay,
            _ => false,
        }
    }

    /// Whether the item's last recorded event is less than its delay ago
    /// (upstream's `IsInBackOffSinceUpdate`, used for image pulls).
    pub fn in_backoff_since_update(&self, key: &str, now: Instant) -> bool {
        match self.items.get(key) {
            Some((delay, last)) if !expired(now, *last) => now.saturating_duration_since(*last) < *delay,
            _ => false,
        }
    }

    /// Records an event at `at`: the first (or first after expiry) starts at
    /// 10 s, each further one doubles the delay up to 5 min.
    pub fn next(&mut self, key: &str, at: Instant) {
        let delay = match self.items.get(key) {
            Some((delay, last)) if !expired(at, *last) => (*delay * 2).min(MAX),
            _ => INITIAL,
        };
        self.items.insert(key.to_owned(), (delay, at));
    }

    pub fn get(&self, key: &str) -> Duration {
        self.items.get(key).map(|(d, _)| *d).unwrap_or_default()
    }

    /// When the window of an event at `at` closes.
    pub fn until(&self, key: &str, at: Instant) -> Option<Instant> {
        self.items.get(key).map(|(d, _)| at + *d)
    }

    pub fn reset(&mut self, key: &str) {
        self.items.remove(key);
    }
}

fn expired(at: Instant, last: Instant) -> bool {
    at.checked_duration_since(last).is_some_and(|d| d > MAX * 2)
}

/// Go's `time.Duration.String()`: `10s`, `1m20s`, `5m0s`.
pub fn go_duration(d: Duration) -> String {
    lichen_apimachinery::gofmt::duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap() {
        let mut b = Backoff::default();
        let now = Instant::now();
        assert!(!b.in_backoff_since("c", now));
        b.next("c", now);
        assert_eq!(b.get("c"), INITIAL);
        assert!(b.in_backoff_since("c", now));
        for _ in 0..10 {
            b.next("c", now);
        }
        assert_eq!(b.get("c"), MAX);
        b.reset("c");
        assert!(!b.in_backoff_since("c", now));
    }

    #[test]
    fn durations_print_as_go() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}
