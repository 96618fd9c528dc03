//! Pure logic shared by the cutover daemon and CLI.
//!
//! Nothing here does IO on sockets or talks to Docker: no tokio, hyper or bollard.
//! That keeps the decisions (what routes where, what a deploy must do) testable
//! as plain functions.
#![forbid(unsafe_code)]

pub mod clock;
pub mod compose;
pub mod diag;
pub mod dot_segments;
pub mod fleet;
pub mod maintenance;
pub mod naming;
pub mod plan;
pub mod progress;
pub mod registry;
pub mod report;
pub mod route;
pub mod service;
pub mod stage;
pub mod status;
pub mod sync;
pub mod target;
pub mod tls;
pub mod token;
pub mod wire;
