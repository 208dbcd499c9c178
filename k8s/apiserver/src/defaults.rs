//! Defaulting of built-in types, as upstream's `SetDefaults_*` functions and
//! default admission plugins do, for the fields users see in
//! `kubectl get -o yaml`. Defaulting runs on every write (upstream defaults
//! while decoding), so it only fills what is missing.

use lichen_apimachinery::resources::Resource;
use serde_json::{Map, Value, json};

/// Sets `obj[key]` if it is missing or null.
fn fill(obj: &mut Value, key: &str, value: Value) {
    if let Some(o) = obj.as_object_mut() {
        let slot = o.entry(key.to_string()).or_insert(Value::Null);
        if slot.is_null() {
            *slot = value;
        }
    }
}

/// `obj[key]` as an object, created if missing.
fn child<'a>(obj: &'a mut Value, key: &str) -> &'a mut Value {
    fill(obj, key, json!({}));
    &mut obj[key]
}

/// Runs `f` on each element of the list `obj[key]`, if there is one
/// (never inserting the key: `IndexMut` on a JSON object would add a null).
fn each(obj: &mut Value, key: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = obj.get_mut(key).and_then(Value::as_array_mut) {
        items.iter_mut().for_each(&mut f);
    }
}

fn kind(res: &Resource) -> (&str, &str) {
    (res.group.as_str(), res.kind.as_str())
}

/// Defaults for a new object (create only: initial status, admission).
pub fn on_create(res: &Resource, obj: &mut Value) {
    on_update(res, obj);
    match kind(res) {
        ("", "Pod") => {
            let spec = child(obj, "spec");
            fill(spec, "serviceAccountName", json!("default"));
            fill(spec, "priority", json!(0));
            fill(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
            // DefaultTolerationSeconds admission.
            let tolerations = child_array(spec, "tolerations");
            for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
                if !tolerations.iter().any(|t| t["key"] == key) {
                    tolerations.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
                }
            }
            let qos = qos_class(&obj["spec"]);
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        ("", "Namespace") => {
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "PersistentVolumeClaim" | "PersistentVolume") => {
            obj["status"] = json!({"phase": "Pending"});
        }
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job" | "CronJob") => {
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
            fill(obj, "status", json!({}));
        }
        _ => {}
    }
}

fn child_array<'a>(obj: &'a mut Value, key: &str) -> &'a mut Vec<Value> {
    fill(obj, key, json!([]));
    if !obj[key].is_array() {
        obj[key] = json!([]);
    }
    match obj[key].as_array_mut() {
        Some(a) => a,
        None => unreachable_array(),
    }
}

#[allow(clippy::panic)]
fn unreachable_array() -> ! {
    panic!("child_array just made an array")
}

/// Defaults applied on every write.
pub fn on_update(res: &Resource, obj: &mut Value) {
    match kind(res) {
        ("", "Secret") => {
            // `stringData` is write-only: merged into `data` (base64), as
            // upstream's secret strategy does; it wins over `data`.
            fill(obj, "type", json!("Opaque"));
            let string_data = obj.as_object_mut().and_then(|o| o.remove("stringData"));
            if let Some(Value::Object(sd)) = string_data {
                use base64::Engine;
                let data = child(obj, "data");
                if !data.is_object() {
                    *data = json!({});
                }
                for (k, v) in sd {
                    let text = v.as_str().unwrap_or_default();
                    data[k.as_str()] = json!(base64::engine::general_purpose::STANDARD.encode(text));
                }
            }
        }
        ("", "Namespace") => {
            let name = obj["metadata"]["name"].clone();
            let labels = child(child(obj, "metadata"), "labels");
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), name);
            }
            let spec = child(obj, "spec");
            fill(spec, "finalizers", json!(["kubernetes"]));
        }
        ("", "Pod") => {
            let spec = child(obj, "spec");
            pod_spec(spec);
            // Set for Pods only, not templates (upstream's pod strategy).
            fill(spec, "enableServiceLinks", json!(true));
        }
        ("", "PodTemplate") => pod_spec(child(child(obj, "template"), "spec")),
        ("", "ReplicationController") => {
            let spec = child(obj, "spec");
            fill(spec, "replicas", json!(1));
            pod_spec(child(child(spec, "template"), "spec"));
        }
        ("", "Service") => service(child(obj, "spec")),
        ("", "PersistentVolumeClaim") => fill(child(obj, "spec"), "volumeMode", json!("Filesystem")),
        ("", "PersistentVolume") => {
            let spec = child(obj, "spec");
            fill(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
            fill(spec, "volumeMode", json!("Filesystem"));
        }
        ("apps", "Deployment") => {
            let spec = child(obj, "spec");
            fill(spec, "replicas", json!(1));
            fill(spec, "revisionHistoryLimit", json!(10));
            fill(spec, "progressDeadlineSeconds", json!(600));
            let strategy = child(spec, "strategy");
            fill(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                let ru = child(strategy, "rollingUpdate");
                fill(ru, "maxUnavailable", json!("25%"));
                fill(ru, "maxSurge", json!("25%"));
            }
            pod_spec(child(child(spec, "template"), "spec"));
        }
        ("apps", "ReplicaSet") => {
            let spec = child(obj, "spec");
            fill(spec, "replicas", json!(1));
            pod_spec(child(child(spec, "template"), "spec"));
        }
        ("apps", "DaemonSet") => {
            let spec = child(obj, "spec");
            fill(spec, "revisionHistoryLimit", json!(10));
            let strategy = child(spec, "updateStrategy");
            fill(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                let ru = child(strategy, "rollingUpdate");
                fill(ru, "maxUnavailable", json!(1));
                fill(ru, "maxSurge", json!(0));
            }
            pod_spec(child(child(spec, "template"), "spec"));
        }
        ("apps", "StatefulSet") => {
            let spec = child(obj, "spec");
            fill(spec, "replicas", json!(1));
            fill(spec, "revisionHistoryLimit", json!(10));
            fill(spec, "podManagementPolicy", json!("OrderedReady"));
            let strategy = child(spec, "updateStrategy");
            fill(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                fill(child(strategy, "rollingUpdate"), "partition", json!(0));
            }
            fill(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            pod_spec(child(child(spec, "template"), "spec"));
        }
        ("batch", "Job") => job(obj),
        ("batch", "CronJob") => {
            let spec = child(obj, "spec");
            fill(spec, "concurrencyPolicy", json!("Allow"));
            fill(spec, "suspend", json!(false));
            fill(spec, "successfulJobsHistoryLimit", json!(3));
            fill(spec, "failedJobsHistoryLimit", json!(1));
            let jt = child(child(spec, "jobTemplate"), "spec");
            job_spec(jt);
        }
        ("storage.k8s.io", "StorageClass") => {
            fill(obj, "reclaimPolicy", json!("Delete"));
            fill(obj, "volumeBindingMode", json!("Immediate"));
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            fill(obj, "preemptionPolicy", json!("PreemptLowerPriority"))
        }
        _ => {}
    }
}

fn job(obj: &mut Value) {
    // The job's own selector, unless the user manages it (upstream's
    // generateSelector): both keys, the uid and the job name.
    let uid = obj["metadata"]["uid"].clone();
    let name = obj["metadata"]["name"].clone();
    let spec = child(obj, "spec");
    job_spec(spec);
    if spec["manualSelector"] != json!(true) && uid.is_string() {
        let labels = json!({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
            "controller-uid": uid, "job-name": name});
        fill(spec, "selector", json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}));
        let meta = child(child(spec, "template"), "metadata");
        let tl = child(meta, "labels");
        if let (Some(tl), Some(l)) = (tl.as_object_mut(), labels.as_object()) {
            for (k, v) in l {
                tl.entry(k.clone()).or_insert(v.clone());
            }
        }
    }
}

fn job_spec(spec: &mut Value) {
    let both_unset = spec["parallelism"].is_null() && spec["completions"].is_null();
    if both_unset {
        spec["completions"] = json!(1);
    }
    fill(spec, "parallelism", json!(1));
    fill(spec, "backoffLimit", json!(6));
    fill(spec, "completionMode", json!("NonIndexed"));
    fill(spec, "suspend", json!(false));
    fill(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    pod_spec(child(child(spec, "template"), "spec"));
}

fn service(spec: &mut Value) {
    fill(spec, "type", json!("ClusterIP"));
    fill(spec, "sessionAffinity", json!("None"));
    if spec["type"] != "ExternalName" {
        fill(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if matches!(spec["type"].as_str(), Some("NodePort" | "LoadBalancer")) {
        fill(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    each(spec, "ports", |p| {
        fill(p, "protocol", json!("TCP"));
        let port = p["port"].clone();
        fill(p, "targetPort", port);
    });
}

fn probe(p: &mut Value) {
    if !p.is_object() {
        return;
    }
    fill(p, "timeoutSeconds", json!(1));
    fill(p, "periodSeconds", json!(10));
    fill(p, "successThreshold", json!(1));
    fill(p, "failureThreshold", json!(3));
    if p["httpGet"].is_object() {
        fill(&mut p["httpGet"], "scheme", json!("HTTP"));
        fill(&mut p["httpGet"], "path", json!("/"));
    }
}

fn container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or("").to_string();
    let last = image.rsplit('/').next().unwrap_or("");
    let untagged = !last.contains(':') && !image.contains('@');
    let latest = last.ends_with(":latest");
    fill(c, "imagePullPolicy", json!(if untagged || latest { "Always" } else { "IfNotPresent" }));
    fill(c, "terminationMessagePath", json!("/dev/termination-log"));
    fill(c, "terminationMessagePolicy", json!("File"));
    fill(c, "resources", json!({}));
    each(c, "ports", |p| fill(p, "protocol", json!("TCP")));
    each(c, "env", |e| {
        if e["valueFrom"]["fieldRef"].is_object() {
            fill(&mut e["valueFrom"]["fieldRef"], "apiVersion", json!("v1"));
        }
    });
    for p in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if c.get(p).is_some() {
            probe(&mut c[p]);
        }
    }
}

fn pod_spec(spec: &mut Value) {
    fill(spec, "restartPolicy", json!("Always"));
    fill(spec, "dnsPolicy", json!("ClusterFirst"));
    fill(spec, "terminationGracePeriodSeconds", json!(30));
    fill(spec, "securityContext", json!({}));
    fill(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        if spec.get(list).is_some() {
            each(spec, list, container);
        }
    }
    if spec.get("volumes").is_some() {
        each(spec, "volumes", |v| {
            for src in ["configMap", "secret"] {
                if v[src].is_object() {
                    fill(&mut v[src], "defaultMode", json!(420));
                }
            }
            if v["hostPath"].is_object() {
                fill(&mut v["hostPath"], "type", json!(""));
            }
        });
    }
}

/// Upstream's QoS class: Guaranteed when every container has equal,
/// non-zero CPU and memory requests and limits; BestEffort when nothing is
/// set; Burstable otherwise.
pub fn qos_class(spec: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    let containers =
        spec["containers"].as_array().into_iter().chain(spec["initContainers"].as_array()).flatten();
    for c in containers {
        let req = c["resources"]["requests"].as_object().cloned().unwrap_or_default();
        let lim = c["resources"]["limits"].as_object().cloned().unwrap_or_default();
        let effective: Map<String, Value> = lim.iter().fold(req.clone(), |mut acc, (k, v)| {
            acc.entry(k.clone()).or_insert(v.clone());
            acc
        });
        if !req.is_empty() || !lim.is_empty() {
            any = true;
        }
        for r in ["cpu", "memory"] {
            if lim.get(r).is_none() || effective.get(r) != lim.get(r) {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}
