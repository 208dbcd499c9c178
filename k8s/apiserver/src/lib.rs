//! lichen-apiserver: the Kubernetes API server of `lichen server`.
//!
//! It owns HTTP: TLS (rustls, ring), the accept loop (hyper, HTTP/1.1 and
//! HTTP/2, as client-go speaks both), routing (axum), and later
//! authentication, authorization and the Kubernetes resource semantics on top
//! of [`lichen_store::Store`]. It must not touch SQLite or any storage detail
//! below the `Store` trait, and it never runs controllers or the agent.
//!
//! So far: `/version`, `/healthz`, `/livez`, `/readyz`, TLS with optional
//! client certificates checked against the cluster CA.
#![forbid(unsafe_code)]

pub mod health;
pub mod serve;
pub mod tls;
pub mod version;

pub use serve::{Config, ServeError, serve};
