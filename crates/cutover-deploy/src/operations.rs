//! The operations that run or ended in the last hour, by id: what `cutover
//! wait ID` follows, and what a deploy retried with the same `--deploy-id`
//! attaches to instead of starting a second one (docs/remote.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cutover_core::sync::lock;

use crate::events::{Receiver, Recording};

/// How long an ended operation can still be followed: a CI job's retry
/// comes within minutes, and the history keeps the outcome for longer.
const KEPT_AFTER_END: Duration = Duration::from_secs(3600);

#[derive(Default)]
pub struct Operations {
    by_id: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    project: String,
    recording: Arc<Recording>,
}

/// What [`Operations::claim`] found under an id.
pub enum Claim {
    /// Nobody had it: the caller's operation is registered under it.
    New,
    /// The same project's operation has it: follow that one.
    Running(Receiver),
    /// Another project's operation has it.
    OtherProject(String),
}

impl Operations {
    /// Registers `recording` as `project`'s operation under its id, unless
    /// the id is taken.
    pub fn claim(&self, project: &str, recording: &Arc<Recording>) -> Claim {
        let mut by_id = lock(&self.by_id);
        by_id.retain(|_, e| {
            e.recording
                .ended()
                .is_none_or(|at| at.elapsed() < KEPT_AFTER_END)
        });
        if let Some(e) = by_id.get(recording.id()) {
            return if e.project == project {
                Claim::Running(e.recording.follow())
            } else {
                Claim::OtherProject(e.project.clone())
            };
        }
        by_id.insert(
            recording.id().to_owned(),
            Entry {
                project: project.to_owned(),
                recording: recording.clone(),
            },
        );
        Claim::New
    }

    /// The events of `project`'s operation `id` so far, then live.
    pub fn follow(&self, project: &str, id: &str) -> Option<Receiver> {
        let by_id = lock(&self.by_id);
        let e = by_id.get(id).filter(|e| e.project == project)?;
        Some(e.recording.follow())
    }
}

/// A fresh id: the operation's name and 48 random bits, short enough to
/// type from a CI log.
pub fn new_id(operation: &str) -> String {
    format!("{operation}-{:012x}", rand::random::<u64>() >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Progress;

    #[test]
    fn an_id_is_claimed_once_per_project() {
        let ops = Operations::default();
        let (first, _rx) = Progress::channel("ci-41".into());
        assert!(matches!(ops.claim("athens", first.recording()), Claim::New));
        let (again, _rx) = Progress::channel("ci-41".into());
        assert!(matches!(
            ops.claim("athens", again.recording()),
            Claim::Running(_)
        ));
        assert!(matches!(
            ops.claim("sparta", again.recording()),
            Claim::OtherProject(p) if p == "athens"
        ));
        assert!(ops.follow("athens", "ci-41").is_some());
        assert!(ops.follow("sparta", "ci-41").is_none());
        assert!(ops.follow("athens", "ci-42").is_none());
        let id = new_id("deploy");
        assert!(
            id.starts_with("deploy-") && id.len() == "deploy-".len() + 12,
            "{id}"
        );
        cutover_core::progress::check_operation_id(&id).unwrap();
    }
}
