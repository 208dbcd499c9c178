//! A DaemonSet's RollingUpdate, as upstream's `rollingUpdate`: which old
//! pods to delete and where to surge new ones, node by node, so that no
//! more than maxUnavailable nodes lack an available pod (or, with
//! maxSurge, no more than maxSurge nodes run two). Pure: the manage loop
//! creates the replacements.

use std::time::SystemTime;

use serde_json::Value;

use super::placement::HASH_LABEL;
use crate::meta;
use crate::meta::int_or_percent as scaled;

/// (maxSurge, maxUnavailable) for `desired` nodes (upstream's
/// `updatedDesiredNodeCounts`): both round up; both zero would stall, so
/// unavailable becomes 1.
pub fn budgets(ds: &Value, desired: i64) -> (i64, i64) {
    let strategy = &ds["spec"]["updateStrategy"];
    if strategy["type"] == "OnDelete" {
        return (0, 0);
    }
    let ru = &strategy["rollingUpdate"];
    let unavailable = scaled(ru.get("maxUnavailable").unwrap_or(&Value::from(1)), desired, true);
    let surge = scaled(ru.get("maxSurge").unwrap_or(&Value::from(0)), desired, true);
    if desired > 0 && unavailable == 0 && surge == 0 { (0, 1) } else { (surge, unavailable) }
}

/// Whether a pod runs the current template: its hash label, or the
/// template generation when the API server keeps one (upstream's
/// `IsPodUpdated`).
pub fn is_updated(pod: &Value, hash: &str, generation: Option<i64>) -> bool {
    let by_hash = !hash.is_empty() && meta::label(pod, HASH_LABEL) == Some(hash);
    let by_generation = generation.is_some_and(|g| {
        meta::label(pod, super::placement::GENERATION_LABEL) == Some(g.to_string().as_str())
    });
    by_hash || by_generation
}

/// One node as the rollout sees it.
pub struct Node<'a> {
    pub name: &'a str,
    pub should_run: bool,
    pub pods: Vec<&'a Value>,
}

/// The new and the old pod on a node; `None` when there are several of
/// either (the manage loop cleans that up first).
fn updated_on_node<'a>(
    pods: &[&'a Value],
    hash: &str,
    generation: Option<i64>,
) -> Option<(Option<&'a Value>, Option<&'a Value>)> {
    let (mut new, mut old) = (None, None);
    for p in pods.iter().filter(|p| !meta::is_terminating(p)) {
        let slot = if is_updated(p, hash, generation) { &mut new } else { &mut old };
        if slot.is_some() {
            return None;
        }
        *slot = Some(*p);
    }
    Some((new, old))
}

/// What the rollout asks for.
#[derive(Debug, Default, PartialEq)]
pub struct Step {
    pub delete: Vec<String>,
    pub create_on: Vec<String>,
}

pub struct Rollout {
    pub hash: String,
    pub generation: Option<i64>,
    pub max_surge: i64,
    pub max_unavailable: i64,
    pub desired: i64,
    pub min_ready: i64,
    pub now: SystemTime,
}

impl Rollout {
    fn available(&self, p: &Value) -> bool {
        meta::pod_available(p, self.min_ready, self.now)
    }

    /// `nodes` holds every node with daemon pods and every node that
    /// should run one; they are visited by name for a stable order.
    pub fn step(&self, nodes: &mut [Node<'_>]) -> Step {
        nodes.sort_by(|a, b| a.name.cmp(b.name));
        if self.max_surge == 0 { self.without_surge(nodes) } else { self.with_surge(nodes) }
    }

    /// Delete just enough old pods to stay within maxUnavailable; the
    /// manage loop creates their replacements.
    fn without_surge(&self, nodes: &[Node<'_>]) -> Step {
        let mut unavailable = 0;
        let mut replace_now = Vec::new();
        let mut candidates = Vec::new();
        for n in nodes {
            let Some((new, old)) = updated_on_node(&n.pods, &self.hash, self.generation) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(new), None) => {
                    if !self.available(new) {
                        unavailable += 1;
                    }
                }
                (None, Some(old)) => {
                    if !self.available(old) {
                        replace_now.push(meta::name(old).to_owned());
                    } else if unavailable < self.max_unavailable {
                        candidates.push(meta::name(old).to_owned());
                    }
                }
            }
        }
        let budget = usize::try_from((self.max_unavailable - unavailable).max(0)).unwrap_or(0);
        replace_now.extend(candidates.into_iter().take(budget));
        Step { delete: replace_now, create_on: Vec::new() }
    }

    /// Create new pods beside old ones (up to maxSurge at once), delete an
    /// old pod once its node's new one is available.
    fn with_surge(&self, nodes: &[Node<'_>]) -> Step {
        let mut step = Step::default();
        let mut not_wanted = Vec::new();
        let mut candidates = Vec::new();
        let (mut surging, mut available) = (0, 0);
        for n in nodes {
            let Some((new, old)) = updated_on_node(&n.pods, &self.hash, self.generation) else {
                surging += 1;
                continue;
            };
            if old.or(new).is_some_and(|p| self.available(p)) {
                available += 1;
            }
            match (new, old) {
                (_, None) => {}
                (None, Some(old)) if !self.available(old) => {
                    if n.should_run {
                        step.create_on.push(n.name.to_owned());
                    } else {
                        step.delete.push(meta::name(old).to_owned());
                    }
                }
                (None, Some(old)) => {
                    if !n.should_run {
                        not_wanted.push(meta::name(old).to_owned());
                    } else if surging < self.max_surge {
                        candidates.push(n.name.to_owned());
                    }
                }
                (Some(new), Some(old)) => {
                    if self.available(new) {
                        step.delete.push(meta::name(old).to_owned());
                    } else {
                        surging += 1;
                    }
                }
            }
        }
        // Pods on nodes that no longer fit go only while enough others are
        // available elsewhere.
        let deletable = usize::try_from((available - self.desired).max(0)).unwrap_or(0);
        step.delete.extend(not_wanted.into_iter().take(deletable));
        let budget = usize::try_from((self.max_surge - surging).max(0)).unwrap_or(0);
        step.create_on.extend(candidates.into_iter().take(budget));
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, hash: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name, "labels": {HASH_LABEL: hash}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    fn rollout(surge: i64, unavailable: i64) -> Rollout {
        Rollout {
            hash: "new".into(),
            generation: None,
            max_surge: surge,
            max_unavailable: unavailable,
            desired: 4,
            min_ready: 0,
            now: SystemTime::now(),
        }
    }

    #[test]
    fn budgets_resolve_percentages_upwards_and_never_both_zero() {
        let ds =
            |ru: Value| json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": ru}}});
        assert_eq!(budgets(&ds(json!({"maxUnavailable": "25%"})), 5), (0, 2));
        assert_eq!(budgets(&ds(json!({"maxUnavailable": 0, "maxSurge": "10%"})), 5), (1, 0));
        assert_eq!(budgets(&ds(json!({"maxUnavailable": 0, "maxSurge": 0})), 5), (0, 1));
        assert_eq!(budgets(&ds(json!({})), 5), (0, 1));
        assert_eq!(budgets(&json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}), 5), (0, 0));
        assert_eq!(scaled(&json!("50%"), 3, false), 1);
    }

    #[test]
    fn without_surge_old_pods_go_within_max_unavailable() {
        let olds: Vec<Value> = (0..4).map(|i| pod(&format!("o{i}"), "old", true)).collect();
        let names = ["a", "b", "c", "d"];
        let mut nodes: Vec<Node<'_>> =
            (0..4).map(|i| Node { name: names[i], should_run: true, pods: vec![&olds[i]] }).collect();
        assert_eq!(rollout(0, 1).step(&mut nodes).delete, ["o0"]);
        assert_eq!(rollout(0, 2).step(&mut nodes).delete, ["o0", "o1"]);
        // Node a is being replaced (no pod yet): nothing more may go.
        nodes[0].pods.clear();
        assert!(rollout(0, 1).step(&mut nodes).delete.is_empty());
        // Its new pod is not ready yet: still nothing.
        let fresh = pod("n0", "new", false);
        nodes[0].pods.push(&fresh);
        assert!(rollout(0, 1).step(&mut nodes).delete.is_empty());
        // Ready: the next node goes.
        let ready = pod("n0", "new", true);
        nodes[0].pods[0] = &ready;
        assert_eq!(rollout(0, 1).step(&mut nodes).delete, ["o1"]);
        // An unavailable old pod is replaced regardless of the budget.
        let broken = pod("o3", "old", false);
        nodes[3].pods[0] = &broken;
        assert_eq!(rollout(0, 1).step(&mut nodes).delete, ["o3", "o1"]);
    }

    #[test]
    fn with_surge_new_pods_come_first_and_old_ones_leave_when_they_are_available() {
        let olds: Vec<Value> = (0..3).map(|i| pod(&format!("o{i}"), "old", true)).collect();
        let names = ["a", "b", "c"];
        let mut nodes: Vec<Node<'_>> =
            (0..3).map(|i| Node { name: names[i], should_run: true, pods: vec![&olds[i]] }).collect();
        let step = rollout(1, 0).step(&mut nodes);
        assert_eq!(step, Step { delete: vec![], create_on: vec!["a".into()] });
        let surged = pod("n0", "new", false);
        nodes[0].pods.push(&surged);
        assert_eq!(rollout(1, 0).step(&mut nodes), Step::default());
        let ready = pod("n0", "new", true);
        nodes[0].pods[1] = &ready;
        let step = rollout(1, 0).step(&mut nodes);
        assert_eq!(step, Step { delete: vec!["o0".into()], create_on: vec!["b".into()] });
    }
}
