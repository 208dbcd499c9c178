//! `get` (output formats, selectors, Tables, watch, paging), `describe`,
//! `wait --for=delete`.

use std::time::Duration;

use crate::common::{Kubectl, is_age, setup, table};
use crate::manifests::{configmap, deployment, namespace};

/// `c1` (app=x) in `default`, `c2` (app=y) in `team`.
fn two_configmaps(k: &Kubectl) {
    let docs = [namespace("team"), configmap("c1", "default", "x", "1"), configmap("c2", "team", "y", "2")];
    k.run_stdin(&["create", "-f", "-"], &docs.join("---\n")).ok();
}

#[test]
fn get_output_formats() {
    let Some((_server, k)) = setup() else { return };
    two_configmaps(&k);
    let json = k.run(&["get", "cm", "c1", "-o", "json"]);
    for want in [r#""kind": "ConfigMap""#, r#""name": "c1""#, r#""namespace": "default""#, r#""a": "1""#] {
        assert!(json.ok().contains(want), "{want} in\n{}", json.stdout);
    }
    assert!(json.stdout.contains(r#""uid": ""#) && json.stdout.contains(r#""resourceVersion": ""#));
    let yaml = k.run(&["get", "cm", "c1", "-o", "yaml"]);
    assert!(
        yaml.ok().starts_with("apiVersion: v1\ndata:\n  a: \"1\"\nkind: ConfigMap\nmetadata:\n"),
        "{}",
        yaml.stdout
    );
    assert!(yaml.stdout.contains("  creationTimestamp: \"20"), "{}", yaml.stdout);
    let list = k.run(&["get", "cm", "-l", "app", "-A", "-o", "yaml"]);
    assert!(list.ok().starts_with("apiVersion: v1\nitems:\n- apiVersion: v1\n"), "{}", list.stdout);
    assert!(list.stdout.contains("\nkind: List\nmetadata:\n  resourceVersion: \"\"\n"), "{}", list.stdout);

    k.run(&["get", "cm", "c1", "-o", "jsonpath={.data.a}"]).prints("1");
    k.run(&["get", "cm", "-A", "-l", "app", "-o", "jsonpath={.items[*].metadata.name}"]).prints("c1 c2");
    k.run(&["get", "ns", "team", "-o", "jsonpath={.status.phase}"]).prints("Active");
    let cc = k.run(&[
        "get",
        "cm",
        "-A",
        "-l",
        "app",
        "-o",
        "custom-columns=NS:.metadata.namespace,NAME:.metadata.name,A:.data.a",
    ]);
    assert_eq!(table(cc.ok()), [["NS", "NAME", "A"], ["default", "c1", "1"], ["team", "c2", "2"]]);
    k.run(&["get", "cm", "c1", "-o", "name"]).prints("configmap/c1");
    k.run(&["get", "ns", "team", "-o", "name"]).prints("namespace/team");
    let missing = k.run(&["get", "cm", "nope"]);
    assert_eq!(missing.fails().trim_end(), r#"Error from server (NotFound): configmaps "nope" not found"#);
}

#[test]
fn get_selects_by_label_field_and_namespace() {
    let Some((_server, k)) = setup() else { return };
    two_configmaps(&k);
    k.run(&["get", "cm", "-l", "app=x", "-o", "name"]).prints("configmap/c1");
    k.run(&["get", "cm", "-A", "-l", "app in (x,y)", "-o", "name"]).prints("configmap/c1\nconfigmap/c2");
    k.run(&["get", "cm", "-A", "-l", "app,app!=x", "-o", "name"]).prints("configmap/c2");
    k.run(&["get", "cm", "-l", "app=y", "-o", "name"]).prints("");
    k.run(&["get", "cm", "-n", "team", "--field-selector", "metadata.name=c2", "-o", "name"])
        .prints("configmap/c2");
    k.run(&["get", "cm", "-A", "--field-selector", "metadata.namespace=team", "-l", "app", "-o", "name"])
        .prints("configmap/c2");
    let bad = k.run(&["get", "cm", "--field-selector", "data.a=1"]);
    assert!(bad.fails().contains("Error from server (BadRequest)"), "{}", bad.stderr);
    assert!(bad.stderr.contains(r#""data.a" is not a known field selector"#), "{}", bad.stderr);

    // -A: kubectl adds NAMESPACE from each row's object metadata.
    let all = table(k.run(&["get", "cm", "-A", "-l", "app"]).ok());
    assert_eq!(all[0][..2], ["NAMESPACE", "NAME"], "{all:?}");
    assert_eq!(all[1][..2], ["default", "c1"], "{all:?}");
    assert_eq!(all[2][..2], ["team", "c2"], "{all:?}");
    assert_eq!(all.len(), 3, "{all:?}");
    // --show-labels: LABELS from the row objects.
    let labels = table(k.run(&["get", "cm", "-l", "app", "--show-labels"]).ok());
    assert_eq!(labels[0].last().unwrap(), "LABELS", "{labels:?}");
    assert_eq!(labels[1][0], "c1", "{labels:?}");
    assert_eq!(labels[1].last().unwrap(), "app=x", "{labels:?}");
    let none = k.run(&["get", "cm", "-n", "team", "-l", "app=x"]);
    assert_eq!(none.ok(), "");
    assert_eq!(none.stderr.trim_end(), "No resources found in team namespace.");
}

/// The printers of upstream's `pkg/printers/internalversion/printers.go`,
/// served as Tables.
#[test]
fn get_prints_upstream_table_columns() {
    let Some((_server, k)) = setup() else { return };
    two_configmaps(&k);
    let docs = [
        deployment("web", 2, &[("c", "nginx:1"), ("d", "busybox:1")]),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s1\nstringData:\n  pw: x\n".into(),
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa1\n".into(),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p1\nspec:\n  containers:\n  - name: c\n    image: busybox\n".into(),
    ];
    k.run_stdin(&["create", "-f", "-"], &docs.join("---\n")).ok();
    let check = |args: &[&str], header: &[&str], row: &[&str]| {
        let out = k.run(args);
        let rows = table(out.ok());
        assert_eq!(rows[0], header, "{}", out.stdout);
        let r = &rows[1];
        assert_eq!(r.len(), header.len(), "{}", out.stdout);
        for (i, want) in row.iter().enumerate() {
            if *want == "<age>" {
                assert!(is_age(&r[i]), "{}: {}", header[i], out.stdout);
            } else {
                assert_eq!(r[i], *want, "{}: {}", header[i], out.stdout);
            }
        }
    };
    check(&["get", "cm", "c1"], &["NAME", "DATA", "AGE"], &["c1", "1", "<age>"]);
    check(&["get", "cm", "c1", "-o", "wide"], &["NAME", "DATA", "AGE"], &["c1", "1", "<age>"]);
    check(&["get", "ns", "team"], &["NAME", "STATUS", "AGE"], &["team", "Active", "<age>"]);
    check(&["get", "secret", "s1"], &["NAME", "TYPE", "DATA", "AGE"], &["s1", "Opaque", "1", "<age>"]);
    check(&["get", "sa", "sa1"], &["NAME", "SECRETS", "AGE"], &["sa1", "0", "<age>"]);
    check(
        &["get", "deploy", "web"],
        &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        &["web", "0/2", "0", "0", "<age>"],
    );
    check(
        &["get", "deploy", "web", "-o", "wide"],
        &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
        &["web", "0/2", "0", "0", "<age>", "c,d", "nginx:1,busybox:1", "app=web"],
    );
    check(
        &["get", "pod", "p1"],
        &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        &["p1", "0/1", "Pending", "0", "<age>"],
    );
    let wide = k.run(&["get", "pod", "p1", "-o", "wide"]);
    let rows = wide.ok().lines().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );
    assert!(rows[1].ends_with("<none>   <none>   <none>           <none>"), "{}", wide.stdout);
    // -A and --show-labels keep the printer's columns.
    let all = table(k.run(&["get", "cm", "-A", "-l", "app", "--show-labels"]).ok());
    assert_eq!(all[0], ["NAMESPACE", "NAME", "DATA", "AGE", "LABELS"]);
}

#[test]
fn describe_shows_configmap_namespace_and_deployment() {
    let Some((_server, k)) = setup() else { return };
    two_configmaps(&k);
    k.run(&["annotate", "cm", "c1", "note=hi"]).ok();
    let out = k.run(&["describe", "cm", "c1"]);
    let want = "Name:         c1\nNamespace:    default\nLabels:       app=x\nAnnotations:  note: hi\n\nData\n====\na:\n----\n1\n\n\nBinaryData\n====\n\nEvents:  <none>\n";
    assert_eq!(out.ok(), want);
    let ns = k.run(&["describe", "ns", "team"]);
    assert!(ns.ok().starts_with("Name:         team\nLabels:       kubernetes.io/metadata.name=team\nAnnotations:  <none>\nStatus:       Active\n"), "{}", ns.stdout);
    k.run_stdin(&["create", "-f", "-"], &deployment("web", 2, &[("c", "nginx:1")])).ok();
    let d = k.run(&["describe", "deploy", "web"]);
    for want in [
        "Name:                   web\n",
        "Namespace:              default\n",
        "Selector:               app=web\n",
        "Replicas:               2 desired | 0 updated | 0 total | 0 available | 0 unavailable\n",
        "StrategyType:           RollingUpdate\n",
        "RollingUpdateStrategy:  25% max unavailable, 25% max surge\n",
        "   c:\n    Image:         nginx:1\n",
    ] {
        assert!(d.ok().contains(want), "{want:?} in\n{}", d.stdout);
    }
}

#[test]
fn get_watch_sees_changes_made_by_another_client() {
    let Some((_server, k)) = setup() else { return };
    k.run_stdin(&["create", "-f", "-"], &configmap("before", "default", "w", "0")).ok();
    let (mut watch, lines) = k.spawn(&["get", "cm", "-l", "app=w", "-w", "--output-watch-events"]);
    // The initial list arrives first; then another client changes things.
    let first = lines.recv_timeout(Duration::from_secs(20)).expect("watch printed nothing");
    assert_eq!(first.split_whitespace().next(), Some("EVENT"), "{first}");
    let listed = lines.recv_timeout(Duration::from_secs(20)).expect("initial list");
    assert_eq!(listed.split_whitespace().take(2).collect::<Vec<_>>(), ["ADDED", "before"]);
    k.run_stdin(&["create", "-f", "-"], &configmap("w2", "default", "w", "1")).ok();
    k.run(&["label", "cm", "w2", "x=y"]).ok();
    k.run(&["delete", "cm", "w2"]).ok();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) else { break };
        seen.push(line.split_whitespace().take(2).map(String::from).collect::<Vec<_>>());
    }
    let stderr = watch.stop();
    assert_eq!(seen, [["ADDED", "w2"], ["MODIFIED", "w2"], ["DELETED", "w2"]], "stderr: {stderr}");
}

#[test]
fn wait_for_delete_returns_when_the_object_goes() {
    let Some((_server, k)) = setup() else { return };
    k.run_stdin(&["create", "-f", "-"], &configmap("doomed", "default", "w", "0")).ok();
    let (mut wait, lines) = k.spawn(&["wait", "--for=delete", "cm/doomed", "--timeout=30s"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(wait.wait_for_exit(Duration::ZERO), None, "wait returned before the delete");
    k.run(&["delete", "cm", "doomed", "--wait=false"]).ok();
    let code = wait.wait_for_exit(Duration::from_secs(20));
    let stderr = wait.stop();
    assert_eq!(code, Some(0), "wait --for=delete: {stderr}");
    assert_eq!(lines.recv_timeout(Duration::from_secs(1)).as_deref(), Ok("configmap/doomed condition met"));
    // Already gone: returns at once.
    let gone = k.run(&["wait", "--for=delete", "cm/doomed", "--timeout=5s"]);
    gone.ok();
}

/// 1,000 ConfigMaps listed 100 at a time: every one arrives, in ten
/// requests that follow the continue tokens.
#[test]
fn chunked_list_of_1000_configmaps() {
    let Some((_server, k)) = setup() else { return };
    let mut docs = vec![namespace("bulk")];
    for i in 0..1000 {
        docs.push(format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:04}\n  namespace: bulk\n  labels:\n    half: h{}\ndata:\n  i: \"{i}\"\n",
            i % 2
        ));
    }
    let created = k.run_stdin(&["create", "-f", "-"], &docs.join("---\n"));
    assert_eq!(created.ok().lines().filter(|l| l.ends_with(" created")).count(), 1001);

    let out = k.run(&["get", "cm", "-n", "bulk", "--chunk-size=100", "-o", "name", "-v=6"]);
    let names: Vec<&str> = out.ok().lines().filter(|l| l.starts_with("configmap/cm-")).collect();
    let want: Vec<String> = (0..1000).map(|i| format!("configmap/cm-{i:04}")).collect();
    assert_eq!(names, want);
    // A controller may add kube-root-ca.crt to the namespace; count it too.
    let total = out.stdout.lines().count();
    let pages = total.div_ceil(100);
    let gets: Vec<_> = out
        .responses()
        .into_iter()
        .filter(|(v, url, _)| v == "GET" && url.contains("/configmaps?"))
        .collect();
    assert_eq!(gets.len(), pages, "{gets:#?}");
    assert!(gets.iter().all(|(_, url, status)| url.contains("limit=100") && status == "200 OK"), "{gets:#?}");
    assert_eq!(gets.iter().filter(|(_, url, _)| url.contains("continue=")).count(), pages - 1, "{gets:#?}");

    // The same through Tables (the continue token travels in the Table).
    let t = k.run(&["get", "cm", "-n", "bulk", "--chunk-size=100", "-v=6"]);
    assert_eq!(t.ok().lines().filter(|l| l.starts_with("cm-")).count(), 1000);
    assert_eq!(t.stdout.lines().filter(|l| l.starts_with("NAME")).count(), 1, "one header");
    assert_eq!(t.responses().iter().filter(|(_, url, _)| url.contains("continue=")).count(), pages - 1);

    // With a selector, pages are filled up to the limit.
    let half = k.run(&["get", "cm", "-n", "bulk", "-l", "half=h1", "--chunk-size=100", "-o", "name", "-v=6"]);
    assert_eq!(half.ok().lines().filter(|l| l.starts_with("configmap/cm-")).count(), 500);
    let half_gets =
        half.responses().iter().filter(|(v, url, _)| v == "GET" && url.contains("limit=100")).count();
    assert!((5..=6).contains(&half_gets), "{:#?}", half.responses());
}

/// Without selectors a page says how many items follow it (ListMeta).
#[test]
fn list_pages_carry_the_remaining_item_count() {
    let Some((_server, k)) = setup() else { return };
    let docs: Vec<String> = (0..5).map(|i| configmap(&format!("c{i}"), "default", "x", "1")).collect();
    k.run_stdin(&["create", "-f", "-"], &docs.join("---\n")).ok();
    let total = k.run(&["get", "cm", "-o", "name"]).ok().lines().count();
    let page = k.run(&["get", "--raw", "/api/v1/namespaces/default/configmaps?limit=2"]);
    let tail = &page.ok()[page.stdout.rfind(r#""metadata""#).unwrap_or(0)..];
    assert!(tail.contains(&format!(r#""remainingItemCount":{}"#, total - 2)), "{tail}");
    assert!(tail.contains(r#""continue":""#), "{tail}");
    // Unknown with a selector: omitted.
    let selected =
        k.run(&["get", "--raw", "/api/v1/namespaces/default/configmaps?limit=2&labelSelector=app%3Dx"]);
    assert!(!selected.ok().contains("remainingItemCount"), "{}", selected.stdout);
}

/// `v1` and `events.k8s.io/v1` Events are one collection: each API sees
/// what the other wrote, under its own field names.
#[test]
fn both_event_apis_see_the_same_events() {
    let Some((_server, k)) = setup() else { return };
    let core = "apiVersion: v1\nkind: Event\nmetadata:\n  name: e1\ninvolvedObject:\n  kind: Pod\n  name: p1\n  namespace: default\nreason: Started\nmessage: started container\ntype: Normal\ncount: 2\nsource:\n  component: kubelet\n";
    k.run_stdin(&["create", "-f", "-"], core).prints("event/e1 created");
    let newer = "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata:\n  name: e2\neventTime: \"2026-01-01T00:00:00.000000Z\"\nreportingController: lichen.io/test\nreportingInstance: here\naction: Pulling\nreason: Pulling\nnote: pulling image\ntype: Normal\nregarding:\n  kind: Pod\n  name: p1\n  namespace: default\n";
    k.run_stdin(&["create", "-f", "-"], newer).prints("event.events.k8s.io/e2 created");
    let as_new = k.run(&[
        "get",
        "events.v1.events.k8s.io",
        "e1",
        "-o",
        "jsonpath={.apiVersion} {.regarding.name} {.note} {.deprecatedCount}",
    ]);
    assert_eq!(as_new.ok(), "events.k8s.io/v1 p1 started container 2");
    let as_core =
        k.run(&["get", "events.v1.", "e2", "-o", "jsonpath={.apiVersion} {.involvedObject.name} {.message}"]);
    assert_eq!(as_core.ok(), "v1 p1 pulling image");
    let names = k.run(&["get", "events", "-o", "name"]);
    assert_eq!(names.ok().lines().count(), 2, "{}", names.stdout);
    let selected =
        k.run(&["get", "events", "--field-selector", "involvedObject.name=p1,reason=Pulling", "-o", "name"]);
    assert_eq!(selected.ok().trim(), "event/e2");
}
