//! cutover's Docker Engine adapter.
//!
//! [`Engine`] is what deploys use: networks, volumes, images and containers,
//! identified by the labels in [`labels`], never by name patterns.
//! [`DockerEngine`] talks to a real engine (API 1.41 and newer);
//! [`fake::FakeEngine`] keeps the same state in memory for tests of the
//! deploy logic.
#![forbid(unsafe_code)]

pub mod context;
pub mod docker;
pub mod engine;
pub mod error;
/// In-memory engine for tests of the deploy logic; not in a production
/// build (the `fake` feature, which only dev-dependencies turn on).
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod labels;
mod logs;
pub mod model;
pub mod reach;
pub mod spec;

pub use docker::DockerEngine;
pub use engine::{Engine, EngineFuture, EngineResult, LogStream};
pub use error::{EngineError, ObjectKind};
pub use labels::{LabelFilter, Role};
pub use model::*;
pub use reach::{container_address, Reachability};
pub use spec::*;
