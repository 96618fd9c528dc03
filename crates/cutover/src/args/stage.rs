//! `promote` and `abort`: the end of a stage, either way.

use std::time::Duration;

use clap::Args;

use super::{parse_duration, ProjectArgs};

#[derive(Debug, Args)]
pub struct StageArgs {
    /// The apps whose stage ends [default: every staged app of the project]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,

    #[command(flatten)]
    pub project: ProjectArgs,

    /// How long to wait when another operation holds the project; 0 fails at once (exit 4)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub wait_lock: Duration,

    /// Print the progress events as JSON lines on stdout, and nothing else
    #[arg(long)]
    pub json: bool,
}
