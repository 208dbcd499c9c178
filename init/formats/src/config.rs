//! `lichen.yaml`, the user's configuration on the BOOT partition
//! (cloud-init style: one YAML document, keys in snake_case).
//!
//! Only the keys the device acts on today are accepted; an unknown key is
//! an error (a misspelt `ntp_server` must not be silently ignored). Every
//! error names the line and column and the key, so that the console can
//! say exactly what to fix.
//!
//! ```yaml
//! hostname: edge-1
//! ntp_servers: [192.168.1.1]
//! kubernetes:
//!   tls_san: [edge-1.example.com, 192.168.1.20]
//!   admin_kubeconfig_to_boot: true
//! ```

use std::net::Ipv4Addr;

use serde::Deserialize;

/// The whole file. Absent keys take their defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The node's host name (and Kubernetes node name). Default: kept on
    /// DATA, `lichen-<machine id>` on first boot.
    #[serde(default)]
    pub hostname: Option<String>,
    /// SNTP servers (IPv4 addresses), asked before those the DHCP lease
    /// names.
    #[serde(default)]
    pub ntp_servers: Vec<Ipv4Addr>,
    #[serde(default)]
    pub kubernetes: Kubernetes,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kubernetes {
    /// Extra names and addresses for the API server's certificate.
    #[serde(default)]
    pub tls_san: Vec<String>,
    /// Copy the admin kubeconfig to BOOT (`lichen/admin.kubeconfig`), with
    /// the node's address as the server. Meant for zero-touch devices whose
    /// card is read back by their owner; off by default, since anyone
    /// holding the card then holds the cluster.
    #[serde(default)]
    pub admin_kubeconfig_to_boot: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error(
        "{file}: hostname {name:?} is not a valid host name (letters, digits and '-', at most 63 per label)"
    )]
    Hostname { file: String, name: String },
}

/// Parses `text` (the contents of `file`, named in errors).
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    let cfg: Config = serde_saphyr::from_str(text)
        .map_err(|e| ConfigError::Parse { file: file.to_owned(), message: e.to_string() })?;
    if let Some(name) = &cfg.hostname
        && !valid_hostname(name)
    {
        return Err(ConfigError::Hostname { file: file.to_owned(), name: name.clone() });
    }
    Ok(cfg)
}

/// RFC 1123 host names: dot-separated labels of letters, digits and '-',
/// neither starting nor ending with '-'.
pub fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_example_parses() {
        let text = "hostname: edge-1\nntp_servers: [192.168.1.1]\nkubernetes:\n  tls_san: [edge-1.example.com]\n  admin_kubeconfig_to_boot: true\n";
        let c = parse("lichen.yaml", text).unwrap();
        assert_eq!(c.hostname.as_deref(), Some("edge-1"));
        assert_eq!(c.ntp_servers, [Ipv4Addr::new(192, 168, 1, 1)]);
        assert_eq!(c.kubernetes.tls_san, ["edge-1.example.com"]);
        assert!(c.kubernetes.admin_kubeconfig_to_boot);
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(parse("lichen.yaml", "\n# nothing\n").unwrap(), Config::default());
        assert_eq!(parse("lichen.yaml", "").unwrap(), Config::default());
    }

    #[test]
    fn errors_name_the_file_the_key_and_the_line() {
        let e = parse("lichen.yaml", "hostname: a\nntp_server: [1.2.3.4]\n").unwrap_err().to_string();
        assert!(e.starts_with("lichen.yaml: ") && e.contains("ntp_server"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        let e = parse("lichen.yaml", "ntp_servers: [pool.ntp.org]\n").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = parse("lichen.yaml", "kubernetes:\n  tls_san: x\n  admin_kubeconfig_to_boot: maybe\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") || e.contains("line 3"), "{e}");
        let e = parse("lichen.yaml", "hostname: -bad-\n").unwrap_err().to_string();
        assert!(e.contains("not a valid host name"), "{e}");
    }

    #[test]
    fn hostnames() {
        assert!(valid_hostname("edge-1.example.com"));
        assert!(!valid_hostname("edge_1"));
        assert!(!valid_hostname(""));
        assert!(!valid_hostname(&"a".repeat(64)));
    }
}
