//! The revision log's row, shared by the backends: one row per write.

use crate::error::StoreError;
use crate::types::{Event, EventKind, KeyValue, Revision};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// Creates an incarnation of the key (the first, or the first after a delete).
    Create,
    Update,
    /// A tombstone: ends the incarnation.
    Delete,
}

/// One write. A row stores only its own value; the value an update or delete
/// replaced is read from the row at `prev_revision`, so an update writes its
/// value once (SD cards count every byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogRow {
    pub revision: Revision,
    pub key: String,
    pub op: Op,
    pub create_revision: Revision,
    /// The row this one replaced in the same incarnation; 0 for a create.
    pub prev_revision: Revision,
    /// Empty for a delete.
    pub value: Vec<u8>,
}

impl LogRow {
    /// The version this row makes visible, `None` for a tombstone.
    pub(crate) fn live(&self) -> Option<KeyValue> {
        (self.op != Op::Delete).then(|| self.kv(self.value.clone()))
    }

    fn kv(&self, value: Vec<u8>) -> KeyValue {
        KeyValue {
            key: self.key.clone(),
            value,
            create_revision: self.create_revision,
            mod_revision: self.revision,
        }
    }

    /// The event of this row; `prev_value` is the value of the row at
    /// `prev_revision` (ignored for a create).
    pub(crate) fn into_event(self, prev_value: Option<Vec<u8>>) -> Result<Event, StoreError> {
        if self.op == Op::Create {
            let kv = self.kv(self.value.clone());
            return Ok(Event { kind: EventKind::Put, kv, prev: None });
        }
        let Some(prev_value) = prev_value else {
            return Err(StoreError::Corrupt {
                reason: format!(
                    "revision {} of key {:?} replaces revision {}, which is missing",
                    self.revision, self.key, self.prev_revision
                ),
            });
        };
        let prev = KeyValue {
            key: self.key.clone(),
            value: prev_value,
            create_revision: self.create_revision,
            mod_revision: self.prev_revision,
        };
        Ok(match self.op {
            Op::Delete => {
                Event { kind: EventKind::Delete, kv: self.kv(prev.value.clone()), prev: Some(prev) }
            }
            Op::Create | Op::Update => {
                Event { kind: EventKind::Put, kv: self.kv(self.value.clone()), prev: Some(prev) }
            }
        })
    }
}

/// The row a guarded write appends, after checking the guard against the
/// key's live version. Shared so both backends answer the same.
pub(crate) fn plan_write(
    key: &str,
    live: Option<KeyValue>,
    write: Write<'_>,
    revision: Revision,
) -> Result<(LogRow, Event), StoreError> {
    let not_found = || StoreError::NotFound { key: key.to_owned() };
    let check = |live: &KeyValue, expected: Option<Revision>| match expected {
        Some(expected) if expected != live.mod_revision => {
            Err(StoreError::Conflict { key: key.to_owned(), expected, current: Box::new(live.clone()) })
        }
        _ => Ok(()),
    };
    let row = |op, create_revision, prev_revision, value: &[u8]| LogRow {
        revision,
        key: key.to_owned(),
        op,
        create_revision,
        prev_revision,
        value: value.to_vec(),
    };
    match (write, live) {
        (Write::Create(_), Some(live)) => {
            Err(StoreError::AlreadyExists { key: key.to_owned(), revision: live.mod_revision })
        }
        (Write::Create(value), None) => {
            let row = row(Op::Create, revision, 0, value);
            let event = row.clone().into_event(None)?;
            Ok((row, event))
        }
        (Write::Update { .. } | Write::Delete { .. }, None) => Err(not_found()),
        (Write::Update { value, expected }, Some(live)) => {
            check(&live, Some(expected))?;
            let row = row(Op::Update, live.create_revision, live.mod_revision, value);
            let event = row.clone().into_event(Some(live.value))?;
            Ok((row, event))
        }
        (Write::Delete { expected }, Some(live)) => {
            check(&live, expected)?;
            let row = row(Op::Delete, live.create_revision, live.mod_revision, &[]);
            let event = row.clone().into_event(Some(live.value))?;
            Ok((row, event))
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Write<'a> {
    Create(&'a [u8]),
    Update { value: &'a [u8], expected: Revision },
    Delete { expected: Option<Revision> },
}
