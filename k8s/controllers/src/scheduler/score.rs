//! Scoring the nodes that passed the filters, with upstream's default
//! weights: LeastAllocated (1), BalancedAllocation (1), TaintToleration (3),
//! NodeAffinity preferred terms (2) and spreading of a controller's pods
//! (2, the part of PodTopologySpread's system defaults that matters on a
//! small cluster: fewer of the same owner's pods on a node is better).

use serde_json::Value;

use super::cache::NodeInfo;
use super::filters::{taints, tolerated};
use crate::meta;

const MAX: i64 = 100;

fn least_allocated(info: &NodeInfo, non_zero: (i64, i64)) -> i64 {
    let alloc = info.allocatable();
    let part = |cap: i64, used: i64| if cap <= 0 || used > cap { 0 } else { (cap - used) * MAX / cap };
    (part(alloc.get("cpu"), info.non_zero.0 + non_zero.0)
        + part(alloc.get("memory"), info.non_zero.1 + non_zero.1))
        / 2
}

fn balanced(info: &NodeInfo, non_zero: (i64, i64)) -> i64 {
    let alloc = info.allocatable();
    // Fractions in per-mille, capped at 1.
    let frac =
        |cap: i64, used: i64| if cap <= 0 { 1000 } else { (used.saturating_mul(1000) / cap).min(1000) };
    let cpu = frac(alloc.get("cpu"), info.non_zero.0 + non_zero.0);
    let mem = frac(alloc.get("memory"), info.non_zero.1 + non_zero.1);
    (1000 - (cpu - mem).abs()) * MAX / 1000
}

fn prefer_no_schedule(pod: &Value, info: &NodeInfo) -> i64 {
    let Some(node) = info.node.as_deref() else { return 0 };
    taints(node).filter(|t| t["effect"] == "PreferNoSchedule" && !tolerated(pod, t)).count() as i64
}

fn preferred_affinity(pod: &Value, info: &NodeInfo) -> i64 {
    let Some(node) = info.node.as_deref() else { return 0 };
    let terms = &pod["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
    let mut sum = 0;
    for t in terms.as_array().into_iter().flatten() {
        let term = &t["preference"];
        let one = serde_json::json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}}});
        if super::filters::node_affinity_matches(&one, node) {
            sum += t["weight"].as_i64().unwrap_or(0);
        }
    }
    sum
}

fn same_owner(pod: &Value, info: &NodeInfo) -> i64 {
    let owner = meta::controller_uid(pod);
    if owner.is_empty() {
        return 0;
    }
    info.owners.get(owner).copied().unwrap_or(0)
}

/// Scales raw values to 0..=100, higher raw being better (or worse when
/// `reverse`), as upstream's `DefaultNormalizeScore`.
fn normalize(raw: &[i64], reverse: bool) -> Vec<i64> {
    let max = raw.iter().copied().max().unwrap_or(0);
    raw.iter()
        .map(|&r| match (max, reverse) {
            (0, true) => MAX,
            (0, false) => 0,
            (m, false) => r * MAX / m,
            (m, true) => MAX - r * MAX / m,
        })
        .collect()
}

/// The total score of each candidate node.
pub fn score(pod: &Value, non_zero: (i64, i64), nodes: &[&NodeInfo]) -> Vec<i64> {
    let taint = normalize(&nodes.iter().map(|n| prefer_no_schedule(pod, n)).collect::<Vec<_>>(), true);
    let affinity = normalize(&nodes.iter().map(|n| preferred_affinity(pod, n)).collect::<Vec<_>>(), false);
    let spread = normalize(&nodes.iter().map(|n| same_owner(pod, n)).collect::<Vec<_>>(), true);
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            least_allocated(n, non_zero)
                + balanced(n, non_zero)
                + 3 * taint[i]
                + 2 * affinity[i]
                + 2 * spread[i]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_as_upstream() {
        assert_eq!(normalize(&[0, 5, 10], false), [0, 50, 100]);
        assert_eq!(normalize(&[0, 5, 10], true), [100, 50, 0]);
        assert_eq!(normalize(&[0, 0], true), [100, 100]);
    }
}
