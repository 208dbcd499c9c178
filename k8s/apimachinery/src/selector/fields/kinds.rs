//! Which field labels each kind accepts, and where each lives in the JSON.
//!
//! Upstream decides this in two places: the scheme's field label
//! conversion functions (`pkg/apis/*/v*/conversion.go`), which accept or
//! reject a label before listing and write the 400 message, and each
//! registry's `ToSelectableFields`, which reads the values. Kinds with no
//! conversion function accept only `metadata.name` and
//! `metadata.namespace`. A label that is accepted but missing from the
//! object reads as `""`, as upstream's `fields.Set.Get` does.

use serde_json::Value;

use super::{FieldOperator, FieldSelector};

/// An unsupported field label; `Display` is the API server's 400 message,
/// which upstream words differently per kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldSelectorError {
    /// Core kinds, certificates, events.k8s.io, custom resources.
    #[error("field label not supported: {field}")]
    NotSupported { field: String },
    /// batch/v1 Job.
    #[error("field label {} not supported for batchv1.Job", crate::gofmt::quote(.field))]
    NotSupportedForJob { field: String },
    /// resource.k8s.io ResourceSlice names its group, version and kind.
    #[error("field label not supported for {kind}: {field}")]
    NotSupportedForKind { field: String, kind: &'static str },
    /// Kinds with no field label conversion (Deployment, ConfigMap, ...).
    #[error("{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"", crate::gofmt::quote(.field))]
    NotKnown { field: String },
}

impl FieldSelectorError {
    /// The label that was rejected.
    pub fn field(&self) -> &str {
        match self {
            Self::NotSupported { field }
            | Self::NotSupportedForJob { field }
            | Self::NotSupportedForKind { field, .. }
            | Self::NotKnown { field } => field,
        }
    }
}

/// The built-in kinds that register their own field labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BuiltIn {
    Pod,
    Node,
    ReplicationController,
    CoreEvent,
    Namespace,
    Secret,
    Service,
    Job,
    CertificateSigningRequest,
    ClusterTrustBundle,
    PodCertificateRequest,
    EventsEvent,
    ResourceSlice,
}

impl BuiltIn {
    fn find(group: &str, kind: &str) -> Option<Self> {
        Some(match (group, kind) {
            ("", "Pod") => Self::Pod,
            ("", "Node") => Self::Node,
            ("", "ReplicationController") => Self::ReplicationController,
            ("", "Event") => Self::CoreEvent,
            ("", "Namespace") => Self::Namespace,
            ("", "Secret") => Self::Secret,
            ("", "Service") => Self::Service,
            ("batch", "Job") => Self::Job,
            ("certificates.k8s.io", "CertificateSigningRequest") => Self::CertificateSigningRequest,
            ("certificates.k8s.io", "ClusterTrustBundle") => Self::ClusterTrustBundle,
            ("certificates.k8s.io", "PodCertificateRequest") => Self::PodCertificateRequest,
            ("events.k8s.io", "Event") => Self::EventsEvent,
            ("resource.k8s.io", "ResourceSlice") => Self::ResourceSlice,
            _ => return None,
        })
    }

    /// Accepted labels, each with the label it is stored under.
    fn labels(self) -> &'static [(&'static str, &'static str)] {
        const NAME: (&str, &str) = ("metadata.name", "metadata.name");
        const NAMESPACE: (&str, &str) = ("metadata.namespace", "metadata.namespace");
        const SIGNER: (&str, &str) = ("spec.signerName", "spec.signerName");
        match self {
            Self::Pod => &[
                NAME,
                NAMESPACE,
                ("spec.nodeName", "spec.nodeName"),
                ("spec.restartPolicy", "spec.restartPolicy"),
                ("spec.schedulerName", "spec.schedulerName"),
                ("spec.serviceAccountName", "spec.serviceAccountName"),
                ("spec.hostNetwork", "spec.hostNetwork"),
                ("status.phase", "status.phase"),
                ("status.podIP", "status.podIP"),
                ("status.podIPs", "status.podIPs"),
                ("status.nominatedNodeName", "status.nominatedNodeName"),
                // Old v1 clients send spec.host.
                ("spec.host", "spec.nodeName"),
            ],
            Self::Node => &[NAME, ("spec.unschedulable", "spec.unschedulable")],
            Self::ReplicationController => &[NAME, NAMESPACE, ("status.replicas", "status.replicas")],
            Self::CoreEvent => &[
                ("involvedObject.kind", "involvedObject.kind"),
                ("involvedObject.namespace", "involvedObject.namespace"),
                ("involvedObject.name", "involvedObject.name"),
                ("involvedObject.uid", "involvedObject.uid"),
                ("involvedObject.apiVersion", "involvedObject.apiVersion"),
                ("involvedObject.resourceVersion", "involvedObject.resourceVersion"),
                ("involvedObject.fieldPath", "involvedObject.fieldPath"),
                ("reason", "reason"),
                ("reportingComponent", "reportingComponent"),
                ("source", "source"),
                ("type", "type"),
                NAMESPACE,
                NAME,
            ],
            Self::Namespace => &[("status.phase", "status.phase"), NAME],
            Self::Secret => &[("type", "type"), NAMESPACE, NAME],
            Self::Service => {
                &[NAMESPACE, NAME, ("spec.clusterIP", "spec.clusterIP"), ("spec.type", "spec.type")]
            }
            Self::Job => &[NAME, NAMESPACE, ("status.successful", "status.successful")],
            Self::CertificateSigningRequest | Self::ClusterTrustBundle => &[NAME, SIGNER],
            Self::PodCertificateRequest => {
                &[NAME, SIGNER, ("spec.podName", "spec.podName"), ("spec.nodeName", "spec.nodeName")]
            }
            // Stored as core Events: the new names map onto the old ones.
            Self::EventsEvent => &[
                ("reason", "reason"),
                ("regarding.kind", "involvedObject.kind"),
                ("regarding.namespace", "involvedObject.namespace"),
                ("regarding.name", "involvedObject.name"),
                ("regarding.uid", "involvedObject.uid"),
                ("regarding.apiVersion", "involvedObject.apiVersion"),
                ("regarding.resourceVersion", "involvedObject.resourceVersion"),
                ("regarding.fieldPath", "involvedObject.fieldPath"),
                ("reportingController", "reportingComponent"),
                ("source", "source"),
                ("type", "type"),
                NAMESPACE,
                NAME,
            ],
            Self::ResourceSlice => {
                &[NAME, ("spec.nodeName", "spec.nodeName"), ("spec.driver", "spec.driver")]
            }
        }
    }

    fn reject(self, field: &str) -> FieldSelectorError {
        let field = field.to_owned();
        match self {
            Self::Job => FieldSelectorError::NotSupportedForJob { field },
            Self::ResourceSlice => FieldSelectorError::NotSupportedForKind {
                field,
                kind: "resource.k8s.io/v1, Kind=ResourceSlice",
            },
            _ => FieldSelectorError::NotSupported { field },
        }
    }

    /// The value of stored label `field`, where it differs from reading the
    /// dotted path; `None` means read the path.
    fn special_value(self, object: &Value, field: &str) -> Option<String> {
        Some(match (self, field) {
            (Self::Pod, "spec.hostNetwork") => bool_at(object, "/spec/hostNetwork"),
            (Self::Pod, "status.podIP") => object
                .pointer("/status/podIPs/0/ip")
                .or_else(|| object.pointer("/status/podIP"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            // Accepted but never in upstream's field set, so always "".
            (Self::Pod, "status.podIPs") => String::new(),
            (Self::Node, "spec.unschedulable") => bool_at(object, "/spec/unschedulable"),
            (Self::ReplicationController, "status.replicas") => int_at(object, "/status/replicas"),
            (Self::Job, "status.successful") => int_at(object, "/status/succeeded"),
            (Self::CoreEvent, "source") => {
                first_non_empty(object, "/source/component", "/reportingComponent")
            }
            (Self::EventsEvent, "source") => {
                first_non_empty(object, "/deprecatedSource/component", "/reportingController")
            }
            (Self::EventsEvent, "reportingComponent") => scalar_at(object, "/reportingController"),
            (Self::EventsEvent, field) => {
                let rest = field.strip_prefix("involvedObject.")?;
                scalar_at(object, &format!("/regarding/{rest}"))
            }
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rules {
    BuiltIn(BuiltIn),
    /// A kind with no field label conversion of its own.
    MetadataOnly,
    /// A custom resource: its `selectableFields`, as labels.
    Custom {
        namespaced: bool,
        fields: Vec<String>,
    },
}

/// The field labels one kind accepts and how to read them from an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectableFields(Rules);

impl SelectableFields {
    /// A built-in kind by API group (`""` for core) and kind. Kinds that
    /// register no field labels upstream (Deployment, ReplicaSet, ConfigMap,
    /// ...) accept `metadata.name` and `metadata.namespace` only.
    pub fn built_in(group: &str, kind: &str) -> Self {
        Self(BuiltIn::find(group, kind).map_or(Rules::MetadataOnly, Rules::BuiltIn))
    }

    /// A custom resource: `metadata.name`, `metadata.namespace` when
    /// namespaced, and the CRD version's `selectableFields` JSON paths
    /// (`.spec.color` is selected as `spec.color`).
    pub fn custom<S: AsRef<str>>(namespaced: bool, json_paths: impl IntoIterator<Item = S>) -> Self {
        let fields = json_paths.into_iter().map(|p| p.as_ref().trim_start_matches('.').to_owned()).collect();
        Self(Rules::Custom { namespaced, fields })
    }

    /// The label `field` is stored under, or the error upstream returns.
    pub fn canonical<'a>(&'a self, field: &'a str) -> Result<&'a str, FieldSelectorError> {
        match &self.0 {
            Rules::BuiltIn(kind) => kind
                .labels()
                .iter()
                .find(|(accepted, _)| *accepted == field)
                .map(|(_, stored)| *stored)
                .ok_or_else(|| kind.reject(field)),
            Rules::MetadataOnly => match field {
                "metadata.name" | "metadata.namespace" => Ok(field),
                _ => Err(FieldSelectorError::NotKnown { field: field.to_owned() }),
            },
            Rules::Custom { namespaced, fields } => {
                let known = field == "metadata.name"
                    || (*namespaced && field == "metadata.namespace")
                    || fields.iter().any(|f| f == field);
                if known {
                    Ok(field)
                } else {
                    Err(FieldSelectorError::NotSupported { field: field.to_owned() })
                }
            }
        }
    }

    /// The string form of stored label `field` in `object`, `""` when
    /// absent; booleans and integers print as Go prints them.
    pub fn read(&self, object: &Value, field: &str) -> String {
        if let Rules::BuiltIn(kind) = &self.0
            && let Some(value) = kind.special_value(object, field)
        {
            return value;
        }
        scalar_at(object, &pointer(field))
    }

    /// The value of `field` in `object`, after checking the label is
    /// accepted and translating any alias.
    pub fn value(&self, object: &Value, field: &str) -> Result<String, FieldSelectorError> {
        Ok(self.read(object, self.canonical(field)?))
    }
}

/// The value of `field` in `object` of the built-in kind `group`/`kind`;
/// absent values are `""` (an unscheduled pod has `spec.nodeName` `""`).
pub fn field_value(
    group: &str,
    kind: &str,
    object: &Value,
    field: &str,
) -> Result<String, FieldSelectorError> {
    SelectableFields::built_in(group, kind).value(object, field)
}

/// A field selector checked against one kind, ready to match objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMatcher {
    fields: SelectableFields,
    /// (stored label, operator, value)
    terms: Vec<(String, FieldOperator, String)>,
}

impl FieldMatcher {
    pub(super) fn new(
        selector: &FieldSelector,
        fields: &SelectableFields,
    ) -> Result<Self, FieldSelectorError> {
        let terms = selector
            .terms()
            .iter()
            .map(|t| Ok((fields.canonical(&t.field)?.to_owned(), t.operator, t.value.clone())))
            .collect::<Result<_, FieldSelectorError>>()?;
        Ok(Self { fields: fields.clone(), terms })
    }

    /// True when every term holds for `object`.
    pub fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|(field, operator, value)| {
            let actual = self.fields.read(object, field);
            match operator {
                FieldOperator::Equals => actual == *value,
                FieldOperator::NotEquals => actual != *value,
            }
        })
    }
}

/// `spec.nodeName` -> `/spec/nodeName`, escaped for JSON Pointer.
fn pointer(field: &str) -> String {
    field.split('.').fold(String::with_capacity(field.len() + 1), |mut out, part| {
        out.push('/');
        out.push_str(&part.replace('~', "~0").replace('/', "~1"));
        out
    })
}

fn scalar_at(object: &Value, pointer: &str) -> String {
    match object.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn bool_at(object: &Value, pointer: &str) -> String {
    object.pointer(pointer).and_then(Value::as_bool).unwrap_or(false).to_string()
}

fn int_at(object: &Value, pointer: &str) -> String {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0).to_string()
}

fn first_non_empty(object: &Value, first: &str, fallback: &str) -> String {
    let value = scalar_at(object, first);
    if value.is_empty() { scalar_at(object, fallback) } else { value }
}

#[cfg(test)]
mod tests;
