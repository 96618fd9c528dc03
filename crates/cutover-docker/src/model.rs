//! What the engine reports back, reduced to what deploys look at.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::labels;
use crate::spec::Protocol;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// `OperatingSystem` of the engine's info, e.g. `Debian GNU/Linux 12
    /// (bookworm)` or `Docker Desktop`.
    pub operating_system: String,
    pub server_version: String,
    /// API version in use after negotiation, e.g. `1.41`.
    pub api_version: String,
}

impl EngineInfo {
    /// Docker Desktop runs containers in a VM whose bridge addresses the host
    /// cannot route to.
    pub fn is_docker_desktop(&self) -> bool {
        self.operating_system.contains("Docker Desktop")
    }
}

/// The result of an idempotent create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensured<T> {
    pub value: T,
    /// False when it already existed and was left as it was.
    pub created: bool,
}

/// The result of an idempotent removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// There was nothing to remove.
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// The host's own IPv4 address on the network (its bridge), where
    /// containers reach the daemon; `None` for drivers without one.
    pub gateway: Option<IpAddr>,
    /// Containers attached now. Only filled by inspect: the engine's list call
    /// does not report them.
    pub containers: Vec<AttachedContainer>,
}

impl NetworkInfo {
    /// Not created by cutover: a network the user made (or declared
    /// `external: true`), which cutover uses but never removes.
    pub fn is_external(&self) -> bool {
        !self.labels.contains_key(labels::PROJECT)
    }

    pub fn is_owned_by(&self, project: &str) -> bool {
        self.labels.get(labels::PROJECT).map(String::as_str) == Some(project)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedContainer {
    pub id: String,
    pub name: String,
    pub ipv4: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// `sha256:…` content id.
    pub id: String,
    pub tags: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutput {
    pub image_id: String,
    /// What the builder printed, line by line.
    pub log: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
    Unknown,
}

impl ContainerState {
    pub fn parse(state: &str) -> ContainerState {
        match state {
            "created" => ContainerState::Created,
            "running" => ContainerState::Running,
            "paused" => ContainerState::Paused,
            "restarting" => ContainerState::Restarting,
            "removing" => ContainerState::Removing,
            "exited" => ContainerState::Exited,
            "dead" => ContainerState::Dead,
            _ => ContainerState::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Removing => "removing",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
            ContainerState::Unknown => "unknown",
        }
    }

    /// Will not become healthy without a start.
    pub fn is_stopped(self) -> bool {
        matches!(
            self,
            ContainerState::Created | ContainerState::Exited | ContainerState::Dead
        )
    }
}

/// The Docker healthcheck status; `None` where the container has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    Starting,
    Healthy,
    Unhealthy,
}

/// One container as `list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    pub id: String,
    /// Without the leading `/` the engine puts there.
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    /// Human status, e.g. `Up 3 minutes (healthy)`.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    /// The image reference it was created from.
    pub image: String,
    /// The image id it runs.
    pub image_id: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    pub exit_code: Option<i64>,
    pub health: Option<HealthState>,
    /// Output of the last healthcheck run, for error messages.
    pub last_health_output: Option<String>,
    pub restart_count: i64,
    pub networks: BTreeMap<String, EndpointInfo>,
    pub ports: Vec<PublishedPort>,
}

impl ContainerInfo {
    pub fn ip_on(&self, network: &str) -> Option<IpAddr> {
        self.networks.get(network).and_then(|e| e.ip)
    }

    pub fn published(&self, container_port: u16, protocol: Protocol) -> Vec<&PublishedPort> {
        self.ports
            .iter()
            .filter(|p| p.container_port == container_port && p.protocol == protocol)
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointInfo {
    pub ip: Option<IpAddr>,
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    pub container_port: u16,
    pub protocol: Protocol,
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub source: LogSource,
    /// Without the line end.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

/// Which part of a container's log to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// At most this many lines from the end.
    pub tail: usize,
    /// Only lines written at or after this time.
    pub since: Option<std::time::SystemTime>,
    /// Keep the stream open for new lines until the container stops.
    pub follow: bool,
}
