//! The SQL of reads and appends. Every function runs inside a transaction
//! the caller holds, so several calls see one snapshot.

use rusqlite::{Connection, OptionalExtension, Row, ToSql};

use super::db;
use crate::error::StoreError;
use crate::keys::KeyRange;
use crate::log::{LogRow, Op};
use crate::types::{Event, KeyValue, Revision};

const COLUMNS: &str = "l.id, l.name, l.created, l.deleted, l.create_revision, l.prev_revision, l.value";

fn log_row(row: &Row<'_>) -> rusqlite::Result<LogRow> {
    let created: bool = row.get(2)?;
    let deleted: bool = row.get(3)?;
    Ok(LogRow {
        revision: row.get(0)?,
        key: row.get(1)?,
        op: match (created, deleted) {
            (_, true) => Op::Delete,
            (true, false) => Op::Create,
            (false, false) => Op::Update,
        },
        create_revision: row.get(4)?,
        prev_revision: row.get(5)?,
        value: row.get(6)?,
    })
}

/// The revision of the newest row; compaction always keeps that row.
pub(super) fn current_revision(conn: &Connection) -> Result<Revision, StoreError> {
    conn.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM log")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(db("read current revision"))
}

pub(super) fn meta(conn: &Connection, key: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)))
        .map_err(db("read meta"))
}

pub(super) fn set_meta(conn: &Connection, key: &str, value: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE meta SET value = ?2 WHERE key = ?1")
        .and_then(|mut s| s.execute((key, value)))
        .map(drop)
        .map_err(db("write meta"))
}

/// The key's last row at or before `at`, tombstones included.
pub(super) fn latest(conn: &Connection, key: &str, at: Revision) -> Result<Option<LogRow>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM log AS l WHERE l.name = ?1 AND l.id <= ?2 ORDER BY l.id DESC LIMIT 1");
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.query_row((key, at), log_row).optional())
        .map_err(db("read key"))
}

pub(super) fn append(conn: &Connection, row: &LogRow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO log (id, name, created, deleted, create_revision, prev_revision, value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute((
            row.revision,
            &row.key,
            row.op == Op::Create,
            row.op == Op::Delete,
            row.create_revision,
            row.prev_revision,
            &row.value,
        ))
    })
    .map(drop)
    .map_err(db("append to log"))
}

/// The `name` condition of `range`, with its parameters.
fn name_condition<'a>(range: &'a KeyRange, column: &str) -> (String, Vec<(&'static str, &'a dyn ToSql)>) {
    let lower = if range.lower_inclusive { ">=" } else { ">" };
    let mut sql = format!("{column} {lower} :lower");
    let mut params: Vec<(&'static str, &dyn ToSql)> = vec![(":lower", &range.lower)];
    if let Some(upper) = &range.upper {
        sql.push_str(&format!(" AND {column} < :upper"));
        params.push((":upper", upper));
    }
    (sql, params)
}

pub(super) fn list_sql(range: &KeyRange) -> (String, Vec<(&'static str, &dyn ToSql)>) {
    let (names, params) = name_condition(range, "l.name");
    let sql = format!(
        "SELECT {COLUMNS} FROM log AS l
         WHERE {names}
           AND l.id = (SELECT MAX(m.id) FROM log AS m WHERE m.name = l.name AND m.id <= :at)
           AND l.deleted = 0
         ORDER BY l.name
         LIMIT :limit"
    );
    (sql, params)
}

/// Live keys of `range` at `at`, in key order, at most `limit` (negative:
/// all).
///
/// Walks the `(name, id)` index in name order and keeps a row only if it is
/// its name's newest at `at` (one index seek per row), so a page costs the
/// index entries up to its last key, not the size of the table.
pub(super) fn list(
    conn: &Connection,
    range: &KeyRange,
    at: Revision,
    limit: i64,
) -> Result<Vec<KeyValue>, StoreError> {
    let (sql, mut params) = list_sql(range);
    params.push((":at", &at));
    params.push((":limit", &limit));
    let mut stmt = conn.prepare_cached(&sql).map_err(db("prepare list"))?;
    let rows = stmt.query_map(params.as_slice(), log_row).map_err(db("list keys"))?;
    let mut items = Vec::new();
    for row in rows {
        items.extend(row.map_err(db("list keys"))?.live());
    }
    Ok(items)
}

/// Live keys of `range` at revision `at`.
pub(super) fn count_at(conn: &Connection, range: &KeyRange, at: Revision) -> Result<i64, StoreError> {
    let (names, mut params) = name_condition(range, "l.name");
    params.push((":at", &at));
    let sql = format!(
        "SELECT COUNT(*) FROM log AS l
         WHERE {names}
           AND l.id = (SELECT MAX(m.id) FROM log AS m WHERE m.name = l.name AND m.id <= :at)
           AND l.deleted = 0"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.query_row(params.as_slice(), |r| r.get(0)))
        .map_err(db("count keys"))
}

pub(super) fn count(conn: &Connection, range: &KeyRange) -> Result<i64, StoreError> {
    let (names, params) = name_condition(range, "l.name");
    let sql = format!(
        "SELECT COUNT(*) FROM log AS l
         WHERE {names}
           AND l.id = (SELECT MAX(m.id) FROM log AS m WHERE m.name = l.name)
           AND l.deleted = 0"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.query_row(params.as_slice(), |r| r.get(0)))
        .map_err(db("count keys"))
}

pub(super) fn events_sql(range: &KeyRange) -> (String, Vec<(&'static str, &dyn ToSql)>) {
    // `+l.name` keeps the planner on the id range: a watch usually starts
    // close to the present, where that range is short.
    let (names, params) = name_condition(range, "+l.name");
    let sql = format!(
        "SELECT {COLUMNS}, p.value FROM log AS l
         LEFT JOIN log AS p ON p.id = l.prev_revision AND l.created = 0
         WHERE l.id > :after AND l.id <= :through AND {names}
         ORDER BY l.id"
    );
    (sql, params)
}

/// The events of keys in `range` with revisions in `(after, through]`, in
/// revision order, with the values they replaced.
pub(super) fn events(
    conn: &Connection,
    range: &KeyRange,
    after: Revision,
    through: Revision,
) -> Result<Vec<Event>, StoreError> {
    let (sql, mut params) = events_sql(range);
    params.push((":after", &after));
    params.push((":through", &through));
    let mut stmt = conn.prepare_cached(&sql).map_err(db("prepare replay"))?;
    let rows = stmt
        .query_map(params.as_slice(), |r| Ok((log_row(r)?, r.get::<_, Option<Vec<u8>>>(7)?)))
        .map_err(db("replay log"))?;
    let mut events = Vec::new();
    for row in rows {
        let (row, prev_value) = row.map_err(db("replay log"))?;
        events.push(row.into_event(prev_value)?);
    }
    Ok(events)
}
