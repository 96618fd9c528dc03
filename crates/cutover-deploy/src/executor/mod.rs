//! Running operations: a deploy (and the cutover of one app, shared with
//! rollback) as steps that stream progress.

pub mod deploy;
pub mod switch;

use std::future::Future;
use std::time::{Duration, SystemTime};

use cutover_core::diag::Report;
use cutover_core::progress::Outcome;

use crate::events::Progress;
use crate::history::Entry;
use crate::lock::Holder;
use crate::Inner;
use cutover_core::clock::now_ms;

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
pub(crate) struct Operation<'a> {
    pub project: &'a str,
    /// `deploy`, `rollback` or `down`.
    pub name: &'static str,
    pub version: Option<String>,
    /// Successful app cutovers recorded themselves (deploy, rollback).
    pub ok_recorded_per_app: bool,
}

/// Runs `work` holding the project's lock (waiting up to `wait_lock` for
/// it), then records the operation in the history unless it already is,
/// and ends the progress stream with its outcome.
pub(crate) async fn run_exclusive(
    inner: &Inner,
    p: &Progress,
    op: Operation<'_>,
    wait_lock: Duration,
    work: impl Future<Output = Result<(Outcome, Report), Stop>>,
) {
    let started = tokio::time::Instant::now();
    let holder = Holder {
        operation: op.name.into(),
        version: op.version.clone(),
        since: SystemTime::now(),
    };
    let result = match inner.locks.acquire(op.project, holder, wait_lock).await {
        Ok(guard) => {
            let r = work.await;
            // Released before the history write: the next operation need
            // not wait for this one's bookkeeping.
            drop(guard);
            r
        }
        Err(h) => Err(Stop {
            outcome: Outcome::LockTimeout,
            report: lock_timeout(op.project, h, wait_lock),
            recorded: false,
        }),
    };
    let (outcome, report, recorded) = match result {
        Ok((o, r)) => (o, r, op.ok_recorded_per_app && o == Outcome::Ok),
        Err(s) => (s.outcome, s.report, s.recorded),
    };
    if !recorded {
        let entry = Entry {
            time_ms: now_ms(),
            project: op.project.to_string(),
            operation: op.name.to_string(),
            service: None,
            version: op.version,
            color: None,
            result: outcome,
            duration_ms: started.elapsed().as_millis() as u64,
            error: (!matches!(outcome, Outcome::Ok | Outcome::UpToDate))
                .then(|| report.message.clone()),
        };
        if let Err(e) = inner.history.append_async(entry).await {
            p.warn(e);
        }
    }
    p.finish(outcome, report);
}

fn lock_timeout(project: &str, holder: Option<Holder>, wait: Duration) -> Report {
    let who = holder
        .map(|h| h.to_string())
        .unwrap_or_else(|| "another operation".into());
    Report::new(format!(
        "project {project} is locked by {who}; gave up after waiting {}",
        humantime::format_duration(wait)
    ))
    .hint("wait for it to finish, or pass a longer --wait-lock")
}
