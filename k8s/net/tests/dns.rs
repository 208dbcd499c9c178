//! Cluster DNS against the real API server (in-process, in-memory store):
//! `dns::run` on loopback with a fake upstream resolver, queried over UDP
//! and TCP with hand-built messages; and the node-local mode (dummy
//! interface `lichen-dns` holding 10.43.0.10) inside a network namespace
//! the test makes (needs root and `ip`; skipped with a message otherwise).
//! `measure_dns_queries` (ignored) is the benchmark.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use lichen_client::Client;
use lichen_net::dns::{self, Config};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

fn api_server() -> (lichen_apiserver::Server, Client) {
    common::api_server("system:kube-proxy")
}

fn free_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

fn query_bytes(id: u16, name: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m.to_vec().unwrap()
}

/// One question over UDP (TCP when `tcp`); the answer.
async fn ask(server: SocketAddr, name: &str, qtype: RecordType, tcp: bool) -> Message {
    let id = rand_id();
    let bytes = query_bytes(id, name, qtype);
    let fut = async {
        if tcp {
            let mut s = TcpStream::connect(server).await.unwrap();
            let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
            framed.extend_from_slice(&bytes);
            s.write_all(&framed).await.unwrap();
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await.unwrap();
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut buf).await.unwrap();
            Message::from_vec(&buf).unwrap()
        } else {
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            s.connect(server).await.unwrap();
            s.send(&bytes).await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.recv(&mut buf).await.unwrap();
            Message::from_vec(&buf[..n]).unwrap()
        }
    };
    let m = tokio::time::timeout(Duration::from_secs(5), fut).await.expect("no DNS answer within 5 s");
    assert_eq!(m.metadata.id, id);
    m
}

fn rand_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    u16::try_from(std::collections::hash_map::RandomState::new().build_hasher().finish() & 0xffff).unwrap()
}

/// The answers' data as text, sorted.
fn data(records: &[Record]) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(|r| r.data.to_string()).collect();
    v.sort();
    v
}

/// A fake upstream on loopback: any A question gets 192.0.2.77, except
/// `big.example.`, which over UDP is only truncated and over TCP gets
/// 192.0.2.88. Counts the questions it saw.
async fn fake_upstream() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    let tcp = TcpListener::bind(addr).await.unwrap();
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let answer = |req: &Message, over_tcp: bool| -> Vec<u8> {
        let mut m = Message::new(req.metadata.id, MessageType::Response, OpCode::Query);
        m.metadata.recursion_available = true;
        let q = req.queries[0].clone();
        m.add_query(q.clone());
        let big = q.name().to_ascii() == "big.example.";
        if big && !over_tcp {
            m.metadata.truncation = true;
        } else if q.query_type() == RecordType::A {
            let ip = if big { Ipv4Addr::new(192, 0, 2, 88) } else { Ipv4Addr::new(192, 0, 2, 77) };
            m.add_answer(Record::from_rdata(q.name().clone(), 60, RData::A(hickory_proto::rr::rdata::A(ip))));
        }
        m.to_vec().unwrap()
    };
    let s = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, from) = udp.recv_from(&mut buf).await.unwrap();
            s.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let req = Message::from_vec(&buf[..n]).unwrap();
            udp.send_to(&answer(&req, false), from).await.unwrap();
        }
    });
    tokio::spawn(async move {
        loop {
            let (mut c, _) = tcp.accept().await.unwrap();
            let mut len = [0u8; 2];
            c.read_exact(&mut len).await.unwrap();
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            c.read_exact(&mut buf).await.unwrap();
            let out = answer(&Message::from_vec(&buf).unwrap(), true);
            let mut framed = u16::try_from(out.len()).unwrap().to_be_bytes().to_vec();
            framed.extend_from_slice(&out);
            c.write_all(&framed).await.unwrap();
        }
    });
    (addr, seen)
}

/// Waits until the server listens (a UDP question before that gets a
/// port-unreachable).
async fn wait_listening(addr: SocketAddr) {
    wait_for("the DNS server to listen", Duration::from_secs(5), || async {
        TcpStream::connect(addr).await.is_ok()
    })
    .await;
}

const SERVICES: &str = "/api/v1/namespaces/default/services";
const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";

fn headless_slice(ips: &[(&str, &str)]) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "db-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": ips.iter().map(|(ip, host)| json!({"addresses": [ip], "hostname": host, "conditions": {"ready": true}})).collect::<Vec<_>>(),
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
    })
}

fn loopback_config(port: u16, upstream: SocketAddr) -> Config {
    let mut cfg = Config::new(Ipv4Addr::LOCALHOST, "cluster.local");
    cfg.listen = SocketAddr::from(([127, 0, 0, 1], port));
    cfg.manage_interface = false;
    cfg.upstream = vec![upstream];
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_names_are_answered_and_others_forwarded() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_max_level(tracing::Level::INFO).try_init();
    let (_server, client) = api_server();
    let (upstream, upstream_seen) = fake_upstream().await;
    let port = free_port();
    let dns_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let cfg = loopback_config(port, upstream);
    // Before the API has any object, the server already runs.
    let task = tokio::spawn(dns::run(client.clone(), cfg));
    wait_listening(dns_addr).await;

    // kube-dns reserves 10.43.0.10 and is made once.
    assert!(dns::ensure_service(&client, dns::DEFAULT_ADDRESS).await.unwrap());
    assert!(!dns::ensure_service(&client, dns::DEFAULT_ADDRESS).await.unwrap());
    let kube_dns = client.get("/api/v1/namespaces/kube-system/services/kube-dns").await.unwrap();
    assert_eq!(kube_dns["spec"]["clusterIP"], "10.43.0.10");

    let web = client
        .create(
            SERVICES,
            &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"ports": [{"name": "http", "port": 80}]}}),
        )
        .await
        .unwrap();
    let web_ip = web["spec"]["clusterIP"].as_str().unwrap().to_owned();
    client
        .create(
            SERVICES,
            &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "default"},
                    "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}),
        )
        .await
        .unwrap();
    client.create(SLICES, &headless_slice(&[("10.42.0.5", "db-0"), ("10.42.0.6", "db-1")])).await.unwrap();
    client
        .create(
            SERVICES,
            &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "default"},
                    "spec": {"type": "ExternalName", "externalName": "external.example"}}),
        )
        .await
        .unwrap();

    let took = wait_for("web's A record", Duration::from_secs(5), || async {
        data(&ask(dns_addr, "web.default.svc.cluster.local.", RecordType::A, false).await.answers)
            == [web_ip.clone()]
    })
    .await;
    println!("[dns] a new Service answered within {} ms", took.as_millis());
    wait_for("db's A records", Duration::from_secs(5), || async {
        ask(dns_addr, "db.default.svc.cluster.local.", RecordType::A, false).await.answers.len() == 2
    })
    .await;

    wait_for("ext's CNAME", Duration::from_secs(5), || async {
        !ask(dns_addr, "ext.default.svc.cluster.local.", RecordType::CNAME, false).await.answers.is_empty()
    })
    .await;

    let m = ask(dns_addr, "Web.Default.svc.Cluster.Local.", RecordType::A, false).await;
    assert!(m.metadata.authoritative);
    assert_eq!(data(&m.answers), [web_ip.as_str()]);
    let m = ask(dns_addr, "kube-dns.kube-system.svc.cluster.local.", RecordType::A, true).await;
    assert_eq!(data(&m.answers), ["10.43.0.10"], "over TCP");

    let m = ask(dns_addr, "web.default.svc.cluster.local.", RecordType::AAAA, false).await;
    assert_eq!((m.metadata.response_code, m.answers.len()), (ResponseCode::NoError, 0));
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);

    let m = ask(dns_addr, "_http._tcp.web.default.svc.cluster.local.", RecordType::SRV, false).await;
    assert_eq!(data(&m.answers), ["0 100 80 web.default.svc.cluster.local."]);
    assert_eq!(data(&m.additionals), [web_ip.as_str()]);
    let m = ask(dns_addr, "_pg._tcp.db.default.svc.cluster.local.", RecordType::SRV, false).await;
    assert_eq!(
        data(&m.answers),
        ["0 50 5432 db-0.db.default.svc.cluster.local.", "0 50 5432 db-1.db.default.svc.cluster.local."]
    );
    let m = ask(dns_addr, "db-1.db.default.svc.cluster.local.", RecordType::A, false).await;
    assert_eq!(data(&m.answers), ["10.42.0.6"]);

    let octets: Vec<&str> = web_ip.split('.').rev().collect();
    let m = ask(dns_addr, &format!("{}.in-addr.arpa.", octets.join(".")), RecordType::PTR, false).await;
    assert_eq!(data(&m.answers), ["web.default.svc.cluster.local."]);
    let m = ask(dns_addr, "5.0.42.10.in-addr.arpa.", RecordType::PTR, false).await;
    assert_eq!(data(&m.answers), ["db-0.db.default.svc.cluster.local."]);

    let m = ask(dns_addr, "ext.default.svc.cluster.local.", RecordType::A, false).await;
    assert_eq!(data(&m.answers), ["192.0.2.77", "external.example."], "CNAME and the target from upstream");

    let m = ask(dns_addr, "nope.default.svc.cluster.local.", RecordType::A, false).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    let m = ask(dns_addr, "10-42-9-9.default.pod.cluster.local.", RecordType::A, false).await;
    assert_eq!(data(&m.answers), ["10.42.9.9"]);

    // The cluster zone is never forwarded; other names are.
    let before = upstream_seen.load(std::sync::atomic::Ordering::Relaxed);
    let m = ask(dns_addr, "www.example.", RecordType::A, false).await;
    assert!(!m.metadata.authoritative);
    assert_eq!(data(&m.answers), ["192.0.2.77"]);
    let m = ask(dns_addr, "big.example.", RecordType::A, false).await;
    assert_eq!(data(&m.answers), ["192.0.2.88"], "truncated over UDP, asked again over TCP");
    assert_eq!(upstream_seen.load(std::sync::atomic::Ordering::Relaxed), before + 2);

    // Changes show within a couple of seconds.
    let mut slice = client.get(&format!("{SLICES}/db-abc")).await.unwrap();
    slice["endpoints"] = headless_slice(&[("10.42.0.7", "db-2")])["endpoints"].clone();
    client.replace(&format!("{SLICES}/db-abc"), &slice).await.unwrap();
    let took = wait_for("db's new endpoint", Duration::from_secs(2), || async {
        data(&ask(dns_addr, "db.default.svc.cluster.local.", RecordType::A, false).await.answers)
            == ["10.42.0.7"]
    })
    .await;
    println!("[dns] an endpoint change answered within {} ms", took.as_millis());
    client.delete(&format!("{SERVICES}/web"), &json!({})).await.unwrap();
    let took = wait_for("web to be gone", Duration::from_secs(2), || async {
        ask(dns_addr, "web.default.svc.cluster.local.", RecordType::A, false).await.metadata.response_code
            == ResponseCode::NXDomain
    })
    .await;
    println!("[dns] a deleted Service NXDOMAIN within {} ms", took.as_millis());
    assert_eq!(
        upstream_seen.load(std::sync::atomic::Ordering::Relaxed),
        before + 2,
        "cluster names were forwarded"
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_upstreams_failing_is_servfail() {
    let (_server, client) = api_server();
    // A port nobody answers on.
    let dead = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let port = free_port();
    let mut cfg = loopback_config(port, dead);
    cfg.upstream_timeout = Duration::from_millis(300);
    let task = tokio::spawn(dns::run(client, cfg));
    let dns_addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(dns_addr).await;
    wait_for("the server", Duration::from_secs(5), || async {
        ask(dns_addr, "cluster.local.", RecordType::SOA, false).await.metadata.response_code
            == ResponseCode::NoError
    })
    .await;
    let m = ask(dns_addr, "www.example.", RecordType::A, false).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    task.abort();
}

const CHILD_ENV: &str = "LICHEN_DNS_NETNS_CHILD";

/// Runs `node_local_child` inside a fresh network namespace (this test
/// binary again, under `ip netns exec`).
#[test]
fn node_local_address_on_a_dummy_interface() {
    if !is_root() {
        eprintln!("skipped: not root");
        return;
    }
    if !Command::new("ip").arg("-V").output().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: `ip` does not run");
        return;
    }
    let ns = Netns(format!("lnd{}", std::process::id()));
    let _ = Command::new("ip").args(["netns", "del", &ns.0]).output();
    assert!(Command::new("ip").args(["netns", "add", &ns.0]).status().unwrap().success());
    assert!(Command::new("ip").args(["-n", &ns.0, "link", "set", "lo", "up"]).status().unwrap().success());
    let probe =
        Command::new("ip").args(["-n", &ns.0, "link", "add", "probe", "type", "dummy"]).output().unwrap();
    if !probe.status.success() {
        eprintln!(
            "skipped: the kernel makes no dummy interfaces ({})",
            String::from_utf8_lossy(&probe.stderr).trim()
        );
        return;
    }
    let _ = Command::new("ip").args(["-n", &ns.0, "link", "del", "probe"]).output();
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(exe)
        .args(["--exact", "node_local_child", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success() && text.contains("1 passed"), "the child failed");
    assert!(text.contains("[dns] node-local child ok"), "the child did not run its checks");
}

#[test]
#[ignore = "run by node_local_address_on_a_dummy_interface inside its network namespace"]
fn node_local_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        eprintln!("skipped: only runs inside the namespace its parent test makes");
        return;
    }
    let _ = tracing_subscriber::fmt().with_test_writer().with_max_level(tracing::Level::INFO).try_init();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(
        async {
            let (_server, client) = api_server();
            let mut cfg = Config::new(dns::DEFAULT_ADDRESS, "cluster.local");
            cfg.upstream = vec![];
            assert!(cfg.manage_interface);
            let task = tokio::spawn(dns::run(client.clone(), cfg.clone()));
            dns::ensure_service(&client, dns::DEFAULT_ADDRESS).await.unwrap();
            let addr = SocketAddr::from((dns::DEFAULT_ADDRESS, 53));
            wait_for("kube-dns over 10.43.0.10:53", Duration::from_secs(10), || async {
                let s = UdpSocket::bind("0.0.0.0:0").await.unwrap();
                // Unreachable until the address is there.
                if s.connect(addr).await.is_err() {
                    return false;
                }
                let _ =
                    s.send(&query_bytes(7, "kube-dns.kube-system.svc.cluster.local.", RecordType::A)).await;
                let mut buf = vec![0u8; 1500];
                match tokio::time::timeout(Duration::from_millis(300), s.recv(&mut buf)).await {
                    Ok(Ok(n)) => data(&Message::from_vec(&buf[..n]).unwrap().answers) == ["10.43.0.10"],
                    _ => false,
                }
            })
            .await;
            let m = ask(addr, "kube-dns.kube-system.svc.cluster.local.", RecordType::A, true).await;
            assert_eq!(data(&m.answers), ["10.43.0.10"], "over TCP");
            let link = Command::new("ip").args(["-o", "addr", "show", "dev", "lichen-dns"]).output().unwrap();
            let link = String::from_utf8_lossy(&link.stdout);
            assert!(link.contains("inet 10.43.0.10/32"), "{link}");
            let kind = Command::new("ip").args(["-d", "link", "show", "lichen-dns"]).output().unwrap();
            assert!(String::from_utf8_lossy(&kind.stdout).contains("dummy"));
            // Idempotent: nothing to change the second time.
            assert!(!dns::link::ensure("lichen-dns", dns::DEFAULT_ADDRESS).await.unwrap());
            // The address removed by hand comes back.
            assert!(
                Command::new("ip")
                    .args(["addr", "del", "10.43.0.10/32", "dev", "lichen-dns"])
                    .status()
                    .unwrap()
                    .success()
            );
            assert!(dns::link::ensure("lichen-dns", dns::DEFAULT_ADDRESS).await.unwrap());
            let m = ask(addr, "kube-dns.kube-system.svc.cluster.local.", RecordType::A, false).await;
            assert_eq!(data(&m.answers), ["10.43.0.10"], "the bound socket answers again");
            task.abort();
            println!("[dns] node-local child ok");
        },
    );
}

/// 1,000 Services, then concurrent UDP clients for ~5 s per kind of
/// name; prints queries per second and latency percentiles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --ignored --nocapture"]
async fn measure_dns_queries() {
    let (_server, client) = api_server();
    let (upstream, _) = fake_upstream().await;
    let port = free_port();
    let dns_addr = SocketAddr::from(([127, 0, 0, 1], port));
    tokio::spawn(dns::run(client.clone(), loopback_config(port, upstream)));
    wait_listening(dns_addr).await;
    let t = Instant::now();
    for i in 0..1000 {
        client
            .create(
                SERVICES,
                &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": format!("svc-{i}"), "namespace": "default"},
                        "spec": {"ports": [{"name": "http", "port": 80}]}}),
            )
            .await
            .unwrap();
    }
    println!("[dns] 1000 Services created in {} ms", t.elapsed().as_millis());
    wait_for("the last Service", Duration::from_secs(10), || async {
        ask(dns_addr, "svc-999.default.svc.cluster.local.", RecordType::A, false).await.answers.len() == 1
    })
    .await;
    const CLIENTS: usize = 16;
    for (what, name_of) in [
        (
            "cluster names",
            (|i: usize| format!("svc-{}.default.svc.cluster.local.", i % 1000)) as fn(usize) -> String,
        ),
        ("NXDOMAIN", |i: usize| format!("missing-{i}.default.svc.cluster.local.")),
        ("forwarded", |i: usize| format!("host-{}.example.", i % 1000)),
    ] {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            tasks.push(tokio::spawn(async move {
                let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                s.connect(dns_addr).await.unwrap();
                let mut lat = Vec::new();
                let mut buf = vec![0u8; 1500];
                let mut i = c * 7919;
                while Instant::now() < deadline {
                    let id = u16::try_from(i & 0xffff).unwrap();
                    let q = query_bytes(id, &name_of(i), RecordType::A);
                    let t = Instant::now();
                    s.send(&q).await.unwrap();
                    let n = tokio::time::timeout(Duration::from_secs(2), s.recv(&mut buf))
                        .await
                        .unwrap()
                        .unwrap();
                    lat.push(t.elapsed());
                    let m = Message::from_vec(&buf[..n]).unwrap();
                    assert_eq!(m.metadata.id, id);
                    i += 1;
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        let pct = |p: usize| all[(all.len() * p / 100).min(all.len() - 1)];
        println!(
            "[dns] {what}: {} queries by {CLIENTS} UDP clients in 5 s: {:.0} q/s, p50 {:?}, p99 {:?}",
            all.len(),
            all.len() as f64 / 5.0,
            pct(50),
            pct(99)
        );
    }
}
