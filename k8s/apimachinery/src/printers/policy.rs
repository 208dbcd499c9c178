//! Scaling, disruption and admission policy printers: PodDisruptionBudget,
//! HorizontalPodAutoscaler, Scale, FlowSchema, PriorityLevelConfiguration,
//! webhook configurations and admission policies with their bindings.

use serde_json::{Value, json};

use super::docs;
use super::fields::{
    age, arr_at, get, int_at, int_or_string, is_set, len_at, name, opt_int, opt_str, str_at,
};
use super::format::go_label_selector_struct;
use super::{CellsFn, Column, Printer, count};

const POD_DISRUPTION_BUDGET: &[Column] = &[
    Column::name(),
    Column::string("Min Available", "The minimum number of pods that must be available."),
    Column::string("Max Unavailable", "The maximum number of pods that may be unavailable."),
    Column::typed(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    Column::age(),
];

const HORIZONTAL_POD_AUTOSCALER: &[Column] = &[
    Column::name(),
    Column::string("Reference", docs::HPA_REFERENCE),
    Column::string("Targets", docs::HPA_METRICS),
    Column::string("MinPods", docs::HPA_MIN),
    Column::string("MaxPods", docs::HPA_MAX),
    Column::string("Replicas", docs::HPA_CURRENT),
    Column::age(),
];

const SCALE: &[Column] = &[
    Column::string("Name", docs::NAME),
    Column::typed("Desired", "integer", docs::SCALE_SPEC_REPLICAS),
    Column::typed("Available", "integer", docs::SCALE_STATUS_REPLICAS),
    Column::age(),
];

const FLOW_SCHEMA: &[Column] = &[
    Column::name(),
    Column::string("PriorityLevel", docs::FS_PRIORITY_LEVEL),
    Column::string("MatchingPrecedence", docs::FS_PRECEDENCE),
    Column::string("DistinguisherMethod", docs::FS_DISTINGUISHER),
    Column::age(),
    Column::string("MissingPL", "references a broken or non-existent PriorityLevelConfiguration"),
];

const PRIORITY_LEVEL: &[Column] = &[
    Column::name(),
    Column::string("Type", docs::PL_TYPE),
    Column::string("NominalConcurrencyShares", docs::PL_SHARES),
    Column::string("Queues", docs::PL_QUEUES),
    Column::string("HandSize", docs::PL_HAND_SIZE),
    Column::string("QueueLengthLimit", docs::PL_QUEUE_LENGTH),
    Column::age(),
];

const WEBHOOKS: &[Column] = &[
    Column::name(),
    Column::typed(
        "Webhooks",
        "integer",
        "Webhooks indicates the number of webhooks registered in this configuration",
    ),
    Column::age(),
];

const VALIDATING_POLICY: &[Column] = &[
    Column::name(),
    Column::typed(
        "Validations",
        "integer",
        "Validations indicates the number of validation rules defined in this configuration",
    ),
    Column::string("ParamKind", "ParamKind specifies the kind of resources used to parameterize this policy"),
    Column::age(),
];

const MUTATING_POLICY: &[Column] = &[
    Column::name(),
    Column::typed(
        "Mutations",
        "integer",
        "Mutation indicates the number of mutations rules defined in this configuration",
    ),
    Column::string("ParamKind", "ParamKind specifies the kind of resources used to parameterize this policy"),
    Column::age(),
];

const POLICY_BINDING: &[Column] = &[
    Column::name(),
    Column::string(
        "PolicyName",
        "PolicyName indicates the policy definition which the policy binding binded to",
    ),
    Column::string("ParamRef", "ParamRef indicates the param resource which sets the configration param"),
    Column::age(),
];

pub(super) fn printer(group: &str, kind: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Column], CellsFn) = match (group, kind) {
        ("policy", "PodDisruptionBudget") => (POD_DISRUPTION_BUDGET, |o, now| {
            let bound = |f: &str| {
                get(o, &["spec", f]).filter(|v| !v.is_null()).map_or("N/A".to_string(), int_or_string)
            };
            cells![
                name(o),
                bound("minAvailable"),
                bound("maxUnavailable"),
                int_at(o, &["status", "disruptionsAllowed"]),
                age(o, now)
            ]
        }),
        ("autoscaling", "HorizontalPodAutoscaler") => (HORIZONTAL_POD_AUTOSCALER, horizontal_pod_autoscaler),
        ("autoscaling", "Scale") => (SCALE, |o, now| {
            cells![name(o), int_at(o, &["spec", "replicas"]), int_at(o, &["status", "replicas"]), age(o, now)]
        }),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => (FLOW_SCHEMA, flow_schema),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => (PRIORITY_LEVEL, priority_level),
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
        ) => (WEBHOOKS, |o, now| cells![name(o), count(len_at(o, &["webhooks"])), age(o, now)]),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => (VALIDATING_POLICY, |o, now| {
            cells![name(o), count(len_at(o, &["spec", "validations"])), param_kind(o), age(o, now)]
        }),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy") => (MUTATING_POLICY, |o, now| {
            cells![name(o), count(len_at(o, &["spec", "mutations"])), param_kind(o), age(o, now)]
        }),
        (
            "admissionregistration.k8s.io",
            "ValidatingAdmissionPolicyBinding" | "MutatingAdmissionPolicyBinding",
        ) => (POLICY_BINDING, |o, now| {
            cells![name(o), str_at(o, &["spec", "policyName"]), param_ref(o), age(o, now)]
        }),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

fn param_kind(o: &Value) -> String {
    if is_set(o, &["spec", "paramKind"]) {
        format!(
            "{}/{}",
            str_at(o, &["spec", "paramKind", "apiVersion"]),
            str_at(o, &["spec", "paramKind", "kind"])
        )
    } else {
        "<unset>".to_string()
    }
}

fn param_ref(o: &Value) -> String {
    let Some(pr) = get(o, &["spec", "paramRef"]).filter(|v| !v.is_null()) else {
        return "<unset>".to_string();
    };
    match (str_at(pr, &["name"]), str_at(pr, &["namespace"])) {
        ("", _) => get(pr, &["selector"])
            .filter(|s| !s.is_null())
            .map_or("<unset>".to_string(), go_label_selector_struct),
        (n, "") => format!("*/{n}"),
        (n, ns) => format!("{ns}/{n}"),
    }
}

fn horizontal_pod_autoscaler(o: &Value, now: i64) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        str_at(o, &["spec", "scaleTargetRef", "kind"]),
        str_at(o, &["spec", "scaleTargetRef", "name"])
    );
    let (specs, statuses) = hpa_metrics(o);
    cells![
        name(o),
        reference,
        format_hpa_metrics(&specs, &statuses),
        opt_int(o, &["spec", "minReplicas"]).map_or("<unset>".to_string(), |m| m.to_string()),
        int_at(o, &["spec", "maxReplicas"]),
        int_at(o, &["status", "currentReplicas"]),
        age(o, now),
    ]
}

/// The v2 metric specs and statuses; an `autoscaling/v1` object's CPU
/// target is converted as upstream converts it to the internal type.
fn hpa_metrics(o: &Value) -> (Vec<Value>, Vec<Value>) {
    let cpu = |key: &str, value: i64| json!({"type": "Resource", "resource": {"name": "cpu", key: {"averageUtilization": value}}});
    let specs = match (get(o, &["spec", "metrics"]), opt_int(o, &["spec", "targetCPUUtilizationPercentage"]))
    {
        (None, Some(target)) => vec![cpu("target", target)],
        _ => arr_at(o, &["spec", "metrics"]).to_vec(),
    };
    let statuses = match (
        get(o, &["status", "currentMetrics"]),
        opt_int(o, &["status", "currentCPUUtilizationPercentage"]),
    ) {
        (None, Some(current)) => vec![cpu("current", current)],
        _ => arr_at(o, &["status", "currentMetrics"]).to_vec(),
    };
    (specs, statuses)
}

/// A `*resource.Quantity` printed with `String()`: `<nil>` when unset.
fn quantity(v: Option<&Value>) -> String {
    v.filter(|v| !v.is_null()).map_or("<nil>".to_string(), |q| match q.as_str() {
        Some(s) => super::quantity::canonical(s),
        None => q.to_string(),
    })
}

/// `formatHPAMetrics`: at most two targets, then `+ N more...`.
fn format_hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let field = match str_at(spec, &["type"]) {
                "External" => "external",
                "Pods" => "pods",
                "Object" => "object",
                "Resource" => "resource",
                "ContainerResource" => "containerResource",
                _ => return "<unknown type>".to_string(),
            };
            let source = get(spec, &[field]).unwrap_or(&Value::Null);
            let target = get(source, &["target"]).unwrap_or(&Value::Null);
            let status = statuses.get(i).and_then(|s| get(s, &[field])).filter(|s| !s.is_null());
            let current = |key: &str| status.and_then(|s| get(s, &["current", key])).filter(|v| !v.is_null());
            let avg_target = get(target, &["averageValue"]).filter(|v| !v.is_null());
            match field {
                "pods" => format!(
                    "{}/{}",
                    status.map_or("<unknown>".to_string(), |_| quantity(current("averageValue"))),
                    quantity(avg_target)
                ),
                "external" | "object" if avg_target.is_some() => {
                    format!(
                        "{}/{} (avg)",
                        current("averageValue").map_or("<unknown>".to_string(), |q| quantity(Some(q))),
                        quantity(avg_target)
                    )
                }
                "external" | "object" => {
                    let cur = status.map_or("<unknown>".to_string(), |_| quantity(current("value")));
                    format!("{cur}/{}", quantity(get(target, &["value"])))
                }
                _ => {
                    let resource = str_at(source, &["name"]);
                    if avg_target.is_some() {
                        let cur =
                            status.map_or("<unknown>".to_string(), |_| quantity(current("averageValue")));
                        format!("{resource}: {cur}/{}", quantity(avg_target))
                    } else {
                        let percent =
                            |v: Option<&Value>| v.and_then(super::fields::as_int).map(|p| format!("{p}%"));
                        let cur =
                            percent(current("averageUtilization")).unwrap_or_else(|| "<unknown>".to_string());
                        let tgt = percent(get(target, &["averageUtilization"]))
                            .unwrap_or_else(|| "<auto>".to_string());
                        format!("{resource}: {cur}/{tgt}")
                    }
                }
            }
        })
        .collect();
    const MAX: usize = 2;
    if list.len() > MAX {
        return format!("{} + {} more...", list[..MAX].join(", "), list.len() - MAX);
    }
    list.join(", ")
}

fn flow_schema(o: &Value, now: i64) -> Vec<Value> {
    let dangling = arr_at(o, &["status", "conditions"]).iter().find(|c| str_at(c, &["type"]) == "Dangling");
    cells![
        name(o),
        str_at(o, &["spec", "priorityLevelConfiguration", "name"]),
        int_at(o, &["spec", "matchingPrecedence"]),
        opt_str(o, &["spec", "distinguisherMethod", "type"]).unwrap_or("<none>"),
        age(o, now),
        dangling.map_or("?", |c| str_at(c, &["status"])),
    ]
}

fn priority_level(o: &Value, now: i64) -> Vec<Value> {
    let none = || Value::from("<none>");
    let (mut ncs, mut queues, mut hand, mut limit) = (none(), none(), none(), none());
    if let Some(limited) = get(o, &["spec", "limited"]).filter(|v| !v.is_null()) {
        ncs = Value::from(int_at(limited, &["nominalConcurrencyShares"]));
        if let Some(q) = get(limited, &["limitResponse", "queuing"]).filter(|v| !v.is_null()) {
            queues = Value::from(int_at(q, &["queues"]));
            hand = Value::from(int_at(q, &["handSize"]));
            limit = Value::from(int_at(q, &["queueLengthLimit"]));
        }
    }
    vec![
        Value::from(name(o)),
        Value::from(str_at(o, &["spec", "type"])),
        ncs,
        queues,
        hand,
        limit,
        Value::from(age(o, now)),
    ]
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
