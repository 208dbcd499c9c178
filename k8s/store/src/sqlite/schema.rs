//! Connection settings and the schema, with its migrations.

use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::db;
use crate::error::StoreError;

/// The schema this build writes, kept in `PRAGMA user_version`.
pub(super) const SCHEMA_VERSION: i64 = 1;

/// `MIGRATIONS[n]` takes the schema from version `n` to `n + 1`. Append only;
/// a released migration never changes. After an A/B rollback the older
/// build refuses a newer schema ([`StoreError::SchemaTooNew`]) instead of
/// guessing, so a migration that must survive rollbacks stays compatible.
const MIGRATIONS: [Migration; 1] = [create_v1];

const _: () = assert!(MIGRATIONS.len() as i64 == SCHEMA_VERSION);

type Migration = fn(&Transaction<'_>) -> rusqlite::Result<()>;

/// Meta keys.
pub(super) const COMPACTED: &str = "compacted_revision";
/// How far the compaction sweep has got; behind `COMPACTED` while a
/// compaction runs or after it was interrupted.
pub(super) const SWEPT: &str = "swept_revision";

/// Version 1: the log, in the manner of kine.
///
/// One row per write; `id` is the revision. There is deliberately no
/// AUTOINCREMENT: it rewrites the `sqlite_sequence` page on every insert,
/// about 40% more WAL bytes per write. The current revision is `MAX(id)`
/// instead, and compaction never deletes the newest row, so it can never go
/// backwards.
fn create_v1(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE log (
            id INTEGER PRIMARY KEY,           -- the revision of the write
            name TEXT NOT NULL,               -- the key
            created INTEGER NOT NULL,         -- 1: creates an incarnation of the key
            deleted INTEGER NOT NULL,         -- 1: a tombstone, ends the incarnation
            create_revision INTEGER NOT NULL,
            prev_revision INTEGER NOT NULL,   -- the row this one replaces; 0 for a create
            value BLOB NOT NULL               -- empty for a tombstone: the old value is
                                              -- the row at prev_revision (written once)
        );
        -- Point reads and lists seek by name, then id. With `deleted` in
        -- the index, a list or count decides which rows are live from the
        -- index alone and reads only those rows from the table.
        CREATE INDEX log_name_id ON log (name, id, deleted);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO meta (key, value) VALUES ('compacted_revision', 0), ('swept_revision', 0);",
    )
}

/// Settings of the connection that writes. Must run before the schema
/// exists. Returns the journal mode SQLite actually chose.
pub(super) fn configure_writer(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<String> {
    // Only takes effect on a database without tables, so it is set before the
    // first migration. Lets compaction hand freed pages back to the file
    // system with `incremental_vacuum`; see `compact.rs`.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    let journal_mode = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    // In WAL mode, NORMAL syncs the WAL only at checkpoints: a commit survives
    // the process being killed (the OS still has the pages) but not a power
    // cut or kernel crash, which lose the last commits. An acknowledged
    // write must survive both, so every commit is fsynced.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // After a checkpoint the WAL file is truncated back to this size, so one
    // burst of writes does not keep a large WAL around forever.
    conn.pragma_update(None, "journal_size_limit", 4 * 1024 * 1024)?;
    common(conn, busy_timeout)?;
    Ok(journal_mode)
}

/// Settings of the connection that only reads.
pub(super) fn configure_reader(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    conn.pragma_update(None, "query_only", "ON")?;
    common(conn, busy_timeout)
}

fn common(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    // Room for every statement of `queries.rs` in each of its variants.
    conn.set_prepared_statement_cache_capacity(32);
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.busy_timeout(busy_timeout)
}

/// Brings the schema to [`SCHEMA_VERSION`], one migration per transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        let tx =
            conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db("begin migration"))?;
        let found: i64 =
            tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(db("read schema version"))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew { found, supported: SCHEMA_VERSION });
        }
        let step = usize::try_from(found)
            .map_err(|_| StoreError::Corrupt { reason: format!("schema version {found} is negative") })?;
        let Some(migration) = MIGRATIONS.get(step) else { return Ok(()) };
        migration(&tx).map_err(db("migrate schema"))?;
        tx.pragma_update(None, "user_version", found + 1).map_err(db("write schema version"))?;
        tx.commit().map_err(db("commit migration"))?;
    }
}
