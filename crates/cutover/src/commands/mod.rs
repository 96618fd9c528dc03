//! One module per subcommand; each takes its parsed arguments and returns the
//! exit status or a [`CliError`].

mod serve;
mod status;

use crate::args::{Cli, Command, Origins};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::settings::HostEnv;

pub fn run(cli: Cli, origins: Origins) -> Result<ExitStatus, CliError> {
    let env = HostEnv::from_process();
    match &cli.command {
        Command::Serve(args) => serve::run(args, &cli.global, &origins, &env),
        Command::Status(args) => status::run(args, &cli.global, &origins, &env),
    }
}

/// A runtime for client commands, which do little concurrent work.
fn client_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))
}
