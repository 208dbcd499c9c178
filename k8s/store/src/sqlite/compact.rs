//! Compaction: deleting history nobody may read any more, in small
//! transactions so writers are never held up for long.
//!
//! How the database stays bounded: after a compaction to `C` the log holds
//! one row per live key plus the writes after `C`. Deleted rows free their
//! pages, and SQLite reuses free pages for new rows before it grows the
//! file, so with regular compaction the file stops growing at the size of
//! the live data plus one compaction interval of history. When a compaction
//! frees a large share of the file (a burst of churn is over), the database,
//! created with `auto_vacuum=INCREMENTAL`, returns those pages to the file
//! system with `PRAGMA incremental_vacuum`; it is not done for small amounts
//! because moving pages costs writes, and SD cards wear. The WAL is bounded
//! by automatic checkpoints and `journal_size_limit`.

use rusqlite::{Connection, TransactionBehavior};

use super::queries::{current_revision, meta, set_meta};
use super::schema::{COMPACTED, SWEPT};
use super::{SqliteStore, db};
use crate::error::StoreError;
use crate::lock;
use crate::types::Revision;

impl SqliteStore {
    /// Records the new compacted revision (from then on reads before it get
    /// `Compacted`), then deletes the rows it made unreachable.
    pub(super) fn compact_to(&self, revision: Revision) -> Result<(), StoreError> {
        {
            let mut conn = lock(&self.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin compaction"))?;
            let current = current_revision(&tx)?;
            if revision > current {
                return Err(StoreError::FutureRevision { requested: revision, current });
            }
            if revision > meta(&tx, COMPACTED)? {
                set_meta(&tx, COMPACTED, revision)?;
                tx.commit().map_err(db("commit compaction"))?;
            }
        }
        // Also finishes a sweep that an earlier crash interrupted.
        while self.sweep_batch()? {}
        release_free_pages(&lock(&self.writer))
    }

    /// Deletes the rows that one batch of the log makes unreachable, and
    /// says whether there is more to do.
    ///
    /// A row at or before the compacted revision supersedes the row at its
    /// `prev_revision`, which goes; a tombstone there goes too (the key is
    /// absent at the compacted revision either way). Rows are visited in
    /// revision order, so a tombstone never goes before the rows it hides,
    /// and the position is saved with each batch, so a crash loses nothing.
    fn sweep_batch(&self) -> Result<bool, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db("begin sweep"))?;
        let target = meta(&tx, COMPACTED)?;
        let swept = meta(&tx, SWEPT)?;
        if swept >= target {
            return Ok(false);
        }
        let newest = current_revision(&tx)?;
        let rows: Vec<(Revision, bool, Revision)> = tx
            .prepare_cached(
                "SELECT id, deleted, prev_revision FROM log WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
            )
            .and_then(|mut s| {
                s.query_map((swept, target, self.options.compaction_batch_i64()), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect()
            })
            .map_err(db("scan log for compaction"))?;
        let full = rows.len() >= self.options.compaction_batch.max(1);
        let mut position = swept;
        let mut kept_newest = false;
        {
            let mut delete =
                tx.prepare_cached("DELETE FROM log WHERE id = ?1").map_err(db("prepare compaction"))?;
            for (id, deleted, prev) in rows {
                if prev != 0 {
                    delete.execute([prev]).map_err(db("compact log"))?;
                }
                if deleted {
                    if id == newest {
                        // The newest row carries the current revision; it
                        // goes in a later compaction, once it is not newest.
                        kept_newest = true;
                        break;
                    }
                    delete.execute([id]).map_err(db("compact log"))?;
                }
                position = id;
            }
        }
        let (swept, more) = match (kept_newest, full) {
            (true, _) => (position, false),
            (false, true) => (position, true),
            (false, false) => (target, false),
        };
        set_meta(&tx, SWEPT, swept)?;
        tx.commit().map_err(db("commit sweep"))?;
        Ok(more)
    }
}

/// Returns free pages to the file system when they are a quarter or more of
/// the file.
fn release_free_pages(conn: &Connection) -> Result<(), StoreError> {
    let free: i64 =
        conn.pragma_query_value(None, "freelist_count", |r| r.get(0)).map_err(db("read free pages"))?;
    let pages: i64 =
        conn.pragma_query_value(None, "page_count", |r| r.get(0)).map_err(db("read page count"))?;
    if free >= 64 && free * 4 >= pages {
        // Frees one page per step, so it is stepped to the end.
        let mut stmt = conn.prepare("PRAGMA incremental_vacuum").map_err(db("vacuum"))?;
        let mut steps = stmt.query([]).map_err(db("vacuum"))?;
        while steps.next().map_err(db("vacuum"))?.is_some() {}
    }
    Ok(())
}
