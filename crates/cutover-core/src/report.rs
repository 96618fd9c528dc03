//! What the deploy engine reports about compose projects: the answers of
//! `GET /v1/projects`, `.../status` and `.../history`, and the lines of
//! `history.jsonl`. The daemon serializes these and the CLI deserializes the
//! same types, so the two cannot drift apart.
//!
//! Reading is lenient both ways: a field an older daemon (or an older history
//! line) lacks takes its default, and a field a newer daemon adds is ignored
//! (hence no `deny_unknown_fields`). The fields without a default are the
//! ones a value means nothing without: a live version's color and an
//! operation's result. An outcome a newer daemon wrote reads as
//! [`Outcome::Unknown`].

use serde::{Deserialize, Serialize};

use crate::progress::Outcome;
use crate::service::Color;
use crate::status::{Health, TargetStatus};

/// `GET /v1/projects/{project}/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProjectStatus {
    pub project: String,
    pub apps: Vec<AppStatus>,
    pub accessories: Vec<AccessoryStatus>,
    pub networks: Vec<NetworkStatus>,
    /// The operation running on the project now, if any.
    pub busy: Option<Busy>,
}

/// The deploy, rollback or down that holds a project's lock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Busy {
    /// `deploy`, `rollback` or `down`.
    pub operation: String,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppStatus {
    pub service: String,
    /// The proxy service that routes to it.
    pub route: String,
    pub live: Option<LiveVersion>,
    /// Stopped versions kept for rollback, newest first.
    pub kept: Vec<KeptVersion>,
    /// Requests and WebSockets still served by old colors.
    pub draining_connections: u64,
    /// Set while the app is in maintenance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<crate::maintenance::Maintenance>,
    /// A version staged beside the live one (`deploy --preview|--canary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<StagedVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedVersion {
    #[serde(flatten)]
    pub mode: crate::stage::StageMode,
    pub color: Color,
    pub version: String,
    pub version_id: String,
    pub container: String,
    /// As the proxy sees it; `None` when the proxy lost the stage.
    #[serde(default)]
    pub health: Option<Health>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preview_hosts: Vec<String>,
    /// Requests it answered, and how many of them were 5xx or failed.
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveVersion {
    pub color: Color,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub version_id: String,
    #[serde(default)]
    pub container: String,
    /// As the proxy sees it; `None` when the proxy does not route to it.
    #[serde(default)]
    pub health: Option<Health>,
    /// Unix ms when it went live in the proxy.
    #[serde(default)]
    pub since_ms: Option<u64>,
    #[serde(default)]
    pub targets: Vec<TargetStatus>,
    /// Requests this color answered since it went live (or the proxy
    /// started), and how many of them were 5xx or failed: beside a staged
    /// version's, the comparison a canary is judged by.
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub errors: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeptVersion {
    pub version: String,
    pub version_id: String,
    pub container: String,
    pub released_ms: Option<u64>,
    /// Still running while the proxy drains it; stopped once drained.
    pub retiring: bool,
    /// Drained, and being stopped (its stop grace period runs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopping: bool,
    /// Stopped, and it took a SIGKILL (exit code 137): it did not exit
    /// within its stop grace period after SIGTERM, which usually means its
    /// PID 1 ignores signals.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub killed: bool,
}

/// A compose service that is not routed (a database, a cache): one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccessoryStatus {
    pub service: String,
    pub container: String,
    /// Docker's word for it (`running`, `exited`, ...). Docker's vocabulary,
    /// not cutover's, so kept as the text the engine gave.
    pub state: String,
    /// Docker's health check status, when the image or compose file has one.
    pub health: Option<String>,
    pub image: String,
    /// `host_ip:host_port->port/proto` for every published port.
    pub published: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkStatus {
    pub name: String,
    /// Not created by cutover (cutover never removes it).
    pub external: bool,
    /// Every container attached now, the project's or not (failure #1).
    pub attached: Vec<String>,
}

/// A line of `GET /v1/projects`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProjectSummary {
    pub name: String,
    pub containers: usize,
    pub running: usize,
}

/// One finished deploy, rollback or down (or one app's cutover within it):
/// a line of `<state>/history.jsonl` and an element of `GET .../history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Unix time in milliseconds when the operation finished.
    #[serde(default)]
    pub time_ms: u64,
    #[serde(default)]
    pub project: String,
    /// `deploy`, `rollback` or `down`.
    #[serde(default)]
    pub operation: String,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub color: Option<Color>,
    /// Required, unlike the other fields; one this build does not know is
    /// [`Outcome::Unknown`], which the CLI shows as `unknown`.
    pub result: Outcome,
    #[serde(default)]
    pub duration_ms: u64,
    #[serde(default)]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn athens() -> ProjectStatus {
        ProjectStatus {
            project: "athens".into(),
            apps: vec![AppStatus {
                service: "backend".into(),
                route: "athens/backend".into(),
                live: Some(LiveVersion {
                    color: Color::Green,
                    version: "42".into(),
                    version_id: "3f9c2a1b7d4e".into(),
                    container: "athens-backend-green".into(),
                    health: Some(Health::Healthy),
                    since_ms: Some(1_764_000_000_000),
                    targets: vec![TargetStatus {
                        addr: "172.18.0.5:8080".into(),
                        health: Health::Healthy,
                        last_error: None,
                        in_flight: 0,
                        upgraded: 0,
                    }],
                    requests: 1520,
                    errors: 3,
                }),
                kept: vec![KeptVersion {
                    version: "41".into(),
                    version_id: "8a0d".into(),
                    container: "athens-backend-blue".into(),
                    released_ms: Some(1_763_990_000_000),
                    retiring: false,
                    stopping: false,
                    killed: false,
                }],
                draining_connections: 0,
                maintenance: None,
                staged: None,
            }],
            accessories: vec![AccessoryStatus {
                service: "redis".into(),
                container: "athens-redis".into(),
                state: "running".into(),
                health: Some("healthy".into()),
                image: "redis:7".into(),
                published: vec![],
            }],
            networks: vec![NetworkStatus {
                name: "athens_default".into(),
                external: false,
                attached: vec!["athens-backend-green".into(), "athens-redis".into()],
            }],
            busy: None,
        }
    }

    /// The bytes of docs/api.md's example (with `targets` and the id spelled
    /// out): field names and order are the API.
    #[test]
    fn status_serializes_as_documented() {
        let expected = concat!(
            r#"{"project":"athens","apps":[{"service":"backend","route":"athens/backend","#,
            r#""live":{"color":"green","version":"42","version_id":"3f9c2a1b7d4e","#,
            r#""container":"athens-backend-green","health":"healthy","since_ms":1764000000000,"#,
            r#""targets":[{"addr":"172.18.0.5:8080","health":"healthy","last_error":null,"in_flight":0,"upgraded":0}],"#,
            r#""requests":1520,"errors":3},"#,
            r#""kept":[{"version":"41","version_id":"8a0d","container":"athens-backend-blue","#,
            r#""released_ms":1763990000000,"retiring":false}],"draining_connections":0}],"#,
            r#""accessories":[{"service":"redis","container":"athens-redis","state":"running","#,
            r#""health":"healthy","image":"redis:7","published":[]}],"#,
            r#""networks":[{"name":"athens_default","external":false,"#,
            r#""attached":["athens-backend-green","athens-redis"]}],"busy":null}"#
        );
        let status = athens();
        assert_eq!(serde_json::to_string(&status).unwrap(), expected);
        assert_eq!(
            serde_json::from_str::<ProjectStatus>(expected).unwrap(),
            status
        );
    }

    #[test]
    fn busy_names_the_operation() {
        let busy = Busy {
            operation: "deploy".into(),
            version: Some("42".into()),
        };
        assert_eq!(
            serde_json::to_string(&busy).unwrap(),
            r#"{"operation":"deploy","version":"42"}"#
        );
    }

    /// What a daemon from before `retiring`, `released_ms` and `targets`
    /// answered, with a field from some newer daemon thrown in.
    #[test]
    fn status_reads_older_and_newer_daemons() {
        let status: ProjectStatus = serde_json::from_value(serde_json::json!({
            "project": "athens",
            "apps": [{
                "service": "backend",
                "live": {"color": "blue", "version": "1"},
                "kept": [{"version": "0", "container": "athens-backend-green"}],
                "a_field_from_a_newer_daemon": [1, 2]
            }],
            "busy": {"operation": "rollback", "since": "later"}
        }))
        .unwrap();
        let app = &status.apps[0];
        let live = app.live.as_ref().unwrap();
        assert_eq!((live.color, live.health), (Color::Blue, None));
        assert!(live.targets.is_empty());
        assert_eq!(app.kept[0].container, "athens-backend-green");
        assert!(!app.kept[0].retiring);
        assert_eq!(app.kept[0].released_ms, None);
        assert!(status.accessories.is_empty() && status.networks.is_empty());
        assert_eq!(status.busy.unwrap().operation, "rollback");
    }

    #[test]
    fn live_version_needs_its_color() {
        let err =
            serde_json::from_value::<LiveVersion>(serde_json::json!({"version": "1"})).unwrap_err();
        assert!(err.to_string().contains("color"), "{err}");
    }

    /// A line as the first daemon wrote it to `history.jsonl`.
    #[test]
    fn history_reads_and_writes_the_same_line() {
        let line = r#"{"time_ms":1764000000000,"project":"athens","operation":"deploy","service":null,"version":"42","color":null,"result":"lock_timeout","duration_ms":30000,"error":"project athens is busy"}"#;
        let entry: HistoryEntry = serde_json::from_str(line).unwrap();
        assert_eq!(entry.result, Outcome::LockTimeout);
        assert_eq!(entry.service, None);
        assert_eq!(serde_json::to_string(&entry).unwrap(), line);
    }

    /// A result is required; one a newer daemon wrote is read as `unknown`
    /// rather than making the whole history unreadable.
    #[test]
    fn history_needs_a_result_and_keeps_unknown_ones() {
        let line = r#"{"time_ms":1,"project":"athens","operation":"deploy"}"#;
        assert!(
            serde_json::from_str::<HistoryEntry>(line).is_err(),
            "{line}"
        );
        let line = r#"{"time_ms":1,"project":"athens","operation":"deploy","result":"exploded"}"#;
        let entry: HistoryEntry = serde_json::from_str(line).unwrap();
        assert_eq!(entry.result, Outcome::Unknown);
    }
}
