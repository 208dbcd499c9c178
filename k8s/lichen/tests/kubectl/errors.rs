//! Bad input and stale state: malformed bodies, wrong apiVersion/kind,
//! invalid names, unknown fields, oversized bodies, patches that do not
//! apply, garbage and expired continue tokens.

use lichen_store::Store;

use crate::common::{Out, Server, setup};
use crate::manifests::configmap;

/// The status line of the one request a `-v=6` run made to `path_part`.
fn status_of(out: &Out, verb: &str, path_part: &str) -> String {
    let hits: Vec<_> =
        out.responses().into_iter().filter(|(v, url, _)| v == verb && url.contains(path_part)).collect();
    assert_eq!(hits.len(), 1, "{verb} {path_part} in {:#?}\n{}", out.responses(), out.stderr);
    hits[0].2.clone()
}

/// The last line kubectl printed to stderr (after the -v=6 log lines).
fn last_line(out: &Out) -> &str {
    out.stderr.lines().rev().find(|l| !l.is_empty()).unwrap_or("")
}

#[test]
fn malformed_bodies_are_rejected() {
    let Some((server, k)) = setup() else { return };
    // Malformed YAML never leaves kubectl.
    let yaml = k.run_stdin(&["create", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n");
    assert!(
        yaml.fails().starts_with("error: error parsing STDIN: error converting YAML to JSON: yaml: line "),
        "{}",
        yaml.stderr
    );
    // Malformed JSON, a JSON array and a mismatched kind reach the server.
    let path = "/api/v1/namespaces/default/configmaps";
    for (name, body) in [
        ("truncated", r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"#),
        ("array", "[1,2]"),
        ("mismatch", r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"mismatch"}}"#),
    ] {
        let file = server.write(&format!("{name}.json"), body);
        let out = k.run(&["create", "--raw", path, "-f", file.to_str().unwrap(), "-v=6"]);
        out.fails();
        assert_eq!(status_of(&out, "POST", path), "400 Bad Request", "{name}");
        assert!(last_line(&out).starts_with("Error from server (BadRequest): "), "{name}: {}", out.stderr);
    }
    k.run(&["get", "cm", "mismatch", "--ignore-not-found", "-o", "name"]).prints("");
}

/// kubectl finds no mapping for the kind and says so before sending
/// anything (upstream serves /openapi/v2, which kubectl consults for kinds
/// missing from v3).
#[test]
fn wrong_api_version_or_kind_is_a_mapping_error() {
    let Some((_server, k)) = setup() else { return };
    let v2 = k.run_stdin(&["create", "-f", "-"], "apiVersion: v2\nkind: ConfigMap\nmetadata:\n  name: x1\n");
    assert_eq!(
        v2.fails(),
        "error: resource mapping not found for name: \"x1\" namespace: \"\" from \"STDIN\": no matches for kind \"ConfigMap\" in version \"v2\"\nensure CRDs are installed first\n"
    );
    let kind =
        k.run_stdin(&["create", "-f", "-"], "apiVersion: v1\nkind: ConfigMapp\nmetadata:\n  name: x1\n");
    assert!(kind.fails().contains(r#"no matches for kind "ConfigMapp" in version "v1""#), "{}", kind.stderr);
}

#[test]
fn wrong_api_version_without_client_validation() {
    let Some((_server, k)) = setup() else { return };
    let v2 = k.run_stdin(
        &["create", "-f", "-", "--validate=false"],
        "apiVersion: v2\nkind: ConfigMap\nmetadata:\n  name: x1\n",
    );
    assert!(v2.fails().contains(r#"no matches for kind "ConfigMap" in version "v2""#), "{}", v2.stderr);
}

#[test]
fn invalid_names_are_422_with_the_field() {
    let Some((_server, k)) = setup() else { return };
    let cm = k.run_stdin(
        &["create", "-f", "-", "-v=6"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n",
    );
    cm.fails();
    assert_eq!(status_of(&cm, "POST", "/configmaps"), "422 Unprocessable Entity");
    assert_eq!(
        last_line(&cm),
        r#"The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#
    );
    let ns = k.run_stdin(&["create", "-f", "-"], "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a.b\n");
    assert_eq!(
        ns.fails().trim_end(),
        r#"The Namespace "a.b" is invalid: metadata.name: Invalid value: "a.b": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#
    );
}

#[test]
fn unknown_fields_are_400_under_strict_validation() {
    let Some((_server, k)) = setup() else { return };
    let top = k.run_stdin(
        &["create", "-f", "-", "-v=6"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\nbogus: 1\n",
    );
    top.fails();
    let post = top.responses().into_iter().find(|(v, _, _)| v == "POST").unwrap();
    assert!(post.1.contains("fieldValidation=Strict"), "{post:?}");
    assert_eq!(post.2, "400 Bad Request");
    let line = last_line(&top);
    assert!(line.starts_with(r#"Error from server (BadRequest): error when creating "STDIN": "#), "{line}");
    assert!(line.ends_with(r#"strict decoding error: unknown field "bogus""#), "{line}");
    let nested = crate::manifests::deployment("d", 1, &[("c", "nginx")])
        .replace("image: nginx", "image: nginx\n        imagee: typo");
    let out = k.run_stdin(&["create", "-f", "-"], &nested);
    assert!(
        out.fails()
            .trim_end()
            .ends_with(r#"strict decoding error: unknown field "spec.template.spec.containers[0].imagee""#),
        "{}",
        out.stderr
    );
    k.run(&["get", "cm,deploy", "--ignore-not-found", "-o", "name"]).prints("");
}

#[test]
fn bodies_over_3_mib_are_413() {
    let Some((server, k)) = setup() else { return };
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#,
        "x".repeat(3 * 1024 * 1024)
    );
    let file = server.write("big.json", &big);
    let path = "/api/v1/namespaces/default/configmaps";
    let out = k.run(&["create", "--raw", path, "-f", file.to_str().unwrap(), "-v=6"]);
    out.fails();
    assert_eq!(status_of(&out, "POST", path), "413 Request Entity Too Large");
    assert!(
        last_line(&out).starts_with(
            "Error from server (RequestEntityTooLarge): Request entity too large: limit is 3145728"
        ),
        "{}",
        last_line(&out)
    );
    k.run(&["get", "cm", "big", "--ignore-not-found", "-o", "name"]).prints("");
}

#[test]
fn json_patch_that_does_not_apply_is_422_and_changes_nothing() {
    let Some((_server, k)) = setup() else { return };
    k.run_stdin(&["create", "-f", "-"], &configmap("c1", "default", "x", "1")).ok();
    let before = k.run(&["get", "cm", "c1", "-o", "jsonpath={.metadata.resourceVersion}"]).ok().to_string();
    for patch in [
        r#"[{"op":"test","path":"/data/a","value":"2"},{"op":"replace","path":"/data/a","value":"3"}]"#,
        r#"[{"op":"remove","path":"/data/missing"}]"#,
        r#"[{"op":"replace","path":"/nope/deeper","value":"1"}]"#,
    ] {
        let out = k.run(&["patch", "cm", "c1", "--type", "json", "-p", patch, "-v=6"]);
        out.fails();
        assert_eq!(status_of(&out, "PATCH", "/configmaps/c1"), "422 Unprocessable Entity", "{patch}");
    }
    // Not a JSON patch at all: 400.
    let garbage = k.run(&["patch", "cm", "c1", "--type", "json", "-p", r#"{"op":"add"}"#, "-v=6"]);
    garbage.fails();
    assert_eq!(status_of(&garbage, "PATCH", "/configmaps/c1"), "400 Bad Request");
    k.run(&["get", "cm", "c1", "-o", "jsonpath={.data.a} {.metadata.resourceVersion}"])
        .prints(&format!("1 {before}"));
}

/// Upstream's exact wording where Lichen's differs (each a small fix).
#[test]
fn error_messages_match_upstream() {
    let Some((server, k)) = setup() else { return };
    let mut wrong = Vec::new();
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#,
        "x".repeat(3 << 20)
    );
    let file = server.write("big.json", &big);
    let out =
        k.run(&["create", "--raw", "/api/v1/namespaces/default/configmaps", "-f", file.to_str().unwrap()]);
    let want = "Error from server (RequestEntityTooLarge): Request entity too large: limit is 3145728";
    if out.stderr.trim_end() != want {
        wrong.push(format!("413:\n  want {want}\n  got  {}", out.stderr.trim_end()));
    }
    let out = k.run_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\nbogus: 1\n",
    );
    let want = r#"Error from server (BadRequest): error when creating "STDIN": ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "bogus""#;
    if out.stderr.trim_end() != want {
        wrong.push(format!("strict:\n  want {want}\n  got  {}", out.stderr.trim_end()));
    }
    k.run_stdin(&["create", "-f", "-"], &configmap("c1", "default", "x", "1")).ok();
    let out = k.run(&[
        "patch",
        "cm",
        "c1",
        "--type",
        "json",
        "-p",
        r#"[{"op":"test","path":"/data/a","value":"2"}]"#,
    ]);
    let want = "The request is invalid: the server rejected our request due to an error in our request";
    if out.stderr.trim_end() != want {
        wrong.push(format!("json patch:\n  want {want}\n  got  {}", out.stderr.trim_end()));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Continue tokens: garbage is 400; a token whose revision has been
/// compacted away is 410 Expired, as are lists and watches at compacted
/// revisions.
#[test]
fn garbage_and_expired_continue_tokens() {
    let Some((mut server, k)) = setup() else { return };
    let docs: Vec<String> = (0..3).map(|i| configmap(&format!("c{i}"), "default", "x", "1")).collect();
    k.run_stdin(&["create", "-f", "-"], &docs.join("---\n")).ok();
    let garbage = k.run(&["get", "--raw", "/api/v1/namespaces/default/configmaps?limit=1&continue=garbage"]);
    let err = garbage.fails();
    assert!(err.starts_with("Error from server (BadRequest): "), "{err}");
    assert!(err.contains("continue key is not valid"), "{err}");

    let page = k.run(&["get", "--raw", "/api/v1/namespaces/default/configmaps?limit=1"]);
    let token =
        page.ok().split(r#""continue":""#).nth(1).and_then(|r| r.split('"').next()).unwrap().to_string();
    let rv = page
        .stdout
        .split(r#""resourceVersion":""#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    // The token works, then history before a later write is compacted.
    let next = format!("/api/v1/namespaces/default/configmaps?limit=1&continue={token}");
    assert!(k.run(&["get", "--raw", &next]).ok().contains(r#""name":"c1""#));
    k.run(&["label", "cm", "c0", "later=1"]).ok();
    compact_to_current(&mut server);
    let k = server.kubectl().unwrap();

    let expired = k.run(&["get", "--raw", &next]);
    let err = expired.fails();
    assert!(
        err.starts_with("Error from server (Expired): The provided continue parameter is too old to display a consistent list result."),
        "{err}"
    );
    let exact =
        format!("/api/v1/namespaces/default/configmaps?resourceVersion={rv}&resourceVersionMatch=Exact");
    let old = k.run(&["get", "--raw", &exact]);
    assert!(old.fails().starts_with("Error from server (Expired): "), "{}", old.stderr);
    let watch =
        format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=5");
    let w = k.run(&["get", "--raw", &watch]);
    let line = w.stdout.lines().next().unwrap_or("");
    for want in [r#""type":"ERROR""#, r#""kind":"Status""#, r#""reason":"Expired""#, r#""code":410"#] {
        assert!(line.contains(want), "{want} in {}{}", w.stdout, w.stderr);
    }
    // A fresh list still works.
    k.run(&["get", "cm", "-l", "app=x", "-o", "name"]).prints("configmap/c0\nconfigmap/c1\nconfigmap/c2");
}

/// Stops the server, compacts its datastore to the current revision (the
/// server has no compactor of its own yet), and starts it again.
fn compact_to_current(server: &mut Server) {
    server.stop();
    {
        let store = lichen_store::SqliteStore::open(server.data.join("db/state.db")).unwrap();
        let current = store.current_revision().unwrap();
        store.compact(current).unwrap();
        assert_eq!(store.compacted_revision().unwrap(), current);
    }
    server.restart();
}
