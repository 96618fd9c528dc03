//! `rollback` on a Swarm: the version kept at 0 tasks runs again and takes
//! the route back on every node; the live one drains and is kept at 0 in
//! its turn, so a second rollback undoes the first.
//!
//! The idle color's slot holds the version before; older ones are set
//! aside (`kept.rs`) and `--to` puts one back into the slot first.

use cutover_core::diag::Report;
use cutover_core::naming;
use cutover_core::progress::{Outcome, RollbackCommand};
use cutover_core::service::{Color, DeployRequest};
use cutover_docker::labels::{self, LabelFilter, Role};
use cutover_swarm::ServiceInfo;

use super::cutover::{self, undo_service, Candidate, Undo};
use super::switch::NodeRoute;
use super::{edges, kept, specs, switch, Inner};
use crate::events::Progress;
use crate::executor::Stop;
use crate::history::{record_app, AppLine};

pub(super) async fn rollback(
    sw: &Inner,
    project: &str,
    cmd: &RollbackCommand,
    p: &Progress,
) -> Result<(Outcome, Report), Stop> {
    // 1. The app, and what every node serves it with.
    let app = app(sw, project, cmd.service.as_deref()).await?;
    let route = naming::route(project, &app);
    let edges = edges::live(&*sw.cluster, &sw.edges)
        .await
        .map_err(Stop::failed)?;
    let views = switch::views(&edges, &sw.edges, &route)
        .await
        .map_err(Stop::failed)?;
    let live = switch::live_color(&route, &views)
        .map_err(Stop::failed)?
        .ok_or_else(|| {
            Stop::invalid(
                Report::new(format!(
                    "no node serves {route}: there is nothing to roll back"
                ))
                .hint("deploy it first"),
            )
        })?;
    if let Some(held) = super::deploy::staged_on(project, &app, &views) {
        return Err(Stop::invalid(held));
    }
    let template = views
        .iter()
        .find_map(|v| v.config.clone())
        .expect("a node that serves the route has its config");

    // 2. The version to run again, in the idle color's slot.
    let color = live.other();
    let kept_service = chosen(sw, project, &app, color, cmd.to.as_deref(), p).await?;
    let version = kept_service
        .labels
        .get(labels::VERSION)
        .cloned()
        .unwrap_or_else(|| "-".into());
    let live_service = sw
        .cluster
        .inspect_service(&naming::swarm_app(project, &app, live))
        .await
        .map_err(Stop::failed)?;
    let replicas = live_service
        .and_then(|s| s.replicas)
        .filter(|n| *n > 0)
        .unwrap_or(1);
    let port = template
        .targets
        .first()
        .and_then(|t| t.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
        .ok_or_else(|| Stop::failed(format!("the nodes' route of {route} has no target port")))?;

    // 3. It runs again and takes the route back; its history line says so.
    let line = AppLine {
        project,
        operation: "rollback",
        service: &app,
        version: &version,
        color,
        started: tokio::time::Instant::now(),
    };
    let back = Back {
        kept: &kept_service,
        version: &version,
        replicas,
        port,
        template,
        live,
    };
    let result = run_again(sw, project, &app, &views, back, p).await;
    record_app(&sw.history, p, line, result).await?;
    Ok((
        Outcome::Ok,
        Report::new(format!(
            "rolled {app} back to {version} ({color}) on {} nodes",
            views.len()
        )),
    ))
}

/// The kept version brought back, and what it replaces.
struct Back<'a> {
    kept: &'a ServiceInfo,
    version: &'a str,
    replicas: u64,
    port: u16,
    /// The nodes' route now, with the live color's targets.
    template: DeployRequest,
    live: Color,
}

/// Scales the kept version up, then switches every node back to it.
async fn run_again(
    sw: &Inner,
    project: &str,
    app: &str,
    views: &[NodeRoute],
    back: Back<'_>,
    p: &Progress,
) -> Result<(), Stop> {
    let Back {
        kept: kept_service,
        version,
        replicas,
        port,
        template,
        live,
    } = back;
    let kept = kept_service.name.clone();
    let color = live.other();

    // 1. It runs again, as many tasks as the live one.
    let tasks = specs::tasks_shown((!kept_service.global).then_some(replicas));
    let step = p.step(format!("scale {kept} to {tasks} of {version}"));
    let known = sw
        .cluster
        .tasks(kept_service)
        .await
        .map_err(Stop::failed)?
        .into_iter()
        .map(|t| t.id)
        .collect();
    sw.cluster
        .scale_service(&kept, replicas)
        .await
        .map_err(Stop::failed)?;
    let addrs = match cutover::targets(sw, &kept, port, &known, template.timeouts.deploy).await {
        Ok(addrs) => addrs,
        Err(report) => {
            p.failed(step, &report.message);
            undo_service(sw, &kept, Undo::ScaleToZero, p).await;
            return Err(Stop::failed(report));
        }
    };
    p.done(step, None);

    // 2. The switch back on every node; the live color drains and is kept.
    let mut req = template;
    req.targets = addrs.iter().map(ToString::to_string).collect();
    req.color = Some(color);
    req.version = Some(version.to_string());
    let candidate = Candidate {
        project,
        app,
        color,
        version: version.to_string(),
        req,
        live: Some(live),
        keep_old: true,
        stage: None,
    };
    cutover::cut_over(sw, views, &candidate, Undo::ScaleToZero, p).await
}

/// The service that holds the version to roll back to: the idle slot's
/// own, or (`--to`, or an empty slot) one set aside, put back into the
/// slot first.
async fn chosen(
    sw: &Inner,
    project: &str,
    app: &str,
    color: Color,
    to: Option<&str>,
    p: &Progress,
) -> Result<ServiceInfo, Stop> {
    let slot = naming::swarm_app(project, app, color);
    let in_slot = sw
        .cluster
        .inspect_service(&slot)
        .await
        .map_err(Stop::failed)?;
    let slot_version = in_slot
        .as_ref()
        .and_then(|s| s.labels.get(labels::VERSION).cloned());
    match (to, in_slot) {
        (None, Some(s)) => return Ok(s),
        (Some(to), Some(s)) if slot_version.as_deref() == Some(to) => return Ok(s),
        _ => {}
    }
    let aside = kept::list(sw, project, app).await.map_err(Stop::failed)?;
    let found = match to {
        None => aside.first(),
        Some(to) => aside.iter().find(|k| k.version == to),
    };
    match found {
        Some(k) => kept::restore(sw, project, app, k, color, p).await,
        None => Err(no_kept(app, to, slot_version, &aside)),
    }
}

fn no_kept(app: &str, to: Option<&str>, in_slot: Option<String>, aside: &[kept::Kept]) -> Stop {
    let versions: Vec<String> = in_slot
        .into_iter()
        .chain(aside.iter().map(|k| k.version.clone()))
        .collect();
    let report = match to {
        None => Report::new(format!("no version of {app} is kept to roll back to"))
            .hint("the last deploy may have been the first, or `x-cutover.keep: 0` keeps none"),
        Some(to) => Report::new(format!("{app} has no kept version {to:?} here")).hint(
            if versions.is_empty() {
                "none is kept: the last deploy may have been the first".to_string()
            } else {
                format!("the versions kept, newest first: {}", versions.join(", "))
            },
        ),
    };
    Stop::invalid(report)
}

/// The app to roll back: the one named, or the project's only one.
async fn app(sw: &Inner, project: &str, named: Option<&str>) -> Result<String, Stop> {
    let mut apps = apps_of(sw, project).await?;
    match named {
        Some(name) if apps.iter().any(|a| a == name) => Ok(name.to_string()),
        Some(name) => Err(Stop::invalid(
            Report::new(format!("project {project} has no app {name} on this swarm"))
                .hint(format!("its apps: {}", list(&apps))),
        )),
        None if apps.len() == 1 => Ok(apps.remove(0)),
        None if apps.is_empty() => Err(Stop::invalid(
            Report::new(format!("project {project} has no app on this swarm"))
                .hint("deploy it first"),
        )),
        None => Err(Stop::invalid(
            Report::new(format!(
                "project {project} has several apps: {}",
                list(&apps)
            ))
            .hint("name the one to roll back: `cutover rollback SERVICE`"),
        )),
    }
}

/// The project's apps on the swarm, sorted.
pub(super) async fn apps_of(sw: &Inner, project: &str) -> Result<Vec<String>, Stop> {
    let filter = LabelFilter::project(project).with(labels::ROLE, Role::App.as_str());
    let mut apps: Vec<String> = sw
        .cluster
        .list_services(&filter)
        .await
        .map_err(Stop::failed)?
        .into_iter()
        .filter_map(|s| s.labels.get(labels::SERVICE).cloned())
        .collect();
    apps.sort();
    apps.dedup();
    Ok(apps)
}

fn list(apps: &[String]) -> String {
    if apps.is_empty() {
        "none".into()
    } else {
        apps.join(", ")
    }
}
