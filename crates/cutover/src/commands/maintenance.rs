//! `cutover maintenance on|off [SERVICE...]`: the project's apps answer a
//! 503 page (or hold requests) until `off`.

use cutover_core::maintenance::{Maintenance, MaintenanceCommand as Body, MaintenanceState};

use crate::args::{MaintenanceCommand, ProjectArgs};
use crate::client::DaemonClient;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::stdout;

pub fn run(cmd: &MaintenanceCommand, client: &DaemonClient) -> Result<ExitStatus, CliError> {
    let (project, body, json) = match cmd {
        MaintenanceCommand::On(a) => (
            &a.project,
            Body {
                services: a.services.clone(),
                maintenance: Some(Maintenance {
                    message: a.message.clone(),
                    hold: a.hold,
                    retry_after: a.retry_after,
                    since_ms: 0,
                }),
            },
            a.json,
        ),
        MaintenanceCommand::Off(a) => (
            &a.project,
            Body {
                services: a.services.clone(),
                maintenance: None,
            },
            a.json,
        ),
    };
    let states = change(client, project, &body)?;
    if json {
        stdout::print_json(&states)?;
    } else {
        stdout::print(&shown(&states))?;
    }
    Ok(ExitStatus::Success)
}

fn change(
    client: &DaemonClient,
    project: &ProjectArgs,
    body: &Body,
) -> Result<Vec<MaintenanceState>, CliError> {
    let project = super::project_name(project)?;
    let path = super::project_path(&project, "maintenance");
    super::client_runtime()?.block_on(client.post(&path, body))
}

/// One line per app: what a visitor gets now.
fn shown(states: &[MaintenanceState]) -> String {
    states
        .iter()
        .map(|s| match &s.maintenance {
            None => format!("{}: serving\n", s.service),
            Some(m) => {
                let how = match m.hold {
                    Some(hold) => format!(
                        "new requests are held up to {}, then get the 503 page",
                        humantime::format_duration(hold)
                    ),
                    None => format!(
                        "new requests get the 503 page (Retry-After: {}s)",
                        m.retry_after.as_secs()
                    ),
                };
                format!("{}: in maintenance; {how}\n", s.service)
            }
        })
        .collect()
}
