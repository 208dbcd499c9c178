//! The node's CNI network config: Debian's `bridge` + `host-local` IPAM on
//! the node's pod CIDR, plus `portmap` for hostPorts. No masquerading
//! here (`ipMasq: false`): the overlay (`lichen-net`) masquerades only
//! traffic leaving the cluster CIDR, so pods on other nodes see the
//! sender's pod IP (NetworkPolicy depends on it); `mtu` is the overlay's. containerd reads the
//! first conflist in its `conf_dir` and reloads it on change; until one
//! exists its `NetworkReady` stays false and the node NotReady.

use std::path::Path;

use serde_json::{Value, json};

use crate::Agent;

pub const CONFLIST: &str = "10-lichen.conflist";
pub const BRIDGE: &str = "cni0";

/// The conflist for a pod CIDR; `mtu` sets the bridge's and the pods'
/// MTU (none: the plugin's default).
pub fn conflist(pod_cidr: &str, ipam_dir: &Path, mtu: Option<u32>) -> Value {
    let mut list = json!({
        "cniVersion": "1.0.0",
        "name": "lichen",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": ipam_dir,
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
        ],
    });
    if let Some(mtu) = mtu {
        list["plugins"][0]["mtu"] = json!(mtu);
    }
    list
}

/// Writes `conflist` into `dir` atomically, unless it is there already.
pub fn write(dir: &Path, conflist: &Value) -> std::io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(CONFLIST);
    let text = serde_json::to_string_pretty(conflist).map_err(std::io::Error::other)?;
    if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        return Ok(false);
    }
    let tmp = dir.join(format!(".{CONFLIST}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(true)
}

/// The pod CIDR in force: the Node's `spec.podCIDR`, else the configured one.
pub fn pod_cidr(agent: &Agent) -> Option<String> {
    let node = agent.node_object.borrow();
    node.as_ref()
        .and_then(|n| n["spec"]["podCIDR"].as_str().filter(|s| !s.is_empty()).map(str::to_owned))
        .or_else(|| agent.cfg.pod_cidr.clone())
}

/// Keeps the conflist in line with the node's pod CIDR.
pub async fn run(agent: Agent) {
    let mut rx = agent.node_object.subscribe();
    loop {
        if let Some(cidr) = pod_cidr(&agent) {
            match write(&agent.cfg.cni_conf_dir, &conflist(&cidr, &agent.cfg.cni_ipam_dir, agent.cfg.pod_mtu))
            {
                Ok(true) => {
                    tracing::info!(pod_cidr = %cidr, dir = %agent.cfg.cni_conf_dir.display(), "CNI config written")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(dir = %agent.cfg.cni_conf_dir.display(), error = %e, "cannot write CNI config")
                }
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_once_and_replaced_on_change() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        assert!(write(dir.path(), &conflist("10.42.0.0/24", Path::new("/run/x"), None)).unwrap_or(false));
        assert!(!write(dir.path(), &conflist("10.42.0.0/24", Path::new("/run/x"), None)).unwrap_or(true));
        assert!(write(dir.path(), &conflist("10.42.1.0/24", Path::new("/run/x"), None)).unwrap_or(false));
        let text = std::fs::read_to_string(dir.path().join(CONFLIST)).unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.42.1.0/24");
        assert!(v["plugins"][0].get("mtu").is_none(), "no MTU unless given");
        // A new MTU rewrites the file.
        assert!(
            write(dir.path(), &conflist("10.42.1.0/24", Path::new("/run/x"), Some(1450))).unwrap_or(false)
        );
    }

    #[test]
    fn pods_are_not_masqueraded_by_the_bridge_and_get_the_overlay_mtu() {
        let v = conflist("10.42.1.0/24", Path::new("/run/x"), Some(1450));
        assert_eq!(v["plugins"][0]["type"], "bridge");
        assert_eq!(v["plugins"][0]["ipMasq"], false);
        assert_eq!(v["plugins"][0]["mtu"], 1450);
    }
}
