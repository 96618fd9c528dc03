//! cutover's Docker Swarm adapter.
//!
//! A Swarm runs an app color as a service, `<project>_<service>_<color>`,
//! whose tasks the proxies of every node reach straight at their addresses
//! on the app's overlay networks, never through the routing mesh (it cuts
//! long-lived connections and keeps sending to tasks that are going away).
//! [`Cluster`] is what a Swarm deploy needs of the engine: the swarm and its
//! nodes, services created, scaled and removed by exact name, and each
//! service's tasks with where they run and their overlay addresses.
//! [`DockerSwarm`] talks to a manager's engine; networks, images and the
//! node's own containers stay with [`cutover_docker::DockerEngine`], which
//! it carries, and errors are the Docker adapter's [`EngineError`] or a
//! [`SwarmError`] for what only a Swarm can say.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod docker;
pub mod error;
pub mod model;
pub mod spec;
mod tasks;

pub use cluster::Cluster;
pub use cutover_docker::EngineError;
pub use docker::DockerSwarm;
pub use error::SwarmError;
pub use model::*;
pub use spec::*;
