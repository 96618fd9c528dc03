//! The progress stream of one operation: numbered steps, warnings and the
//! final `Finished`, sent to whoever listens.
//!
//! The channel is unbounded on purpose: a slow or gone client must never
//! hold up a deploy half-way through a cutover. Sending to a closed channel
//! (the client disconnected) is not an error: the operation carries on.

use cutover_core::sync::lock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use cutover_core::diag::Report;
use cutover_core::progress::{Outcome, ProgressEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;

pub type Receiver = mpsc::UnboundedReceiver<ProgressEvent>;

pub struct Progress {
    tx: mpsc::UnboundedSender<ProgressEvent>,
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
    pub fn channel() -> (Progress, Receiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Progress {
                tx,
                next_id: AtomicU32::new(1),
                started: Instant::now(),
                finished: Mutex::new(None),
            },
            rx,
        )
    }

    pub fn emit(&self, event: ProgressEvent) {
        let _ = self.tx.send(event);
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
        let (p, rx) = Progress::channel();
        drop(rx);
        let s = p.step("work");
        p.done(s, None);
        p.finish(Outcome::Ok, "done".into());
        assert_eq!(p.outcome(), Some(Outcome::Ok));
    }
}
