//! What the daemon reports about services and target sets: the shapes of the
//! status call, the event stream and the state file.

use serde::{Deserialize, Serialize};

use crate::service::{Color, DeployRequest};

/// Health of one target as the prober last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not probed successfully yet (new or restored target).
    Unknown,
    Healthy,
    Unhealthy,
}

/// Lifecycle of a target set: Active -> Draining -> Drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SetState {
    Active,
    Draining,
    Drained,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetStatus {
    pub addr: String,
    pub health: Health,
    /// Why the last probe failed, when it did.
    pub last_error: Option<String>,
    pub in_flight: u64,
    pub upgraded: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSetStatus {
    /// Daemon-unique id of the set; drain events name it.
    pub id: u64,
    pub color: Color,
    pub version: Option<String>,
    pub state: SetState,
    /// Unix time in milliseconds when the set entered its current state.
    pub since_ms: u64,
    pub targets: Vec<TargetStatus>,
    /// Requests the set answered, and those it answered with a 5xx or
    /// could not answer (502, 504): while a staged set serves beside the
    /// live one, the two are compared by these.
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// The request that made the active set live.
    pub config: DeployRequest,
    pub active: TargetSetStatus,
    pub draining: Vec<TargetSetStatus>,
    /// Set while the route is in maintenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<crate::maintenance::Maintenance>,
    /// A version staged beside the active set (`deploy --preview` or
    /// `--canary`), until it is promoted or aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<StagedStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedStatus {
    pub stage: crate::stage::Stage,
    /// The request that staged it; promoting makes it the route's config.
    pub config: DeployRequest,
    pub set: TargetSetStatus,
}

/// Something that happened in the daemon, streamed to whoever listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// New targets went live; `previous` is the set that now drains.
    Switched {
        service: String,
        set_id: u64,
        color: Color,
        version: Option<String>,
        previous: Option<u64>,
    },
    /// A draining set has no requests or connections left (or they were cut at
    /// their deadline); its targets may now be stopped.
    Drained {
        service: String,
        set_id: u64,
        color: Color,
        version: Option<String>,
        /// HTTP requests cut at `drain` timeout.
        cut_requests: u64,
        /// Upgraded connections closed with 1012 at `websocket_drain` timeout.
        closed_websockets: u64,
    },
    HealthChanged {
        service: String,
        addr: String,
        health: Health,
        reason: Option<String>,
    },
    Removed {
        service: String,
    },
}

/// What survives a daemon restart: the active request of each service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyState {
    pub services: Vec<PersistedService>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedService {
    pub name: String,
    pub request: DeployRequest,
    /// Since when its active set is active (Unix ms): restored, so a node
    /// that restarts still says when it last switched (a Swarm's tie-break,
    /// `fleet::majority`). 0 in a state file older than this field.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub active_since_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<crate::maintenance::Maintenance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<PersistedStage>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A staged set as the state file keeps it: it comes back staged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedStage {
    pub request: DeployRequest,
    pub stage: crate::stage::Stage,
}

/// The answer of the drain long-poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainedAnswer {
    pub service: String,
    pub set_id: u64,
    /// True once the set serves nothing any more.
    pub drained: bool,
    /// `active`, `draining`, `drained`, or `gone` for a set the daemon no
    /// longer tracks (drained earlier, then forgotten).
    pub state: String,
    /// Requests cut at the drain deadline; only known when the drain
    /// happened while this call waited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_websockets: Option<u64>,
}

/// The answer of `POST /v1/upgrade`: the process that serves from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeAnswer {
    /// The process that handed over; it exits once its in-flight work is done.
    pub previous_pid: u32,
    pub pid: u32,
    pub version: String,
}

/// The answer of `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthAnswer {
    /// Always `ok`: the daemon answers.
    pub status: String,
    pub version: String,
    /// The address the proxy listener is bound to.
    pub listen: Option<String>,
    /// The name of the certificate storage: daemons (Swarm nodes) that
    /// share one report the same name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_storage: Option<String>,
}
