//! A CustomResourceDefinition with printer columns, and its objects.

use std::time::Duration;

use crate::common::{eventually, is_age, setup, table};

const WIDGETS: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: What the widget should be.
            properties:
              size:
                type: integer
                description: How big.
              color:
                type: string
    additionalPrinterColumns:
    - name: Size
      type: integer
      jsonPath: .spec.size
    - name: Color
      type: string
      jsonPath: .spec.color
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
";

fn widget(name: &str, size: u32, color: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\nspec:\n  size: {size}\n  color: {color}\n"
    )
}

#[test]
fn custom_resources_with_printer_columns() {
    let Some((_server, k)) = setup() else { return };
    k.run_stdin(&["apply", "-f", "-"], WIDGETS)
        .prints("customresourcedefinition.apiextensions.k8s.io/widgets.example.com created");
    k.run(&["wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=20s"])
        .prints("customresourcedefinition.apiextensions.k8s.io/widgets.example.com condition met");
    let res = k.run(&["api-resources", "--api-group=example.com"]);
    assert_eq!(table(res.ok())[1], ["widgets", "wd", "example.com/v1", "true", "Widget"]);
    let explain = k.run(&["explain", "widget.spec"]);
    assert!(explain.ok().contains("  size\t<integer>\n    How big.\n"), "{}", explain.stdout);

    k.run_stdin(&["create", "-f", "-"], &widget("w1", 3, "blue")).prints("widget.example.com/w1 created");
    let rows = table(k.run(&["get", "widgets"]).ok());
    assert_eq!(rows[0], ["NAME", "SIZE", "COLOR", "AGE"]);
    assert_eq!(rows[1][..3], ["w1", "3", "blue"]);
    assert!(is_age(&rows[1][3]), "{rows:?}");
    k.run(&["get", "wd", "w1", "-o", "jsonpath={.spec.size} {.metadata.generation}"]).prints("3 1");

    // Custom resources take merge and JSON patches, not strategic ones.
    k.run(&["patch", "widget", "w1", "--type", "merge", "-p", r#"{"spec":{"size":5}}"#])
        .prints("widget.example.com/w1 patched");
    k.run(&[
        "patch",
        "widget",
        "w1",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/color","value":"red"}]"#,
    ])
    .prints("widget.example.com/w1 patched");
    k.run(&["get", "wd", "w1", "-o", "jsonpath={.spec.size} {.spec.color} {.metadata.generation}"])
        .prints("5 red 3");
    let smp = k.run(&["patch", "widget", "w1", "-p", r#"{"spec":{"size":6}}"#]);
    // kubectl words the server's 415 itself.
    assert!(
        smp.fails().contains(
            "application/strategic-merge-patch+json is not supported by example.com/v1, Kind=Widget"
        ),
        "{}",
        smp.stderr
    );
    // Unknown fields are rejected under Strict, pruned otherwise.
    let strict = k.run_stdin(
        &["create", "-f", "-"],
        &widget("w2", 1, "x").replace("  size: 1\n", "  size: 1\n  bogus: 1\n"),
    );
    assert!(strict.fails().contains(r#"unknown field "spec.bogus""#), "{}", strict.stderr);
    k.run_stdin(
        &["create", "-f", "-", "--validate=false"],
        &widget("w3", 1, "x").replace("  size: 1\n", "  size: 1\n  bogus: 1\n"),
    )
    .prints("widget.example.com/w3 created");
    k.run(&["get", "wd", "w3", "-o", "jsonpath={.spec}"]).prints(r#"{"color":"x","size":1}"#);
    // Schema types are enforced.
    let invalid = k.run_stdin(&["create", "-f", "-"], &widget("w4", 1, "x").replace("size: 1", "size: big"));
    assert!(invalid.fails().contains(r#"The Widget "w4" is invalid"#), "{}", invalid.stderr);

    k.run(&["delete", "widget", "w1"]).prints(r#"widget.example.com "w1" deleted from default namespace"#);
    let gone = k.run(&["get", "widget", "w1"]);
    assert_eq!(
        gone.fails().trim_end(),
        r#"Error from server (NotFound): widgets.example.com "w1" not found"#
    );

    k.run(&["delete", "crd", "widgets.example.com"])
        .prints(r#"customresourcedefinition.apiextensions.k8s.io "widgets.example.com" deleted"#);
    // kubectl may still have the resource in its discovery cache: then the
    // list itself is refused.
    assert!(eventually(Duration::from_secs(20), || {
        let e = k.run(&["get", "widgets"]).stderr;
        e.contains(r#"the server doesn't have a resource type "widgets""#)
            || e.contains("the server could not find the requested resource")
    }));
    assert!(
        k.run(&["get", "crd"]).ok().trim().is_empty() || !k.run(&["get", "crd"]).stdout.contains("widgets")
    );
}
