//! The description of a proxied service, as the control API receives it and as
//! the state file stores it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which of the two alternating slots a target set belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Blue,
    Green,
}

impl Color {
    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }
}

impl std::fmt::Display for Color {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a target is probed, before a switch and while it is active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheck {
    /// Request path of the probe.
    pub path: String,
    /// Host header of the probe; the target's address when unset.
    pub host: Option<String>,
    /// Time between probes. Waiting for a new target polls at most every 250 ms
    /// whatever this says, so a deploy never waits on a slow poll.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Time a single probe may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: "/up".into(),
            host: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Deadlines of one deploy call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// How long new targets have to become healthy.
    #[serde(with = "humantime_serde")]
    pub deploy: Duration,
    /// How long in-flight HTTP requests on the old set may run after the switch.
    #[serde(with = "humantime_serde")]
    pub drain: Duration,
    /// How long upgraded (WebSocket) connections on the old set may live after
    /// the switch before they are closed with 1012.
    #[serde(with = "humantime_serde")]
    pub websocket_drain: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            deploy: Duration::from_secs(60),
            drain: Duration::from_secs(30),
            websocket_drain: Duration::from_secs(300),
        }
    }
}

/// The body of the deploy call: put these targets live for this service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// `addr:port` of each new target.
    pub targets: Vec<String>,
    /// Exact names or `*.example.com` wildcards; empty means catch-all.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Optional path prefix; the longest matching prefix wins.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Slot the targets belong to; the other one of the active set when unset.
    #[serde(default)]
    pub color: Option<Color>,
    /// Free-form version label, shown in status and logs.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub health: HealthCheck,
    #[serde(default)]
    pub timeouts: Timeouts,
}
