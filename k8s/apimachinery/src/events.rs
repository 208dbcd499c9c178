//! The two Event APIs share one storage upstream: `events.k8s.io/v1` Events
//! are `v1` Events under other field names. Lichen stores the `v1` form and
//! converts at the API boundary, as upstream's conversion functions do.

use serde_json::{Map, Value};

/// `v1` field <-> `events.k8s.io/v1` field.
const RENAMED: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

fn rename(obj: &Value, api_version: &str, to_events: bool) -> Value {
    let Value::Object(src) = obj else { return obj.clone() };
    let mut out = Map::new();
    for (k, v) in src {
        let renamed = RENAMED
            .iter()
            .find(|(core, events)| if to_events { core == k } else { events == k })
            .map(|(core, events)| if to_events { *events } else { *core });
        out.insert(renamed.unwrap_or(k).to_string(), v.clone());
    }
    out.insert("apiVersion".into(), Value::from(api_version));
    out.insert("kind".into(), Value::from("Event"));
    Value::Object(out)
}

/// A stored (`v1`) Event as `events.k8s.io/v1` shows it.
pub fn to_events_v1(core: &Value) -> Value {
    rename(core, "events.k8s.io/v1", true)
}

/// An `events.k8s.io/v1` Event in the stored (`v1`) form.
pub fn to_core_v1(events: &Value) -> Value {
    rename(events, "v1", false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_renames_the_fields() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "m", "reason": "Started",
            "source": {"component": "kubelet"}, "count": 2, "reportingComponent": "kubelet", "type": "Normal"});
        let ev = to_events_v1(&core);
        assert_eq!(ev["apiVersion"], "events.k8s.io/v1");
        assert_eq!(ev["regarding"]["name"], "p");
        assert_eq!(ev["note"], "m");
        assert_eq!(ev["deprecatedCount"], 2);
        assert_eq!(ev["reportingController"], "kubelet");
        assert_eq!(ev["reason"], "Started");
        assert_eq!(to_core_v1(&ev), core);
    }
}
