//! What the API server needs from a valid CustomResourceDefinition
//! (apiextensions.k8s.io/v1): names, scope and, per version, the schema,
//! printer columns, subresources and selectable fields.

use serde_json::Value;

use super::problem::FieldProblem;
use crate::resources::{Resource, Subresource};

const ALL_VERBS: [&str; 8] =
    ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// A validated CRD.
#[derive(Debug, Clone, PartialEq)]
pub struct CrdInfo {
    /// `metadata.name`, `<plural>.<group>`.
    pub name: String,
    pub group: String,
    pub names: CrdNames,
    pub namespaced: bool,
    pub versions: Vec<CrdVersion>,
}

/// `spec.names` with upstream's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrdNames {
    pub plural: String,
    /// Defaults to the kind, lower-cased.
    pub singular: String,
    pub kind: String,
    /// Defaults to `<Kind>List`.
    pub list_kind: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
}

/// One entry of `spec.versions`.
#[derive(Debug, Clone, PartialEq)]
pub struct CrdVersion {
    pub name: String,
    pub served: bool,
    pub storage: bool,
    pub deprecated: bool,
    pub deprecation_warning: Option<String>,
    /// `schema.openAPIV3Schema`.
    pub schema: Option<Value>,
    pub printer_columns: Vec<PrinterColumn>,
    /// `subresources.status` is set.
    pub status: bool,
    pub scale: Option<ScaleSubresource>,
    /// `selectableFields[*].jsonPath`.
    pub selectable_fields: Vec<String>,
}

/// One of `additionalPrinterColumns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    pub name: String,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub type_name: String,
    pub format: String,
    pub description: String,
    pub priority: i32,
    /// `.spec.cronSpec`.
    pub json_path: String,
}

/// `subresources.scale`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleSubresource {
    pub spec_replicas_path: String,
    pub status_replicas_path: String,
    pub label_selector_path: Option<String>,
}

impl CrdInfo {
    /// Validate a CRD as upstream does on create and read what the server
    /// needs from it; the problems are the causes of a 422 Invalid.
    pub fn from_crd(crd: &Value) -> Result<Self, Vec<FieldProblem>> {
        let problems = super::validation::validate_crd(crd);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self::read(crd))
    }

    /// Read a CRD without validating it (one already stored).
    pub fn read(crd: &Value) -> Self {
        let spec = &crd["spec"];
        Self {
            name: text(&crd["metadata"]["name"]),
            group: text(&spec["group"]),
            names: CrdNames::read(&spec["names"]),
            namespaced: spec["scope"] != "Cluster",
            versions: list(&spec["versions"]).iter().map(CrdVersion::read).collect(),
        }
    }

    pub fn version(&self, name: &str) -> Option<&CrdVersion> {
        self.versions.iter().find(|v| v.name == name)
    }

    pub fn storage_version(&self) -> Option<&CrdVersion> {
        self.versions.iter().find(|v| v.storage)
    }

    /// Resource-table entries of the served versions, in spec order.
    pub fn resources(&self) -> Vec<Resource> {
        self.versions.iter().filter(|v| v.served).map(|v| self.resource(v)).collect()
    }

    fn resource(&self, version: &CrdVersion) -> Resource {
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let mut subresources = Vec::new();
        if version.status {
            subresources.push(Subresource {
                name: "status".into(),
                group: self.group.clone(),
                version: version.name.clone(),
                kind: self.names.kind.clone(),
                verbs: strings(&["get", "patch", "update"]),
            });
        }
        if version.scale.is_some() {
            subresources.push(Subresource {
                name: "scale".into(),
                group: "autoscaling".into(),
                version: "v1".into(),
                kind: "Scale".into(),
                verbs: strings(&["get", "patch", "update"]),
            });
        }
        Resource {
            group: self.group.clone(),
            version: version.name.clone(),
            plural: self.names.plural.clone(),
            singular: self.names.singular.clone(),
            kind: self.names.kind.clone(),
            list_kind: self.names.list_kind.clone(),
            namespaced: self.namespaced,
            verbs: strings(&ALL_VERBS),
            short_names: self.names.short_names.clone(),
            categories: self.names.categories.clone(),
            subresources,
        }
    }
}

impl CrdNames {
    /// `spec.names` with upstream's v1 defaults.
    pub fn read(names: &Value) -> Self {
        let kind = text(&names["kind"]);
        let singular = match text(&names["singular"]) {
            s if s.is_empty() => kind.to_lowercase(),
            s => s,
        };
        let list_kind = match text(&names["listKind"]) {
            s if s.is_empty() && !kind.is_empty() => format!("{kind}List"),
            s => s,
        };
        Self {
            plural: text(&names["plural"]),
            singular,
            kind,
            list_kind,
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
        }
    }

    /// As JSON, the shape of `status.acceptedNames`.
    pub fn to_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        out.insert("plural".into(), self.plural.clone().into());
        out.insert("singular".into(), self.singular.clone().into());
        if !self.short_names.is_empty() {
            out.insert("shortNames".into(), self.short_names.clone().into());
        }
        out.insert("kind".into(), self.kind.clone().into());
        out.insert("listKind".into(), self.list_kind.clone().into());
        if !self.categories.is_empty() {
            out.insert("categories".into(), self.categories.clone().into());
        }
        Value::Object(out)
    }
}

impl CrdVersion {
    fn read(version: &Value) -> Self {
        let subresources = &version["subresources"];
        let scale = &subresources["scale"];
        Self {
            name: text(&version["name"]),
            served: version["served"].as_bool().unwrap_or(false),
            storage: version["storage"].as_bool().unwrap_or(false),
            deprecated: version["deprecated"].as_bool().unwrap_or(false),
            deprecation_warning: version["deprecationWarning"].as_str().map(str::to_string),
            schema: version.pointer("/schema/openAPIV3Schema").filter(|s| !s.is_null()).cloned(),
            printer_columns: list(&version["additionalPrinterColumns"])
                .iter()
                .map(PrinterColumn::read)
                .collect(),
            status: subresources.get("status").is_some_and(|s| !s.is_null()),
            scale: scale.is_object().then(|| ScaleSubresource {
                spec_replicas_path: text(&scale["specReplicasPath"]),
                status_replicas_path: text(&scale["statusReplicasPath"]),
                label_selector_path: scale["labelSelectorPath"].as_str().map(str::to_string),
            }),
            selectable_fields: list(&version["selectableFields"])
                .iter()
                .map(|f| text(&f["jsonPath"]))
                .collect(),
        }
    }
}

impl PrinterColumn {
    fn read(column: &Value) -> Self {
        Self {
            name: text(&column["name"]),
            type_name: text(&column["type"]),
            format: text(&column["format"]),
            description: text(&column["description"]),
            priority: column["priority"].as_i64().and_then(|p| i32::try_from(p).ok()).unwrap_or(0),
            json_path: text(&column["jsonPath"]),
        }
    }
}

pub(crate) fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

pub(crate) fn list(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn strings(value: &Value) -> Vec<String> {
    list(value).iter().filter_map(Value::as_str).map(str::to_string).collect()
}
