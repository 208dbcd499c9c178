//! The store in memory: a log vector and a per-key index. Same behaviour as
//! the SQLite store, nothing survives the process; for tests of the layers
//! above and as the model the SQLite store is checked against.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::sync::Mutex;

use crate::error::StoreError;
use crate::keys::{KeyRange, read_revision, validate_key};
use crate::lock;
use crate::log::{LogRow, Op, Write, plan_write};
use crate::store::Store;
use crate::types::{Event, KeyValue, ListResult, Revision};
use crate::watch::{DEFAULT_WATCH_CAPACITY, Hub, Watch};

pub struct MemoryStore {
    /// Writers publish to the hub while holding this lock, so watchers see
    /// events in revision order and a watch registered under it misses none.
    state: Mutex<State>,
    hub: Hub,
}

#[derive(Default)]
struct State {
    revision: Revision,
    compacted: Revision,
    /// In revision order.
    log: Vec<LogRow>,
    /// The revisions of each key's rows, ascending.
    index: BTreeMap<String, Vec<Revision>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::with_watch_capacity(DEFAULT_WATCH_CAPACITY)
    }

    /// A store whose watchers may queue `capacity` messages before they are
    /// closed as too slow.
    pub fn with_watch_capacity(capacity: usize) -> Self {
        MemoryStore { state: Mutex::new(State::default()), hub: Hub::new(capacity) }
    }

    fn write(&self, key: &str, write: Write<'_>) -> Result<KeyValue, StoreError> {
        validate_key(key)?;
        let mut state = lock(&self.state);
        let live = state.live(key, state.revision);
        let (row, event) = plan_write(key, live, write, state.revision + 1)?;
        state.append(row);
        self.hub.publish(&event);
        Ok(event.kv)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    fn row(&self, revision: Revision) -> Option<&LogRow> {
        let i = self.log.binary_search_by_key(&revision, |r| r.revision).ok()?;
        self.log.get(i)
    }

    /// The key's last row at or before `at`, tombstones included.
    fn latest(&self, key: &str, at: Revision) -> Option<&LogRow> {
        let revisions = self.index.get(key)?;
        let n = revisions.partition_point(|&r| r <= at);
        self.row(*revisions.get(n.checked_sub(1)?)?)
    }

    fn live(&self, key: &str, at: Revision) -> Option<KeyValue> {
        self.latest(key, at).and_then(LogRow::live)
    }

    fn append(&mut self, row: LogRow) {
        self.revision = row.revision;
        self.index.entry(row.key.clone()).or_default().push(row.revision);
        self.log.push(row);
    }

    fn events(&self, prefix: &str, after: Revision) -> Result<Vec<Event>, StoreError> {
        let start = self.log.partition_point(|r| r.revision <= after);
        self.log[start..]
            .iter()
            .filter(|r| r.key.starts_with(prefix))
            .map(|r| {
                let prev = (r.op != Op::Create).then(|| self.row(r.prev_revision)).flatten();
                r.clone().into_event(prev.map(|p| p.value.clone()))
            })
            .collect()
    }
}

impl Store for MemoryStore {
    fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(lock(&self.state).revision)
    }

    fn get(&self, key: &str, at: Option<Revision>) -> Result<Option<KeyValue>, StoreError> {
        let state = lock(&self.state);
        let at = read_revision(at, state.revision, state.compacted)?;
        Ok(state.live(key, at))
    }

    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        at: Option<Revision>,
    ) -> Result<ListResult, StoreError> {
        let state = lock(&self.state);
        let at = read_revision(at, state.revision, state.compacted)?;
        let range = KeyRange::new(prefix, start_after);
        if range.is_empty() {
            return Ok(ListResult { items: Vec::new(), revision: at, more: false });
        }
        let lower = match range.lower_inclusive {
            true => Bound::Included(range.lower.as_str()),
            false => Bound::Excluded(range.lower.as_str()),
        };
        let upper = range.upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let mut items = Vec::new();
        let mut more = false;
        for key in state.index.range::<str, _>((lower, upper)).map(|(key, _)| key) {
            let Some(kv) = state.live(key, at) else { continue };
            if limit.is_some_and(|limit| items.len() >= limit) {
                more = true;
                break;
            }
            items.push(kv);
        }
        Ok(ListResult { items, revision: at, more })
    }

    fn count(&self, prefix: &str) -> Result<(i64, Revision), StoreError> {
        let state = lock(&self.state);
        let range = KeyRange::new(prefix, None);
        let count = state
            .index
            .range::<str, _>((Bound::Included(range.lower.as_str()), Bound::Unbounded))
            .take_while(|(key, _)| range.contains(key))
            .filter(|(key, _)| state.live(key, state.revision).is_some())
            .count();
        let count =
            i64::try_from(count).map_err(|_| StoreError::Corrupt { reason: "too many keys".into() })?;
        Ok((count, state.revision))
    }

    fn count_after(&self, prefix: &str, start_after: Option<&str>, at: Revision) -> Result<i64, StoreError> {
        let state = lock(&self.state);
        let at = read_revision(Some(at), state.revision, state.compacted)?;
        let range = KeyRange::new(prefix, start_after);
        if range.is_empty() {
            return Ok(0);
        }
        let lower = match range.lower_inclusive {
            true => Bound::Included(range.lower.as_str()),
            false => Bound::Excluded(range.lower.as_str()),
        };
        let upper = range.upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let count = state
            .index
            .range::<str, _>((lower, upper))
            .filter(|(key, _)| state.live(key, at).is_some())
            .count();
        i64::try_from(count).map_err(|_| StoreError::Corrupt { reason: "too many keys".into() })
    }

    fn create(&self, key: &str, value: &[u8]) -> Result<KeyValue, StoreError> {
        self.write(key, Write::Create(value))
    }

    fn update(&self, key: &str, value: &[u8], expected: Revision) -> Result<KeyValue, StoreError> {
        self.write(key, Write::Update { value, expected })
    }

    fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError> {
        self.write(key, Write::Delete { expected })
    }

    fn watch(&self, prefix: &str, after: Revision) -> Result<Watch, StoreError> {
        // Holding the state lock, no write can commit between the replay and
        // the subscription.
        let state = lock(&self.state);
        if after < state.compacted {
            return Err(StoreError::Compacted { requested: after, compacted: state.compacted });
        }
        let subscription = self.hub.subscribe(prefix);
        let replay = state.events(prefix, after)?;
        Ok(Watch::new(subscription, replay, after, state.revision))
    }

    fn request_progress(&self) -> Result<Revision, StoreError> {
        let state = lock(&self.state);
        self.hub.progress(state.revision);
        Ok(state.revision)
    }

    fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        if revision > state.revision {
            return Err(StoreError::FutureRevision { requested: revision, current: state.revision });
        }
        if revision <= state.compacted {
            return Ok(());
        }
        // Per key: every row superseded at `revision`, and the last one too
        // if it is a tombstone.
        let mut dead = HashSet::new();
        for revisions in state.index.values() {
            let n = revisions.partition_point(|&r| r <= revision);
            let Some(last) = n.checked_sub(1) else { continue };
            dead.extend(&revisions[..last]);
            if state.row(revisions[last]).is_some_and(|r| r.op == Op::Delete) {
                dead.insert(revisions[last]);
            }
        }
        state.log.retain(|r| !dead.contains(&r.revision));
        state.index.retain(|_, revisions| {
            revisions.retain(|r| !dead.contains(r));
            !revisions.is_empty()
        });
        state.compacted = revision;
        Ok(())
    }

    fn compacted_revision(&self) -> Result<Revision, StoreError> {
        Ok(lock(&self.state).compacted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_frees_superseded_rows_and_tombstones() {
        let store = MemoryStore::new();
        let a = store.create("a", b"1").unwrap();
        store.update("a", b"2", a.mod_revision).unwrap();
        store.create("b", b"1").unwrap();
        store.delete("b", None).unwrap();
        store.create("c", b"1").unwrap();
        store.compact(store.current_revision().unwrap()).unwrap();
        let state = lock(&store.state);
        let keys: Vec<_> = state.log.iter().map(|r| (r.key.as_str(), r.value.as_slice())).collect();
        assert_eq!(keys, [("a", &b"2"[..]), ("c", &b"1"[..])]);
        assert_eq!(state.index.keys().collect::<Vec<_>>(), ["a", "c"]);
    }
}
