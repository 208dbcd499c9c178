//! An acknowledged write survives `kill -9`: a child process (this test
//! binary again, selected by an environment variable) writes in a loop and
//! prints each acknowledged write; the parent kills it mid-stream, reopens
//! the database and checks every acknowledged write is there.
//!
//! This proves durability against a process crash. A power cut additionally
//! needs the fsync of `synchronous=FULL`, which only a VM that is killed can
//! show (the QEMU suite's power-cut tests).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use lichen_store::{SqliteStore, Store, StoreError};

const DB_ENV: &str = "LICHEN_STORE_CRASH_DB";
const ROUND_ENV: &str = "LICHEN_STORE_CRASH_ROUND";

fn value(key: &str, n: u64) -> Vec<u8> {
    format!("{key}={n}:{}", "x".repeat(200)).into_bytes()
}

/// The child: creates keys, updates and deletes some, compacts now and then,
/// and prints `put <revision> <key> <n>` or `del <revision> <key>` after each
/// write returns.
#[test]
#[ignore = "runs only as the child of acknowledged_writes_survive_kill_9"]
fn crash_writer_child() {
    let (Some(path), Some(round)) = (std::env::var_os(DB_ENV), std::env::var_os(ROUND_ENV)) else { return };
    let round = round.to_string_lossy().into_owned();
    let store = SqliteStore::open(path).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let key = format!("k/{round}/{i:06}");
        let kv = store.create(&key, &value(&key, 0)).unwrap();
        writeln!(out, "put {} {key} 0", kv.mod_revision).unwrap();
        if i > 0 {
            let earlier = format!("k/{round}/{:06}", i - 1);
            if i % 5 == 0 {
                let kv = store.delete(&earlier, None).unwrap();
                writeln!(out, "del {} {earlier}", kv.mod_revision).unwrap();
            } else {
                let current = store.get(&earlier, None).unwrap().unwrap();
                let kv = store.update(&earlier, &value(&earlier, 1), current.mod_revision).unwrap();
                writeln!(out, "put {} {earlier} 1", kv.mod_revision).unwrap();
            }
        }
        if i % 50 == 49 {
            store.compact_older_than(30).unwrap();
        }
        out.flush().unwrap();
    }
}

#[derive(Debug)]
struct Ack {
    revision: i64,
    key: String,
    /// `None` for a delete.
    n: Option<u64>,
}

fn parse(line: &str) -> Option<Ack> {
    let mut words = line.split(' ');
    let kind = words.next()?;
    let revision = words.next()?.parse().ok()?;
    let key = words.next()?.to_owned();
    let n = match kind {
        "put" => Some(words.next()?.parse().ok()?),
        "del" => None,
        _ => return None,
    };
    Some(Ack { revision, key, n })
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let exe = std::env::current_exe().unwrap();
    // Several kills on the same database, at different points.
    for (round, kill_after) in [(0, 400), (1, 37), (2, 1000)] {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_writer_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env(DB_ENV, &path)
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acks = Vec::new();
        while acks.len() < kill_after {
            let line = lines.next().expect("child stopped writing").unwrap();
            acks.extend(parse(&line));
        }
        child.kill().unwrap(); // SIGKILL
        // What the child printed before it died was acknowledged too.
        acks.extend(lines.map_while(Result::ok).filter_map(|l| parse(&l)));
        child.wait().unwrap();

        let store = SqliteStore::open(&path).unwrap();
        store.integrity_check().unwrap();
        let current = store.current_revision().unwrap();
        let compacted = store.compacted_revision().unwrap();
        let last = acks.last().unwrap().revision;
        assert!(current >= last, "round {round}: revision {current}, acknowledged {last}");
        let mut latest: BTreeMap<&str, &Ack> = BTreeMap::new();
        for ack in &acks {
            latest.insert(&ack.key, ack);
            if ack.revision < compacted {
                continue;
            }
            // Exactly that write, at its revision.
            let at = store.get(&ack.key, Some(ack.revision)).unwrap();
            match ack.n {
                Some(n) => {
                    let kv = at.unwrap_or_else(|| panic!("round {round}: lost {ack:?}"));
                    assert_eq!((kv.mod_revision, kv.value), (ack.revision, value(&ack.key, n)), "{ack:?}");
                }
                None => assert_eq!(at, None, "round {round}: lost {ack:?}"),
            }
        }
        // And the present reflects at least every acknowledged write (a
        // write after the last acknowledgement may have committed too).
        for ack in latest.values() {
            match (ack.n, store.get(&ack.key, None).unwrap()) {
                (Some(_), Some(kv)) => assert!(kv.mod_revision >= ack.revision, "round {round}: {ack:?}"),
                (None, None) => {}
                // Deleted by the one write that was not acknowledged.
                (Some(_), None) if current > last && store.get(&ack.key, Some(last)).unwrap().is_some() => {}
                (_, now) => panic!("round {round}: {ack:?} but now {now:?}"),
            }
        }
        if compacted > 0 {
            assert!(matches!(
                store.get("k/0/000000", Some(compacted - 1)),
                Err(StoreError::Compacted { .. })
            ));
        }
        eprintln!(
            "round {round}: {} acknowledged writes checked, revision {current}, compacted {compacted}",
            acks.len()
        );
    }
}
