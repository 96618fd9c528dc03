//! `deploy --preview|--canary` leaves a version staged beside the live one
//! (`cutover_core::stage` has the lifecycle); `promote` puts it live with
//! the tail of a deploy's cutover, `abort` drains it away and removes it.
//!
//! Both take the project lock, as a deploy does; a deploy or rollback of
//! an app with a stage is refused until it ends, so a stage never outlives
//! the version it was staged beside.

use cutover_core::compose::HookKind;
use cutover_core::diag::Report;
use cutover_core::naming;
use cutover_core::progress::{Outcome, StageCommand};
use cutover_core::stage::{self, StageMode};
use cutover_docker::ContainerInfo;

use crate::events::{Progress, Receiver, StepHandle};
use crate::executor::hooks::HookRun;
use crate::executor::switch::{self, Candidate};
use crate::executor::{Operation, Stop};
use crate::observe::AppState;
use crate::stages::StageRecord;
use crate::{DeployEngine, Inner};
use cutover_core::clock::now_ms;

/// Why a deploy or rollback of `service` cannot run now: it has a stage.
pub(crate) fn still_staged(state: &AppState, service: &str) -> Option<Report> {
    let staged = state.staged.as_ref()?;
    Some(staged_beside(service, &staged.version, staged.name()))
}

/// Why a deploy or rollback of `service` cannot run now: `version` is
/// staged beside the live one, in `held_by` (a container, a service).
pub(crate) fn staged_beside(service: &str, version: &str, held_by: &str) -> Report {
    Report::new(format!(
        "{service} has version {version} staged beside the live one ({held_by})"
    ))
    .hint("`cutover promote` puts it live, `cutover abort` drops it; then deploy again")
}

/// The history line's operation of a deploy that stages (or not).
pub(crate) fn operation(stage: Option<StageMode>) -> &'static str {
    match stage {
        None => "deploy",
        Some(StageMode::Preview) => "preview",
        Some(StageMode::Canary { .. }) => "canary",
    }
}

/// Why `service` cannot be staged: nothing of it serves yet.
pub(crate) fn nothing_live(service: &str) -> Report {
    Report::new(format!(
        "{service} serves nothing yet, so there is nothing to stage a version beside"
    ))
    .hint("deploy it without --preview or --canary first")
}

/// The end of a staging cutover: the proxy routes the staged set, and its
/// record says which container it is and what `promote` records.
pub(crate) async fn staged(
    inner: &Inner,
    p: &Progress,
    project: &str,
    cand: &Candidate<'_>,
    mode: StageMode,
    info: &ContainerInfo,
    step: StepHandle,
) -> Result<(), Stop> {
    let service = cand.app.service.name.as_str();
    let record = StageRecord {
        release: cand.release(project),
        mode,
        container_id: info.id.clone(),
        staged_ms: now_ms(),
    };
    if let Err(e) = inner.stages.put_async(project, record).await {
        // Unrecorded, the container would pass for one a crash left.
        p.failed(step, &e);
        let _ = inner.proxy.unstage(&naming::route(project, service));
        let _ = crate::replicas::remove(&*inner.engine, &info.id).await;
        inner.journal.end(project, service);
        return Err(Stop::failed(e));
    }
    p.done(
        step,
        Some(format!(
            "{service} {} is staged in {} ({}{})",
            cand.version,
            info.name,
            mode.describe(),
            preview_hosts(cand)
        )),
    );
    inner.journal.end(project, service);
    inner.routes_changed().await;
    Ok(())
}

fn preview_hosts(cand: &Candidate<'_>) -> String {
    let hosts = &cand.app.cutover.preview_hosts;
    if hosts.is_empty() {
        String::new()
    } else {
        format!("; also at {}", hosts.join(", "))
    }
}

impl DeployEngine {
    /// `promote`: every staged app of the project (or those named) goes live.
    pub fn promote(&self, project: String, cmd: StageCommand) -> Receiver {
        self.end_stage(project, cmd, End::Promote)
    }

    /// `abort`: every staged app of the project (or those named) drops its
    /// staged version; the live one never stopped serving.
    pub fn abort(&self, project: String, cmd: StageCommand) -> Receiver {
        self.end_stage(project, cmd, End::Abort)
    }

    fn end_stage(&self, project: String, cmd: StageCommand, end: End) -> Receiver {
        let op = end.operation(&project);
        self.spawn_exclusive(op, cmd.wait_lock, move |inner, p| async move {
            end_stages(&inner, &p, &project, &cmd, end).await
        })
    }
}

#[derive(Clone, Copy)]
pub(crate) enum End {
    Promote,
    Abort,
}

impl End {
    pub(crate) fn name(self) -> &'static str {
        match self {
            End::Promote => "promote",
            End::Abort => "abort",
        }
    }

    /// The operation that ends the stages of `project`: each app's end is
    /// recorded on its own history line, on one host as on a Swarm.
    pub(crate) fn operation(self, project: &str) -> Operation {
        Operation {
            project: project.to_string(),
            name: self.name(),
            version: None,
            ok_recorded_per_app: true,
            adopt: false,
            id: None,
        }
    }
}

async fn end_stages(
    inner: &Inner,
    p: &Progress,
    project: &str,
    cmd: &StageCommand,
    end: End,
) -> Result<(Outcome, Report), Stop> {
    let mut staged = inner.stages.list(project);
    if !cmd.services.is_empty() {
        if let Some(s) = cmd
            .services
            .iter()
            .find(|s| !staged.iter().any(|(n, _)| n == *s))
        {
            return Err(Stop::invalid(not_staged(project, s, &staged)));
        }
        staged.retain(|(n, _)| cmd.services.contains(n));
    }
    if staged.is_empty() {
        return Err(Stop::invalid(
            Report::new(format!("project {project} has nothing staged")).hint(stage::HOW_TO_STAGE),
        ));
    }
    let obs = inner
        .project_containers(project)
        .await
        .map_err(Stop::failed)?;
    let mut done = Vec::new();
    for (service, record) in staged {
        let state = obs.apps.get(&service).cloned().unwrap_or_default();
        let cand = Candidate {
            app: &record.release.app,
            image: record.release.image_id.clone(),
            image_id: record.release.image_id.clone(),
            version: record.release.version.clone(),
            version_id: record.release.version_id.clone(),
            config_hash: record.release.config_hash.clone(),
            color: record.release.color,
            operation: end.name(),
            stage: None,
            started: p.started(),
        };
        let result = match end {
            End::Promote => promote(inner, p, project, &cand, &state).await,
            End::Abort => abort(inner, p, project, &cand, &state).await,
        };
        switch::record(inner, p, project, &cand, result).await?;
        done.push(format!("{service} {}", cand.version));
    }
    let message = match end {
        End::Promote => format!("promoted {}", done.join(", ")),
        End::Abort => format!(
            "aborted {}; the live versions kept serving",
            done.join(", ")
        ),
    };
    Ok((Outcome::Ok, message.into()))
}

fn not_staged(project: &str, service: &str, staged: &[(String, StageRecord)]) -> Report {
    let names: Vec<&str> = staged.iter().map(|(n, _)| n.as_str()).collect();
    nothing_staged(project, service, &names)
}

/// Why `service` has no stage to end, naming the apps that have one.
pub(crate) fn nothing_staged(project: &str, service: &str, names: &[&str]) -> Report {
    Report::new(format!("{service} of project {project} has nothing staged")).hint(
        if names.is_empty() {
            stage::HOW_TO_STAGE.to_string()
        } else {
            format!("staged now: {}", names.join(", "))
        },
    )
}

/// The switch a deploy would have made, then the deploy's tail: release
/// record, the old color's retirement, versions past `keep`.
async fn promote(
    inner: &Inner,
    p: &Progress,
    project: &str,
    cand: &Candidate<'_>,
    state: &AppState,
) -> Result<(), Stop> {
    let service = cand.app.service.name.as_str();
    let route = naming::route(project, service);
    let slot = cand.app.slot(project, cand.color);
    let (old_set, events) = switch::before_switch(inner, &route);
    let step = p.step(format!(
        "switch {service} to {slot} (version {})",
        cand.version
    ));
    match inner.proxy.promote(&route) {
        Ok(_) => p.done(step, Some(format!("{service} now serves from {slot}"))),
        Err(_) if already_live(inner, &route, cand) => p.done(
            step,
            Some("it already served: an earlier promote was cut short, and is finished now".into()),
        ),
        Err(e) => {
            let e = Report::from(e);
            p.failed(step, &e);
            return Err(Stop::failed(e));
        }
    }
    if let Err(e) = inner.stages.clear(project, service) {
        p.warn(e);
    }
    let prune = crate::rollback::past_keep(inner, state, &cand.release(project), &slot);
    switch::after_switch(inner, p, project, cand, state, prune, old_set, events).await?;
    // The version went live now, not at its stage: `post_deploy` is now.
    let hooks = HookRun {
        project,
        app: cand.app,
        image: &cand.image_id,
        version: &cand.version,
        color: cand.color,
        previous: state.live.as_ref().map(|l| l.version.as_str()),
    };
    if let Err(e) = hooks.run(inner, p, HookKind::PostDeploy, None).await {
        p.warn(e.map_message(|m| format!("{m}; {service} {} serves all the same", cand.version)));
    }
    Ok(())
}

/// The proxy already routes everyone to the staged version: a promote
/// switched, and the daemon stopped before its record was cleared.
fn already_live(inner: &Inner, route: &str, cand: &Candidate<'_>) -> bool {
    inner.proxy.status().iter().any(|s| {
        s.name == route
            && s.staged.is_none()
            && s.active.color == cand.color
            && s.active.version.as_deref() == Some(cand.version.as_str())
    })
}

/// The staged set leaves the routes and drains like an old color (its
/// WebSockets get 1012 at the deadline), then its container is removed.
async fn abort(
    inner: &Inner,
    p: &Progress,
    project: &str,
    cand: &Candidate<'_>,
    state: &AppState,
) -> Result<(), Stop> {
    let service = cand.app.service.name.as_str();
    let route = naming::route(project, service);
    let events = inner.proxy.subscribe();
    let set_id = match inner.proxy.unstage(&route) {
        Ok(id) => Some(id),
        Err(_) if already_live(inner, &route, cand) => {
            return Err(Stop::invalid(
                Report::new(format!(
                    "{service} {} already serves: a promote was cut short",
                    cand.version
                ))
                .hint("`cutover promote` finishes it; then `cutover rollback` goes back"),
            ))
        }
        // Lost from the proxy (its state file was): nothing routes to it.
        Err(_) => None,
    };
    match &state.staged {
        Some(container) => switch::retire(
            inner,
            p,
            container,
            set_id,
            events,
            cand.app,
            Some("removed: the stage was aborted"),
        ),
        None => p.warn(Report::new(format!(
            "the staged container of {service} was already gone"
        ))),
    }
    inner.stages.clear(project, service).map_err(Stop::failed)?;
    inner.routes_changed().await;
    Ok(())
}
