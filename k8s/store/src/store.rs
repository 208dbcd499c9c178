//! The contract every backend fulfils.

use crate::error::StoreError;
use crate::types::{KeyValue, ListResult, Revision};
use crate::watch::Watch;

/// A revisioned key-value log with watches.
///
/// Every write takes the next revision of one store-wide counter and is
/// durable when it returns. Reads can look at any revision between the
/// compacted revision and the current one.
pub trait Store: Send + Sync + 'static {
    /// The revision of the last write, 0 for an empty store.
    fn current_revision(&self) -> Result<Revision, StoreError>;

    /// Point read, at the current revision or at a past one: `Compacted` when
    /// `at` is older than the compacted revision, `FutureRevision` when it is
    /// newer than the current one.
    fn get(&self, key: &str, at: Option<Revision>) -> Result<Option<KeyValue>, StoreError>;

    /// Live keys starting with `prefix`, in key (byte) order, strictly after
    /// `start_after`, at most `limit` of them (`None` for all), all read at
    /// revision `at` (`None` for the current one). `more` says whether items
    /// were left out; the next page passes the last key as `start_after` and
    /// the returned `revision` as `at`. `Some(0)` returns no items, only
    /// `more`.
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        at: Option<Revision>,
    ) -> Result<ListResult, StoreError>;

    /// How many live keys start with `prefix`, and the revision counted at.
    fn count(&self, prefix: &str) -> Result<(i64, Revision), StoreError>;

    /// How many live keys start with `prefix` and sort after `start_after`,
    /// at revision `at` (`Compacted`/`FutureRevision` as for reads): the
    /// items a list page left for later pages.
    fn count_after(&self, prefix: &str, start_after: Option<&str>, at: Revision) -> Result<i64, StoreError>;

    /// Creates the key; `AlreadyExists` if it is live.
    fn create(&self, key: &str, value: &[u8]) -> Result<KeyValue, StoreError>;

    /// Replaces the value if the key's `mod_revision` is `expected`:
    /// `Conflict` (with the current version) when it is not, `NotFound` when
    /// the key does not exist (never created, or deleted).
    fn update(&self, key: &str, value: &[u8], expected: Revision) -> Result<KeyValue, StoreError>;

    /// Deletes the key, if `expected` is given only when its `mod_revision`
    /// matches (`Conflict`/`NotFound` as for [`Store::update`]). Returns the
    /// deleted value with `mod_revision` set to the delete's revision.
    fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError>;

    /// Events of keys starting with `prefix` with a revision above `after`:
    /// first the stored history, then live writes, in revision order, without
    /// gaps or duplicates. `Compacted` when `after` is older than the
    /// compacted revision (the API server answers 410 Gone). `after` may be in
    /// the future; events then start above it.
    fn watch(&self, prefix: &str, after: Revision) -> Result<Watch, StoreError>;

    /// Sends every open watch a `Progress` bookmark with the current
    /// revision, queued behind the events already sent to it, and returns
    /// that revision.
    fn request_progress(&self) -> Result<Revision, StoreError>;

    /// Forgets history older than `revision`: reads before it and watches
    /// from before it get `Compacted`; the state at `revision` and everything
    /// after stay. Compacting to or below the compacted revision does
    /// nothing; past the current revision is `FutureRevision`.
    fn compact(&self, revision: Revision) -> Result<(), StoreError>;

    /// The oldest revision that can still be read (0 if never compacted).
    fn compacted_revision(&self) -> Result<Revision, StoreError>;
}
