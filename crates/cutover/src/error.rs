//! The error a command ends with: a message, an optional hint and the exit
//! status it maps to.

use std::fmt;
use std::io::Write;

use cutover_proxy::admin::{SocketError, TokenError};
use cutover_proxy::state::StateError;

use crate::exit::ExitStatus;

#[derive(Debug)]
pub struct CliError {
    pub status: ExitStatus,
    pub message: String,
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(status: ExitStatus, message: impl Into<String>) -> CliError {
        CliError {
            status,
            message: message.into(),
            hint: None,
        }
    }

    pub fn failure(message: impl Into<String>) -> CliError {
        CliError::new(ExitStatus::Failure, message)
    }

    pub fn bad_input(message: impl Into<String>) -> CliError {
        CliError::new(ExitStatus::BadInput, message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }

    fn with_opt_hint(mut self, hint: Option<String>) -> CliError {
        self.hint = hint;
        self
    }

    /// Prints the error the way docs/style.md asks: what happened, then what to do.
    pub fn print(&self) {
        // Not eprintln!: a closed stderr must not turn an error into a panic.
        let _ = writeln!(std::io::stderr(), "{self}");
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
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
        let hint = e.hint();
        CliError::failure(e.to_string()).with_opt_hint(hint)
    }
}

impl From<SocketError> for CliError {
    fn from(e: SocketError) -> CliError {
        let hint = e.hint();
        CliError::failure(e.to_string()).with_opt_hint(hint)
    }
}

impl From<TokenError> for CliError {
    fn from(e: TokenError) -> CliError {
        let hint = e.hint();
        CliError::bad_input(e.to_string()).with_opt_hint(hint)
    }
}
