//! The process exit codes, the contract with CI scripts (docs/style.md).

use std::process::ExitCode;

use cutover_core::progress::Outcome;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: the command did what was asked (including "nothing to do").
    Success,
    /// 1: the operation failed; for a deploy, the previous version still serves.
    Failure,
    /// 2: bad input: flags, environment variables, files the user wrote.
    BadInput,
    /// 3: the daemon could not be reached on its control socket.
    Unreachable,
    /// 4: a lock was not acquired in time.
    LockTimeout,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::BadInput => 2,
            ExitStatus::Unreachable => 3,
            ExitStatus::LockTimeout => 4,
        }
    }
}

/// How an operation the daemon ran ends the command (docs/style.md).
impl From<Outcome> for ExitStatus {
    fn from(outcome: Outcome) -> ExitStatus {
        match outcome {
            Outcome::Ok | Outcome::UpToDate => ExitStatus::Success,
            Outcome::Failed => ExitStatus::Failure,
            Outcome::Invalid => ExitStatus::BadInput,
            // Not known to have succeeded: the caller must not go on as if
            // it had.
            Outcome::Unknown => ExitStatus::Failure,
            Outcome::LockTimeout => ExitStatus::LockTimeout,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        ExitCode::from(status.code())
    }
}
