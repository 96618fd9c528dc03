//! `cutover deploy`: resolve the compose project here, hand it to the daemon
//! (with the files it cannot read itself when it is on another machine),
//! show the progress, exit with the outcome's code.

use cutover_core::progress::{DeployCommand, PullPolicy, OPERATION_ID_HEADER};
use cutover_core::stage::StageMode;
use hyper::Method;

use crate::args::{DeployArgs, Pull};
use crate::client::{Body, DaemonClient};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::payload;
use crate::progress::{Mode, Renderer};

pub fn pull_policy(pull: Pull) -> PullPolicy {
    match pull {
        Pull::Missing => PullPolicy::Missing,
        Pull::Always => PullPolicy::Always,
        Pull::Never => PullPolicy::Never,
    }
}

/// `--preview` or `--canary N%`: what to stage instead of a switch.
fn stage(args: &DeployArgs) -> Result<Option<StageMode>, CliError> {
    match (&args.canary, args.preview) {
        (Some(share), _) => StageMode::canary(share)
            .map(Some)
            .map_err(CliError::bad_input),
        (None, true) => Ok(Some(StageMode::Preview)),
        (None, false) => Ok(None),
    }
}

pub fn run(args: &DeployArgs, client: &DaemonClient) -> Result<ExitStatus, CliError> {
    let stage = stage(args)?;
    let mut project = super::load(&args.project)?;
    let remote = !client.host().is_local();
    if remote {
        payload::inline_files(&mut project)?;
    }
    let path = super::project_path(&project.name, "deploy");
    let registry_auth =
        crate::docker_config::registry_auth(&project, &super::unicode_env(std::env::vars_os()))?;
    super::client_runtime()?.block_on(async {
        let build_contexts = if remote {
            payload::upload_contexts(&project, client).await?
        } else {
            Default::default()
        };
        let command = DeployCommand {
            project,
            services: args.services.clone(),
            force: args.force,
            version: args.version.clone(),
            pull: pull_policy(args.pull),
            wait_lock: args.wait_lock,
            adopt: args.adopt,
            registry_auth,
            deploy_id: args.deploy_id.clone(),
            remote,
            build_contexts,
            stage,
        };
        let stream = client
            .stream(Method::POST, &path, Some(Body::json(&command)))
            .await?;
        if args.detach {
            let id = stream
                .headers
                .get(OPERATION_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            return print_detached(&id, args.json);
        }
        Renderer::new(Mode::detect(args.json)).run(stream).await
    })
}

/// `--detach`: the id on stdout for the script, and on stderr what to do
/// with it. The daemon goes on with the deploy when this connection closes.
fn print_detached(id: &str, json: bool) -> Result<ExitStatus, CliError> {
    if id.is_empty() {
        return Err(
            CliError::failure("the daemon started the deploy but sent no id for it").with_hint(
                "the daemon may be an older cutover; follow the deploy with `cutover status`",
            ),
        );
    }
    if json {
        crate::stdout::print_json(&serde_json::json!({ "operation_id": id }))?;
    } else {
        crate::stdout::print(&format!("{id}\n"))?;
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("deploy {id} started; follow it with `cutover wait {id}`\n").as_bytes(),
        );
    }
    Ok(ExitStatus::Success)
}
