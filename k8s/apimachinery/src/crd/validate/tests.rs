use proptest::prelude::*;
use serde_json::{Value, json};

use super::schema_problems;
use crate::crd::{default, prune, validate};

/// Messages for `value` at `spec.x` under a property schema `x`.
fn check(x: Value, value: Value) -> Vec<String> {
    let schema =
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"x": x}}}});
    schema_problems(&schema, &json!({"spec": {"x": value}}), "").iter().map(ToString::to_string).collect()
}

#[test]
fn types() {
    assert_eq!(
        check(json!({"type": "integer"}), json!("string")),
        [r#"spec.x: Invalid value: "string": spec.x in body must be of type integer: "string""#]
    );
    assert!(check(json!({"type": "integer"}), json!(3.0)).is_empty(), "integral floats are integers");
    assert_eq!(
        check(json!({"type": "integer"}), json!(1.5)),
        [r#"spec.x: Invalid value: "number": spec.x in body must be of type integer: "number""#]
    );
    assert!(check(json!({"type": "number"}), json!(2)).is_empty());
    assert_eq!(
        check(json!({"type": "boolean"}), json!({})),
        [r#"spec.x: Invalid value: "object": spec.x in body must be of type boolean: "object""#]
    );
    assert_eq!(
        check(json!({"type": "array", "items": {"type": "string"}}), json!(["a", 1])),
        [r#"spec.x[1]: Invalid value: "integer": spec.x[1] in body must be of type string: "integer""#]
    );
}

#[test]
fn nullable() {
    assert_eq!(
        check(json!({"type": "string"}), json!(null)),
        [r#"spec.x: Invalid value: "null": spec.x in body must be of type string: "null""#]
    );
    assert!(check(json!({"type": "string", "nullable": true}), json!(null)).is_empty());
}

#[test]
fn int_or_string() {
    let s = json!({"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]});
    assert!(check(s.clone(), json!(80)).is_empty());
    assert!(check(s.clone(), json!("http")).is_empty());
    let problems = check(s, json!(true));
    assert_eq!(
        problems[0],
        r#"spec.x: Invalid value: "boolean": spec.x in body must be of type integer,string: "boolean""#
    );
    assert!(problems.contains(
        &r#"<nil>: Invalid value: "": "spec.x" must validate at least one schema (anyOf)"#.to_string()
    ));
}

#[test]
fn required_and_properties() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["cronSpec"],
        "properties": {"cronSpec": {"type": "string"}}}}});
    let problems: Vec<String> =
        schema_problems(&schema, &json!({"spec": {}}), "").iter().map(ToString::to_string).collect();
    assert_eq!(problems, ["spec.cronSpec: Required value"]);
}

#[test]
fn additional_properties() {
    assert_eq!(
        check(
            json!({"type": "object", "additionalProperties": {"type": "string"}}),
            json!({"a": "b", "c": 1})
        ),
        [r#"spec.x.c: Invalid value: "integer": spec.x.c in body must be of type string: "integer""#]
    );
    assert_eq!(
        check(json!({"type": "object", "additionalProperties": false}), json!({"a": 1})),
        [r#"spec.x: Invalid value: "a": spec.x.a in body is a forbidden property"#]
    );
}

#[test]
fn enumerations() {
    assert_eq!(
        check(json!({"type": "string", "enum": ["a", "b"]}), json!("x")),
        [r#"spec.x: Unsupported value: "x": supported values: "a", "b""#]
    );
    assert_eq!(
        check(json!({"type": "integer", "enum": [1, 2]}), json!(3)),
        [r#"spec.x: Unsupported value: 3: supported values: "1", "2""#]
    );
    assert!(check(json!({"type": "number", "enum": [1, 2]}), json!(2.0)).is_empty());
}

#[test]
fn numeric_bounds() {
    let bounded = json!({"type": "integer", "minimum": 1, "maximum": 10});
    assert_eq!(
        check(bounded.clone(), json!(11)),
        ["spec.x: Invalid value: 11: spec.x in body should be less than or equal to 10"]
    );
    assert_eq!(
        check(bounded, json!(0)),
        ["spec.x: Invalid value: 0: spec.x in body should be greater than or equal to 1"]
    );
    let exclusive = json!({"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1.5, "exclusiveMaximum": true});
    assert_eq!(
        check(exclusive.clone(), json!(0)),
        ["spec.x: Invalid value: 0: spec.x in body should be greater than 0"]
    );
    assert_eq!(
        check(exclusive, json!(1.5)),
        ["spec.x: Invalid value: 1.5: spec.x in body should be less than 1.5"]
    );
    assert_eq!(
        check(json!({"type": "integer", "multipleOf": 5}), json!(12)),
        ["spec.x: Invalid value: 12: spec.x in body should be a multiple of 5"]
    );
    assert!(check(json!({"type": "number", "multipleOf": 0.5}), json!(2.5)).is_empty());
    assert_eq!(
        check(json!({"type": "number", "multipleOf": 0.5}), json!(2.3)),
        ["spec.x: Invalid value: 2.3: spec.x in body should be a multiple of 0.5"]
    );
}

#[test]
fn string_lengths_and_patterns() {
    assert_eq!(
        check(json!({"type": "string", "maxLength": 3}), json!("abcd")),
        ["spec.x: Too long: may not be more than 3 bytes"]
    );
    assert_eq!(
        check(json!({"type": "string", "minLength": 3}), json!("ab")),
        [r#"spec.x: Invalid value: "ab": spec.x in body should be at least 3 chars long"#]
    );
    assert_eq!(
        check(json!({"type": "string", "pattern": "^[a-z]+$"}), json!("A1")),
        [r#"spec.x: Invalid value: "A1": spec.x in body should match '^[a-z]+$'"#]
    );
    assert!(
        check(json!({"type": "string", "maxLength": 2}), json!("éé")).is_empty(),
        "lengths count characters"
    );
}

#[test]
fn array_sizes_and_uniqueness() {
    let s = json!({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3, "uniqueItems": true});
    assert_eq!(
        check(s.clone(), json!([1])),
        ["spec.x: Invalid value: 1: spec.x in body should have at least 2 items"]
    );
    assert_eq!(check(s.clone(), json!([1, 2, 3, 4])), ["spec.x: Too many: 4: must have at most 3 items"]);
    assert_eq!(
        check(s, json!([1, 1])),
        [r#"spec.x: Invalid value: "": spec.x in body shouldn't contain duplicates"#]
    );
}

#[test]
fn object_sizes() {
    let s = json!({"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1, "maxProperties": 2});
    assert_eq!(
        check(s.clone(), json!({})),
        ["spec.x: Invalid value: 0: spec.x in body should have at least 1 properties"]
    );
    assert_eq!(
        check(s, json!({"a": "", "b": "", "c": ""})),
        ["spec.x: Too many: 3: must have at most 2 items"]
    );
}

#[test]
fn formats() {
    assert_eq!(
        check(json!({"type": "string", "format": "date-time"}), json!("noon")),
        [r#"spec.x: Invalid value: "noon": spec.x in body must be of type date-time: "noon""#]
    );
    assert!(
        check(json!({"type": "string", "format": "date-time"}), json!("2024-01-01T00:00:00Z")).is_empty()
    );
    assert!(check(json!({"type": "string", "format": "no-such-format"}), json!("anything")).is_empty());
    assert!(
        check(json!({"type": "integer", "format": "int32"}), json!(1_i64 << 40)).is_empty(),
        "formats do not range-check"
    );
    assert_eq!(
        check(json!({"type": "string", "format": "uuid"}), json!("x")),
        [r#"spec.x: Invalid value: "x": spec.x in body must be of type uuid: "x""#]
    );
}

#[test]
fn combinators() {
    let all_of = json!({"type": "integer", "allOf": [{"minimum": 0}, {"maximum": 5}]});
    assert_eq!(
        check(all_of, json!(6)),
        [
            "spec.x: Invalid value: 6: spec.x in body should be less than or equal to 5",
            r#"<nil>: Invalid value: "": "spec.x" must validate all the schemas (allOf)"#,
        ]
    );
    let one_of = json!({"type": "string", "oneOf": [{"pattern": "^a"}, {"pattern": "b$"}]});
    assert!(check(one_of.clone(), json!("ax")).is_empty());
    assert_eq!(
        check(one_of, json!("ab")),
        [
            r#"<nil>: Invalid value: "": "spec.x" must validate one and only one schema (oneOf). Found 2 valid alternatives"#
        ]
    );
    assert_eq!(
        check(json!({"type": "string", "not": {"enum": ["no"]}}), json!("no")),
        [r#"<nil>: Invalid value: "": "spec.x" must not validate the schema (not)"#]
    );
}

#[test]
fn embedded_resources_need_type_meta() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}
    }}}});
    let obj = json!({"metadata": {"name": "a"}, "spec": {"template": {"kind": "bad kind"}}});
    let problems: Vec<String> = validate(&schema, &obj).iter().map(ToString::to_string).collect();
    assert_eq!(problems[0], "spec.template.apiVersion: Required value");
    assert!(problems[1].starts_with(r#"spec.template.kind: Invalid value: "bad kind": may have mixed case, but should otherwise match: a DNS-1035 label"#));
}

#[test]
fn list_sets_and_maps_are_unique() {
    let schema = json!({"type": "object", "properties": {
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}}
    }});
    let obj = json!({"metadata": {"name": "a"}, "tags": ["a", "b", "a", "a"],
        "ports": [{"name": "http", "port": 80}, {"name": "http", "port": 8080}]});
    let problems: Vec<String> = validate(&schema, &obj).iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            r#"ports[1]: Duplicate value: map[string]interface {}{"name":"http"}"#,
            r#"tags[2]: Duplicate value: "a""#,
        ]
    );
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z*/ 0-9é]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("(spec|x|items|apiVersion|kind|metadata|[a-z]{1,3})", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn rich_schema() -> Value {
    json!({"type": "object", "properties": {
        "spec": {"type": "object", "required": ["x"], "minProperties": 1, "properties": {
            "x": {"type": "integer", "minimum": -5, "maximum": 5, "multipleOf": 2, "default": 2},
            "s": {"type": "string", "pattern": "^[a-z]*$", "maxLength": 4, "format": "date-time", "enum": ["a", "b"]},
            "items": {"type": "array", "maxItems": 2, "uniqueItems": true, "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["k"], "items": {"type": "object", "properties": {"k": {"type": "string", "default": "d"}}}},
            "m": {"type": "object", "additionalProperties": {"type": "number", "nullable": true}},
            "e": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
            "io": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "n": {"type": "number", "not": {"enum": [0]}, "oneOf": [{"minimum": 1}, {"maximum": 3}]}
        }},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    }})
}

proptest! {
    #[test]
    fn processing_arbitrary_json_never_panics(mut obj in arbitrary_json(), schema in arbitrary_json()) {
        let rich = rich_schema();
        let mut copy = obj.clone();
        prune(&rich, &mut copy);
        default(&rich, &mut copy);
        let _ = validate(&rich, &copy);
        prune(&schema, &mut obj);
        default(&schema, &mut obj);
        let _ = validate(&schema, &obj);
    }

    #[test]
    fn pruning_twice_changes_nothing(mut obj in arbitrary_json()) {
        let rich = rich_schema();
        prune(&rich, &mut obj);
        let once = obj.clone();
        prune(&rich, &mut obj);
        prop_assert_eq!(once, obj);
    }
}
