//! Subject alternative names of the serving certificate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rcgen::SanType;

use crate::{PkiError, PkiOptions};

/// Names every API server certificate carries, as upstream's and k3s's do.
const FIXED_DNS: [&str; 5] = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// One subject alternative name; DNS names are lowercase.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum San {
    Dns(String),
    Ip(IpAddr),
}

impl San {
    pub(crate) fn to_rcgen(&self) -> Result<SanType, PkiError> {
        match self {
            San::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            San::Dns(name) => name
                .as_str()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|_| PkiError::InvalidName { value: name.clone(), problem: "not an ASCII name" }),
        }
    }
}

impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            San::Dns(name) => write!(f, "DNS:{name}"),
            San::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

/// Parses a `--tls-san` value: an IP address if it is one, else a DNS name.
pub(crate) fn parse_san(value: &str) -> Result<San, PkiError> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Ok(San::Ip(ip));
    }
    check_dns_name(value).map_err(|problem| PkiError::InvalidName { value: value.to_owned(), problem })?;
    Ok(San::Dns(value.to_ascii_lowercase()))
}

/// The serving certificate's names in a stable order, without duplicates.
pub(crate) fn serving_sans(opts: &PkiOptions) -> Result<Vec<San>, PkiError> {
    let mut sans = vec![parse_san(&opts.hostname)?];
    sans.extend(FIXED_DNS.iter().map(|n| San::Dns((*n).to_owned())));
    sans.push(San::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    sans.push(San::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    sans.push(San::Ip(opts.service_ip));
    sans.extend(opts.node_ips.iter().map(|ip| San::Ip(*ip)));
    for extra in &opts.extra_sans {
        sans.push(parse_san(extra)?);
    }
    let mut seen = std::collections::HashSet::new();
    sans.retain(|san| seen.insert(san.clone()));
    Ok(sans)
}

/// RFC 1123 host names, with an optional leading `*` label for wildcards.
fn check_dns_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > 253 {
        return Err("longer than 253 characters");
    }
    let rest = name.strip_prefix("*.").unwrap_or(name);
    let labels: Vec<&str> = rest.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err("empty label (two dots in a row, or a leading or trailing dot)");
        }
        if label.len() > 63 {
            return Err("label longer than 63 characters");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err("only letters, digits, '-' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("label starts or ends with '-'");
        }
    }
    if labels.len() > 1 && labels.last().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return Err("looks like an IP address but is not a valid one");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ips_before_names() {
        assert_eq!(parse_san("10.0.0.1").unwrap(), San::Ip("10.0.0.1".parse().unwrap()));
        assert_eq!(parse_san("fd00::1").unwrap(), San::Ip("fd00::1".parse().unwrap()));
        assert_eq!(parse_san("Node1.Example.COM").unwrap(), San::Dns("node1.example.com".into()));
        assert_eq!(parse_san("*.lan").unwrap(), San::Dns("*.lan".into()));
        assert_eq!(parse_san("host").unwrap(), San::Dns("host".into()));
    }

    #[test]
    fn bad_names_are_rejected_with_the_value() {
        for bad in ["", "a..b", "-a.com", "a-.com", "a b", "under_score", "10.0.0.256", "a.*.com", "é.com"] {
            let err = parse_san(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        assert!(parse_san(&"a".repeat(64)).is_err());
        assert!(parse_san(&["a"; 130].join(".")).is_err());
    }

    proptest! {
        #[test]
        fn valid_names_roundtrip(labels in prop::collection::vec("[a-z][a-z0-9-]{0,20}[a-z0-9]", 1..5)) {
            let name = labels.join(".");
            prop_assert_eq!(parse_san(&name).unwrap(), San::Dns(name.clone()));
            prop_assert!(San::Dns(name).to_rcgen().is_ok());
        }

        #[test]
        fn parse_never_panics_and_accepts_only_safe_bytes(s in "\\PC{0,40}") {
            if let Ok(San::Dns(name)) = parse_san(&s) {
                prop_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.*".contains(&b)));
            }
        }
    }
}
