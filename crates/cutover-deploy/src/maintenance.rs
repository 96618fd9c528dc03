//! `maintenance on|off` for a project's apps: a change of their routes in
//! the proxy, persisted with them. It takes no project lock: the site must
//! be taken down even while a deploy hangs, and a deploy during
//! maintenance switches behind the page.

use cutover_core::diag::Report;
use cutover_core::maintenance::{MaintenanceCommand, MaintenanceState};
use cutover_core::naming;

use crate::DeployEngine;

impl DeployEngine {
    pub async fn maintenance(
        &self,
        project: &str,
        cmd: MaintenanceCommand,
    ) -> Result<Vec<MaintenanceState>, Report> {
        let proxy = &self.inner.proxy;
        let prefix = naming::route(project, "");
        let routed: Vec<String> = proxy
            .status()
            .into_iter()
            .filter_map(|s| s.name.strip_prefix(&prefix).map(str::to_string))
            .collect();
        let services = chosen(project, &cmd.services, &routed)?;
        // Checked before the first route changes: all or none.
        if let Some(m) = &cmd.maintenance {
            m.validate()?;
        }
        let mut out = Vec::new();
        for service in services {
            let status = proxy
                .set_maintenance(&naming::route(project, &service), cmd.maintenance.clone())
                .map_err(Report::from)?;
            out.push(MaintenanceState {
                service,
                maintenance: status.maintenance,
            });
        }
        self.inner.routes_changed().await;
        Ok(out)
    }
}

/// The apps a `maintenance` command is for: those it names, each routed,
/// or every app of `project` that is (`routed`).
pub(crate) fn chosen(
    project: &str,
    named: &[String],
    routed: &[String],
) -> Result<Vec<String>, Report> {
    if named.is_empty() {
        if routed.is_empty() {
            return Err(
                Report::new(format!("project {project} has no app the proxy routes"))
                    .hint("deploy it first; `cutover status` shows what runs"),
            );
        }
        return Ok(routed.to_vec());
    }
    if let Some(missing) = named.iter().find(|s| !routed.contains(s)) {
        return Err(
            Report::new(format!("no app {missing} of project {project} is routed")).hint(format!(
                "name one of the apps the proxy routes: {}",
                if routed.is_empty() {
                    "none".to_string()
                } else {
                    routed.join(", ")
                }
            )),
        );
    }
    Ok(named.to_vec())
}
