//! `cutover plan`: what `deploy` would do with the compose project here,
//! computed by the daemon against what runs. Changes nothing.

use cutover_core::plan::Plan;
use cutover_core::progress::{DeployCommand, PullPolicy};

use crate::args::PlanArgs;
use crate::client::DaemonClient;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::output;
use crate::stdout;

pub fn run(args: &PlanArgs, client: &DaemonClient) -> Result<ExitStatus, CliError> {
    let mut project = super::load(&args.project)?;
    let remote = !client.host().is_local();
    if remote {
        crate::payload::inline_files(&mut project)?;
    }
    let name = project.name.clone();
    let hooks: std::collections::BTreeMap<_, _> = project
        .apps
        .iter()
        .filter(|a| !a.cutover.hooks.is_empty())
        .map(|a| (a.service.name.clone(), a.cutover.hooks.clone()))
        .collect();
    // The plan asks registries whether they have the images it would pull.
    let registry_auth =
        crate::docker_config::registry_auth(&project, &super::unicode_env(std::env::vars_os()))?;
    let command = DeployCommand {
        project,
        services: args.services.clone(),
        force: args.force,
        version: None,
        // What `deploy` does by default. The daemon's plan never pulls: it
        // lists what the deploy would pull and asks the registry for it.
        pull: PullPolicy::Missing,
        wait_lock: std::time::Duration::ZERO,
        adopt: false,
        registry_auth,
        deploy_id: None,
        remote,
        // A plan builds nothing: the contexts are uploaded by the deploy.
        build_contexts: Default::default(),
        stage: None,
    };
    let path = super::project_path(&name, "plan");
    let plan: serde_json::Value =
        super::client_runtime()?.block_on(client.post(&path, &command))?;
    if args.json {
        stdout::print_json(&plan)?;
        return Ok(ExitStatus::Success);
    }
    let plan: Plan = serde_json::from_value(plan).map_err(|e| {
        CliError::failure(format!(
            "the daemon's plan is not what this cutover expects: {e}"
        ))
        .with_hint("the daemon may be another version of cutover; compare `cutover --version` with GET /v1/health")
    })?;
    stdout::print(&output::plan_text(&name, &plan))?;
    stdout::print(&output::plan_hooks(&plan, &hooks))?;
    Ok(ExitStatus::Success)
}
