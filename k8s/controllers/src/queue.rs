//! A work queue of object keys, as client-go's: a key is queued at most
//! once, never handed to two workers at the same time (a key added while
//! it is being processed is queued again when the worker is done), and
//! failures are retried with exponential back-off.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Queue {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    ready: Notify,
}

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    queued: HashSet<String>,
    processing: HashSet<String>,
    /// Added while processing: queued again on `done`.
    dirty: HashSet<String>,
    failures: HashMap<String, u32>,
    /// Keys waiting for a delayed add, and when it is due (one timer per key).
    waiting: HashMap<String, Instant>,
}

/// Back-off after the n-th failure: 10 ms doubling up to 30 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(10u64.saturating_mul(1 << failures.min(12))).min(Duration::from_secs(30))
}

impl Queue {
    pub fn new() -> Queue {
        Queue::default()
    }

    pub fn add(&self, key: &str) {
        let Ok(mut s) = self.inner.state.lock() else { return };
        if s.queued.contains(key) {
            return;
        }
        if s.processing.contains(key) {
            s.dirty.insert(key.to_owned());
            return;
        }
        s.queued.insert(key.to_owned());
        s.queue.push_back(key.to_owned());
        drop(s);
        self.inner.ready.notify_one();
    }

    /// Adds `key` after `delay` (from a task; needs a runtime).
    pub fn add_after(&self, key: &str, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let due = Instant::now() + delay;
        {
            let Ok(mut s) = self.inner.state.lock() else { return };
            if s.waiting.get(key).is_some_and(|d| *d <= due) {
                return;
            }
            s.waiting.insert(key.to_owned(), due);
        }
        let (q, key) = (self.clone(), key.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // Only the timer for the earliest due time adds the key.
            let mine = q.inner.state.lock().is_ok_and(|mut s| {
                let mine = s.waiting.get(&key) == Some(&due);
                if mine {
                    s.waiting.remove(&key);
                }
                mine
            });
            if mine {
                q.add(&key);
            }
        });
    }

    /// Retries `key` after a back-off that grows with its failures.
    pub fn retry(&self, key: &str) {
        let n = {
            let Ok(mut s) = self.inner.state.lock() else { return };
            let n = s.failures.entry(key.to_owned()).or_default();
            *n += 1;
            *n
        };
        self.add_after(key, backoff(n - 1));
    }

    /// Resets `key`'s failure count.
    pub fn forget(&self, key: &str) {
        if let Ok(mut s) = self.inner.state.lock() {
            s.failures.remove(key);
        }
    }

    /// The next key; the caller must call [`Queue::done`] with it.
    pub async fn next(&self) -> String {
        loop {
            let notified = self.inner.ready.notified();
            if let Ok(mut s) = self.inner.state.lock()
                && let Some(k) = s.queue.pop_front()
            {
                s.queued.remove(&k);
                s.processing.insert(k.clone());
                let more = !s.queue.is_empty();
                drop(s);
                if more {
                    self.inner.ready.notify_one();
                }
                return k;
            }
            notified.await;
        }
    }

    pub fn done(&self, key: &str) {
        let Ok(mut s) = self.inner.state.lock() else { return };
        s.processing.remove(key);
        if s.dirty.remove(key) {
            s.queued.insert(key.to_owned());
            s.queue.push_back(key.to_owned());
            drop(s);
            self.inner.ready.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.inner.state.lock().map(|s| s.queue.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_deduplicated_and_never_processed_twice_at_once() {
        let q = Queue::new();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.len(), 2);
        let k = q.next().await;
        assert_eq!(k, "a");
        q.add("a"); // while processing: not handed out again yet
        assert_eq!(q.next().await, "b");
        assert!(q.is_empty());
        q.done("a");
        assert_eq!(q.next().await, "a");
        q.done("a");
        q.done("b");
        assert!(q.is_empty());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_millis(10));
        assert_eq!(backoff(3), Duration::from_millis(80));
        assert_eq!(backoff(40), Duration::from_secs(30));
    }
}
