//! `remove-volumes`: what the Swarm deploy engine's `down --volumes` job
//! runs on every node.

use std::time::Duration;

use clap::Args;

/// `cutover remove-volumes`: one task of the global job
/// `<project>_cutover_volumes`, with its node's Docker socket
/// (docs/swarm.md, "A deploy on a swarm").
#[derive(Debug, Args)]
pub struct RemoveVolumesArgs {
    /// The project whose volumes (those labelled with it) are removed
    #[arg(long, value_name = "NAME")]
    pub project: String,

    /// How long a volume still held by a stopping container is waited for
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration, default_value = "60s")]
    pub patience: Duration,
}
