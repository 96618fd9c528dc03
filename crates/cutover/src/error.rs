//! The error a command ends with: what to tell the user and the exit status
//! it maps to.

use std::fmt;
use std::io::Write;

use cutover_core::diag::{Diagnose, Report};
use cutover_proxy::admin::{SocketError, TokenError};
use cutover_proxy::state::StateError;

use crate::exit::ExitStatus;

#[derive(Debug)]
pub struct CliError {
    pub status: ExitStatus,
    pub report: Report,
    /// Further problems found in the same pass (every error of a compose
    /// file is reported at once), each printed as its own `error:` block.
    pub more: Vec<Report>,
}

impl CliError {
    pub fn new(status: ExitStatus, report: impl Into<Report>) -> CliError {
        CliError {
            status,
            report: report.into(),
            more: Vec::new(),
        }
    }

    /// The first of `reports` leads; `None` when there are none.
    pub fn all(status: ExitStatus, reports: impl IntoIterator<Item = Report>) -> Option<CliError> {
        let mut reports = reports.into_iter();
        let first = reports.next()?;
        Some(CliError {
            more: reports.collect(),
            ..CliError::new(status, first)
        })
    }

    pub fn failure(report: impl Into<Report>) -> CliError {
        CliError::new(ExitStatus::Failure, report)
    }

    pub fn bad_input(report: impl Into<Report>) -> CliError {
        CliError::new(ExitStatus::BadInput, report)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> CliError {
        self.report = self.report.hint(hint);
        self
    }

    /// Prints the error the way docs/style.md asks: what happened, then what to do.
    pub fn print(&self) {
        // Not eprintln!: a closed stderr must not turn an error into a panic.
        let _ = writeln!(std::io::stderr(), "{self}");
    }
}

/// `error: message`, the detail indented below it, then `hint: ...`; one
/// such block per problem.
impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.report)?;
        for more in &self.more {
            write!(f, "\nerror: {more}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> CliError {
        CliError::failure(format!("{e:#}"))
    }
}

impl From<StateError> for CliError {
    fn from(e: StateError) -> CliError {
        CliError::failure(e.report())
    }
}

impl From<SocketError> for CliError {
    fn from(e: SocketError) -> CliError {
        CliError::failure(e.report())
    }
}

impl From<TokenError> for CliError {
    fn from(e: TokenError) -> CliError {
        CliError::bad_input(e.report())
    }
}
