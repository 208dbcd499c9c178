//! The roles and bindings of one store revision, and upstream's rule
//! resolution over them (`pkg/registry/rbac/validation/rule.go`): which
//! rules apply to a user in a namespace, with the binding each came from.

use std::collections::{BTreeMap, HashMap, HashSet};

use lichen_apimachinery::selector::Selector;
use serde::Deserialize;
use serde_json::Value;

use super::rules::{self, PolicyRule, Request};
use crate::authn::Identity;

/// `rbac.authorization.k8s.io/v1` `Subject`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Subject {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

/// `rbac.authorization.k8s.io/v1` `RoleRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RoleRef {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

/// A ClusterRoleBinding (`namespace` empty) or RoleBinding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub name: String,
    pub namespace: String,
    pub role_ref: RoleRef,
    pub subjects: Vec<Subject>,
}

impl Binding {
    /// `None` for an object that is not a binding (no name or roleRef).
    pub fn from_object(obj: &Value) -> Option<Binding> {
        let meta = obj.get("metadata")?;
        let name = meta.get("name")?.as_str()?.to_string();
        let namespace = meta.get("namespace").and_then(Value::as_str).unwrap_or("").to_string();
        let role_ref = serde_json::from_value(obj.get("roleRef")?.clone()).ok()?;
        let subjects = obj
            .get("subjects")
            .and_then(Value::as_array)
            .map(|s| s.iter().filter_map(|s| serde_json::from_value(s.clone()).ok()).collect())
            .unwrap_or_default();
        Some(Binding { name, namespace, role_ref, subjects })
    }

    /// Upstream's `clusterRoleBindingDescriber` / `roleBindingDescriber`.
    fn describe(&self, subject: &Subject) -> String {
        if self.namespace.is_empty() {
            format!(
                "ClusterRoleBinding {:?} of {} {:?} to {}",
                self.name,
                self.role_ref.kind,
                self.role_ref.name,
                describe_subject(subject, "")
            )
        } else {
            format!(
                "RoleBinding {:?} of {} {:?} to {}",
                format!("{}/{}", self.name, self.namespace),
                self.role_ref.kind,
                self.role_ref.name,
                describe_subject(subject, &self.namespace)
            )
        }
    }
}

fn describe_subject(s: &Subject, binding_namespace: &str) -> String {
    if s.kind == "ServiceAccount" {
        let ns = if s.namespace.is_empty() { binding_namespace } else { &s.namespace };
        format!("{} {:?}", s.kind, format!("{}/{ns}", s.name))
    } else {
        format!("{} {:?}", s.kind, s.name)
    }
}

/// Whether `subject` names this user, as upstream's `appliesToUser`: a
/// ServiceAccount subject without a namespace means the binding's own.
fn applies_to(user: &Identity, subject: &Subject, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.user == subject.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() { binding_namespace } else { &subject.namespace };
            !ns.is_empty() && user.user == service_account_user(ns, &subject.name)
        }
        _ => false,
    }
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The identity of a service account as upstream's service account token
/// authenticator makes it.
pub fn service_account_identity(namespace: &str, name: &str, uid: &str) -> Identity {
    Identity {
        user: service_account_user(namespace, name),
        uid: uid.into(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".into(),
        ],
        extra: Default::default(),
    }
}

/// What RBAC says: allowed (and by which binding), or no opinion with the
/// errors met on the way (a binding to a missing role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// `RBAC: allowed by ...` when allowed; `RBAC: <errors>` or empty when not.
    pub reason: String,
}

/// All roles and bindings at one revision.
#[derive(Debug, Default)]
pub struct Policy {
    /// Name → rules, aggregated ClusterRoles already the union of theirs.
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    /// (namespace, name) → rules.
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_role_bindings: Vec<Binding>,
    /// Namespace → bindings.
    role_bindings: HashMap<String, Vec<Binding>>,
}

/// One resolution step: the rules of a binding that applies, or the error
/// resolving its role.
enum Step<'a> {
    Rules { binding: &'a Binding, subject: &'a Subject, rules: &'a [PolicyRule] },
    Error(String),
}

impl Policy {
    /// From the stored objects of the four kinds (any order; objects that
    /// do not read as their kind are ignored).
    pub fn new(cluster_roles: &[Value], roles: &[Value], crbs: &[Value], rbs: &[Value]) -> Policy {
        let mut policy = Policy { cluster_roles: aggregate(cluster_roles), ..Policy::default() };
        for r in roles {
            let meta = r.get("metadata");
            let ns = meta.and_then(|m| m.get("namespace")).and_then(Value::as_str);
            let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
            if let (Some(ns), Some(name)) = (ns, name) {
                policy.roles.insert((ns.into(), name.into()), PolicyRule::list(r));
            }
        }
        policy.cluster_role_bindings = crbs.iter().filter_map(Binding::from_object).collect();
        for b in rbs.iter().filter_map(Binding::from_object) {
            policy.role_bindings.entry(b.namespace.clone()).or_default().push(b);
        }
        policy
    }

    /// The effective rules of a ClusterRole (aggregated ones included).
    pub fn cluster_role(&self, name: &str) -> Option<&[PolicyRule]> {
        self.cluster_roles.get(name).map(Vec::as_slice)
    }

    /// Upstream's `GetRoleReferenceRules`, with its error messages.
    pub fn role_ref_rules(&self, role_ref: &RoleRef, namespace: &str) -> Result<&[PolicyRule], String> {
        match role_ref.kind.as_str() {
            "Role" => self
                .roles
                .get(&(namespace.to_string(), role_ref.name.clone()))
                .map(Vec::as_slice)
                .ok_or_else(|| format!("role.rbac.authorization.k8s.io {:?} not found", role_ref.name)),
            "ClusterRole" => self.cluster_role(&role_ref.name).ok_or_else(|| {
                format!("clusterrole.rbac.authorization.k8s.io {:?} not found", role_ref.name)
            }),
            other => Err(format!("unsupported role reference kind: {other:?}")),
        }
    }

    /// Upstream's `VisitRulesFor`: ClusterRoleBindings, then the
    /// RoleBindings of `namespace`; stops when `visit` returns false.
    fn visit(&self, user: &Identity, namespace: &str, mut visit: impl FnMut(Step<'_>) -> bool) {
        let namespaced = if namespace.is_empty() { None } else { self.role_bindings.get(namespace) };
        let bindings = self.cluster_role_bindings.iter().chain(namespaced.into_iter().flatten());
        for b in bindings {
            let Some(subject) = b.subjects.iter().find(|s| applies_to(user, s, &b.namespace)) else {
                continue;
            };
            let step = match self.role_ref_rules(&b.role_ref, &b.namespace) {
                Ok(rules) => Step::Rules { binding: b, subject, rules },
                Err(e) => Step::Error(e),
            };
            if !visit(step) {
                return;
            }
        }
    }

    /// Upstream's `RBACAuthorizer.Authorize`.
    pub fn authorize(&self, user: &Identity, request: &Request) -> Decision {
        let mut errors = Vec::new();
        let mut allowed_by = None;
        self.visit(user, request.namespace(), |step| match step {
            Step::Rules { binding, subject, rules } => {
                if rules.iter().any(|r| rules::allows(request, r)) {
                    allowed_by = Some(binding.describe(subject));
                    return false;
                }
                true
            }
            Step::Error(e) => {
                errors.push(e);
                true
            }
        });
        match allowed_by {
            Some(source) => Decision { allowed: true, reason: format!("RBAC: allowed by {source}") },
            None if errors.is_empty() => Decision { allowed: false, reason: String::new() },
            None => Decision { allowed: false, reason: format!("RBAC: {}", aggregate_errors(&errors)) },
        }
    }

    /// Upstream's `RulesFor`: every rule that applies to `user` in
    /// `namespace`, and the resolution errors (`None` without any).
    pub fn rules_for(&self, user: &Identity, namespace: &str) -> (Vec<PolicyRule>, Option<String>) {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        self.visit(user, namespace, |step| {
            match step {
                Step::Rules { rules, .. } => out.extend(rules.iter().cloned()),
                Step::Error(e) => errors.push(e),
            }
            true
        });
        let err = (!errors.is_empty()).then(|| aggregate_errors(&errors));
        (out, err)
    }
}

/// Go's `utilerrors.NewAggregate(...).Error()`: one message alone, several
/// deduplicated in brackets.
fn aggregate_errors(errors: &[String]) -> String {
    if errors.len() == 1 {
        return errors[0].clone();
    }
    let mut seen = HashSet::new();
    let unique: Vec<&str> = errors.iter().filter(|e| seen.insert(e.as_str())).map(String::as_str).collect();
    if unique.len() == 1 { unique[0].to_string() } else { format!("[{}]", unique.join(", ")) }
}

/// ClusterRole name → effective rules. A role with an `aggregationRule` gets,
/// as upstream's aggregation controller writes it, the rules of every other
/// ClusterRole its selectors match (by name order, each rule once), those
/// being aggregated in turn; its own `rules` are ignored.
fn aggregate(objects: &[Value]) -> HashMap<String, Vec<PolicyRule>> {
    let mut by_name: BTreeMap<String, &Value> = BTreeMap::new();
    for o in objects {
        if let Some(name) = o.pointer("/metadata/name").and_then(Value::as_str) {
            by_name.insert(name.to_string(), o);
        }
    }
    let mut done: HashMap<String, Vec<PolicyRule>> = HashMap::new();
    let names: Vec<String> = by_name.keys().cloned().collect();
    for name in &names {
        let mut visiting = HashSet::new();
        effective(name, &by_name, &mut done, &mut visiting);
    }
    done
}

fn effective(
    name: &str,
    by_name: &BTreeMap<String, &Value>,
    done: &mut HashMap<String, Vec<PolicyRule>>,
    visiting: &mut HashSet<String>,
) -> Vec<PolicyRule> {
    if let Some(r) = done.get(name) {
        return r.clone();
    }
    let Some(obj) = by_name.get(name) else { return Vec::new() };
    let Some(selectors) = obj.pointer("/aggregationRule/clusterRoleSelectors").and_then(Value::as_array)
    else {
        let rules = PolicyRule::list(obj);
        done.insert(name.to_string(), rules.clone());
        return rules;
    };
    if !visiting.insert(name.to_string()) {
        // A cycle: this role's rules as stored, as the controller would
        // have last written them.
        return PolicyRule::list(obj);
    }
    let mut rules: Vec<PolicyRule> = Vec::new();
    for sel in selectors {
        let Ok(selector) = Selector::from_label_selector(Some(sel), "clusterRoleSelectors") else {
            continue;
        };
        for (other, o) in by_name {
            if other == name || !selector.matches_object(o) {
                continue;
            }
            for r in effective(other, by_name, done, visiting) {
                if !rules.contains(&r) {
                    rules.push(r);
                }
            }
        }
    }
    visiting.remove(name);
    done.insert(name.to_string(), rules.clone());
    rules
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
