//! `cutover history`: the project's finished deploys, rollbacks and downs.

use cutover_core::report::HistoryEntry;

use crate::args::HistoryArgs;
use crate::client::DaemonClient;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::output;
use crate::stdout;

pub fn run(args: &HistoryArgs, client: &DaemonClient) -> Result<ExitStatus, CliError> {
    let project = super::project_name(&args.project)?;
    let mut path = super::project_path(&project, "history");
    if let Some(service) = &args.service {
        path.push_str(&format!("?service={}", super::query_value(service)));
    }
    let entries: serde_json::Value = super::client_runtime()?.block_on(client.get(&path))?;
    if args.json {
        stdout::print_json(&entries)?;
        return Ok(ExitStatus::Success);
    }
    let entries: Vec<HistoryEntry> = serde_json::from_value(entries).map_err(|e| {
        CliError::failure(format!(
            "the daemon's history is not what this cutover expects: {e}"
        ))
    })?;
    stdout::print(&output::history_table(&project, &entries))?;
    Ok(ExitStatus::Success)
}
