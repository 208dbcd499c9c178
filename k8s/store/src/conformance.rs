//! The behaviour every backend must show, written once and run against
//! each: `conformance!` instantiates one `#[test]` per behaviour per backend.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{
    Event, EventKind, KeyValue, MemoryStore, Revision, SqliteOptions, SqliteStore, Store, StoreError, Watch,
    WatchEnded, WatchMessage,
};

/// A store under test and whatever must live as long as it.
pub(crate) struct Fixture<S> {
    store: Arc<S>,
    _dir: Option<TempDir>,
}

impl<S> Deref for Fixture<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.store
    }
}

fn memory(watch_capacity: usize) -> Fixture<MemoryStore> {
    Fixture { store: Arc::new(MemoryStore::with_watch_capacity(watch_capacity)), _dir: None }
}

fn sqlite(watch_capacity: usize) -> Fixture<SqliteStore> {
    let dir = tempfile::tempdir().unwrap();
    // Small compaction batches, so that compaction tests cross batches.
    let options = SqliteOptions { watch_capacity, compaction_batch: 3, ..SqliteOptions::default() };
    let store = SqliteStore::open_with(dir.path().join("state.db"), options).unwrap();
    Fixture { store: Arc::new(store), _dir: Some(dir) }
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $test() { super::$test(super::memory) } )*
        }
        mod sqlite {
            $( #[test] fn $test() { super::$test(super::sqlite) } )*
        }
    };
}

conformance![
    revisions_count_up_from_one,
    create_refuses_a_live_key,
    update_is_compare_and_swap,
    delete_returns_the_last_value_at_the_delete_revision,
    create_after_delete_starts_a_new_incarnation,
    reads_at_past_revisions,
    list_pages_stay_consistent_while_writes_continue,
    list_and_count_respect_prefix_boundaries,
    watch_replays_history_then_follows_live_writes,
    watch_sees_only_its_prefix,
    watch_has_no_gaps_or_duplicates_under_concurrent_writers,
    watch_from_a_future_revision_starts_above_it,
    compaction_keeps_the_latest_state_and_refuses_older_reads,
    compaction_of_a_trailing_delete_keeps_revisions_increasing,
    slow_watcher_is_closed_and_writers_do_not_wait,
    progress_bookmarks_follow_the_events_before_them,
    empty_keys_are_refused,
];

const CAPACITY: usize = 1000;
const WAIT: Duration = Duration::from_secs(20);

fn kv(key: &str, value: &[u8], create_revision: Revision, mod_revision: Revision) -> KeyValue {
    KeyValue { key: key.to_owned(), value: value.to_vec(), create_revision, mod_revision }
}

fn keys(items: &[KeyValue]) -> Vec<&str> {
    items.iter().map(|kv| kv.key.as_str()).collect()
}

/// Collects events until one at `through`, ignoring bookmarks.
fn events_through(watch: &mut Watch, through: Revision) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    while events.last().is_none_or(|e| e.revision() < through) {
        match watch.blocking_next(WAIT) {
            Ok(Some(WatchMessage::Events(batch))) => {
                assert!(!batch.is_empty(), "empty event batch");
                events.extend(batch);
            }
            Ok(Some(WatchMessage::Progress(_))) => {}
            Ok(Some(WatchMessage::Closed(e))) => panic!("watch closed: {e}"),
            Ok(None) => panic!("no event after {:?} within {WAIT:?}", events.last().map(Event::revision)),
            Err(WatchEnded) => panic!("watch ended"),
        }
    }
    events
}

fn assert_quiet(watch: &mut Watch) {
    match watch.try_next() {
        Ok(None) => {}
        other => panic!("expected nothing, got {other:?}"),
    }
}

fn revisions(events: &[Event]) -> Vec<Revision> {
    events.iter().map(Event::revision).collect()
}

fn revisions_count_up_from_one<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    let s = make(CAPACITY);
    assert_eq!(s.current_revision().unwrap(), 0);
    assert_eq!(s.create("a", b"1").unwrap(), kv("a", b"1", 1, 1));
    assert_eq!(s.create("b", b"1").unwrap(), kv("b", b"1", 2, 2));
    assert_eq!(s.update("a", b"2", 1).unwrap(), kv("a", b"2", 1, 3));
    assert_eq!(s.delete("b", None).unwrap(), kv("b", b"1", 2, 4));
    assert_eq!(s.current_revision().unwrap(), 4);
    assert_eq!(s.count("").unwrap(), (1, 4));
}

fn create_refuses_a_live_key<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    let s = make(CAPACITY);
    s.create("a", b"1").unwrap();
    s.update("a", b"2", 1).unwrap();
    match s.create("a", b"3") {
        Err(StoreError::AlreadyExists { key, revision }) => assert_eq!((key.as_str(), revision), ("a", 2)),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    // A refused write takes no revision and changes nothing.
    assert_eq!(s.current_revision().unwrap(), 2);
    assert_eq!(s.get("a", None).unwrap(), Some(kv("a", b"2", 1, 2)));
}

fn update_is_compare_and_swap<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    let s = make(CAPACITY);
    s.create("a", b"1").unwrap();
    s.update("a", b"2", 1).unwrap();
    match s.update("a", b"stale", 1) {
        Err(StoreError::Conflict { key, expected, current }) => {
            assert_eq!((key.as_str(), expected), ("a", 1));
            assert_eq!(*current, kv("a", b"2", 1, 2));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(s.update("a", b"3", 2).unwrap(), kv("a", b"3", 1, 3));
    assert!(matches!(s.update("never", b"x", 1), Err(StoreError::NotFound { key }) if key == "never"));
    s.delete("a", None).unwrap();
    assert!(matches!(s.update("a", b"x", 3), Err(StoreError::NotFound { .. })));
    assert_eq!(s.current_revision().unwrap(), 4);
}

fn delete_returns_the_last_value_at_the_delete_revision<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    let s = make(CAPACITY);
    s.create("a", b"1").unwrap();
    s.update("a", b"2", 1).unwrap();
    match s.delete("a", Some(1)) {
        Err(StoreError::Conflict { expected: 1, current, .. }) => assert_eq!(*current, kv("a", b"2", 1, 2)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(s.delete("a", Some(2)).unwrap(), kv("a", b"2", 1, 3));
    assert_eq!(s.get("a", None).unwrap(), None);
    assert!(matches!(s.delete("a", None), Err(StoreError::NotFound { .. })));
    assert!(matches!(s.delete("a", Some(3)), Err(StoreError::NotFound { .. })));
    assert_eq!(s.current_revision().unwrap(), 3);
}

fn create_after_delete_starts_a_new_incarnation<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    let s = make(CAPACITY);
    s.create("a", b"old").unwrap();
    s.delete("a", None).unwrap();
    assert_eq!(s.create("a", b"new").unwrap(), kv("a", b"new", 3, 3));
    assert_eq!(s.get("a", Some(1)).unwrap(), Some(kv("a", b"old", 1, 1)));
    assert_eq!(s.get("a", Some(2)).unwrap(), None);
    // The old incarnation's revision no longer guards anything.
    assert!(matches!(s.update("a", b"x", 1), Err(StoreError::Conflict { .. })));
}

fn reads_at_past_revisions<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    let s = make(CAPACITY);
    s.create("k/a", b"a1").unwrap(); // 1
    s.create("k/b", b"b1").unwrap(); // 2
    s.update("k/a", b"a2", 1).unwrap(); // 3
    s.delete("k/b", None).unwrap(); // 4
    s.create("k/c", b"c1").unwrap(); // 5
    let at = |r| {
        let list = s.list("k/", None, None, Some(r)).unwrap();
        assert_eq!(list.revision, r);
        list.items
            .iter()
            .map(|kv| format!("{}={}", kv.key, String::from_utf8_lossy(&kv.value)))
            .collect::<Vec<_>>()
    };
    assert!(at(0).is_empty());
    assert_eq!(at(1), ["k/a=a1"]);
    assert_eq!(at(2), ["k/a=a1", "k/b=b1"]);
    assert_eq!(at(3), ["k/a=a2", "k/b=b1"]);
    assert_eq!(at(4), ["k/a=a2"]);
    assert_eq!(at(5), ["k/a=a2", "k/c=c1"]);
    assert_eq!(s.get("k/a", Some(2)).unwrap(), Some(kv("k/a", b"a1", 1, 1)));
    assert_eq!(s.get("k/b", Some(3)).unwrap(), Some(kv("k/b", b"b1", 2, 2)));
    assert_eq!(s.get("k/c", Some(4)).unwrap(), None);
    assert!(matches!(s.get("k/a", Some(6)), Err(StoreError::FutureRevision { requested: 6, current: 5 })));
    assert!(matches!(s.list("k/", None, None, Some(6)), Err(StoreError::FutureRevision { .. })));
    assert_eq!(s.list("k/", None, None, None).unwrap().revision, 5);
}

fn list_pages_stay_consistent_while_writes_continue<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    let s = make(CAPACITY);
    for i in 0..25 {
        s.create(&format!("p/{i:02}"), b"v").unwrap();
    }
    let snapshot = s.list("p/", None, None, None).unwrap();
    let first = s.list("p/", None, Some(10), None).unwrap();
    assert_eq!((first.items.len(), first.more, first.revision), (10, true, snapshot.revision));
    // Writes all over the key range while the client pages.
    let writer = {
        let store = Arc::clone(&s.store);
        thread::spawn(move || {
            for i in (0..25).step_by(3) {
                let key = format!("p/{i:02}");
                let current = store.get(&key, None).unwrap().unwrap();
                store.update(&key, b"changed", current.mod_revision).unwrap();
            }
            for i in (1..25).step_by(4) {
                store.delete(&format!("p/{i:02}"), None).unwrap();
            }
            for i in 0..25 {
                store.create(&format!("p/{i:02}x"), b"new").unwrap();
            }
        })
    };
    let mut pages = vec![first];
    while pages.last().unwrap().more {
        let last = pages.last().unwrap();
        let after = last.items.last().unwrap().key.clone();
        pages.push(s.list("p/", Some(&after), Some(10), Some(last.revision)).unwrap());
    }
    writer.join().unwrap();
    let paged: Vec<KeyValue> = pages.iter().flat_map(|p| p.items.clone()).collect();
    assert_eq!(paged, snapshot.items);
    assert_eq!(pages.iter().map(|p| p.items.len()).collect::<Vec<_>>(), [10, 10, 5]);
    // A limit that exactly fits the rest says there is no more.
    let tail = s.list("p/", Some("p/14"), Some(10), Some(snapshot.revision)).unwrap();
    assert_eq!((tail.items.len(), tail.more), (10, false));
    // The present shows the writes.
    let now = s.list("p/", None, None, None).unwrap();
    assert_eq!(now.items.len(), 25 - 6 + 25);
    assert!(now.revision > snapshot.revision);
}

fn list_and_count_respect_prefix_boundaries<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    let s = make(CAPACITY);
    for key in ["a", "a/", "a/x", "a/y/z", "a0", "a.", "b/1", "a/\u{10FFFF}", "a/gone"] {
        s.create(key, b"v").unwrap();
    }
    s.delete("a/gone", None).unwrap();
    let list = s.list("a/", None, None, None).unwrap();
    assert_eq!(keys(&list.items), ["a/", "a/x", "a/y/z", "a/\u{10FFFF}"]);
    assert!(!list.more);
    assert_eq!(s.count("a/").unwrap(), (4, 10));
    assert_eq!(keys(&s.list("a/", Some("a/x"), None, None).unwrap().items), ["a/y/z", "a/\u{10FFFF}"]);
    // A start before the prefix does not leak keys from outside it.
    assert_eq!(keys(&s.list("a/", Some("a"), Some(1), None).unwrap().items), ["a/"]);
    // A start after the prefix leaves nothing.
    let after = s.list("a/", Some("b"), Some(1), None).unwrap();
    assert!(after.items.is_empty() && !after.more);
    assert_eq!(s.list("", None, None, None).unwrap().items.len(), 8);
    assert_eq!(s.count("").unwrap().0, 8);
    assert_eq!(s.count("c").unwrap(), (0, 10));
    let none = s.list("a/", None, Some(0), None).unwrap();
    assert!(none.items.is_empty() && none.more);
    // What a page leaves for later, at the page's revision.
    assert_eq!(s.count_after("a/", Some("a/x"), 10).unwrap(), 2);
    assert_eq!(s.count_after("a/", None, 10).unwrap(), 4);
    assert_eq!(s.count_after("a/", Some("b"), 10).unwrap(), 0);
    s.create("a/z", b"v").unwrap();
    assert_eq!(s.count_after("a/", Some("a/x"), 10).unwrap(), 2);
    assert_eq!(s.count_after("a/", Some("a/x"), 11).unwrap(), 3);
    // Before the delete, "a/gone" was live.
    assert_eq!(s.count_after("a/", Some("a/x"), 9).unwrap(), 2);
    assert_eq!(s.count_after("a/", None, 9).unwrap(), 5);
    assert!(matches!(s.count_after("a/", None, 99), Err(StoreError::FutureRevision { .. })));
}

fn watch_replays_history_then_follows_live_writes<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    let s = make(CAPACITY);
    s.create("a", b"1").unwrap();
    s.update("a", b"2", 1).unwrap();
    let mut w = s.watch("", 0).unwrap();
    s.delete("a", Some(2)).unwrap();
    s.create("a", b"3").unwrap();
    let events = events_through(&mut w, 4);
    let expected = [
        Event { kind: EventKind::Put, kv: kv("a", b"1", 1, 1), prev: None },
        Event { kind: EventKind::Put, kv: kv("a", b"2", 1, 2), prev: Some(kv("a", b"1", 1, 1)) },
        Event { kind: EventKind::Delete, kv: kv("a", b"2", 1, 3), prev: Some(kv("a", b"2", 1, 2)) },
        Event { kind: EventKind::Put, kv: kv("a", b"3", 4, 4), prev: None },
    ];
    assert_eq!(events, expected);
    assert_quiet(&mut w);
    // A watch from the middle replays only what follows.
    let mut w = s.watch("", 2).unwrap();
    assert_eq!(events_through(&mut w, 4), expected[2..]);
    assert_quiet(&mut w);
}

fn watch_sees_only_its_prefix<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    let s = make(CAPACITY);
    s.create("pods/a", b"1").unwrap();
    s.create("podsx", b"1").unwrap();
    let mut w = s.watch("pods/", 0).unwrap();
    s.create("nodes/a", b"1").unwrap();
    s.create("pods/b", b"1").unwrap();
    let events = events_through(&mut w, 4);
    assert_eq!(revisions(&events), [1, 4]);
    assert_quiet(&mut w);
}

fn watch_has_no_gaps_or_duplicates_under_concurrent_writers<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    const WRITERS: usize = 4;
    const WRITES: usize = 60;
    let s = make(CAPACITY);
    let mut from_start = s.watch("", 0).unwrap();
    let running = Arc::new(AtomicBool::new(true));
    // Watches that start while the writers run, from wherever they are.
    let starter = {
        let store = Arc::clone(&s.store);
        let running = Arc::clone(&running);
        thread::spawn(move || {
            let mut late = Vec::new();
            while running.load(Ordering::SeqCst) && late.len() < 50 {
                let after = store.current_revision().unwrap();
                late.push((after, store.watch("w/", after).unwrap()));
                thread::yield_now();
            }
            late
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let store = Arc::clone(&s.store);
            thread::spawn(move || {
                let key = format!("w/{t}");
                let mut current = store.create(&key, b"0").unwrap();
                for i in 1..WRITES {
                    current = store.update(&key, i.to_string().as_bytes(), current.mod_revision).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    running.store(false, Ordering::SeqCst);
    let late = starter.join().unwrap();
    let last = s.current_revision().unwrap();
    assert_eq!(last, i64::try_from(WRITERS * WRITES).unwrap());
    let events = events_through(&mut from_start, last);
    assert_eq!(revisions(&events), (1..=last).collect::<Vec<_>>());
    // Each event's prev is the key's event before it.
    for pair in events.windows(2).filter(|p| p[0].kv.key == p[1].kv.key) {
        assert_eq!(pair[1].prev.as_ref(), Some(&pair[0].kv));
    }
    let overlapping = late.iter().filter(|(after, _)| (1..last).contains(after)).count();
    eprintln!("{overlapping} of {} watches started while writers ran", late.len());
    for (after, mut watch) in late {
        let events = if after < last { events_through(&mut watch, last) } else { Vec::new() };
        assert_eq!(revisions(&events), (after + 1..=last).collect::<Vec<_>>(), "watch after {after}");
        assert_quiet(&mut watch);
    }
}

fn watch_from_a_future_revision_starts_above_it<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    let s = make(CAPACITY);
    s.create("a", b"1").unwrap();
    let mut w = s.watch("", 3).unwrap();
    for i in 0..3 {
        s.create(&format!("b{i}"), b"1").unwrap();
    }
    assert_eq!(revisions(&events_through(&mut w, 4)), [4]);
}

fn compaction_keeps_the_latest_state_and_refuses_older_reads<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    let s = make(CAPACITY);
    let mut a = s.create("a", b"1").unwrap(); // 1
    for v in 2..=4 {
        a = s.update("a", v.to_string().as_bytes(), a.mod_revision).unwrap(); // 2..4
    }
    s.create("b", b"1").unwrap(); // 5
    s.delete("b", None).unwrap(); // 6
    s.create("c", b"1").unwrap(); // 7
    s.create("d", b"1").unwrap(); // 8
    s.update("a", b"5", 4).unwrap(); // 9
    s.delete("d", None).unwrap(); // 10
    let before = s.list("", None, None, Some(8)).unwrap();
    s.compact(8).unwrap();
    assert_eq!(s.compacted_revision().unwrap(), 8);

    assert_eq!(s.list("", None, None, Some(8)).unwrap(), before);
    assert_eq!(keys(&s.list("", None, None, None).unwrap().items), ["a", "c"]);
    assert_eq!(s.get("a", None).unwrap(), Some(kv("a", b"5", 1, 9)));
    assert_eq!(s.get("a", Some(8)).unwrap(), Some(kv("a", b"4", 1, 4)));
    assert_eq!(s.get("b", Some(8)).unwrap(), None);
    assert!(matches!(s.get("a", Some(7)), Err(StoreError::Compacted { requested: 7, compacted: 8 })));
    assert!(matches!(s.list("", None, None, Some(1)), Err(StoreError::Compacted { .. })));
    assert!(matches!(s.watch("", 7), Err(StoreError::Compacted { requested: 7, compacted: 8 })));
    // The history after the compacted revision is whole, with its old values.
    let mut w = s.watch("", 8).unwrap();
    assert_eq!(
        events_through(&mut w, 10),
        [
            Event { kind: EventKind::Put, kv: kv("a", b"5", 1, 9), prev: Some(kv("a", b"4", 1, 4)) },
            Event { kind: EventKind::Delete, kv: kv("d", b"1", 8, 10), prev: Some(kv("d", b"1", 8, 8)) },
        ]
    );
    // Going back is a no-op, going past the present is refused.
    s.compact(3).unwrap();
    assert_eq!(s.compacted_revision().unwrap(), 8);
    assert!(matches!(s.compact(11), Err(StoreError::FutureRevision { requested: 11, current: 10 })));
    // Compacting everything keeps every live key and the guards on them.
    s.compact(10).unwrap();
    assert_eq!(keys(&s.list("", None, None, None).unwrap().items), ["a", "c"]);
    assert_eq!(s.update("a", b"6", 9).unwrap(), kv("a", b"6", 1, 11));
    assert_eq!(s.count("").unwrap(), (2, 11));
    assert_eq!(revisions(&events_through(&mut w, 11)), [11]);
}

fn compaction_of_a_trailing_delete_keeps_revisions_increasing<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    let s = make(CAPACITY);
    s.create("a", b"1").unwrap();
    s.create("b", b"1").unwrap();
    s.delete("b", None).unwrap();
    s.compact(3).unwrap();
    assert_eq!(s.current_revision().unwrap(), 3);
    assert_eq!(s.get("b", None).unwrap(), None);
    assert_eq!(s.create("b", b"2").unwrap(), kv("b", b"2", 4, 4));
    s.delete("b", None).unwrap();
    s.compact(5).unwrap();
    assert_eq!(s.list("", None, None, None).unwrap().items, [kv("a", b"1", 1, 1)]);
    assert_eq!(s.create("c", b"1").unwrap().mod_revision, 6);
}

fn slow_watcher_is_closed_and_writers_do_not_wait<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    const CAP: usize = 8;
    let s = make(CAP);
    let mut slow = s.watch("x/", 0).unwrap();
    let mut elsewhere = s.watch("y/", 0).unwrap();
    let started = Instant::now();
    for i in 0..CAP * 4 {
        s.create(&format!("x/{i}"), b"v").unwrap();
    }
    // Writers did not wait for the reader (a blocked writer would hang here).
    assert!(started.elapsed() < WAIT);
    match slow.try_next() {
        Ok(Some(WatchMessage::Closed(StoreError::TooSlow))) => {}
        other => panic!("expected Closed(TooSlow), got {other:?}"),
    }
    assert!(matches!(slow.try_next(), Err(WatchEnded)));
    // Other watchers are unaffected.
    let r = s.create("y/1", b"v").unwrap().mod_revision;
    assert_eq!(revisions(&events_through(&mut elsewhere, r)), [r]);
    // Re-listing and watching from the list's revision works.
    let list = s.list("x/", None, None, None).unwrap();
    assert_eq!(list.items.len(), CAP * 4);
    let mut again = s.watch("x/", list.revision).unwrap();
    let r = s.create("x/last", b"v").unwrap().mod_revision;
    assert_eq!(revisions(&events_through(&mut again, r)), [r]);
}

fn progress_bookmarks_follow_the_events_before_them<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    let s = make(CAPACITY);
    s.create("a", b"1").unwrap();
    let mut w = s.watch("a", 0).unwrap();
    s.create("b", b"1").unwrap();
    s.update("a", b"2", 1).unwrap();
    assert_eq!(s.request_progress().unwrap(), 3);
    let mut messages = Vec::new();
    while let Ok(Some(message)) = w.blocking_next(Duration::from_millis(200)) {
        messages.push(match message {
            WatchMessage::Events(events) => format!("events {:?}", revisions(&events)),
            WatchMessage::Progress(r) => format!("progress {r}"),
            WatchMessage::Closed(e) => format!("closed {e}"),
        });
    }
    assert_eq!(messages, ["events [1]", "events [3]", "progress 3"]);
    // With nothing new, a bookmark repeats the revision.
    s.request_progress().unwrap();
    assert!(matches!(w.blocking_next(WAIT), Ok(Some(WatchMessage::Progress(3)))));
}

fn empty_keys_are_refused<S: Store>(make: impl Fn(usize) -> Fixture<S>) {
    let s = make(CAPACITY);
    assert!(matches!(s.create("", b"v"), Err(StoreError::InvalidKey { .. })));
    assert!(matches!(s.update("", b"v", 1), Err(StoreError::InvalidKey { .. })));
    assert!(matches!(s.delete("", None), Err(StoreError::InvalidKey { .. })));
    assert_eq!(s.current_revision().unwrap(), 0);
}
