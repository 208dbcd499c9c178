//! The state PID 1 publishes in `/run/lichen/status` (one `key: value` per
//! line) and `lichen-init status` prints.

use std::path::Path;

use crate::supervisor::ServiceStatus;

pub const PATH: &str = "/run/lichen/status";

#[derive(Debug, Clone, Default)]
pub struct Status {
    pub version: String,
    pub build_id: String,
    pub board: String,
    pub kernel: String,
    pub slot: String,
    pub phase: String,
    pub ready_at: Option<f64>,
    pub network: String,
    pub services: Vec<ServiceStatus>,
}

impl Status {
    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!("lichen: {} (build {}, board {})\n", self.version, self.build_id, self.board));
        s.push_str(&format!("kernel: {}\n", self.kernel));
        s.push_str(&format!("slot: {}\n", self.slot));
        s.push_str(&format!("state: {}\n", self.phase));
        if let Some(t) = self.ready_at {
            s.push_str(&format!("ready-after: {t:.2}s\n"));
        }
        s.push_str(&format!("network: {}\n", if self.network.is_empty() { "none" } else { &self.network }));
        for svc in &self.services {
            s.push_str(&format!(
                "service {}: {}{}, restarts {}{}\n",
                svc.name,
                svc.state,
                if svc.ready { ", ready" } else { "" },
                svc.restarts,
                svc.last_exit.as_deref().map(|e| format!(", last exit: {e}")).unwrap_or_default()
            ));
        }
        s
    }

    /// Writes atomically (readers never see half a file).
    pub fn publish(&self, path: &Path) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.render())?;
        std::fs::rename(tmp, path)
    }

    /// One line for the console once the node is up.
    pub fn line(&self) -> String {
        let svcs: Vec<String> = self
            .services
            .iter()
            .map(|s| format!("{} {}", s.name, if s.ready { "ready" } else { s.state.as_str() }))
            .collect();
        format!(
            "Lichen {} | slot {} | {} | {} | up {:.1}s",
            self.version,
            self.slot,
            if self.network.is_empty() { "no network" } else { &self.network },
            svcs.join(", "),
            self.ready_at.unwrap_or_default()
        )
    }
}

/// Reads `KEY=value` pairs of an os-release file.
pub fn os_release(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_services() {
        let s = Status {
            version: "0.1.0".into(),
            slot: "a".into(),
            phase: "running".into(),
            services: vec![ServiceStatus {
                name: "containerd",
                state: "running pid 7".into(),
                ready: true,
                restarts: 1,
                last_exit: Some("killed by SIGKILL".into()),
            }],
            ..Default::default()
        };
        let r = s.render();
        assert!(r.contains("slot: a\n"));
        assert!(
            r.contains("service containerd: running pid 7, ready, restarts 1, last exit: killed by SIGKILL"),
            "{r}"
        );
        assert!(s.line().contains("containerd ready"));
    }

    #[test]
    fn os_release_values() {
        let t = "NAME=\"Lichen\"\nVERSION_ID=0.1.0\nBUILD_ID=abc\n";
        assert_eq!(os_release(t, "VERSION_ID").as_deref(), Some("0.1.0"));
        assert_eq!(os_release(t, "NAME").as_deref(), Some("Lichen"));
        assert_eq!(os_release(t, "X"), None);
    }
}
