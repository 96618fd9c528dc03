//! `cutover deploy`: resolve the compose project here, hand it to the daemon,
//! show the progress, exit with the outcome's code.

use cutover_core::progress::{DeployCommand, PullPolicy};
use hyper::Method;

use crate::args::{DeployArgs, Pull};
use crate::client::DaemonClient;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::progress::{Mode, Renderer};

pub fn pull_policy(pull: Pull) -> PullPolicy {
    match pull {
        Pull::Missing => PullPolicy::Missing,
        Pull::Always => PullPolicy::Always,
        Pull::Never => PullPolicy::Never,
    }
}

pub fn run(args: &DeployArgs, client: &DaemonClient) -> Result<ExitStatus, CliError> {
    let project = super::load(&args.project)?;
    let path = super::project_path(&project.name, "deploy");
    let registry_auth =
        crate::docker_config::registry_auth(&project, &super::unicode_env(std::env::vars_os()))?;
    let command = DeployCommand {
        project,
        services: args.services.clone(),
        force: args.force,
        version: args.version.clone(),
        pull: pull_policy(args.pull),
        wait_lock: args.wait_lock,
        adopt: args.adopt,
        registry_auth,
    };
    let body = serde_json::to_vec(&command).expect("commands serialize");
    super::client_runtime()?.block_on(async {
        let stream = client.stream(Method::POST, &path, Some(body)).await?;
        Renderer::new(Mode::detect(args.json)).run(stream).await
    })
}
