//! The schemas of Kubernetes 1.37's built-in types, embedded gzip-compressed
//! and decoded once on first use. `data/generate.py` writes the file from
//! upstream's definitions; it is already in OpenAPI v3 form, refs included
//! (`#/components/schemas/io.k8s.api.core.v1.Pod`).

use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

use flate2::read::GzDecoder;
use serde_json::{Map, Value};

/// The prefix of every `$ref` in the definitions and the documents.
pub const REF_PREFIX: &str = "#/components/schemas/";

static COMPRESSED: &[u8] = include_bytes!("../../data/definitions-1.37.json.gz");

/// Why the embedded definitions could not be read: only a corrupt build can
/// cause this, and the crate's tests catch it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("decompressing the embedded OpenAPI definitions")]
    Decompress(#[source] std::io::Error),
    #[error("parsing the embedded OpenAPI definitions")]
    Parse(#[source] serde_json::Error),
    #[error("the embedded OpenAPI definitions are not a JSON object")]
    NotAnObject,
}

/// All built-in definitions, by name, and which one describes each kind.
#[derive(Debug, Default)]
pub struct Definitions {
    schemas: Map<String, Value>,
    by_gvk: HashMap<(String, String, String), String>,
}

struct Loaded {
    definitions: Definitions,
    error: Option<LoadError>,
}

fn loaded() -> &'static Loaded {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    LOADED.get_or_init(|| match decode(COMPRESSED) {
        Ok(definitions) => Loaded { definitions, error: None },
        Err(error) => Loaded { definitions: Definitions::default(), error: Some(error) },
    })
}

/// The built-in definitions. Empty if the embedded file is corrupt, which
/// [`load_error`] reports.
pub fn definitions() -> &'static Definitions {
    &loaded().definitions
}

/// Why [`definitions`] is empty, for the server to log at start-up.
pub fn load_error() -> Option<&'static LoadError> {
    loaded().error.as_ref()
}

fn decode(compressed: &[u8]) -> Result<Definitions, LoadError> {
    let mut json = Vec::new();
    GzDecoder::new(compressed).read_to_end(&mut json).map_err(LoadError::Decompress)?;
    let value: Value = serde_json::from_slice(&json).map_err(LoadError::Parse)?;
    let Value::Object(schemas) = value else { return Err(LoadError::NotAnObject) };
    Ok(Definitions::new(schemas))
}

impl Definitions {
    /// Index `schemas` by their `x-kubernetes-group-version-kind`.
    pub fn new(schemas: Map<String, Value>) -> Self {
        let mut by_gvk = HashMap::new();
        for (name, schema) in &schemas {
            for gvk in
                schema.get("x-kubernetes-group-version-kind").and_then(Value::as_array).into_iter().flatten()
            {
                let part = |key: &str| gvk.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
                by_gvk.insert((part("group"), part("version"), part("kind")), name.clone());
            }
        }
        Self { schemas, by_gvk }
    }

    /// The definition called `name` (`io.k8s.api.core.v1.Pod`).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.schemas.get(name)
    }

    /// The name of the definition of a kind; `group` is `""` for the core
    /// group.
    pub fn name_of(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.by_gvk.get(&(group.to_string(), version.to_string(), kind.to_string())).map(String::as_str)
    }

    /// The definition of a kind.
    pub fn kind(&self, group: &str, version: &str, kind: &str) -> Option<&Value> {
        self.name_of(group, version, kind).and_then(|name| self.get(name))
    }

    /// How many definitions there are.
    pub fn len(&self) -> usize {
        self.schemas.len()
    }

    /// Whether there are none (the embedded file did not load).
    pub fn is_empty(&self) -> bool {
        self.schemas.is_empty()
    }
}

/// The definition name a `$ref` points at, if it points into
/// `components.schemas`.
pub fn ref_name(reference: &str) -> Option<&str> {
    reference.strip_prefix(REF_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_definitions_load() {
        assert!(load_error().is_none(), "{:?}", load_error());
        assert!(definitions().len() > 800, "only {} definitions", definitions().len());
    }

    #[test]
    fn kinds_are_indexed_by_group_version_kind() {
        assert_eq!(definitions().name_of("", "v1", "Pod"), Some("io.k8s.api.core.v1.Pod"));
        assert_eq!(definitions().name_of("apps", "v1", "Deployment"), Some("io.k8s.api.apps.v1.Deployment"));
        assert_eq!(
            definitions().name_of("apps", "v1", "DeleteOptions"),
            Some("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        assert_eq!(definitions().name_of("apps", "v1", "Pod"), None);
    }

    #[test]
    fn json_schema_rewrites_are_undone() {
        let pod = definitions().kind("", "v1", "Pod").expect("Pod");
        assert_eq!(pod["type"], "object");
        assert_eq!(
            pod["properties"]["apiVersion"],
            serde_json::json!({
                "description": pod["properties"]["apiVersion"]["description"],
                "type": "string",
            })
        );
        assert_eq!(
            pod["properties"]["spec"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.PodSpec"
        );
        let int_or_string =
            definitions().get("io.k8s.apimachinery.pkg.util.intstr.IntOrString").expect("IntOrString");
        assert_eq!(int_or_string["format"], "int-or-string");
    }

    #[test]
    fn corrupt_data_is_an_error() {
        assert!(matches!(decode(b"not gzip"), Err(LoadError::Decompress(_))));
    }
}
