use super::Node::*;
use super::*;

fn action(template: &str) -> Vec<Node> {
    match parse(template).unwrap().remove(0) {
        List(nodes) => nodes,
        other => panic!("not an action: {other:?}"),
    }
}

fn index(i: i64) -> Node {
    Array([
        Param { value: i, known: true, derived: false },
        Param { value: i + 1, known: true, derived: true },
        Param::default(),
    ])
}

#[test]
fn fields_indexes_and_escapes() {
    assert_eq!(action("{.spec.replicas}"), [Field("spec".into()), Field("replicas".into())]);
    assert_eq!(action("{.items[0].name}"), [Field("items".into()), index(0), Field("name".into())]);
    assert_eq!(
        action(r"{.metadata.annotations.kubernetes\.io/change-cause}")[2],
        Field("kubernetes.io/change-cause".into())
    );
    assert_eq!(action("{.a['b']}"), [Field("a".into()), Field("b".into())]);
    assert_eq!(action("{.a[*]}")[1], Array([Param::default(); 3]));
    assert_eq!(action("{.a.*}")[1], Wildcard);
    assert_eq!(action("{..name}"), [Recursive, Field("name".into())]);
    let Array(p) = &action("{.a[-1:]}")[1] else { panic!() };
    assert_eq!((p[0].value, p[0].known, p[1].known), (-1, true, false));
    assert!(matches!(&action("{.a[0,2]}")[1], Union(u) if u.len() == 2));
}

#[test]
fn filters() {
    let nodes = action(r#"{.status.conditions[?(@.type=="Ready")].status}"#);
    assert_eq!(
        nodes[2],
        Filter { left: vec![Field("type".into())], op: "==".into(), right: vec![Text("Ready".into())] }
    );
    assert_eq!(
        action("{.a[?(@.port>=8080)]}")[1],
        Filter { left: vec![Field("port".into())], op: ">=".into(), right: vec![Int(8080)] }
    );
    assert_eq!(
        action("{.a[?(@.x)]}")[1],
        Filter { left: vec![Field("x".into())], op: "exists".into(), right: vec![] }
    );
    assert_eq!(
        action("{.a[?(@.ok==true)]}")[1],
        Filter { left: vec![Field("ok".into())], op: "==".into(), right: vec![Bool(true)] }
    );
}

#[test]
fn text_around_actions() {
    assert_eq!(
        parse("n={.a} ").unwrap(),
        [Text("n=".into()), List(vec![Field("a".into())]), Text(" ".into())]
    );
    assert_eq!(unquote(r#""a\"b\n""#).as_deref(), Some("a\"b\n"));
    assert_eq!(unquote("'x'").as_deref(), Some("x"));
}

#[test]
fn syntax_errors() {
    for bad in ["{.a", "{.a[0}", "{.a[x]}", "{.a[?(@.b==1)}", "{#}", "{....a}"] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}
