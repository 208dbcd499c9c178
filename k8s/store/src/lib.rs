//! The datastore under Lichen's Kubernetes API server: a revisioned
//! key-value log with watches, in the manner of k3s's kine.
//!
//! Every write appends one row to a log and takes the next revision of one
//! store-wide counter, as etcd does; reads can look at past revisions until
//! they are compacted away, and watches replay the log and then follow it
//! live. [`SqliteStore`] keeps the log in one SQLite table (durable across
//! `kill -9` and power cuts, bounded in size by compaction); [`MemoryStore`]
//! keeps it in memory with the same behaviour, for tests of the layers above.
//!
//! This crate knows keys, values, revisions and watches, and nothing else: it
//! must not learn about HTTP, Kubernetes objects, encodings or access
//! control. Those belong to the API server, the only crate that may use it.
#![forbid(unsafe_code)]

mod error;
mod keys;
mod log;
mod memory;
mod sqlite;
mod store;
mod types;
mod watch;

#[cfg(test)]
mod conformance;

pub use error::{BackendError, StoreError, WatchEnded};
pub use memory::MemoryStore;
pub use sqlite::{SqliteOptions, SqliteStore};
pub use store::Store;
pub use types::{Event, EventKind, KeyValue, ListResult, Revision};
pub use watch::{DEFAULT_WATCH_CAPACITY, Watch, WatchMessage};

/// Locks a mutex, going on after a panic in another holder: every critical
/// section here either completes its change or leaves the data untouched
/// (SQLite rolls an unfinished transaction back), so the data stays valid.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
