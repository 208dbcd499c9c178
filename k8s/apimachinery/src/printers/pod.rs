//! The Pod printer: READY, STATUS and RESTARTS exactly as upstream's
//! `printPod` derives them, including init containers, sidecars
//! (restartable init containers) and deletion.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::docs;
use super::duration::human_duration;
use super::fields::{age, arr_at, get, int_at, is_deleting, name, str_at, time_at};
use super::{Column, Printer};

const COLUMNS: &[Column] = &[
    Column::name(),
    Column::string("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    Column::string("Status", "The aggregate status of the containers in this pod."),
    Column::string(
        "Restarts",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    Column::age(),
    Column::string("IP", docs::POD_IP).wide(),
    Column::string("Node", docs::POD_NODE_NAME).wide(),
    Column::string("Nominated Node", docs::POD_NOMINATED_NODE_NAME).wide(),
    Column::string("Readiness Gates", docs::POD_READINESS_GATES).wide(),
];

pub(super) const PRINTER: Printer = Printer { columns: COLUMNS, cells: pod_cells };

/// The `Completed` row condition of finished pods.
pub(super) fn row_conditions(pod: &Value) -> Option<Vec<Value>> {
    let (reason, message) = match str_at(pod, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(vec![json!({"type": "Completed", "status": "True", "reason": reason, "message": message})])
}

/// The latest `lastState.terminated.finishedAt` seen so far.
fn track_restart(latest: &mut Option<i64>, status: &Value) {
    if let Some(t) = time_at(status, &["lastState", "terminated", "finishedAt"]) {
        *latest = Some(latest.map_or(t, |l| l.max(t)));
    }
}

fn is_sidecar(container: Option<&&Value>) -> bool {
    container.is_some_and(|c| str_at(c, &["restartPolicy"]) == "Always")
}

fn condition_status<'a>(pod: &'a Value, type_: &str) -> Option<&'a str> {
    arr_at(pod, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == type_)
        .map(|c| str_at(c, &["status"]))
}

fn terminated_reason(terminated: &Value, prefix: &str) -> String {
    match str_at(terminated, &["reason"]) {
        "" => match int_at(terminated, &["signal"]) {
            0 => format!("{prefix}ExitCode:{}", int_at(terminated, &["exitCode"])),
            signal => format!("{prefix}Signal:{signal}"),
        },
        reason => format!("{prefix}{reason}"),
    }
}

fn pod_cells(pod: &Value, now: i64) -> Vec<Value> {
    let spec_init = arr_at(pod, &["spec", "initContainers"]);
    let init_by_name: HashMap<&str, &Value> = spec_init.iter().map(|c| (str_at(c, &["name"]), c)).collect();
    let sidecars = spec_init.iter().filter(|c| is_sidecar(Some(c))).count();
    let total = arr_at(pod, &["spec", "containers"]).len() + sidecars;

    let phase = str_at(pod, &["status", "phase"]);
    let mut reason = match str_at(pod, &["status", "reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    let gated = arr_at(pod, &["status", "conditions"])
        .iter()
        .any(|c| str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated");
    if gated {
        reason = "SchedulingGated".to_string();
    }

    let (mut restarts, mut sidecar_restarts, mut ready) = (0i64, 0i64, 0usize);
    let (mut last_restart, mut last_sidecar_restart) = (None, None);
    let mut initializing = false;
    for (i, status) in arr_at(pod, &["status", "initContainerStatuses"]).iter().enumerate() {
        restarts += int_at(status, &["restartCount"]);
        track_restart(&mut last_restart, status);
        let sidecar = is_sidecar(init_by_name.get(str_at(status, &["name"])));
        if sidecar {
            sidecar_restarts += int_at(status, &["restartCount"]);
            track_restart(&mut last_sidecar_restart, status);
        }
        let terminated = get(status, &["state", "terminated"]).filter(|t| !t.is_null());
        let waiting_reason = str_at(status, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if sidecar && get(status, &["started"]).and_then(Value::as_bool) == Some(true) {
            if super::fields::bool_at(status, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        reason = match terminated {
            Some(t) => terminated_reason(t, "Init:"),
            None if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" => {
                format!("Init:{waiting_reason}")
            }
            None => format!("Init:{i}/{}", spec_init.len()),
        };
        initializing = true;
        break;
    }

    if !initializing || condition_status(pod, "Initialized") == Some("True") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in arr_at(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int_at(status, &["restartCount"]);
            track_restart(&mut last_restart, status);
            let terminated = get(status, &["state", "terminated"]).filter(|t| !t.is_null());
            let waiting_reason = str_at(status, &["state", "waiting", "reason"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = terminated_reason(t, "");
            } else if super::fields::bool_at(status, &["ready"])
                && super::fields::is_set(status, &["state", "running"])
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_status(pod, "Ready") == Some("True") { "Running" } else { "NotReady" }
                .to_string();
        }
    }

    if is_deleting(pod) && str_at(pod, &["status", "reason"]) == "NodeLost" {
        reason = "Unknown".to_string();
    } else if is_deleting(pod) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now.saturating_sub(t))),
        _ => restarts.to_string(),
    };

    let or_none = |s: &str| if s.is_empty() { "<none>".to_string() } else { s.to_string() };
    let ip = arr_at(pod, &["status", "podIPs"]).first().map_or("", |p| str_at(p, &["ip"]));
    let gates = arr_at(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let ok = gates
            .iter()
            .filter(|g| condition_status(pod, str_at(g, &["conditionType"])) == Some("True"))
            .count();
        format!("{ok}/{}", gates.len())
    };
    cells![
        name(pod),
        format!("{ready}/{total}"),
        reason,
        restarts_cell,
        age(pod, now),
        or_none(ip),
        or_none(str_at(pod, &["spec", "nodeName"])),
        or_none(str_at(pod, &["status", "nominatedNodeName"])),
        readiness_gates,
    ]
}

#[cfg(test)]
#[path = "pod_tests.rs"]
mod tests;
