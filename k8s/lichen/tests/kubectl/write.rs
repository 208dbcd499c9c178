//! Writes: `create` (generators and files), `apply` (client- and
//! server-side), `diff`, `patch`, `edit`, `label`, `annotate`, `scale`,
//! `delete` with each propagation policy, `--dry-run=server`, defaults and
//! field validation.

use std::time::Duration;

use crate::common::{Kubectl, client_cert, eventually, setup};
use crate::manifests::{configmap, deployment};

fn jsonpath(k: &Kubectl, what: &[&str], path: &str) -> String {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    let p = format!("jsonpath={path}");
    args.extend_from_slice(&["-o", &p]);
    k.run(&args).ok().to_string()
}

fn rv(k: &Kubectl, what: &[&str]) -> String {
    jsonpath(k, what, "{.metadata.resourceVersion}")
}

// ---- create <generator>: kubectl sends these bodies as protobuf ----

#[test]
fn create_generators_core() {
    let Some((server, k)) = setup() else { return };
    k.run(&["create", "namespace", "team"]).prints("namespace/team created");
    assert_eq!(
        jsonpath(&k, &["ns", "team"], "{.status.phase} {.metadata.labels.kubernetes\\.io/metadata\\.name}"),
        "Active team"
    );
    k.run(&["create", "configmap", "c1", "-n", "team", "--from-literal=a=1", "--from-literal=b=two"])
        .prints("configmap/c1 created");
    assert_eq!(jsonpath(&k, &["cm", "c1", "-n", "team"], "{.data}"), r#"{"a":"1","b":"two"}"#);
    k.run(&["create", "secret", "generic", "s1", "--from-literal=pw=hunter2"]).prints("secret/s1 created");
    assert_eq!(jsonpath(&k, &["secret", "s1"], "{.type} {.data.pw}"), "Opaque aHVudGVyMg==");
    let (cert, key) = client_cert(&server, "tls.example.com", &[]);
    let (cert_s, key_s) = (format!("--cert={}", cert.display()), format!("--key={}", key.display()));
    k.run(&["create", "secret", "tls", "t1", &cert_s, &key_s]).prints("secret/t1 created");
    assert_eq!(jsonpath(&k, &["secret", "t1"], "{.type}"), "kubernetes.io/tls");
    let stored =
        k.run(&["get", "secret", "t1", "-o", r#"go-template={{index .data "tls.crt" | base64decode}}"#]);
    assert_eq!(stored.ok(), std::fs::read_to_string(&cert).unwrap());
    k.run(&["create", "serviceaccount", "sa1"]).prints("serviceaccount/sa1 created");
    k.run(&["get", "sa", "sa1", "-o", "name"]).prints("serviceaccount/sa1");
    // Server-side dry run of a generator: answered, not stored.
    k.run(&["create", "configmap", "dry", "--from-literal=a=1", "--dry-run=server"])
        .prints("configmap/dry created (server dry run)");
    let gone = k.run(&["get", "cm", "dry"]);
    assert_eq!(gone.fails().trim_end(), r#"Error from server (NotFound): configmaps "dry" not found"#);
}

#[test]
fn create_generators_workloads() {
    let Some((_server, k)) = setup() else { return };
    k.run(&["create", "deployment", "d1", "--image=nginx:1", "--replicas=2"])
        .prints("deployment.apps/d1 created");
    assert_eq!(
        jsonpath(
            &k,
            &["deploy", "d1"],
            "{.spec.replicas} {.spec.selector.matchLabels.app} {.spec.template.spec.containers[0].name} {.spec.template.spec.containers[0].image}"
        ),
        "2 d1 nginx nginx:1"
    );
    k.run(&["create", "job", "j1", "--image=busybox", "--", "echo", "hi"]).prints("job.batch/j1 created");
    assert_eq!(
        jsonpath(
            &k,
            &["job", "j1"],
            "{.spec.template.spec.restartPolicy} {.spec.template.spec.containers[0].command} {.spec.backoffLimit} {.spec.template.metadata.labels.batch\\.kubernetes\\.io/job-name}"
        ),
        r#"Never ["echo","hi"] 6 j1"#
    );
    k.run(&["create", "cronjob", "cj1", "--image=busybox", "--schedule=*/5 * * * *", "--", "date"])
        .prints("cronjob.batch/cj1 created");
    assert_eq!(
        jsonpath(
            &k,
            &["cronjob", "cj1"],
            "{.spec.schedule}|{.spec.concurrencyPolicy}|{.spec.jobTemplate.spec.template.spec.restartPolicy}"
        ),
        "*/5 * * * *|Allow|OnFailure"
    );
    k.run(&["create", "job", "from-cj", "--from=cronjob/cj1"]).prints("job.batch/from-cj created");
    assert_eq!(
        jsonpath(&k, &["job", "from-cj"], "{.metadata.annotations.cronjob\\.kubernetes\\.io/instantiate}"),
        "manual"
    );
}

#[test]
fn create_generators_rbac() {
    let Some((_server, k)) = setup() else { return };
    k.run(&["create", "role", "r1", "--verb=get,list", "--resource=configmaps"])
        .prints("role.rbac.authorization.k8s.io/r1 created");
    assert_eq!(
        jsonpath(&k, &["role", "r1"], "{.rules[0].apiGroups} {.rules[0].resources} {.rules[0].verbs}"),
        r#"[""] ["configmaps"] ["get","list"]"#
    );
    k.run(&["create", "rolebinding", "rb1", "--role=r1", "--user=bob", "--serviceaccount=default:sa1"])
        .prints("rolebinding.rbac.authorization.k8s.io/rb1 created");
    assert_eq!(
        jsonpath(
            &k,
            &["rolebinding", "rb1"],
            "{.roleRef.kind}/{.roleRef.name} {.subjects[*].kind} {.subjects[*].name}"
        ),
        "Role/r1 User ServiceAccount bob sa1"
    );
    k.run(&["create", "clusterrole", "cr1", "--verb=get,list,watch", "--resource=nodes,deployments.apps"])
        .prints("clusterrole.rbac.authorization.k8s.io/cr1 created");
    assert_eq!(
        jsonpath(&k, &["clusterrole", "cr1"], "{range .rules[*]}{.apiGroups} {.resources};{end}"),
        r#"[""] ["nodes"];["apps"] ["deployments"];"#
    );
}

// ---- create -f: defaults as upstream's defaulting functions ----

#[test]
fn create_from_file_applies_upstream_defaults() {
    let Some((_server, k)) = setup() else { return };
    k.run_stdin(&["create", "-f", "-"], &deployment("web", 1, &[("c", "nginx:1")])).ok();
    assert_eq!(
        jsonpath(&k, &["deploy", "web"], "{.spec.template.spec.containers[0]}"),
        r#"{"image":"nginx:1","imagePullPolicy":"IfNotPresent","name":"c","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}"#
    );
    // SetDefaults_PodSpec only: enableServiceLinks is a Pod default, never a template's.
    assert_eq!(
        jsonpath(&k, &["deploy", "web"], "{.spec.template.spec}")
            .replace(&jsonpath(&k, &["deploy", "web"], "{.spec.template.spec.containers}"), "[C]"),
        r#"{"containers":[C],"dnsPolicy":"ClusterFirst","restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":30}"#
    );
    assert_eq!(
        jsonpath(
            &k,
            &["deploy", "web"],
            "{.spec.strategy} {.spec.revisionHistoryLimit} {.spec.progressDeadlineSeconds}"
        ),
        r#"{"rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"},"type":"RollingUpdate"} 10 600"#
    );
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p1\nspec:\n  containers:\n  - name: c\n    image: busybox\n";
    k.run_stdin(&["create", "-f", "-"], pod).ok();
    assert_eq!(
        jsonpath(&k, &["pod", "p1"], "{.spec.containers[0]}"),
        r#"{"image":"busybox","imagePullPolicy":"Always","name":"c","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}"#
    );
    assert_eq!(jsonpath(&k, &["pod", "p1"], "{.spec.enableServiceLinks}"), "true");
}

// ---- apply, diff ----

#[test]
fn apply_client_side_twice_with_a_change() {
    let Some((server, k)) = setup() else { return };
    let v1 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  labels:\n    app: x\ndata:\n  a: \"1\"\n  b: \"2\"\n";
    let file = server.write("app.yaml", v1);
    let f = file.to_str().unwrap();
    k.run(&["apply", "-f", f]).prints("configmap/app created");
    assert_eq!(
        jsonpath(
            &k,
            &["cm", "app"],
            "{.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}"
        ),
        "{\"apiVersion\":\"v1\",\"data\":{\"a\":\"1\",\"b\":\"2\"},\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{},\"labels\":{\"app\":\"x\"},\"name\":\"app\",\"namespace\":\"default\"}}\n"
    );
    let before = rv(&k, &["cm", "app"]);
    k.run(&["apply", "-f", f]).prints("configmap/app unchanged");
    assert_eq!(rv(&k, &["cm", "app"]), before, "an unchanged apply writes nothing");
    // Changed a, dropped b (three-way: b was applied before), added c.
    server.write("app.yaml", &v1.replace("  a: \"1\"\n  b: \"2\"\n", "  a: \"3\"\n  c: \"4\"\n"));
    k.run(&["apply", "-f", f]).prints("configmap/app configured");
    assert_eq!(jsonpath(&k, &["cm", "app"], "{.data}"), r#"{"a":"3","c":"4"}"#);
    // A key added by someone else survives the next apply.
    k.run(&["patch", "cm", "app", "--type", "merge", "-p", r#"{"data":{"other":"x"}}"#]).ok();
    k.run(&["apply", "-f", f]).prints("configmap/app unchanged");
    assert_eq!(jsonpath(&k, &["cm", "app"], "{.data}"), r#"{"a":"3","c":"4","other":"x"}"#);

    // Lists merge by key: change one container's image, drop the other.
    let d = server.write("web.yaml", &deployment("web", 1, &[("c", "nginx:1"), ("d", "busybox:1")]));
    let d = d.to_str().unwrap();
    k.run(&["apply", "-f", d]).prints("deployment.apps/web created");
    server.write("web.yaml", &deployment("web", 1, &[("c", "nginx:2")]));
    k.run(&["apply", "-f", d]).prints("deployment.apps/web configured");
    assert_eq!(
        jsonpath(
            &k,
            &["deploy", "web"],
            "{.spec.template.spec.containers[*].name} {.spec.template.spec.containers[*].image} {.spec.template.spec.containers[0].imagePullPolicy} {.metadata.generation}"
        ),
        "c nginx:2 IfNotPresent 2"
    );
}

#[test]
fn apply_server_side_with_a_conflict() {
    let Some((server, k)) = setup() else { return };
    let file = server.write("ssa.yaml", &configmap("ssa", "default", "x", "1"));
    let f = file.to_str().unwrap();
    k.run(&["apply", "--server-side", "-f", f]).prints("configmap/ssa serverside-applied");
    let managers = |k: &Kubectl| {
        k.run(&[
            "get",
            "cm",
            "ssa",
            "--show-managed-fields",
            "-o",
            "jsonpath={range .metadata.managedFields[*]}{.manager}/{.operation};{end}",
        ])
        .ok()
        .to_string()
    };
    assert_eq!(managers(&k), "kubectl/Apply;");
    k.run(&["apply", "--server-side", "-f", f]).prints("configmap/ssa serverside-applied");

    // Another manager wants a different value for a field kubectl owns.
    let other = server.write("other.yaml", &configmap("ssa", "default", "x", "2"));
    let o = other.to_str().unwrap();
    let conflict = k.run(&["apply", "--server-side", "--field-manager=other", "-f", o]);
    let err = conflict.fails();
    assert!(
        err.contains(r#"error: Apply failed with 1 conflict: conflict with "kubectl": .data.a"#),
        "{err}"
    );
    assert!(err.contains("--force-conflicts"), "{err}");
    assert_eq!(jsonpath(&k, &["cm", "ssa"], "{.data.a}"), "1");
    k.run(&["apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", o])
        .prints("configmap/ssa serverside-applied");
    assert_eq!(jsonpath(&k, &["cm", "ssa"], "{.data.a}"), "2");
    assert!(managers(&k).contains("other/Apply;"), "{}", managers(&k));
    // Update managers are recorded too.
    k.run(&["label", "cm", "ssa", "l=1"]).ok();
    assert!(managers(&k).contains("kubectl-label/Update;"), "{}", managers(&k));

    // Moving from client-side apply: kubectl takes over its fields without a conflict.
    let csa = server.write("csa.yaml", &configmap("csa", "default", "x", "1"));
    k.run(&["apply", "-f", csa.to_str().unwrap()]).prints("configmap/csa created");
    server.write("csa.yaml", &configmap("csa", "default", "x", "2"));
    k.run(&["apply", "--server-side", "-f", csa.to_str().unwrap()])
        .prints("configmap/csa serverside-applied");
    assert_eq!(jsonpath(&k, &["cm", "csa"], "{.data.a}"), "2");
}

#[test]
fn diff_exits_1_with_differences_and_changes_nothing() {
    let Some((server, k)) = setup() else { return };
    let file = server.write("app.yaml", &configmap("app", "default", "x", "1"));
    let f = file.to_str().unwrap();
    k.run(&["apply", "-f", f]).ok();
    let same = k.run(&["diff", "-f", f]);
    assert_eq!((same.code, same.stdout.as_str()), (0, ""), "{}", same.stderr);
    server.write("app.yaml", &configmap("app", "default", "x", "2"));
    let diff = k.run(&["diff", "-f", f]);
    assert_eq!(diff.code, 1, "{}\n{}", diff.stdout, diff.stderr);
    assert!(diff.stdout.contains("\n-  a: \"1\"\n+  a: \"2\"\n"), "{}", diff.stdout);
    assert_eq!(jsonpath(&k, &["cm", "app"], "{.data.a}"), "1", "diff must not write");
    // A new object diffs against nothing.
    let new = server.write("new.yaml", &configmap("fresh", "default", "x", "1"));
    let d = k.run(&["diff", "-f", new.to_str().unwrap()]);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(d.stdout.contains("+  name: fresh\n"), "{}", d.stdout);
    assert!(k.run(&["get", "cm", "fresh"]).fails().contains("NotFound"));
}

// ---- patch, edit, label, annotate, scale ----

#[test]
fn patch_merge_json_and_strategic() {
    let Some((_server, k)) = setup() else { return };
    k.run_stdin(&["create", "-f", "-"], &configmap("c1", "default", "x", "1")).ok();
    k.run(&["patch", "cm", "c1", "--type", "merge", "-p", r#"{"data":{"m":"1"}}"#])
        .prints("configmap/c1 patched");
    k.run(&[
        "patch",
        "cm",
        "c1",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/data/j","value":"2"},{"op":"remove","path":"/data/a"}]"#,
    ])
    .prints("configmap/c1 patched");
    k.run(&["patch", "cm", "c1", "-p", r#"{"data":{"s":"3"}}"#]).prints("configmap/c1 patched");
    assert_eq!(jsonpath(&k, &["cm", "c1"], "{.data}"), r#"{"j":"2","m":"1","s":"3"}"#);
    let before = rv(&k, &["cm", "c1"]);
    k.run(&["patch", "cm", "c1", "-p", r#"{"data":{"s":"3"}}"#]).prints("configmap/c1 patched (no change)");
    assert_eq!(rv(&k, &["cm", "c1"]), before, "a no-op patch writes nothing");
    k.run(&["patch", "cm", "c1", "--type", "merge", "-p", r#"{"data":{"m":null}}"#]).ok();
    assert_eq!(jsonpath(&k, &["cm", "c1"], "{.data}"), r#"{"j":"2","s":"3"}"#);

    k.run_stdin(&["create", "-f", "-"], &deployment("web", 1, &[("c", "nginx:1"), ("d", "busybox:1")])).ok();
    let containers = |k: &Kubectl| {
        jsonpath(
            k,
            &["deploy", "web"],
            "{.spec.template.spec.containers[*].name} {.spec.template.spec.containers[*].image}",
        )
    };
    // Strategic: containers merge by name.
    k.run(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"nginx:2"}]}}}}"#,
    ])
    .prints("deployment.apps/web patched");
    assert_eq!(containers(&k), "c d nginx:2 busybox:1");
    k.run(&[
        "patch",
        "deploy",
        "web",
        "--type",
        "strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"d","$patch":"delete"}]}}}}"#,
    ])
    .ok();
    assert_eq!(containers(&k), "c nginx:2");
    // Merge patch: lists are replaced (and the new container defaulted).
    k.run(&[
        "patch",
        "deploy",
        "web",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"e","image":"alpine"}]}}}}"#,
    ])
    .ok();
    assert_eq!(containers(&k), "e alpine");
    assert_eq!(
        jsonpath(
            &k,
            &["deploy", "web"],
            "{.spec.template.spec.containers[0].imagePullPolicy} {.metadata.generation}"
        ),
        "Always 4"
    );
}

#[test]
fn edit_with_a_scripted_editor() {
    let Some((server, k)) = setup() else { return };
    k.run_stdin(&["create", "-f", "-"], &configmap("c1", "default", "x", "1")).ok();
    let editor = server.write("editor.sh", "#!/bin/sh\nsed -i 's/^  a: \"1\"$/  a: edited/' \"$1\"\n");
    let noop = server.write("noop.sh", "#!/bin/sh\nexit 0\n");
    for script in [&editor, &noop] {
        std::process::Command::new("chmod").arg("+x").arg(script).status().unwrap();
    }
    let edit = k.with_env("KUBE_EDITOR", editor.to_str().unwrap());
    edit.run(&["edit", "cm", "c1"]).prints("configmap/c1 edited");
    assert_eq!(jsonpath(&k, &["cm", "c1"], "{.data.a}"), "edited");
    let before = rv(&k, &["cm", "c1"]);
    let cancelled = k.with_env("KUBE_EDITOR", noop.to_str().unwrap()).run(&["edit", "cm", "c1"]);
    cancelled.ok();
    assert!(format!("{}{}", cancelled.stdout, cancelled.stderr).contains("Edit cancelled, no changes made."));
    assert_eq!(rv(&k, &["cm", "c1"]), before);
}

#[test]
fn label_and_annotate() {
    let Some((_server, k)) = setup() else { return };
    k.run_stdin(
        &["create", "-f", "-"],
        &[configmap("c1", "default", "x", "1"), configmap("c2", "default", "x", "2")].join("---\n"),
    )
    .ok();
    k.run(&["label", "cm", "c1", "color=blue"]).prints("configmap/c1 labeled");
    assert_eq!(jsonpath(&k, &["cm", "c1"], "{.metadata.labels}"), r#"{"app":"x","color":"blue"}"#);
    let clash = k.run(&["label", "cm", "c1", "color=red"]);
    assert!(
        clash.fails().contains("'color' already has a value (blue), and --overwrite is false"),
        "{}",
        clash.stderr
    );
    k.run(&["label", "cm", "c1", "color=red", "--overwrite"]).prints("configmap/c1 labeled");
    k.run(&["label", "cm", "c1", "color-"]).prints("configmap/c1 unlabeled");
    assert_eq!(jsonpath(&k, &["cm", "c1"], "{.metadata.labels}"), r#"{"app":"x"}"#);
    k.run(&["label", "cm", "-l", "app=x", "tier=1"]).prints("configmap/c1 labeled\nconfigmap/c2 labeled");
    k.run(&["get", "cm", "-l", "tier=1", "-o", "name"]).prints("configmap/c1\nconfigmap/c2");

    k.run(&["annotate", "cm", "c1", "note=hello world"]).prints("configmap/c1 annotated");
    assert_eq!(jsonpath(&k, &["cm", "c1"], "{.metadata.annotations.note}"), "hello world");
    k.run(&["annotate", "cm", "c1", "note-"]).prints("configmap/c1 annotated");
    assert_eq!(jsonpath(&k, &["cm", "c1"], "{.metadata.annotations.note}"), "");
}

/// Upstream decodes into typed structs, so maps emptied by a patch are
/// omitted (`omitempty`), not kept as `{}`.
#[test]
fn emptied_maps_are_omitted() {
    let Some((_server, k)) = setup() else { return };
    k.run_stdin(&["create", "-f", "-"], &configmap("c1", "default", "x", "1")).ok();
    k.run(&["annotate", "cm", "c1", "note=1"]).ok();
    k.run(&["annotate", "cm", "c1", "note-"]).ok();
    k.run(&["label", "cm", "c1", "app-"]).ok();
    let yaml = k.run(&["get", "cm", "c1", "-o", "yaml"]);
    assert!(!yaml.ok().contains("annotations: {}") && !yaml.stdout.contains("labels: {}"), "{}", yaml.stdout);
}

#[test]
fn scale_uses_the_scale_subresource() {
    let Some((_server, k)) = setup() else { return };
    k.run_stdin(&["create", "-f", "-"], &deployment("web", 1, &[("c", "nginx:1")])).ok();
    let out = k.run(&["scale", "deploy/web", "--replicas=3", "-v=6"]);
    assert_eq!(out.ok(), "deployment.apps/web scaled\n");
    assert!(
        out.responses().iter().any(|(v, url, s)| v == "PATCH"
            && url.ends_with("/apis/apps/v1/namespaces/default/deployments/web/scale")
            && s == "200 OK"),
        "{:#?}",
        out.responses()
    );
    assert_eq!(jsonpath(&k, &["deploy", "web"], "{.spec.replicas} {.metadata.generation}"), "3 2");
    let scale = k.run(&["get", "--raw", "/apis/apps/v1/namespaces/default/deployments/web/scale"]);
    for want in [
        r#""kind":"Scale""#,
        r#""apiVersion":"autoscaling/v1""#,
        r#""spec":{"replicas":3}"#,
        r#""selector":"app=web""#,
    ] {
        assert!(scale.ok().contains(want), "{want} in {}", scale.stdout);
    }
    let stale = k.run(&["scale", "deploy/web", "--current-replicas=2", "--replicas=4"]);
    assert!(stale.fails().contains("Expected replicas to be 2, was 3"), "{}", stale.stderr);
    assert_eq!(jsonpath(&k, &["deploy", "web"], "{.spec.replicas}"), "3");
}

// ---- delete ----

#[test]
fn delete_propagation_policies_mark_the_object() {
    let Some((_server, k)) = setup() else { return };
    let docs: Vec<String> = ["bg", "fg", "or"].iter().map(|n| configmap(n, "default", "x", "1")).collect();
    k.run_stdin(&["create", "-f", "-"], &docs.join("---\n")).ok();
    k.run(&["delete", "cm", "bg", "--cascade=background"])
        .prints(r#"configmap "bg" deleted from default namespace"#);
    assert!(k.run(&["get", "cm", "bg"]).fails().contains(r#"configmaps "bg" not found"#));
    // Foreground and orphan deletes hold the object with a finalizer until
    // the dependents are handled; with none, the object goes soon after.
    for (name, cascade) in [("fg", "--cascade=foreground"), ("or", "--cascade=orphan")] {
        k.run(&["delete", "cm", name, cascade, "--wait=false"])
            .prints(&format!(r#"configmap "{name}" deleted from default namespace"#));
        let gone = || k.run(&["get", "cm", name]).code != 0;
        assert!(eventually(Duration::from_secs(20), gone), "{name} still there after {cascade}");
    }
    k.run_stdin(&["create", "-f", "-"], &configmap("or", "default", "x", "1")).ok();
    let bad = k.run(&["delete", "cm", "or", "--cascade=sideways"]);
    assert!(bad.fails().contains("invalid cascade value (sideways)"), "{}", bad.stderr);
}

/// Owner and dependent ConfigMaps: what each policy does to the dependent.
#[test]
fn delete_propagation_policies_with_dependents() {
    let Some((_server, k)) = setup() else { return };
    for (owner, policy) in [("fg", "foreground"), ("bg", "background"), ("or", "orphan")] {
        k.run_stdin(&["create", "-f", "-"], &configmap(owner, "default", "x", "1")).ok();
        let uid = jsonpath(&k, &["cm", owner], "{.metadata.uid}");
        let child = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {owner}-child\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: {owner}\n    uid: {uid}\n    blockOwnerDeletion: true\n"
        );
        k.run_stdin(&["create", "-f", "-"], &child).ok();
        let cascade = format!("--cascade={policy}");
        k.run(&["delete", "cm", owner, &cascade, "--timeout=30s"])
            .prints(&format!(r#"configmap "{owner}" deleted from default namespace"#));
        assert!(k.run(&["get", "cm", owner]).fails().contains("NotFound"), "{owner} still there");
        let child = format!("{owner}-child");
        let child_gone = || k.run(&["get", "cm", &child]).code != 0;
        if policy == "orphan" {
            assert_eq!(jsonpath(&k, &["cm", &child], "{.metadata.ownerReferences}"), "", "orphaned");
        } else {
            assert!(eventually(Duration::from_secs(20), child_gone), "{child} not collected ({policy})");
        }
    }
}

// ---- dry runs, field validation ----

#[test]
fn dry_run_server_stores_nothing() {
    let Some((server, k)) = setup() else { return };
    let new = server.write("dry.yaml", &configmap("dry", "default", "x", "1"));
    let new = new.to_str().unwrap();
    k.run(&["create", "-f", new, "--dry-run=server"]).prints("configmap/dry created (server dry run)");
    k.run(&["apply", "-f", new, "--dry-run=server"]).prints("configmap/dry created (server dry run)");
    let out =
        k.run(&["create", "-f", new, "--dry-run=server", "-o", "jsonpath={.metadata.name} {.metadata.uid}"]);
    assert!(out.ok().starts_with("dry ") && out.stdout.len() > "dry ".len(), "{}", out.stdout);
    assert!(k.run(&["get", "cm", "dry"]).fails().contains(r#"configmaps "dry" not found"#));

    k.run_stdin(&["create", "-f", "-"], &configmap("live", "default", "x", "1")).ok();
    k.run_stdin(&["create", "-f", "-"], &deployment("web", 1, &[("c", "nginx:1")])).ok();
    let before = rv(&k, &["cm", "live"]);
    let changed = server.write("live.yaml", &configmap("live", "default", "x", "2"));
    k.run(&["apply", "-f", changed.to_str().unwrap(), "--dry-run=server"])
        .prints("configmap/live configured (server dry run)");
    let patched = k.run(&[
        "patch",
        "cm",
        "live",
        "-p",
        r#"{"data":{"a":"9"}}"#,
        "--dry-run=server",
        "-o",
        "jsonpath={.data.a}",
    ]);
    assert_eq!(patched.ok(), "9");
    k.run(&["label", "cm", "live", "l=1", "--dry-run=server"])
        .prints("configmap/live labeled (server dry run)");
    k.run(&["scale", "deploy/web", "--replicas=5", "--dry-run=server"])
        .prints("deployment.apps/web scaled (server dry run)");
    k.run(&["delete", "cm", "live", "--dry-run=server"])
        .prints(r#"configmap "live" deleted from default namespace (server dry run)"#);
    assert_eq!(jsonpath(&k, &["cm", "live"], "{.data.a} {.metadata.labels}"), r#"1 {"app":"x"}"#);
    assert_eq!(rv(&k, &["cm", "live"]), before, "dry runs write nothing");
    assert_eq!(jsonpath(&k, &["deploy", "web"], "{.spec.replicas}"), "1");
}

/// A dry-run update answers the object as it would be stored, with the
/// live resourceVersion; `kubectl diff` shows that answer.
#[test]
fn dry_run_patch_keeps_the_resource_version() {
    let Some((server, k)) = setup() else { return };
    let file = server.write("app.yaml", &configmap("app", "default", "x", "1"));
    k.run(&["apply", "-f", file.to_str().unwrap()]).ok();
    let live = rv(&k, &["cm", "app"]);
    let dry = k.run(&[
        "patch",
        "cm",
        "app",
        "-p",
        r#"{"data":{"a":"9"}}"#,
        "--dry-run=server",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    assert_eq!(dry.ok(), live);
    server.write("app.yaml", &configmap("app", "default", "x", "2"));
    let diff = k.run(&["diff", "-f", file.to_str().unwrap()]);
    let changed: Vec<&str> = diff
        .stdout
        .lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+')) && !l.starts_with("---") && !l.starts_with("+++")
        })
        .collect();
    assert_eq!(changed, [r#"-  a: "1""#, r#"+  a: "2""#], "{}", diff.stdout);
}

/// `--validate=warn|false` (fieldValidation Warn/Ignore): the object is
/// stored without the unknown field, as decoding into the typed struct drops it.
#[test]
fn field_validation_warn_and_ignore_drop_unknown_fields() {
    let Some((_server, k)) = setup() else { return };
    let cm = |name: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\nbogus: 1\ndata:\n  a: \"1\"\n")
    };
    let warn = k.run_stdin(&["create", "-f", "-", "--validate=warn"], &cm("warned"));
    assert_eq!(warn.ok(), "configmap/warned created\n");
    assert!(warn.stderr.contains(r#"Warning: unknown field "bogus""#), "{}", warn.stderr);
    k.run_stdin(&["create", "-f", "-", "--validate=false"], &cm("ignored"))
        .prints("configmap/ignored created");
    for name in ["warned", "ignored"] {
        let json = k.run(&["get", "cm", name, "-o", "json"]);
        assert!(!json.ok().contains("bogus"), "{}", json.stdout);
    }
}

/// The scheduler's binding: `pods/<name>/binding` sets the node once.
#[test]
fn binding_assigns_a_pod_to_a_node_once() {
    let Some((server, k)) = setup() else { return };
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p1\nspec:\n  containers:\n  - name: c\n    image: busybox\n";
    k.run_stdin(&["create", "-f", "-"], pod).prints("pod/p1 created");
    let binding = server.write(
        "binding.json",
        r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p1"},"target":{"kind":"Node","name":"node-a"}}"#,
    );
    let binding = binding.to_str().unwrap();
    k.run(&["create", "--raw", "/api/v1/namespaces/default/pods/p1/binding", "-f", binding]).ok();
    k.run(&[
        "get",
        "pod",
        "p1",
        "-o",
        r#"jsonpath={.spec.nodeName} {.status.conditions[?(@.type=="PodScheduled")].status}"#,
    ])
    .prints("node-a True");
    let again = k.run(&["create", "--raw", "/api/v1/namespaces/default/pods/p1/binding", "-f", binding]);
    assert!(again.fails().contains(r#"pod p1 is already assigned to node "node-a""#), "{}", again.stderr);
    let mismatch = k.run(&["create", "--raw", "/api/v1/namespaces/default/pods/nope/binding", "-f", binding]);
    assert!(mismatch.fails().contains("does not match the name on the URL (nope)"), "{}", mismatch.stderr);
    let nope = server.write(
        "nope.json",
        r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"nope"},"target":{"name":"node-a"}}"#,
    );
    let missing =
        k.run(&["create", "--raw", "/api/v1/namespaces/default/bindings", "-f", nope.to_str().unwrap()]);
    assert!(missing.fails().contains(r#"pods "nope" not found"#), "{}", missing.stderr);
}
