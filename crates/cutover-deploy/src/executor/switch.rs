//! The cutover of one app to a new version, shared by deploy and rollback:
//! make room in the slot, start the new container, let the proxy health-gate
//! and switch, then hand the old color to a background retirement (drain,
//! then stop) and prune past `keep`.
//!
//! A failure before the switch removes what this operation created, so the
//! old color keeps serving and nothing is left behind (failures #5, #9).

use cutover_core::diag::Report;
use std::time::Duration;

use cutover_core::compose::AppSpec;
use cutover_core::progress::ProgressEvent;
use cutover_core::service::Color;
use cutover_docker::{ContainerSpec, Reachability};

use crate::events::Progress;
use crate::executor::{gate, Stop};
use crate::history::{record_app, AppLine};
use crate::journal::InProgress;
use crate::observe::{AppContainer, AppState};
use crate::releases::Release;
use crate::replicas;
use crate::retire::{Retiring, Then};
use crate::specs::{self, AppLabels};
use crate::Inner;
use cutover_core::clock::now_ms;

/// Time to wait for a drain past its own deadlines before stopping anyway.
const DRAIN_SLACK: Duration = Duration::from_secs(10);

/// The version to put live.
pub struct Candidate<'a> {
    pub app: &'a AppSpec,
    /// What the container is created from: a reference, or an image ID.
    pub image: String,
    pub image_id: String,
    pub version: String,
    pub version_id: String,
    pub config_hash: String,
    pub color: Color,
    pub operation: &'static str,
    /// Staged beside the live version rather than switched to.
    pub stage: Option<cutover_core::stage::StageMode>,
    /// When the operation began: the app's history line counts from
    /// there, build and pull included, as the operation's own output does.
    pub started: tokio::time::Instant,
}

impl Candidate<'_> {
    /// Its release record, as of now, in its slot.
    pub fn release(&self, project: &str) -> Release {
        Release {
            version_id: self.version_id.clone(),
            version: self.version.clone(),
            image_id: self.image_id.clone(),
            config_hash: self.config_hash.clone(),
            color: self.color,
            container: self.app.slot(project, self.color),
            released_ms: now_ms(),
            app: self.app.clone(),
        }
    }
}

pub(crate) async fn roll_out(
    inner: &Inner,
    p: &Progress,
    project: &str,
    cand: Candidate<'_>,
    state: &AppState,
    remove_after: &[String],
) -> Result<(), Stop> {
    let result = roll_out_inner(inner, p, project, &cand, state, remove_after)
        .await
        .map_err(|s| first_deploy(s, state));
    record(inner, p, project, &cand, result).await
}

/// The app's history line for `cand`'s operation, which ends with `result`.
pub(crate) async fn record(
    inner: &Inner,
    p: &Progress,
    project: &str,
    cand: &Candidate<'_>,
    result: Result<(), Stop>,
) -> Result<(), Stop> {
    let line = AppLine {
        project,
        operation: cand.operation,
        service: &cand.app.service.name,
        version: &cand.version,
        color: cand.color,
        started: cand.started,
    };
    record_app(&inner.history, p, line, result).await
}

async fn roll_out_inner(
    inner: &Inner,
    p: &Progress,
    project: &str,
    cand: &Candidate<'_>,
    state: &AppState,
    remove_after: &[String],
) -> Result<(), Stop> {
    let engine = &*inner.engine;
    let service = cand.app.service.name.as_str();
    let slot = cand.app.slot(project, cand.color);
    let route = cutover_core::naming::route(project, service);

    // Running containers that are not the live one were left by a deploy
    // that never finished: they serve nothing.
    for stray in &state.stray {
        remove_container(inner, p, stray.name(), "left by an unfinished deploy").await?;
    }

    let mut reuse = false;
    let mut prune: Vec<String> = remove_after.to_vec();
    // One the engine left half-removed is debris, not a version to keep.
    prune.extend(
        state
            .kept
            .iter()
            .filter(|k| k.info.state == cutover_docker::ContainerState::Dead)
            .filter(|k| !inner.retirements.is_retiring(&k.info.id))
            .map(|k| k.name().to_string()),
    );
    if let Some(occupant) = state.kept.iter().find(|k| k.name() == slot) {
        if occupant.version_id == cand.version_id {
            reuse = true;
            // It may still be draining from an earlier switch: it must not
            // be stopped under the traffic it is about to get.
            inner.retirements.take_back(&occupant.info.id).await;
        } else if let Some(moved) = make_room(inner, p, project, occupant).await? {
            // A version past `keep` still goes only once the new one is
            // live: until then it is what a rollback would need.
            for name in &mut prune {
                if name == occupant.name() {
                    *name = moved.clone();
                }
            }
        }
    } else if let Some(info) = engine
        .inspect_container(&slot)
        .await
        .map_err(Stop::failed)?
    {
        // A container by the slot's name that is not one of ours: never
        // removed silently.
        if !state.stray.iter().any(|s| s.name() == slot) {
            return Err(Stop::failed(
                Report::new(format!(
                    "container name {slot} is taken by a container cutover does not manage (labels {:?})",
                    info.labels
                ))
                .hint(format!(
                    "remove or rename it (`docker rm -f {slot}`), then deploy again"
                )),
            ));
        }
    }

    // The version asked for, kept under another name (moved out of its
    // slot by a later deploy): moved back into the slot rather than created
    // again and the kept copy removed as if it were past `keep`.
    if !reuse {
        // Not one that is going (a forced redeploy's copy, removed once
        // drained, or whose removal the engine left half-done).
        let usable = |k: &&AppContainer| !k.going(&inner.retirements) && k.release.is_some();
        if let Some(copy) = state
            .kept
            .iter()
            .filter(usable)
            .find(|k| k.version_id == cand.version_id && k.name() != slot)
        {
            let step = p.step(format!("move {} back into {slot}", copy.name()));
            inner.retirements.take_back(&copy.info.id).await;
            match replicas::rename(engine, &copy.info, &slot).await {
                Ok(()) => {
                    p.done(step, None);
                    prune.retain(|n| n != copy.name());
                    reuse = true;
                }
                // A fresh container of the version does as well.
                Err(e) => p.failed(step, format!("{e}; a new container is made instead")),
            }
        }
    }

    inner
        .journal
        .begin_async(InProgress {
            project: project.to_string(),
            service: service.to_string(),
            operation: cand.operation.to_string(),
            container: slot.clone(),
            reused: reuse,
            started_ms: now_ms(),
        })
        .await
        .map_err(Stop::failed)?;

    let step = p.step(format!(
        "start {slot} ({} {})",
        if reuse { "kept version" } else { "version" },
        cand.version
    ));
    let gateways = inner.gateways(&cand.app.service).await;
    let created = async {
        let gateways = gateways.clone()?;
        if !reuse {
            let publish = match inner.reachability().await.map_err(Report::from)? {
                Some(Reachability::PublishedLoopback) => Some(cand.app.cutover.port),
                _ => None,
            };
            let mut spec: ContainerSpec = specs::app_container(
                &slot,
                &cand.image,
                &cand.app.service,
                &AppLabels {
                    project,
                    color: cand.color,
                    version: &cand.version,
                },
                &gateways,
                publish,
            )?;
            inner.owner.stamp(&mut spec.labels);
            engine.create_container(&spec).await.map_err(Report::from)?;
            for i in 2..=cand.app.service.replicas {
                let mut follower = spec.clone();
                follower.name = replicas::follower_name(&slot, i);
                follower
                    .labels
                    .insert(cutover_docker::labels::REPLICA.into(), i.to_string());
                engine
                    .create_container(&follower)
                    .await
                    .map_err(Report::from)?;
            }
        }
        replicas::start(engine, &slot).await.map_err(Report::from)?;
        let info = engine
            .inspect_container(&slot)
            .await
            .map_err(Report::from)?
            .ok_or_else(|| {
                Report::new(format!("container {slot} vanished right after it started"))
            })?;
        Ok::<_, Report>((info, gateways))
    }
    .await;
    let (info, gateways) = match created {
        Ok(created) => {
            p.done(step, None);
            created
        }
        Err(e) => {
            p.failed(step, &e);
            abandon(inner, p, project, service, &slot, reuse).await;
            return Err(Stop::failed(e.map_message(|m| {
                format!(
                    "{} of {service} failed{}: {m}",
                    cand.operation,
                    serving(state)
                )
            })));
        }
    };

    // Already gone (it exits at once): that, with its log, is the error,
    // not that it has no address.
    let reached = match gate::stopped(&info) {
        Some(stopped) => Err(stopped),
        None => inner.app_targets(&info, cand.app).await,
    };
    let addrs = match reached {
        Ok(a) => a,
        Err(e) => {
            p.emit(ProgressEvent::Logs {
                container: slot.clone(),
                lines: gate::log_excerpt(engine, &slot).await,
            });
            abandon(inner, p, project, service, &slot, reuse).await;
            return Err(Stop::failed(e.map_message(|m| {
                format!(
                    "{} of {service} failed{}: {m}",
                    cand.operation,
                    serving(state)
                )
            })));
        }
    };

    let (old_set, events) = before_switch(inner, &route);
    let c = &cand.app.cutover;
    let step = p.step(format!(
        "health check {slot} at {}{} and {}",
        addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        c.health.path,
        if cand.stage.is_some() {
            "stage"
        } else {
            "switch"
        }
    ));
    let group: Vec<String> = std::iter::once(slot.clone())
        .chain((2..=cand.app.service.replicas).map(|i| replicas::follower_name(&slot, i)))
        .collect();
    // The gate, raced against the container: one that exits never passes,
    // and dropping the proxy's deploy before it installs changes nothing.
    let request = specs::route_request(cand.app, &gateways, &addrs, cand.color, &cand.version);
    let switched = tokio::select! {
        r = switch_or_stage(inner, cand, &route, request) => r,
        exit = gate::exited(engine, &group) => Err(exit),
    };
    if let Err(e) = switched {
        p.failed(step, &e);
        let lines = gate::log_excerpt(engine, &slot).await;
        let e = match gate::port_hint(e.detail.as_deref().unwrap_or_default(), &lines, c.port) {
            Some(hint) => e.hint(hint),
            None => e,
        };
        p.emit(ProgressEvent::Logs {
            container: slot.clone(),
            lines,
        });
        abandon(inner, p, project, service, &slot, reuse).await;
        return Err(Stop::failed(e.map_message(|m| {
            format!(
                "{} of {service} version {} failed{}: {m}",
                cand.operation,
                cand.version,
                serving(state)
            )
        })));
    }
    if let Some(mode) = cand.stage {
        return crate::stage::staged(inner, p, project, cand, mode, &info, step).await;
    }
    p.done(step, Some(format!("{service} now serves from {slot}")));
    after_switch(inner, p, project, cand, state, prune, old_set, events).await
}

/// Step 5 of a cutover, and all of `promote`: the new version is live. It
/// is recorded as the newest release, the old color retires in the
/// background, and versions past `keep` go.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn after_switch(
    inner: &Inner,
    p: &Progress,
    project: &str,
    cand: &Candidate<'_>,
    state: &AppState,
    mut prune: Vec<String>,
    old_set: Option<u64>,
    events: tokio::sync::broadcast::Receiver<cutover_core::status::Event>,
) -> Result<(), Stop> {
    let service = cand.app.service.name.as_str();
    let slot = cand.app.slot(project, cand.color);
    let route = cutover_core::naming::route(project, service);
    warn_certificates(inner, p, &route);
    inner.routes_changed().await;
    p.emit(ProgressEvent::Switched {
        service: service.to_string(),
        color: cand.color,
        version: cand.version.clone(),
    });
    let release = cand.release(project);
    // Enough records to recreate every kept version, plus some that are
    // only reachable by `rollback --to`.
    if let Err(e) = inner
        .releases
        .record_async(project, release, cand.app.cutover.keep as usize + 5)
        .await
    {
        p.warn(e);
    }
    inner.journal.end(project, service);

    let old = state.live.as_ref().filter(|o| o.name() != slot);
    if let Some(old) = old {
        // A forced redeploy of the live version: the old color is the same
        // version, not one to roll back to, so it does not take a kept place.
        if old.version_id == cand.version_id {
            prune.push(old.name().to_string());
        }
        let removed = if old.version_id == cand.version_id {
            Some(format!("removed: the same version now serves from {slot}"))
        } else {
            prune
                .iter()
                .any(|n| n == old.name())
                .then(|| "removed (past keep)".to_string())
        };
        retire(inner, p, old, old_set, events, cand.app, removed.as_deref());
    }
    for name in &prune {
        if *name == slot || old.is_some_and(|o| o.name() == name) {
            continue;
        }
        prune_container(inner, p, name).await?;
    }
    let kept = state
        .kept
        .iter()
        .map(AppContainer::name)
        .chain(old.map(AppContainer::name))
        .filter(|n| *n != slot && !prune.iter().any(|p| p == n))
        .count();
    inner
        .proxy
        .operation_metrics()
        .switched(project, service, cand.started.elapsed(), kept);
    Ok(())
}

/// The route's active set, which drains once the switch is made, and the
/// proxy's events, subscribed before the switch so that drain cannot be
/// missed however fast it is.
pub(crate) fn before_switch(
    inner: &Inner,
    route: &str,
) -> (
    Option<u64>,
    tokio::sync::broadcast::Receiver<cutover_core::status::Event>,
) {
    let old_set = inner
        .proxy
        .status()
        .into_iter()
        .find(|s| s.name == route)
        .map(|s| s.active.id);
    (old_set, inner.proxy.subscribe())
}

/// Step 4's call to the proxy: the gate, then the switch, or the stage
/// beside the live set.
async fn switch_or_stage(
    inner: &Inner,
    cand: &Candidate<'_>,
    route: &str,
    request: cutover_core::service::DeployRequest,
) -> Result<(), Report> {
    let Some(mode) = cand.stage else {
        return inner
            .proxy
            .deploy(route, request)
            .await
            .map(drop)
            .map_err(Report::from);
    };
    let stage = cutover_core::stage::Stage {
        mode,
        preview_hosts: cand.app.cutover.preview_hosts.clone(),
        token: String::new(),
    };
    inner
        .proxy
        .stage(route, request, stage)
        .await
        .map(drop)
        .map_err(Report::from)
}

/// Hands the old color to a background retirement: the proxy drains it
/// (WebSockets may take minutes), then it is stopped and kept, or removed
/// when `removed` says why it goes. The deploy does not wait.
pub(crate) fn retire(
    inner: &Inner,
    p: &Progress,
    old: &AppContainer,
    old_set: Option<u64>,
    events: tokio::sync::broadcast::Receiver<cutover_core::status::Event>,
    app: &AppSpec,
    removed: Option<&str>,
) {
    let t = &app.cutover.timeouts;
    let grace = old
        .release
        .as_ref()
        .map(|r| specs::stop_grace(&r.app.service))
        .unwrap_or_else(|| specs::stop_grace(&app.service));
    let step = p.step(format!("retire {} in the background", old.name()));
    inner.retirements.start(
        inner.engine.clone(),
        inner.proxy.clone(),
        old.info.id.clone(),
        Retiring {
            project: old
                .info
                .labels
                .get(cutover_docker::labels::PROJECT)
                .cloned()
                .unwrap_or_default(),
            service: old.service.clone(),
            set_id: old_set,
            limit: t.drain.max(t.websocket_drain) + DRAIN_SLACK,
            then: if removed.is_some() {
                Then::Remove
            } else {
                Then::Stop(grace)
            },
        },
        events,
    );
    p.done(
        step,
        Some(format!(
            "requests get up to {} and WebSockets up to {} to drain, then it is {}",
            humantime::format_duration(t.drain),
            humantime::format_duration(t.websocket_drain),
            removed.unwrap_or("stopped and kept")
        )),
    );
}

/// Removes a version past `keep`; one still draining goes when its drain
/// is over instead.
async fn prune_container(inner: &Inner, p: &Progress, name: &str) -> Result<(), Stop> {
    let id = inner
        .engine
        .inspect_container(name)
        .await
        .map_err(Stop::failed)?
        .map(|i| i.id);
    if let Some(id) = id.filter(|id| inner.retirements.is_retiring(id)) {
        if inner.retirements.remove_when_done(&id) {
            let step = p.step(format!("remove {name} (past keep)"));
            p.done(step, Some("once its drain is over".into()));
            return Ok(());
        }
    }
    remove_container(inner, p, name, "past keep").await
}

/// Frees the slot a kept version occupies by renaming it to its version
/// name, stopped or still draining (the engine keeps its id, address and
/// connections). One without a release record cannot be rolled back to, so
/// it goes instead: at once, or when its drain is over. Returns the new name.
async fn make_room(
    inner: &Inner,
    p: &Progress,
    project: &str,
    occupant: &AppContainer,
) -> Result<Option<String>, Stop> {
    let retiring = inner.retirements.is_retiring(&occupant.info.id);
    if occupant.release.is_none() && !retiring {
        remove_container(inner, p, occupant.name(), "its slot is needed").await?;
        return Ok(None);
    }
    // `<slot base>-<version id>`: the slot's name without its color, so an
    // app named by `container_name:` keeps that name too.
    let base = occupant
        .name()
        .rsplit_once('-')
        .map_or(occupant.name(), |(base, _)| base);
    // One that goes once drained gets a name of its own: a kept container
    // of the same version (a forced redeploy's) may need `kept`'s name
    // later, and the plan's removal of this one must not hit that one.
    let going = occupant.release.is_none() || inner.retirements.is_going(&occupant.info.id);
    let new_name = if going {
        cutover_core::naming::going(base, &occupant.version_id)
    } else {
        cutover_core::naming::kept(base, &occupant.version_id)
    };
    let step = p.step(format!("keep {} as {new_name}", occupant.name()));
    let engine = &*inner.engine;
    let _no_retirement_meanwhile = inner.retirements.exclusive(&occupant.info.id).await;
    let moved = async {
        // A stopped copy of the same version under that name (from before
        // renames were used) is redundant with the occupant.
        if let Some(stale) = engine.inspect_container(&new_name).await? {
            if inner.retirements.is_retiring(&stale.id)
                || matches!(
                    stale.state,
                    cutover_docker::ContainerState::Running
                        | cutover_docker::ContainerState::Restarting
                )
            {
                return Err(cutover_docker::EngineError::Conflict {
                    kind: cutover_docker::ObjectKind::Container,
                    name: new_name.clone(),
                    message: format!("{new_name} already exists and runs"),
                });
            }
            replicas::remove(engine, &stale.id).await?;
        }
        replicas::rename(engine, &occupant.info, &new_name).await
    }
    .await;
    match moved {
        Ok(()) => {
            if occupant.release.is_none() {
                inner.retirements.remove_when_done(&occupant.info.id);
                p.done(
                    step,
                    Some("removed once drained: it has no release record".into()),
                );
                return Ok(Some(new_name));
            }
            let moved_to = new_name.clone();
            let _ = inner
                .releases
                .update_async(project, &occupant.service, &occupant.version_id, |r| {
                    r.container = moved_to
                })
                .await;
            p.done(step, None);
            Ok(Some(new_name))
        }
        // Its retirement removed it just now (it was going once drained):
        // the slot is free.
        Err(e) if e.is_not_found() => {
            p.done(step, Some("it was removed as its drain ended".into()));
            Ok(None)
        }
        Err(e) => {
            p.failed(step, &e);
            Err(Stop::failed(
                Report::new(format!("cannot free the slot {}: {e}", occupant.name())).hint(
                    format!(
                        "`docker rename {} <other name>` or remove it, then deploy again",
                        occupant.name()
                    ),
                ),
            ))
        }
    }
}

pub(crate) async fn remove_container(
    inner: &Inner,
    p: &Progress,
    name: &str,
    why: &str,
) -> Result<(), Stop> {
    let step = p.step(format!("remove {name} ({why})"));
    match replicas::remove(&*inner.engine, name).await {
        Ok(_) => {
            p.done(step, None);
            Ok(())
        }
        Err(e) => {
            p.failed(step, &e);
            Err(Stop::failed(format!("cannot remove container {name}: {e}")))
        }
    }
}

/// Undoes what a failed cutover created: the new container goes (a reused
/// kept one is only stopped again).
async fn abandon(
    inner: &Inner,
    p: &Progress,
    project: &str,
    service: &str,
    slot: &str,
    reuse: bool,
) {
    let engine = &*inner.engine;
    let step = p.step(if reuse {
        format!("stop {slot} again")
    } else {
        format!("remove {slot}")
    });
    let result = if reuse {
        replicas::stop(engine, slot, specs::DEFAULT_STOP_GRACE).await
    } else {
        replicas::remove(engine, slot).await
    };
    match &result {
        Ok(()) => p.done(step, None),
        Err(e) => p.failed(step, e),
    }
    match result {
        // Only a settled slot clears the journal; otherwise recovery at the
        // next start finishes the cleanup.
        Ok(()) => inner.journal.end(project, service),
        Err(e) => p.warn(
            Report::new(format!("{slot} could not be cleaned up: {e}")).hint(format!(
                "remove it with `docker rm -f {slot}`; the daemon also retries at its next start"
            )),
        ),
    }
}

fn serving(state: &AppState) -> String {
    match &state.live {
        Some(live) => format!(" ({} version {} keeps serving)", live.name(), live.version),
        None => " (its first deploy: nothing served it before, and nothing does now)".into(),
    }
}

/// A failed first deploy says what it left, not that something old still
/// serves (there is nothing old).
fn first_deploy(mut stop: Stop, state: &AppState) -> Stop {
    if state.live.is_some() || !state.kept.is_empty() {
        return stop;
    }
    let left = "the networks, volumes and accessories this deploy created stay for the next try: `cutover plan` lists what is there, `cutover down` removes it";
    stop.report.hint = Some(match stop.report.hint.take() {
        Some(h) => format!("{h}; {left}"),
        None => left.into(),
    });
    stop
}

/// A certificate of the route whose last order failed: the deploy goes on
/// (plain HTTP serves, the order is retried), but the user hears of it now.
fn warn_certificates(inner: &Inner, p: &Progress, route: &str) {
    for cert in inner.proxy.certificates() {
        let (true, Some(error)) = (cert.services.iter().any(|s| s == route), &cert.last_error)
        else {
            continue;
        };
        p.warn(
            Report::new(format!("HTTPS for {}: {error}", cert.hosts.join(", "))).hint(
                "plain HTTP keeps serving and the order is retried on its own; check that DNS points at this host and ports 80 and 443 are reachable; `cutover status` shows the certificate",
            ),
        );
    }
}
