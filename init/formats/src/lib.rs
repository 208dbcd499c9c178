//! On-disk formats that both the device (`lichen-init`) and the builder
//! (`lichen-image`) read and write: the GPT partition table, the A/B boot
//! environment and the user's configuration (`lichen.yaml`).
//!
//! This crate does no I/O of its own: it turns bytes into values and values
//! into bytes, so the same code runs on the build host and on the device and is
//! tested without disks. It must stay small and free of heavy dependencies,
//! because it is linked into the static PID 1.
#![forbid(unsafe_code)]

pub mod bootenv;
pub mod config;
pub mod gpt;
