//! `cutover status`: what the daemon routes to, and how healthy it is.

use cutover_core::status::ServiceStatus;

use crate::args::{GlobalArgs, LogFormat, Origins, StatusArgs};
use crate::client::DaemonClient;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::output;
use crate::settings::{socket_path, HostEnv};

pub fn run(
    args: &StatusArgs,
    global: &GlobalArgs,
    origins: &Origins,
    env: &HostEnv,
) -> Result<ExitStatus, CliError> {
    crate::logging::init(LogFormat::Text, "warn");
    let client = DaemonClient::new(socket_path(global, origins, env)?);
    let services: Vec<ServiceStatus> =
        super::client_runtime()?.block_on(client.get("/v1/services"))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&services).expect("statuses serialize")
        );
    } else {
        print!("{}", output::services_table(&services));
    }
    Ok(ExitStatus::Success)
}
