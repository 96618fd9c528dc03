//! The signals `cutover serve` acts on.

use tokio::signal::unix::{signal, SignalKind};

use crate::error::CliError;

/// The signals `cutover serve` handles: SIGTERM and SIGINT stop it with a
/// drain; SIGHUP, which by default would kill it at once (a closed SSH
/// session, or `systemctl reload` on a unit without ExecReload), is
/// logged and changes nothing: there is no configuration file to re-read,
/// and routes change through the control API.
pub(crate) struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn new() -> Result<Signals, CliError> {
        let install = |kind| {
            signal(kind).map_err(|e| CliError::failure(format!("cannot handle signals: {e}")))
        };
        Ok(Signals {
            term: install(SignalKind::terminate())?,
            int: install(SignalKind::interrupt())?,
            hup: install(SignalKind::hangup())?,
        })
    }

    /// The next signal that stops the daemon.
    pub(crate) async fn next(&mut self) -> &'static str {
        loop {
            tokio::select! {
                _ = self.term.recv() => return "SIGTERM",
                _ = self.int.recv() => return "SIGINT",
                _ = self.hup.recv() => tracing::info!(
                    "SIGHUP: nothing to reload (settings are flags, routes change through the control API); traffic is unaffected"
                ),
            }
        }
    }
}
