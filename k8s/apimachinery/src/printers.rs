//! (placeholder until the printers land) The default printer only.

use serde_json::{Value, json};

pub fn columns(_group: &str, _kind: &str) -> Vec<Value> {
    vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}),
        json!({"name": "Created At", "type": "date", "format": "", "description": "", "priority": 0}),
    ]
}

pub fn cells(_group: &str, _kind: &str, obj: &Value, _now: i64) -> Vec<Value> {
    vec![obj["metadata"]["name"].clone(), obj["metadata"]["creationTimestamp"].clone()]
}

pub fn row_conditions(_group: &str, _kind: &str, _obj: &Value) -> Option<Value> {
    None
}
