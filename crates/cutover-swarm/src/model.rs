//! What a Swarm reports: itself, its nodes, services and tasks.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// The swarm as the engine cutover talks to sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmInfo {
    /// This engine's node.
    pub node_id: String,
    /// The address this node advertises to the others.
    pub node_addr: String,
    /// Whether this engine can manage services (it is a manager).
    pub is_manager: bool,
    pub nodes: u64,
    pub managers: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    Manager,
    Worker,
}

/// Whether the node is up, as the managers last heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Ready,
    Down,
    Disconnected,
    Unknown,
}

/// Whether the scheduler may place tasks on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Active,
    Pause,
    Drain,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub hostname: String,
    /// Where the node is reached: its advertised address.
    pub addr: String,
    pub role: NodeRole,
    pub state: NodeState,
    pub availability: Availability,
    /// The manager that leads the raft, when this node is a manager.
    pub leader: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    pub id: String,
    pub name: String,
    /// The spec's version; an update must name the one it read.
    pub version: u64,
    pub labels: BTreeMap<String, String>,
    pub image: String,
    /// `None` for a global service (one task per eligible node), and `0`
    /// for one parked at none ([`crate::docker::PARKED`]).
    pub replicas: Option<u64>,
    /// One task per eligible node (`mode: global`), parked or not.
    pub global: bool,
    /// The ids of the secrets and configs its tasks mount.
    pub files: Vec<String>,
    /// Its last update ([`crate::Cluster::update_service`]); `None` for a
    /// service never updated that way.
    pub update: Option<UpdateStatus>,
}

/// A service's last rolling update: where it is, and when it started, by
/// which a new update is told from the one before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateStatus {
    pub state: UpdateState,
    pub started: String,
}

/// Where a rolling update is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateState {
    Updating,
    Completed,
    /// Paused or rolled back by the engine, with its message: a new task
    /// failed.
    Stopped(String),
}

/// What a task can mount as a file: a secret (kept in memory on the node,
/// never readable back through the API) or a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {
    Secret,
    Config,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Secret => "secret",
            FileKind::Config => "config",
        }
    }
}

/// A secret or config the managers hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileObject {
    pub kind: FileKind,
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// A config's contents, as the engine lists them; a secret's are never
    /// read back.
    pub data: Option<Vec<u8>>,
}

/// A task's state, in the order the scheduler moves it: up to
/// [`TaskState::Running`], then into one of the ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TaskState {
    New,
    Allocated,
    Pending,
    Assigned,
    Accepted,
    Preparing,
    Ready,
    Starting,
    Running,
    Complete,
    Shutdown,
    Failed,
    Rejected,
    Remove,
    Orphaned,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        use TaskState::*;
        match self {
            New => "new",
            Allocated => "allocated",
            Pending => "pending",
            Assigned => "assigned",
            Accepted => "accepted",
            Preparing => "preparing",
            Ready => "ready",
            Starting => "starting",
            Running => "running",
            Complete => "complete",
            Shutdown => "shutdown",
            Failed => "failed",
            Rejected => "rejected",
            Remove => "remove",
            Orphaned => "orphaned",
        }
    }

    pub fn parse(text: &str) -> Option<TaskState> {
        use TaskState::*;
        Some(match text {
            "new" => New,
            "allocated" => Allocated,
            "pending" => Pending,
            "assigned" => Assigned,
            "accepted" => Accepted,
            "preparing" => Preparing,
            "ready" => Ready,
            "starting" => Starting,
            "running" => Running,
            "complete" => Complete,
            "shutdown" => Shutdown,
            "failed" => Failed,
            "rejected" => Rejected,
            "remove" => Remove,
            "orphaned" => Orphaned,
            _ => return None,
        })
    }

    /// A task that will not run again: the scheduler replaces it with a
    /// new one rather than restarting it.
    pub fn is_ended(self) -> bool {
        self > TaskState::Running
    }

    /// Ended because something went wrong, not because it was told to.
    pub fn is_failure(self) -> bool {
        matches!(self, TaskState::Failed | TaskState::Rejected)
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One task of a service: a container the scheduler put on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub id: String,
    pub service_id: String,
    /// Empty until the scheduler assigns a node.
    pub node_id: String,
    /// The replica's number in a replicated service; `None` in a global one.
    pub slot: Option<u64>,
    pub state: TaskState,
    /// What the scheduler wants: `Running`, or `Shutdown` for a task on its
    /// way out.
    pub desired: TaskState,
    /// The scheduler's and the node's words on the state ("started",
    /// "No such image: ...").
    pub message: String,
    pub error: Option<String>,
    /// Its address on each network, by network name.
    pub addresses: BTreeMap<String, IpAddr>,
    pub container_id: Option<String>,
}

impl TaskInfo {
    pub fn ip_on(&self, network: &str) -> Option<IpAddr> {
        self.addresses.get(network).copied()
    }

    /// Counts toward the service's replicas: wanted running, and running.
    pub fn is_up(&self) -> bool {
        self.desired == TaskState::Running && self.state == TaskState::Running
    }
}
