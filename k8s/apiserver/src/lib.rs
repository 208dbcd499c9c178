//! lichen-apiserver: the Kubernetes API server of `lichen server`.
//!
//! It owns HTTP: TLS (rustls, ring), the accept loop (hyper, HTTP/1.1 and
//! HTTP/2, as client-go speaks both), routing, authentication (client
//! certificates, bearer tokens, service-account tokens), RBAC authorization,
//! and the Kubernetes resource semantics (discovery, CRUD, lists, watches,
//! patches, Tables) on
//! top of [`lichen_store::Store`]. The API's rules without I/O live in
//! lichen-apimachinery. It must not touch SQLite or any storage detail below
//! the `Store` trait, and it never runs controllers or the agent.
#![forbid(unsafe_code)]

pub mod api;
pub mod apply;
pub mod authn;
pub mod authz;
pub mod binding;
pub mod body;
pub mod bootstrap;
pub mod crds;
pub mod crud;
pub mod defaults;
pub mod discovery;
pub mod eviction;
pub mod finalizers;
pub mod gc;
pub mod health;
pub mod jointokens;
pub mod lifecycle;
pub mod list;
pub mod managed;
pub mod nodeproxy;
pub mod objects;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod rbac;
pub mod request;
pub mod reviews;
pub mod satokens;
pub mod scale;
pub mod selectors;
pub mod serve;
pub mod services;
pub mod status;
pub mod table;
pub mod tls;
pub mod tokens;
pub mod validate;
pub mod version;
pub mod watch;

pub use authn::Identity;
pub use nodeproxy::KubeletClient;
pub use serve::{Options, ServeError, Server};
