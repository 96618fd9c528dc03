//! `deploy`: images, plan, networks, volumes, accessories, then each app's
//! cutover.

use cutover_core::diag::Report;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use cutover_core::compose::{
    config_hash, version_id, DependsCondition, HookKind, ResolvedProject, ServiceSpec,
};
use cutover_core::plan::{plan_with, pull_policy, ImageAction, Plan, PlanOptions, Step};
use cutover_core::progress::{DeployCommand, Outcome, PullPolicy};
use cutover_core::registry::registry_of;
use cutover_core::service::Color;
use cutover_docker::labels;
use cutover_docker::{BuildSpec, EngineError};

use crate::events::{Progress, Receiver};
use crate::executor::hooks::HookRun;
use crate::executor::switch::{self, Candidate};
use crate::executor::{Operation, Stop};
use crate::observe::{observe, AppState, Observation};
use crate::specs;
use crate::{DeployEngine, Inner};

/// How long an accessory an app depends on (`condition: service_healthy`)
/// has to report healthy.
const ACCESSORY_HEALTHY_TIMEOUT: Duration = Duration::from_secs(120);

impl DeployEngine {
    /// Starts a deploy in a daemon-owned task; the receiver streams its
    /// progress and ends with `Finished`. Dropping the receiver does not
    /// stop the deploy.
    pub fn deploy(&self, cmd: DeployCommand) -> Receiver {
        let op = Operation {
            project: cmd.project.name.clone(),
            name: "deploy",
            version: cmd.version.clone(),
            ok_recorded_per_app: true,
            adopt: cmd.adopt,
            id: cmd.deploy_id.clone(),
        };
        self.spawn_exclusive(op, cmd.wait_lock, |inner, p| async move {
            deploy(&inner, &cmd, &p).await
        })
    }

    /// What a deploy would do, with no side effect: images are only looked
    /// up, never pulled or built.
    pub async fn plan(&self, cmd: &DeployCommand) -> Result<Plan, Stop> {
        let desired = &cmd.project;
        let selected = selected_apps(desired, &cmd.services)?;
        let mut images = BTreeMap::new();
        for spec in desired
            .apps
            .iter()
            .map(|a| &a.service)
            .chain(desired.accessories.iter().map(|a| &a.service))
        {
            if let Some(id) = local_image(&self.inner, &spec.image).await? {
                images.insert(spec.image.clone(), id);
            }
        }
        super::preflight::check_selected(&self.inner, desired, &selected)?;
        let (mut plan, _) = plan_selected(&self.inner, cmd, &selected, &images).await?;
        // An image the deploy would pull is asked of its registry now, so
        // a wrong name or a missing login shows before the deploy.
        let mut unavailable = Vec::new();
        for image in &plan.images {
            if image.action != (ImageAction::Pull { local: None }) {
                continue;
            }
            let auth = cmd.registry_auth.get(registry_of(&image.image));
            if let Err(e) = self.inner.engine.check_pullable(&image.image, auth).await {
                let message = match &e {
                    EngineError::Pull { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                // A registry that cannot be reached gave no answer: the
                // deploy may still find it up. Only its "no" stops the plan.
                if unreachable(&message) {
                    plan.warnings.push(Report::new(format!(
                        "cannot ask {} whether it has {}: {message}; the deploy will try to pull it",
                        registry_of(&image.image),
                        image.image
                    )));
                    continue;
                }
                unavailable.push(
                    Report::new(format!(
                        "image {} ({}) is neither on this host nor pullable: {message}",
                        image.image,
                        image.services.join(", ")
                    ))
                    .hint(format!(
                        "check its name and tag; for a private registry, `docker login {}` where you run cutover",
                        registry_of(&image.image)
                    )),
                );
            }
        }
        if let Some(first) = unavailable.into_iter().next() {
            return Err(Stop::invalid(first));
        }
        if cmd.remote {
            plan.warnings.extend(remote_bind_warnings(desired));
        }
        Ok(plan)
    }
}

/// For a client on another machine: bind sources are paths on the
/// daemon's host, not the client's. Each bind is named once; one whose
/// source is missing here is said to be so (Docker would create an empty
/// folder, or fail with `create_host_path: false`).
fn remote_bind_warnings(desired: &ResolvedProject) -> Vec<Report> {
    let services = desired
        .apps
        .iter()
        .map(|a| &a.service)
        .chain(desired.accessories.iter().map(|a| &a.service));
    let mut warnings = Vec::new();
    for spec in services {
        for mount in &spec.mounts {
            let cutover_core::compose::Mount::Bind { source, .. } = mount else {
                continue;
            };
            let written_relative = source.starts_with(&desired.project_dir);
            let report = if source.exists() {
                Report::new(format!(
                    "{}: bind source {} is read on the daemon's host, not where you run cutover",
                    spec.name,
                    source.display()
                ))
            } else {
                Report::new(format!(
                    "{}: bind source {} does not exist on the daemon's host",
                    spec.name,
                    source.display()
                ))
                .hint(if written_relative {
                    "a relative bind source is resolved against the project folder on your machine: put the files at that path on the daemon's host, or use a named volume, a config or a secret (which travel with the deploy)"
                } else {
                    "create it on the daemon's host, or use a named volume, a config or a secret (which travel with the deploy)"
                })
            };
            warnings.push(report);
        }
    }
    warnings
}

/// Whether a registry error is about reaching it (DNS, a refused or timed
/// out connection, TLS), not an answer about the image.
fn unreachable(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "no such host",
        "dial tcp",
        "connection refused",
        "timeout",
        "tls:",
        "network is unreachable",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// The plan of `cmd` against what exists now, without the steps of apps
/// not selected. Shared by `plan` and `deploy` so that what `cutover plan`
/// shows is what a deploy does.
async fn plan_selected(
    inner: &Inner,
    cmd: &DeployCommand,
    selected: &BTreeSet<String>,
    images: &BTreeMap<String, String>,
) -> Result<(Plan, Observation), Stop> {
    let desired = &cmd.project;
    let (observed, obs) = observe(
        &*inner.engine,
        desired,
        &inner.releases,
        &inner.stages,
        &inner.retirements,
        images,
    )
    .await
    .map_err(Stop::failed)?;
    if let Some(refused) = selected.iter().find_map(|s| {
        let state = obs.apps.get(s);
        match state {
            Some(state) if state.staged.is_some() => crate::stage::still_staged(state, s),
            live if cmd.stage.is_some() && live.is_none_or(|a| a.live.is_none()) => {
                Some(crate::stage::nothing_live(s))
            }
            _ => None,
        }
    }) {
        return Err(Stop::invalid(refused));
    }
    let options = PlanOptions {
        force: cmd.force,
        pull: cmd.pull,
    };
    let mut plan = plan_with(desired, &observed, &options).map_err(Stop::invalid)?;
    plan.steps.retain(|s| wanted(s, selected));
    // Images of apps not deployed now are not fetched either.
    plan.images.retain(|i| {
        i.services
            .iter()
            .any(|s| selected.contains(s) || desired.accessory(s).is_some())
    });
    Ok((plan, obs))
}

/// The ID of `image` if it is on this host; nothing is pulled.
async fn local_image(inner: &Inner, image: &str) -> Result<Option<String>, Stop> {
    Ok(inner
        .engine
        .inspect_image(image)
        .await
        .map_err(Stop::failed)?
        .map(|img| img.id))
}

pub(crate) fn selected_apps(
    desired: &ResolvedProject,
    services: &[String],
) -> Result<BTreeSet<String>, Stop> {
    if services.is_empty() {
        return Ok(desired
            .apps
            .iter()
            .map(|a| a.service.name.clone())
            .collect());
    }
    let mut out = BTreeSet::new();
    for s in services {
        if desired.app(s).is_some() {
            out.insert(s.clone());
        } else if desired.accessory(s).is_some() {
            return Err(Stop::invalid(
                Report::new(format!(
                    "{s} is an accessory, not an app: accessories are always reconciled by a deploy"
                ))
                .hint(format!(
                    "deploy without naming services, or name an app ({})",
                    app_names(desired)
                )),
            ));
        } else {
            return Err(Stop::invalid(
                Report::new(format!("no app named {s} in project {}", desired.name)).hint(format!(
                    "apps are the services with an x-cutover block: {}",
                    app_names(desired)
                )),
            ));
        }
    }
    Ok(out)
}

fn app_names(desired: &ResolvedProject) -> String {
    let names: Vec<&str> = desired
        .apps
        .iter()
        .map(|a| a.service.name.as_str())
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Steps of apps not selected are left out; shared resources always stay.
fn wanted(step: &Step, selected: &BTreeSet<String>) -> bool {
    match step {
        Step::DeployApp { service, .. }
        | Step::AppUpToDate { service, .. }
        | Step::UpdateRoute { service, .. }
        | Step::RemoveOldVersions { service, .. } => selected.contains(service),
        _ => true,
    }
}

async fn deploy(
    inner: &Inner,
    cmd: &DeployCommand,
    p: &Progress,
) -> Result<(Outcome, Report), Stop> {
    let desired = &cmd.project;
    let project = desired.name.as_str();
    let selected = selected_apps(desired, &cmd.services)?;
    if desired.apps.is_empty() && desired.accessories.is_empty() {
        return Err(Stop::invalid(
            Report::new(format!("project {project} has no services"))
                .hint("add services to the compose file"),
        ));
    }
    // Before any build or pull: a conflict found at the switch would have
    // cost a build, a start and a health check, and in a multi-app deploy
    // left the apps before it switched.
    super::preflight::check_selected(inner, desired, &selected)?;
    let images = resolve_images(inner, p, cmd, &selected).await?;
    let (plan, obs) = plan_selected(inner, cmd, &selected, &images).await?;
    for w in &plan.warnings {
        p.warn(w.clone());
    }
    if plan.is_noop() {
        let live: Vec<String> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::AppUpToDate {
                    service,
                    color,
                    version,
                } => Some(format!("{service} {version} ({color})")),
                _ => None,
            })
            .collect();
        return Ok((
            Outcome::UpToDate,
            if live.is_empty() {
                format!("{project} is up to date")
            } else {
                format!("up to date: {} already runs", live.join(", "))
            }
            .into(),
        ));
    }

    let steps = plan.steps;
    let mut deployed = Vec::new();
    let mut accessories_ready = false;
    for step in &steps {
        match step {
            Step::CreateNetwork { key, name } => {
                let n = desired.networks.iter().find(|n| &n.key == key);
                let mut spec = specs::network(project, name, n);
                inner.owner.stamp(&mut spec.labels);
                let s = p.step(format!("create network {name}"));
                match inner.engine.ensure_network(&spec).await {
                    Ok(e) => p.done(s, (!e.created).then(|| "it already existed".into())),
                    Err(e) => {
                        p.failed(s, &e);
                        return Err(Stop::failed(e));
                    }
                }
            }
            Step::CreateVolume { key, name } => {
                let v = desired.volumes.iter().find(|v| &v.key == key);
                let mut spec = specs::volume(project, name, v);
                inner.owner.stamp(&mut spec.labels);
                let s = p.step(format!("create volume {name}"));
                step_result(p, s, inner.engine.ensure_volume(&spec).await)?;
            }
            Step::StartAccessory {
                service, container, ..
            }
            | Step::RecreateAccessory {
                service, container, ..
            } => {
                let recreate = matches!(step, Step::RecreateAccessory { .. });
                let acc = desired.accessory(service).expect("planned from desired");
                let verb = if recreate { "recreate" } else { "start" };
                let s = p.step(format!("{verb} accessory {service} ({container})"));
                let r = start_accessory(inner, project, &acc.service, container, recreate).await;
                step_result(p, s, r)?;
            }
            // A gateway is a Swarm service; one host's plan has none.
            Step::LeaveAccessory { .. } | Step::AppUpToDate { .. } | Step::StartGateway { .. } => {}
            Step::DeployApp {
                service,
                color,
                reason,
                ..
            } => {
                if !accessories_ready {
                    wait_accessories(inner, p, desired, &selected).await?;
                    accessories_ready = true;
                }
                let app = desired.app(service).expect("planned from desired");
                let state = obs.apps.get(service).cloned().unwrap_or_default();
                tracing::info!(project, service, color = %color, reason = ?reason, "deploying");
                let done = deploy_app(inner, p, cmd, app, &images, *color, &state, &steps).await;
                match done {
                    Ok(()) => deployed.push(format!("{service} ({color})")),
                    Err(mut stop) => {
                        if !deployed.is_empty() {
                            stop.report = stop.report.detail(format!(
                                "already switched in this deploy: {}",
                                deployed.join(", ")
                            ));
                        }
                        return Err(stop);
                    }
                }
            }
            Step::UpdateRoute { service, changed } => {
                let app = desired.app(service).expect("planned from desired");
                let state = obs.apps.get(service).cloned().unwrap_or_default();
                update_route(inner, p, project, app, &state, changed).await?;
            }
            Step::RemoveOldVersions {
                service,
                containers,
            } => {
                // With a DeployApp the cutover prunes after the switch.
                let deploying = steps
                    .iter()
                    .any(|s| matches!(s, Step::DeployApp { service: s2, .. } if s2 == service));
                if !deploying {
                    for c in containers {
                        switch::remove_container(inner, p, c, "past keep").await?;
                    }
                }
            }
        }
    }
    Ok((
        Outcome::Ok,
        if deployed.is_empty() {
            format!("{project}: accessories and routes updated")
        } else if let Some(mode) = cmd.stage {
            format!(
                "staged {} as a {} beside the live version; `cutover promote` puts it live, `cutover abort` drops it",
                deployed.join(", "),
                mode.describe()
            )
        } else {
            format!("deployed {}", deployed.join(", "))
        }
        .into(),
    ))
}

/// One app's part of a deploy: its `pre_deploy` hook, the cutover to
/// `color`, then `post_deploy`, or `on_failure` if either of the first two
/// failed.
#[allow(clippy::too_many_arguments)]
async fn deploy_app(
    inner: &Inner,
    p: &Progress,
    cmd: &DeployCommand,
    app: &cutover_core::compose::AppSpec,
    images: &BTreeMap<String, String>,
    color: Color,
    state: &AppState,
    steps: &[Step],
) -> Result<(), Stop> {
    let project = cmd.project.name.as_str();
    let service = &app.service.name;
    let image_id = images
        .get(&app.service.image)
        .cloned()
        .expect("selected app images are resolved");
    let hash = config_hash(&app.service);
    let vid = version_id(&image_id, &hash);
    let version = cmd.version.clone().unwrap_or_else(|| vid.clone());
    let remove_after: Vec<String> = steps
        .iter()
        .find_map(|s| match s {
            Step::RemoveOldVersions {
                service: s2,
                containers,
            } if s2 == service => Some(containers.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let hooks = HookRun {
        project,
        app,
        image: &image_id,
        version: &version,
        color,
        previous: state.live.as_ref().map(|l| l.version.as_str()),
    };
    if let Err(e) = hooks.run(inner, p, HookKind::PreDeploy, None).await {
        let _ = hooks
            .run(inner, p, HookKind::OnFailure, Some(&e.message))
            .await;
        let keeps = match &state.live {
            Some(live) => format!("{} version {} keeps serving", live.name(), live.version),
            None => "nothing served it before".into(),
        };
        return Err(Stop::failed(e.map_message(|m| {
            format!("{m}; {service} was not started, {keeps}")
        })));
    }
    let candidate = Candidate {
        app,
        image: app.service.image.clone(),
        image_id: image_id.clone(),
        version: version.clone(),
        version_id: vid,
        config_hash: hash,
        color,
        operation: crate::stage::operation(cmd.stage),
        stage: cmd.stage,
        started: p.started(),
    };
    match switch::roll_out(inner, p, project, candidate, state, &remove_after).await {
        // `post_deploy` runs when a staged version goes live, at `promote`.
        Ok(()) if cmd.stage.is_some() => Ok(()),
        Ok(()) => {
            // After the switch nothing is undone: the hook's failure is
            // the user's to hear of, not a reason to switch back.
            if let Err(e) = hooks.run(inner, p, HookKind::PostDeploy, None).await {
                p.warn(e.map_message(|m| format!("{m}; {service} {version} serves all the same")));
            }
            Ok(())
        }
        Err(stop) => {
            let _ = hooks
                .run(inner, p, HookKind::OnFailure, Some(&stop.report.message))
                .await;
            Err(stop)
        }
    }
}

/// Ends step `s` as `r` says; its error also stops the operation.
fn step_result<T, E: std::fmt::Display + Into<Report>>(
    p: &Progress,
    s: crate::events::StepHandle,
    r: Result<T, E>,
) -> Result<T, Stop> {
    match r {
        Ok(v) => {
            p.done(s, None);
            Ok(v)
        }
        Err(e) => {
            p.failed(s, &e);
            Err(Stop::failed(e))
        }
    }
}

async fn start_accessory(
    inner: &Inner,
    project: &str,
    spec: &ServiceSpec,
    container: &str,
    recreate: bool,
) -> Result<(), Report> {
    let engine = &*inner.engine;
    if let Some(existing) = engine
        .inspect_container(container)
        .await
        .map_err(Report::from)?
    {
        let ours = existing.labels.get(labels::PROJECT).map(String::as_str) == Some(project)
            && existing.labels.get(labels::SERVICE) == Some(&spec.name);
        if !ours {
            return Err(Report::new(format!(
                "container name {container} is taken by a container cutover does not manage"
            ))
            .hint(format!(
                "remove it (`docker rm -f {container}`) or set another `container_name:` for {}",
                spec.name
            )));
        }
        if !recreate {
            return engine
                .start_container(container)
                .await
                .map_err(Report::from);
        }
        engine
            .remove_container(container)
            .await
            .map_err(Report::from)?;
    }
    let gateways = inner.gateways(spec).await?;
    let mut c = specs::accessory_container(container, spec, project, &gateways)?;
    inner.owner.stamp(&mut c.labels);
    engine.create_container(&c).await.map_err(Report::from)?;
    engine
        .start_container(container)
        .await
        .map_err(Report::from)
}

/// Accessories an app waits for with `condition: service_healthy`.
async fn wait_accessories(
    inner: &Inner,
    p: &Progress,
    desired: &ResolvedProject,
    selected: &BTreeSet<String>,
) -> Result<(), Stop> {
    let mut names = BTreeSet::new();
    for app in desired
        .apps
        .iter()
        .filter(|a| selected.contains(&a.service.name))
    {
        for d in &app.service.depends_on {
            if d.condition == DependsCondition::ServiceHealthy {
                if let Some(acc) = desired.accessory(&d.service) {
                    names.insert(acc.container_name.clone());
                }
            }
        }
    }
    for name in names {
        let s = p.step(format!("wait for {name} to be healthy"));
        match inner
            .engine
            .wait_healthy(&name, ACCESSORY_HEALTHY_TIMEOUT)
            .await
        {
            Ok(_) => p.done(s, None),
            Err(EngineError::NoHealthcheck { .. }) => p.done(
                s,
                Some("it has no healthcheck; started is all there is".into()),
            ),
            Err(e) => {
                p.failed(s, &e);
                // The engine's own hint is about healthchecks in general;
                // this one says where the reason is.
                return Err(Stop::failed(
                    Report::new(format!("accessory {name} is not healthy: {e}"))
                        .hint(format!("`docker logs {name}` tells why")),
                ));
            }
        }
    }
    Ok(())
}

/// Hosts, path prefix, health or timeouts changed and nothing else: the
/// live container stays, the proxy re-checks it with the new settings and
/// switches to the new route.
async fn update_route(
    inner: &Inner,
    p: &Progress,
    project: &str,
    app: &cutover_core::compose::AppSpec,
    state: &AppState,
    changed: &[String],
) -> Result<(), Stop> {
    let service = &app.service.name;
    let Some(live) = &state.live else {
        return Ok(());
    };
    let s = p.step(format!(
        "update route of {service} ({})",
        changed.join(", ")
    ));
    let reached = match inner.app_targets(&live.info, app).await {
        Ok(addrs) => inner.gateways(&app.service).await.map(|g| (addrs, g)),
        Err(e) => Err(e),
    };
    let (addrs, gateways) = match reached {
        Ok(r) => r,
        Err(e) => {
            p.failed(s, &e);
            return Err(Stop::failed(e));
        }
    };
    let c = &app.cutover;
    let r = inner
        .proxy
        .deploy(
            &cutover_core::naming::route(project, service),
            specs::route_request(app, &gateways, &addrs, live.color, &live.version),
        )
        .await;
    match r {
        Ok(_) => {
            let settings = c.clone();
            if let Err(e) = inner
                .releases
                .update_async(project, service, &live.version_id, |r| {
                    r.app.cutover = settings
                })
                .await
            {
                p.warn(e);
            }
            p.done(s, None);
            inner.routes_changed().await;
            Ok(())
        }
        Err(e) => {
            p.failed(s, &e);
            let detail = e.describe(&cutover_core::naming::route(project, service));
            Err(Stop::failed(Report::from(e).map_message(|_| {
                format!("the new route of {service} was refused, and the old route stays: {detail}")
            })))
        }
    }
}

async fn resolve_images(
    inner: &Inner,
    p: &Progress,
    cmd: &DeployCommand,
    selected: &BTreeSet<String>,
) -> Result<BTreeMap<String, String>, Stop> {
    let desired = &cmd.project;
    let mut images = BTreeMap::new();
    let specs = desired
        .accessories
        .iter()
        .map(|a| (&a.service, true))
        .chain(
            desired
                .apps
                .iter()
                .map(|a| (&a.service, selected.contains(&a.service.name))),
        );
    for (spec, wanted) in specs {
        if images.contains_key(&spec.image) {
            continue;
        }
        if !wanted {
            if let Some(id) = local_image(inner, &spec.image).await? {
                images.insert(spec.image.clone(), id);
            }
            continue;
        }
        let id = resolve_image(inner, p, cmd, spec).await?;
        images.insert(spec.image.clone(), id);
    }
    Ok(images)
}

/// `spec`'s image ID: built, found or pulled (with the deploy's login for
/// its registry, if it carries one).
async fn resolve_image(
    inner: &Inner,
    p: &Progress,
    cmd: &DeployCommand,
    spec: &ServiceSpec,
) -> Result<String, Stop> {
    let (desired, pull, cmd_auth) = (&cmd.project, cmd.pull, &cmd.registry_auth);
    let engine = &*inner.engine;
    if let Some(b) = &spec.build {
        let s = p.step(format!("build {} for {}", spec.image, spec.name));
        let mut bs = BuildSpec::new(PathBuf::from(&b.context), spec.image.clone());
        if let Some(digest) = cmd.build_contexts.get(&b.context) {
            if !inner.uploads.has(digest) {
                let report = crate::uploads::missing(&b.context, digest);
                p.failed(s, &report.message);
                return Err(Stop::invalid(report));
            }
            bs.packed = Some(inner.uploads.path(digest));
        }
        bs.dockerfile = b.dockerfile.as_ref().map(PathBuf::from);
        bs.build_args = b.args.clone();
        bs.target = b.target.clone();
        bs.labels
            .insert(labels::PROJECT.into(), desired.name.clone());
        return step_result(p, s, engine.build_image(&bs).await).map(|out| out.image_id);
    }
    match (
        pull_policy(spec, pull),
        local_image(inner, &spec.image).await?,
    ) {
        (PullPolicy::Missing, Some(id)) | (PullPolicy::Never, Some(id)) => Ok(id),
        (PullPolicy::Never, None) => Err(Stop::invalid(
            Report::new(format!(
                "image {} (service {}) is not on this host and pulling is off",
                spec.image, spec.name
            ))
            .hint("pull or load it first, or deploy with --pull missing"),
        )),
        (PullPolicy::Always, _) | (PullPolicy::Missing, None) => {
            let s = p.step(format!("pull {}", spec.image));
            let auth = cmd_auth.get(cutover_core::registry::registry_of(&spec.image));
            step_result(p, s, engine.pull_image(&spec.image, auth).await).map(|img| img.id)
        }
    }
}
