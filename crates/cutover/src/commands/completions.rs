//! `cutover completions SHELL` and `cutover man`: generated from the same
//! clap definitions the parser uses, so they never fall behind the flags.

use clap::CommandFactory;

use crate::args::{Cli, CompletionsArgs};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::stdout;

pub fn completions(args: &CompletionsArgs) -> Result<ExitStatus, CliError> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "cutover", &mut out);
    print(out)
}

pub fn man() -> Result<ExitStatus, CliError> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| CliError::failure(format!("cannot render the man page: {e}")))?;
    print(out)
}

fn print(bytes: Vec<u8>) -> Result<ExitStatus, CliError> {
    let text = String::from_utf8(bytes)
        .map_err(|e| CliError::failure(format!("the generated text is not UTF-8: {e}")))?;
    stdout::print(&text)?;
    Ok(ExitStatus::Success)
}
