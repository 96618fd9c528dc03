//! Maintenance of a route: the site taken down on purpose
//! (`cutover maintenance on`). New requests get a 503 page with
//! `Retry-After`, or with `hold` are held until maintenance ends (at most
//! that long, as kamal-proxy's pause does); in-flight requests finish. The
//! proxy keeps it with the route: across deploys of the app and restarts of
//! the daemon.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diag::Report;

/// The most a request may be held: a held request keeps its connection
/// and a client's patience, and a daemon shutting down waits for it.
pub const MAX_HOLD: Duration = Duration::from_secs(600);
/// The longest message shown on the page.
pub const MAX_MESSAGE: usize = 4096;
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    /// Shown on the 503 page; a default one says the site is in
    /// maintenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Hold new requests up to this long instead of answering at once.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub hold: Option<Duration>,
    /// `Retry-After` of the 503 page.
    #[serde(default = "default_retry_after", with = "humantime_serde")]
    pub retry_after: Duration,
    /// When it began (Unix ms); set by the daemon.
    #[serde(default)]
    pub since_ms: u64,
}

fn default_retry_after() -> Duration {
    DEFAULT_RETRY_AFTER
}

impl Maintenance {
    pub fn validate(&self) -> Result<(), Report> {
        if let Some(hold) = self.hold.filter(|h| *h > MAX_HOLD) {
            return Err(Report::new(format!(
                "hold: {} is longer than the {} a request may be held",
                humantime::format_duration(hold),
                humantime::format_duration(MAX_HOLD)
            ))
            .hint("hold requests for seconds or minutes, or answer 503 at once (no hold)"));
        }
        if self.message.as_ref().is_some_and(|m| m.len() > MAX_MESSAGE) {
            return Err(
                Report::new(format!("message: longer than {MAX_MESSAGE} bytes"))
                    .hint("keep the message to a few lines; link to a status page for more"),
            );
        }
        Ok(())
    }

    /// The 503 page's text.
    pub fn page(&self) -> String {
        let message = self
            .message
            .as_deref()
            .unwrap_or("This site is down for maintenance. Please try again shortly.");
        format!("503 Service Unavailable: {message}\n")
    }
}

/// `POST /v1/projects/{project}/maintenance`: on (with `maintenance`) or
/// off (without) for `services`, or for every app of the project the proxy
/// routes when `services` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceCommand {
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub maintenance: Option<Maintenance>,
}

/// One app's maintenance once the command is done: the answer's elements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceState {
    pub service: String,
    #[serde(default)]
    pub maintenance: Option<Maintenance>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_reads_with_defaults_and_limits_are_checked() {
        let m: Maintenance = crate::wire::read_json(br#"{"message": "back at 10"}"#).unwrap();
        assert_eq!(m.retry_after, DEFAULT_RETRY_AFTER);
        assert_eq!(m.page(), "503 Service Unavailable: back at 10\n");
        m.validate().unwrap();
        let long: Maintenance = crate::wire::read_json(br#"{"hold": "1h"}"#).unwrap();
        assert!(long.validate().unwrap_err().message.starts_with("hold: "));
        assert!(crate::wire::read_json::<Maintenance>(br#"{"mesage": "x"}"#).is_err());
    }
}
