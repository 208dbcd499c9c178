//! `metadata.managedFields`: who manages which fields. Decoding and
//! encoding the entries, and the identity of a manager (its name, whether
//! it applied or updated, the subresource, and for updaters the version).

use std::fmt;

use serde_json::{Map, Value, json};

use super::fieldsv1::{self, FieldsV1Error};
use super::set::Set;

/// How a manager last wrote its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who wrote: upstream's manager identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerId {
    pub manager: String,
    pub operation: Operation,
    /// `""` for the main resource.
    pub subresource: String,
    /// The version the manager wrote with (`apps/v1`).
    pub api_version: String,
}

impl ManagerId {
    /// Whether two ids name the same manager: an applier keeps its identity
    /// across versions, an updater does not.
    pub fn same(&self, other: &ManagerId) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }
}

/// How conflicts name a manager: `"kubectl"`, `"kubectl-edit" using
/// apps/v1`, `"kubectl" with subresource "scale" using apps/v1`.
impl fmt::Display for ManagerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.manager)?;
        if !self.subresource.is_empty() {
            write!(f, " with subresource {:?}", self.subresource)?;
        }
        if self.operation == Operation::Update {
            write!(f, " using {}", self.api_version)?;
        }
        Ok(())
    }
}

/// One manager and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: ManagerId,
    /// RFC 3339, when the manager last changed something.
    pub time: Option<String>,
    pub fields: Set,
}

/// Why `metadata.managedFields` could not be read (upstream then keeps
/// what the live object had, or refuses an apply).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagedFieldsError {
    #[error("managedFields must be a list")]
    NotAList,
    #[error("managed fields entry {index} is not an object")]
    NotAnObject { index: usize },
    #[error("operation must be `Apply` or `Update` in managed fields entry {index}")]
    Operation { index: usize },
    #[error("apiVersion must not be empty in managed fields entry {index}")]
    ApiVersion { index: usize },
    #[error("missing fieldsType in managed fields entry {index}")]
    MissingFieldsType { index: usize },
    #[error("invalid fieldsType {fields_type:?} in managed fields entry {index}")]
    FieldsType { index: usize, fields_type: String },
    #[error("managed fields entry {index}")]
    Fields {
        index: usize,
        #[source]
        source: FieldsV1Error,
    },
}

/// All managers of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagedFields {
    pub entries: Vec<Entry>,
}

impl ManagedFields {
    /// Reads `metadata.managedFields` (absent or null: no managers). A
    /// later entry for the same manager replaces an earlier one.
    pub fn decode(list: Option<&Value>) -> Result<Self, ManagedFieldsError> {
        let items = match list {
            None | Some(Value::Null) => return Ok(Self::default()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(ManagedFieldsError::NotAList),
        };
        let mut out = ManagedFields::default();
        for (index, item) in items.iter().enumerate() {
            let entry = decode_entry(index, item)?;
            out.put(entry);
        }
        Ok(out)
    }

    /// `managedFields: []` or `[{}]`: the client asks to drop all managers.
    pub fn is_reset(list: Option<&Value>) -> bool {
        match list {
            Some(Value::Array(items)) => match items.as_slice() {
                [] => true,
                [only] => only.as_object().is_some_and(Map::is_empty),
                _ => false,
            },
            _ => false,
        }
    }

    /// The entries as upstream writes them, sorted by operation, time,
    /// manager, version and subresource; `None` when there are none.
    pub fn encode(&self) -> Option<Value> {
        if self.entries.is_empty() {
            return None;
        }
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|a, b| {
            a.id.operation
                .cmp(&b.id.operation)
                .then_with(|| a.time.as_deref().unwrap_or("").cmp(b.time.as_deref().unwrap_or("")))
                .then_with(|| a.id.manager.cmp(&b.id.manager))
                .then_with(|| a.id.api_version.cmp(&b.id.api_version))
                .then_with(|| a.id.subresource.cmp(&b.id.subresource))
        });
        Some(Value::Array(entries.into_iter().map(encode_entry).collect()))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, id: &ManagerId) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id.same(id))
    }

    /// Removes and returns the entry of `id`.
    pub fn take(&mut self, id: &ManagerId) -> Option<Entry> {
        let at = self.entries.iter().position(|e| e.id.same(id))?;
        Some(self.entries.remove(at))
    }

    /// Adds `entry`, replacing the one of the same manager.
    pub fn put(&mut self, entry: Entry) {
        self.entries.retain(|e| !e.id.same(&entry.id));
        self.entries.push(entry);
    }

    /// Drops managers that manage nothing.
    pub fn drop_empty(&mut self) {
        self.entries.retain(|e| !e.fields.is_empty());
    }

    /// Keeps at most `max` updaters: the oldest are merged, per version,
    /// into one `ancient-changes` entry, as upstream's cap does.
    pub fn cap_updaters(&mut self, max: usize) {
        let updaters = self.entries.iter().filter(|e| e.id.operation == Operation::Update).count();
        if updaters <= max {
            return;
        }
        let mut oldest: Vec<usize> =
            (0..self.entries.len()).filter(|&i| self.entries[i].id.operation == Operation::Update).collect();
        oldest.sort_by(|&a, &b| {
            let (a, b) = (&self.entries[a], &self.entries[b]);
            a.time
                .as_deref()
                .unwrap_or("")
                .cmp(b.time.as_deref().unwrap_or(""))
                .then(a.id.manager.cmp(&b.id.manager))
        });
        // Merging n entries into one bucket removes n - 1 of them.
        let merge: Vec<usize> = oldest.into_iter().take(updaters - max + 1).collect();
        let mut buckets: Vec<Entry> = Vec::new();
        for &i in &merge {
            let e = &self.entries[i];
            match buckets.iter_mut().find(|b| b.id.api_version == e.id.api_version) {
                Some(b) => {
                    b.fields = b.fields.union(&e.fields);
                    b.time.clone_from(&e.time);
                }
                None => buckets.push(Entry {
                    id: ManagerId {
                        manager: "ancient-changes".into(),
                        operation: Operation::Update,
                        subresource: String::new(),
                        api_version: e.id.api_version.clone(),
                    },
                    time: e.time.clone(),
                    fields: e.fields.clone(),
                }),
            }
        }
        let mut kept: Vec<Entry> = Vec::new();
        for (i, e) in std::mem::take(&mut self.entries).into_iter().enumerate() {
            if !merge.contains(&i) {
                kept.push(e);
            }
        }
        self.entries = kept;
        for b in buckets {
            match self.entries.iter_mut().find(|e| e.id.same(&b.id)) {
                Some(existing) => {
                    existing.fields = existing.fields.union(&b.fields);
                    existing.time = b.time;
                }
                None => self.entries.push(b),
            }
        }
    }
}

fn decode_entry(index: usize, item: &Value) -> Result<Entry, ManagedFieldsError> {
    let Value::Object(m) = item else { return Err(ManagedFieldsError::NotAnObject { index }) };
    let text = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let operation = match text("operation").as_str() {
        "Apply" => Operation::Apply,
        "Update" => Operation::Update,
        _ => return Err(ManagedFieldsError::Operation { index }),
    };
    let api_version = text("apiVersion");
    if api_version.is_empty() {
        return Err(ManagedFieldsError::ApiVersion { index });
    }
    match text("fieldsType").as_str() {
        "FieldsV1" => {}
        "" => return Err(ManagedFieldsError::MissingFieldsType { index }),
        other => return Err(ManagedFieldsError::FieldsType { index, fields_type: other.to_string() }),
    }
    let fields = match m.get("fieldsV1") {
        None | Some(Value::Null) => Set::new(),
        Some(v) => fieldsv1::decode(v).map_err(|source| ManagedFieldsError::Fields { index, source })?,
    };
    let time = m.get("time").and_then(Value::as_str).map(String::from);
    let id = ManagerId { manager: text("manager"), operation, subresource: text("subresource"), api_version };
    Ok(Entry { id, time, fields })
}

fn encode_entry(e: &Entry) -> Value {
    let mut v = json!({
        "manager": e.id.manager,
        "operation": e.id.operation.as_str(),
        "apiVersion": e.id.api_version,
        "fieldsType": "FieldsV1",
        "fieldsV1": fieldsv1::encode(&e.fields),
    });
    if let Some(t) = &e.time {
        v["time"] = json!(t);
    }
    if !e.id.subresource.is_empty() {
        v["subresource"] = json!(e.id.subresource);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldpath::element::Path;

    fn id(manager: &str, operation: Operation) -> ManagerId {
        ManagerId {
            manager: manager.into(),
            operation,
            subresource: String::new(),
            api_version: "apps/v1".into(),
        }
    }

    fn entry(manager: &str, operation: Operation, time: &str, field: &str) -> Entry {
        Entry {
            id: id(manager, operation),
            time: Some(time.into()),
            fields: Set::from_paths(&[Path::fields(&["spec", field])]),
        }
    }

    #[test]
    fn round_trip_and_order() {
        let mut m = ManagedFields::default();
        m.put(entry("b", Operation::Update, "2024-01-02T00:00:00Z", "x"));
        m.put(entry("kubectl", Operation::Apply, "2024-01-03T00:00:00Z", "y"));
        m.put(entry("a", Operation::Update, "2024-01-02T00:00:00Z", "z"));
        let encoded = m.encode().expect("entries");
        let names: Vec<&str> =
            encoded.as_array().unwrap().iter().map(|e| e["manager"].as_str().unwrap()).collect();
        assert_eq!(names, ["kubectl", "a", "b"]);
        assert_eq!(encoded[0]["fieldsV1"], json!({"f:spec": {"f:y": {}}}));
        assert!(encoded[0].get("subresource").is_none());
        let back = ManagedFields::decode(Some(&encoded)).expect("decodes");
        assert_eq!(back.entries.len(), 3);
        assert_eq!(back.get(&id("kubectl", Operation::Apply)), m.get(&id("kubectl", Operation::Apply)));
    }

    #[test]
    fn identity() {
        let mut apply_v2 = id("kubectl", Operation::Apply);
        apply_v2.api_version = "apps/v2".into();
        assert!(apply_v2.same(&id("kubectl", Operation::Apply)));
        let mut update_v2 = id("kubectl", Operation::Update);
        update_v2.api_version = "apps/v2".into();
        assert!(!update_v2.same(&id("kubectl", Operation::Update)));
        assert!(!id("kubectl", Operation::Update).same(&id("kubectl", Operation::Apply)));
        let mut scale = id("kubectl", Operation::Update);
        scale.subresource = "scale".into();
        assert_eq!(scale.to_string(), r#""kubectl" with subresource "scale" using apps/v1"#);
        assert_eq!(id("kubectl", Operation::Apply).to_string(), r#""kubectl""#);
    }

    #[test]
    fn bad_entries_are_errors_and_resets_are_recognised() {
        let bad =
            json!([{"manager": "x", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}]);
        assert_eq!(ManagedFields::decode(Some(&bad)), Err(ManagedFieldsError::Operation { index: 0 }));
        let bad = json!([{"manager": "x", "operation": "Update", "apiVersion": "v1"}]);
        assert_eq!(
            ManagedFields::decode(Some(&bad)),
            Err(ManagedFieldsError::MissingFieldsType { index: 0 })
        );
        assert!(ManagedFields::is_reset(Some(&json!([]))));
        assert!(ManagedFields::is_reset(Some(&json!([{}]))));
        assert!(!ManagedFields::is_reset(None));
        assert!(!ManagedFields::is_reset(Some(&json!([{}, {}]))));
    }

    #[test]
    fn too_many_updaters_are_merged_oldest_first() {
        let mut m = ManagedFields::default();
        for i in 0..12 {
            m.put(entry(
                &format!("m{i:02}"),
                Operation::Update,
                &format!("2024-01-{:02}T00:00:00Z", i + 1),
                &format!("f{i}"),
            ));
        }
        m.put(entry("applier", Operation::Apply, "2024-01-01T00:00:00Z", "a"));
        m.cap_updaters(10);
        let updaters: Vec<&str> = m
            .entries
            .iter()
            .filter(|e| e.id.operation == Operation::Update)
            .map(|e| e.id.manager.as_str())
            .collect();
        assert_eq!(updaters.len(), 10);
        assert!(
            updaters.contains(&"ancient-changes") && !updaters.contains(&"m00") && !updaters.contains(&"m02")
        );
        let ancient = m.entries.iter().find(|e| e.id.manager == "ancient-changes").unwrap();
        assert_eq!(ancient.fields.paths().len(), 3);
        assert!(m.get(&id("applier", Operation::Apply)).is_some());
    }
}
