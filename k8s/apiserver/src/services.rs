//! Service addresses: cluster IPs from the service CIDR and node ports from
//! 30000-32767, allocated when a Service is written. The allocations are
//! the Services themselves (scanned under one lock), so nothing can leak.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::api::Ctx;
use crate::objects;
use crate::status::{ApiError, Cause};

/// An IPv4 service range, `10.43.0.0/16` by default (as k3s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceCidr {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Default for ServiceCidr {
    fn default() -> Self {
        ServiceCidr { base: Ipv4Addr::new(10, 43, 0, 0), prefix: 16 }
    }
}

impl std::str::FromStr for ServiceCidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (ip, p) = s.split_once('/').ok_or_else(|| format!("{s:?} is not a CIDR (a.b.c.d/n)"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| format!("{s:?}: bad IPv4 address"))?;
        let prefix: u8 = p.parse().map_err(|_| format!("{s:?}: bad prefix length"))?;
        if !(8..=28).contains(&prefix) {
            return Err(format!("{s:?}: prefix length must be between 8 and 28"));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(ServiceCidr { base: Ipv4Addr::from(u32::from(ip) & mask), prefix })
    }
}

impl ServiceCidr {
    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(ip) & mask == u32::from(self.base)
    }

    /// The nth address of the range (`kubernetes` is the first, cluster DNS
    /// the tenth).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + n)
    }
}

pub const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

/// Fills in cluster IPs and node ports of a Service being written. `current`
/// is the stored version on update (its addresses are kept).
pub async fn allocate(ctx: &Ctx, obj: &mut Value, current: Option<&Value>) -> Result<(), ApiError> {
    let cidr = ctx.api.service_cidr;
    let name = objects::meta_str(obj, "name").unwrap_or("").to_string();
    let my_uid = objects::meta_str(obj, "uid").unwrap_or("").to_string();
    let (used_ips, used_ports) = in_use(ctx, &my_uid).await?;
    let invalid = |field: &str, value: Value, detail: &str| ApiError::Invalid {
        group: String::new(),
        kind: "Service".into(),
        name: name.clone(),
        causes: vec![Cause::invalid(field, &value, detail)],
    };
    let spec = &mut obj["spec"];
    let kind = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if kind == "ExternalName" {
        return Ok(());
    }
    let requested = spec["clusterIP"].as_str().filter(|s| !s.is_empty()).map(String::from);
    let kept =
        current.and_then(|c| c["spec"]["clusterIP"].as_str()).filter(|s| !s.is_empty()).map(String::from);
    let ip = match (kept, requested) {
        (Some(k), Some(r)) if k != r => {
            return Err(invalid("spec.clusterIPs[0]", json!(r), "may not change once set"));
        }
        (Some(k), _) => k,
        (None, Some(r)) if r == "None" => r,
        (None, Some(r)) => {
            let ip: Ipv4Addr = r
                .parse()
                .map_err(|_| invalid("spec.clusterIPs[0]", json!(r), "must be a valid IP address"))?;
            if !cidr.contains(ip) {
                return Err(invalid(
                    "spec.clusterIPs",
                    json!([r]),
                    &format!(
                        "failed to allocate IP {r}: the provided IP ({r}) is not in the valid range. The range of valid IPs is {}/{}",
                        cidr.base, cidr.prefix
                    ),
                ));
            }
            if used_ips.contains(&ip) {
                return Err(invalid(
                    "spec.clusterIPs",
                    json!([r]),
                    &format!("failed to allocate IP {r}: provided IP is already allocated"),
                ));
            }
            r
        }
        (None, None) => free_ip(cidr, &used_ips)
            .ok_or_else(|| ApiError::Internal("failed to allocate a serviceIP: range is full".into()))?
            .to_string(),
    };
    spec["clusterIP"] = json!(ip);
    spec["clusterIPs"] = json!([ip]);
    if ip != "None" {
        spec["ipFamilies"] = json!(["IPv4"]);
        if spec["ipFamilyPolicy"].is_null() {
            spec["ipFamilyPolicy"] = json!("SingleStack");
        }
    }
    if matches!(kind.as_str(), "NodePort" | "LoadBalancer") {
        let old_ports: Vec<Value> =
            current.and_then(|c| c["spec"]["ports"].as_array().cloned()).unwrap_or_default();
        let mut taken = used_ports;
        if let Some(ports) = spec["ports"].as_array_mut() {
            for (i, p) in ports.iter_mut().enumerate() {
                if let Some(n) = p["nodePort"].as_i64().filter(|n| *n != 0) {
                    let was_mine = old_ports.iter().any(|o| o["nodePort"].as_i64() == Some(n));
                    if !NODE_PORTS.contains(&n) {
                        return Err(invalid(
                            &format!("spec.ports[{i}].nodePort"),
                            json!(n),
                            "provided port is not in the valid range. The range of valid ports is 30000-32767",
                        ));
                    }
                    if !was_mine && !taken.insert(n) {
                        return Err(invalid(
                            &format!("spec.ports[{i}].nodePort"),
                            json!(n),
                            "provided port is already allocated",
                        ));
                    }
                    continue;
                }
                let reuse =
                    old_ports.iter().find(|o| o["port"] == p["port"] && o["protocol"] == p["protocol"]);
                let n = match reuse.and_then(|o| o["nodePort"].as_i64()) {
                    Some(n) => n,
                    None => free_port(&taken).ok_or_else(|| {
                        ApiError::Internal("failed to allocate a nodePort: range is full".into())
                    })?,
                };
                taken.insert(n);
                p["nodePort"] = json!(n);
            }
        }
    } else if let Some(ports) = spec["ports"].as_array_mut() {
        for p in ports {
            if let Some(o) = p.as_object_mut() {
                o.remove("nodePort");
            }
        }
    }
    Ok(())
}

/// Cluster IPs and node ports of every other Service.
async fn in_use(ctx: &Ctx, except_uid: &str) -> Result<(BTreeSet<Ipv4Addr>, BTreeSet<i64>), ApiError> {
    let prefix = objects::prefix(&ctx.res, "");
    let all = ctx.store("", move |s| s.list(&prefix, None, None, None)).await?;
    let mut ips = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for kv in &all.items {
        let svc = objects::decode(kv)?;
        if objects::meta_str(&svc, "uid") == Some(except_uid) && !except_uid.is_empty() {
            continue;
        }
        for ip in svc["spec"]["clusterIPs"].as_array().into_iter().flatten() {
            if let Some(ip) = ip.as_str().and_then(|s| s.parse().ok()) {
                ips.insert(ip);
            }
        }
        for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
            if let Some(n) = p["nodePort"].as_i64() {
                ports.insert(n);
            }
        }
    }
    Ok((ips, ports))
}

/// A free address, picked at random in the upper part of the range first
/// (upstream leaves the lower part for addresses users choose).
fn free_ip(cidr: ServiceCidr, used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let size = cidr.size();
    let low = (size / 16).clamp(16, 256).min(size / 2);
    let span = size - 1 - low;
    let start = u32::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..4].try_into().unwrap_or([0; 4])) % span;
    (0..span)
        .map(|i| cidr.nth(low + (start + i) % span))
        .chain((2..low).map(|n| cidr.nth(n)))
        .find(|ip| !used.contains(ip) && *ip != cidr.nth(10))
}

fn free_port(used: &BTreeSet<i64>) -> Option<i64> {
    let span = NODE_PORTS.end() - NODE_PORTS.start() + 1;
    let start = i64::from(uuid::Uuid::new_v4().as_bytes()[0]) * 11 % span;
    (0..span).map(|i| NODE_PORTS.start() + (start + i) % span).find(|p| !used.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_and_free_addresses() {
        let c: ServiceCidr = "10.43.7.9/16".parse().unwrap_or_default();
        assert_eq!(c.base, Ipv4Addr::new(10, 43, 0, 0));
        assert_eq!(c.nth(10), Ipv4Addr::new(10, 43, 0, 10));
        assert!("10.0.0.0/30".parse::<ServiceCidr>().is_err());
        let small: ServiceCidr = "10.96.0.0/28".parse().unwrap_or_default();
        let mut used = BTreeSet::new();
        while let Some(ip) = free_ip(small, &used) {
            assert!(small.contains(ip) && ip != small.nth(0) && ip != small.nth(10) && ip != small.nth(15));
            assert!(used.insert(ip), "{ip} twice");
        }
        assert!(used.len() >= 11, "{used:?}");
        let mut ports = BTreeSet::new();
        for _ in 0..100 {
            let p = free_port(&ports).unwrap_or(0);
            assert!(NODE_PORTS.contains(&p) && ports.insert(p));
        }
    }
}
