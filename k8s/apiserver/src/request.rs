//! What a request path means: upstream's `RequestInfo` (API group, version,
//! namespace, resource, name, subresource, verb).

use axum::http::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/api`, `/apis`: the group lists.
    Root { legacy: bool },
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`: the resource list.
    GroupVersion { group: String, version: String },
    /// Anything under a group-version.
    Resource(ResourceRequest),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRequest {
    pub group: String,
    pub version: String,
    /// `""` for cluster-wide requests.
    pub namespace: String,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub verb: Verb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    /// The verb as RBAC and discovery spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// Subresources of a namespace object, which would otherwise read as a
/// resource inside the namespace (`/api/v1/namespaces/x/status`).
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Parses the path (without query) of a request; `None` for paths outside
/// `/api` and `/apis`.
pub fn parse(method: &Method, path: &str, watch: bool) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api"] => return Some(Target::Root { legacy: true }),
        ["apis"] => return Some(Target::Root { legacy: false }),
        ["apis", g] => return Some(Target::Group((*g).to_string())),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    if rest.is_empty() {
        return Some(Target::GroupVersion { group: group.into(), version: version.into() });
    }
    if rest.iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut rest: &[&str] = rest;
    let mut namespace = "";
    if rest[0] == "namespaces" && rest.len() > 1 {
        namespace = rest[1];
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest = &rest[2..];
        }
    }
    let (plural, name, subresource) = match rest {
        [r] => (*r, None, None),
        [r, n] => (*r, Some(*n), None),
        [r, n, s] => (*r, Some(*n), Some(*s)),
        _ => return None,
    };
    // `/api/v1/namespaces/x` names the namespace object itself.
    if plural == "namespaces" {
        namespace = "";
    }
    let verb = match (method.as_str(), name.is_some()) {
        ("GET" | "HEAD", _) if watch => Verb::Watch,
        ("GET" | "HEAD", true) => Verb::Get,
        ("GET" | "HEAD", false) => Verb::List,
        ("POST", _) => Verb::Create,
        ("PUT", _) => Verb::Update,
        ("PATCH", _) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        _ => return None,
    };
    Some(Target::Resource(ResourceRequest {
        group: group.into(),
        version: version.into(),
        namespace: namespace.into(),
        plural: plural.into(),
        name: name.map(String::from),
        subresource: subresource.map(String::from),
        verb,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(method: Method, path: &str) -> ResourceRequest {
        match parse(&method, path, false) {
            Some(Target::Resource(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths() {
        let r = res(Method::GET, "/api/v1/namespaces/default/pods/p1");
        assert_eq!(
            (r.namespace.as_str(), r.plural.as_str(), r.name.as_deref()),
            ("default", "pods", Some("p1"))
        );
        assert_eq!(r.verb, Verb::Get);
        let r = res(Method::GET, "/apis/apps/v1/deployments");
        assert_eq!((r.group.as_str(), r.namespace.as_str(), r.verb), ("apps", "", Verb::List));
        let r = res(Method::PUT, "/api/v1/namespaces/kube-system/status");
        assert_eq!(
            (r.plural.as_str(), r.name.as_deref(), r.subresource.as_deref()),
            ("namespaces", Some("kube-system"), Some("status"))
        );
        assert_eq!(r.namespace, "");
        let r = res(Method::GET, "/api/v1/namespaces/x");
        assert_eq!(
            (r.plural.as_str(), r.name.as_deref(), r.namespace.as_str()),
            ("namespaces", Some("x"), "")
        );
        let r = res(Method::PATCH, "/apis/apps/v1/namespaces/d/deployments/web/scale");
        assert_eq!((r.subresource.as_deref(), r.verb), (Some("scale"), Verb::Patch));
        let r = res(Method::DELETE, "/api/v1/namespaces/d/configmaps");
        assert_eq!(r.verb, Verb::DeleteCollection);
        assert_eq!(parse(&Method::GET, "/apis", false), Some(Target::Root { legacy: false }));
        assert_eq!(
            parse(&Method::GET, "/api/v1", false),
            Some(Target::GroupVersion { group: String::new(), version: "v1".into() })
        );
        assert_eq!(parse(&Method::GET, "/metrics", false), None);
        assert_eq!(parse(&Method::GET, "/api/v1/namespaces/a/pods/b/c/d", false), None);
    }
}
