//! The cluster zone as data: every record the kubernetes plugin of
//! CoreDNS would serve for a set of Services and EndpointSlices (DNS
//! schema 1.1.0), built at once into maps from lowercase names to
//! records, and the answer to one question. Pure: no I/O.
//!
//! What it serves (`<base>` = `<svc>.<ns>.svc.<zone>`):
//! - `<base>` A/AAAA: the cluster IPs; for headless Services the address
//!   of every ready endpoint (every endpoint with
//!   `publishNotReadyAddresses`), and `<hostname>.<base>` for each
//!   endpoint, its `hostname` or else its address with dashes;
//! - `<base>` SRV for every port and `_<port>._<proto>.<base>` for named
//!   ports, to `<base>` (cluster IP) or to each endpoint's name (headless),
//!   with the targets' addresses as additional records;
//! - `<base>` CNAME `spec.externalName` for ExternalName Services;
//! - PTR for cluster IPs and headless endpoint addresses;
//! - `<a-b-c-d>.<ns>.pod.<zone>` A a.b.c.d (`pods insecure`);
//! - the zone's SOA and NS, `dns-version.<zone>` TXT.
//!
//! Names that exist with other types, and the branches above them
//! (`<ns>.svc.<zone>`, `svc.<zone>`, `_tcp.<base>`), answer NODATA;
//! other names in the zone NXDOMAIN, both with the SOA. It does not
//! verify pod names against Pods, serve wildcards or federation names.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::Value;

/// What the index says about one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Answered here (authoritative for the cluster zone and for the
    /// reverse names it knows).
    Local(Response),
    /// Not ours: ask the upstream resolvers.
    Forward,
}

/// An authoritative answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub code: ResponseCodeEq,
    pub answers: Vec<Record>,
    /// The SOA, for NXDOMAIN and NODATA.
    pub authority: Vec<Record>,
    pub additionals: Vec<Record>,
    /// An ExternalName's target outside the zone, for the caller to
    /// resolve upstream and append.
    pub follow: Option<Name>,
}

/// `ResponseCode` with a default (NOERROR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseCodeEq(pub ResponseCode);

impl Default for ResponseCodeEq {
    fn default() -> Self {
        ResponseCodeEq(ResponseCode::NoError)
    }
}

/// The schema version served at `dns-version.<zone>`.
const SCHEMA_VERSION: &str = "1.1.0";

/// The records of the cluster zone.
#[derive(Debug)]
pub struct Index {
    /// The zone, lowercase, with the trailing dot (`cluster.local.`).
    zone: String,
    records: HashMap<String, Vec<Record>>,
    /// Every name that has records or names below it, up to the zone.
    branches: HashSet<String>,
    /// PTR records by reverse name.
    reverse: HashMap<String, Vec<Record>>,
    soa: Record,
    ttl: u32,
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// `name` lowercased, as an absolute name string (`a.b.`).
pub fn key(name: &str) -> String {
    let mut k = name.to_ascii_lowercase();
    if !k.ends_with('.') {
        k.push('.');
    }
    k
}

fn name(s: &str) -> Option<Name> {
    Name::from_ascii(key(s)).ok()
}

/// `d.c.b.a.in-addr.arpa.` (or the nibbles of an IPv6 address).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::new();
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s + "ip6.arpa."
        }
    }
}

/// An endpoint's DNS label when it has no hostname: its address with
/// dashes (`10-42-0-5`), as CoreDNS.
fn dashed(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

fn address(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// A headless Service's endpoint.
struct Endpoint {
    ip: IpAddr,
    label: String,
}

/// A port as DNS names it: (name, lowercase protocol, number).
type Port = (String, String, u16);

fn port_of(p: &Value) -> Option<Port> {
    let number = p["port"].as_u64().and_then(|n| u16::try_from(n).ok()).filter(|n| *n != 0)?;
    let proto = p["protocol"].as_str().unwrap_or("TCP").to_ascii_lowercase();
    Some((p["name"].as_str().unwrap_or("").to_ascii_lowercase(), proto, number))
}

struct Builder {
    zone: String,
    ttl: u32,
    records: HashMap<String, Vec<Record>>,
    branches: HashSet<String>,
    reverse: HashMap<String, Vec<Record>>,
}

impl Builder {
    /// Adds `rdata` at `owner` (a lowercase absolute name in the zone)
    /// and marks `owner` and its ancestors up to the zone as existing.
    fn add(&mut self, owner: &str, rdata: RData) {
        let Some(n) = name(owner) else { return };
        let list = self.records.entry(owner.to_owned()).or_default();
        let record = Record::from_rdata(n, self.ttl, rdata);
        if !list.contains(&record) {
            list.push(record);
        }
        self.branch(owner);
    }

    /// Marks `owner` and its ancestors up to the zone as existing.
    fn branch(&mut self, owner: &str) {
        let mut rest = owner;
        while rest.len() >= self.zone.len() && self.branches.insert(rest.to_owned()) {
            match rest.split_once('.') {
                Some((_, tail)) if !tail.is_empty() => rest = tail,
                _ => break,
            }
        }
    }

    fn ptr(&mut self, ip: IpAddr, target: &str) {
        let (Some(owner), Some(target)) = (name(&reverse_name(ip)), name(target)) else { return };
        let list = self.reverse.entry(reverse_name(ip)).or_default();
        let record = Record::from_rdata(owner, self.ttl, RData::PTR(PTR(target)));
        if !list.contains(&record) {
            list.push(record);
        }
    }

    fn srv(&mut self, owner: &str, port: u16, target: &str) {
        if let Some(t) = name(target) {
            self.add(owner, RData::SRV(SRV::new(0, 100, port, t)));
        }
    }

    /// One Service's records.
    fn service(&mut self, svc: &Value, endpoints: &HashMap<(String, String), SliceData>) {
        let ns = str_at(svc, "/metadata/namespace").to_ascii_lowercase();
        let svc_name = str_at(svc, "/metadata/name").to_ascii_lowercase();
        if ns.is_empty() || svc_name.is_empty() {
            return;
        }
        let base = format!("{svc_name}.{ns}.svc.{}", self.zone);
        self.branch(&base);
        let spec = &svc["spec"];
        if spec["type"].as_str() == Some("ExternalName") {
            if let Some(target) = spec["externalName"].as_str().and_then(name) {
                self.add(&base, RData::CNAME(CNAME(target)));
            }
            return;
        }
        let ports: Vec<Port> = spec["ports"].as_array().into_iter().flatten().filter_map(port_of).collect();
        let cluster_ip = str_at(svc, "/spec/clusterIP");
        if cluster_ip == "None" {
            let Some(data) = endpoints.get(&(ns.clone(), svc_name.clone())) else { return };
            let publish_not_ready = spec["publishNotReadyAddresses"].as_bool() == Some(true);
            let eps: Vec<&Endpoint> =
                data.ready.iter().chain(data.not_ready.iter().filter(|_| publish_not_ready)).collect();
            for ep in &eps {
                let ep_name = format!("{}.{base}", ep.label);
                let rdata = address(ep.ip);
                self.add(&base, rdata.clone());
                self.add(&ep_name, rdata);
                self.ptr(ep.ip, &ep_name);
                for (pname, proto, number) in &data.ports {
                    self.srv(&base, *number, &ep_name);
                    if !pname.is_empty() {
                        self.srv(&format!("_{pname}._{proto}.{base}"), *number, &ep_name);
                    }
                }
            }
            return;
        }
        let mut ips: Vec<IpAddr> = spec["clusterIPs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|ip| ip.as_str()?.parse().ok())
            .collect();
        if let Ok(ip) = cluster_ip.parse::<IpAddr>()
            && !ips.contains(&ip)
        {
            ips.insert(0, ip);
        }
        if ips.is_empty() {
            return;
        }
        for ip in ips {
            self.add(&base, address(ip));
            self.ptr(ip, &base);
        }
        for (pname, proto, number) in &ports {
            self.srv(&base, *number, &base);
            if !pname.is_empty() {
                self.srv(&format!("_{pname}._{proto}.{base}"), *number, &base);
            }
        }
    }

    /// SRV weights shared out as CoreDNS: 100 / records in the set.
    fn weigh(&mut self) {
        for list in self.records.values_mut() {
            let n = list.iter().filter(|r| r.record_type() == RecordType::SRV).count();
            if n < 2 {
                continue;
            }
            let weight = u16::try_from((100 / n).max(1)).unwrap_or(1);
            for r in list.iter_mut() {
                if let RData::SRV(srv) = &mut r.data {
                    srv.weight = weight;
                }
            }
        }
    }
}

/// Endpoints of one Service, from all its EndpointSlices.
#[derive(Default)]
struct SliceData {
    ready: Vec<Endpoint>,
    not_ready: Vec<Endpoint>,
    ports: Vec<Port>,
}

fn slices_by_service(slices: &[Value]) -> HashMap<(String, String), SliceData> {
    let mut out: HashMap<(String, String), SliceData> = HashMap::new();
    for slice in slices {
        if !matches!(slice["addressType"].as_str(), Some("IPv4" | "IPv6")) {
            continue;
        }
        let ns = str_at(slice, "/metadata/namespace").to_ascii_lowercase();
        let svc = str_at(slice, "/metadata/labels/kubernetes.io~1service-name").to_ascii_lowercase();
        if svc.is_empty() {
            continue;
        }
        let data = out.entry((ns, svc)).or_default();
        for p in slice["ports"].as_array().into_iter().flatten().filter_map(port_of) {
            if !data.ports.contains(&p) {
                data.ports.push(p);
            }
        }
        for ep in slice["endpoints"].as_array().into_iter().flatten() {
            let hostname = ep["hostname"].as_str().map(str::to_ascii_lowercase);
            // Unset `ready` means ready, as upstream.
            let ready = ep["conditions"]["ready"].as_bool().unwrap_or(true);
            for ip in
                ep["addresses"].as_array().into_iter().flatten().filter_map(|a| a.as_str()?.parse().ok())
            {
                let label = hostname.clone().unwrap_or_else(|| dashed(ip));
                let list = if ready { &mut data.ready } else { &mut data.not_ready };
                if !list.iter().any(|e| e.ip == ip) {
                    list.push(Endpoint { ip, label });
                }
            }
        }
    }
    out
}

impl Index {
    /// The zone `zone` (`cluster.local`) for these Services and
    /// EndpointSlices, with records of `ttl` seconds; `dns_ip` is this
    /// server's address (the zone's NS).
    pub fn build(
        zone: &str,
        ttl: u32,
        dns_ip: Ipv4Addr,
        services: &[Value],
        slices: &[Value],
        serial: u32,
    ) -> Index {
        let zone = key(zone);
        let mut b = Builder {
            zone: zone.clone(),
            ttl,
            records: HashMap::new(),
            branches: HashSet::new(),
            reverse: HashMap::new(),
        };
        let ns_name = format!("ns.dns.{zone}");
        let (soa_name, mname, rname) = (name(&zone), name(&ns_name), name(&format!("hostmaster.{zone}")));
        let (Some(soa_name), Some(mname), Some(rname)) = (soa_name, mname, rname) else {
            // An invalid zone: serve nothing in it (the root SOA stands in).
            let soa = Record::from_rdata(
                Name::root(),
                ttl,
                RData::SOA(SOA::new(Name::root(), Name::root(), serial, 7200, 1800, 86400, ttl)),
            );
            return Index {
                zone,
                records: HashMap::new(),
                branches: HashSet::new(),
                reverse: HashMap::new(),
                soa,
                ttl,
            };
        };
        let soa = Record::from_rdata(
            soa_name,
            ttl,
            RData::SOA(SOA::new(mname.clone(), rname, serial, 7200, 1800, 86400, ttl)),
        );
        b.add(&zone, RData::NS(NS(mname)));
        b.add(&ns_name, RData::A(A(dns_ip)));
        b.add(&format!("dns-version.{zone}"), RData::TXT(TXT::new(vec![SCHEMA_VERSION.into()])));
        b.branch(&format!("svc.{zone}"));
        b.branch(&format!("pod.{zone}"));
        let eps = slices_by_service(slices);
        for svc in services {
            b.service(svc, &eps);
        }
        b.weigh();
        let mut records = b.records;
        records.entry(zone.clone()).or_default().push(soa.clone());
        Index { zone, records, branches: b.branches, reverse: b.reverse, soa, ttl }
    }

    /// The zone, lowercase with the trailing dot.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// Is `qname` (lowercase absolute) the zone or in it?
    pub fn in_zone(&self, qname: &str) -> bool {
        qname == self.zone || qname.strip_suffix(self.zone.as_str()).is_some_and(|h| h.ends_with('.'))
    }

    /// Names of the zone with records (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The answer to `qname` (any case, absolute or not) of type `qtype`.
    pub fn answer(&self, qname: &str, qtype: RecordType) -> Answer {
        let qname = key(qname);
        if !self.in_zone(&qname) {
            if let Some(ptrs) = self.reverse.get(&qname) {
                let answers =
                    if matches!(qtype, RecordType::PTR | RecordType::ANY) { ptrs.clone() } else { vec![] };
                let authority = if answers.is_empty() { vec![self.soa.clone()] } else { vec![] };
                return Answer::Local(Response { answers, authority, ..Response::default() });
            }
            return Answer::Forward;
        }
        if let Some(records) = self.records.get(&qname) {
            let answers: Vec<Record> = records
                .iter()
                .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
                .cloned()
                .collect();
            if !answers.is_empty() {
                let additionals = self.additionals(&answers);
                return Answer::Local(Response { answers, additionals, ..Response::default() });
            }
            if let Some(cname) = records.iter().find(|r| r.record_type() == RecordType::CNAME) {
                return Answer::Local(self.follow_cname(cname, qtype));
            }
            return Answer::Local(self.nodata());
        }
        if self.branches.contains(&qname) {
            return Answer::Local(self.nodata());
        }
        if let Some(ip) = self.pod_ip(&qname) {
            if matches!(qtype, RecordType::A | RecordType::ANY)
                && let Some(owner) = name(&qname)
            {
                return Answer::Local(Response {
                    answers: vec![Record::from_rdata(owner, self.ttl, RData::A(A(ip)))],
                    ..Response::default()
                });
            }
            return Answer::Local(self.nodata());
        }
        // `<ns>.pod.<zone>` exists for every namespace with `pods insecure`.
        if qname.strip_suffix(&format!(".pod.{}", self.zone)).is_some_and(|ns| !ns.contains('.')) {
            return Answer::Local(self.nodata());
        }
        Answer::Local(Response {
            code: ResponseCodeEq(ResponseCode::NXDomain),
            authority: vec![self.soa.clone()],
            ..Response::default()
        })
    }

    fn nodata(&self) -> Response {
        Response { authority: vec![self.soa.clone()], ..Response::default() }
    }

    /// The CNAME, then the target's records when they are in the zone, or
    /// a note to resolve the target upstream.
    fn follow_cname(&self, cname: &Record, qtype: RecordType) -> Response {
        let mut resp = Response { answers: vec![cname.clone()], ..Response::default() };
        let RData::CNAME(CNAME(target)) = &cname.data else { return resp };
        let tkey = key(&target.to_ascii());
        if !self.in_zone(&tkey) {
            resp.follow = Some(target.clone());
            return resp;
        }
        if let Some(records) = self.records.get(&tkey) {
            resp.answers.extend(records.iter().filter(|r| r.record_type() == qtype).cloned());
        }
        resp
    }

    /// Addresses of SRV targets in the zone.
    fn additionals(&self, answers: &[Record]) -> Vec<Record> {
        let mut out: Vec<Record> = Vec::new();
        for r in answers {
            let RData::SRV(srv) = &r.data else { continue };
            let Some(records) = self.records.get(&key(&srv.target.to_ascii())) else { continue };
            for a in records.iter().filter(|a| matches!(a.record_type(), RecordType::A | RecordType::AAAA)) {
                if !out.contains(a) {
                    out.push(a.clone());
                }
            }
        }
        out
    }

    /// `a-b-c-d.<ns>.pod.<zone>` -> a.b.c.d.
    fn pod_ip(&self, qname: &str) -> Option<Ipv4Addr> {
        let rest = qname.strip_suffix(&format!(".pod.{}", self.zone))?;
        let (label, ns) = rest.split_once('.')?;
        if ns.is_empty() || ns.contains('.') {
            return None;
        }
        label.replace('-', ".").parse().ok()
    }

    /// The SOA record of the zone.
    pub fn soa(&self) -> &Record {
        &self.soa
    }
}
