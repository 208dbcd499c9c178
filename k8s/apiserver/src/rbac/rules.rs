//! One request against one rule: upstream's `RuleAllows` and the matchers
//! of `pkg/apis/rbac/v1/evaluation_helpers.go`.

use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

/// `rbac.authorization.k8s.io/v1` `PolicyRule`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    #[serde(default, deserialize_with = "strings")]
    pub verbs: Vec<String>,
    #[serde(default, deserialize_with = "strings")]
    pub api_groups: Vec<String>,
    #[serde(default, deserialize_with = "strings")]
    pub resources: Vec<String>,
    #[serde(default, deserialize_with = "strings")]
    pub resource_names: Vec<String>,
    #[serde(default, rename = "nonResourceURLs", deserialize_with = "strings")]
    pub non_resource_urls: Vec<String>,
}

/// A list of strings where `null` is empty, as Go reads it.
fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

impl PolicyRule {
    /// The rule as the API writes it (empty lists left out).
    pub fn to_json(&self) -> Value {
        let mut o = serde_json::Map::new();
        let mut put = |k: &str, v: &Vec<String>| {
            if !v.is_empty() {
                o.insert(k.into(), json!(v));
            }
        };
        put("apiGroups", &self.api_groups);
        put("resources", &self.resources);
        put("resourceNames", &self.resource_names);
        put("nonResourceURLs", &self.non_resource_urls);
        o.insert("verbs".into(), json!(self.verbs));
        Value::Object(o)
    }

    /// The rules of a role object's `rules` (unreadable entries skipped).
    pub fn list(obj: &Value) -> Vec<PolicyRule> {
        obj.get("rules")
            .and_then(Value::as_array)
            .map(|rules| rules.iter().filter_map(|r| serde_json::from_value(r.clone()).ok()).collect())
            .unwrap_or_default()
    }
}

/// What is being asked: upstream's `authorizer.Attributes` without the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Resource(ResourceAttributes),
    /// `/api`, `/version`, `/healthz`: the lower-cased HTTP method and the path.
    NonResource {
        verb: String,
        path: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceAttributes {
    pub verb: String,
    /// `""` for cluster-scoped requests.
    pub namespace: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    /// `""` when none.
    pub subresource: String,
    /// `""` when none.
    pub name: String,
}

impl Request {
    pub fn verb(&self) -> &str {
        match self {
            Request::Resource(r) => &r.verb,
            Request::NonResource { verb, .. } => verb,
        }
    }

    /// The namespace whose RoleBindings apply (`""`: only cluster bindings).
    pub fn namespace(&self) -> &str {
        match self {
            Request::Resource(r) => &r.namespace,
            Request::NonResource { .. } => "",
        }
    }
}

/// Upstream's `RuleAllows`.
pub fn allows(request: &Request, rule: &PolicyRule) -> bool {
    match request {
        Request::Resource(r) => {
            let combined = if r.subresource.is_empty() {
                r.resource.clone()
            } else {
                format!("{}/{}", r.resource, r.subresource)
            };
            verb_matches(rule, &r.verb)
                && group_matches(rule, &r.group)
                && resource_matches(rule, &combined, &r.subresource)
                && name_matches(rule, &r.name)
        }
        Request::NonResource { verb, path } => verb_matches(rule, verb) && url_matches(rule, path),
    }
}

fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == "*" || v == verb)
}

fn group_matches(rule: &PolicyRule, group: &str) -> bool {
    rule.api_groups.iter().any(|g| g == "*" || g == group)
}

/// `*`, the exact `resource` or `resource/subresource`, or `*/subresource`.
fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    rule.resources.iter().any(|r| {
        r == "*"
            || r == combined
            || (!subresource.is_empty() && r.strip_prefix("*/").is_some_and(|s| s == subresource))
    })
}

/// No names: any object; otherwise the request's name must be listed (a
/// request without a name, like list or create, matches none).
fn name_matches(rule: &PolicyRule, name: &str) -> bool {
    rule.resource_names.is_empty() || rule.resource_names.iter().any(|n| n == name)
}

/// `*`, the exact path, or a prefix ending in `*`.
fn url_matches(rule: &PolicyRule, path: &str) -> bool {
    rule.non_resource_urls
        .iter()
        .any(|u| u == "*" || u == path || u.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: Value) -> PolicyRule {
        serde_json::from_value(v).unwrap()
    }

    fn res(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Request {
        Request::Resource(ResourceAttributes {
            verb: verb.into(),
            namespace: "default".into(),
            group: group.into(),
            version: "v1".into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
        })
    }

    fn path(verb: &str, p: &str) -> Request {
        Request::NonResource { verb: verb.into(), path: p.into() }
    }

    #[test]
    fn verbs_groups_resources() {
        let r = rule(json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}));
        assert!(allows(&res("get", "", "pods", "", "p"), &r));
        assert!(allows(&res("list", "", "pods", "", ""), &r));
        assert!(!allows(&res("delete", "", "pods", "", "p"), &r));
        assert!(!allows(&res("get", "apps", "pods", "", "p"), &r), "other group");
        assert!(!allows(&res("get", "", "secrets", "", "p"), &r));
        assert!(!allows(&res("get", "", "pods", "log", "p"), &r), "pods does not grant pods/log");
        let all = rule(json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}));
        assert!(allows(&res("deletecollection", "apps", "deployments", "scale", ""), &all));
        assert!(!allows(&path("get", "/api"), &all), "resource rules grant no paths");
    }

    #[test]
    fn subresources() {
        let log = rule(json!({"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}));
        assert!(allows(&res("get", "", "pods", "log", "p"), &log));
        assert!(!allows(&res("get", "", "pods", "", "p"), &log));
        let scale = rule(json!({"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"]}));
        assert!(allows(&res("update", "apps", "deployments", "scale", "web"), &scale));
        assert!(allows(&res("update", "apps", "statefulsets", "scale", "db"), &scale));
        assert!(!allows(&res("update", "apps", "deployments", "", "web"), &scale));
        assert!(!allows(&res("update", "apps", "deployments", "status", "web"), &scale));
        assert!(!allows(&res("update", "apps", "deployments", "xscale", "web"), &scale));
    }

    #[test]
    fn resource_names() {
        let r = rule(
            json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["app"], "verbs": ["get", "list"]}),
        );
        assert!(allows(&res("get", "", "configmaps", "", "app"), &r));
        assert!(!allows(&res("get", "", "configmaps", "", "other"), &r));
        assert!(!allows(&res("list", "", "configmaps", "", ""), &r), "no name matches no listed name");
    }

    #[test]
    fn non_resource_urls() {
        let r = rule(json!({"nonResourceURLs": ["/api", "/apis/*", "/healthz"], "verbs": ["get"]}));
        assert!(allows(&path("get", "/api"), &r));
        assert!(allows(&path("get", "/apis/apps/v1"), &r));
        assert!(allows(&path("get", "/apis/"), &r));
        assert!(!allows(&path("get", "/apis"), &r), "the star needs the slash before it");
        assert!(!allows(&path("get", "/api/v1"), &r));
        assert!(!allows(&path("post", "/healthz"), &r));
        assert!(!allows(&res("get", "", "pods", "", ""), &r), "path rules grant no resources");
        let any = rule(json!({"nonResourceURLs": ["*"], "verbs": ["*"]}));
        assert!(allows(&path("delete", "/metrics"), &any));
    }

    #[test]
    fn null_lists_read_as_empty_and_write_back_without_them() {
        let r =
            rule(json!({"apiGroups": null, "resources": ["pods"], "verbs": ["get"], "resourceNames": null}));
        assert!(r.api_groups.is_empty() && r.resource_names.is_empty());
        assert_eq!(r.to_json(), json!({"resources": ["pods"], "verbs": ["get"]}));
        let role = json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/x"]}, {"verbs": 5}]});
        assert_eq!(PolicyRule::list(&role).len(), 1, "unreadable rules are skipped");
    }
}
