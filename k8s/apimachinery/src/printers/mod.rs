//! The server side of `kubectl get`: `meta.k8s.io/v1` Table columns and
//! cells for every built-in kind, as upstream's
//! `pkg/printers/internalversion/printers.go` prints them, the default
//! `Name`/`Created At` table of `rest.NewDefaultTableConvertor`, and custom
//! resources' `additionalPrinterColumns` (`tableconvertor`).
//!
//! Printers always produce the wide cells (upstream's table convertor prints
//! with `Wide: true`); kubectl hides columns with `priority > 0` unless
//! `-o wide`. The caller assembles the Table and each row's `object`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `vec![Value::from(a), Value::from(b), ...]`: a row of cells.
macro_rules! cells {
    ($($cell:expr),* $(,)?) => { vec![$(serde_json::Value::from($cell)),*] };
}

mod apps;
mod batch;
mod core;
mod custom;
mod docs;
mod duration;
mod events;
mod fields;
mod format;
mod jsonpath;
mod networking;
mod other;
mod pod;
mod policy;
mod quantity;
mod rbac;
mod storage;

pub use custom::{CustomColumns, PrinterColumnError, custom_cells, custom_columns};
pub use duration::human_duration;
pub use jsonpath::{JsonPath, JsonPathError};

/// One `columnDefinitions` entry of a Table, serialized as upstream's
/// `metav1.TableColumnDefinition`: `{name, type, format, description,
/// priority}` (all five always present).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDefinition {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `name` for the object's name column, otherwise usually empty.
    pub format: String,
    pub description: String,
    /// `0` always shown, `> 0` only with `kubectl get -o wide`.
    pub priority: i32,
}

/// A column as the printers declare it, in static tables.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    name: &'static str,
    type_: &'static str,
    format: &'static str,
    description: &'static str,
    priority: i32,
}

impl Column {
    /// A `string` column.
    pub(crate) const fn string(name: &'static str, description: &'static str) -> Column {
        Column::typed(name, "string", description)
    }

    pub(crate) const fn typed(name: &'static str, type_: &'static str, description: &'static str) -> Column {
        Column { name, type_, format: "", description, priority: 0 }
    }

    /// The `Name` column (format `name`) nearly every printer starts with.
    pub(crate) const fn name() -> Column {
        Column::string("Name", docs::NAME).format("name")
    }

    /// The `Age` column: time since creation, a string.
    pub(crate) const fn age() -> Column {
        Column::string("Age", docs::CREATION_TIMESTAMP)
    }

    /// Shown only with `-o wide` (priority 1).
    pub(crate) const fn wide(self) -> Column {
        Column { priority: 1, ..self }
    }

    pub(crate) const fn format(self, format: &'static str) -> Column {
        Column { format, ..self }
    }

    fn definition(&self) -> ColumnDefinition {
        ColumnDefinition {
            name: self.name.to_string(),
            type_: self.type_.to_string(),
            format: self.format.to_string(),
            description: self.description.to_string(),
            priority: self.priority,
        }
    }
}

/// Fills one row: the object and the current Unix time in, cells out.
pub(crate) type CellsFn = fn(&Value, i64) -> Vec<Value>;

/// The printer of one kind: its columns and how to fill them.
#[derive(Clone, Copy)]
pub(crate) struct Printer {
    pub(crate) columns: &'static [Column],
    pub(crate) cells: CellsFn,
}

/// `rest.NewDefaultTableConvertor`: kinds without a printer (Role,
/// ClusterRole, LimitRange, CustomResourceDefinition, CSIStorageCapacity,
/// and anything unknown).
const DEFAULT_COLUMNS: &[Column] =
    &[Column::name(), Column::typed("Created At", "date", docs::CREATION_TIMESTAMP)];

const DEFAULT: Printer = Printer {
    columns: DEFAULT_COLUMNS,
    cells: |obj, _| {
        cells![
            fields::name(obj),
            duration::created_at(fields::opt_str(obj, &["metadata", "creationTimestamp"]))
        ]
    },
};

fn printer(group: &str, kind: &str) -> Option<Printer> {
    match group {
        "" => match kind {
            "Pod" => Some(pod::PRINTER),
            "Event" => Some(events::PRINTER),
            "PersistentVolume" | "PersistentVolumeClaim" => storage::printer(group, kind),
            _ => core::printer(kind),
        },
        "events.k8s.io" if kind == "Event" => Some(events::EVENTS_V1_PRINTER),
        "apps" => apps::printer(kind),
        "batch" => batch::printer(kind),
        "rbac.authorization.k8s.io" => rbac::printer(kind),
        "storage.k8s.io" => storage::printer(group, kind),
        "networking.k8s.io" | "discovery.k8s.io" => networking::printer(group, kind),
        "policy" | "autoscaling" | "flowcontrol.apiserver.k8s.io" | "admissionregistration.k8s.io" => {
            policy::printer(group, kind)
        }
        _ => other::printer(group, kind),
    }
}

/// Whether the kind has its own printer (otherwise it gets the default
/// `Name`, `Created At` table).
pub fn has_printer(group: &str, kind: &str) -> bool {
    printer(group, kind).is_some()
}

/// The Table columns of a built-in kind (`group` is `""` for the core
/// group), or the default `Name`, `Created At` columns for kinds without a
/// printer. Custom resources use [`CustomColumns`] instead.
pub fn columns(group: &str, kind: &str) -> Vec<ColumnDefinition> {
    printer(group, kind).unwrap_or(DEFAULT).columns.iter().map(Column::definition).collect()
}

/// The cells of one object's row, one per entry of [`columns`], as JSON
/// values of the column's type (counts are numbers). `now_unix` is the
/// current time for ages and durations.
pub fn cells(group: &str, kind: &str, obj: &Value, now_unix: i64) -> Vec<Value> {
    (printer(group, kind).unwrap_or(DEFAULT).cells)(obj, now_unix)
}

/// The row `conditions` upstream attaches: a `Completed` condition for
/// pods that succeeded or failed, `None` otherwise.
pub fn row_conditions(group: &str, kind: &str, obj: &Value) -> Option<Vec<Value>> {
    (group.is_empty() && kind == "Pod").then(|| pod::row_conditions(obj)).flatten()
}

/// A count as a cell (`int64` in upstream).
pub(crate) fn count(n: usize) -> Value {
    Value::from(i64::try_from(n).unwrap_or(i64::MAX))
}

#[cfg(test)]
pub(crate) mod testing {
    use serde_json::Value;

    /// 2024-06-01T12:00:00Z, the clock of every printer test.
    pub(crate) const NOW: i64 = 1_717_243_200;

    /// An RFC 3339 timestamp `secs` before [`NOW`].
    pub(crate) fn ago(secs: i64) -> String {
        super::duration::format_rfc3339(NOW - secs)
    }

    pub(crate) fn row(group: &str, kind: &str, obj: &Value) -> Vec<Value> {
        let cells = super::cells(group, kind, obj, NOW);
        assert_eq!(cells.len(), super::columns(group, kind).len(), "{kind}: one cell per column");
        cells
    }

    pub(crate) fn names(group: &str, kind: &str) -> Vec<String> {
        super::columns(group, kind).into_iter().map(|c| c.name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn column_definitions_serialize_like_upstream() {
        let cols = serde_json::to_value(columns("", "Namespace")).unwrap();
        assert_eq!(cols[0]["name"], "Name");
        assert_eq!(cols[0]["type"], "string");
        assert_eq!(cols[0]["format"], "name");
        assert_eq!(cols[0]["priority"], 0);
        assert!(
            cols[0]["description"].as_str().unwrap().starts_with("Name must be unique within a namespace.")
        );
        assert_eq!(
            cols[1],
            json!({"name": "Status", "type": "string", "format": "", "description": "The status of the namespace", "priority": 0})
        );
    }

    #[test]
    fn kinds_without_a_printer_get_name_and_created_at() {
        for (group, kind) in [
            ("rbac.authorization.k8s.io", "Role"),
            ("rbac.authorization.k8s.io", "ClusterRole"),
            ("", "LimitRange"),
            ("apiextensions.k8s.io", "CustomResourceDefinition"),
            ("storage.k8s.io", "CSIStorageCapacity"),
            ("example.com", "Widget"),
        ] {
            assert!(!has_printer(group, kind), "{kind}");
            let cols = columns(group, kind);
            assert_eq!((cols[1].name.as_str(), cols[1].type_.as_str()), ("Created At", "date"));
        }
        let role = json!({"metadata": {"name": "reader", "creationTimestamp": "2024-05-01T10:00:00+02:00"}});
        assert_eq!(
            row("rbac.authorization.k8s.io", "Role", &role),
            vec![json!("reader"), json!("2024-05-01T08:00:00Z")]
        );
        assert_eq!(row("", "LimitRange", &json!({"metadata": {"name": "x"}}))[1], "0001-01-01T00:00:00Z");
    }

    #[test]
    fn every_printer_has_a_name_column_and_matching_cells() {
        let kinds = [
            ("", "Pod"),
            ("", "Namespace"),
            ("", "Service"),
            ("", "Node"),
            ("", "Event"),
            ("events.k8s.io", "Event"),
            ("apps", "Deployment"),
            ("batch", "CronJob"),
            ("networking.k8s.io", "Ingress"),
            ("discovery.k8s.io", "EndpointSlice"),
            ("autoscaling", "HorizontalPodAutoscaler"),
            ("policy", "PodDisruptionBudget"),
            ("certificates.k8s.io", "CertificateSigningRequest"),
            ("coordination.k8s.io", "Lease"),
            ("scheduling.k8s.io", "PriorityClass"),
            ("node.k8s.io", "RuntimeClass"),
            ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
            ("apiregistration.k8s.io", "APIService"),
        ];
        for (group, kind) in kinds {
            assert!(has_printer(group, kind), "{group}/{kind}");
            assert!(names(group, kind).iter().any(|n| n == "Name"), "{kind}");
            row(group, kind, &json!({}));
        }
    }
}
