//! The store on SQLite: one log table in the manner of kine, WAL mode,
//! every commit fsynced.
//!
//! One process owns the database: watchers are fed by the process that
//! writes, so writes from another process would not reach them.

mod compact;
mod queries;
mod schema;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::StoreError;
use crate::keys::{KeyRange, read_revision, validate_key};
use crate::lock;
use crate::log::{Write, plan_write};
use crate::store::Store;
use crate::types::{KeyValue, ListResult, Revision};
use crate::watch::{DEFAULT_WATCH_CAPACITY, Hub, Watch};

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Messages a watcher may have queued before it is closed as too slow.
    pub watch_capacity: usize,
    /// Log rows a compaction visits per transaction.
    pub compaction_batch: usize,
    /// How long to wait for a lock held by another connection.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            watch_capacity: DEFAULT_WATCH_CAPACITY,
            compaction_batch: 1000,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl SqliteOptions {
    fn compaction_batch_i64(&self) -> i64 {
        i64::try_from(self.compaction_batch.max(1)).unwrap_or(i64::MAX)
    }
}

pub struct SqliteStore {
    /// Writes, compaction and progress requests. Writers publish to the hub
    /// while holding it, so events reach watchers in revision order.
    writer: Mutex<Connection>,
    /// Reads, each in its own snapshot transaction; WAL lets them run while
    /// a write commits.
    reader: Mutex<Connection>,
    hub: Hub,
    options: SqliteOptions,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Wraps a SQLite error with what was being done.
fn db(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Backend { op, source: Box::new(source) }
}

impl SqliteStore {
    /// Opens the database at `path`, creating it and bringing its schema up
    /// to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let open_error =
            |source: rusqlite::Error| StoreError::Open { path: path.clone(), source: Box::new(source) };
        let mut writer = Connection::open(&path).map_err(open_error)?;
        let journal_mode = schema::configure_writer(&writer, options.busy_timeout).map_err(open_error)?;
        if !journal_mode.eq_ignore_ascii_case("wal") {
            let source = format!("journal mode is {journal_mode}, and the store needs WAL").into();
            return Err(StoreError::Open { path, source });
        }
        schema::migrate(&mut writer)?;
        let reader = Connection::open(&path).map_err(open_error)?;
        schema::configure_reader(&reader, options.busy_timeout).map_err(open_error)?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            hub: Hub::new(options.watch_capacity),
            options,
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Compacts away everything older than the current revision minus
    /// `keep`, and returns the compacted revision.
    pub fn compact_older_than(&self, keep: i64) -> Result<Revision, StoreError> {
        let target = self.current_revision()?.saturating_sub(keep.max(0));
        if target > 0 {
            self.compact_to(target)?;
        }
        self.compacted_revision()
    }

    /// Runs SQLite's `integrity_check`: `Corrupt` with its findings unless
    /// the database is sound.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let conn = lock(&self.reader);
        let findings: Vec<String> = conn
            .prepare("PRAGMA integrity_check")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(db("check integrity"))?;
        match findings.as_slice() {
            [ok] if ok == "ok" => Ok(()),
            _ => Err(StoreError::Corrupt { reason: findings.join("; ") }),
        }
    }

    /// Copies the WAL into the database file and truncates it, for example
    /// before a backup or a clean shutdown.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let conn = lock(&self.writer);
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(db("checkpoint"))
    }

    fn write(&self, key: &str, write: Write<'_>) -> Result<KeyValue, StoreError> {
        validate_key(key)?;
        let mut conn = lock(&self.writer);
        // IMMEDIATE takes the write lock up front, so the guard is checked
        // against the state the append commits on.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db("begin write"))?;
        let current = queries::current_revision(&tx)?;
        let live = queries::latest(&tx, key, current)?.and_then(|row| row.live());
        let (row, event) = plan_write(key, live, write, current + 1)?;
        queries::append(&tx, &row)?;
        tx.commit().map_err(db("commit write"))?;
        self.hub.publish(&event);
        Ok(event.kv)
    }

    /// Runs `read` in one snapshot, with the current and compacted revisions
    /// of that snapshot.
    fn read<T>(
        &self,
        read: impl FnOnce(&Transaction<'_>, Revision, Revision) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = lock(&self.reader);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred).map_err(db("begin read"))?;
        let current = queries::current_revision(&tx)?;
        let compacted = queries::meta(&tx, schema::COMPACTED)?;
        let out = read(&tx, current, compacted)?;
        tx.finish().map_err(db("end read"))?;
        Ok(out)
    }
}

impl Store for SqliteStore {
    fn current_revision(&self) -> Result<Revision, StoreError> {
        self.read(|_, current, _| Ok(current))
    }

    fn get(&self, key: &str, at: Option<Revision>) -> Result<Option<KeyValue>, StoreError> {
        self.read(|tx, current, compacted| {
            let at = read_revision(at, current, compacted)?;
            Ok(queries::latest(tx, key, at)?.and_then(|row| row.live()))
        })
    }

    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        at: Option<Revision>,
    ) -> Result<ListResult, StoreError> {
        let range = KeyRange::new(prefix, start_after);
        // One more than asked, to know whether there are more.
        let fetch = limit.map_or(-1, |limit| i64::try_from(limit).map_or(i64::MAX, |l| l.saturating_add(1)));
        self.read(|tx, current, compacted| {
            let at = read_revision(at, current, compacted)?;
            let mut items = queries::list(tx, &range, at, fetch)?;
            let more = limit.is_some_and(|limit| items.len() > limit);
            if let Some(limit) = limit {
                items.truncate(limit);
            }
            Ok(ListResult { items, revision: at, more })
        })
    }

    fn count(&self, prefix: &str) -> Result<(i64, Revision), StoreError> {
        let range = KeyRange::new(prefix, None);
        self.read(|tx, current, _| Ok((queries::count(tx, &range)?, current)))
    }

    fn count_after(&self, prefix: &str, start_after: Option<&str>, at: Revision) -> Result<i64, StoreError> {
        let range = KeyRange::new(prefix, start_after);
        if range.is_empty() {
            return Ok(0);
        }
        self.read(|tx, current, compacted| {
            let at = read_revision(Some(at), current, compacted)?;
            queries::count_at(tx, &range, at)
        })
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
        // Subscribe first, then read the replay: a write committing in
        // between is in both, and the watch drops the second copy.
        let subscription = self.hub.subscribe(prefix);
        let range = KeyRange::new(prefix, None);
        self.read(|tx, current, compacted| {
            if after < compacted {
                return Err(StoreError::Compacted { requested: after, compacted });
            }
            let replay = queries::events(tx, &range, after, current)?;
            Ok(Watch::new(subscription, replay, after, current))
        })
    }

    fn request_progress(&self) -> Result<Revision, StoreError> {
        let conn = lock(&self.writer);
        let current = queries::current_revision(&conn)?;
        self.hub.progress(current);
        Ok(current)
    }

    fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.compact_to(revision)
    }

    fn compacted_revision(&self) -> Result<Revision, StoreError> {
        self.read(|_, _, compacted| Ok(compacted))
    }
}
