//! The rules of the Kubernetes API, with no I/O: which resources exist,
//! label and field selectors, the three patch formats, the Table columns
//! `kubectl get` prints, the OpenAPI schemas, `metav1.Status` errors, and
//! how container logs in the CRI format are served (over std's `Read`/`Write`
//! traits; the caller opens the files).
//!
//! Objects are `serde_json::Value`s so one code path serves built-in kinds
//! and custom resources alike. This crate must not touch the network, the
//! clock (callers pass `now`), or the datastore: that is lichen-apiserver's
//! job.

#![forbid(unsafe_code)]

pub mod crd;
pub mod crilog;
pub mod cron;
pub mod events;
pub mod fieldpath;
pub mod gofmt;
pub mod openapi;
pub mod patch;
pub mod printers;
pub mod protobuf;
pub mod quantity;
pub mod resources;
pub mod selector;
pub mod timestamp;
