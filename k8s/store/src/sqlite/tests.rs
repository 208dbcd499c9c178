//! What only the SQLite store has: a file, a schema, query plans.

use rusqlite::Connection;
use tempfile::TempDir;

use super::*;
use crate::keys::KeyRange;

fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(dir.path().join("state.db")).unwrap()
}

fn rows(store: &SqliteStore) -> i64 {
    lock(&store.writer).query_row("SELECT COUNT(*) FROM log", [], |r| r.get(0)).unwrap()
}

#[test]
fn reopening_keeps_data_history_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        let a = store.create("a", b"1").unwrap(); // 1
        store.update("a", b"2", a.mod_revision).unwrap(); // 2
        store.create("b", b"1").unwrap(); // 3
        store.compact(2).unwrap();
        store.update("a", b"3", 2).unwrap(); // 4
        store.delete("b", None).unwrap(); // 5
    }
    let store = open(&dir);
    assert_eq!(store.current_revision().unwrap(), 5);
    assert_eq!(store.compacted_revision().unwrap(), 2);
    assert_eq!(store.get("a", Some(3)).unwrap().unwrap().value, b"2");
    assert_eq!(store.get("a", None).unwrap().unwrap().value, b"3");
    assert_eq!(store.get("b", None).unwrap(), None);
    assert!(matches!(store.get("a", Some(1)), Err(StoreError::Compacted { .. })));
    let mut watch = store.watch("", 2).unwrap();
    let Ok(Some(crate::WatchMessage::Events(events))) = watch.try_next() else { panic!("no replay") };
    assert_eq!(events.iter().map(|e| e.revision()).collect::<Vec<_>>(), [3, 4, 5]);
    assert_eq!(store.create("c", b"1").unwrap().mod_revision, 6);
    store.integrity_check().unwrap();
}

#[test]
fn database_is_set_up_for_durability_and_bounded_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let conn = lock(&store.writer);
    let pragma = |name: &str| -> String {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, rusqlite::types::Value>(0))
            .map(|v| format!("{v:?}"))
            .unwrap()
    };
    assert_eq!(pragma("journal_mode"), r#"Text("wal")"#);
    assert_eq!(pragma("synchronous"), "Integer(2)"); // FULL
    assert_eq!(pragma("auto_vacuum"), "Integer(2)"); // INCREMENTAL
    assert_eq!(pragma("foreign_keys"), "Integer(0)");
    assert_eq!(pragma("user_version"), format!("Integer({})", schema::SCHEMA_VERSION));
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(&dir));
    let conn = Connection::open(dir.path().join("state.db")).unwrap();
    conn.pragma_update(None, "user_version", schema::SCHEMA_VERSION + 1).unwrap();
    drop(conn);
    match SqliteStore::open(dir.path().join("state.db")) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (schema::SCHEMA_VERSION + 1, schema::SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn a_file_that_is_not_a_database_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::Open { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected Open, got {other:?}"),
    }
}

fn plan(store: &SqliteStore, sql: &str, params: &[(&str, &dyn rusqlite::ToSql)]) -> String {
    let conn = lock(&store.reader);
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let details: Vec<String> = stmt.query_map(params, |r| r.get(3)).unwrap().map(Result::unwrap).collect();
    details.join("\n")
}

#[test]
fn lists_seek_the_name_index_and_replays_the_id_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let range = KeyRange::new("/registry/pods/", Some("/registry/pods/a"));
    let (sql, mut params) = queries::list_sql(&range);
    params.push((":at", &1));
    params.push((":limit", &10));
    let list = plan(&store, &sql, &params);
    assert!(list.contains("SEARCH l USING INDEX log_name_id (name>? AND name<?)"), "{list}");
    assert!(list.contains("SEARCH m USING COVERING INDEX log_name_id (name=? AND id<?)"), "{list}");
    assert!(!list.contains("TEMP B-TREE"), "list must not sort: {list}");

    let (sql, mut params) = queries::events_sql(&range);
    params.push((":after", &1));
    params.push((":through", &5));
    let replay = plan(&store, &sql, &params);
    assert!(replay.contains("SEARCH l USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"), "{replay}");
    assert!(!replay.contains("TEMP B-TREE"), "replay must not sort: {replay}");
}

#[test]
fn compaction_leaves_one_row_per_live_key() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions { compaction_batch: 7, ..SqliteOptions::default() };
    let store = SqliteStore::open_with(dir.path().join("state.db"), options).unwrap();
    for i in 0..20 {
        let key = format!("k{i}");
        let mut kv = store.create(&key, b"0").unwrap();
        for v in 1..5 {
            kv = store.update(&key, &[v], kv.mod_revision).unwrap();
        }
        if i % 4 == 3 {
            store.delete(&key, None).unwrap();
        }
    }
    assert_eq!(rows(&store), 20 * 5 + 5);
    let last = store.current_revision().unwrap();
    store.compact(last).unwrap();
    // 15 live keys; the newest row is a tombstone and stays until it is not
    // the newest, as it carries the current revision.
    assert_eq!(rows(&store), 15 + 1);
    store.create("after", b"x").unwrap();
    store.compact(last + 1).unwrap();
    assert_eq!(rows(&store), 16);
    assert_eq!(store.count("").unwrap(), (16, last + 1));
    store.integrity_check().unwrap();
}

#[test]
fn an_interrupted_compaction_is_finished_by_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut kv = store.create("a", b"0").unwrap();
    for v in 1..10 {
        kv = store.update("a", &[v], kv.mod_revision).unwrap();
    }
    // As if the process died right after recording the compacted revision.
    queries::set_meta(&lock(&store.writer), schema::COMPACTED, 8).unwrap();
    assert_eq!(rows(&store), 10);
    assert!(matches!(store.get("a", Some(7)), Err(StoreError::Compacted { .. })));
    store.compact(5).unwrap();
    assert_eq!(rows(&store), 3); // revisions 8, 9, 10
    assert_eq!(store.get("a", Some(8)).unwrap().unwrap().value, [7]);
}

#[test]
fn compaction_returns_a_large_amount_of_free_space_to_the_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 0..200 {
        store.create(&format!("big/{i:03}"), &vec![7; 16 * 1024]).unwrap();
    }
    for i in 0..200 {
        store.delete(&format!("big/{i:03}"), None).unwrap();
    }
    store.create("small", b"x").unwrap();
    let pages = |store: &SqliteStore| -> i64 {
        lock(&store.writer).pragma_query_value(None, "page_count", |r| r.get(0)).unwrap()
    };
    let before = pages(&store);
    store.compact(store.current_revision().unwrap()).unwrap();
    let after = pages(&store);
    assert!(before > 800 && after < 50, "pages before {before}, after {after}");
    store.checkpoint().unwrap();
    let size = std::fs::metadata(dir.path().join("state.db")).unwrap().len();
    assert!(size < 50 * 4096, "file is {size} bytes");
    store.integrity_check().unwrap();
}
