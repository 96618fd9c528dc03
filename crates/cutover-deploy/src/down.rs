//! `down`: stop and remove the project's containers (by label), its proxy
//! routes and the networks cutover created. Volumes hold data: only removed
//! when asked (`volumes: true`), and external ones never.

use cutover_core::diag::{count, Report};
use std::collections::BTreeSet;

use cutover_core::progress::Outcome;
use cutover_docker::labels::{self, LabelFilter};
use cutover_docker::{ContainerSummary, Role};

use crate::events::{Progress, Receiver, StepHandle};
use crate::executor::{Operation, Stop};
use crate::specs;
use crate::{DeployEngine, Inner};

pub use cutover_core::progress::DownCommand;

impl DeployEngine {
    pub fn down(&self, project: String, cmd: DownCommand) -> Receiver {
        let op = Operation {
            project: project.clone(),
            name: "down",
            version: None,
            ok_recorded_per_app: false,
            adopt: false,
            id: None,
        };
        self.spawn_exclusive(op, cmd.wait_lock, |inner, p| async move {
            down(&inner, &project, &cmd, &p).await
        })
    }
}

async fn down(
    inner: &Inner,
    project: &str,
    cmd: &DownCommand,
    p: &Progress,
) -> Result<(Outcome, Report), Stop> {
    let engine = &*inner.engine;
    // Old colors still draining go with the rest: their retirement must not
    // act on containers this removes.
    inner.retirements.forget_project(project).await;
    let list = engine
        .list_containers(&LabelFilter::project(project))
        .await
        .map_err(Stop::failed)?;
    let mut errors = Vec::new();

    let is_app = |c: &&ContainerSummary| {
        c.labels.get(labels::ROLE).map(String::as_str) == Some(Role::App.as_str())
    };
    let apps: BTreeSet<String> = list
        .iter()
        .filter(is_app)
        .filter_map(|c| c.labels.get(labels::SERVICE).cloned())
        .collect();
    for service in &apps {
        let route = cutover_core::naming::route(project, service);
        if inner.proxy.status().iter().any(|s| s.name == route) {
            let s = p.step(format!("remove route {route}"));
            match inner.proxy.remove(&route) {
                Ok(()) => p.done(s, None),
                Err(e) => p.failed(s, e),
            }
        }
        // Its staged container goes with the rest below.
        if let Err(e) = inner.stages.clear(project, service) {
            p.warn(e);
        }
    }

    if !apps.is_empty() {
        inner.routes_changed().await;
    }

    // Apps first: they are the accessories' clients.
    let mut ordered = list.clone();
    ordered.sort_by_key(|c| !is_app(&c));
    for c in &ordered {
        let grace = c
            .labels
            .get(labels::SERVICE)
            .and_then(|s| inner.releases.list(project, s).into_iter().next())
            .map(|r| specs::stop_grace(&r.app.service))
            .unwrap_or(specs::DEFAULT_STOP_GRACE);
        let s = p.step(format!("stop and remove {}", c.name));
        let r = async {
            engine.stop_container(&c.id, grace).await?;
            engine.remove_container(&c.id).await
        }
        .await;
        carry_on(p, s, r, &c.name, &mut errors);
    }

    let networks = engine
        .list_networks(&LabelFilter::project(project))
        .await
        .map_err(Stop::failed)?;
    for n in &networks {
        let s = p.step(format!("remove network {}", n.name));
        let r = engine.remove_network(&n.name, project).await;
        carry_on(p, s, r, format_args!("network {}", n.name), &mut errors);
    }

    let volumes = engine
        .list_volumes(&LabelFilter::project(project))
        .await
        .map_err(Stop::failed)?;
    if cmd.volumes {
        for v in &volumes {
            let s = p.step(format!("remove volume {} (its data is deleted)", v.name));
            let r = engine.remove_volume(&v.name).await;
            carry_on(p, s, r, format_args!("volume {}", v.name), &mut errors);
        }
    }
    if !errors.is_empty() {
        return Err(Stop::failed(format!(
            "down of {project} left things behind: {}",
            errors.join("; ")
        )));
    }
    let mut message = format!(
        "{project} is down: removed {}, {}",
        count(list.len(), "container"),
        count(networks.len(), "network")
    );
    let mut hint = None;
    if cmd.volumes {
        message.push_str(&format!(", {}", count(volumes.len(), "volume")));
    } else if !volumes.is_empty() {
        message.push_str(&format!(
            "; kept {} with {} data",
            count(volumes.len(), "volume"),
            if volumes.len() == 1 { "its" } else { "their" }
        ));
        hint = Some("`cutover down --volumes` also deletes the volumes");
    }
    Ok((Outcome::Ok, Report::new(message).opt_hint(hint)))
}

/// Ends step `s` as `r` says. A failure is collected rather than returned:
/// `down` goes on past it to remove as much as it can, and reports every
/// leftover at the end.
fn carry_on<T, E: std::fmt::Display>(
    p: &Progress,
    s: StepHandle,
    r: Result<T, E>,
    what: impl std::fmt::Display,
    errors: &mut Vec<String>,
) {
    match r {
        Ok(_) => p.done(s, None),
        Err(e) => {
            errors.push(format!("{what}: {e}"));
            p.failed(s, e);
        }
    }
}
