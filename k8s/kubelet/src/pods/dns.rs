//! A pod's resolv.conf, as upstream's kubelet makes it
//! (`pkg/kubelet/network/dns`): the pod's `dnsPolicy` picks the base, its
//! `dnsConfig` is merged in, and the limits are applied.
//!
//! - `ClusterFirst` (not hostNetwork) and `ClusterFirstWithHostNet`: the
//!   cluster DNS, searches `<ns>.svc.<domain> svc.<domain> <domain>` then
//!   the node's own search domains, `ndots:5`. Without a cluster DNS they
//!   fall back to `Default`.
//! - `Default` (and `ClusterFirst` on the host network): the node's
//!   resolv.conf.
//! - `None`: nothing but the pod's `dnsConfig`.
//! - `dnsConfig`: nameservers and searches appended without duplicates,
//!   options merged by name (the pod's value wins; no value is a bare
//!   name).
//! - Limits: 3 nameservers, 32 search domains of 2048 characters in all;
//!   what is beyond is dropped (upstream records an event; we log).

use serde_json::Value;

/// The kubelet's limits (upstream's `MaxDNSNameservers`,
/// `MaxDNSSearchPaths`, `MaxDNSSearchListChars`).
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;
const MAX_SEARCH_CHARS: usize = 2048;

/// nameservers, searches and options of a resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolv {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl Resolv {
    /// Parses resolv.conf text: `nameserver`, `search` (the last one
    /// wins, as in glibc), `domain` (when no search) and `options` lines.
    pub fn parse(text: &str) -> Resolv {
        let mut r = Resolv::default();
        let mut domain = None;
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => r.servers.extend(words.next().map(str::to_owned)),
                Some("search") => r.searches = words.map(str::to_owned).collect(),
                Some("domain") => domain = words.next().map(str::to_owned),
                Some("options") => r.options.extend(words.map(str::to_owned)),
                _ => {}
            }
        }
        if r.searches.is_empty() {
            r.searches.extend(domain);
        }
        r
    }
}

/// What decides a pod's DNS besides the pod.
pub struct Node<'a> {
    pub cluster_dns: Option<std::net::IpAddr>,
    pub cluster_domain: &'a str,
    /// The node's own resolv.conf.
    pub host: &'a Resolv,
}

/// The pod's resolv.conf, `None` when it is the node's unchanged (the
/// runtime then copies the node's file).
pub fn pod_dns(
    node: &Node<'_>,
    policy: Option<&str>,
    host_network: bool,
    namespace: &str,
    dns_config: Option<&Value>,
) -> Option<Resolv> {
    let policy = policy.unwrap_or("ClusterFirst");
    let cluster = policy == "ClusterFirstWithHostNet" || (policy == "ClusterFirst" && !host_network);
    let mut r = match (policy, node.cluster_dns) {
        (_, Some(dns)) if cluster => {
            let d = node.cluster_domain;
            let mut searches = vec![format!("{namespace}.svc.{d}"), format!("svc.{d}"), d.to_owned()];
            searches.extend(node.host.searches.iter().cloned());
            Resolv { servers: vec![dns.to_string()], searches, options: vec!["ndots:5".into()] }
        }
        ("None", _) => Resolv::default(),
        _ if dns_config.is_none() => return None,
        _ => node.host.clone(),
    };
    if let Some(extra) = dns_config {
        let strs = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        r.servers.extend(strs(&extra["nameservers"]));
        r.searches.extend(strs(&extra["searches"]));
        for o in extra["options"].as_array().into_iter().flatten() {
            let Some(name) = o["name"].as_str().filter(|n| !n.is_empty()) else { continue };
            r.options.retain(|x| x.split(':').next() != Some(name));
            match o["value"].as_str().filter(|v| !v.is_empty()) {
                Some(v) => r.options.push(format!("{name}:{v}")),
                None => r.options.push(name.to_owned()),
            }
        }
    }
    dedup(&mut r.servers);
    dedup(&mut r.searches);
    if r.servers.len() > MAX_NAMESERVERS {
        tracing::warn!(dropped = ?&r.servers[MAX_NAMESERVERS..], "more than {MAX_NAMESERVERS} nameservers: the rest are left out");
        r.servers.truncate(MAX_NAMESERVERS);
    }
    fit_searches(&mut r.searches);
    Some(r)
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|s| seen.insert(s.clone()));
}

/// Keeps the first searches that fit 32 entries and 2048 characters
/// (separated by spaces), as upstream.
fn fit_searches(searches: &mut Vec<String>) {
    let mut chars = 0;
    let mut keep = 0;
    for s in searches.iter() {
        let len = s.len() + usize::from(keep > 0);
        if keep == MAX_SEARCHES || chars + len > MAX_SEARCH_CHARS {
            break;
        }
        chars += len;
        keep += 1;
    }
    if keep < searches.len() {
        tracing::warn!(
            dropped = searches.len() - keep,
            "search line limits exceeded: some search domains are left out"
        );
        searches.truncate(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn host() -> Resolv {
        Resolv::parse(
            "# comment\nnameserver 10.0.2.3\nnameserver 1.1.1.1\nsearch lan example.org\noptions edns0 timeout:2\n",
        )
    }

    fn node(host: &Resolv) -> Node<'_> {
        Node { cluster_dns: Some("10.43.0.10".parse().unwrap()), cluster_domain: "cluster.local", host }
    }

    #[test]
    fn resolv_conf_is_parsed_like_glibc() {
        let h = host();
        assert_eq!(h.servers, ["10.0.2.3", "1.1.1.1"]);
        assert_eq!(h.searches, ["lan", "example.org"]);
        assert_eq!(h.options, ["edns0", "timeout:2"]);
        let r = Resolv::parse("domain corp\nsearch a\nsearch b c ; old\n");
        assert_eq!(r.searches, ["b", "c"]);
        assert_eq!(Resolv::parse("domain corp\n").searches, ["corp"]);
    }

    #[test]
    fn cluster_first_uses_the_cluster_dns_and_appends_the_node_searches() {
        let h = host();
        let r = pod_dns(&node(&h), None, false, "web", None).unwrap();
        assert_eq!(r.servers, ["10.43.0.10"]);
        assert_eq!(
            r.searches,
            ["web.svc.cluster.local", "svc.cluster.local", "cluster.local", "lan", "example.org"]
        );
        assert_eq!(r.options, ["ndots:5"]);
        // On the host network ClusterFirst is the node's, unless WithHostNet.
        assert_eq!(pod_dns(&node(&h), Some("ClusterFirst"), true, "web", None), None);
        let r = pod_dns(&node(&h), Some("ClusterFirstWithHostNet"), true, "web", None).unwrap();
        assert_eq!(r.servers, ["10.43.0.10"]);
        // Without a cluster DNS: the node's.
        let no_dns = Node { cluster_dns: None, ..node(&h) };
        assert_eq!(pod_dns(&no_dns, None, false, "web", None), None);
    }

    #[test]
    fn dns_config_is_merged_as_upstream() {
        let h = host();
        let extra = json!({
            "nameservers": ["10.43.0.10", "192.0.2.53"],
            "searches": ["svc.cluster.local", "my.dns.search.suffix"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}, {"name": "single-request", "value": ""}],
        });
        let r = pod_dns(&node(&h), None, false, "web", Some(&extra)).unwrap();
        assert_eq!(r.servers, ["10.43.0.10", "192.0.2.53"]);
        assert_eq!(
            r.searches,
            [
                "web.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "lan",
                "example.org",
                "my.dns.search.suffix"
            ]
        );
        assert_eq!(r.options, ["ndots:2", "edns0", "single-request"]);
        // Default + dnsConfig: the node's file with the pod's additions.
        let r = pod_dns(&node(&h), Some("Default"), false, "web", Some(&extra)).unwrap();
        assert_eq!(r.servers, ["10.0.2.3", "1.1.1.1", "10.43.0.10"], "at most 3 nameservers");
        assert_eq!(r.options, ["timeout:2", "ndots:2", "edns0", "single-request"]);
        // None: only the pod's.
        let r = pod_dns(&node(&h), Some("None"), false, "web", Some(&json!({"nameservers": ["1.2.3.4"]})))
            .unwrap();
        assert_eq!(r, Resolv { servers: vec!["1.2.3.4".into()], ..Resolv::default() });
        assert_eq!(pod_dns(&node(&h), Some("None"), false, "web", None), Some(Resolv::default()));
    }

    #[test]
    fn search_lists_are_cut_to_the_limits() {
        let h = Resolv::default();
        let many: Vec<String> = (0..40).map(|i| format!("d{i}.example")).collect();
        let r = pod_dns(&node(&h), None, false, "ns", Some(&json!({"searches": many}))).unwrap();
        assert_eq!(r.searches.len(), 32);
        let long: Vec<String> = (0..10).map(|i| format!("{i}{}", "x".repeat(250))).collect();
        let r = pod_dns(&node(&h), None, false, "ns", Some(&json!({"searches": long}))).unwrap();
        let joined = r.searches.join(" ");
        assert!(
            joined.len() <= 2048 && r.searches.len() < 13,
            "{} searches, {} chars",
            r.searches.len(),
            joined.len()
        );
    }
}
