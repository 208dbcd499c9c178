//! Pod status as upstream's kubelet computes it (`getPhase`,
//! `convertToAPIContainerStatuses`, the pod conditions), from the spec,
//! what CRI reports and what the worker knows (waiting reasons, probes).

use std::collections::HashMap;

use lichen_apimachinery::timestamp::format_rfc3339;
use serde_json::{Value, json};

use super::runtime::{Instance, PodRuntime};
use crate::spec::{Container, Pod};

/// What the worker knows about a container beyond CRI.
#[derive(Debug, Clone, Default)]
pub struct ContainerView {
    /// A waiting reason and message (image pull errors, config errors,
    /// back-off), shown while no instance runs.
    pub waiting: Option<(String, String)>,
    pub ready: bool,
    pub started: bool,
    /// The termination message read from the instance's termination log.
    pub termination_message: HashMap<String, String>,
}

pub fn cri_time(nanos: i64) -> Value {
    if nanos <= 0 { Value::Null } else { json!(format_rfc3339(nanos / 1_000_000_000)) }
}

fn terminated(i: &Instance, message: Option<&String>) -> Value {
    let mut t = json!({
        "exitCode": i.exit_code,
        "reason": if i.reason.is_empty() { if i.exit_code == 0 { "Completed" } else { "Error" } } else { i.reason.as_str() },
        "startedAt": cri_time(i.started_at),
        "finishedAt": cri_time(i.finished_at),
        "containerID": format!("containerd://{}", i.id),
    });
    let msg = message.cloned().unwrap_or_else(|| i.message.clone());
    if !msg.is_empty() {
        t["message"] = json!(msg);
    }
    t
}

/// One container's status; `default_waiting` is the reason shown before the
/// first start (`ContainerCreating`, or `PodInitializing` behind init containers).
pub fn container_status(
    c: &Container,
    rt: &PodRuntime,
    view: &ContainerView,
    default_waiting: &str,
) -> Value {
    let latest = rt.latest(&c.name);
    let mut st = json!({
        "name": c.name,
        "image": latest.map(|i| i.image.as_str()).filter(|s| !s.is_empty()).unwrap_or(&c.image),
        "imageID": latest.map(|i| i.image_ref.as_str()).unwrap_or(""),
        "ready": false,
        "restartCount": latest.map(|i| i.attempt).unwrap_or(0),
        "started": false,
        "lastState": {},
    });
    let msg = |i: &Instance| view.termination_message.get(&i.id);
    match latest {
        Some(i) if i.running() => {
            st["state"] = json!({"running": {"startedAt": cri_time(i.started_at)}});
            st["ready"] = json!(view.ready);
            st["started"] = json!(view.started);
            st["containerID"] = json!(format!("containerd://{}", i.id));
            if let Some(p) = rt.previous(&c.name).filter(|p| p.exited()) {
                st["lastState"] = json!({"terminated": terminated(p, msg(p))});
            }
        }
        Some(i) if i.exited() => {
            st["containerID"] = json!(format!("containerd://{}", i.id));
            match &view.waiting {
                Some((reason, message)) => {
                    st["state"] = json!({"waiting": {"reason": reason, "message": message}});
                    st["lastState"] = json!({"terminated": terminated(i, msg(i))});
                }
                None => {
                    st["state"] = json!({"terminated": terminated(i, msg(i))});
                    if let Some(p) = rt.previous(&c.name).filter(|p| p.exited()) {
                        st["lastState"] = json!({"terminated": terminated(p, msg(p))});
                    }
                }
            }
        }
        other => {
            let (reason, message) =
                view.waiting.clone().unwrap_or_else(|| (default_waiting.to_owned(), String::new()));
            let mut w = json!({"reason": reason});
            if !message.is_empty() {
                w["message"] = json!(message);
            }
            st["state"] = json!({"waiting": w});
            if let Some(i) = other {
                st["containerID"] = json!(format!("containerd://{}", i.id));
                if let Some(p) = rt.previous(&c.name).filter(|p| p.exited()) {
                    st["lastState"] = json!({"terminated": terminated(p, msg(p))});
                }
            }
        }
    }
    st
}

fn state_of(s: &Value) -> &str {
    ["running", "terminated", "waiting"]
        .into_iter()
        .find(|k| s["state"].get(*k).is_some())
        .unwrap_or("waiting")
}

/// `getPhase`: Pending, Running, Succeeded or Failed.
pub fn phase(pod: &Pod, init_done: bool, init_failed: bool, statuses: &[Value]) -> &'static str {
    if init_failed {
        return "Failed";
    }
    if !init_done {
        return "Pending";
    }
    let (mut waiting, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in statuses {
        match state_of(s) {
            "running" => running += 1,
            "terminated" => {
                stopped += 1;
                if s["state"]["terminated"]["exitCode"] == 0 {
                    succeeded += 1;
                }
            }
            _ => {
                if s["lastState"].get("terminated").is_some() {
                    stopped += 1;
                } else {
                    waiting += 1;
                }
            }
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 && stopped == statuses.len() {
        // Upstream's order: Always restarts whatever the exit codes.
        return match pod.spec.restart_policy() {
            "Always" => "Running",
            _ if succeeded == statuses.len() => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        };
    }
    "Pending"
}

fn condition(kind: &str, ok: bool, reason: &str, message: &str, old: &Value) -> Value {
    let status = if ok { "True" } else { "False" };
    let prev = old["conditions"].as_array().and_then(|a| a.iter().find(|c| c["type"] == kind));
    let since = match prev {
        Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
        _ => json!(crate::now_rfc3339()),
    };
    let mut c = json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": since});
    if !ok && !reason.is_empty() {
        c["reason"] = json!(reason);
        c["message"] = json!(message);
    }
    c
}

/// Everything the status needs that the worker computed.
pub struct Inputs<'a> {
    pub pod: &'a Pod,
    pub rt: &'a PodRuntime,
    pub views: &'a HashMap<String, ContainerView>,
    pub init_done: bool,
    pub init_failed: bool,
    /// A phase decided elsewhere (a pod past its active deadline).
    pub forced: Option<(&'static str, String, String)>,
    pub host_ip: &'a str,
    pub start_time: &'a str,
}

pub fn pod_status(i: &Inputs<'_>) -> Value {
    let pod = i.pod;
    let empty = ContainerView::default();
    let view = |n: &str| i.views.get(n).unwrap_or(&empty);
    let init_statuses: Vec<Value> = pod
        .spec
        .init_containers
        .iter()
        .map(|c| container_status(c, i.rt, view(&c.name), "PodInitializing"))
        .collect();
    let default_waiting = if i.init_done { "ContainerCreating" } else { "PodInitializing" };
    let statuses: Vec<Value> = pod
        .spec
        .containers
        .iter()
        .map(|c| container_status(c, i.rt, view(&c.name), default_waiting))
        .collect();
    let mut phase = phase(pod, i.init_done, i.init_failed, &statuses);
    let old = &pod.status;
    // A terminal phase is never left (upstream: pods do not come back).
    if let Some(p @ ("Succeeded" | "Failed")) = old["phase"].as_str() {
        phase = if p == "Succeeded" { "Succeeded" } else { "Failed" };
    }
    let mut reason_msg = None;
    if let Some((p, reason, message)) = &i.forced {
        phase = p;
        reason_msg = Some((reason.clone(), message.clone()));
    }
    let unready: Vec<&str> =
        statuses.iter().filter(|s| s["ready"] != true).filter_map(|s| s["name"].as_str()).collect();
    let incomplete: Vec<&str> =
        pod.spec
            .init_containers
            .iter()
            .zip(&init_statuses)
            .filter(|(c, s)| {
                if c.is_sidecar() { s["started"] != true } else { s["state"]["terminated"]["exitCode"] != 0 }
            })
            .map(|(c, _)| c.name.as_str())
            .collect();
    let containers_ready = unready.is_empty() && !matches!(phase, "Succeeded" | "Failed");
    let mut ready_reason =
        ("ContainersNotReady", format!("containers with unready status: [{}]", unready.join(" ")));
    if matches!(phase, "Succeeded" | "Failed") {
        ready_reason = ("PodCompleted", String::new());
    }
    let mut conditions = vec![
        condition("PodReadyToStartContainers", i.rt.sandbox.as_ref().is_some_and(|s| s.ready), "", "", old),
        condition(
            "Initialized",
            i.init_done,
            if matches!(phase, "Succeeded" | "Failed") && !i.init_done {
                "PodCompleted"
            } else {
                "ContainersNotInitialized"
            },
            &format!("containers with incomplete status: [{}]", incomplete.join(" ")),
            old,
        ),
        condition("Ready", containers_ready, ready_reason.0, &ready_reason.1, old),
        condition("ContainersReady", containers_ready, ready_reason.0, &ready_reason.1, old),
    ];
    if let Some(s) = old["conditions"].as_array().and_then(|a| a.iter().find(|c| c["type"] == "PodScheduled"))
    {
        conditions.push(s.clone());
    }
    let ips: Vec<Value> =
        i.rt.sandbox.as_ref().map(|s| s.ips.iter().map(|ip| json!({"ip": ip})).collect()).unwrap_or_default();
    let pod_ip = i.rt.sandbox.as_ref().map(|s| s.ip.clone()).filter(|s| !s.is_empty());
    let mut st = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": i.host_ip,
        "hostIPs": [{"ip": i.host_ip}],
        "startTime": i.start_time,
        "containerStatuses": statuses,
        "qosClass": old["qosClass"].as_str().unwrap_or("BestEffort"),
    });
    if !init_statuses.is_empty() {
        st["initContainerStatuses"] = json!(init_statuses);
    }
    if pod.spec.host_network {
        st["podIP"] = json!(i.host_ip);
        st["podIPs"] = json!([{"ip": i.host_ip}]);
    } else if let Some(ip) = pod_ip {
        st["podIP"] = json!(ip);
        st["podIPs"] = json!(ips);
    } else if let Some(ip) = old["podIP"].as_str() {
        // Keep the last known IP once the sandbox is gone (upstream does).
        st["podIP"] = json!(ip);
        st["podIPs"] = old["podIPs"].clone();
    }
    if let Some((reason, message)) = reason_msg {
        st["reason"] = json!(reason);
        st["message"] = json!(message);
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::env::pod_from;
    use crate::pods::runtime::Sandbox;

    fn inst(name: &str, attempt: u32, state: i32, exit: i32) -> Instance {
        Instance {
            id: format!("{name}{attempt}"),
            name: name.into(),
            attempt,
            state,
            created_at: 1,
            started_at: 2_000_000_000,
            finished_at: if state == 2 { 3_000_000_000 } else { 0 },
            exit_code: exit,
            reason: String::new(),
            message: String::new(),
            image: "docker.io/library/busybox:latest".into(),
            image_ref: "sha256:abc".into(),
            log_path: String::new(),
            hash: String::new(),
            sandbox_id: "s".into(),
        }
    }

    fn pod(policy: &str) -> Pod {
        pod_from(&json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": {"restartPolicy": policy, "containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]},
            "status": {"qosClass": "BestEffort", "conditions": [{"type": "PodScheduled", "status": "True"}]},
        }))
    }

    fn rt(instances: Vec<Instance>) -> PodRuntime {
        let mut rt = PodRuntime {
            sandbox: Some(Sandbox {
                id: "s".into(),
                attempt: 0,
                ready: true,
                ip: "10.42.0.9".into(),
                ips: vec!["10.42.0.9".into()],
            }),
            ..Default::default()
        };
        for i in instances {
            rt.containers.entry(i.name.clone()).or_default().push(i);
        }
        rt
    }

    fn status(p: &Pod, r: &PodRuntime, views: &HashMap<String, ContainerView>) -> Value {
        pod_status(&Inputs {
            pod: p,
            rt: r,
            views,
            init_done: true,
            init_failed: false,
            forced: None,
            host_ip: "192.0.2.1",
            start_time: "2026-01-01T00:00:00Z",
        })
    }

    #[test]
    fn phases() {
        let views = HashMap::new();
        let p = pod("Always");
        assert_eq!(status(&p, &rt(vec![]), &views)["phase"], "Pending");
        assert_eq!(status(&p, &rt(vec![inst("a", 0, 1, 0), inst("b", 0, 1, 0)]), &views)["phase"], "Running");
        // Always restarts even containers that exited 0: still Running.
        assert_eq!(status(&p, &rt(vec![inst("a", 0, 2, 0), inst("b", 0, 2, 0)]), &views)["phase"], "Running");
        let on_failure = pod("OnFailure");
        let done = rt(vec![inst("a", 0, 2, 0), inst("b", 0, 2, 0)]);
        assert_eq!(status(&on_failure, &done, &views)["phase"], "Succeeded");
        let one_failed = rt(vec![inst("a", 0, 2, 1), inst("b", 0, 2, 0)]);
        assert_eq!(status(&on_failure, &one_failed, &views)["phase"], "Running");
        assert_eq!(status(&p, &rt(vec![inst("a", 0, 2, 1), inst("b", 0, 2, 0)]), &views)["phase"], "Running");
        let never = pod("Never");
        assert_eq!(
            status(&never, &rt(vec![inst("a", 0, 2, 1), inst("b", 0, 2, 0)]), &views)["phase"],
            "Failed"
        );
    }

    #[test]
    fn crash_loop_stays_running_with_last_state() {
        let p = pod("Always");
        let mut views = HashMap::new();
        views.insert(
            "a".to_owned(),
            ContainerView {
                waiting: Some(("CrashLoopBackOff".into(), "back-off 10s".into())),
                ..Default::default()
            },
        );
        let s = status(&p, &rt(vec![inst("a", 3, 2, 1), inst("b", 0, 1, 0)]), &views);
        assert_eq!(s["phase"], "Running");
        let a = &s["containerStatuses"][0];
        assert_eq!(a["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(a["lastState"]["terminated"]["exitCode"], 1);
        assert_eq!(a["lastState"]["terminated"]["reason"], "Error");
        assert_eq!(a["restartCount"], 3);
        assert_eq!(s["conditions"][2]["type"], "Ready");
        assert_eq!(s["conditions"][2]["message"], "containers with unready status: [a b]");
        assert_eq!(s["conditions"][4]["type"], "PodScheduled");
        assert_eq!(s["podIP"], "10.42.0.9");
    }
}
