#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::*;

fn cfg() -> Config {
    Config::new("node-a", vec!["192.168.1.10".parse().unwrap()])
}

fn service(name: &str, kind: &str, cluster_ip: &str, ports: Value) -> Value {
    json!({
        "metadata": {"namespace": "default", "name": name},
        "spec": {"type": kind, "clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "ports": ports},
    })
}

/// A slice of `svc` with endpoints `(ip, ready, terminating, node)` on port
/// `http`/8080.
fn slice(svc: &str, name: &str, eps: &[(&str, bool, bool, &str)]) -> Value {
    let endpoints: Vec<Value> = eps
        .iter()
        .map(|(ip, ready, terminating, node)| {
            json!({
                "addresses": [ip], "nodeName": node,
                "conditions": {"ready": ready, "serving": ready | terminating, "terminating": terminating},
            })
        })
        .collect();
    json!({
        "metadata": {"namespace": "default", "name": name, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    })
}

fn http_port() -> Value {
    json!([{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30080}])
}

#[test]
fn cluster_ip_balances_over_its_ready_endpoints() {
    let svcs = [service("web", "ClusterIP", "10.43.0.20", http_port())];
    let slices = [slice(
        "web",
        "web-1",
        &[("10.42.0.6", true, false, "node-b"), ("10.42.0.5", true, false, "node-a")],
    )];
    let text = render(&cfg(), &svcs, &slices);
    assert!(text.starts_with("table ip lichen {\n"), "{text}");
    assert!(text.contains("10.43.0.20 . tcp . 80 : goto service-default/web/tcp/http"), "{text}");
    assert!(
        text.contains(
            "numgen random mod 2 vmap { 0 : goto endpoint-default/web/tcp/http__10.42.0.5/8080, \
             1 : goto endpoint-default/web/tcp/http__10.42.0.6/8080 }"
        ),
        "{text}"
    );
    assert!(text.contains("meta l4proto tcp dnat to 10.42.0.5:8080"), "{text}");
    assert!(text.contains("ip saddr 10.42.0.6 jump mark-for-masquerade"), "hairpin: {text}");
    // ClusterIP only: no node port, nothing rejected.
    assert!(!text.contains("30080"), "{text}");
    assert!(!text.contains(": goto reject-chain"), "{text}");
}

#[test]
fn node_port_goes_through_an_external_chain_that_masquerades() {
    for kind in ["NodePort", "LoadBalancer"] {
        let svcs = [service("web", kind, "10.43.0.20", http_port())];
        let slices = [slice("web", "web-1", &[("10.42.0.5", true, false, "node-a")])];
        let text = render(&cfg(), &svcs, &slices);
        assert!(text.contains("tcp . 30080 : goto external-default/web/tcp/http"), "{text}");
        assert!(
            text.contains(
                "chain external-default/web/tcp/http {\n\t\tjump mark-for-masquerade\n\t\tgoto service-default/web/tcp/http\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"),
            "{text}"
        );
        assert!(
            text.contains("set nodeport-ips {\n\t\ttype ipv4_addr;\n\t\telements = {\n\t\t\t192.168.1.10\n")
        );
    }
    // Without node addresses, node ports answer on every local address.
    let text = render(
        &Config::new("node-a", vec![]),
        &[service("web", "NodePort", "10.43.0.20", http_port())],
        &[slice("web", "web-1", &[("10.42.0.5", true, false, "node-a")])],
    );
    assert!(text.contains(
        "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports"
    ));
}

#[test]
fn a_service_without_ready_endpoints_is_rejected() {
    let svcs = [service("web", "NodePort", "10.43.0.20", http_port())];
    for slices in [vec![], vec![slice("web", "web-1", &[("10.42.0.5", false, false, "node-a")])]] {
        let text = render(&cfg(), &svcs, &slices);
        assert!(text.contains("10.43.0.20 . tcp . 80 : goto reject-chain"), "{text}");
        assert!(text.contains("tcp . 30080 : goto reject-chain"), "{text}");
        assert!(!text.contains("chain service-default"), "{text}");
        assert!(!text.contains("dnat to"), "{text}");
    }
}

#[test]
fn not_ready_endpoints_are_left_out_and_terminating_ones_are_a_last_resort() {
    let svcs = [service("web", "ClusterIP", "10.43.0.20", http_port())];
    let slices = [
        slice("web", "web-1", &[("10.42.0.5", true, false, "n"), ("10.42.0.6", false, false, "n")]),
        slice("web", "web-2", &[("10.42.0.7", false, true, "n")]),
    ];
    let text = render(&cfg(), &svcs, &slices);
    assert!(
        text.contains("numgen random mod 1 vmap { 0 : goto endpoint-default/web/tcp/http__10.42.0.5/8080 }")
    );
    assert!(!text.contains("10.42.0.6") && !text.contains("10.42.0.7"), "{text}");

    // Only a terminating (still serving) endpoint left: it keeps serving.
    let slices =
        [slice("web", "web-2", &[("10.42.0.7", false, true, "n"), ("10.42.0.8", false, false, "n")])];
    let text = render(&cfg(), &svcs, &slices);
    assert!(
        text.contains("numgen random mod 1 vmap { 0 : goto endpoint-default/web/tcp/http__10.42.0.7/8080 }")
    );
    assert!(!text.contains("10.42.0.8"), "{text}");
}

#[test]
fn headless_and_external_name_services_get_no_rules() {
    let mut external = service("ext", "ExternalName", "", http_port());
    external["spec"]["externalName"] = json!("example.com");
    let svcs = [service("headless", "ClusterIP", "None", http_port()), external];
    let slices = [slice("headless", "headless-1", &[("10.42.0.5", true, false, "n")])];
    let text = render(&cfg(), &svcs, &slices);
    assert_eq!(text, render(&cfg(), &[], &[]));
    assert!(!text.contains("10.42.0.5") && !text.contains(" : goto"), "{text}");
}

#[test]
fn udp_ports_and_unnamed_ports() {
    let svcs = [service("dns", "ClusterIP", "10.43.0.10", json!([{"port": 53, "protocol": "UDP"}]))];
    let mut s = slice("dns", "dns-1", &[("10.42.0.9", true, false, "n")]);
    s["ports"] = json!([{"port": 53, "protocol": "UDP"}]);
    let text = render(&cfg(), &svcs, &[s]);
    assert!(text.contains("10.43.0.10 . udp . 53 : goto service-default/dns/udp/"), "{text}");
    assert!(text.contains("meta l4proto udp dnat to 10.42.0.9:53"), "{text}");
}

#[test]
fn rendering_is_deterministic() {
    let svcs: Vec<Value> = (0..20)
        .map(|i| service(&format!("s{i}"), "NodePort", &format!("10.43.1.{i}"), http_port()))
        .collect();
    let slices: Vec<Value> = (0..20)
        .map(|i| {
            slice(
                &format!("s{i}"),
                &format!("s{i}-x"),
                &[("10.42.0.9", true, false, "n"), ("10.42.0.3", true, false, "n")],
            )
        })
        .collect();
    let a = render(&cfg(), &svcs, &slices);
    let (mut rs, mut rl) = (svcs.clone(), slices.clone());
    rs.reverse();
    rl.reverse();
    assert_eq!(a, render(&cfg(), &rs, &rl));
}

#[test]
fn session_affinity_and_local_traffic_policy() {
    let mut svc = service("web", "NodePort", "10.43.0.20", http_port());
    svc["spec"]["sessionAffinity"] = json!("ClientIP");
    svc["spec"]["sessionAffinityConfig"] = json!({"clientIP": {"timeoutSeconds": 600}});
    svc["spec"]["externalTrafficPolicy"] = json!("Local");
    let slices = [slice(
        "web",
        "web-1",
        &[("10.42.0.5", true, false, "node-a"), ("10.42.1.5", true, false, "node-b")],
    )];
    let text = render(&cfg(), &[svc], &slices);
    let ep = "default/web/tcp/http__10.42.0.5/8080";
    assert!(text.contains(&format!(
        "set affinity-{ep} {{\n\t\ttype ipv4_addr; flags dynamic,timeout; timeout 600s;"
    )));
    assert!(text.contains(&format!("ip saddr @affinity-{ep} goto endpoint-{ep}")), "{text}");
    assert!(text.contains(&format!("update @affinity-{ep} {{ ip saddr }}")), "{text}");
    // External traffic only to the local endpoint.
    assert!(text.contains(&format!(
        "chain local-default/web/tcp/http {{\n\t\tip saddr @affinity-{ep} goto endpoint-{ep}\n\t\tnumgen random mod 1 vmap {{ 0 : goto endpoint-{ep} }}"
    )), "{text}");
}

/// `nft -c` accepts what we render, checked in a user and network
/// namespace of its own (no privileges needed, nothing committed).
#[test]
fn nft_accepts_the_rendered_table() {
    let nft_ok = std::process::Command::new("unshare").args(["-rn", "nft", "--version"]).output();
    if !matches!(&nft_ok, Ok(o) if o.status.success()) {
        eprintln!("skipped: `unshare -rn nft` does not run here ({nft_ok:?})");
        return;
    }
    let mut svcs = vec![
        service("web", "NodePort", "10.43.0.20", http_port()),
        service("empty", "LoadBalancer", "10.43.0.21", http_port()),
        service(
            "dns",
            "ClusterIP",
            "10.43.0.10",
            json!([{"port": 53, "protocol": "UDP"}, {"name": "s", "port": 9, "protocol": "SCTP"}]),
        ),
    ];
    svcs[0]["spec"]["sessionAffinity"] = json!("ClientIP");
    svcs[0]["spec"]["externalTrafficPolicy"] = json!("Local");
    svcs[0]["spec"]["externalIPs"] = json!(["203.0.113.7"]);
    svcs[1]["spec"]["ports"][0]["nodePort"] = json!(30081);
    let mut dns = slice("dns", "dns-1", &[("10.42.0.9", true, false, "n")]);
    dns["ports"] = json!([{"port": 53, "protocol": "UDP"}]);
    let slices = [slice("web", "web-1", &[("10.42.0.5", true, false, "node-b")]), dns];
    for cfg in [cfg(), Config::new("node-a", vec![])] {
        let text = nft::transaction(&cfg.table, &render(&cfg, &svcs, &slices));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rules.nft");
        std::fs::write(&file, &text).unwrap();
        let out = std::process::Command::new("unshare")
            .args(["-rn", "nft", "-c", "-f"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "nft -c: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    }
}

/// `nft list` output as sorted lines, set elements one per line (nft wraps
/// them as it likes and lists chains in creation order).
fn normalized(listing: &str) -> Vec<String> {
    let mut lines: Vec<String> = listing
        .lines()
        .flat_map(|l| {
            l.split(", ")
                .map(|p| p.trim().trim_end_matches(',').trim_start_matches("elements = { ").to_owned())
        })
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    lines
}

fn unshare_sh(script: &str, dir: &std::path::Path) -> Option<String> {
    let ok = std::process::Command::new("unshare").args(["-rn", "nft", "--version"]).output();
    if !matches!(&ok, Ok(o) if o.status.success()) {
        eprintln!("skipped: `unshare -rn nft` does not run here ({ok:?})");
        return None;
    }
    let out = std::process::Command::new("unshare")
        .args(["-rn", "sh", "-ec", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn an_update_leaves_the_kernel_with_what_a_replacement_would() {
    let before_svcs = vec![
        service("web", "ClusterIP", "10.43.0.20", http_port()),
        service("dns", "ClusterIP", "10.43.0.10", json!([{"port": 53, "protocol": "UDP"}])),
        service("empty", "NodePort", "10.43.0.21", http_port()),
    ];
    let before_slices =
        vec![slice("web", "web-1", &[("10.42.0.5", true, false, "n"), ("10.42.0.6", true, false, "n")])];
    let mut web = service("web", "NodePort", "10.43.0.20", http_port());
    web["spec"]["sessionAffinity"] = json!("ClientIP");
    let after_svcs = vec![
        web,
        service("empty", "NodePort", "10.43.0.21", http_port()),
        service("new", "ClusterIP", "10.43.0.22", http_port()),
    ];
    let after_slices = vec![
        slice("web", "web-1", &[("10.42.0.5", true, false, "n")]),
        slice("empty", "empty-1", &[("10.42.0.8", true, false, "n")]),
        slice("new", "new-1", &[("10.42.0.9", true, false, "n")]),
    ];
    let cfg = cfg();
    let a = desired(&cfg, &before_svcs, &before_slices);
    let b = desired(&cfg, &after_svcs, &after_slices);
    assert_eq!(b.update_from(&b).unwrap(), "", "no change, no commands");
    let update = b.update_from(&a).unwrap();
    assert!(
        update.contains("delete chain ip lichen endpoint-default/web/tcp/http__10.42.0.6/8080\n"),
        "{update}"
    );
    assert!(update.contains("flush chain ip lichen service-default/web/tcp/http\n"), "{update}");
    assert!(!update.contains("chain ip lichen filter-"), "base chains untouched: {update}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.nft"), nft::transaction("lichen", &a.definition())).unwrap();
    std::fs::write(dir.path().join("update.nft"), &update).unwrap();
    std::fs::write(dir.path().join("b.nft"), nft::transaction("lichen", &b.definition())).unwrap();
    let Some(updated) = unshare_sh("nft -f a.nft; nft -f update.nft; nft list table ip lichen", dir.path())
    else {
        return;
    };
    let replaced = unshare_sh("nft -f b.nft; nft list table ip lichen", dir.path()).unwrap();
    assert_eq!(normalized(&updated), normalized(&replaced), "updated:\n{updated}\nreplaced:\n{replaced}");
    assert_eq!(ruleset::listed_counts(&updated), b.counts());
}

#[test]
fn nft_errors_say_what_failed() {
    let missing = nft::apply(std::path::Path::new("/nonexistent/nft"), "lichen", "").unwrap_err();
    assert!(missing.is_missing(), "{missing}");
    let failed = nft::apply(std::path::Path::new("false"), "lichen", "").unwrap_err();
    assert!(!failed.is_missing());
    assert!(matches!(failed, NftError::Failed { .. }), "{failed}");
}
