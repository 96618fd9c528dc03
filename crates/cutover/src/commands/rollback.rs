//! `cutover rollback`: the daemon switches an app back to a kept version.

use cutover_core::progress::RollbackCommand;
use hyper::Method;

use crate::args::RollbackArgs;
use crate::client::DaemonClient;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::progress::{Mode, Renderer};

pub fn run(args: &RollbackArgs, client: &DaemonClient) -> Result<ExitStatus, CliError> {
    let project = super::project_name(&args.project)?;
    let command = RollbackCommand {
        service: args.service.clone(),
        to: args.to.clone(),
        wait_lock: args.wait_lock,
    };
    let body = crate::client::Body::json(&command);
    let path = super::project_path(&project, "rollback");
    super::client_runtime()?.block_on(async {
        let stream = client.stream(Method::POST, &path, Some(body)).await?;
        Renderer::new(Mode::detect(args.json)).run(stream).await
    })
}
