//! kubectl's JSONPath (`k8s.io/client-go/util/jsonpath`): the templates of
//! `kubectl get -o jsonpath=...` and of CRD `additionalPrinterColumns`.

use std::borrow::Cow;

use serde_json::Value;

mod eval;
mod gofmt;
mod parse;

pub(crate) use gofmt::result_text;

/// A template could not be parsed or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonPathError {
    #[error("invalid jsonpath template {template:?}: {reason}")]
    Syntax { template: String, reason: String },
    #[error("evaluating jsonpath template {template:?}: {reason}")]
    Evaluate { template: String, reason: String },
}

/// A parsed JSONPath template.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    template: String,
    nodes: Vec<parse::Node>,
    allow_missing_keys: bool,
}

impl JsonPath {
    /// Parses a template: text with `{...}` actions, e.g.
    /// `{.status.conditions[?(@.type=="Ready")].status}`.
    pub fn parse(template: &str) -> Result<JsonPath, JsonPathError> {
        let nodes = parse::parse(template)
            .map_err(|reason| JsonPathError::Syntax { template: template.to_string(), reason })?;
        Ok(JsonPath { template: template.to_string(), nodes, allow_missing_keys: false })
    }

    /// Whether a missing field yields no result instead of an error.
    pub fn allow_missing_keys(mut self, allow: bool) -> JsonPath {
        self.allow_missing_keys = allow;
        self
    }

    /// The results of each text or action of the template, in order
    /// (upstream's `FindResults`).
    pub fn find_results(&self, data: &Value) -> Result<Vec<Vec<Value>>, JsonPathError> {
        let walker = eval::Walker { allow_missing_keys: self.allow_missing_keys };
        self.nodes
            .iter()
            .map(|node| {
                walker
                    .walk(vec![Cow::Borrowed(data)], node)
                    .map(|items| items.into_iter().map(Cow::into_owned).collect())
                    .map_err(|reason| JsonPathError::Evaluate { template: self.template.clone(), reason })
            })
            .collect()
    }

    /// The template rendered against `data` as `kubectl -o jsonpath` prints
    /// it: results of one action separated by spaces, maps and lists as
    /// JSON.
    pub fn execute(&self, data: &Value) -> Result<String, JsonPathError> {
        Ok(self
            .find_results(data)?
            .iter()
            .map(|results| results.iter().map(result_text).collect::<Vec<_>>().join(" "))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "kind": "Pod",
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}, "annotations": {"kubernetes.io/psp": "restricted"}},
            "spec": {"containers": [{"name": "app", "image": "nginx", "ports": [{"containerPort": 80}, {"containerPort": 443}]},
                                    {"name": "sidecar", "image": "envoy", "ports": [{"containerPort": 9901}]}]},
            "status": {"conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
                       "score": 0.75, "replicas": null}
        })
    }

    fn run(template: &str) -> Result<String, JsonPathError> {
        JsonPath::parse(template)?.allow_missing_keys(true).execute(&pod())
    }

    #[test]
    fn fields_indexes_and_slices() {
        assert_eq!(run("{.metadata.name}").unwrap(), "web");
        assert_eq!(run("{.spec.containers[0].image}").unwrap(), "nginx");
        assert_eq!(run("{.spec.containers[-1].name}").unwrap(), "sidecar");
        assert_eq!(run("{.spec.containers[*].name}").unwrap(), "app sidecar");
        assert_eq!(run("{.spec.containers[0:1].name}").unwrap(), "app");
        assert_eq!(run("{.spec.containers[*].ports[*].containerPort}").unwrap(), "80 443 9901");
        assert_eq!(run("{.spec.containers[0,1].name}").unwrap(), "app sidecar");
        assert_eq!(run("{.spec.containers[0]['name','image']}").unwrap(), "app nginx");
        assert_eq!(run(r"{.metadata.annotations.kubernetes\.io/psp}").unwrap(), "restricted");
        assert_eq!(run("{.metadata.labels}").unwrap(), r#"{"app":"web","tier":"front"}"#);
        assert_eq!(run("{.status.score}").unwrap(), "0.75");
        assert_eq!(run("name: {.metadata.name}!").unwrap(), "name: web!");
    }

    #[test]
    fn filters_and_recursion() {
        assert_eq!(run(r#"{.status.conditions[?(@.type=="Ready")].status}"#).unwrap(), "False");
        assert_eq!(run(r#"{.status.conditions[?(@.status!="True")].reason}"#).unwrap(), "ContainersNotReady");
        assert_eq!(run("{.status.conditions[?(@.reason)].type}").unwrap(), "Ready");
        assert_eq!(
            run("{.spec.containers[*].ports[?(@.containerPort>400)].containerPort}").unwrap(),
            "443 9901"
        );
        assert_eq!(run("{..image}").unwrap(), "nginx envoy");
        assert_eq!(run("{.metadata.labels.*}").unwrap(), "web front");
    }

    #[test]
    fn missing_keys_and_errors() {
        assert_eq!(run("{.spec.nodeName}").unwrap(), "");
        assert_eq!(run("{.status.replicas}").unwrap(), "null");
        let strict = JsonPath::parse("{.spec.nodeName}").unwrap();
        assert!(matches!(strict.execute(&pod()), Err(JsonPathError::Evaluate { .. })));
        assert!(run("{.spec.containers[5].name}").is_err());
        assert!(run("{.metadata.name[0]}").is_err());
        assert!(run(r#"{.spec.containers[*].ports[?(@.containerPort=="80")]}"#).is_err());
        assert!(matches!(JsonPath::parse("{.a[}"), Err(JsonPathError::Syntax { .. })));
        assert!(run("{range .items[*]}{.name}{end}").is_err());
    }
}
