//! The store's errors.

use std::path::PathBuf;

use crate::types::{KeyValue, Revision};

/// The error of a backend library (SQLite today, an etcd client later), kept
/// opaque so that the backend's types stay out of this crate's API.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything a store operation can fail with. Callers map every variant to
/// a response (the API server to a `metav1.Status`), so there is no catch-all.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key {key:?} already exists (revision {revision})")]
    AlreadyExists { key: String, revision: Revision },

    #[error("key {key:?} not found")]
    NotFound { key: String },

    /// The guard failed: the key is live with another `mod_revision`.
    /// `current` is what it holds now, for the 409 or the retry.
    #[error("key {key:?} was modified: expected revision {expected}, found {}", current.mod_revision)]
    Conflict { key: String, expected: Revision, current: Box<KeyValue> },

    /// The requested revision is older than the compacted revision (410 Gone).
    #[error("revision {requested} is compacted (compacted revision is {compacted})")]
    Compacted { requested: Revision, compacted: Revision },

    #[error("revision {requested} is in the future (current revision is {current})")]
    FutureRevision { requested: Revision, current: Revision },

    /// A watcher's queue overflowed; it must list again and watch from there.
    #[error("watcher fell too far behind")]
    TooSlow,

    #[error("invalid key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },

    #[error("cannot open database {}", path.display())]
    Open { path: PathBuf, source: BackendError },

    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },

    #[error("database operation failed: {op}")]
    Backend { op: &'static str, source: BackendError },

    #[error("store is corrupt: {reason}")]
    Corrupt { reason: String },
}

/// A watch has ended: it was closed (after its `Closed` message) or the store
/// was dropped. Nothing more will arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("watch ended")]
pub struct WatchEnded;
