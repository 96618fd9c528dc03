//! `gateway`: what an app's gateway service runs on a Swarm.

use clap::Args;

/// `cutover gateway`: started by the Swarm deploy engine as the service
/// `<project>_<app>` (docs/swarm.md, "Calls to an app by name").
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The edges' route of the app (`project/service`)
    #[arg(long, value_name = "ROUTE")]
    pub route: String,

    /// Where callers reach the app: `0.0.0.0:PORT`, the app's port
    #[arg(long, value_name = "ADDR")]
    pub listen: std::net::SocketAddr,

    /// A name resolving to every edge, and the edges' --gateway-listen port
    #[arg(
        long,
        value_name = "HOST:PORT",
        default_value = "tasks.cutover_edge:26092"
    )]
    pub edges: String,
}
