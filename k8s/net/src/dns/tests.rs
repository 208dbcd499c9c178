#![allow(clippy::unwrap_used)]

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, Record, RecordType};
use serde_json::{Value, json};

use super::index::{Answer, Index, Response};
use super::*;

fn services() -> Vec<Value> {
    vec![
        json!({"metadata": {"namespace": "default", "name": "web"},
               "spec": {"clusterIP": "10.43.5.6", "clusterIPs": ["10.43.5.6"],
                        "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                                  {"name": "dns", "port": 53, "protocol": "UDP"}]}}),
        json!({"metadata": {"namespace": "db", "name": "pg"},
               "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}),
        json!({"metadata": {"namespace": "default", "name": "ext"},
               "spec": {"type": "ExternalName", "externalName": "example.com"}}),
        json!({"metadata": {"namespace": "default", "name": "alias"},
               "spec": {"type": "ExternalName", "externalName": "web.default.svc.cluster.local"}}),
        json!({"metadata": {"namespace": "default", "name": "pending"}, "spec": {"clusterIP": "None"}}),
    ]
}

fn slices() -> Vec<Value> {
    vec![
        json!({"metadata": {"namespace": "db", "name": "pg-1", "labels": {"kubernetes.io/service-name": "pg"}},
        "addressType": "IPv4",
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.42.0.5"], "hostname": "pg-0", "conditions": {"ready": true}},
            {"addresses": ["10.42.0.6"], "conditions": {"ready": true}},
            {"addresses": ["10.42.0.7"], "hostname": "pg-2", "conditions": {"ready": false}},
        ]}),
        // A second slice of the same Service.
        json!({"metadata": {"namespace": "db", "name": "pg-2", "labels": {"kubernetes.io/service-name": "pg"}},
               "addressType": "IPv4",
               "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
               "endpoints": [{"addresses": ["10.42.1.9"], "hostname": "pg-3"}]}),
    ]
}

fn index() -> Index {
    Index::build("cluster.local", 5, "10.43.0.10".parse().unwrap(), &services(), &slices(), 1)
}

fn local(a: Answer) -> Response {
    match a {
        Answer::Local(r) => r,
        Answer::Forward => panic!("forwarded"),
    }
}

/// The answers' data as text, sorted.
fn data(records: &[Record]) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(|r| r.data.to_string()).collect();
    v.sort();
    v
}

#[test]
fn cluster_ip_service_a_and_its_absent_aaaa() {
    let idx = index();
    let r = local(idx.answer("web.default.svc.cluster.local.", RecordType::A));
    assert_eq!(r.code.0, ResponseCode::NoError);
    assert_eq!(data(&r.answers), ["10.43.5.6"]);
    assert_eq!(r.answers[0].ttl, 5);
    // Case does not matter; a missing final dot neither.
    assert_eq!(
        data(&local(idx.answer("WEB.Default.SVC.cluster.LOCAL", RecordType::A)).answers),
        ["10.43.5.6"]
    );
    let r = local(idx.answer("web.default.svc.cluster.local.", RecordType::AAAA));
    assert_eq!(r.code.0, ResponseCode::NoError);
    assert!(r.answers.is_empty());
    assert_eq!(r.authority[0].record_type(), RecordType::SOA);
}

#[test]
fn missing_names_are_nxdomain_and_branches_nodata() {
    let idx = index();
    for missing in [
        "nope.default.svc.cluster.local.",
        "web.nope.svc.cluster.local.",
        "x.cluster.local.",
        "_x._tcp.web.default.svc.cluster.local.",
    ] {
        let r = local(idx.answer(missing, RecordType::A));
        assert_eq!(r.code.0, ResponseCode::NXDomain, "{missing}");
        assert_eq!(r.authority[0].record_type(), RecordType::SOA, "{missing}");
    }
    for branch in [
        "default.svc.cluster.local.",
        "svc.cluster.local.",
        "cluster.local.",
        "_tcp.web.default.svc.cluster.local.",
        "pending.default.svc.cluster.local.",
    ] {
        let r = local(idx.answer(branch, RecordType::A));
        assert_eq!(r.code.0, ResponseCode::NoError, "{branch}");
        assert!(r.answers.is_empty(), "{branch}");
        assert_eq!(r.authority.len(), 1, "{branch}");
    }
    assert_eq!(data(&local(idx.answer("cluster.local.", RecordType::SOA)).answers).len(), 1);
    assert_eq!(data(&local(idx.answer("cluster.local.", RecordType::NS)).answers), ["ns.dns.cluster.local."]);
    assert_eq!(data(&local(idx.answer("ns.dns.cluster.local.", RecordType::A)).answers), ["10.43.0.10"]);
    assert_eq!(data(&local(idx.answer("dns-version.cluster.local.", RecordType::TXT)).answers), ["1.1.0"]);
}

#[test]
fn srv_for_named_ports_and_the_plain_name() {
    let idx = index();
    let r = local(idx.answer("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV));
    assert_eq!(data(&r.answers), ["0 100 80 web.default.svc.cluster.local."]);
    assert_eq!(data(&r.additionals), ["10.43.5.6"]);
    let r = local(idx.answer("_dns._udp.web.default.svc.cluster.local.", RecordType::SRV));
    assert_eq!(data(&r.answers), ["0 100 53 web.default.svc.cluster.local."]);
    assert_eq!(
        local(idx.answer("_dns._tcp.web.default.svc.cluster.local.", RecordType::SRV)).code.0,
        ResponseCode::NXDomain
    );
    let r = local(idx.answer("web.default.svc.cluster.local.", RecordType::SRV));
    assert_eq!(
        data(&r.answers),
        ["0 50 53 web.default.svc.cluster.local.", "0 50 80 web.default.svc.cluster.local."]
    );
}

#[test]
fn headless_service_has_its_ready_endpoints_and_their_names() {
    let idx = index();
    let r = local(idx.answer("pg.db.svc.cluster.local.", RecordType::A));
    assert_eq!(data(&r.answers), ["10.42.0.5", "10.42.0.6", "10.42.1.9"]);
    assert_eq!(
        data(&local(idx.answer("pg-0.pg.db.svc.cluster.local.", RecordType::A)).answers),
        ["10.42.0.5"]
    );
    assert_eq!(
        data(&local(idx.answer("10-42-0-6.pg.db.svc.cluster.local.", RecordType::A)).answers),
        ["10.42.0.6"]
    );
    // Not ready: not served.
    assert_eq!(
        local(idx.answer("pg-2.pg.db.svc.cluster.local.", RecordType::A)).code.0,
        ResponseCode::NXDomain
    );
    let r = local(idx.answer("_pg._tcp.pg.db.svc.cluster.local.", RecordType::SRV));
    assert_eq!(
        data(&r.answers),
        [
            "0 33 5432 10-42-0-6.pg.db.svc.cluster.local.",
            "0 33 5432 pg-0.pg.db.svc.cluster.local.",
            "0 33 5432 pg-3.pg.db.svc.cluster.local."
        ]
    );
    assert_eq!(data(&r.additionals), ["10.42.0.5", "10.42.0.6", "10.42.1.9"]);
}

#[test]
fn publish_not_ready_addresses_serves_every_endpoint() {
    let mut svcs = services();
    svcs[1]["spec"]["publishNotReadyAddresses"] = json!(true);
    let idx = Index::build("cluster.local", 5, "10.43.0.10".parse().unwrap(), &svcs, &slices(), 1);
    assert_eq!(
        data(&local(idx.answer("pg-2.pg.db.svc.cluster.local.", RecordType::A)).answers),
        ["10.42.0.7"]
    );
}

#[test]
fn ptr_for_cluster_ips_and_endpoints_others_forwarded() {
    let idx = index();
    let r = local(idx.answer("6.5.43.10.in-addr.arpa.", RecordType::PTR));
    assert_eq!(data(&r.answers), ["web.default.svc.cluster.local."]);
    let r = local(idx.answer("5.0.42.10.in-addr.arpa.", RecordType::PTR));
    assert_eq!(data(&r.answers), ["pg-0.pg.db.svc.cluster.local."]);
    assert_eq!(idx.answer("1.2.0.192.in-addr.arpa.", RecordType::PTR), Answer::Forward);
}

#[test]
fn external_name_is_a_cname_followed_in_the_zone_or_upstream() {
    let idx = index();
    let r = local(idx.answer("ext.default.svc.cluster.local.", RecordType::A));
    assert_eq!(data(&r.answers), ["example.com."]);
    assert_eq!(r.follow.unwrap().to_ascii(), "example.com.");
    let r = local(idx.answer("alias.default.svc.cluster.local.", RecordType::A));
    assert_eq!(data(&r.answers), ["10.43.5.6", "web.default.svc.cluster.local."]);
    assert!(r.follow.is_none());
    assert!(matches!(r.answers[0].data, RData::CNAME(_)), "the CNAME comes first");
}

#[test]
fn pod_names_and_other_names() {
    let idx = index();
    assert_eq!(
        data(&local(idx.answer("10-42-3-4.any.pod.cluster.local.", RecordType::A)).answers),
        ["10.42.3.4"]
    );
    assert!(local(idx.answer("10-42-3-4.any.pod.cluster.local.", RecordType::AAAA)).answers.is_empty());
    assert_eq!(local(idx.answer("any.pod.cluster.local.", RecordType::A)).code.0, ResponseCode::NoError);
    assert_eq!(
        local(idx.answer("10-42-3.any.pod.cluster.local.", RecordType::A)).code.0,
        ResponseCode::NXDomain
    );
    assert_eq!(idx.answer("example.com.", RecordType::A), Answer::Forward);
    assert_eq!(idx.answer("local.", RecordType::A), Answer::Forward);
    assert_eq!(idx.answer("notcluster.local.", RecordType::A), Answer::Forward);
}

#[test]
fn upstreams_skip_ourselves() {
    let text = "nameserver 10.43.0.10\nnameserver 127.0.0.53\nnameserver 192.0.2.1\n";
    let listen: std::net::SocketAddr = "10.43.0.10:53".parse().unwrap();
    let want: Vec<std::net::SocketAddr> =
        vec!["127.0.0.53:53".parse().unwrap(), "192.0.2.1:53".parse().unwrap()];
    assert_eq!(upstream_from(text, listen), want);
    let listen: std::net::SocketAddr = "127.0.0.53:53".parse().unwrap();
    assert_eq!(upstream_from(text, listen).len(), 2);
}

#[test]
fn kube_dns_service_is_node_local_without_selector() {
    let svc = kube_dns_service("10.43.0.10".parse().unwrap());
    assert_eq!(svc["metadata"]["labels"][NODE_LOCAL_LABEL], "true");
    assert_eq!(svc["metadata"]["labels"]["k8s-app"], "kube-dns");
    assert_eq!(svc["spec"]["clusterIP"], "10.43.0.10");
    assert!(svc["spec"].get("selector").is_none());
    assert_eq!(svc["spec"]["ports"][1]["name"], "dns-tcp");
}
