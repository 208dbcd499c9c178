//! The arithmetic of a rollout, as upstream's `deployment/util`: how far
//! the new ReplicaSet may grow and the old ones shrink under maxSurge and
//! maxUnavailable. Pure functions over (spec replicas, available) pairs.

use serde_json::Value;

pub use crate::meta::int_or_percent;

/// (maxSurge, maxUnavailable) of a Deployment, as upstream's
/// `ResolveFenceposts`: both zero would stall, so unavailable becomes 1.
pub fn fenceposts(d: &Value) -> (i64, i64) {
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let ru = &d["spec"]["strategy"]["rollingUpdate"];
    if d["spec"]["strategy"]["type"] == "Recreate" {
        return (0, 0);
    }
    let default = Value::from("25%");
    let surge = int_or_percent(ru.get("maxSurge").unwrap_or(&default), replicas, true);
    let unavailable = int_or_percent(ru.get("maxUnavailable").unwrap_or(&default), replicas, false);
    if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) }
}

/// How many replicas the new ReplicaSet should have now (upstream's
/// `NewRSNewReplicas` for RollingUpdate): grow until all pods together
/// reach replicas + maxSurge.
pub fn new_rs_replicas(replicas: i64, surge: i64, total_spec: i64, new_spec: i64) -> i64 {
    let max_total = replicas + surge;
    if total_spec >= max_total {
        return new_spec;
    }
    new_spec + (max_total - total_spec).min(replicas - new_spec).max(0)
}

/// One ReplicaSet as the scale-down arithmetic sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rs {
    pub spec: i64,
    pub available: i64,
}

/// New sizes of the old ReplicaSets (oldest first) for a rolling update,
/// as upstream's `reconcileOldReplicaSets`: first drop unavailable pods
/// of old sets, then scale down while at least replicas - maxUnavailable
/// stay available.
pub fn scale_down_old(replicas: i64, unavailable: i64, new: Rs, old: &[Rs]) -> Vec<i64> {
    let mut sizes: Vec<i64> = old.iter().map(|r| r.spec).collect();
    let old_total: i64 = sizes.iter().sum();
    if old_total == 0 {
        return sizes;
    }
    let all_total = old_total + new.spec;
    let min_available = replicas - unavailable;
    let new_unavailable = new.spec - new.available;
    let max_scaled_down = all_total - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return sizes;
    }
    // Unhealthy replicas first.
    let mut cleaned = 0;
    for (i, r) in old.iter().enumerate() {
        if cleaned >= max_scaled_down {
            break;
        }
        if r.spec == r.available || r.spec == 0 {
            continue;
        }
        let n = (max_scaled_down - cleaned).min(r.spec - r.available);
        sizes[i] -= n;
        cleaned += n;
    }
    // Then healthy ones, keeping min_available.
    let available: i64 = new.available + old.iter().map(|r| r.available).sum::<i64>();
    if available <= min_available {
        return sizes;
    }
    let mut budget = available - min_available;
    for size in sizes.iter_mut() {
        if budget <= 0 {
            break;
        }
        if *size == 0 {
            continue;
        }
        let n = (*size).min(budget);
        *size -= n;
        budget -= n;
    }
    sizes
}

/// Spreads `delta` (positive or negative) over ReplicaSets in proportion to
/// their sizes; what rounding leaves goes to the first (upstream orders
/// newest first for growth, oldest first for shrinking).
pub fn proportional(sizes: &[i64], delta: i64) -> Vec<i64> {
    let total: i64 = sizes.iter().sum();
    if total == 0 || sizes.is_empty() {
        let mut out = sizes.to_vec();
        if let Some(first) = out.first_mut() {
            *first = (*first + delta).max(0);
        }
        return out;
    }
    let mut out: Vec<i64> = sizes.iter().map(|&s| s + delta * s / total).collect();
    let given: i64 = out.iter().sum::<i64>() - total;
    if let Some(first) = out.first_mut() {
        *first += delta - given;
    }
    out.iter_mut().for_each(|s| *s = (*s).max(0));
    out
}

/// Upstream's pod-template-hash: FNV-1a (32 bit) of the template and the
/// collision count, its decimal digits mapped onto `SafeEncodeString`'s
/// alphabet (no vowels, no look-alikes).
pub fn template_hash(template: &Value, collision_count: i64) -> String {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    feed(template.to_string().as_bytes());
    if collision_count > 0 {
        feed(&collision_count.to_le_bytes());
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string().bytes().map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn percentages_round_as_upstream() {
        assert_eq!(int_or_percent(&json!("25%"), 5, true), 2);
        assert_eq!(int_or_percent(&json!("25%"), 5, false), 1);
        assert_eq!(int_or_percent(&json!(3), 5, false), 3);
        let d = json!({"spec": {"replicas": 3, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"}}}});
        assert_eq!(fenceposts(&d), (0, 1));
    }

    #[test]
    fn the_new_set_grows_within_max_surge() {
        // 5 replicas, surge 2: old has 5, new grows to 2.
        assert_eq!(new_rs_replicas(5, 2, 5, 0), 2);
        // Already at the limit: stays.
        assert_eq!(new_rs_replicas(5, 2, 7, 2), 2);
        // Never past replicas.
        assert_eq!(new_rs_replicas(5, 2, 5, 4), 5);
    }

    #[test]
    fn old_sets_shrink_keeping_min_available() {
        // 5 replicas, maxUnavailable 1; old 5 available, new 2 not yet available.
        let new = Rs { spec: 2, available: 0 };
        assert_eq!(scale_down_old(5, 1, new, &[Rs { spec: 5, available: 5 }]), [4]);
        // New pods available: old shrink further.
        let new = Rs { spec: 2, available: 2 };
        assert_eq!(scale_down_old(5, 1, new, &[Rs { spec: 4, available: 4 }]), [2]);
        // Unavailable old pods go first, as far as the surge budget allows.
        let new = Rs { spec: 2, available: 0 };
        assert_eq!(scale_down_old(5, 1, new, &[Rs { spec: 5, available: 3 }]), [4]);
        let new = Rs { spec: 1, available: 1 };
        assert_eq!(scale_down_old(5, 1, new, &[Rs { spec: 5, available: 3 }]), [3]);
    }

    #[test]
    fn proportional_scaling_keeps_the_sum() {
        assert_eq!(proportional(&[6, 4], 5), [9, 6]);
        assert_eq!(proportional(&[6, 4], -5), [3, 2]);
        assert_eq!(proportional(&[3, 1, 1], 1).iter().sum::<i64>(), 6);
        assert_eq!(proportional(&[0, 0], 3), [3, 0]);
    }

    #[test]
    fn template_hash_is_stable_and_safe() {
        let t = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let h = template_hash(&t, 0);
        assert_eq!(h, template_hash(&t, 0));
        assert_ne!(h, template_hash(&t, 1));
        assert!(h.bytes().all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)));
        assert!(!h.is_empty() && h.len() <= 10);
    }
}
