//! `maintenance on|off` on a Swarm: every live node's edge puts the page
//! on its routes of the project (or takes it off). As on one host it takes
//! no project lock: the site must go down even while a deploy hangs, and a
//! deploy during maintenance switches behind the page. The deploy engine
//! stamps the start, so every node shows one `since`.
//!
//! A node that does not answer leaves the command failed, naming it; the
//! nodes that did keep the change (taking the site down is what was
//! asked), and running the command again is safe. A node down while it
//! ran gets its edge's saved state when it comes back: `status` shows it
//! among the nodes that disagree until the command runs again.

use std::collections::BTreeSet;

use cutover_core::clock::now_ms;
use cutover_core::diag::Report;
use cutover_core::maintenance::{MaintenanceCommand, MaintenanceState};
use cutover_core::naming;
use futures_util::future::join_all;

use super::{edges, Inner};
use crate::maintenance::chosen;

pub(super) async fn maintenance(
    sw: &Inner,
    project: &str,
    mut cmd: MaintenanceCommand,
) -> Result<Vec<MaintenanceState>, Report> {
    // 1. The apps any node routes, and those the command is for.
    let edges = edges::live(&*sw.cluster, &sw.edges).await?;
    let answers = join_all(edges.iter().map(|e| e.services(&sw.edges))).await;
    let prefix = naming::route(project, "");
    let mut routed = BTreeSet::new();
    for (edge, answer) in edges.iter().zip(answers) {
        let services = answer.map_err(|e| {
            Report::new(format!(
                "the cutover edge on {} did not answer: {e}",
                edge.node
            ))
            .hint("nothing was changed; run it again once every node's edge answers")
        })?;
        routed.extend(
            services
                .into_iter()
                .filter_map(|s| s.name.strip_prefix(&prefix).map(str::to_string)),
        );
    }
    let routed: Vec<String> = routed.into_iter().collect();
    let services = chosen(project, &cmd.services, &routed)?;
    if let Some(m) = &mut cmd.maintenance {
        m.validate()?;
        if m.since_ms == 0 {
            m.since_ms = now_ms();
        }
    }

    // 2. Every node, every app.
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for service in services {
        let route = naming::route(project, &service);
        let set = join_all(edges.iter().map(|e| {
            let (route, m) = (&route, cmd.maintenance.as_ref());
            async move { (e.node.clone(), e.set_maintenance(&sw.edges, route, m).await) }
        }))
        .await;
        let mut state = None;
        for (node, answer) in set {
            match answer {
                Ok(status) => state = Some(status.maintenance),
                Err(e) => failed.push(format!("{node}: {route}: {e}")),
            }
        }
        if let Some(maintenance) = state {
            out.push(MaintenanceState {
                service,
                maintenance,
            });
        }
    }
    if !failed.is_empty() {
        return Err(
            Report::new("the maintenance reached only some nodes")
                .detail(failed.join("\n"))
                .hint("the others have it; run the command again once every node's edge answers (`cutover status` shows each node's)"),
        );
    }
    Ok(out)
}
