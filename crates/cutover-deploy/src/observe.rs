//! What exists for a project, found by the labels cutover writes and never by
//! name patterns (failure #4: `--filter name=athens` also matched
//! `athens-redis`).

use std::collections::BTreeMap;

use cutover_core::compose::{version_id, ResolvedProject};
use cutover_core::plan::{Observed, ObservedAccessory, ObservedApp, ObservedVersion};
use cutover_core::service::Color;
use cutover_docker::labels::{self, LabelFilter};
use cutover_docker::{ContainerInfo, ContainerState, Engine, EngineError, Role};

use crate::releases::{Release, Releases};
use crate::replicas;
use crate::retire::Retirements;
use crate::stages::Stages;

/// One app container of the project, as observed.
#[derive(Debug, Clone)]
pub struct AppContainer {
    pub service: String,
    pub color: Color,
    pub version: String,
    pub version_id: String,
    pub config_hash: String,
    pub info: ContainerInfo,
    /// The release record of its version, when the daemon kept one.
    pub release: Option<Release>,
    /// Still running while the proxy drains it; stopped (kept) after.
    pub retiring: bool,
}

impl AppContainer {
    pub fn running(&self) -> bool {
        is_running(&self.info)
    }

    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Removed once drained (a forced redeploy's copy, or one past `keep`),
    /// or its removal is under way or was left half-done by the engine: no
    /// version kept for rollback, so it neither counts toward `keep` nor is
    /// moved back.
    pub fn going(&self, retirements: &Retirements) -> bool {
        retirements.is_going(&self.info.id)
            || matches!(
                self.info.state,
                ContainerState::Removing | ContainerState::Dead
            )
    }

    fn observed(&self) -> ObservedVersion {
        ObservedVersion {
            color: self.color,
            version_id: self.version_id.clone(),
            config_hash: self.config_hash.clone(),
            image_id: self.info.image_id.clone(),
            container: self.info.name.clone(),
            spec: self.release.as_ref().map(|r| r.app.service.clone()),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct AppState {
    pub live: Option<AppContainer>,
    /// Stopped versions and retiring ones (still draining), newest
    /// release first.
    pub kept: Vec<AppContainer>,
    /// Running containers beyond the live one: left by a crash mid-deploy.
    pub stray: Vec<AppContainer>,
    /// The version staged beside the live one (`deploy --preview|--canary`).
    pub staged: Option<AppContainer>,
}

#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub apps: BTreeMap<String, AppState>,
    pub accessories: BTreeMap<String, ContainerInfo>,
}

/// A restarting container counts as running: Docker brings it back by
/// itself, so it is neither stopped nor free to reuse.
fn is_running(info: &ContainerInfo) -> bool {
    matches!(
        info.state,
        ContainerState::Running | ContainerState::Restarting
    )
}

/// All containers of `project` (apps and accessories), inspected.
pub async fn project_containers(
    engine: &dyn Engine,
    project: &str,
    releases: &Releases,
    stages: &Stages,
    retirements: &Retirements,
) -> Result<Observation, EngineError> {
    let list = engine
        .list_containers(&LabelFilter::project(project))
        .await?;
    let mut apps: BTreeMap<String, Vec<AppContainer>> = BTreeMap::new();
    let mut accessories = BTreeMap::new();
    for summary in list {
        let Some(service) = summary.labels.get(labels::SERVICE).cloned() else {
            continue;
        };
        let Some(info) = engine.inspect_container(&summary.id).await? else {
            // Removed since the list: nothing to observe.
            continue;
        };
        match summary
            .labels
            .get(labels::ROLE)
            .and_then(|r| Role::parse(r))
        {
            Some(Role::Accessory) => {
                accessories.insert(service, info);
            }
            Some(Role::App) => {
                let color = match summary.labels.get(labels::COLOR).map(String::as_str) {
                    Some("green") => Color::Green,
                    _ => Color::Blue,
                };
                let config_hash = summary
                    .labels
                    .get(labels::CONFIG_HASH)
                    .cloned()
                    .unwrap_or_default();
                let vid = version_id(&info.image_id, &config_hash);
                let release = releases.find(project, &service, &vid);
                apps.entry(service.clone()).or_default().push(AppContainer {
                    service,
                    color,
                    // The release record's: a container is reused for a
                    // deploy of its version under a new label (`--version`),
                    // and an engine's labels cannot change.
                    version: release
                        .as_ref()
                        .map(|r| r.version.clone())
                        .or_else(|| summary.labels.get(labels::VERSION).cloned())
                        .unwrap_or_else(|| vid.clone()),
                    version_id: vid,
                    config_hash,
                    retiring: retirements.is_retiring(&info.id),
                    info,
                    release,
                });
            }
            // A hook's one-off container is neither a color nor an
            // accessory; a deploy removes one left behind before it runs
            // that hook again, and `down` removes it with the rest.
            // A gateway is a Swarm service, never a container here.
            Some(Role::Hook | Role::Gateway) | None => {}
        }
    }
    let apps = apps
        .into_iter()
        .map(|(service, containers)| {
            let history = releases.list(project, &service);
            let (firsts, orphans) = without_followers(containers);
            let staged_id = stages.get(project, &service).map(|r| r.container_id);
            let (mut staged, firsts): (Vec<_>, Vec<_>) = firsts
                .into_iter()
                .partition(|c| staged_id.as_ref() == Some(&c.info.id));
            let mut state = sort_app(firsts, &history);
            state.stray.extend(orphans);
            state.staged = staged.pop();
            (service, state)
        })
        .collect();
    Ok(Observation { apps, accessories })
}

/// An app's containers without the followers of each color's first
/// replica (`replicas.rs`): the lifecycle follows the first. Followers
/// whose first is gone are returned apart, as strays to remove.
fn without_followers(containers: Vec<AppContainer>) -> (Vec<AppContainer>, Vec<AppContainer>) {
    let (followers, firsts): (Vec<_>, Vec<_>) = containers
        .into_iter()
        .partition(|c| replicas::number(&c.info).is_some());
    let orphans = followers
        .into_iter()
        .filter(|f| {
            let i = replicas::number(&f.info).unwrap_or_default();
            !firsts
                .iter()
                .any(|c| replicas::follower_name(c.name(), i) == f.name())
        })
        .collect();
    (firsts, orphans)
}

/// Picks the live container: the running one of the newest release that is
/// not retiring (there is only one outside a crash mid-deploy); orders kept
/// ones newest first.
fn sort_app(containers: Vec<AppContainer>, history: &[Release]) -> AppState {
    let rank = |c: &AppContainer| {
        history
            .iter()
            .position(|r| r.version_id == c.version_id && r.container == c.info.name)
            .or_else(|| history.iter().position(|r| r.version_id == c.version_id))
            .unwrap_or(usize::MAX)
    };
    let (mut running, mut kept): (Vec<_>, Vec<_>) = containers
        .into_iter()
        .partition(|c| c.running() && !c.retiring);
    running.sort_by_key(rank);
    kept.sort_by_key(rank);
    let mut running = running.into_iter();
    AppState {
        live: running.next(),
        kept,
        stray: running.collect(),
        staged: None,
    }
}

/// The planner's view: networks and volumes of the desired project that
/// exist, containers by label, and the image IDs resolved so far.
pub async fn observe(
    engine: &dyn Engine,
    desired: &ResolvedProject,
    releases: &Releases,
    stages: &Stages,
    retirements: &Retirements,
    images: &BTreeMap<String, String>,
) -> Result<(Observed, Observation), EngineError> {
    let mut observed = Observed {
        images: images.clone(),
        ..Observed::default()
    };
    for n in &desired.networks {
        if engine.inspect_network(&n.name).await?.is_some() {
            observed.networks.insert(n.name.clone());
        }
    }
    for v in &desired.volumes {
        if engine.inspect_volume(&v.name).await?.is_some() {
            observed.volumes.insert(v.name.clone());
        }
    }
    let obs = project_containers(engine, &desired.name, releases, stages, retirements).await?;
    for (service, info) in &obs.accessories {
        observed.accessories.insert(
            service.clone(),
            ObservedAccessory {
                container: info.name.clone(),
                config_hash: info
                    .labels
                    .get(labels::CONFIG_HASH)
                    .cloned()
                    .unwrap_or_default(),
                image_id: Some(info.image_id.clone()),
                running: is_running(info),
                spec: None,
            },
        );
    }
    for (service, app) in &obs.apps {
        observed.apps.insert(
            service.clone(),
            ObservedApp {
                live: app.live.as_ref().map(AppContainer::observed),
                kept: app
                    .kept
                    .iter()
                    .filter(|k| !k.going(retirements))
                    .map(AppContainer::observed)
                    .collect(),
                settings: app
                    .live
                    .as_ref()
                    .and_then(|l| l.release.as_ref())
                    .map(|r| r.app.cutover.clone()),
            },
        );
    }
    Ok((observed, obs))
}
