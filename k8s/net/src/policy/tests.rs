#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::model::{Cluster, Direction, Policy, Protocol, allows, isolation};
use super::*;

/// A running pod on `node` with `labels`, IP `ip` and a named port
/// `http`/TCP 8080.
fn pod(ns: &str, name: &str, node: &str, ip: &str, labels: Value) -> Value {
    json!({
        "metadata": {"namespace": ns, "name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
            {"name": "http", "containerPort": 8080},
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
        ]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    })
}

fn namespace(name: &str, labels: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}})
}

fn policy(ns: &str, name: &str, spec: Value) -> Value {
    json!({"metadata": {"namespace": ns, "name": name}, "spec": spec})
}

/// default: web (10.42.0.10, app=web, node-a), allowed (10.42.0.11,
/// role=allowed), other (10.42.0.12); prod (team=ops): db (10.42.1.5,
/// app=db, node-b), cache (10.42.1.6, role=allowed, node-b).
fn world() -> (Vec<Value>, Vec<Value>) {
    let pods = vec![
        pod("default", "web", "node-a", "10.42.0.10", json!({"app": "web"})),
        pod("default", "allowed", "node-a", "10.42.0.11", json!({"role": "allowed"})),
        pod("default", "other", "node-a", "10.42.0.12", json!({})),
        pod("prod", "db", "node-b", "10.42.1.5", json!({"app": "db"})),
        pod("prod", "cache", "node-b", "10.42.1.6", json!({"role": "allowed"})),
    ];
    let namespaces = vec![namespace("default", json!({})), namespace("prod", json!({"team": "ops"}))];
    (pods, namespaces)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Whether `dir` traffic of pod `target` with `peer` on TCP `port` is
/// allowed under `spec` (a policy in `default`).
fn allowed(spec: Value, target: &str, dir: Direction, peer: &str, port: u16) -> bool {
    allowed_proto(spec, target, dir, peer, Protocol::Tcp, port)
}

fn allowed_proto(spec: Value, target: &str, dir: Direction, peer: &str, proto: Protocol, port: u16) -> bool {
    let (pods, namespaces) = world();
    let cluster = Cluster::new(&pods, &namespaces);
    let policies = vec![Policy::from_json(&policy("default", "p", spec), &cluster).unwrap()];
    let target = cluster.pods.iter().find(|p| p.name == target).unwrap();
    match isolation(target, dir, &policies) {
        None => true,
        Some(iso) => allows(&iso, dir, target, ip(peer), proto, port),
    }
}

const IN: Direction = Direction::Ingress;
const OUT: Direction = Direction::Egress;

#[test]
fn pods_not_selected_or_without_policies_are_not_isolated() {
    let (pods, namespaces) = world();
    let cluster = Cluster::new(&pods, &namespaces);
    let p = Policy::from_json(
        &policy("default", "p", json!({"podSelector": {"matchLabels": {"app": "web"}}})),
        &cluster,
    )
    .unwrap();
    let web = &cluster.pods.iter().find(|p| p.name == "web").unwrap();
    let other = &cluster.pods.iter().find(|p| p.name == "other").unwrap();
    let db = &cluster.pods.iter().find(|p| p.name == "db").unwrap();
    let policies = [p];
    assert!(isolation(web, IN, &policies).is_some());
    assert!(isolation(other, IN, &policies).is_none(), "not selected");
    assert!(isolation(db, IN, &policies).is_none(), "another namespace");
    assert!(isolation(web, OUT, &policies).is_none(), "policyTypes default to Ingress");
    assert!(isolation(web, IN, &[]).is_none());
}

#[test]
fn policy_types_default_to_ingress_plus_egress_when_egress_rules_exist() {
    let deny_both = json!({"podSelector": {}, "egress": []});
    assert!(!allowed(deny_both.clone(), "web", IN, "10.42.0.11", 80));
    assert!(!allowed(deny_both, "web", OUT, "10.42.0.11", 80));
    // Explicit policyTypes win: Egress only leaves ingress open.
    let egress_only = json!({"podSelector": {}, "policyTypes": ["Egress"]});
    assert!(allowed(egress_only.clone(), "web", IN, "10.42.0.11", 80));
    assert!(!allowed(egress_only, "web", OUT, "10.42.0.11", 80));
    // Absent podSelector selects every pod, as `{}` does.
    assert!(!allowed(json!({}), "other", IN, "10.42.0.11", 80));
}

#[test]
fn empty_rule_list_allows_nothing_empty_peer_list_allows_everyone() {
    let none = json!({"podSelector": {}, "ingress": []});
    assert!(!allowed(none, "web", IN, "10.42.0.11", 80));
    let any_rule = json!({"podSelector": {}, "ingress": [{}]});
    assert!(allowed(any_rule.clone(), "web", IN, "203.0.113.9", 80));
    assert!(allowed(any_rule, "web", IN, "10.42.1.5", 9999));
    let empty_from = json!({"podSelector": {}, "ingress": [{"from": [], "ports": []}]});
    assert!(allowed(empty_from, "web", IN, "203.0.113.9", 1));
}

#[test]
fn pod_selector_peers_are_pods_of_the_policys_namespace() {
    let spec = json!({
        "podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "allowed"}}}]}],
    });
    assert!(allowed(spec.clone(), "web", IN, "10.42.0.11", 80));
    assert!(!allowed(spec.clone(), "web", IN, "10.42.0.12", 80), "no label");
    assert!(!allowed(spec, "web", IN, "10.42.1.6", 80), "role=allowed but in prod");
}

#[test]
fn namespace_selector_alone_and_with_pod_selector() {
    let ns_only = json!({
        "podSelector": {},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "ops"}}}]}],
    });
    assert!(allowed(ns_only.clone(), "web", IN, "10.42.1.5", 80));
    assert!(allowed(ns_only.clone(), "web", IN, "10.42.1.6", 80));
    assert!(!allowed(ns_only, "web", IN, "10.42.0.11", 80));
    let both = json!({
        "podSelector": {},
        "ingress": [{"from": [{
            "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["ops"]}]},
            "podSelector": {"matchLabels": {"role": "allowed"}},
        }]}],
    });
    assert!(allowed(both.clone(), "web", IN, "10.42.1.6", 80));
    assert!(!allowed(both.clone(), "web", IN, "10.42.1.5", 80), "db lacks role");
    assert!(!allowed(both, "web", IN, "10.42.0.11", 80), "default is not ops");
    // Two peers: either one (the classic "or" vs "and" pitfall).
    let either = json!({
        "podSelector": {},
        "ingress": [{"from": [
            {"namespaceSelector": {"matchLabels": {"team": "ops"}}},
            {"podSelector": {"matchLabels": {"role": "allowed"}}},
        ]}],
    });
    assert!(allowed(either.clone(), "web", IN, "10.42.1.5", 80));
    assert!(allowed(either, "web", IN, "10.42.0.11", 80));
    // Every namespace's name label is there even if the object lacks it.
    let by_name = json!({
        "podSelector": {},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "prod"}}}]}],
    });
    assert!(allowed(by_name.clone(), "web", IN, "10.42.1.5", 80));
    assert!(!allowed(by_name, "web", IN, "10.42.0.11", 80));
}

#[test]
fn match_expressions_operators() {
    let with = |op: &str, values: Value| {
        json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchExpressions": [
            {"key": "role", "operator": op, "values": values}]}}]}]})
    };
    assert!(allowed(with("Exists", json!([])), "web", IN, "10.42.0.11", 80));
    assert!(!allowed(with("Exists", json!([])), "web", IN, "10.42.0.12", 80));
    assert!(allowed(with("DoesNotExist", json!([])), "web", IN, "10.42.0.12", 80));
    assert!(!allowed(with("DoesNotExist", json!([])), "web", IN, "10.42.0.11", 80));
    assert!(allowed(with("NotIn", json!(["allowed"])), "web", IN, "10.42.0.12", 80));
    assert!(!allowed(with("NotIn", json!(["allowed"])), "web", IN, "10.42.0.11", 80));
}

#[test]
fn ip_block_with_except() {
    let spec = json!({
        "podSelector": {},
        "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.42.0.0/16", "10.1.2.3/32"]}}]}],
    });
    assert!(allowed(spec.clone(), "web", OUT, "10.9.9.9", 443));
    assert!(!allowed(spec.clone(), "web", OUT, "10.42.1.5", 443), "in except");
    assert!(!allowed(spec.clone(), "web", OUT, "10.1.2.3", 443), "in except");
    assert!(allowed(spec.clone(), "web", OUT, "10.1.2.4", 443));
    assert!(!allowed(spec, "web", OUT, "11.0.0.1", 443), "outside the cidr");
}

#[test]
fn ports_numeric_ranges_named_and_protocols() {
    let spec = json!({
        "podSelector": {},
        "ingress": [{"ports": [
            {"port": 80},
            {"protocol": "TCP", "port": 9000, "endPort": 9010},
            {"port": "http"},
            {"protocol": "UDP", "port": "dns"},
            {"protocol": "SCTP"},
        ]}],
    });
    let peer = "10.42.0.11";
    assert!(allowed(spec.clone(), "web", IN, peer, 80));
    assert!(!allowed(spec.clone(), "web", IN, peer, 81));
    assert!(allowed(spec.clone(), "web", IN, peer, 9005));
    assert!(!allowed(spec.clone(), "web", IN, peer, 9011));
    assert!(allowed(spec.clone(), "web", IN, peer, 8080), "named port http");
    assert!(allowed_proto(spec.clone(), "web", IN, peer, Protocol::Udp, 53), "named port dns/UDP");
    assert!(!allowed_proto(spec.clone(), "web", IN, peer, Protocol::Udp, 80), "80 is TCP only");
    assert!(allowed_proto(spec.clone(), "web", IN, peer, Protocol::Sctp, 7), "all SCTP ports");
    assert!(!allowed_proto(spec, "web", IN, peer, Protocol::Tcp, 53), "dns is UDP");
}

#[test]
fn unreadable_ports_match_nothing_rather_than_everything() {
    let spec = json!({"podSelector": {}, "ingress": [{"ports": [{"protocol": "ICMP", "port": 1}]}]});
    assert!(!allowed(spec.clone(), "web", IN, "10.42.0.11", 1));
    assert!(!allowed(spec, "web", IN, "10.42.0.11", 80));
    let bad_cidr = json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "nonsense"}}]}]});
    assert!(!allowed(bad_cidr, "web", IN, "10.42.0.11", 80));
    let everything = json!({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]});
    assert!(allowed(everything.clone(), "web", OUT, "255.255.255.255", 80));
    assert!(allowed(everything, "web", OUT, "0.0.0.0", 80));
}

#[test]
fn egress_named_ports_resolve_against_each_destination() {
    let (mut pods, namespaces) = world();
    // db serves "http" on 5432 instead.
    pods[3]["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(5432);
    let cluster = Cluster::new(&pods, &namespaces);
    let spec = json!({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"],
                      "egress": [{"ports": [{"port": "http"}]}]});
    let policies = vec![Policy::from_json(&policy("default", "p", spec), &cluster).unwrap()];
    let web = cluster.pods.iter().find(|p| p.name == "web").unwrap();
    let iso = isolation(web, OUT, &policies).unwrap();
    assert!(allows(&iso, OUT, web, ip("10.42.1.5"), Protocol::Tcp, 5432));
    assert!(!allows(&iso, OUT, web, ip("10.42.1.5"), Protocol::Tcp, 8080));
    assert!(allows(&iso, OUT, web, ip("10.42.0.11"), Protocol::Tcp, 8080));
    assert!(!allows(&iso, OUT, web, ip("203.0.113.1"), Protocol::Tcp, 8080), "not a pod");
}

#[test]
fn only_this_nodes_running_pods_with_ips_are_enforced() {
    let (mut pods, namespaces) = world();
    pods.push(
        json!({"metadata": {"namespace": "default", "name": "pending"}, "spec": {"nodeName": "node-a"}}),
    );
    let mut host = pod("default", "host", "node-a", "192.168.1.10", json!({}));
    host["spec"]["hostNetwork"] = json!(true);
    pods.push(host);
    let mut done = pod("default", "done", "node-a", "10.42.0.99", json!({}));
    done["status"]["phase"] = json!("Succeeded");
    pods.push(done);
    let deny = policy("default", "deny", json!({"podSelector": {}}));
    let text = render(&Config::new("node-a"), &[deny], &pods, &namespaces);
    for ip in ["10.42.0.10", "10.42.0.11", "10.42.0.12"] {
        assert!(text.contains(&format!("{ip} : jump ingress-default/")), "{ip}: {text}");
    }
    for absent in ["10.42.1.5", "192.168.1.10", "10.42.0.99", "pending", "egress-default"] {
        assert!(!text.contains(absent), "{absent}: {text}");
    }
}

/// The policies of the ruleset tests: every kind of peer and port.
fn rich_policies() -> Vec<Value> {
    vec![
        policy(
            "default",
            "web",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [
                    {"from": [{"podSelector": {"matchLabels": {"role": "allowed"}}},
                              {"namespaceSelector": {"matchLabels": {"team": "ops"}}, "podSelector": {}},
                              {"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.1.0/24"]}}],
                     "ports": [{"port": 80}, {"port": "http"}, {"protocol": "UDP", "port": 5000, "endPort": 5100}]},
                    {"ports": [{"protocol": "SCTP"}]},
                ],
            }),
        ),
        policy(
            "default",
            "egress",
            json!({
                "podSelector": {"matchExpressions": [{"key": "role", "operator": "Exists"}]},
                "egress": [
                    {"to": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": "http"}]},
                    {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]},
                    {"ports": [{"protocol": "UDP", "port": 53}]},
                ],
            }),
        ),
        policy("prod", "deny", json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})),
    ]
}

#[test]
fn rendered_rules_match_the_model() {
    let (pods, namespaces) = world();
    let text = render(&Config::new("node-a"), &rich_policies(), &pods, &namespaces);
    assert!(text.starts_with("table ip lichen-policy {\n"), "{text}");
    assert!(text.contains("type filter hook forward priority filter; policy accept;"), "{text}");
    assert!(text.contains("10.42.0.10 : jump ingress-default/web"), "{text}");
    assert!(text.contains("10.42.0.11 : jump egress-default/allowed"), "{text}");
    // The egress policy has egress rules and no policyTypes: it isolates
    // "allowed" for ingress too (allowing nothing); "other" is selected by
    // no policy.
    assert!(text.contains("10.42.0.11 : jump ingress-default/allowed"), "{text}");
    assert!(!text.contains("10.42.0.12 : jump"), "{text}");
    // Peers: allowed's IP, every ops pod, the ipBlock less its except.
    assert!(text.contains("set peers-default/web/ingress/0 {"), "{text}");
    for element in
        ["10.42.0.11", "10.42.1.5-10.42.1.6", "192.168.0.0-192.168.0.255", "192.168.2.0-192.168.255.255"]
    {
        assert!(text.contains(element), "{element}: {text}");
    }
    assert!(
        text.contains("ip saddr @peers-default/web/ingress/0 meta l4proto tcp th dport { 80, 8080 } return"),
        "{text}"
    );
    assert!(
        text.contains("ip saddr @peers-default/web/ingress/0 meta l4proto udp th dport { 5000-5100 } return"),
        "{text}"
    );
    assert!(text.contains("\t\tmeta l4proto sctp return\n"), "{text}");
    assert!(
        text.contains("ip daddr . meta l4proto . th dport @named-default/egress/egress/0 return"),
        "{text}"
    );
    assert!(text.contains("10.42.0.10 . tcp . 8080"), "{text}");
    assert!(text.contains("ip daddr @peers-default/egress/egress/1 return"), "{text}");
    assert!(text.contains("0.0.0.0-9.255.255.255"), "{text}");
    assert!(text.contains("11.0.0.0-255.255.255.255"), "{text}");
    assert!(text.contains("meta l4proto udp th dport { 53 } return"), "{text}");
    // Every pod chain ends in a drop; prod's pods are on node-b.
    assert_eq!(text.matches("counter drop").count(), 3, "{text}");
    assert!(!text.contains("prod/"), "{text}");
    // Deterministic.
    assert_eq!(text, render(&Config::new("node-a"), &rich_policies(), &pods, &namespaces));
}

#[test]
fn long_names_are_shortened_stably() {
    let (mut pods, namespaces) = world();
    let long = "x".repeat(250);
    pods[0]["metadata"]["name"] = json!(long);
    let deny = policy("default", "deny", json!({"podSelector": {}}));
    let text = render(&Config::new("node-a"), &[deny], &pods, &namespaces);
    let name = text.lines().find(|l| l.contains("chain ingress-default/xxx")).unwrap();
    assert!(name.len() < 230, "{name}");
    assert!(name.contains("_h"), "{name}");
}

fn unshare_available() -> bool {
    let ok = std::process::Command::new("unshare").args(["-rn", "nft", "--version"]).output();
    if !matches!(&ok, Ok(o) if o.status.success()) {
        eprintln!("skipped: `unshare -rn nft` does not run here ({ok:?})");
        return false;
    }
    true
}

/// Runs `script` in `sh -e` in a fresh user and network namespace, in
/// `dir`; its stdout.
fn unshare_sh(script: &str, dir: &std::path::Path) -> String {
    let out = std::process::Command::new("unshare")
        .args(["-rn", "sh", "-ec", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn nft_accepts_the_ruleset() {
    if !unshare_available() {
        return;
    }
    let (pods, namespaces) = world();
    let cfg = Config::new("node-a");
    let dir = tempfile::tempdir().unwrap();
    let everything = policy(
        "default",
        "all",
        json!({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}),
    );
    for policies in [rich_policies(), Vec::new(), vec![everything]] {
        let text = nft::transaction(&cfg.table, &render(&cfg, &policies, &pods, &namespaces));
        std::fs::write(dir.path().join("rules.nft"), &text).unwrap();
        unshare_sh("nft -c -f rules.nft", dir.path());
    }
}

/// Applied for real in a namespace of its own: a whole table, then the
/// incremental update to another (peers and pods changed, chains gone),
/// then the kernel's listing has exactly the new ruleset's chains and
/// rules.
#[test]
fn incremental_updates_apply_on_top_of_the_table() {
    if !unshare_available() {
        return;
    }
    let (pods, namespaces) = world();
    let cfg = Config::new("node-a");
    let old = desired(&cfg, &rich_policies(), &pods, &namespaces);
    let mut changed_pods = pods.clone();
    // "other" becomes allowed (peers grow and merge); "allowed" leaves.
    changed_pods[2]["metadata"]["labels"] = json!({"role": "allowed"});
    changed_pods.remove(1);
    let mut policies = rich_policies();
    policies[0]["spec"]["ingress"][0]["from"][2]["ipBlock"]["except"] = json!(["192.168.128.0/17"]);
    let new = desired(&cfg, &policies, &changed_pods, &namespaces);
    let update = new.update_from(&old).unwrap();
    assert!(update.contains("delete chain ip lichen-policy egress-default/allowed"), "{update}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.nft"), nft::transaction(&cfg.table, &old.definition())).unwrap();
    std::fs::write(dir.path().join("update.nft"), &update).unwrap();
    let listing =
        unshare_sh("nft -f old.nft; nft -f update.nft; nft list table ip lichen-policy", dir.path());
    assert_eq!(crate::proxy::ruleset::listed_counts(&listing), new.counts(), "{listing}");
    assert!(listing.contains("10.42.0.12 : jump egress-default/other"), "{listing}");
    assert!(!listing.contains("10.42.0.11"), "{listing}");
    // nft lists intervals as prefixes where it can.
    assert!(listing.contains("192.168.0.0/17"), "{listing}");
    assert!(!listing.contains("192.168.2.0"), "{listing}");
}
