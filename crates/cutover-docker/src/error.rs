//! What can go wrong talking to the engine, sorted by what the caller can do
//! about it.

use std::time::Duration;

use cutover_core::diag::Diagnose;

/// The kind of engine object an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Container,
    Network,
    Volume,
    Image,
    Exec,
    Engine,
    /// Swarm mode's objects, for the Swarm adapter (`cutover-swarm`).
    Node,
    Service,
    Task,
    Secret,
    Config,
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ObjectKind::Container => "container",
            ObjectKind::Network => "network",
            ObjectKind::Volume => "volume",
            ObjectKind::Image => "image",
            ObjectKind::Exec => "exec",
            ObjectKind::Engine => "engine",
            ObjectKind::Node => "node",
            ObjectKind::Service => "service",
            ObjectKind::Task => "task",
            ObjectKind::Secret => "secret",
            ObjectKind::Config => "config",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{kind} {name} not found: {message}")]
    NotFound {
        kind: ObjectKind,
        name: String,
        message: String,
    },

    #[error("{kind} {name}: conflict: {message}")]
    Conflict {
        kind: ObjectKind,
        name: String,
        message: String,
    },

    #[error("cannot reach the Docker engine at {host}: {message}")]
    Unreachable { host: String, message: String },

    #[error("Docker engine refused to {action} {kind} {name} (HTTP {status}): {message}")]
    Api {
        action: &'static str,
        kind: ObjectKind,
        name: String,
        status: u16,
        message: String,
    },

    /// An error that is not an answer of the engine: a broken stream, a body
    /// that did not decode.
    #[error("{action} {kind} {name} failed: {message}")]
    Transport {
        action: &'static str,
        kind: ObjectKind,
        name: String,
        message: String,
    },

    #[error("pulling image {image} failed: {message}")]
    Pull { image: String, message: String },

    #[error("building image {tag} failed: {message}")]
    Build {
        tag: String,
        message: String,
        /// The last lines the builder printed before failing.
        log_tail: Vec<String>,
    },

    #[error("build context {path}: {message}")]
    Context { path: String, message: String },

    /// Removing a network would cut containers cutover does not own.
    #[error(
        "network {network} is still used by containers cutover does not manage for \
         project {project}: {}",
        containers.join(", ")
    )]
    NetworkInUse {
        network: String,
        project: String,
        containers: Vec<String>,
    },

    #[error("container {name} has no healthcheck to wait for")]
    NoHealthcheck { name: String },

    #[error("container {name} is unhealthy{}", last_output(output))]
    Unhealthy {
        name: String,
        output: Option<String>,
    },

    /// The container is not running (never started, exited, dead) while
    /// something waits for it to become healthy.
    #[error(
        "container {name} is not running ({state}{}), so it cannot become healthy",
        exit_suffix(exit_code)
    )]
    NotRunning {
        name: String,
        state: &'static str,
        exit_code: Option<i64>,
    },

    #[error("gave up waiting after {after:?} for {what}{}", last_output(output))]
    Timeout {
        what: String,
        after: Duration,
        output: Option<String>,
    },

    #[error("container {name} cannot be reached on port {port}: {reason}")]
    NotReachable {
        name: String,
        port: u16,
        reason: String,
        hint: Option<String>,
    },

    #[error("invalid container spec for {name}: {message}")]
    InvalidSpec { name: String, message: String },
}

fn last_output(output: &Option<String>) -> String {
    match output {
        Some(out) if !out.trim().is_empty() => format!("; last healthcheck output: {}", out.trim()),
        _ => String::new(),
    }
}

fn exit_suffix(code: &Option<i64>) -> String {
    code.map(|c| format!(", exit code {c}")).unwrap_or_default()
}

impl Diagnose for EngineError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            EngineError::Unreachable { .. } => "is dockerd running (`systemctl status docker`)? DOCKER_HOST selects the \
                engine (unset means unix:///var/run/docker.sock), and the socket must be \
                readable by this user"
                .into(),
            EngineError::Pull { .. } => "the engine must reach the image's registry to pull it; where no registry \
                is reachable, build the image locally or `docker load` it, and cutover uses \
                the local copy without pulling"
                .into(),
            EngineError::NetworkInUse { network, .. } => format!(
                "stop them or run `docker network disconnect {network} <container>`, then remove again"
            ),
            EngineError::NoHealthcheck { .. } => {
                "add a healthcheck to the service, or wait for readiness over HTTP instead".into()
            }
            EngineError::NotReachable { hint, .. } => return hint.clone(),
            _ => return None,
        })
    }

    fn detail(&self) -> Option<String> {
        match self {
            EngineError::Build { log_tail, .. } if !log_tail.is_empty() => {
                Some(format!("last build output:\n  {}", log_tail.join("\n  ")))
            }
            _ => None,
        }
    }
}

impl EngineError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::NotFound { .. })
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, EngineError::Conflict { .. })
    }

    pub fn is_unreachable(&self) -> bool {
        matches!(self, EngineError::Unreachable { .. })
    }

    /// Sorts a bollard error by what it means for the caller. `action`,
    /// `kind` and `name` say what was attempted, so the message names it.
    /// Public for the Swarm adapter, which shares this adapter's errors.
    pub fn from_bollard(
        err: bollard::errors::Error,
        host: &str,
        action: &'static str,
        kind: ObjectKind,
        name: &str,
    ) -> EngineError {
        use bollard::errors::Error as B;
        let name = name.to_owned();
        match err {
            B::DockerResponseServerError {
                status_code,
                message,
            } => match status_code {
                404 => EngineError::NotFound {
                    kind,
                    name,
                    message,
                },
                409 => EngineError::Conflict {
                    kind,
                    name,
                    message,
                },
                status => EngineError::Api {
                    action,
                    kind,
                    name,
                    status,
                    message,
                },
            },
            B::SocketNotFoundError(path) => EngineError::Unreachable {
                host: host.to_owned(),
                message: format!("socket {path} does not exist"),
            },
            B::HyperLegacyError { err } if err.is_connect() => EngineError::Unreachable {
                host: host.to_owned(),
                message: chain(&err),
            },
            B::IOError { err } if is_connection_io(&err) => EngineError::Unreachable {
                host: host.to_owned(),
                message: err.to_string(),
            },
            B::RequestTimeoutError => EngineError::Unreachable {
                host: host.to_owned(),
                message: format!("no answer to {action} {kind} {name} in time"),
            },
            B::UnsupportedURISchemeError { uri } => EngineError::Unreachable {
                host: host.to_owned(),
                message: format!("unsupported address {uri}"),
            },
            other => EngineError::Transport {
                action,
                kind,
                name,
                message: chain(&other),
            },
        }
    }
}

fn is_connection_io(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        NotFound | ConnectionRefused | PermissionDenied | ConnectionReset | AddrNotAvailable
    )
}

/// An error with its sources, which is where hyper keeps the useful part
/// ("Connection refused").
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

impl From<EngineError> for cutover_core::diag::Report {
    fn from(e: EngineError) -> Self {
        e.report()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_sort_into_kinds() {
        let server = |status_code| bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: "boom".into(),
        };
        let sort = |status| {
            EngineError::from_bollard(
                server(status),
                "unix:///x",
                "start",
                ObjectKind::Container,
                "c",
            )
        };
        assert!(sort(404).is_not_found());
        assert!(sort(409).is_conflict());
        match sort(500) {
            EngineError::Api {
                status, message, ..
            } => {
                assert_eq!(status, 500);
                assert_eq!(message, "boom");
            }
            other => panic!("expected Api, got {other:?}"),
        }
    }

    #[test]
    fn unreachable_message_has_a_hint() {
        let err = EngineError::from_bollard(
            bollard::errors::Error::SocketNotFoundError("/nope.sock".into()),
            "unix:///nope.sock",
            "ping",
            ObjectKind::Engine,
            "",
        );
        assert!(err.is_unreachable());
        let text = err.report().to_string();
        assert!(text.contains("unix:///nope.sock"), "{text}");
        assert!(text.contains("\nhint: is dockerd running"), "{text}");
    }

    #[test]
    fn build_error_shows_last_lines() {
        let err = EngineError::Build {
            tag: "t".into(),
            message: "exit 1".into(),
            log_tail: vec!["step 2".into(), "oops".into()],
        };
        // The lines go to the detail, which is shown indented below the error.
        assert_eq!(
            err.report().to_string(),
            "building image t failed: exit 1\n  last build output:\n    step 2\n    oops"
        );
    }
}
