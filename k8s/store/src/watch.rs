//! Watch fan-out: writers publish each committed event to a hub, which
//! copies it into every matching watcher's bounded queue without ever waiting.
//!
//! A watch is a replay of the log followed by live events. The store
//! registers the live subscription *before* it reads the replay, so a write
//! that commits while the replay is read lands in the queue (possibly as
//! well as in the replay); [`Watch`] drops queued events at or below the last
//! replayed revision. Nothing is lost and nothing is seen twice.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::error::{StoreError, WatchEnded};
use crate::lock;
use crate::types::{Event, Revision};

/// How many messages a watcher may have queued before it is closed as too
/// slow (etcd closes slow watchers the same way).
pub const DEFAULT_WATCH_CAPACITY: usize = 1000;

/// Replayed history is handed out in messages of at most this many events.
const REPLAY_BATCH: usize = 500;

#[derive(Debug)]
pub enum WatchMessage {
    /// One or more events, in revision order.
    Events(Vec<Event>),
    /// Every event for this watch up to this revision has been delivered
    /// (a bookmark), sent in answer to [`Store::request_progress`](crate::Store::request_progress).
    Progress(Revision),
    /// The watch is over, for example [`StoreError::TooSlow`]: the client must
    /// list again and watch from the list's revision, as with etcd.
    Closed(StoreError),
}

/// The fan-out point of one store.
pub(crate) struct Hub {
    capacity: usize,
    subscribers: Mutex<Vec<Subscriber>>,
}

struct Subscriber {
    prefix: String,
    tx: mpsc::Sender<WatchMessage>,
    too_slow: Arc<AtomicBool>,
}

/// A registered live feed, not yet joined with its replay.
pub(crate) struct Subscription {
    rx: mpsc::Receiver<WatchMessage>,
    too_slow: Arc<AtomicBool>,
}

impl Hub {
    pub(crate) fn new(capacity: usize) -> Self {
        Hub { capacity: capacity.max(1), subscribers: Mutex::new(Vec::new()) }
    }

    pub(crate) fn subscribe(&self, prefix: &str) -> Subscription {
        let (tx, rx) = mpsc::channel(self.capacity);
        let too_slow = Arc::new(AtomicBool::new(false));
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|s| !s.tx.is_closed());
        subscribers.push(Subscriber { prefix: prefix.to_owned(), tx, too_slow: Arc::clone(&too_slow) });
        Subscription { rx, too_slow }
    }

    /// Hands a committed event to every matching watcher. Callers publish in
    /// revision order (they hold their write lock). Never blocks: a watcher
    /// whose queue is full is closed as too slow and dropped.
    pub(crate) fn publish(&self, event: &Event) {
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|s| {
            if !event.kv.key.starts_with(&s.prefix) {
                return true;
            }
            match s.tx.try_send(WatchMessage::Events(vec![event.clone()])) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    s.too_slow.store(true, Ordering::SeqCst);
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
    }

    /// Tells every watcher that all events up to `revision` were published.
    /// Best effort: a full queue just misses the bookmark.
    pub(crate) fn progress(&self, revision: Revision) {
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|s| {
            !matches!(s.tx.try_send(WatchMessage::Progress(revision)), Err(TrySendError::Closed(_)))
        });
    }

    #[cfg(test)]
    pub(crate) fn watchers(&self) -> usize {
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|s| !s.tx.is_closed());
        subscribers.len()
    }
}

/// A stream of the events of one key prefix: first the stored history, then
/// live writes, in revision order without gaps or duplicates.
pub struct Watch {
    replay: VecDeque<Vec<Event>>,
    rx: mpsc::Receiver<WatchMessage>,
    too_slow: Arc<AtomicBool>,
    /// Everything up to here has been delivered (or was before the start).
    seen: Revision,
    ended: bool,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("seen", &self.seen).field("ended", &self.ended).finish_non_exhaustive()
    }
}

impl Watch {
    /// Joins a subscription registered before the replay was read with the
    /// replay: events after `after` up to `replayed_through`.
    pub(crate) fn new(
        subscription: Subscription,
        replay: Vec<Event>,
        after: Revision,
        replayed_through: Revision,
    ) -> Self {
        let mut batches = VecDeque::new();
        let mut replay = replay.into_iter().peekable();
        while replay.peek().is_some() {
            batches.push_back(replay.by_ref().take(REPLAY_BATCH).collect());
        }
        Watch {
            replay: batches,
            rx: subscription.rx,
            too_slow: subscription.too_slow,
            seen: after.max(replayed_through),
            ended: false,
        }
    }

    /// The next message; `None` once the watch has ended.
    pub async fn next(&mut self) -> Option<WatchMessage> {
        poll_fn(|cx| self.poll_message(cx)).await
    }

    /// The next message if one is ready, `Ok(None)` if not yet.
    pub fn try_next(&mut self) -> Result<Option<WatchMessage>, WatchEnded> {
        match self.poll_message(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Some(message)) => Ok(Some(message)),
            Poll::Ready(None) => Err(WatchEnded),
            Poll::Pending => Ok(None),
        }
    }

    /// Waits up to `timeout` for the next message, `Ok(None)` on timeout.
    /// Blocks the thread: for synchronous callers and tests, not async code.
    pub fn blocking_next(&mut self, timeout: Duration) -> Result<Option<WatchMessage>, WatchEnded> {
        let deadline = Instant::now() + timeout;
        let waker = Waker::from(Arc::new(Unpark(thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            match self.poll_message(&mut cx) {
                Poll::Ready(Some(message)) => return Ok(Some(message)),
                Poll::Ready(None) => return Err(WatchEnded),
                Poll::Pending => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            thread::park_timeout(deadline - now);
        }
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<WatchMessage>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            if self.too_slow.load(Ordering::SeqCst) {
                self.ended = true;
                return Poll::Ready(Some(WatchMessage::Closed(StoreError::TooSlow)));
            }
            if let Some(batch) = self.replay.pop_front() {
                return Poll::Ready(Some(WatchMessage::Events(batch)));
            }
            match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    // The store is gone, or it just closed us as too slow.
                    if !self.too_slow.load(Ordering::SeqCst) {
                        self.ended = true;
                    }
                }
                Poll::Ready(Some(message)) => {
                    if let Some(message) = self.admit(message) {
                        return Poll::Ready(Some(message));
                    }
                }
            }
        }
    }

    /// Drops what the replay already delivered.
    fn admit(&mut self, message: WatchMessage) -> Option<WatchMessage> {
        match message {
            WatchMessage::Events(mut events) => {
                events.retain(|e| e.revision() > self.seen);
                let last = events.last()?.revision();
                self.seen = last;
                Some(WatchMessage::Events(events))
            }
            // A bookmark repeats the last revision when nothing happened since.
            WatchMessage::Progress(revision) if revision >= self.seen => {
                self.seen = revision;
                Some(WatchMessage::Progress(revision))
            }
            WatchMessage::Progress(_) => None,
            WatchMessage::Closed(error) => {
                self.ended = true;
                Some(WatchMessage::Closed(error))
            }
        }
    }
}

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{EventKind, KeyValue};

    fn event(key: &str, revision: Revision) -> Event {
        let kv =
            KeyValue { key: key.into(), value: vec![], create_revision: revision, mod_revision: revision };
        Event { kind: EventKind::Put, kv, prev: None }
    }

    fn revisions(message: Option<WatchMessage>) -> Vec<Revision> {
        match message {
            Some(WatchMessage::Events(events)) => events.iter().map(Event::revision).collect(),
            other => panic!("expected events, got {other:?}"),
        }
    }

    // The API server moves watches into tasks and errors across threads.
    const _: () = {
        const fn send<T: Send>() {}
        const fn send_sync<T: Send + Sync>() {}
        send::<Watch>();
        send::<WatchMessage>();
        send_sync::<StoreError>();
    };

    #[test]
    fn live_events_the_replay_already_holds_are_dropped() {
        let hub = Hub::new(10);
        let subscription = hub.subscribe("");
        // Committed while the replay was read: both in the replay and queued.
        for r in 3..=5 {
            hub.publish(&event("a", r));
        }
        hub.progress(4);
        hub.progress(5);
        let replay = (1..=4).map(|r| event("a", r)).collect();
        let mut watch = Watch::new(subscription, replay, 0, 4);
        assert_eq!(revisions(watch.try_next().unwrap()), [1, 2, 3, 4]);
        assert_eq!(revisions(watch.try_next().unwrap()), [5]);
        assert!(matches!(watch.try_next(), Ok(Some(WatchMessage::Progress(5)))));
        assert!(matches!(watch.try_next(), Ok(None)));
    }

    #[test]
    fn a_long_replay_comes_in_batches() {
        let hub = Hub::new(10);
        let replay = (1..=1200).map(|r| event("a", r)).collect();
        let mut watch = Watch::new(hub.subscribe(""), replay, 0, 1200);
        let sizes: Vec<usize> = (0..3).map(|_| revisions(watch.try_next().unwrap()).len()).collect();
        assert_eq!(sizes, [500, 500, 200]);
    }

    #[test]
    fn dropped_watches_are_unsubscribed() {
        let hub = Hub::new(10);
        let kept = Watch::new(hub.subscribe("a"), vec![], 0, 0);
        drop(Watch::new(hub.subscribe("a"), vec![], 0, 0));
        assert_eq!(hub.watchers(), 1);
        drop(kept);
        hub.publish(&event("a", 1));
        assert_eq!(hub.watchers(), 0);
    }

    #[test]
    fn blocking_next_wakes_for_an_event_and_times_out_without_one() {
        let hub = Arc::new(Hub::new(10));
        let mut watch = Watch::new(hub.subscribe(""), vec![], 0, 0);
        assert!(matches!(watch.blocking_next(Duration::from_millis(20)), Ok(None)));
        let publisher = {
            let hub = Arc::clone(&hub);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                hub.publish(&event("a", 1));
            })
        };
        let started = Instant::now();
        assert_eq!(revisions(watch.blocking_next(Duration::from_secs(20)).unwrap()), [1]);
        assert!(started.elapsed() < Duration::from_secs(10));
        publisher.join().unwrap();
        drop(hub);
        assert_eq!(watch.blocking_next(Duration::from_secs(20)).unwrap_err(), WatchEnded);
    }

    #[tokio::test]
    async fn next_awaits_live_events() {
        let hub = Arc::new(Hub::new(10));
        let mut watch = Watch::new(hub.subscribe(""), vec![event("a", 1)], 0, 1);
        assert_eq!(revisions(watch.next().await), [1]);
        let publisher = Arc::clone(&hub);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            publisher.publish(&event("a", 2));
        });
        assert_eq!(revisions(watch.next().await), [2]);
        drop(hub);
        assert!(watch.next().await.is_none());
    }
}
