//! Numbers for the design notes, not a pass/fail test. Run on the target
//! storage with
//! `cargo test --release --test measure -- --ignored --nocapture`
//! (the directory comes from `LICHEN_STORE_MEASURE_DIR`, default a temp dir).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use lichen_store::{SqliteStore, Store};

/// `wchar` (bytes handed to write calls) and `write_bytes` (bytes sent to
/// the block device) of this process.
fn io() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field =
        |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or(0);
    (field("wchar:"), field("write_bytes:"))
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Runs `n` writes and prints their rate and bytes per write.
fn writes(label: &str, n: usize, mut write: impl FnMut(usize)) {
    let (wchar, disk) = io();
    let started = Instant::now();
    for i in 0..n {
        write(i);
    }
    let elapsed = started.elapsed();
    let (wchar2, disk2) = io();
    let n64 = n as f64;
    println!(
        "{label}: {n} in {elapsed:.2?} = {:.0} writes/s; {:.0} bytes written per write, {:.0} to the device",
        n64 / elapsed.as_secs_f64(),
        (wchar2 - wchar) as f64 / n64,
        (disk2 - disk) as f64 / n64,
    );
}

fn median(label: &str, runs: usize, mut f: impl FnMut() -> usize) {
    let mut times: Vec<Duration> = Vec::new();
    let mut items = 0;
    for _ in 0..runs {
        let started = Instant::now();
        items = f();
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "{label}: {items} items, median {:.2?} (min {:.2?}, max {:.2?})",
        times[runs / 2],
        times[0],
        times[runs - 1]
    );
}

#[test]
#[ignore = "measurement, run by hand"]
fn measure_writes_lists_and_size() {
    let dir = match std::env::var_os("LICHEN_STORE_MEASURE_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let path = dir.path().join("state.db");
    let wal = dir.path().join("state.db-wal");
    let store = SqliteStore::open(&path).unwrap();
    let lease = vec![b'l'; 512];
    let pod = vec![b'p'; 2048];
    println!("values: leases 512 B, pods 2 KiB; synchronous=FULL, WAL");

    writes("create (512 B)", 2000, |i| {
        store.create(&format!("/registry/leases/kube-node-lease/node-{i:04}"), &lease).unwrap();
    });
    let mut revisions: Vec<i64> = (0..100)
        .map(|i| store.get(&format!("/registry/leases/kube-node-lease/node-{i:04}"), None).unwrap().unwrap())
        .map(|kv| kv.mod_revision)
        .collect();
    writes("update (512 B, CAS)", 2000, |i| {
        let key = format!("/registry/leases/kube-node-lease/node-{:04}", i % 100);
        revisions[i % 100] = store.update(&key, &lease, revisions[i % 100]).unwrap().mod_revision;
    });
    writes("create (2 KiB)", 10_000, |i| {
        store.create(&format!("/registry/pods/default/pod-{i:05}"), &pod).unwrap();
    });

    median("list 10k pods", 7, || store.list("/registry/pods/", None, None, None).unwrap().items.len());
    median("list first page of 500", 7, || {
        store.list("/registry/pods/", None, Some(500), None).unwrap().items.len()
    });
    median("list last page of 500", 7, || {
        store
            .list("/registry/pods/", Some("/registry/pods/default/pod-09499"), Some(500), None)
            .unwrap()
            .items
            .len()
    });
    let at = store.current_revision().unwrap();
    median("count 10k pods", 7, || usize::try_from(store.count("/registry/pods/").unwrap().0).unwrap());
    median("get", 101, || {
        usize::from(store.get("/registry/pods/default/pod-05000", None).unwrap().is_some())
    });

    // Two more versions of every pod: history the list must skip.
    writes("update (2 KiB, CAS)", 20_000, |i| {
        let key = format!("/registry/pods/default/pod-{:05}", i % 10_000);
        let current = store.get(&key, None).unwrap().unwrap();
        store.update(&key, &pod, current.mod_revision).unwrap();
    });
    median("list 10k pods with 3 versions each", 7, || {
        store.list("/registry/pods/", None, None, None).unwrap().items.len()
    });
    median("list 10k pods at an older revision", 7, || {
        store.list("/registry/pods/", None, None, Some(at)).unwrap().items.len()
    });

    store.checkpoint().unwrap();
    let before = file_size(&path);
    let started = Instant::now();
    let compacted = store.compact_older_than(0).unwrap();
    println!("compact 20k superseded rows to revision {compacted}: {:.2?}", started.elapsed());
    store.checkpoint().unwrap();
    let after = file_size(&path);
    let live = store.count("").unwrap().0;
    println!(
        "file {before} B before compaction, {after} B after; {live} live keys = {:.0} B per key",
        after as f64 / live as f64
    );

    // Steady state: lease renewals with a compaction every 1000 writes; the
    // file must not grow.
    let start_size = file_size(&path);
    writes("steady state: update + compact every 1000", 10_000, |i| {
        let key = format!("/registry/leases/kube-node-lease/node-{:04}", i % 100);
        revisions[i % 100] = store.update(&key, &lease, revisions[i % 100]).unwrap().mod_revision;
        if i % 1000 == 999 {
            store.compact_older_than(100).unwrap();
        }
    });
    println!(
        "steady state: file {start_size} B before, {} B after, WAL {} B",
        file_size(&path),
        file_size(&wal)
    );
    store.integrity_check().unwrap();
}
