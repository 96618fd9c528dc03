//! The `cutover` binary: `cutover serve` is the per-host daemon; every other
//! subcommand is a client of its control socket.
#![forbid(unsafe_code)]

mod allocator;
mod args;
mod client;
mod commands;
mod contexts;
mod docker_config;
mod endpoint;
mod error;
mod exit;
mod handoff;
mod logging;
mod output;
mod payload;
mod progress;
mod settings;
mod stdout;

use std::process::ExitCode;

use exit::ExitStatus;

fn main() -> ExitCode {
    restrict_umask();
    let (cli, origins) = match args::parse() {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            // --help and --version are "errors" to clap but succeed.
            return if e.use_stderr() {
                ExitStatus::BadInput.into()
            } else {
                ExitStatus::Success.into()
            };
        }
    };
    match commands::run(cli, origins) {
        Ok(status) => status.into(),
        Err(e) => {
            e.print();
            e.status.into()
        }
    }
}

/// Files and sockets cutover creates hold routes and control access: nobody
/// but the owner gets any permission unless cutover grants it explicitly (the
/// control socket's group mode). Set before any thread exists, as umask is
/// process-wide.
fn restrict_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}
