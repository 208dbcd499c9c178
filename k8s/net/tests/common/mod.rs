//! What the host tests of lichen-net share: the real API server,
//! in-process on an in-memory store.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use lichen_client::Client;

/// An API server on a fresh in-memory store and a client of it acting as
/// `user` (a member of `system:masters`). Keep the server alive as long as
/// the client is used.
pub fn api_server(user: &str) -> (lichen_apiserver::Server, Client) {
    let store: Arc<dyn lichen_store::Store> = Arc::new(lichen_store::MemoryStore::new());
    let opts = lichen_apiserver::Options::new(lichen_apiserver::version::Info::new("0.0.0", "test"));
    let server = lichen_apiserver::Server::new(store, opts).unwrap();
    let client = Client::from_service(server.local(lichen_apiserver::Identity::master(user)));
    (server, client)
}
