//! Time as the controllers see it: the system clock, or a manual one that
//! tests move forward (upstream's `clock.Clock` and its fake). Requeues that
//! wait for a time ("the deadline passes", "the next schedule") go through
//! the clock, so a test that moves a manual clock wakes them at once.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::queue::Queue;

pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
    /// Completes once the clock reads `t` or later.
    fn sleep_until(&self, t: SystemTime) -> Sleep;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep_until(&self, t: SystemTime) -> Sleep {
        let d = t.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock that stands still until it is set or advanced.
pub struct ManualClock {
    now: watch::Sender<SystemTime>,
}

impl ManualClock {
    pub fn new(start: SystemTime) -> Arc<ManualClock> {
        Arc::new(ManualClock { now: watch::Sender::new(start) })
    }

    pub fn set(&self, t: SystemTime) {
        self.now.send_replace(t);
    }

    pub fn advance(&self, d: Duration) {
        self.now.send_modify(|t| *t += d);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.borrow()
    }
    fn sleep_until(&self, target: SystemTime) -> Sleep {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            let _ = rx.wait_for(|t| *t >= target).await;
        })
    }
}

/// Adds keys to a queue when the clock reaches a time; one timer per key,
/// the earliest wins (upstream's `AddAfter`).
#[derive(Clone)]
pub struct Timers {
    clock: Arc<dyn Clock>,
    queue: Queue,
    pending: Arc<Mutex<HashMap<String, SystemTime>>>,
}

impl Timers {
    pub fn new(clock: Arc<dyn Clock>, queue: Queue) -> Timers {
        Timers { clock, queue, pending: Arc::default() }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Queues `key` once the clock reads `at` (needs a runtime). Times
    /// are absolute, so a clock that moves during a sync loses nothing.
    pub fn add_at(&self, key: &str, at: SystemTime) {
        let now = self.clock.now();
        if at <= now {
            return self.queue.add(key);
        }
        if let Ok(mut p) = self.pending.lock() {
            if p.get(key).is_some_and(|t| *t > now && *t <= at) {
                return;
            }
            p.insert(key.to_owned(), at);
        }
        let sleep = self.clock.sleep_until(at);
        let (queue, pending, key) = (self.queue.clone(), self.pending.clone(), key.to_owned());
        tokio::spawn(async move {
            sleep.await;
            if let Ok(mut p) = pending.lock()
                && p.get(&key) == Some(&at)
            {
                p.remove(&key);
            }
            queue.add(&key);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_when_moved() {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
        let queue = Queue::new();
        let timers = Timers::new(clock.clone(), queue.clone());
        let t0 = SystemTime::UNIX_EPOCH;
        timers.add_at("a", t0 + Duration::from_secs(60));
        timers.add_at("a", t0 + Duration::from_secs(90)); // later: the first timer covers it
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(59));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(queue.is_empty());
        clock.advance(Duration::from_secs(1));
        let k = tokio::time::timeout(Duration::from_secs(5), queue.next()).await.expect("woken");
        assert_eq!(k, "a");
    }
}
