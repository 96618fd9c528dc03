//! Running operations: a deploy (and the cutover of one app, shared with
//! rollback) as steps that stream progress.

pub mod deploy;
pub mod gate;
pub mod hooks;
mod preflight;
pub mod switch;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cutover_core::diag::Report;
use cutover_core::progress::Outcome;

use crate::events::{Progress, Receiver};
use crate::history::record_operation;
use crate::lock::Holder;
use crate::operations::{Claim, Operations};
use crate::{DeployEngine, Inner};

/// Ends an operation early with this outcome and what to tell the user.
#[derive(Debug)]
pub struct Stop {
    pub outcome: Outcome,
    pub report: Report,
    /// Already in the history (an app's cutover records itself).
    pub recorded: bool,
}

impl Stop {
    pub fn failed(report: impl Into<Report>) -> Stop {
        Stop {
            outcome: Outcome::Failed,
            report: report.into(),
            recorded: false,
        }
    }

    pub fn invalid(report: impl Into<Report>) -> Stop {
        Stop {
            outcome: Outcome::Invalid,
            report: report.into(),
            recorded: false,
        }
    }
}

/// What an operation is, for its lock holder and its history line.
pub(crate) struct Operation {
    pub project: String,
    /// `deploy`, `rollback` or `down`.
    pub name: &'static str,
    pub version: Option<String>,
    /// Successful app cutovers recorded themselves (deploy, rollback).
    pub ok_recorded_per_app: bool,
    /// Take the project over from another daemon that owns it.
    pub adopt: bool,
    /// The caller's id for it (`--deploy-id`); a fresh one when unset.
    pub id: Option<String>,
}

impl DeployEngine {
    /// Starts an operation in a daemon task (so a client that goes away
    /// does not stop it) under the project's lock, and returns its progress
    /// stream. `work` gets the engine's state and the progress to report on.
    pub(crate) fn spawn_exclusive<W, F>(
        &self,
        op: Operation,
        wait_lock: Duration,
        work: W,
    ) -> Receiver
    where
        W: FnOnce(Arc<Inner>, Arc<Progress>) -> F + Send + 'static,
        F: Future<Output = Result<(Outcome, Report), Stop>> + Send + 'static,
    {
        let (p, rx) = match open(&self.inner.operations, &op) {
            Ok(opened) => opened,
            Err(rx) => return rx,
        };
        if self.inner.paused.load(std::sync::atomic::Ordering::SeqCst) {
            p.finish(
                Outcome::Failed,
                Report::new(format!(
                    "the cutover daemon is handing over to a new process; the {} of {} did not start",
                    op.name, op.project
                ))
                .hint("run the command again in a few seconds: the new daemon takes it"),
            );
            return rx;
        }
        let p = Arc::new(p);
        let inner = self.inner.clone();
        self.inner.tasks.spawn(async move {
            let work = work(inner.clone(), p.clone());
            run_exclusive(&inner, &p, op, wait_lock, work).await;
        });
        rx
    }
}

/// Opens the progress of `op` under its id (`--deploy-id`, else a fresh
/// one). `Err` is the stream to answer with instead: the operation already
/// running under that id (a retried request follows it), or a refusal of
/// an id another project's operation has.
pub(crate) fn open(
    operations: &Operations,
    op: &Operation,
) -> Result<(Progress, Receiver), Receiver> {
    let id = op
        .id
        .clone()
        .unwrap_or_else(|| crate::operations::new_id(op.name));
    let (p, rx) = Progress::channel(id);
    match operations.claim(&op.project, p.recording()) {
        Claim::New => Ok((p, rx)),
        Claim::Running(rx) => Err(rx),
        Claim::OtherProject(other) => {
            p.finish(
                Outcome::Invalid,
                Report::new(format!(
                    "the id {:?} belongs to an operation of project {other}",
                    p.recording().id()
                ))
                .hint("give each deploy its own --deploy-id, e.g. the CI run's id and the project"),
            );
            Err(rx)
        }
    }
}

/// Runs `work` holding the project's lock (waiting up to `wait_lock` for
/// it), then records the operation in the history unless it already is,
/// and ends the progress stream with its outcome.
async fn run_exclusive(
    inner: &Inner,
    p: &Progress,
    op: Operation,
    wait_lock: Duration,
    work: impl Future<Output = Result<(Outcome, Report), Stop>>,
) {
    let started = tokio::time::Instant::now();
    let holder = Holder {
        operation: op.name.into(),
        version: op.version.clone(),
        since: SystemTime::now(),
    };
    let waiting = |h: &Holder| {
        p.warn(
            Report::new(format!("project {} is locked by {h}; waiting", op.project)).hint(format!(
                "it starts when that ends, or gives up after {} (--wait-lock)",
                humantime::format_duration(wait_lock)
            )),
        )
    };
    let result = match inner
        .locks
        .acquire(&op.project, holder, wait_lock, waiting)
        .await
    {
        Ok(guard) => {
            // Under the lock, before anything changes: what another daemon
            // owns is never stopped, renamed or removed from here.
            let claimed = inner
                .owner
                .claim(&*inner.engine, &op.project, op.adopt)
                .await;
            let r = match claimed {
                Ok(()) => work.await,
                Err(report) => Err(Stop::invalid(report)),
            };
            // Released before the history write: the next operation need
            // not wait for this one's bookkeeping.
            drop(guard);
            r
        }
        Err(h) => Err(Stop {
            outcome: Outcome::LockTimeout,
            report: lock_timeout(&op.project, h, wait_lock),
            recorded: false,
        }),
    };
    let (outcome, report, recorded) = match result {
        Ok((o, r)) => (o, r, op.ok_recorded_per_app && o == Outcome::Ok),
        Err(s) => (s.outcome, s.report, s.recorded),
    };
    inner
        .proxy
        .operation_metrics()
        .operation(&op.project, op.name, outcome.as_str());
    if op.name == "down" && outcome == Outcome::Ok {
        inner.proxy.operation_metrics().forget(&op.project);
    }
    if !recorded {
        let ended = (outcome, &report);
        record_operation(
            &inner.history,
            p,
            &op.project,
            op.name,
            op.version,
            ended,
            started,
        )
        .await;
    }
    p.finish(outcome, report);
}

pub(crate) fn lock_timeout(project: &str, holder: Option<Holder>, wait: Duration) -> Report {
    let who = holder
        .map(|h| h.to_string())
        .unwrap_or_else(|| "another operation".into());
    Report::new(format!(
        "project {project} is locked by {who}; gave up after waiting {}",
        humantime::format_duration(wait)
    ))
    .hint("wait for it to finish, or pass a longer --wait-lock")
}
