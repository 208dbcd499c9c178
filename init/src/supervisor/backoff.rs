//! Restart back-off: 1 s, doubling to a ceiling, back to 1 s once a service
//! has stayed up long enough to count as healthy. A crashing service is
//! restarted forever, slower and slower; the machine never reboots for it.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    stable_after: Duration,
    current: Option<Duration>,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60), Duration::from_secs(60))
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration, stable_after: Duration) -> Backoff {
        Backoff { initial, max, stable_after, current: None }
    }

    /// The delay before the next start of a service that ran for `ran_for`.
    pub fn next(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= self.stable_after {
            self.current = None;
        }
        let d = match self.current {
            None => self.initial,
            Some(c) => (c * 2).min(self.max),
        };
        self.current = Some(d);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_ceiling_and_resets_after_a_stable_run() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(50);
        let delays: Vec<u64> = (0..9).map(|_| b.next(quick).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.next(Duration::from_secs(61)), Duration::from_secs(1));
        assert_eq!(b.next(quick), Duration::from_secs(2));
    }
}
