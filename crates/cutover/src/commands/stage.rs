//! `cutover promote` and `cutover abort`: the daemon ends the stage that
//! `deploy --preview` or `--canary` began, by a switch to the staged
//! version or by draining it away.

use cutover_core::progress::StageCommand;
use hyper::Method;

use crate::args::StageArgs;
use crate::client::DaemonClient;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::progress::{Mode, Renderer};

/// `end` is the control API's verb: `promote` or `abort`.
pub fn run(args: &StageArgs, end: &str, client: &DaemonClient) -> Result<ExitStatus, CliError> {
    let project = super::project_name(&args.project)?;
    let command = StageCommand {
        services: args.services.clone(),
        wait_lock: args.wait_lock,
    };
    let body = crate::client::Body::json(&command);
    let path = super::project_path(&project, end);
    super::client_runtime()?.block_on(async {
        let stream = client.stream(Method::POST, &path, Some(body)).await?;
        Renderer::new(Mode::detect(args.json)).run(stream).await
    })
}
