//! Calls to an app by its name on a Swarm (a worker calling
//! `http://api:8080`). The app's colors answer to no name, as on one host
//! (`cutover-core`'s `resolve/app_calls.rs` says why); its *gateway*
//! does: a small service that carries the app's names on its networks and
//! relays each connection, byte for byte, to an edge, which routes it to
//! the live color like any other request: health-gated, switched on every
//! node together, drained.
//!
//! ```text
//!   caller ──api:8080──▶ gateway task ──PROXY v2 header (route, caller)──▶ edge :26092 ──▶ live color's task
//!          (Docker DNS: the gateway's tasks) + the connection's bytes      (pinned to the route)
//! ```
//!
//! Lifecycle of one relayed connection:
//!
//! ```text
//!   accepted by the gateway ──no edge answers──▶ closed
//!        │
//!        └─connected to an edge──header sent──▶ relayed ──either side closes──▶ closed
//!   accepted by the edge ──no header within HEADER_TIMEOUT, or a bad one──▶ closed
//!        │
//!        └─header read──▶ served as a connection pinned to the route (ports.rs)
//! ```
//!
//! The header is the PROXY protocol v2 (HAProxy's, which any load
//! balancer speaks), with the route in a TLV of the range the protocol
//! leaves to applications, so the edge routes by route name, whatever the
//! Host, and logs the caller's address rather than the gateway's.

mod header;
mod listen;
mod relay;

pub(crate) use listen::spawn as listen;
pub use relay::{relay, RelaySettings};
