//! Test support: in-process origins and clients.
#![forbid(unsafe_code)]

pub mod compose_v2;
pub mod images;

pub mod client;
pub mod origin;

pub use origin::Origin;
