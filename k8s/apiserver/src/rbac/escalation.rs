//! Upstream's escalation check: a user may only write a Role or ClusterRole
//! granting what they hold themselves (or with the `escalate` verb on it),
//! and may only bind a role whose permissions they hold (or with `bind` on
//! it). Without it, anyone allowed to create a RoleBinding could bind
//! `cluster-admin`.

use super::rules::{self, PolicyRule, Request, ResourceAttributes};

/// One requested permission, broken down as upstream's `BreakdownRule`: one
/// group, resource, verb and (optional) name, or one URL and verb.
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    let names: Vec<Vec<String>> = if rule.resource_names.is_empty() {
        vec![Vec::new()]
    } else {
        rule.resource_names.iter().map(|n| vec![n.clone()]).collect()
    };
    for g in &rule.api_groups {
        for r in &rule.resources {
            for v in &rule.verbs {
                for n in &names {
                    out.push(PolicyRule {
                        api_groups: vec![g.clone()],
                        resources: vec![r.clone()],
                        verbs: vec![v.clone()],
                        resource_names: n.clone(),
                        non_resource_urls: Vec::new(),
                    });
                }
            }
        }
    }
    for u in &rule.non_resource_urls {
        for v in &rule.verbs {
            out.push(PolicyRule {
                non_resource_urls: vec![u.clone()],
                verbs: vec![v.clone()],
                ..Default::default()
            });
        }
    }
    out
}

fn has(owner: &[String], wanted: &str) -> bool {
    owner.iter().any(|o| o == "*" || o == wanted)
}

/// Whether `owner` covers one broken-down rule (upstream's `ruleCovers`):
/// a `*` asked for needs a `*` held.
fn covers(owner: &PolicyRule, wanted: &PolicyRule) -> bool {
    let verbs = wanted.verbs.iter().all(|v| has(&owner.verbs, v));
    if !wanted.non_resource_urls.is_empty() {
        return verbs
            && wanted.non_resource_urls.iter().all(|u| {
                owner.non_resource_urls.iter().any(|o| {
                    o == "*" || o == u || (o.ends_with('*') && u.starts_with(o.trim_end_matches('*')))
                })
            });
    }
    let groups = wanted.api_groups.iter().all(|g| has(&owner.api_groups, g));
    let resources = wanted.resources.iter().all(|r| {
        owner.resources.iter().any(|o| {
            o == "*"
                || o == r
                || (o.strip_prefix("*/").is_some_and(|sub| r.split_once('/').is_some_and(|(_, s)| s == sub)))
        })
    });
    let names = owner.resource_names.is_empty()
        || (!wanted.resource_names.is_empty()
            && wanted.resource_names.iter().all(|n| owner.resource_names.contains(n)));
    verbs && groups && resources && names
}

/// The broken-down rules of `requested` that no rule of `owner` covers.
pub fn uncovered(owner: &[PolicyRule], requested: &[PolicyRule]) -> Vec<PolicyRule> {
    requested.iter().flat_map(breakdown).filter(|w| !owner.iter().any(|o| covers(o, w))).collect()
}

/// Upstream's rendering of missing rules in the Forbidden message:
/// `{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`.
pub fn describe(rules: &[PolicyRule]) -> String {
    let list = |v: &[String]| v.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(" ");
    rules
        .iter()
        .map(|r| {
            let mut parts = Vec::new();
            if !r.api_groups.is_empty() {
                parts.push(format!("APIGroups:[{}]", list(&r.api_groups)));
            }
            if !r.resources.is_empty() {
                parts.push(format!("Resources:[{}]", list(&r.resources)));
            }
            if !r.resource_names.is_empty() {
                parts.push(format!("ResourceNames:[{}]", list(&r.resource_names)));
            }
            if !r.non_resource_urls.is_empty() {
                parts.push(format!("NonResourceURLs:[{}]", list(&r.non_resource_urls)));
            }
            parts.push(format!("Verbs:[{}]", list(&r.verbs)));
            format!("{{{}}}", parts.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The request for the `escalate` or `bind` verb on a role.
pub fn special_verb(verb: &str, group: &str, resource: &str, namespace: &str, name: &str) -> Request {
    Request::Resource(ResourceAttributes {
        verb: verb.into(),
        namespace: namespace.into(),
        group: group.into(),
        version: "v1".into(),
        resource: resource.into(),
        subresource: String::new(),
        name: name.into(),
    })
}

/// Whether `rules` allow `request` (for `escalate` and `bind`).
pub fn allowed(rules_held: &[PolicyRule], request: &Request) -> bool {
    rules_held.iter().any(|r| rules::allows(request, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_string()).collect();
        PolicyRule { api_groups: s(groups), resources: s(resources), verbs: s(verbs), ..Default::default() }
    }

    #[test]
    fn only_held_permissions_may_be_granted() {
        let held = [rule(&[""], &["pods", "configmaps"], &["get", "list"]), rule(&["apps"], &["*"], &["*"])];
        assert!(uncovered(&held, &[rule(&[""], &["pods"], &["get"])]).is_empty());
        assert!(uncovered(&held, &[rule(&["apps"], &["deployments"], &["delete"])]).is_empty());
        let missing = uncovered(&held, &[rule(&[""], &["pods", "secrets"], &["get", "delete"])]);
        assert_eq!(missing.len(), 3, "{missing:?}");
        assert_eq!(describe(&missing[..1]), r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#);
        // A wildcard asked for needs a wildcard held.
        assert_eq!(uncovered(&held, &[rule(&[""], &["*"], &["get"])]).len(), 1);
        assert!(uncovered(&[rule(&["*"], &["*"], &["*"])], &[rule(&["*"], &["*"], &["*"])]).is_empty());
    }
}
