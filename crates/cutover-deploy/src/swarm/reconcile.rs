//! Keeps every live node's edge on the current routes, between deploys:
//! a node that missed a switch or comes back (its edge restored the routes
//! it last saved) is brought to the color most nodes serve, and when Swarm
//! moves a task (its node died, the task was restarted) every edge gets
//! the live color's new addresses.
//!
//! The current route of an app is read, never stored here, so a manager
//! failover loses nothing: its color is the majority of the edges'
//! (`cutover_core::fleet::majority`; a tie goes to the color switched to
//! last), its settings are what those edges were given, and its targets
//! are the live color's running tasks. A live color with no running task
//! changes nothing. A project being
//! deployed or rolled back is left alone: the pass takes the project's
//! routes lock without waiting, and an operation waits for a pass.
//!
//! A node is brought over with the two phases on that node alone: its
//! edge gates the targets, then switches; its old set drains as after any
//! switch (WebSockets on it get 1012 at the drain deadline).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use cutover_core::fleet::{self, Vote};
use cutover_core::naming;
use cutover_core::service::DeployRequest;
use cutover_core::status::ServiceStatus;
use futures_util::future::join_all;

use super::edges::{self, Edge};
use super::Inner;
use crate::lock::Holder;

/// One pass over every route the edges serve; returns what it changed,
/// one line each.
pub(super) async fn pass(sw: &Inner) -> Vec<String> {
    let edges = match edges::live(&*sw.cluster, &sw.edges).await {
        Ok(edges) => edges,
        Err(e) => {
            tracing::debug!(error = %e, "reconcile: the edges are not known");
            return Vec::new();
        }
    };
    let answers = join_all(edges.iter().map(|e| e.services(&sw.edges))).await;
    // Only edges that answered take part; one that did not is tried again
    // at the next pass.
    let views: Vec<(Edge, Vec<ServiceStatus>)> = edges
        .into_iter()
        .zip(answers)
        .filter_map(|(edge, answer)| answer.ok().map(|services| (edge, services)))
        .collect();
    let routes: BTreeSet<String> = views
        .iter()
        .flat_map(|(_, services)| services.iter().map(|s| s.name.clone()))
        .filter(|name| name.contains('/'))
        .collect();
    let edges: Vec<Edge> = views.into_iter().map(|(edge, _)| edge).collect();
    let mut changed = Vec::new();
    for route in routes {
        changed.extend(route_pass(sw, &route, &edges).await);
    }
    changed
}

async fn route_pass(sw: &Inner, route: &str, edges: &[Edge]) -> Vec<String> {
    let (project, app) = route.split_once('/').expect("filtered on '/'");
    let holder = Holder {
        operation: "reconcile".into(),
        version: None,
        since: SystemTime::now(),
    };
    let Ok(_guard) = sw
        .routes
        .acquire(project, holder, Duration::ZERO, |_| {})
        .await
    else {
        return Vec::new();
    };
    // Asked again under the lock: an operation that ran between the first
    // look and now changed them, and a pass on the first look would undo it.
    let answers = join_all(edges.iter().map(|e| e.route(&sw.edges, route))).await;
    let fresh: Vec<(&Edge, Option<ServiceStatus>)> = edges
        .iter()
        .zip(answers)
        .filter_map(|(edge, answer)| answer.ok().map(|status| (edge, status)))
        .collect();
    let served: Vec<(&Edge, Option<&ServiceStatus>)> = fresh
        .iter()
        .map(|(edge, status)| (*edge, status.as_ref()))
        .collect();
    let views = served
        .iter()
        .filter_map(|(_, s)| s.map(|s| (s.active.color, s.active.since_ms)));
    let Some(color) = fleet::majority(views) else {
        return Vec::new();
    };
    let Some(template) = served
        .iter()
        .filter_map(|(_, s)| *s)
        .find(|s| s.active.color == color)
        .map(|s| s.config.clone())
    else {
        return Vec::new();
    };
    let Some(targets) = live_targets(sw, project, app, &template).await else {
        return Vec::new();
    };
    let mut desired = template;
    desired.targets = targets.iter().cloned().collect();
    desired.color = Some(color);
    let mut changed = Vec::new();
    for (edge, status) in served {
        let current = status.filter(|s| s.active.color == color).map(|s| {
            s.active
                .targets
                .iter()
                .map(|t| t.addr.clone())
                .collect::<BTreeSet<_>>()
        });
        if current.as_ref() == Some(&targets) {
            continue;
        }
        let outcome = match bring_over(sw, edge, route, &desired).await {
            Ok(()) => "brought over".to_string(),
            Err(e) => format!("not brought over{e}"),
        };
        let color = desired.color.map(|c| c.to_string()).unwrap_or_default();
        tracing::info!(route, node = %edge.node, %outcome, targets = ?desired.targets, "reconcile");
        changed.push(format!(
            "{route} on {}: {color} at {}: {outcome}",
            edge.node,
            desired.targets.join(" ")
        ));
    }
    changed
}

/// The live color's running tasks, where the edges reach them; `None`
/// when it has none (nothing better to send).
async fn live_targets(
    sw: &Inner,
    project: &str,
    app: &str,
    template: &DeployRequest,
) -> Option<BTreeSet<String>> {
    let color = template.color?;
    let service = naming::swarm_app(project, app, color);
    let info = sw.cluster.inspect_service(&service).await.ok()??;
    let port = template
        .targets
        .first()
        .and_then(|t| t.parse::<SocketAddr>().ok())?
        .port();
    let tasks = sw.cluster.tasks(&info).await.ok()?;
    let targets: BTreeSet<String> = tasks
        .iter()
        .filter(|t| t.is_up())
        .filter_map(|t| t.ip_on(&sw.edges.network))
        .map(|ip| SocketAddr::new(ip, port).to_string())
        .collect();
    (!targets.is_empty()).then_some(targets)
}

/// Both phases on one node; the error says why it was not brought over,
/// starting with its separator (`: ...`, `, not healthy from there: ...`).
pub(super) async fn bring_over(
    sw: &Inner,
    edge: &Edge,
    route: &str,
    desired: &DeployRequest,
) -> Result<(), String> {
    match edge.prepare(&sw.edges, route, desired).await {
        Vote::Ready { set_id } => match edge.commit(&sw.edges, route, set_id).await {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(": {e}")),
        },
        Vote::Unhealthy { detail } => Err(format!(", not healthy from there: {detail}")),
        Vote::Unreachable { error } => Err(format!(": {error}")),
    }
}
