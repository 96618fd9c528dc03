//! What cutover asks a Swarm to run: a service, by exact name.

use std::collections::BTreeMap;
use std::time::Duration;

use cutover_docker::HealthcheckSpec;

use crate::model::FileKind;

/// How many tasks a service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// This many, wherever the scheduler places them.
    Replicated(u64),
    /// One on every eligible node (cutover's own proxy runs so).
    Global,
    /// One task that runs to its end and is never restarted, whatever its
    /// exit (a replicated job): an app's hook.
    Job,
    /// A task on every eligible node, each run to its end and never
    /// restarted (a global job): work only a node's own engine can do.
    GlobalJob,
}

impl Mode {
    /// A job's tasks end; a service's run until they are stopped.
    pub fn is_job(self) -> bool {
        matches!(self, Mode::Job | Mode::GlobalJob)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNetwork {
    /// The network's exact name (an attachable overlay).
    pub name: String,
    pub aliases: Vec<String>,
}

/// A port a task publishes on its node's own address (`mode: host`), so a
/// connection stays on the node it reached. Ingress publishing (the routing
/// mesh) is never asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPort {
    pub target: u16,
    pub published: u16,
}

/// What a task mounts: a path of its node's, or a named volume, which is
/// the node's own (a Swarm has no volume shared by the nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Bind,
    Volume,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceMount {
    pub kind: MountKind,
    /// The host path, or the volume's name.
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// How a node that lacks the volume creates it for the task; `None`
    /// for a bind, or for a volume the node must have (an external one).
    pub create: Option<NewVolume>,
}

/// A named volume as a node creates it: a node that already has it keeps
/// it as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewVolume {
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// A secret or config a task mounts, by the object's id and name (the
/// engine wants both), at `target` with its owner and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFile {
    pub kind: FileKind,
    pub id: String,
    pub name: String,
    /// An absolute path in the container.
    pub target: String,
    pub uid: String,
    pub gid: String,
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Exact name; `<project>_<service>_<color>` for an app color.
    pub name: String,
    pub image: String,
    /// On the service; cutover finds what it made by these.
    pub labels: BTreeMap<String, String>,
    /// On each task's container.
    pub container_labels: BTreeMap<String, String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// Replaces the image's entrypoint when set.
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's command when set.
    pub command: Option<Vec<String>>,
    pub mode: Mode,
    pub networks: Vec<ServiceNetwork>,
    /// Placement constraints as Swarm writes them (`node.role==worker`).
    pub constraints: Vec<String>,
    /// At most this many tasks on one node (`deploy.placement.max_replicas_per_node`).
    pub max_per_node: Option<u64>,
    pub nano_cpus: Option<i64>,
    pub memory: Option<i64>,
    pub healthcheck: Option<HealthcheckSpec>,
    pub stop_grace_period: Option<Duration>,
    pub host_ports: Vec<HostPort>,
    pub mounts: Vec<ServiceMount>,
    pub files: Vec<ServiceFile>,
}

impl ServiceSpec {
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            image: image.into(),
            labels: BTreeMap::new(),
            container_labels: BTreeMap::new(),
            env: Vec::new(),
            entrypoint: None,
            command: None,
            mode: Mode::Replicated(1),
            networks: Vec::new(),
            constraints: Vec::new(),
            max_per_node: None,
            nano_cpus: None,
            memory: None,
            healthcheck: None,
            stop_grace_period: None,
            host_ports: Vec::new(),
            mounts: Vec::new(),
            files: Vec::new(),
        }
    }
}

/// A new service made from an existing one's spec, as the engine holds it
/// (image, environment, mounts, secrets, placement), at 0 tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceCopy {
    pub name: String,
    /// Set on the service and on its containers.
    pub labels: BTreeMap<String, String>,
    /// Taken off the service and its containers.
    pub unlabel: Vec<String>,
    /// Environment entries replaced where they are exactly `.0`.
    pub env: Vec<(String, String)>,
}
