use serde_json::json;

use crate::printers::CustomColumns;
use crate::printers::testing::{NOW, ago};

fn certificate() -> serde_json::Value {
    json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "web-tls", "creationTimestamp": ago(3 * 86_400)},
        "spec": {"secretName": "web-tls", "issuerRef": {"name": "letsencrypt"}, "dnsNames": ["a.example.com", "b.example.com"]},
        "status": {"conditions": [{"type": "Issuing", "status": "False"}, {"type": "Ready", "status": "True", "message": "up to date"}],
                   "notAfter": ago(-60 * 86_400), "revision": 3, "ratio": 2.9, "renewed": true}
    })
}

#[test]
fn cert_manager_style_columns() {
    let apc = json!([
        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
        {"name": "Secret", "type": "string", "jsonPath": ".spec.secretName"},
        {"name": "Issuer", "type": "string", "priority": 1, "jsonPath": ".spec.issuerRef.name"},
        {"name": "Status", "type": "string", "priority": 1, "description": "Ready message", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].message"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ]);
    let table = CustomColumns::new(&apc).unwrap();
    let cols = table.columns();
    assert_eq!(
        cols.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["Name", "Ready", "Secret", "Issuer", "Status", "Age"]
    );
    assert_eq!((cols[0].format.as_str(), cols[3].priority, cols[5].type_.as_str()), ("name", 1, "date"));
    assert_eq!(
        cols[2].description,
        "Custom resource definition column (in JSONPath format): .spec.secretName"
    );
    assert_eq!(cols[4].description, "Ready message");
    assert_eq!(
        table.cells(&certificate(), NOW),
        cells!["web-tls", "True", "web-tls", "letsencrypt", "up to date", "3d"]
    );
}

#[test]
fn typed_cells_and_missing_values() {
    let apc = json!([
        {"name": "Revision", "type": "integer", "jsonPath": ".status.revision"},
        {"name": "Ratio", "type": "integer", "jsonPath": ".status.ratio"},
        {"name": "Score", "type": "number", "jsonPath": ".status.revision"},
        {"name": "Renewed", "type": "boolean", "jsonPath": ".status.renewed"},
        {"name": "Expires", "type": "date", "jsonPath": ".status.notAfter"},
        {"name": "Hosts", "type": "string", "jsonPath": ".spec.dnsNames"},
        {"name": "First", "type": "string", "jsonPath": ".spec.dnsNames[*]"},
        {"name": "Missing", "type": "string", "jsonPath": ".status.nope"},
        {"name": "OutOfRange", "type": "string", "jsonPath": ".spec.dnsNames[7]"},
        {"name": "Mismatch", "type": "boolean", "jsonPath": ".spec.secretName"},
        {"name": "BadDate", "type": "date", "jsonPath": ".spec.secretName"}
    ]);
    let table = CustomColumns::new(&apc).unwrap();
    assert_eq!(
        table.cells(&certificate(), NOW),
        vec![
            json!("web-tls"),
            json!(3),
            json!(2),
            json!(3.0),
            json!(true),
            json!("<invalid>"),
            json!("[\"a.example.com\",\"b.example.com\"]"),
            json!("a.example.com"),
            json!(null),
            json!(null),
            json!(null),
            json!("<invalid>")
        ]
    );
    let mut nulls = certificate();
    nulls["status"]["notAfter"] = json!(null);
    nulls["spec"]["secretName"] = json!(null);
    let cells = table.cells(&nulls, NOW);
    assert_eq!((&cells[5], &cells[10], &cells[11]), (&json!(null), &json!(null), &json!(null)));
    let secret =
        CustomColumns::new(&json!([{"name": "S", "type": "string", "jsonPath": ".spec.secretName"}]))
            .unwrap();
    assert_eq!(secret.cells(&nulls, NOW)[1], "<no value>");
}

#[test]
fn future_dates_are_invalid_like_upstream() {
    let table = CustomColumns::new(&json!([{"name": "Soon", "type": "date", "jsonPath": ".at"}])).unwrap();
    let obj = |at: String| json!({"metadata": {"name": "x"}, "at": at});
    assert_eq!(table.cells(&obj(ago(-1)), NOW)[1], "0s");
    assert_eq!(table.cells(&obj(ago(-30)), NOW)[1], "<invalid>");
    assert_eq!(table.cells(&obj(ago(7200)), NOW)[1], "120m");
    assert_eq!(table.cells(&obj(String::new()), NOW)[1], "<unknown>");
}

#[test]
fn no_printer_columns_means_name_and_age() {
    for apc in [json!(null), json!([])] {
        let table = CustomColumns::new(&apc).unwrap();
        let cols = table.columns();
        assert_eq!(cols.len(), 2);
        assert_eq!((cols[1].name.as_str(), cols[1].type_.as_str()), ("Age", "date"));
        assert!(cols[1].description.starts_with("CreationTimestamp is a timestamp"));
        assert_eq!(table.cells(&certificate(), NOW), cells!["web-tls", "3d"]);
    }
}

#[test]
fn invalid_json_path_keeps_earlier_columns() {
    let apc = json!([
        {"name": "Ready", "type": "string", "jsonPath": ".status.ready"},
        {"name": "Broken", "type": "string", "jsonPath": ".status[?(@.x"},
        {"name": "After", "type": "string", "jsonPath": ".spec.after"}
    ]);
    let err = CustomColumns::new(&apc).unwrap_err();
    assert_eq!((err.column.as_str(), err.json_path.as_str()), ("Broken", ".status[?(@.x"));
    let names: Vec<String> = CustomColumns::lenient(&apc).columns().iter().map(|c| c.name.clone()).collect();
    assert_eq!(names, ["Name", "Ready"]);
    assert_eq!(crate::printers::custom_columns(&apc).len(), 2);
    let obj = json!({"metadata": {"name": "x"}, "status": {"ready": "yes"}});
    assert_eq!(crate::printers::custom_cells(&apc, &obj, NOW), cells!["x", "yes"]);
}
