//! `cutover down`: the daemon stops and removes the project. Volumes stay
//! unless `--volumes` is given.

use cutover_core::progress::DownCommand;
use hyper::Method;

use crate::args::DownArgs;
use crate::client::DaemonClient;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::progress::{Mode, Renderer};

pub fn run(args: &DownArgs, client: &DaemonClient) -> Result<ExitStatus, CliError> {
    let project = super::project_name(&args.project)?;
    let body = crate::client::Body::json(&DownCommand {
        volumes: args.volumes,
        wait_lock: args.wait_lock,
    });
    let path = super::project_path(&project, "down");
    super::client_runtime()?.block_on(async {
        let stream = client.stream(Method::POST, &path, Some(body)).await?;
        Renderer::new(Mode::detect(args.json)).run(stream).await
    })
}
