//! The wire shapes between the CLI and the daemon's deploy engine: what a
//! client asks for and the events a deploy streams back (newline-delimited JSON).

use serde::{Deserialize, Serialize};

use crate::compose::ResolvedProject;
use crate::diag::Report;
use crate::service::Color;

/// When to pull an app or accessory image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    #[default]
    Missing,
    Always,
    Never,
}

/// Body of `POST /v1/projects/{project}/deploy` and `.../plan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployCommand {
    pub project: ResolvedProject,
    /// Apps to deploy; all of them when empty. Accessories are always reconciled.
    #[serde(default)]
    pub services: Vec<String>,
    /// Redeploy even when the version is unchanged.
    #[serde(default)]
    pub force: bool,
    /// User-facing version label (e.g. a git SHA); a short hash when unset.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub pull: PullPolicy,
    /// How long to wait for the project lock; 0 fails at once.
    #[serde(default, with = "humantime_serde")]
    pub wait_lock: std::time::Duration,
    /// Take the project over when another daemon's labels are on its
    /// containers, networks or volumes (that daemon's state dir is lost).
    /// Sent only when set, so an older daemon still reads the usual body.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    /// Logins for the registries this deploy pulls from, by registry host
    /// (`ghcr.io`, `docker.io`), from the CLI user's Docker config. Sent
    /// only when there are some.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub registry_auth: std::collections::BTreeMap<String, crate::registry::RegistryAuth>,
    /// The caller's id for this deploy (`--deploy-id`): a second request
    /// with the id of a deploy still running follows that one instead of
    /// starting another. A fresh id is chosen when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_id: Option<String>,
    /// The client is not on the daemon's machine: bind sources are paths
    /// on the daemon's host, and `plan` says so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remote: bool,
    /// Build contexts the client uploaded (`PUT /v1/build-contexts/{digest}`),
    /// by the `build.context` they stand for: the daemon builds from the
    /// upload, not from a folder of its own.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub build_contexts: std::collections::BTreeMap<String, String>,
    /// Stage the new versions beside the live ones (`--preview`,
    /// `--canary N%`) instead of switching; `promote` or `abort` ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<crate::stage::StageMode>,
}

/// The header every operation's answer carries its id in.
pub const OPERATION_ID_HEADER: &str = "cutover-operation-id";

/// An operation id is letters, digits, `-`, `_` and `.`, 1 to 64 of them:
/// it is written in URLs, headers and logs as it is.
pub fn check_operation_id(id: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{id:?} is not a deploy id: use 1 to 64 letters, digits, -, _ and . (e.g. the CI run's number)"
        ))
    }
}

/// A SHA-256 digest as the build-context upload names it: `sha256:` and
/// 64 lowercase hex digits.
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

impl DeployCommand {
    /// What serde cannot check: the body is for the project the URL names.
    pub fn validate(&self, project: &str) -> Result<(), Report> {
        if let Some(id) = &self.deploy_id {
            check_operation_id(id).map_err(|e| Report::new(format!("deploy_id: {e}")))?;
        }
        if let Some((context, digest)) = self.build_contexts.iter().find(|(_, d)| !is_digest(d)) {
            return Err(Report::new(format!(
                "build_contexts[{context:?}]: {digest:?} is not a sha256: digest"
            ))
            .hint(
                "upload the context with PUT /v1/build-contexts/sha256:HEX first (docs/api.md)",
            ));
        }
        if self.project.name == project {
            return Ok(());
        }
        Err(Report::new(format!(
            "project.name: the URL names project {project:?} but the body's project.name is {:?}",
            self.project.name
        ))
        .hint("they must be the same"))
    }
}

/// Body of `POST /v1/projects/{project}/rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackCommand {
    /// The app to roll back; the only app when unset.
    #[serde(default)]
    pub service: Option<String>,
    /// A kept version label or id; the previous one when unset.
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub wait_lock: std::time::Duration,
}

/// Body of `POST /v1/projects/{project}/promote` and `.../abort`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageCommand {
    /// The apps whose stage ends; every staged app of the project when empty.
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    pub wait_lock: std::time::Duration,
}

/// Body of `POST /v1/projects/{project}/down`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownCommand {
    /// Also remove the project's named volumes (their data is lost).
    #[serde(default)]
    pub volumes: bool,
    #[serde(default, with = "humantime_serde")]
    pub wait_lock: std::time::Duration,
}

/// The query of `GET /v1/projects/{project}/logs`, as the daemon reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsQuery {
    pub service: Option<String>,
    pub tail: usize,
    pub follow: bool,
    /// Old colors too, each line prefixed by its container name.
    pub all: bool,
    /// Only lines written at or after this time.
    pub since: Option<std::time::SystemTime>,
}

/// How a deploy, rollback or down ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done; the new version serves.
    Ok,
    /// Nothing to do: the running version is the desired one.
    UpToDate,
    /// Failed; the previous version still serves and nothing new is left behind.
    Failed,
    /// The project lock was held by another operation for longer than `wait_lock`.
    LockTimeout,
    /// The request itself was invalid (unknown service, missing external network...).
    Invalid,
    /// An outcome a newer daemon knows and this build does not: the CLI and
    /// the daemon can be different versions (the TCP control listener is
    /// meant for CI runners). Never sent.
    #[serde(other)]
    Unknown,
}

impl Outcome {
    /// The wire name (`ok`, `up_to_date`, ...), for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::UpToDate => "up_to_date",
            Outcome::Failed => "failed",
            Outcome::LockTimeout => "lock_timeout",
            Outcome::Invalid => "invalid",
            Outcome::Unknown => "unknown",
        }
    }
}

/// One line of the NDJSON progress stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// A step began; `id` pairs it with its `StepDone`/`StepFailed`.
    StepStarted { id: u32, what: String },
    StepDone {
        id: u32,
        what: String,
        detail: Option<String>,
        elapsed_ms: u64,
    },
    StepFailed {
        id: u32,
        what: String,
        error: String,
        elapsed_ms: u64,
    },
    /// Something the user should know that does not stop the operation.
    Warning {
        message: String,
        hint: Option<String>,
    },
    /// Lines a failing container printed last, to explain the failure.
    Logs {
        container: String,
        lines: Vec<String>,
    },
    /// A line a hook's container printed, streamed as it prints it.
    Output { container: String, line: String },
    /// Traffic moved to the new color.
    Switched {
        service: String,
        color: Color,
        version: String,
    },
    /// The last event of every stream.
    Finished {
        outcome: Outcome,
        message: String,
        /// Facts behind a failure (what the deploy had already switched);
        /// absent from older daemons.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        hint: Option<String>,
        elapsed_ms: u64,
    },
    /// An event a newer daemon sends and this build does not know; shown as
    /// nothing, so an older CLI still follows a newer daemon's deploy to its
    /// `Finished`. Never sent.
    #[serde(other)]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcomes_label_is_its_wire_name() {
        for o in [
            Outcome::Ok,
            Outcome::UpToDate,
            Outcome::Failed,
            Outcome::LockTimeout,
            Outcome::Invalid,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }

    #[test]
    fn a_deploy_body_is_for_the_project_the_url_names() {
        let cmd: DeployCommand = crate::wire::read_json(
            br#"{"project": {"name": "athens", "project_dir": "/srv/athens", "apps": [], "accessories": [], "networks": [], "volumes": [], "warnings": []}}"#,
        )
        .unwrap();
        cmd.validate("athens").unwrap();
        let err = cmd.validate("other").unwrap_err();
        assert!(err.message.starts_with("project.name: "), "{err:?}");
        assert!(err.hint.is_some());
    }
}
