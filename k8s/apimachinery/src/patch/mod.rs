//! The three patch formats kubectl and clients send.

pub mod meta;
