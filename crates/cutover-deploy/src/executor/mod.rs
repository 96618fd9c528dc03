//! Running operations: a deploy (and the cutover of one app, shared with
//! rollback) as steps that stream progress.

pub mod deploy;
pub mod switch;

use cutover_core::progress::Outcome;

/// Ends an operation early with this outcome; the message may carry a
/// `\nhint: ` line.
#[derive(Debug)]
pub struct Stop {
    pub outcome: Outcome,
    pub message: String,
    /// Already in the history (an app's cutover records itself).
    pub recorded: bool,
}

impl Stop {
    pub fn failed(message: impl std::fmt::Display) -> Stop {
        Stop {
            outcome: Outcome::Failed,
            message: message.to_string(),
            recorded: false,
        }
    }

    pub fn invalid(message: impl std::fmt::Display) -> Stop {
        Stop {
            outcome: Outcome::Invalid,
            message: message.to_string(),
            recorded: false,
        }
    }
}

pub(crate) fn lock_timeout_message(
    project: &str,
    holder: Option<crate::lock::Holder>,
    wait: std::time::Duration,
) -> String {
    let who = holder
        .map(|h| h.to_string())
        .unwrap_or_else(|| "another operation".into());
    format!(
        "project {project} is locked by {who}; gave up after waiting {}\nhint: wait for it to finish, or pass a longer --wait-lock",
        humantime::format_duration(wait)
    )
}
