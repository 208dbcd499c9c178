//! `apps` printers: Deployment, ReplicaSet, DaemonSet, StatefulSet,
//! ControllerRevision.

use serde_json::Value;

use super::core::{CONTAINERS_DOC, IMAGES_DOC};
use super::docs;
use super::fields::{age, arr_at, get, int_at, name, opt_int, str_at};
use super::format::{container_cells, format_label_selector, format_labels, selector_string};
use super::{CellsFn, Column, Printer};

const DEPLOYMENT: &[Column] = &[
    Column::name(),
    Column::string("Ready", "Number of the pod with ready state"),
    Column::string("Up-to-date", docs::DEPLOY_UPDATED),
    Column::string("Available", docs::DEPLOY_AVAILABLE),
    Column::age(),
    Column::string("Containers", CONTAINERS_DOC).wide(),
    Column::string("Images", IMAGES_DOC).wide(),
    Column::string("Selector", docs::DEPLOY_SELECTOR).wide(),
];

const REPLICA_SET: &[Column] = &[
    Column::name(),
    Column::typed("Desired", "integer", docs::RS_SPEC_REPLICAS),
    Column::typed("Current", "integer", docs::RS_STATUS_REPLICAS),
    Column::typed("Ready", "integer", docs::RS_READY_REPLICAS),
    Column::age(),
    Column::string("Containers", CONTAINERS_DOC).wide(),
    Column::string("Images", IMAGES_DOC).wide(),
    Column::string("Selector", docs::RS_SELECTOR).wide(),
];

const DAEMON_SET: &[Column] = &[
    Column::name(),
    Column::typed("Desired", "integer", docs::DS_DESIRED),
    Column::typed("Current", "integer", docs::DS_CURRENT),
    Column::typed("Ready", "integer", docs::DS_READY),
    Column::typed("Up-to-date", "integer", docs::DS_UPDATED),
    Column::typed("Available", "integer", docs::DS_AVAILABLE),
    Column::string("Node Selector", docs::POD_NODE_SELECTOR),
    Column::age(),
    Column::string("Containers", CONTAINERS_DOC).wide(),
    Column::string("Images", IMAGES_DOC).wide(),
    Column::string("Selector", docs::DS_SELECTOR).wide(),
];

const STATEFUL_SET: &[Column] = &[
    Column::name(),
    Column::string("Ready", "Number of the pod with ready state"),
    Column::age(),
    Column::string("Containers", CONTAINERS_DOC).wide(),
    Column::string("Images", IMAGES_DOC).wide(),
];

const CONTROLLER_REVISION: &[Column] = &[
    Column::name(),
    Column::string("Controller", "Controller of the object"),
    Column::string("Revision", docs::CONTROLLER_REVISION),
    Column::age(),
];

pub(super) fn printer(kind: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Column], CellsFn) = match kind {
        "Deployment" => (DEPLOYMENT, deployment),
        "ReplicaSet" => (REPLICA_SET, replica_set),
        "DaemonSet" => (DAEMON_SET, daemon_set),
        "StatefulSet" => (STATEFUL_SET, stateful_set),
        "ControllerRevision" => (CONTROLLER_REVISION, controller_revision),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

/// `spec.replicas`, defaulted to 1 as the v1 API does.
fn desired(o: &Value) -> i64 {
    opt_int(o, &["spec", "replicas"]).unwrap_or(1)
}

fn template_containers(o: &Value) -> (String, String) {
    container_cells(arr_at(o, &["spec", "template", "spec", "containers"]))
}

fn deployment(o: &Value, now: i64) -> Vec<Value> {
    let (names, images) = template_containers(o);
    let selector = selector_string(get(o, &["spec", "selector"])).unwrap_or_else(|_| "<invalid>".to_string());
    cells![
        name(o),
        format!("{}/{}", int_at(o, &["status", "readyReplicas"]), desired(o)),
        int_at(o, &["status", "updatedReplicas"]),
        int_at(o, &["status", "availableReplicas"]),
        age(o, now),
        names,
        images,
        selector,
    ]
}

fn replica_set(o: &Value, now: i64) -> Vec<Value> {
    let (names, images) = template_containers(o);
    cells![
        name(o),
        desired(o),
        int_at(o, &["status", "replicas"]),
        int_at(o, &["status", "readyReplicas"]),
        age(o, now),
        names,
        images,
        format_label_selector(get(o, &["spec", "selector"])),
    ]
}

fn daemon_set(o: &Value, now: i64) -> Vec<Value> {
    let (names, images) = template_containers(o);
    let status = |f: &str| int_at(o, &["status", f]);
    cells![
        name(o),
        status("desiredNumberScheduled"),
        status("currentNumberScheduled"),
        status("numberReady"),
        status("updatedNumberScheduled"),
        status("numberAvailable"),
        format_labels(get(o, &["spec", "template", "spec", "nodeSelector"])),
        age(o, now),
        names,
        images,
        format_label_selector(get(o, &["spec", "selector"])),
    ]
}

fn stateful_set(o: &Value, now: i64) -> Vec<Value> {
    let (names, images) = template_containers(o);
    cells![
        name(o),
        format!("{}/{}", int_at(o, &["status", "readyReplicas"]), desired(o)),
        age(o, now),
        names,
        images
    ]
}

fn controller_revision(o: &Value, now: i64) -> Vec<Value> {
    let owner = arr_at(o, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| get(r, &["controller"]).and_then(Value::as_bool) == Some(true));
    let controller = owner.map_or_else(
        || "<none>".to_string(),
        |r| {
            let kind = str_at(r, &["kind"]);
            let api_version = str_at(r, &["apiVersion"]);
            let group =
                if api_version.contains('/') { api_version.split('/').next().unwrap_or("") } else { "" };
            let ref_name = str_at(r, &["name"]);
            match (group, kind) {
                ("", "") => ref_name.to_string(),
                ("", k) => format!("{}/{ref_name}", k.to_lowercase()),
                (g, k) => format!("{}.{}/{ref_name}", k.to_lowercase(), g.to_lowercase()),
            }
        },
    );
    cells![name(o), controller, int_at(o, &["revision"]), age(o, now)]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::printers::testing::{ago, names, row};

    fn template() -> serde_json::Value {
        json!({"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "fluent-bit"}]}})
    }

    #[test]
    fn deployment_ready_over_desired() {
        assert_eq!(
            names("apps", "Deployment"),
            ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]
        );
        let d = json!({"metadata": {"name": "web", "creationTimestamp": ago(86_400 + 7200)},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        assert_eq!(
            row("apps", "Deployment", &d),
            cells!["web", "2/3", 3, 2, "26h", "web,log", "nginx:1.27,fluent-bit", "app=web"]
        );
        let empty = json!({"metadata": {"name": "x"}, "spec": {"replicas": 0}});
        assert_eq!(row("apps", "Deployment", &empty)[1..4], cells!["0/0", 0, 0]);
        assert_eq!(row("apps", "Deployment", &empty)[7], "");
    }

    #[test]
    fn replica_set_daemon_set_stateful_set() {
        let rs = json!({"metadata": {"name": "web-5d8f"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f"}}, "template": template()},
            "status": {"replicas": 3, "readyReplicas": 1}});
        assert_eq!(row("apps", "ReplicaSet", &rs)[1..4], cells![3, 3, 1]);
        assert_eq!(row("apps", "ReplicaSet", &rs)[7], "app=web,pod-template-hash=5d8f");

        let mut ds_template = template();
        ds_template["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "linux"});
        let ds = json!({"metadata": {"name": "proxy"}, "spec": {"template": ds_template, "selector": {"matchLabels": {"k8s-app": "proxy"}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}});
        assert_eq!(
            row("apps", "DaemonSet", &ds),
            cells![
                "proxy",
                3,
                3,
                2,
                3,
                2,
                "kubernetes.io/os=linux",
                "<unknown>",
                "web,log",
                "nginx:1.27,fluent-bit",
                "k8s-app=proxy"
            ]
        );

        let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3, "template": template()}, "status": {"readyReplicas": 3}});
        assert_eq!(
            row("apps", "StatefulSet", &sts),
            cells!["db", "3/3", "<unknown>", "web,log", "nginx:1.27,fluent-bit"]
        );
        assert_eq!(names("apps", "StatefulSet"), ["Name", "Ready", "Age", "Containers", "Images"]);
    }

    #[test]
    fn controller_revision_names_its_owner() {
        let cr = json!({"metadata": {"name": "proxy-6b9", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "proxy", "controller": true}]}, "revision": 2});
        assert_eq!(
            row("apps", "ControllerRevision", &cr),
            cells!["proxy-6b9", "daemonset.apps/proxy", 2, "<unknown>"]
        );
        let orphan = json!({"metadata": {"name": "r"}, "revision": 1});
        assert_eq!(row("apps", "ControllerRevision", &orphan)[1], "<none>");
    }
}
