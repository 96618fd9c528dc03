//! `cutover status`: what the daemon routes to, and how healthy it is; with
//! a compose project here (or `-p`/`-f`), that project's apps, accessories
//! and networks.

use cutover_core::fleet::ClusterStatus;
use cutover_core::report::{ProjectStatus, ProjectSummary};
use cutover_core::status::ServiceStatus;
use cutover_core::tls::CertificateStatus;

use crate::args::StatusArgs;
use crate::client::{api_error, parse_answer, DaemonClient};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::output;
use crate::progress::{color_enabled, Paint};
use crate::stdout;
use hyper::{Method, StatusCode};

pub fn run(args: &StatusArgs, client: &DaemonClient) -> Result<ExitStatus, CliError> {
    let project = super::optional_project_name(&args.project)?;
    let runtime = super::client_runtime()?;
    // A Swarm deploy engine answers for every node's edge.
    if let Some(cluster) = runtime.block_on(cluster(client))? {
        if args.json {
            stdout::print_json(&cluster)?;
        } else {
            stdout::print(&output::nodes_table(&cluster, project.as_deref()))?;
        }
        return Ok(ExitStatus::Success);
    }
    let Some(project) = project else {
        let services: Vec<ServiceStatus> = runtime.block_on(client.get("/v1/services"))?;
        if args.json {
            stdout::print_json(&services)?;
        } else {
            stdout::print(&output::services_table(&services))?;
            // Projects are an addition to the table: a daemon without Docker
            // (503) still shows its services.
            if let Ok(projects) =
                runtime.block_on(client.get::<Vec<ProjectSummary>>("/v1/projects"))
            {
                stdout::print(&output::projects_table(&projects))?;
            }
            stdout::print(&output::certificates_table(&certificates(
                &runtime, client, None,
            )))?;
        }
        return Ok(ExitStatus::Success);
    };
    let status: serde_json::Value =
        runtime.block_on(client.get(&super::project_path(&project, "status")))?;
    if args.json {
        stdout::print_json(&status)?;
        return Ok(ExitStatus::Success);
    }
    let status: ProjectStatus = serde_json::from_value(status).map_err(|e| {
        CliError::failure(format!(
            "the daemon's project status is not what this cutover expects: {e}"
        ))
    })?;
    stdout::print(&output::project_status(
        &status,
        Paint {
            on: color_enabled(),
        },
        cutover_core::clock::now_ms(),
    ))?;
    let certs = certificates(&runtime, client, Some(&project));
    stdout::print(&output::certificates_table(&certs))?;
    Ok(ExitStatus::Success)
}

/// Every node's view, from a Swarm deploy engine; `None` from a host
/// daemon (404), or for a token that reads one project only (403): the
/// project's own status is asked for then.
async fn cluster(client: &DaemonClient) -> Result<Option<ClusterStatus>, CliError> {
    let (status, body) = client.request(Method::GET, "/v1/cluster", None).await?;
    match status {
        StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => Ok(None),
        s if s.is_success() => parse_answer("GET", "/v1/cluster", &body).map(Some),
        s => Err(api_error(s, &body)),
    }
}

/// The daemon's certificates (a project's only, when named); none from a
/// daemon too old to say.
fn certificates(
    runtime: &tokio::runtime::Runtime,
    client: &DaemonClient,
    project: Option<&str>,
) -> Vec<CertificateStatus> {
    let all: Vec<CertificateStatus> = runtime
        .block_on(client.get("/v1/certificates"))
        .unwrap_or_default();
    match project {
        None => all,
        Some(p) => {
            let prefix = format!("{p}/");
            all.into_iter()
                .filter(|c| c.services.iter().any(|s| s.starts_with(&prefix)))
                .collect()
        }
    }
}
