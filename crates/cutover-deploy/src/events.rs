//! The progress stream of one operation: numbered steps, warnings and the
//! final `Finished`, sent to whoever listens.
//!
//! Every event is recorded, so that a client that comes later (`cutover
//! wait`, a CI step retried with the same `--deploy-id`) is shown the whole
//! operation from its first step, then follows it live.
//!
//! The channels are unbounded on purpose: a slow or gone client must never
//! hold up a deploy half-way through a cutover. Sending to a closed channel
//! (the client disconnected) is not an error: the operation carries on.

use cutover_core::sync::lock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use cutover_core::diag::Report;
use cutover_core::progress::{Outcome, ProgressEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// One client's view of an operation: its id and its events, from the
/// first.
pub struct Receiver {
    id: String,
    rx: mpsc::UnboundedReceiver<ProgressEvent>,
}

impl Receiver {
    /// The operation's id (the `cutover-operation-id` header).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The next event; `None` after `Finished`.
    pub async fn recv(&mut self) -> Option<ProgressEvent> {
        self.rx.recv().await
    }
}

/// The events of one operation so far, and the clients following it.
pub struct Recording {
    id: String,
    state: Mutex<RecordingState>,
}

struct RecordingState {
    events: Vec<ProgressEvent>,
    followers: Vec<mpsc::UnboundedSender<ProgressEvent>>,
    ended: Option<std::time::Instant>,
}

impl Recording {
    fn new(id: String) -> Arc<Recording> {
        Arc::new(Recording {
            id,
            state: Mutex::new(RecordingState {
                events: Vec::new(),
                followers: Vec::new(),
                ended: None,
            }),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Every event so far, then the rest as they happen. Under the one
    /// lock `push` takes, so no event is missed or shown twice.
    pub fn follow(&self) -> Receiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = lock(&self.state);
        for event in &state.events {
            let _ = tx.send(event.clone());
        }
        if state.ended.is_none() {
            state.followers.push(tx);
        }
        Receiver {
            id: self.id.clone(),
            rx,
        }
    }

    /// When the operation ended; `None` while it runs.
    pub fn ended(&self) -> Option<std::time::Instant> {
        lock(&self.state).ended
    }

    fn push(&self, event: ProgressEvent) {
        let mut state = lock(&self.state);
        state.followers.retain(|tx| tx.send(event.clone()).is_ok());
        if matches!(event, ProgressEvent::Finished { .. }) {
            state.ended = Some(std::time::Instant::now());
            // Their channels end after this last event.
            state.followers.clear();
        }
        state.events.push(event);
    }
}

pub struct Progress {
    recording: Arc<Recording>,
    next_id: AtomicU32,
    started: Instant,
    finished: Mutex<Option<Outcome>>,
}

/// A step in progress; finish it with [`Progress::done`] or [`Progress::failed`].
pub struct StepHandle {
    id: u32,
    what: String,
    started: Instant,
}

impl Progress {
    /// A new operation `id`, and the first client following it.
    pub fn channel(id: String) -> (Progress, Receiver) {
        let recording = Recording::new(id);
        let rx = recording.follow();
        (
            Progress {
                recording,
                next_id: AtomicU32::new(1),
                started: Instant::now(),
                finished: Mutex::new(None),
            },
            rx,
        )
    }

    /// When the operation was asked for: what `Finished` counts from.
    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn recording(&self) -> &Arc<Recording> {
        &self.recording
    }

    pub fn emit(&self, event: ProgressEvent) {
        self.recording.push(event);
    }

    pub fn step(&self, what: impl Into<String>) -> StepHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let what = what.into();
        tracing::info!(step = id, what = %what, "step started");
        self.emit(ProgressEvent::StepStarted {
            id,
            what: what.clone(),
        });
        StepHandle {
            id,
            what,
            started: Instant::now(),
        }
    }

    pub fn done(&self, step: StepHandle, detail: Option<String>) {
        self.emit(ProgressEvent::StepDone {
            id: step.id,
            what: step.what,
            detail,
            elapsed_ms: ms(step.started),
        });
    }

    pub fn failed(&self, step: StepHandle, error: impl std::fmt::Display) {
        let error = error.to_string();
        tracing::warn!(step = step.id, what = %step.what, error = %error, "step failed");
        self.emit(ProgressEvent::StepFailed {
            id: step.id,
            what: step.what,
            error,
            elapsed_ms: ms(step.started),
        });
    }

    pub fn warn(&self, warning: impl Into<Report>) {
        let Report { message, hint, .. } = warning.into();
        tracing::warn!(%message, "deploy warning");
        self.emit(ProgressEvent::Warning { message, hint });
    }

    pub fn finish(&self, outcome: Outcome, report: Report) {
        *lock(&self.finished) = Some(outcome);
        self.emit(ProgressEvent::Finished {
            outcome,
            message: report.message,
            detail: report.detail,
            hint: report.hint,
            elapsed_ms: ms(self.started),
        });
    }

    pub fn outcome(&self) -> Option<Outcome> {
        *lock(&self.finished)
    }
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis().min(u64::MAX as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_gone_client_does_not_fail_the_operation() {
        let (p, rx) = Progress::channel("op-1".into());
        drop(rx);
        let s = p.step("work");
        p.done(s, None);
        p.finish(Outcome::Ok, "done".into());
        assert_eq!(p.outcome(), Some(Outcome::Ok));
    }

    #[tokio::test]
    async fn a_late_follower_sees_every_event_once() {
        let (p, mut first) = Progress::channel("op-2".into());
        let s = p.step("build");
        let mut late = p.recording().follow();
        p.done(s, None);
        p.finish(Outcome::Ok, "done".into());
        let mut after = p.recording().follow();
        for rx in [&mut first, &mut late, &mut after] {
            let mut kinds = Vec::new();
            while let Some(e) = rx.recv().await {
                kinds.push(match e {
                    ProgressEvent::StepStarted { .. } => "started",
                    ProgressEvent::StepDone { .. } => "done",
                    ProgressEvent::Finished { .. } => "finished",
                    _ => "other",
                });
            }
            assert_eq!(kinds, ["started", "done", "finished"]);
            assert_eq!(rx.id(), "op-2");
        }
        assert!(p.recording().ended().is_some());
    }
}
