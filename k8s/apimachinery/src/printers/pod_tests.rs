use serde_json::{Value, json};

use crate::printers::testing::{ago, names, row};
use crate::printers::{columns, row_conditions};

fn pod(spec: Value, status: Value) -> Value {
    json!({"metadata": {"name": "p", "creationTimestamp": ago(3 * 3600)}, "spec": spec, "status": status})
}

fn running(name: &str, restarts: i64) -> Value {
    json!({"name": name, "ready": true, "restartCount": restarts, "state": {"running": {"startedAt": ago(600)}}})
}

/// READY, STATUS, RESTARTS.
fn summary(p: &Value) -> (String, String, String) {
    let c = row("", "Pod", p);
    let s = |i: usize| c[i].as_str().unwrap().to_string();
    (s(1), s(2), s(3))
}

fn trio(ready: &str, status: &str, restarts: &str) -> (String, String, String) {
    (ready.to_string(), status.to_string(), restarts.to_string())
}

#[test]
fn columns_and_wide_cells() {
    assert_eq!(
        names("", "Pod"),
        ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]
    );
    let cols = columns("", "Pod");
    assert_eq!(cols[3].type_, "string");
    assert!(cols[..5].iter().all(|c| c.priority == 0) && cols[5..].iter().all(|c| c.priority == 1));

    let p = pod(
        json!({"containers": [{"name": "web"}], "nodeName": "n1", "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]}),
        json!({"phase": "Running", "podIPs": [{"ip": "10.42.0.7"}, {"ip": "fd00::7"}],
               "conditions": [{"type": "Ready", "status": "True"}, {"type": "example.com/lb", "status": "True"}],
               "containerStatuses": [running("web", 0)]}),
    );
    assert_eq!(
        row("", "Pod", &p),
        cells!["p", "1/1", "Running", "0", "3h", "10.42.0.7", "n1", "<none>", "1/2"]
    );
    let pending = pod(json!({"containers": [{"name": "web"}]}), json!({"phase": "Pending"}));
    assert_eq!(row("", "Pod", &pending)[5..], cells!["<none>", "<none>", "<none>", "<none>"]);
}

#[test]
fn crash_loop_back_off_with_restarts() {
    let p = pod(
        json!({"containers": [{"name": "app"}, {"name": "proxy"}]}),
        json!({"phase": "Running", "containerStatuses": [
            {"name": "app", "ready": false, "restartCount": 7,
             "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
             "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(131 * 60)}}},
            running("proxy", 1)
        ]}),
    );
    assert_eq!(summary(&p), trio("1/2", "CrashLoopBackOff", "8 (131m ago)"));
}

#[test]
fn init_containers_in_progress_and_failing() {
    let spec =
        json!({"initContainers": [{"name": "migrate"}, {"name": "seed"}], "containers": [{"name": "app"}]});
    let waiting = |reason: &str| json!({"name": "migrate", "restartCount": 0, "state": {"waiting": {"reason": reason}}});
    let p = pod(
        spec.clone(),
        json!({"phase": "Pending", "initContainerStatuses": [waiting("PodInitializing"), {"name": "seed", "state": {"waiting": {}}}],
        "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]}),
    );
    assert_eq!(summary(&p), trio("0/1", "Init:0/2", "0"));

    let done = json!({"name": "migrate", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let p = pod(
        spec.clone(),
        json!({"phase": "Pending", "initContainerStatuses": [done.clone(), {"name": "seed", "state": {"running": {}}}]}),
    );
    assert_eq!(summary(&p).1, "Init:1/2");

    let crashing = json!({"name": "seed", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 2, "finishedAt": ago(45)}}});
    let p = pod(spec.clone(), json!({"phase": "Pending", "initContainerStatuses": [done.clone(), crashing]}));
    assert_eq!(summary(&p), trio("0/1", "Init:CrashLoopBackOff", "3 (45s ago)"));

    let p = pod(
        spec.clone(),
        json!({"phase": "Pending", "initContainerStatuses": [{"name": "migrate", "state": {"terminated": {"exitCode": 3}}}]}),
    );
    assert_eq!(summary(&p).1, "Init:ExitCode:3");
    let p = pod(
        spec.clone(),
        json!({"phase": "Pending", "initContainerStatuses": [{"name": "migrate", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
    );
    assert_eq!(summary(&p).1, "Init:Signal:9");
    let p = pod(
        spec,
        json!({"phase": "Failed", "initContainerStatuses": [{"name": "migrate", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}),
    );
    assert_eq!(summary(&p).1, "Init:Error");
}

#[test]
fn sidecars_count_towards_ready_and_restarts() {
    let spec = json!({"initContainers": [{"name": "mesh", "restartPolicy": "Always"}, {"name": "setup"}], "containers": [{"name": "app"}]});
    let mesh = json!({"name": "mesh", "started": true, "ready": true, "restartCount": 2,
        "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(7200)}}});
    let setup = json!({"name": "setup", "restartCount": 4, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let p = pod(
        spec.clone(),
        json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
        "initContainerStatuses": [mesh.clone(), setup], "containerStatuses": [running("app", 1)]}),
    );
    // Restarts of finished regular init containers do not count once initialized.
    assert_eq!(summary(&p), trio("2/2", "Running", "3 (120m ago)"));

    let not_started = json!({"name": "mesh", "started": false, "restartCount": 0, "state": {"running": {}}});
    let p = pod(
        spec,
        json!({"phase": "Pending", "initContainerStatuses": [not_started], "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]}),
    );
    assert_eq!(summary(&p), trio("0/2", "Init:0/2", "0"));
}

#[test]
fn completed_pods_and_row_conditions() {
    let done = json!({"name": "job", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let p = pod(
        json!({"containers": [{"name": "job"}]}),
        json!({"phase": "Succeeded", "containerStatuses": [done.clone()]}),
    );
    assert_eq!(summary(&p), trio("0/1", "Completed", "0"));
    assert_eq!(
        row_conditions("", "Pod", &p),
        Some(vec![
            json!({"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."})
        ])
    );
    let failed = pod(json!({}), json!({"phase": "Failed"}));
    assert_eq!(row_conditions("", "Pod", &failed).unwrap()[0]["message"], "The pod failed.");
    assert_eq!(row_conditions("", "Pod", &pod(json!({}), json!({"phase": "Running"}))), None);
    assert_eq!(row_conditions("apps", "Deployment", &failed), None);

    // One container completed while another still runs.
    let spec = json!({"containers": [{"name": "a"}, {"name": "job"}]});
    let status = |ready: &str| {
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": ready}],
        "containerStatuses": [running("a", 0), done.clone()]})
    };
    assert_eq!(summary(&pod(spec.clone(), status("True"))).1, "Running");
    assert_eq!(summary(&pod(spec, status("False"))).1, "NotReady");
}

#[test]
fn exit_codes_signals_and_terminating() {
    let spec = json!({"containers": [{"name": "a"}]});
    let killed = json!({"phase": "Running", "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 143, "signal": 15}}}]});
    assert_eq!(summary(&pod(spec.clone(), killed)).1, "Signal:15");
    let oom = json!({"phase": "Running", "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]});
    assert_eq!(summary(&pod(spec.clone(), oom)).1, "OOMKilled");

    let mut deleting = pod(spec.clone(), json!({"phase": "Running", "containerStatuses": [running("a", 0)]}));
    deleting["metadata"]["deletionTimestamp"] = json!(ago(5));
    assert_eq!(summary(&deleting), trio("1/1", "Terminating", "0"));
    deleting["status"]["reason"] = json!("NodeLost");
    assert_eq!(summary(&deleting).1, "Unknown");
    let mut finished = pod(spec, json!({"phase": "Succeeded"}));
    finished["metadata"]["deletionTimestamp"] = json!(ago(5));
    assert_eq!(summary(&finished).1, "Succeeded");
}

#[test]
fn scheduling_gated_and_evicted() {
    let gated = pod(
        json!({"containers": [{"name": "a"}]}),
        json!({"phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
    );
    assert_eq!(summary(&gated), trio("0/1", "SchedulingGated", "0"));
    let evicted =
        pod(json!({"containers": [{"name": "a"}]}), json!({"phase": "Failed", "reason": "Evicted"}));
    assert_eq!(summary(&evicted).1, "Evicted");
}
