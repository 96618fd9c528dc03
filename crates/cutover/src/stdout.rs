//! What a command prints on stdout, written so that a reader that goes away
//! (`cutover status --json | head -1`) ends the command quietly: `print!`
//! would panic on the broken pipe and exit 101.

use std::io::{ErrorKind, Write};

use serde::Serialize;

use crate::error::CliError;

/// Writes `text` as it is. A closed pipe is success: the reader took what it
/// wanted. Any other write error (a full disk behind `>`) is a failure.
pub fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => {
            Err(CliError::failure(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// `value` as indented JSON and a newline, as `--json` prints it.
pub fn print_json(value: &impl Serialize) -> Result<(), CliError> {
    let mut text = serde_json::to_string_pretty(value).expect("wire types serialize");
    text.push('\n');
    print(&text)
}
