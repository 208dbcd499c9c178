//! The services PID 1 supervises, one module each.

pub mod console;
pub mod containerd;
pub mod lichen;

/// PATH for services: the rootfs keeps programs in the usual places.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
