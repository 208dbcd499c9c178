//! Events: `v1 Event` and `events.k8s.io/v1 Event` share upstream's one
//! printer (both are the internal `core.Event`); the latter's fields are
//! mapped back to the core names first.

use serde_json::Value;

use super::docs;
use super::fields::{get, int_at, is_set, name, opt_str, since_at, str_at};
use super::{Column, Printer};

const COLUMNS: &[Column] = &[
    Column::string("Last Seen", docs::EVENT_LAST_TIMESTAMP),
    Column::string("Type", docs::EVENT_TYPE),
    Column::string("Reason", docs::EVENT_REASON),
    Column::string("Object", docs::EVENT_INVOLVED_OBJECT),
    Column::string("Subobject", docs::EVENT_FIELD_PATH).wide(),
    Column::string("Source", docs::EVENT_SOURCE).wide(),
    Column::string("Message", docs::EVENT_MESSAGE),
    Column::string("First Seen", docs::EVENT_FIRST_TIMESTAMP).wide(),
    Column::string("Count", docs::EVENT_COUNT).wide(),
    Column::string("Name", docs::NAME).wide().format("name"),
];

pub(super) const PRINTER: Printer =
    Printer { columns: COLUMNS, cells: |o, now| event_cells(&Fields::core(o), now) };

pub(super) const EVENTS_V1_PRINTER: Printer =
    Printer { columns: COLUMNS, cells: |o, now| event_cells(&Fields::events_v1(o), now) };

/// Where each field the printer reads lives in one API version.
struct Fields<'a> {
    obj: &'a Value,
    involved: &'a str,
    message: &'a str,
    source: &'a str,
    first: &'a str,
    last: &'a str,
    count: &'a str,
}

impl<'a> Fields<'a> {
    fn core(obj: &'a Value) -> Self {
        Fields {
            obj,
            involved: "involvedObject",
            message: "message",
            source: "source",
            first: "firstTimestamp",
            last: "lastTimestamp",
            count: "count",
        }
    }

    fn events_v1(obj: &'a Value) -> Self {
        Fields {
            obj,
            involved: "regarding",
            message: "note",
            source: "deprecatedSource",
            first: "deprecatedFirstTimestamp",
            last: "deprecatedLastTimestamp",
            count: "deprecatedCount",
        }
    }

    fn str(&self, path: &[&str]) -> &'a str {
        str_at(self.obj, path)
    }
}

fn is_time_set(obj: &Value, field: &str) -> bool {
    super::fields::time_at(obj, &[field]).is_some()
}

fn event_cells(f: &Fields, now: i64) -> Vec<Value> {
    let o = f.obj;
    let first =
        if is_time_set(o, f.first) { since_at(o, &[f.first], now) } else { since_at(o, &["eventTime"], now) };
    let mut last = if is_time_set(o, f.last) { since_at(o, &[f.last], now) } else { first.clone() };
    let mut count = int_at(o, &[f.count]);
    if is_set(o, &["series"]) {
        last = since_at(o, &["series", "lastObservedTime"], now);
        count = int_at(o, &["series", "count"]);
    } else if count == 0 {
        count = 1;
    }

    let kind = f.str(&[f.involved, "kind"]).to_lowercase();
    let target = match f.str(&[f.involved, "name"]) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = first_non_empty(f.str(&[f.source, "component"]), f.str(&["reportingController"]));
    let host = first_non_empty(f.str(&[f.source, "host"]), f.str(&["reportingInstance"]));
    let source = if host.is_empty() { component.to_string() } else { format!("{component}, {host}") };
    let message = get(o, &[f.message]).and_then(Value::as_str).unwrap_or("").trim();
    cells![
        last,
        opt_str(o, &["type"]).unwrap_or(""),
        f.str(&["reason"]),
        target,
        f.str(&[f.involved, "fieldPath"]),
        source,
        message,
        first,
        count,
        name(o),
    ]
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::printers::testing::{ago, names, row};

    #[test]
    fn columns_match_upstream() {
        assert_eq!(
            names("", "Event"),
            [
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject",
                "Source",
                "Message",
                "First Seen",
                "Count",
                "Name"
            ]
        );
        let cols = crate::printers::columns("events.k8s.io", "Event");
        assert_eq!((cols[9].format.as_str(), cols[9].priority), ("name", 1));
    }

    #[test]
    fn core_event_with_timestamps_and_count() {
        let ev = json!({
            "metadata": {"name": "web-1.17a", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{app}"},
            "reason": "BackOff", "type": "Warning", "message": "Back-off restarting failed container\n",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": ago(3600), "lastTimestamp": ago(30), "count": 12
        });
        assert_eq!(
            row("", "Event", &ev),
            cells![
                "30s",
                "Warning",
                "BackOff",
                "pod/web-1",
                "spec.containers{app}",
                "kubelet, n1",
                "Back-off restarting failed container",
                "60m",
                12,
                "web-1.17a"
            ]
        );
    }

    #[test]
    fn new_style_event_falls_back_to_event_time_and_reporting_controller() {
        let ev = json!({
            "metadata": {"name": "e"}, "eventTime": "2024-06-01T11:59:00.123456Z",
            "involvedObject": {"kind": "Node"}, "reportingController": "lichen-scheduler", "reason": "Scheduled",
            "type": "Normal", "message": "ok"
        });
        let c = row("", "Event", &ev);
        assert_eq!(
            (&c[0], &c[3], &c[5], &c[7], &c[8]),
            (&json!("60s"), &json!("node"), &json!("lichen-scheduler"), &json!("60s"), &json!(1))
        );
    }

    #[test]
    fn events_k8s_io_series() {
        let ev = json!({
            "metadata": {"name": "e2"}, "eventTime": ago(7200), "regarding": {"kind": "Deployment", "name": "web"},
            "note": "Scaled up", "reason": "ScalingReplicaSet", "type": "Normal",
            "reportingController": "deployment-controller", "reportingInstance": "cp-1",
            "series": {"count": 4, "lastObservedTime": ago(10)}
        });
        assert_eq!(
            row("events.k8s.io", "Event", &ev),
            cells![
                "10s",
                "Normal",
                "ScalingReplicaSet",
                "deployment/web",
                "",
                "deployment-controller, cp-1",
                "Scaled up",
                "120m",
                4,
                "e2"
            ]
        );
    }
}
