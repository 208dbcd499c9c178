//! `batch` printers: Job and CronJob.

use serde_json::Value;

use super::core::{CONTAINERS_DOC, IMAGES_DOC};
use super::docs;
use super::duration::human_duration;
use super::fields::{
    age, arr_at, condition_true, get, int_at, is_deleting, len_at, name, opt_bool, opt_int, opt_str,
    since_at, time_at,
};
use super::format::{container_cells, format_label_selector};
use super::{Column, Printer, count};

const JOB: &[Column] = &[
    Column::name(),
    Column::string("Status", "Status of the job."),
    Column::string("Completions", docs::JOB_SUCCEEDED),
    Column::string("Duration", "Time required to complete the job."),
    Column::age(),
    Column::string("Containers", CONTAINERS_DOC).wide(),
    Column::string("Images", IMAGES_DOC).wide(),
    Column::string("Selector", docs::JOB_SELECTOR).wide(),
];

const CRON_JOB: &[Column] = &[
    Column::name(),
    Column::string("Schedule", docs::CRON_SCHEDULE),
    Column::string("Timezone", docs::CRON_TIME_ZONE),
    Column::typed("Suspend", "boolean", docs::CRON_SUSPEND),
    Column::typed("Active", "integer", docs::CRON_ACTIVE),
    Column::string("Last Schedule", docs::CRON_LAST_SCHEDULE),
    Column::age(),
    Column::string("Containers", CONTAINERS_DOC).wide(),
    Column::string("Images", IMAGES_DOC).wide(),
    Column::string("Selector", docs::JOB_SELECTOR).wide(),
];

pub(super) fn printer(kind: &str) -> Option<Printer> {
    match kind {
        "Job" => Some(Printer { columns: JOB, cells: job }),
        "CronJob" => Some(Printer { columns: CRON_JOB, cells: cron_job }),
        _ => None,
    }
}

fn job(o: &Value, now: i64) -> Vec<Value> {
    let succeeded = int_at(o, &["status", "succeeded"]);
    let completions = match opt_int(o, &["spec", "completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match opt_int(o, &["spec", "parallelism"]).unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (time_at(o, &["status", "startTime"]), time_at(o, &["status", "completionTime"])) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now.saturating_sub(start)),
        (Some(start), Some(end)) => human_duration(end.saturating_sub(start)),
    };
    let conditions = arr_at(o, &["status", "conditions"]);
    let status = if condition_true(conditions, "Complete") {
        "Complete"
    } else if condition_true(conditions, "Failed") {
        "Failed"
    } else if is_deleting(o) {
        "Terminating"
    } else if condition_true(conditions, "Suspended") {
        "Suspended"
    } else if condition_true(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(arr_at(o, &["spec", "template", "spec", "containers"]));
    cells![
        name(o),
        status,
        completions,
        duration,
        age(o, now),
        names,
        images,
        format_label_selector(get(o, &["spec", "selector"])),
    ]
}

fn cron_job(o: &Value, now: i64) -> Vec<Value> {
    let last_schedule = match time_at(o, &["status", "lastScheduleTime"]) {
        Some(_) => since_at(o, &["status", "lastScheduleTime"], now),
        None => "<none>".to_string(),
    };
    let job_spec = &["spec", "jobTemplate", "spec"];
    let (names, images) =
        container_cells(arr_at(o, &[job_spec, &["template", "spec", "containers"][..]].concat()));
    cells![
        name(o),
        opt_str(o, &["spec", "schedule"]).unwrap_or(""),
        opt_str(o, &["spec", "timeZone"]).unwrap_or("<none>"),
        super::fields::bool_ptr(opt_bool(o, &["spec", "suspend"])),
        count(len_at(o, &["status", "active"])),
        last_schedule,
        age(o, now),
        names,
        images,
        format_label_selector(get(o, &[job_spec, &["selector"][..]].concat())),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::printers::testing::{ago, names, row};

    fn job(spec: serde_json::Value, status: serde_json::Value) -> serde_json::Value {
        json!({"metadata": {"name": "pi", "creationTimestamp": ago(600)}, "spec": spec, "status": status})
    }

    #[test]
    fn completed_job() {
        assert_eq!(
            names("batch", "Job"),
            ["Name", "Status", "Completions", "Duration", "Age", "Containers", "Images", "Selector"]
        );
        let j = job(
            json!({"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                   "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}]}}}),
            json!({"succeeded": 1, "startTime": ago(590), "completionTime": ago(547),
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}),
        );
        assert_eq!(
            row("batch", "Job", &j),
            cells![
                "pi",
                "Complete",
                "1/1",
                "43s",
                "10m",
                "pi",
                "perl:5.34",
                "batch.kubernetes.io/controller-uid=u1"
            ]
        );
    }

    #[test]
    fn job_status_precedence_and_completions() {
        let running = job(json!({"parallelism": 3}), json!({"succeeded": 1, "startTime": ago(125)}));
        assert_eq!(row("batch", "Job", &running)[1..4], cells!["Running", "1/1 of 3", "2m5s"]);
        let unstarted = job(json!({}), json!({}));
        assert_eq!(row("batch", "Job", &unstarted)[1..4], cells!["Running", "0/1", ""]);
        let failed = job(
            json!({"completions": 5}),
            json!({"failed": 6, "conditions": [
            {"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}]}),
        );
        assert_eq!(row("batch", "Job", &failed)[1..3], cells!["Failed", "0/5"]);
        let suspended =
            job(json!({"completions": 2}), json!({"conditions": [{"type": "Suspended", "status": "True"}]}));
        assert_eq!(row("batch", "Job", &suspended)[1], "Suspended");
        let mut deleting = job(json!({}), json!({"conditions": [{"type": "Suspended", "status": "True"}]}));
        deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(row("batch", "Job", &deleting)[1], "Terminating");
        let target = job(json!({}), json!({"conditions": [{"type": "FailureTarget", "status": "True"}]}));
        assert_eq!(row("batch", "Job", &target)[1], "FailureTarget");
    }

    #[test]
    fn cron_job() {
        let cj = json!({"metadata": {"name": "backup", "creationTimestamp": ago(3 * 86_400)},
            "spec": {"schedule": "*/5 * * * *", "suspend": false, "jobTemplate": {"spec": {
                "template": {"spec": {"containers": [{"name": "b", "image": "restic"}]}}}}},
            "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": ago(65)}});
        assert_eq!(
            row("batch", "CronJob", &cj),
            cells!["backup", "*/5 * * * *", "<none>", "False", 1, "65s", "3d", "b", "restic", "<none>"]
        );
        let bare =
            json!({"metadata": {"name": "c"}, "spec": {"schedule": "@daily", "timeZone": "Europe/Paris"}});
        assert_eq!(
            row("batch", "CronJob", &bare)[1..6],
            cells!["@daily", "Europe/Paris", "<unset>", 0, "<none>"]
        );
    }
}
