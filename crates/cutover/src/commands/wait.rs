//! `cutover wait ID`: follow a deploy (or rollback, or down) the daemon is
//! running or ran in the last hour, from its first step, to its outcome.

use hyper::Method;

use crate::args::WaitArgs;
use crate::client::DaemonClient;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::progress::{Mode, Renderer};

pub fn run(args: &WaitArgs, client: &DaemonClient) -> Result<ExitStatus, CliError> {
    cutover_core::progress::check_operation_id(&args.id)
        .map_err(|e| CliError::bad_input(e).with_hint("give the id `deploy --detach` printed"))?;
    let project = super::project_name(&args.project)?;
    let path = super::project_path(&project, &format!("operations/{}", args.id));
    super::client_runtime()?.block_on(async {
        let stream = client.stream(Method::GET, &path, None).await?;
        Renderer::new(Mode::detect(args.json)).run(stream).await
    })
}
