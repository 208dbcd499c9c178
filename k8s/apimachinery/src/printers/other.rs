//! Printers of the smaller groups: coordination (Lease, LeaseCandidate),
//! scheduling (PriorityClass), node (RuntimeClass), certificates
//! (CertificateSigningRequest, ClusterTrustBundle), apiregistration
//! (APIService), apiserverinternal (StorageVersion), resource.k8s.io and
//! storagemigration.

use serde_json::Value;

use super::docs;
use super::duration::human_duration;
use super::fields::{
    age, arr_at, bool_at, condition, int_at, is_deleting, is_set, name, opt_int, opt_str, str_at,
};
use super::format::list_with_more;
use super::{CellsFn, Column, Printer};

const LEASE: &[Column] = &[Column::name(), Column::string("Holder", docs::LEASE_HOLDER), Column::age()];

// Upstream takes the version descriptions from ObjectMeta's docs, which
// have no such keys: they are empty.
const LEASE_CANDIDATE: &[Column] = &[
    Column::name(),
    Column::string("LeaseName", docs::LEASE_CANDIDATE_LEASE_NAME),
    Column::string("BinaryVersion", ""),
    Column::string("EmulationVersion", ""),
    Column::age(),
];

const PRIORITY_CLASS: &[Column] = &[
    Column::name(),
    Column::typed("Value", "integer", docs::PC_VALUE),
    Column::typed("Global-Default", "boolean", docs::PC_GLOBAL_DEFAULT),
    Column::age(),
    Column::string("PreemptionPolicy", docs::PC_PREEMPTION),
];

const RUNTIME_CLASS: &[Column] = &[Column::name(), Column::string("Handler", ""), Column::age()];

const CERTIFICATE_SIGNING_REQUEST: &[Column] = &[
    Column::name(),
    Column::age(),
    Column::string("SignerName", docs::CSR_SIGNER_NAME),
    Column::string("Requestor", docs::CSR_REQUEST),
    Column::string("RequestedDuration", docs::CSR_EXPIRATION),
    Column::string("Condition", docs::CSR_CONDITIONS),
];

const CLUSTER_TRUST_BUNDLE: &[Column] =
    &[Column::name(), Column::string("SignerName", docs::CTB_SIGNER_NAME)];

const API_SERVICE: &[Column] = &[
    Column::name(),
    Column::string("Service", "The reference to the service that hosts this API endpoint."),
    Column::string("Available", "Whether this service is available."),
    Column::age(),
];

const STORAGE_VERSION: &[Column] = &[
    Column::name(),
    Column::string("CommonEncodingVersion", docs::SV_COMMON_ENCODING),
    Column::string("StorageVersions", docs::SV_STORAGE_VERSIONS),
    Column::age(),
];

const NAME_AGE: &[Column] = &[Column::name(), Column::age()];

const RESOURCE_CLAIM: &[Column] = &[
    Column::name(),
    Column::string("State", "A summary of the current state (allocated, pending, reserved, etc.)."),
    Column::age(),
];

const RESOURCE_SLICE: &[Column] = &[
    Column::name(),
    Column::string("Node", docs::RSLICE_NODE),
    Column::string("Driver", docs::RSLICE_DRIVER),
    Column::string("Pool", docs::RSLICE_POOL),
    Column::age(),
];

const STORAGE_VERSION_MIGRATION: &[Column] =
    &[Column::string("Name", docs::NAME), Column::string("Resource", "Fully qualified resource to migrate")];

pub(super) fn printer(group: &str, kind: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Column], CellsFn) = match (group, kind) {
        ("coordination.k8s.io", "Lease") => {
            (LEASE, |o, now| cells![name(o), str_at(o, &["spec", "holderIdentity"]), age(o, now)])
        }
        ("coordination.k8s.io", "LeaseCandidate") => (LEASE_CANDIDATE, |o, now| {
            let spec = |f: &str| str_at(o, &["spec", f]);
            cells![name(o), spec("leaseName"), spec("binaryVersion"), spec("emulationVersion"), age(o, now)]
        }),
        ("scheduling.k8s.io", "PriorityClass") => (PRIORITY_CLASS, |o, now| {
            let policy = str_at(o, &["preemptionPolicy"]);
            cells![name(o), int_at(o, &["value"]), bool_at(o, &["globalDefault"]), age(o, now), policy]
        }),
        ("node.k8s.io", "RuntimeClass") => {
            (RUNTIME_CLASS, |o, now| cells![name(o), str_at(o, &["handler"]), age(o, now)])
        }
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            (CERTIFICATE_SIGNING_REQUEST, certificate_signing_request)
        }
        ("certificates.k8s.io", "ClusterTrustBundle") => {
            (CLUSTER_TRUST_BUNDLE, |o, _| cells![name(o), or_none(str_at(o, &["spec", "signerName"]))])
        }
        ("apiregistration.k8s.io", "APIService") => (API_SERVICE, api_service),
        ("internal.apiserver.k8s.io", "StorageVersion") => (STORAGE_VERSION, storage_version),
        ("resource.k8s.io", "DeviceClass" | "ResourceClaimTemplate") => {
            (NAME_AGE, |o, now| cells![name(o), age(o, now)])
        }
        ("resource.k8s.io", "ResourceClaim") => {
            (RESOURCE_CLAIM, |o, now| cells![name(o), resource_claim_state(o), age(o, now)])
        }
        ("resource.k8s.io", "ResourceSlice") => (RESOURCE_SLICE, |o, now| {
            let spec = |path: &[&str]| str_at(o, &[&["spec"], path].concat()).to_string();
            cells![name(o), spec(&["nodeName"]), spec(&["driver"]), spec(&["pool", "name"]), age(o, now)]
        }),
        ("storagemigration.k8s.io", "StorageVersionMigration") => (STORAGE_VERSION_MIGRATION, |o, _| {
            let r = |f: &str| str_at(o, &["spec", "resource", f]);
            // v1alpha1 names a version; later versions a GroupResource.
            let resource = match opt_str(o, &["spec", "resource", "version"]) {
                Some(version) => format!("{}.{version}.{}", r("resource"), r("group")),
                None if r("group").is_empty() => r("resource").to_string(),
                None => format!("{}.{}", r("resource"), r("group")),
            };
            cells![name(o), resource]
        }),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

fn or_none(s: &str) -> String {
    if s.is_empty() { "<none>".to_string() } else { s.to_string() }
}

fn certificate_signing_request(o: &Value, now: i64) -> Vec<Value> {
    let conditions = arr_at(o, &["status", "conditions"]);
    let has = |t: &str| conditions.iter().any(|c| str_at(c, &["type"]) == t);
    let mut status = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !str_at(o, &["status", "certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    let requested =
        opt_int(o, &["spec", "expirationSeconds"]).map_or_else(|| "<none>".to_string(), human_duration);
    cells![
        name(o),
        age(o, now),
        or_none(str_at(o, &["spec", "signerName"])),
        str_at(o, &["spec", "username"]),
        requested,
        status,
    ]
}

fn api_service(o: &Value, now: i64) -> Vec<Value> {
    let service = if is_set(o, &["spec", "service"]) {
        format!(
            "{}/{}",
            str_at(o, &["spec", "service", "namespace"]),
            str_at(o, &["spec", "service", "name"])
        )
    } else {
        "Local".to_string()
    };
    let available = match condition(arr_at(o, &["status", "conditions"]), "Available") {
        None => "Unknown".to_string(),
        Some(c) => match (str_at(c, &["status"]), str_at(c, &["reason"])) {
            ("True", _) => "True".to_string(),
            (status, "") => status.to_string(),
            (status, reason) => format!("{status} ({reason})"),
        },
    };
    cells![name(o), service, available, age(o, now)]
}

fn storage_version(o: &Value, now: i64) -> Vec<Value> {
    let versions: Vec<String> = arr_at(o, &["status", "storageVersions"])
        .iter()
        .map(|sv| format!("{}={}", str_at(sv, &["apiServerID"]), str_at(sv, &["encodingVersion"])))
        .collect();
    cells![
        name(o),
        opt_str(o, &["status", "commonEncodingVersion"]).unwrap_or("<unset>"),
        list_with_more(&versions, 3),
        age(o, now),
    ]
}

fn resource_claim_state(o: &Value) -> String {
    let mut states = Vec::new();
    let deleting = is_deleting(o);
    if deleting {
        states.push("deleted");
    }
    if is_set(o, &["status", "allocation"]) {
        states.push("allocated");
        if !arr_at(o, &["status", "reservedFor"]).is_empty() {
            states.push("reserved");
        }
    } else if !deleting {
        states.push("pending");
    }
    states.join(",")
}

#[cfg(test)]
#[path = "other_tests.rs"]
mod tests;
