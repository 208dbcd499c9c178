//! `/version`: what `kubectl version` prints as "Server Version".

use serde::Serialize;

/// The Kubernetes API version Lichen serves.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "37";

/// The same fields as upstream's `version.Info`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    pub major: String,
    pub minor: String,
    pub git_version: String,
    pub git_commit: String,
    pub git_tree_state: String,
    pub build_date: String,
    pub go_version: String,
    pub compiler: String,
    pub platform: String,
}

/// Kubernetes' name for this machine's architecture.
pub fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    };
    format!("linux/{arch}")
}

impl Info {
    /// `v1.37.0+lichen-<version>`, in the manner of k3s' `v1.30.2+k3s1`.
    pub fn new(lichen_version: &str, commit: &str) -> Info {
        Info {
            major: KUBE_MAJOR.into(),
            minor: KUBE_MINOR.into(),
            git_version: format!("v{KUBE_MAJOR}.{KUBE_MINOR}.0+lichen-{lichen_version}"),
            git_commit: commit.into(),
            git_tree_state: "clean".into(),
            build_date: "1970-01-01T00:00:00Z".into(),
            go_version: "none (Rust)".into(),
            compiler: "rustc".into(),
            platform: platform(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_upstreams() {
        let v = serde_json::to_value(Info::new("0.1.0", "abc")).unwrap();
        for k in [
            "major",
            "minor",
            "gitVersion",
            "gitCommit",
            "gitTreeState",
            "buildDate",
            "goVersion",
            "compiler",
            "platform",
        ] {
            assert!(v.get(k).is_some(), "{k} missing in {v}");
        }
        assert_eq!(v["gitVersion"], "v1.37.0+lichen-0.1.0");
    }
}
