//! The kernel settings Kubernetes and containers need.

use crate::sys::Kernel;

/// (key, value, why).
pub const SETTINGS: &[(&str, &str, &str)] = &[
    ("net.ipv4.ip_forward", "1", "pods route through the node"),
    ("net.ipv6.conf.all.forwarding", "1", "pods route through the node (IPv6)"),
    ("net.bridge.bridge-nf-call-iptables", "1", "service rules see bridged pod traffic"),
    ("net.bridge.bridge-nf-call-ip6tables", "1", "same for IPv6"),
    ("vm.overcommit_memory", "1", "kubelet expects it"),
    ("vm.panic_on_oom", "0", "the OOM killer handles pods, not a panic"),
    ("kernel.panic", "10", "reboot 10 s after a kernel panic"),
    ("kernel.panic_on_oops", "1", "an oops is a panic"),
    ("kernel.keys.root_maxkeys", "1000000", "kubelet expects it"),
    ("kernel.keys.root_maxbytes", "25000000", "kubelet expects it"),
    ("fs.inotify.max_user_instances", "8192", "many pods watch files"),
    ("fs.inotify.max_user_watches", "524288", "many pods watch files"),
    ("net.ipv4.conf.all.rp_filter", "0", "overlay traffic is asymmetric"),
];

/// Applies [`SETTINGS`]; returns the ones that failed.
pub fn apply(k: &mut dyn Kernel) -> Vec<(String, std::io::Error)> {
    let mut failed = Vec::new();
    for (key, value, _) in SETTINGS {
        if let Err(e) = k.write_sysctl(key, value) {
            failed.push((key.to_string(), e));
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_settings_apply_on_the_fake() {
        let mut k = crate::sys::fake::Fake::new();
        assert!(super::apply(&mut k).is_empty());
        assert!(k.calls.contains(&"sysctl net.ipv4.ip_forward=1".to_string()));
    }
}
