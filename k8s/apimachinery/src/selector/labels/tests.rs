use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn parse_err(s: &str) -> String {
    Selector::parse(s).expect_err(s).to_string()
}

#[test]
fn parses_every_operator_and_sorts_by_key() {
    let selector = Selector::parse("z=1, y==2 ,x!=3,w in (b,a),v notin (c),u,!t,s>4,r<5").expect("parses");
    assert_eq!(selector.to_string(), "r<5,s>4,!t,u,v notin (c),w in (a,b),x!=3,y==2,z=1");
    let ops: Vec<Operator> =
        selector.requirements().unwrap_or_default().iter().map(|r| r.operator()).collect();
    use Operator::*;
    assert_eq!(
        ops,
        vec![LessThan, GreaterThan, DoesNotExist, Exists, NotIn, In, NotEquals, DoubleEquals, Equals]
    );
}

#[test]
fn whitespace_is_tolerated() {
    let tight = Selector::parse("a in (x,y),b!=c,!d").expect("parses");
    let loose = Selector::parse("  a   in(x, y) ,\tb != c ,\n! d ").expect("parses");
    assert_eq!(tight, loose);
}

#[test]
fn empty_input_is_everything() {
    for s in ["", "   "] {
        let selector = Selector::parse(s).expect("parses");
        assert!(selector.is_empty());
        assert!(selector.matches(&labels(&[])));
    }
}

#[test]
fn matching_is_an_and() {
    let selector = Selector::parse("app=web,tier notin (db),!canary").expect("parses");
    assert!(selector.matches(&labels(&[("app", "web")])));
    assert!(selector.matches(&labels(&[("app", "web"), ("tier", "front")])));
    assert!(!selector.matches(&labels(&[("app", "web"), ("tier", "db")])));
    assert!(!selector.matches(&labels(&[("app", "web"), ("canary", "")])));
    assert!(!selector.matches(&labels(&[("app", "api")])));
}

#[test]
fn objects_are_matched_on_metadata_labels() {
    let selector = Selector::parse("app=web").expect("parses");
    assert!(selector.matches_object(&json!({"metadata": {"labels": {"app": "web"}}})));
    assert!(!selector.matches_object(&json!({"metadata": {"name": "x"}})));
    assert!(Selector::parse("!app").expect("parses").matches_object(&json!({"metadata": {}})));
}

#[test]
fn nothing_matches_nothing_and_is_not_empty() {
    let nothing = Selector::nothing();
    assert!(!nothing.is_empty());
    assert!(!nothing.matches(&labels(&[])));
    assert_eq!(nothing.to_string(), "");
    assert!(nothing.with(Requirement::new("a", Operator::Exists, vec![]).expect("valid")).is_nothing());
}

#[test]
fn from_pairs_and_exact_match() {
    let selector = Selector::from_pairs([("b", "2"), ("a", "1")]);
    assert_eq!(selector.to_string(), "a=1,b=2");
    assert_eq!(selector.requires_exact_match("b"), Some("2"));
    assert_eq!(Selector::parse("a in (x,y)").expect("parses").requires_exact_match("a"), None);
    assert!(Selector::from_pairs(Vec::<(String, String)>::new()).is_empty());
}

#[test]
fn syntax_errors_match_upstream() {
    assert_eq!(parse_err("a,"), "found '', expected: identifier after ','");
    assert_eq!(parse_err("a=b c"), "found 'c', expected: ',' or 'end of string'");
    assert_eq!(
        parse_err("a b"),
        "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
    );
    assert_eq!(parse_err("=a"), "found '=', expected: !, identifier, or 'end of string'");
    assert_eq!(parse_err("!a=b"), "found '=', expected: ',' or 'end of string'");
    assert_eq!(parse_err("!"), "unable to parse requirement: found '', expected: identifier");
    assert_eq!(
        parse_err("a ("),
        "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"
    );
    assert_eq!(
        parse_err("a gt 3"),
        "unable to parse requirement: found 'gt', expected: in, notin, =, ==, !=, gt, lt"
    );
    assert_eq!(parse_err("a in"), "unable to parse requirement: found '' expected: '('");
    assert_eq!(
        parse_err("a in (="),
        "unable to parse requirement: found '=', expected: ',', ')' or identifier"
    );
    assert_eq!(parse_err("a in (b c)"), "unable to parse requirement: found 'c', expected: ',' or ')'");
    assert_eq!(parse_err("a=)"), "unable to parse requirement: found ')', expected: identifier");
}

#[test]
fn invalid_keys_and_values_match_upstream() {
    assert_eq!(
        parse_err("app:monolith"),
        "unable to parse requirement: <nil>: Invalid value: \"app:monolith\": name part must consist of \
         alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. \
         'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    );
    assert_eq!(
        parse_err("app=demo-{nginx}"),
        "unable to parse requirement: values[0][app]: Invalid value: \"demo-{nginx}\": a valid label must be an \
         empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an \
         alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is \
         '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    );
    assert_eq!(
        parse_err("environment>qa"),
        "unable to parse requirement: values[0]: Invalid value: \"qa\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
}

#[test]
fn prefixed_keys() {
    let selector = Selector::parse("app.kubernetes.io/name=web").expect("parses");
    assert!(selector.matches(&labels(&[("app.kubernetes.io/name", "web")])));
    assert!(
        parse_err("Example.com/a=b")
            .contains("<nil>: Invalid value: \"Example.com/a\": prefix part a lowercase RFC 1123")
    );
}

fn key() -> impl Strategy<Value = String> {
    let name = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?";
    let prefix = proptest::option::of("[a-z0-9]([-a-z0-9]{0,6}[a-z0-9])?(\\.[a-z0-9]{1,4}){0,2}");
    (prefix, prop_oneof![Just("in".to_owned()), Just("notin".to_owned()), name.prop_map(String::from)])
        .prop_map(|(prefix, name)| match prefix {
            Some(prefix) => format!("{prefix}/{name}"),
            None => name,
        })
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("in".to_owned()),
        "[A-Za-z0-9]([-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?".prop_map(String::from),
    ]
}

fn requirement() -> impl Strategy<Value = Requirement> {
    // Distinct values: upstream prints duplicates back, and its parser
    // rejects `(,,)`.
    let set =
        || proptest::collection::btree_set(value(), 1..4).prop_map(|s| s.into_iter().collect::<Vec<_>>());
    prop_oneof![
        (key(), set()).prop_map(|(k, v)| (k, Operator::In, v)),
        (key(), set()).prop_map(|(k, v)| (k, Operator::NotIn, v)),
        (key(), value()).prop_map(|(k, v)| (k, Operator::Equals, vec![v])),
        (key(), value()).prop_map(|(k, v)| (k, Operator::DoubleEquals, vec![v])),
        (key(), value()).prop_map(|(k, v)| (k, Operator::NotEquals, vec![v])),
        key().prop_map(|k| (k, Operator::Exists, vec![])),
        key().prop_map(|k| (k, Operator::DoesNotExist, vec![])),
        (key(), 0i64..1000).prop_map(|(k, n)| (k, Operator::GreaterThan, vec![n.to_string()])),
        (key(), 0i64..1000).prop_map(|(k, n)| (k, Operator::LessThan, vec![n.to_string()])),
    ]
    .prop_map(|(k, op, values)| Requirement::new(k, op, values).expect("generated requirements are valid"))
}

fn label_set() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map(
        key(),
        prop_oneof![value(), (0i64..1000).prop_map(|n| n.to_string())],
        0..6,
    )
}

proptest! {
    #[test]
    fn display_of_a_parsed_selector_parses_back_equal(
        requirements in proptest::collection::vec(requirement(), 0..6),
        sets in proptest::collection::vec(label_set(), 0..8),
    ) {
        let built = requirements.into_iter().fold(Selector::everything(), Selector::with);
        let parsed = Selector::parse(&built.to_string()).expect("display parses");
        let reparsed = Selector::parse(&parsed.to_string()).expect("display parses");
        prop_assert_eq!(&reparsed, &parsed);
        for set in &sets {
            prop_assert_eq!(parsed.matches(set), built.matches(set));
        }
    }

    #[test]
    fn arbitrary_input_never_panics(input in "[ a-z0-9=!(),<>.\\-/_]{0,40}") {
        if let Ok(selector) = Selector::parse(&input) {
            prop_assert_eq!(Selector::parse(&selector.to_string()), Ok(selector));
        }
    }
}
