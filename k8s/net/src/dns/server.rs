//! The request handler hickory-server calls for every query (UDP and
//! TCP): cluster names from the index, everything else forwarded.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use super::index::{Answer, Index, key};
use super::upstream;

/// The index once both kinds are listed (`None` before).
pub type SharedIndex = Arc<RwLock<Option<Arc<Index>>>>;

pub struct Handler {
    pub index: SharedIndex,
    pub zone: String,
    pub upstream: Arc<Vec<SocketAddr>>,
    pub timeout: Duration,
}

/// Largest UDP answer we send to EDNS clients (the DNS flag day's size).
const MAX_UDP_PAYLOAD: u16 = 1232;

/// A finished answer, whatever its source.
struct Reply {
    meta: Metadata,
    answers: Vec<Record>,
    authority: Vec<Record>,
    additionals: Vec<Record>,
}

impl Handler {
    fn index(&self) -> Option<Arc<Index>> {
        self.index.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn in_zone(&self, qname: &str) -> bool {
        qname == self.zone || qname.strip_suffix(self.zone.as_str()).is_some_and(|h| h.ends_with('.'))
    }

    async fn reply(&self, request: &Request) -> Reply {
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.recursion_available = true;
        let error = |mut meta: Metadata, code| {
            meta.response_code = code;
            Reply { meta, answers: vec![], authority: vec![], additionals: vec![] }
        };
        if request.metadata.op_code != OpCode::Query {
            return error(meta, ResponseCode::NotImp);
        }
        let Ok(info) = request.request_info() else {
            return error(meta, ResponseCode::FormErr);
        };
        let query = info.query.original().clone();
        if query.query_class() != DNSClass::IN {
            return error(meta, ResponseCode::NotImp);
        }
        let qname = key(&query.name().to_ascii());
        let local = match self.index() {
            Some(index) => index.answer(&qname, query.query_type()),
            // Not listed yet: the cluster zone cannot be answered.
            None if self.in_zone(&qname) => return error(meta, ResponseCode::ServFail),
            None => Answer::Forward,
        };
        match local {
            Answer::Local(resp) => {
                meta.authoritative = true;
                meta.response_code = resp.code.0;
                let mut answers = resp.answers;
                if let Some(target) = resp.follow {
                    answers.extend(self.resolve_external(target, query.query_type()).await);
                }
                Reply { meta, answers, authority: resp.authority, additionals: resp.additionals }
            }
            Answer::Forward => {
                match upstream::forward(
                    &self.upstream,
                    &query,
                    request.metadata.recursion_desired,
                    self.timeout,
                )
                .await
                {
                    Ok(m) => {
                        meta.response_code = m.metadata.response_code;
                        meta.authoritative = m.metadata.authoritative;
                        Reply {
                            meta,
                            answers: m.answers,
                            authority: m.authorities,
                            additionals: m.additionals,
                        }
                    }
                    Err(e) => {
                        tracing::debug!(name = %qname, error = %e, "forwarding failed");
                        error(meta, ResponseCode::ServFail)
                    }
                }
            }
        }
    }

    /// The records of an ExternalName's target, from upstream (none when
    /// it fails: the CNAME alone is still a valid answer).
    async fn resolve_external(&self, target: Name, qtype: RecordType) -> Vec<Record> {
        if matches!(qtype, RecordType::CNAME | RecordType::ANY) {
            return vec![];
        }
        match upstream::forward(&self.upstream, &Query::query(target.clone(), qtype), true, self.timeout)
            .await
        {
            Ok(m) => m.answers,
            Err(e) => {
                tracing::debug!(%target, error = %e, "resolving an ExternalName target failed");
                vec![]
            }
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut handle: R,
    ) -> ResponseInfo {
        let reply = self.reply(request).await;
        let edns = request.edns.as_ref().map(|e| {
            let mut ours = Edns::new();
            ours.set_max_payload(e.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            ours
        });
        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if let Some(e) = &edns {
            builder.edns(e);
        }
        let meta = reply.meta;
        let response = builder.build(meta, &reply.answers, &reply.authority, [], &reply.additionals);
        match handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "sending a DNS answer failed");
                let mut meta = meta;
                meta.response_code = ResponseCode::ServFail;
                let header = hickory_proto::op::Header { metadata: meta, counts: Default::default() };
                ResponseInfo::from(header)
            }
        }
    }
}
