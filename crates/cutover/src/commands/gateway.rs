//! `cutover gateway`: what an app's gateway service runs on a Swarm. It
//! answers to the app's names on the app's networks and relays each
//! connection to an edge, which routes it to the live color
//! (`cutover_proxy::gateway`). The deploy engine creates the service;
//! nobody runs this by hand.

use std::time::Duration;

use cutover_proxy::gateway::{relay, RelaySettings};
use tokio_util::sync::CancellationToken;

use super::serve::signals::Signals;
use crate::args::GatewayArgs;
use crate::error::CliError;
use crate::exit::ExitStatus;

/// A connect to an edge on the overlay takes a millisecond; longer means
/// the edge is gone, and the next one is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// At SIGTERM (the service updated or removed), how long calls under way
/// get before the process ends: inside Swarm's default stop grace (10 s).
const GRACE: Duration = Duration::from_secs(8);

pub fn run(args: &GatewayArgs) -> Result<ExitStatus, CliError> {
    crate::logging::init(crate::args::LogFormat::Text, "info");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cutover-gateway")
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let mut signals = Signals::new()?;
        let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| {
            CliError::failure(format!("cannot listen on {}: {e}", args.listen))
                .with_hint("the app's x-cutover.port is taken in the gateway's container: is another process in it?")
        })?;
        tracing::info!(route = %args.route, listen = %args.listen, edges = %args.edges, "relaying calls to the edges");
        let stop = CancellationToken::new();
        let settings = RelaySettings {
            route: args.route.clone(),
            edges: args.edges.clone(),
            connect_timeout: CONNECT_TIMEOUT,
            grace: GRACE,
        };
        let relaying = tokio::spawn(relay(listener, settings, stop.clone()));
        let signal = signals.next().await;
        tracing::info!("{signal}: no new calls; waiting for those under way");
        stop.cancel();
        relaying
            .await
            .map(|()| ExitStatus::Success)
            .map_err(|e| CliError::failure(format!("the gateway failed: {e}")))
    })
}
