//! What only a Swarm can say; the engine's own errors are the Docker
//! adapter's [`EngineError`].

use std::time::Duration;

use cutover_core::diag::Diagnose;
use cutover_docker::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    #[error(transparent)]
    Engine(#[from] EngineError),

    /// The engine answers but is not part of a swarm.
    #[error("the Docker engine at {host} is not in a swarm (its swarm state is {state})")]
    NotInSwarm { host: String, state: String },

    /// Services are made on managers; a worker's engine refuses them.
    #[error("the Docker engine at {host} is a swarm worker (node {node}), not a manager")]
    NotAManager { host: String, node: String },

    /// A task of the service ended in failure while cutover waited for it to
    /// run; the scheduler would only try again the same way.
    #[error("task {task} of service {service} {state} on node {node}: {message}")]
    TaskFailed {
        service: String,
        task: String,
        /// Its hostname (its id when the nodes could not be listed).
        node: String,
        state: &'static str,
        message: String,
    },

    #[error(
        "gave up after {after:?} waiting for service {service}: {running} of {wanted} tasks running{}",
        pending.as_deref().map(|p| format!("; a task waits: {p}")).unwrap_or_default()
    )]
    NotConverged {
        service: String,
        running: usize,
        wanted: usize,
        after: Duration,
        /// What the scheduler says of a task still on its way
        /// ("no suitable node (...)").
        pending: Option<String>,
    },

    /// A rolling update ([`crate::Cluster::update_service`]) that the
    /// engine stopped or rolled back, or that did not end in time.
    #[error("the update of service {service} did not complete: {why}")]
    UpdateFailed { service: String, why: String },

    /// The service was removed while cutover waited on it.
    #[error("service {0} is gone")]
    Gone(String),
}

impl Diagnose for SwarmError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            SwarmError::Engine(e) => return e.hint(),
            SwarmError::NotInSwarm { .. } => {
                "run `docker swarm init` on the node that will manage \
                the cluster (docs/swarm.md), or run cutover with --engine docker for one host"
                    .into()
            }
            SwarmError::NotAManager { .. } => {
                "point cutover at a manager's engine: `docker node ls` on a manager lists them"
                    .into()
            }
            SwarmError::TaskFailed { service, .. } => {
                format!("`docker service ps --no-trunc {service}` on a manager shows every attempt")
            }
            SwarmError::UpdateFailed { service, .. } => format!(
                "`docker service ps --no-trunc {service}` on a manager shows why its new tasks failed; the engine keeps the tasks it had"
            ),
            SwarmError::Gone(_) => "something else removed it; run the command again".into(),
            SwarmError::NotConverged { service, .. } => format!(
                "`docker service ps --no-trunc {service}` says where each task is; a task that \
                 waits for a node needs one that has the image, the resources and matches the \
                 placement"
            ),
        })
    }

    fn detail(&self) -> Option<String> {
        match self {
            SwarmError::Engine(e) => e.detail(),
            _ => None,
        }
    }
}

impl From<SwarmError> for cutover_core::diag::Report {
    fn from(e: SwarmError) -> Self {
        e.report()
    }
}
