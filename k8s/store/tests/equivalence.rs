//! The SQLite store behaves exactly like the in-memory one: random
//! operation sequences give the same results, errors and revisions, and the
//! same watch streams.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use lichen_store::{MemoryStore, Revision, SqliteOptions, SqliteStore, Store, Watch, WatchMessage};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const KEYS: &[&str] = &["a", "a/", "a/b", "a/c", "ab", "b", "b/a", "b/a/x"];
const PREFIXES: &[&str] = &["", "a", "a/", "b/", "c"];

/// A revision relative to the store's current one when the operation runs.
#[derive(Debug, Clone, Copy)]
enum At {
    Current,
    Back(i64),
    Ahead(i64),
}

#[derive(Debug, Clone)]
enum Op {
    Create(usize, u8),
    /// Guarded by the key's actual revision (`None`) or a made-up one.
    Update(usize, u8, Option<Revision>),
    Delete(usize, Option<Option<Revision>>),
    Get(usize, At),
    List(usize, Option<usize>, Option<usize>, At),
    Count(usize),
    Compact(At),
    Watch(usize, At),
}

fn at() -> impl Strategy<Value = At> {
    prop_oneof![Just(At::Current), (0..8i64).prop_map(At::Back), (1..3i64).prop_map(At::Ahead)]
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    let prefix = 0..PREFIXES.len();
    let guard = prop_oneof![Just(None), (0..12i64).prop_map(Some)];
    prop_oneof![
        4 => (key.clone(), any::<u8>()).prop_map(|(k, v)| Op::Create(k, v)),
        4 => (key.clone(), any::<u8>(), guard.clone()).prop_map(|(k, v, g)| Op::Update(k, v, g)),
        2 => (key.clone(), proptest::option::of(guard)).prop_map(|(k, g)| Op::Delete(k, g)),
        2 => (key.clone(), at()).prop_map(|(k, a)| Op::Get(k, a)),
        2 => (prefix.clone(), proptest::option::of(0..KEYS.len()), proptest::option::of(0..4usize), at())
            .prop_map(|(p, s, l, a)| Op::List(p, s, l, a)),
        1 => prefix.clone().prop_map(Op::Count),
        1 => at().prop_map(Op::Compact),
        1 => (prefix, at()).prop_map(|(p, a)| Op::Watch(p, a)),
    ]
}

fn resolve(store: &dyn Store, at: At) -> Revision {
    let current = store.current_revision().unwrap();
    match at {
        At::Current => current,
        At::Back(n) => current - n,
        At::Ahead(n) => current + n,
    }
}

/// Everything a watch has ready now, as text.
fn drain(watch: &mut Watch) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(Some(message)) = watch.try_next() {
        match message {
            WatchMessage::Events(events) => out.extend(events.iter().map(|e| format!("{e:?}"))),
            other => out.push(format!("{other:?}")),
        }
    }
    out
}

/// Runs one operation and describes its outcome.
fn run(store: &dyn Store, op: &Op) -> String {
    match *op {
        Op::Create(k, v) => format!("{:?}", store.create(KEYS[k], &[v])),
        Op::Update(k, v, guard) => {
            let actual = store.get(KEYS[k], None).unwrap().map_or(1, |kv| kv.mod_revision);
            format!("{:?}", store.update(KEYS[k], &[v], guard.unwrap_or(actual)))
        }
        Op::Delete(k, guard) => {
            let actual = store.get(KEYS[k], None).unwrap().map_or(1, |kv| kv.mod_revision);
            format!("{:?}", store.delete(KEYS[k], guard.map(|g| g.unwrap_or(actual))))
        }
        Op::Get(k, at) => format!("{:?}", store.get(KEYS[k], Some(resolve(store, at)))),
        Op::List(p, start, limit, at) => {
            let at = match at {
                At::Current => None,
                at => Some(resolve(store, at)),
            };
            format!("{:?}", store.list(PREFIXES[p], start.map(|s| KEYS[s]), limit, at))
        }
        Op::Count(p) => format!("{:?}", store.count(PREFIXES[p])),
        Op::Compact(at) => {
            let result = store.compact(resolve(store, at));
            format!("{result:?} {:?}", store.compacted_revision())
        }
        Op::Watch(p, at) => match store.watch(PREFIXES[p], resolve(store, at)) {
            Ok(mut watch) => format!("{:?}", drain(&mut watch)),
            Err(e) => format!("{e:?}"),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        // Failing cases are kept in tests/equivalence.proptest-regressions.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn sqlite_matches_memory(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions { compaction_batch: 2, ..SqliteOptions::default() };
        let sqlite = SqliteStore::open_with(dir.path().join("state.db"), options).unwrap();
        let memory = MemoryStore::new();
        let mut sqlite_watch = sqlite.watch("", 0).unwrap();
        let mut memory_watch = memory.watch("", 0).unwrap();
        for (i, op) in ops.iter().enumerate() {
            let expected = run(&memory, op);
            let actual = run(&sqlite, op);
            prop_assert_eq!(&actual, &expected, "operation {} ({:?})", i, op);
        }
        prop_assert_eq!(drain(&mut sqlite_watch), drain(&mut memory_watch));
        prop_assert_eq!(sqlite.current_revision().unwrap(), memory.current_revision().unwrap());
        // Reopened, the file still agrees.
        let compacted = memory.compacted_revision().unwrap();
        drop(sqlite_watch);
        drop(sqlite);
        let sqlite = SqliteStore::open(dir.path().join("state.db")).unwrap();
        prop_assert_eq!(
            format!("{:?}", sqlite.list("", None, None, None)),
            format!("{:?}", memory.list("", None, None, None))
        );
        prop_assert_eq!(
            drain(&mut sqlite.watch("", compacted).unwrap()),
            drain(&mut memory.watch("", compacted).unwrap())
        );
        sqlite.integrity_check().unwrap();
    }
}
