use proptest::prelude::*;
use serde_json::json;

use super::*;

fn terms(s: &str) -> Vec<(String, FieldOperator, String)> {
    FieldSelector::parse(s)
        .expect(s)
        .terms()
        .iter()
        .map(|t| (t.field.clone(), t.operator, t.value.clone()))
        .collect()
}

fn parse_err(s: &str) -> String {
    FieldSelector::parse(s).expect_err(s).to_string()
}

#[test]
fn operators_and_sorting() {
    use FieldOperator::*;
    assert_eq!(
        terms("status.phase!=Running,metadata.name==web,spec.nodeName="),
        vec![
            ("metadata.name".into(), Equals, "web".into()),
            ("spec.nodeName".into(), Equals, String::new()),
            ("status.phase".into(), NotEquals, "Running".into()),
        ]
    );
    assert!(FieldSelector::parse("").expect("parses").is_empty());
    assert!(FieldSelector::parse(",,").expect("parses").is_empty());
}

#[test]
fn display_escapes_and_normalises_double_equals() {
    let selector = FieldSelector::parse(r"b==x\,y,a!=\=\\").expect("parses");
    assert_eq!(selector.terms()[0].value, r"=\");
    assert_eq!(selector.terms()[1].value, "x,y");
    assert_eq!(selector.to_string(), r"a!=\=\\,b=x\,y");
}

#[test]
fn first_operator_wins_and_field_is_literal() {
    assert_eq!(terms("a=!b"), vec![("a".into(), FieldOperator::Equals, "!b".into())]);
    assert_eq!(terms("=b"), vec![(String::new(), FieldOperator::Equals, "b".into())]);
    assert_eq!(terms("a b=c"), vec![("a b".into(), FieldOperator::Equals, "c".into())]);
}

#[test]
fn errors_match_upstream() {
    assert_eq!(parse_err("a=b,c"), "invalid selector: 'a=b,c'; can't understand 'c'");
    assert_eq!(parse_err("a=b=c"), "invalid field selector: unescaped character in value: 61");
    assert_eq!(parse_err(r"a=b\x"), r"invalid field selector: invalid escape sequence: \x");
    assert_eq!(parse_err(r"a=b\"), r"invalid field selector: invalid escape sequence: \");
}

#[test]
fn exact_match() {
    let selector = FieldSelector::parse("metadata.name=web,spec.nodeName!=n1").expect("parses");
    assert_eq!(selector.requires_exact_match("metadata.name"), Some("web"));
    assert_eq!(selector.requires_exact_match("spec.nodeName"), None);
    assert_eq!(FieldSelector::one_term_equal("metadata.name", "a,b").to_string(), r"metadata.name=a\,b");
}

#[test]
fn matches_checks_the_kind_first() {
    let pod = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {}});
    let unscheduled = FieldSelector::parse("spec.nodeName=").expect("parses");
    assert_eq!(unscheduled.matches("", "Pod", &pod), Ok(true));
    let err = FieldSelector::parse("spec.foo=x").expect("parses").matches("", "Pod", &pod).unwrap_err();
    assert_eq!(err.to_string(), "field label not supported: spec.foo");
}

fn field() -> impl Strategy<Value = String> {
    "[a-z]{1,5}(\\.[a-zA-Z]{1,5}){0,2}".prop_map(String::from)
}

fn term() -> impl Strategy<Value = FieldTerm> {
    let operator = prop_oneof![Just(FieldOperator::Equals), Just(FieldOperator::NotEquals)];
    (field(), operator, "[a-z=,!\\\\ é]{0,6}").prop_map(|(field, operator, value)| FieldTerm {
        field,
        operator,
        value: value.to_owned(),
    })
}

proptest! {
    #[test]
    fn escaping_round_trips(value in "\\PC{0,12}") {
        prop_assert_eq!(unescape_value(&escape_value(&value)), Ok(value));
    }

    #[test]
    fn display_of_a_parsed_selector_parses_back_equal(terms in proptest::collection::vec(term(), 0..5)) {
        let written: Vec<String> = terms.iter().map(ToString::to_string).collect();
        let parsed = FieldSelector::parse(&written.join(",")).expect("written terms parse");
        let mut expected = terms.clone();
        let mut got = parsed.terms().to_vec();
        expected.sort_by_key(ToString::to_string);
        got.sort_by_key(ToString::to_string);
        prop_assert_eq!(got, expected);
        let reparsed = FieldSelector::parse(&parsed.to_string()).expect("display parses");
        prop_assert_eq!(FieldSelector::parse(&reparsed.to_string()), Ok(reparsed));
    }

    #[test]
    fn arbitrary_input_never_panics(input in "[a-z.=!,\\\\]{0,20}") {
        let _ = FieldSelector::parse(&input);
    }
}
