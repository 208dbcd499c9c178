//! The values the store hands out: key-values, events and list pages.

/// A point in the store's history. One counter for all keys, like etcd: every
/// create, update and delete takes the next revision. An empty store is at
/// revision 0; the first write is revision 1.
pub type Revision = i64;

/// One version of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// The revision that created this incarnation of the key. A key created
    /// again after a delete gets a new one.
    pub create_revision: Revision,
    /// The revision of the write that produced this version.
    pub mod_revision: Revision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One committed write, as a watcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// For `Put`, the new version. For `Delete`, the last value the key had,
    /// with `mod_revision` set to the revision of the delete.
    pub kv: KeyValue,
    /// The version this write replaced; `None` for a create.
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision of the write.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// The revision the list was read at: pass it as `at` for the next page
    /// to get a consistent snapshot across pages.
    pub revision: Revision,
    /// Whether items were left out because of the limit.
    pub more: bool,
}
