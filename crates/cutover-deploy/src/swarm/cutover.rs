//! The part of an app's cutover a deploy and a rollback share, once the
//! color that takes over runs: its tasks' addresses, the switch on every
//! node (or on none), then the replaced color's drain on each node and its
//! scale to 0, kept for the next rollback.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use cutover_core::diag::Report;
use cutover_core::naming;
use cutover_core::progress::ProgressEvent;
use cutover_core::service::{Color, DeployRequest};
use cutover_core::stage::Stage;

use super::edges::Edge;
use super::switch::{self, NodeRoute, PhaseTwo};
use super::Inner;
use crate::events::Progress;
use crate::executor::Stop;

/// Beyond the drain deadlines, for the edges to report the drain.
pub(super) const DRAIN_SLACK: Duration = Duration::from_secs(10);

/// A color about to take an app's route on every node.
pub(super) struct Candidate<'a> {
    pub project: &'a str,
    /// The app (the compose service).
    pub app: &'a str,
    pub color: Color,
    pub version: String,
    /// The route the nodes get, with this color's targets.
    pub req: DeployRequest,
    /// The color it replaces, `None` on a first deploy.
    pub live: Option<Color>,
    /// Whether the replaced color is kept at 0 tasks for a rollback, or
    /// removed (`keep: 0`).
    pub keep_old: bool,
    /// Staged beside the live color (`--preview`, `--canary`) instead of
    /// switched to: `promote` ends it (`stage.rs`).
    pub stage: Option<Stage>,
}

/// What undoes the candidate's service when the switch does not happen.
#[derive(Clone, Copy)]
pub(super) enum Undo {
    /// A deploy's new service goes.
    Remove,
    /// A rollback's kept version goes back to 0 tasks, still kept.
    ScaleToZero,
}

/// Waits for `service`'s tasks and returns where the edges reach them.
pub(super) async fn targets(
    sw: &Inner,
    service: &str,
    port: u16,
    known: &BTreeSet<String>,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, Report> {
    let tasks = sw
        .cluster
        .wait_converged(service, known, timeout)
        .await
        .map_err(Report::from)?;
    tasks
        .iter()
        .map(|t| {
            let ip = t.ip_on(&sw.edges.network).ok_or_else(|| {
                Report::new(format!(
                    "task {} of {service} has no address on the edge network {}",
                    t.id, sw.edges.network
                ))
                .hint("the app's services must join the edges' overlay; cutover adds it")
            })?;
            Ok(SocketAddr::new(ip, port))
        })
        .collect()
}

/// Switches every node to `c`, or none; then drains and keeps the color
/// it replaced.
pub(super) async fn cut_over(
    sw: &Inner,
    views: &[NodeRoute],
    c: &Candidate<'_>,
    undo: Undo,
    p: &Progress,
) -> Result<(), Stop> {
    let route = naming::route(c.project, c.app);
    let service = naming::swarm_app(c.project, c.app, c.color);

    // 1. Every node gates the tasks from where it stands; all switch (or
    //    stage) or none.
    let (then, verb) = match &c.stage {
        Some(stage) => (PhaseTwo::Stage(stage), "staged"),
        None => (PhaseTwo::Commit, "switched"),
    };
    let step = p.step(match &c.stage {
        Some(stage) => format!(
            "stage {route} {} ({}) on {} nodes",
            c.color,
            stage.mode.describe(),
            views.len()
        ),
        None => format!("switch {route} to {} on {} nodes", c.color, views.len()),
    });
    let switched = match switch::switch(views, &sw.edges, &route, &c.req, then).await {
        Ok(s) => s,
        Err(report) => {
            p.failed(step, &report.message);
            undo_service(sw, &service, undo, p).await;
            return Err(Stop::failed(report));
        }
    };
    let spread = switched
        .spread()
        .map(|d| format!(" within {} ms of each other", d.as_millis()))
        .unwrap_or_default();
    p.done(
        step,
        Some(format!("{} nodes {verb}{spread}", switched.committed.len())),
    );
    for missed in &switched.missed {
        p.warn(
            Report::new(format!("a node was not {verb}: {missed}")).hint(
                "that node serves the old color alone until its edge takes the current routes",
            ),
        );
    }
    if c.stage.is_some() {
        // The live color serves on, beside the staged one.
        return Ok(());
    }
    p.emit(ProgressEvent::Switched {
        service: c.app.to_string(),
        color: c.color,
        version: c.version.clone(),
    });

    // 2. The replaced color drains on every node, then is kept at 0 tasks.
    let Some(old) = c.live else {
        return Ok(());
    };
    let switched = switched_sets(views, |node| switched.committed.contains_key(node));
    retire(sw, switched, &route, c, old, p).await;
    Ok(())
}

/// The sets the nodes in `views` served before a switch, on the nodes
/// that switched: those sets drain now.
pub(super) fn switched_sets(
    views: &[NodeRoute],
    switched: impl Fn(&str) -> bool,
) -> Vec<(Edge, u64)> {
    views
        .iter()
        .filter(|v| switched(&v.edge.node))
        .filter_map(|v| Some((v.edge.clone(), v.active?.1)))
        .collect()
}

/// The replaced color `old` drains in `sets` (each node's set that served
/// it), then is kept at 0 tasks or removed.
pub(super) async fn retire(
    sw: &Inner,
    sets: Vec<(Edge, u64)>,
    route: &str,
    c: &Candidate<'_>,
    old: Color,
    p: &Progress,
) {
    let old_service = naming::swarm_app(c.project, c.app, old);
    let timeouts = &c.req.timeouts;
    let step = p.step(format!("drain {old_service} on every node"));
    let deadline = timeouts.drain.max(timeouts.websocket_drain) + DRAIN_SLACK;
    let late = switch::drain_sets(sets, &sw.edges, route, deadline).await;
    if late.is_empty() {
        p.done(step, None);
    } else {
        p.failed(step, late.join("; "));
    }
    let (step, retired) = if c.keep_old {
        let step = p.step(format!("scale {old_service} to 0, kept for rollback"));
        (step, sw.cluster.scale_service(&old_service, 0).await)
    } else {
        let step = p.step(format!("remove {old_service} (keep: 0)"));
        (
            step,
            sw.cluster.remove_service(&old_service).await.map(drop),
        )
    };
    match retired {
        Ok(()) => p.done(step, None),
        Err(e) => p.failed(step, &e),
    }
}

/// Undoes a candidate's service after a failure; a failure to is reported,
/// not fatal.
pub(super) async fn undo_service(sw: &Inner, service: &str, undo: Undo, p: &Progress) {
    let result = match undo {
        Undo::Remove => sw.cluster.remove_service(service).await.map(drop),
        Undo::ScaleToZero => sw.cluster.scale_service(service, 0).await,
    };
    if let Err(e) = result {
        let fix = match undo {
            Undo::Remove => format!("remove it with `docker service rm {service}`"),
            Undo::ScaleToZero => format!("scale it with `docker service scale {service}=0`"),
        };
        p.warn(Report::new(format!("could not undo {service} after the failure: {e}")).hint(fix));
    }
}
