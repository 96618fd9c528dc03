//! cutover's data plane and control API.
//!
//! [`Proxy`] is the one handle the rest of the daemon holds: the data listener
//! serves through it, the control API calls `deploy`/`remove`/`status` on it and
//! the deploy engine waits on its events to know when an old color is drained.
#![forbid(unsafe_code)]

mod acceptor;
mod access_log;
pub mod admin;
mod body;
mod context;
mod drain;
pub mod gateway;
mod handle;
mod health;
mod https;
mod maintenance;
mod metrics;
mod operation_metrics;
mod ports;
mod preface;
mod prepare;
mod proxy;
mod router;
mod server;
mod service;
mod stage;
pub mod state;
mod target;
mod upstream;
mod websocket;
mod worker;

pub use context::ProxyConfig;
pub use handle::{DeployError, Proxy, RestoreError};
pub use operation_metrics::OperationMetrics;
pub use prepare::PREPARED_TTL;
