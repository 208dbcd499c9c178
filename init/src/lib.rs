//! lichen-init: Lichen's PID 1, one static binary for both boot stages.
//!
//! Stage 1 (`/init` in the initramfs) finds and mounts the slot's root and
//! DATA, stage 2 (`/sbin/init`) brings up the system (clock, network,
//! cluster secrets) and supervises containerd and the `lichen` Kubernetes
//! process. It must never link
//! Kubernetes code, never exit, and never leave the device without a way in:
//! when an essential step fails it says why and opens a rescue shell.
//!
//! Every system-changing kernel call goes through [`sys::Kernel`] so the
//! logic is tested with a recording fake; `unsafe` lives only in `sys` and
//! `net::link`.

pub mod boot;
pub mod clock;
pub mod cmdline;
pub mod config;
pub mod disks;
pub mod grow;
pub mod log;
pub mod modules;
pub mod net;
pub mod powerbutton;
pub mod rescue;
pub mod secrets;
pub mod services;
pub mod shutdown;
pub mod stage1;
pub mod stage2;
pub mod status;
pub mod supervisor;
pub mod sys;
pub mod sysctl;
