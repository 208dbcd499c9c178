use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use serde_json::json;

use super::*;

fn request(cn: &str, orgs: &[&str], sans: Vec<SanType>) -> CertificateRequest {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    for (i, o) in orgs.iter().enumerate() {
        // rcgen keeps one value per type; a second O uses organizationName's OID.
        let ty = if i == 0 { DnType::OrganizationName } else { DnType::CustomDnType(vec![2, 5, 4, 10]) };
        params.distinguished_name.push(ty, *o);
    }
    if !cn.is_empty() {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params.subject_alt_names = sans;
    let key = KeyPair::generate().unwrap();
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    CertificateRequest::parse(pem.as_bytes()).unwrap()
}

fn node(name: &str) -> CertificateRequest {
    request(&format!("system:node:{name}"), &["system:nodes"], vec![])
}

fn dns(name: &str) -> SanType {
    SanType::DnsName(name.try_into().unwrap())
}

fn ip(addr: &str) -> SanType {
    SanType::IpAddress(addr.parse().unwrap())
}

const CLIENT: &[&str] = &["digital signature", "key encipherment", "client auth"];
const SERVING: &[&str] = &["digital signature", "key encipherment", "server auth"];

#[test]
fn kubelet_client_requests_follow_upstream() {
    assert_eq!(kubelet_client(&node("n1"), &set(CLIENT)), Ok(()));
    assert_eq!(kubelet_client(&node("n1"), &set(&["digital signature", "client auth"])), Ok(()));
    let masters = request("system:node:n1", &["system:masters"], vec![]);
    assert_eq!(
        kubelet_client(&masters, &set(CLIENT)).unwrap_err(),
        "subject organization is not system:nodes"
    );
    let two = request("system:node:n1", &["system:nodes", "system:masters"], vec![]);
    assert!(kubelet_client(&two, &set(CLIENT)).is_err(), "O must be exactly system:nodes");
    let user = request("jane", &["system:nodes"], vec![]);
    assert!(kubelet_client(&user, &set(CLIENT)).unwrap_err().contains("does not begin with system:node:"));
    let named = request("system:node:n1", &["system:nodes"], vec![dns("n1")]);
    assert_eq!(kubelet_client(&named, &set(CLIENT)).unwrap_err(), "DNS subjectAltNames are not allowed");
    let addressed = request("system:node:n1", &["system:nodes"], vec![ip("10.0.0.1")]);
    assert_eq!(kubelet_client(&addressed, &set(CLIENT)).unwrap_err(), "IP subjectAltNames are not allowed");
    assert!(
        kubelet_client(&node("n1"), &set(&["client auth"])).unwrap_err().contains("usages did not match")
    );
    assert!(kubelet_client(&node("n1"), &set(SERVING)).is_err());
    assert!(kubelet_client(&node("n1"), &set(&["digital signature", "client auth", "server auth"])).is_err());
}

#[test]
fn kubelet_serving_requests_need_a_name_and_server_auth() {
    let good = request("system:node:n1", &["system:nodes"], vec![dns("n1.lan"), ip("10.0.0.1")]);
    assert_eq!(kubelet_serving(&good, &set(SERVING)), Ok(()));
    assert_eq!(kubelet_serving(&good, &set(&["digital signature", "server auth"])), Ok(()));
    assert_eq!(
        kubelet_serving(&node("n1"), &set(SERVING)).unwrap_err(),
        "DNS or IP subjectAltName is required"
    );
    assert!(kubelet_serving(&good, &set(CLIENT)).is_err());
    let email = request(
        "system:node:n1",
        &["system:nodes"],
        vec![dns("n1"), SanType::Rfc822Name("a@b.c".try_into().unwrap())],
    );
    assert_eq!(kubelet_serving(&email, &set(SERVING)).unwrap_err(), "Email subjectAltNames are not allowed");
    let uri = request(
        "system:node:n1",
        &["system:nodes"],
        vec![dns("n1"), SanType::URI("spiffe://a/b".try_into().unwrap())],
    );
    assert_eq!(kubelet_serving(&uri, &set(SERVING)).unwrap_err(), "URI subjectAltNames are not allowed");
    let user = request("jane", &["system:nodes"], vec![dns("n1")]);
    assert!(kubelet_serving(&user, &set(SERVING)).is_err());
}

#[test]
fn apiserver_client_takes_any_subject_but_only_client_usages() {
    let jane = request("jane", &["dev", "ops"], vec![]);
    assert_eq!(jane.organizations, ["dev", "ops"]);
    assert_eq!(apiserver_client(&jane, &set(&["client auth"])), Ok(()));
    assert_eq!(apiserver_client(&jane, &set(CLIENT)), Ok(()));
    assert_eq!(
        apiserver_client(&jane, &set(&["client auth", "server auth"])).unwrap_err(),
        "invalid usage for client certificate: server auth"
    );
    assert_eq!(
        apiserver_client(&jane, &set(&["digital signature"])).unwrap_err(),
        "missing required usage for client certificate: client auth"
    );
    assert!(apiserver_client(&request("", &["dev"], vec![]), &set(CLIENT)).is_err());
    assert_eq!(check(KUBE_APISERVER_CLIENT, &jane, &set(CLIENT)), Some(Ok(Usage::ClientAuth)));
    assert_eq!(
        check(
            KUBELET_SERVING,
            &request("system:node:n", &["system:nodes"], vec![ip("10.0.0.1")]),
            &set(SERVING)
        ),
        Some(Ok(Usage::ServerAuth))
    );
    assert_eq!(check("example.com/other", &jane, &set(CLIENT)), None);
    assert!(matches!(check(KUBELET_CLIENT, &jane, &set(CLIENT)), Some(Err(_))));
}

#[test]
fn validity_is_clamped_as_upstream() {
    assert_eq!(validity(None), DEFAULT_VALIDITY);
    assert_eq!(validity(Some(60)), MIN_VALIDITY);
    assert_eq!(validity(Some(-5)), DEFAULT_VALIDITY);
    assert_eq!(validity(Some(3600)), Duration::from_secs(3600));
    assert_eq!(validity(Some(10 * 365 * 24 * 3600)), DEFAULT_VALIDITY);
}

fn csr(signer: &str, username: &str, usages: &[&str]) -> Value {
    json!({"spec": {"signerName": signer, "username": username, "usages": usages}})
}

#[test]
fn the_approver_recognizes_only_kubelet_client_requests() {
    let n1 = node("n1");
    assert_eq!(
        recognize(&csr(KUBELET_CLIENT, "system:bootstrap:abc", CLIENT), &n1),
        [Recognized::NodeClient]
    );
    assert_eq!(
        recognize(&csr(KUBELET_CLIENT, "system:node:n1", CLIENT), &n1),
        [Recognized::SelfNodeClient, Recognized::NodeClient]
    );
    assert_eq!(recognize(&csr(KUBELET_CLIENT, "system:node:n2", CLIENT), &n1), [Recognized::NodeClient]);
    assert!(recognize(&csr(KUBE_APISERVER_CLIENT, "system:node:n1", CLIENT), &n1).is_empty());
    assert!(recognize(&csr(KUBELET_CLIENT, "system:node:n1", &["client auth"]), &n1).is_empty());
    let masters = request("system:node:n1", &["system:masters"], vec![]);
    assert!(recognize(&csr(KUBELET_CLIENT, "system:node:n1", CLIENT), &masters).is_empty());
    let serving = request("system:node:n1", &["system:nodes"], vec![ip("10.0.0.1")]);
    assert!(recognize(&csr(KUBELET_SERVING, "system:node:n1", SERVING), &serving).is_empty());
}

#[test]
fn conditions() {
    let with = |conds: Value| json!({"status": {"conditions": conds}});
    assert!(approved(&with(json!([{"type": "Approved", "status": "True"}]))));
    assert!(!approved(&with(
        json!([{"type": "Approved", "status": "True"}, {"type": "Denied", "status": "True"}])
    )));
    assert!(!approved(&with(json!([{"type": "Approved", "status": "False"}]))));
    assert!(failed(&with(json!([{"type": "Failed", "status": "True"}]))));
    assert!(!issued(&json!({"status": {"certificate": ""}})));
    assert!(issued(&json!({"status": {"certificate": "LS0t"}})));
}

#[test]
fn nodes_asking_for_their_own_serving_certificates_are_recognized() {
    let serving = request("system:node:n1", &["system:nodes"], vec![dns("n1"), ip("10.0.0.1")]);
    let from = |user: &str, groups: &[&str]| {
        let mut c = csr(KUBELET_SERVING, user, &["digital signature", "server auth"]);
        c["spec"]["groups"] = json!(groups);
        c
    };
    let node_groups = ["system:nodes", "system:authenticated"];
    assert_eq!(self_node_serving(&from("system:node:n1", &node_groups), &serving), Some("n1"));
    assert_eq!(self_node_serving(&from("system:node:n2", &node_groups), &serving), None, "another node");
    assert_eq!(self_node_serving(&from("system:node:n1", &["system:authenticated"]), &serving), None);
    let mut client = from("system:node:n1", &node_groups);
    client["spec"]["signerName"] = json!(KUBELET_CLIENT);
    assert_eq!(self_node_serving(&client, &serving), None);
    let other_name = request("system:node:n1", &["system:nodes"], vec![dns("n1"), dns("api.example.com")]);
    assert_eq!(self_node_serving(&from("system:node:n1", &node_groups), &other_name), None);
    let upper = request("system:node:n1", &["system:nodes"], vec![dns("N1"), ip("10.0.0.1")]);
    assert_eq!(self_node_serving(&from("system:node:n1", &node_groups), &upper), Some("n1"));
}

#[test]
fn serving_addresses_must_be_the_nodes_own_and_nobody_elses() {
    let node = |name: &str, addrs: &[(&str, &str)]| {
        let addrs: Vec<Value> = addrs.iter().map(|(t, a)| json!({"type": t, "address": a})).collect();
        json!({"metadata": {"name": name}, "status": {"addresses": addrs}})
    };
    let nodes = vec![
        node("n1", &[("InternalIP", "10.0.0.1"), ("ExternalIP", "192.0.2.1"), ("Hostname", "n1")]),
        node("n2", &[("InternalIP", "10.0.0.2")]),
        node("n3", &[("InternalIP", "10.0.0.1")]),
    ];
    let ips = |s: &[&str]| s.iter().map(|a| a.parse().unwrap()).collect::<Vec<std::net::IpAddr>>();
    assert_eq!(addresses_are_the_nodes("n2", &ips(&["10.0.0.2"]), &nodes), Ok(()));
    assert_eq!(addresses_are_the_nodes("n2", &[], &nodes), Ok(()));
    assert_eq!(
        addresses_are_the_nodes("n2", &ips(&["10.0.0.2", "10.0.0.9"]), &nodes),
        Err("10.0.0.9 is not an address of node n2".into())
    );
    assert_eq!(
        addresses_are_the_nodes("n1", &ips(&["192.0.2.1", "10.0.0.1"]), &nodes),
        Err("10.0.0.1 is also an address of node n3".into())
    );
    assert_eq!(
        addresses_are_the_nodes("n4", &ips(&["10.0.0.4"]), &nodes),
        Err("node n4 is not registered".into())
    );
}

#[test]
fn names_the_api_server_answers_to_are_reserved() {
    let reserved = vec!["10.43.0.1".to_owned(), "server-1".to_owned()];
    let named = |sans: Vec<SanType>| request("system:node:n1", &["system:nodes"], sans);
    assert_eq!(reserved_name(&named(vec![dns("n1"), ip("10.0.0.1")]), &reserved), None);
    for (san, want) in [
        (dns("server-1"), "server-1"),
        (dns("kubernetes"), "kubernetes"),
        (dns("kubernetes.default"), "kubernetes.default"),
        (dns("web.default.svc"), "web.default.svc"),
        (dns("web.default.svc.cluster.local"), "web.default.svc.cluster.local"),
        (dns("localhost"), "localhost"),
        (ip("10.43.0.1"), "10.43.0.1"),
        (ip("127.0.0.1"), "127.0.0.1"),
        (ip("0.0.0.0"), "0.0.0.0"),
    ] {
        assert_eq!(reserved_name(&named(vec![san]), &reserved).as_deref(), Some(want));
    }
}
