//! `deploy` on a Swarm: the overlay networks, the accessories, then each
//! app's cutover: start the new color's service, switch every live node in
//! two phases, drain the old color on each, scale it to 0 and keep it for
//! rollback.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cutover_core::compose::{self, AccessorySpec, AppSpec, HookKind, ResolvedProject, VolumeSpec};
use cutover_core::diag::Report;
use cutover_core::fleet;
use cutover_core::naming;
use cutover_core::progress::{DeployCommand, Outcome};
use cutover_core::service::Color;
use cutover_core::stage::Stage;
use cutover_core::tls::CertificateSource;
use cutover_docker::labels;
use cutover_docker::NetworkSpec;
use futures_util::future::join_all;

use super::cutover::{self, undo_service, Candidate, Undo};
use super::edges::{self, Edge};
use super::plan::{decide, selected_in_order, Decision};
use super::switch::NodeRoute;
use super::{files, gateways, kept, specs, switch, Inner};
use crate::events::Progress;
use crate::executor::deploy::selected_apps;
use crate::executor::hooks::HookRun;
use crate::executor::Stop;
use crate::history::{record_app, AppLine};
use crate::specs::{route_request, Gateways};

/// How long an accessory's tasks have to run.
const ACCESSORY_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) async fn deploy(
    sw: &Inner,
    cmd: &DeployCommand,
    p: &Progress,
) -> Result<(Outcome, Report), Stop> {
    let cmd = &with_files_read(cmd)?;
    let result = deploy_project(sw, cmd, p).await;
    // A value this deploy replaced, or one a failed deploy created, is
    // mounted by no service any more.
    files::prune(sw, &cmd.project.name, p).await;
    result
}

/// The deploy command with its `file:` secrets and configs read here into
/// their contents: a Swarm stores them, and their contents are then part
/// of the version, so a changed file is a new color.
pub(super) fn with_files_read(cmd: &DeployCommand) -> Result<DeployCommand, Stop> {
    let mut cmd = cmd.clone();
    cutover_compose::inline_files(&mut cmd.project, "on the deploy engine's host")
        .map_err(Stop::invalid)?;
    Ok(cmd)
}

async fn deploy_project(
    sw: &Inner,
    cmd: &DeployCommand,
    p: &Progress,
) -> Result<(Outcome, Report), Stop> {
    let project = &cmd.project;
    // 1. Nothing starts when any part of the file cannot be done here, or
    //    no node's edge runs.
    let Preflight { selected, edges } = preflight(sw, cmd).await?;

    // 2. What the apps need.
    networks(sw, project, p).await?;
    for acc in &project.accessories {
        accessory(sw, project, acc, p).await?;
    }
    for app in selected_in_order(project, &selected) {
        gateways::ensure(sw, project, app, p).await?;
    }

    // 3. Each app's cutover.
    let mut deployed = Vec::new();
    for app in selected_in_order(project, &selected) {
        if let Some(done) = cutover_app(sw, cmd, app, &edges, p).await? {
            deployed.push(done);
        }
    }
    if deployed.is_empty() {
        return Ok((
            Outcome::UpToDate,
            Report::new(format!("{} is up to date", project.name)),
        ));
    }
    Ok((
        Outcome::Ok,
        Report::new(format!(
            "deployed {} on {} nodes: {}",
            project.name,
            edges.len(),
            deployed.join(", ")
        )),
    ))
}

/// What a deploy and a plan check before anything: the apps selected,
/// and the edges that vote.
pub(super) struct Preflight {
    pub selected: BTreeSet<String>,
    pub edges: Vec<Edge>,
}

/// Refuses, before anything starts, what a Swarm cannot do, an external
/// secret or config it does not have, a swarm with no edge running, and
/// HTTPS on edges that do not share certificates.
pub(super) async fn preflight(sw: &Inner, cmd: &DeployCommand) -> Result<Preflight, Stop> {
    let project = &cmd.project;
    // 1. Every part of the file can be done here.
    let refused = specs::refusals(cmd);
    if let Some(first) = refused.first() {
        let more: Vec<String> = refused[1..].iter().map(|r| r.message.clone()).collect();
        let mut report = first.clone();
        if !more.is_empty() {
            report = report.detail(more.join("\n"));
        }
        return Err(Stop::invalid(report));
    }
    let selected = selected_apps(project, &cmd.services)?;
    let missing = files::missing_external(sw, project)
        .await
        .map_err(Stop::failed)?;
    if let Some(first) = missing.into_iter().next() {
        return Err(Stop::invalid(first));
    }

    // 2. The nodes that vote: those whose edge runs.
    let edges = edges::live(&*sw.cluster, &sw.edges)
        .await
        .map_err(Stop::failed)?;
    if edges.is_empty() {
        return Err(Stop::failed(
            Report::new(format!(
                "no node of the swarm runs a cutover edge ({})",
                sw.edges.service
            ))
            .hint(format!(
                "`docker service ps {}` shows why its tasks do not run",
                sw.edges.service
            )),
        ));
    }

    // 3. HTTPS needs one certificate storage on every node.
    let wants_certificates = selected_in_order(project, &selected).any(|a| {
        a.cutover
            .tls
            .as_ref()
            .is_some_and(|t| !matches!(t.certificate, CertificateSource::Files { .. }))
    });
    if wants_certificates {
        shared_certificates(sw, &edges).await?;
    }
    Ok(Preflight { selected, edges })
}

/// Every live node's edge reads the same certificate storage
/// (`cutover_core::fleet::shared_storage`); nothing starts otherwise.
async fn shared_certificates(sw: &Inner, edges: &[Edge]) -> Result<(), Stop> {
    let answers = join_all(edges.iter().map(|e| e.health(&sw.edges))).await;
    let mut by_node = BTreeMap::new();
    for (edge, answer) in edges.iter().zip(answers) {
        let health = answer.map_err(|e| {
            Stop::failed(Report::new(format!(
                "the cutover edge on {} did not answer: {e}",
                edge.node
            )))
        })?;
        by_node.insert(edge.node.clone(), health.certificate_storage);
    }
    fleet::shared_storage(&by_node).map_err(|split| {
        Stop::invalid(
            Report::new("x-cutover.tls: the nodes' edges do not share one certificate storage")
                .detail(split)
                .hint("mount one shared folder (NFS, or any filesystem with flock) as every edge's --certificates-dir: deploy the stack with dist/swarm/https.yml too (docs/swarm.md#https)"),
        )
    })
}

/// Each network as an attachable overlay under its exact name. A bridge
/// network would exist on one node only.
async fn networks(sw: &Inner, project: &ResolvedProject, p: &Progress) -> Result<(), Stop> {
    for n in missing_networks(sw, project).await? {
        let mut spec: NetworkSpec = crate::specs::network(&project.name, &n.name, Some(n));
        spec.driver = Some("overlay".into());
        spec.attachable = true;
        let step = p.step(format!("create the overlay network {}", n.name));
        sw.engine
            .create_network(&spec)
            .await
            .map_err(Stop::failed)?;
        p.done(step, None);
    }
    Ok(())
}

/// The project's networks a deploy creates; an error for the edge network
/// missing, an external one missing, or one that cannot span the nodes.
pub(super) async fn missing_networks<'a>(
    sw: &Inner,
    project: &'a ResolvedProject,
) -> Result<Vec<&'a compose::NetworkSpec>, Stop> {
    let edge = &sw.edges.network;
    if sw
        .engine
        .inspect_network(edge)
        .await
        .map_err(Stop::failed)?
        .is_none()
    {
        return Err(Stop::failed(
            Report::new(format!("the edge network {edge:?} does not exist")).hint(
                "it comes with cutover's stack (dist/swarm/cutover.yml); --edge-network names it",
            ),
        ));
    }
    let mut missing = Vec::new();
    for n in &project.networks {
        if let Some(found) = sw
            .engine
            .inspect_network(&n.name)
            .await
            .map_err(Stop::failed)?
        {
            if found.driver != "overlay" {
                return Err(Stop::invalid(
                    Report::new(format!(
                        "networks.{}: {:?} is a {} network, which does not span the nodes",
                        n.key, n.name, found.driver
                    ))
                    .hint("remove it (`docker network rm`) so cutover creates an overlay, or name another"),
                ));
            }
            continue;
        }
        if n.external {
            return Err(Stop::invalid(
                Report::new(format!(
                    "networks.{}: the external network {:?} does not exist",
                    n.key, n.name
                ))
                .hint("create it with `docker network create -d overlay --attachable`"),
            ));
        }
        if n.driver.as_deref().is_some_and(|d| d != "overlay") {
            return Err(Stop::invalid(
                Report::new(format!(
                    "networks.{}: driver {:?} does not span the nodes of a swarm",
                    n.key,
                    n.driver.as_deref().unwrap_or_default()
                ))
                .hint("leave `driver:` out or write `driver: overlay`"),
            ));
        }
        missing.push(n);
    }
    Ok(missing)
}

/// An accessory runs once and lives across deploys; a changed one is
/// reported, not replaced (its data would go with it).
async fn accessory(
    sw: &Inner,
    resolved: &ResolvedProject,
    acc: &AccessorySpec,
    p: &Progress,
) -> Result<(), Stop> {
    let project = &resolved.name;
    let mut spec = specs::accessory_service(project, acc);
    specs::own_volumes(&mut spec, project, &resolved.volumes);
    if let Some(found) = sw
        .cluster
        .inspect_service(&spec.name)
        .await
        .map_err(Stop::failed)?
    {
        if found.labels.get(labels::CONFIG_HASH) != spec.labels.get(labels::CONFIG_HASH) {
            p.warn(accessory_changed(&spec.name));
        }
        return Ok(());
    }
    let step = p.step(format!("start accessory {}", spec.name));
    files::attach(sw, project, &acc.service, &mut spec)
        .await
        .map_err(Stop::failed)?;
    start_service(sw, &spec, ACCESSORY_TIMEOUT, step, p)
        .await
        .map_err(Stop::failed)
}

/// Creates `spec` and waits up to `timeout` for all its tasks to run,
/// ending `step`; a service that does not converge is removed.
pub(super) async fn start_service(
    sw: &Inner,
    spec: &cutover_swarm::ServiceSpec,
    timeout: Duration,
    step: crate::events::StepHandle,
    p: &Progress,
) -> Result<(), Report> {
    if let Err(e) = sw.cluster.create_service(spec).await {
        p.failed(step, &e);
        return Err(e.into());
    }
    match sw
        .cluster
        .wait_converged(&spec.name, &BTreeSet::new(), timeout)
        .await
    {
        Ok(_) => {
            p.done(step, None);
            Ok(())
        }
        Err(e) => {
            p.failed(step, &e);
            undo_service(sw, &spec.name, Undo::Remove, p).await;
            Err(e.into())
        }
    }
}

/// The warning for an accessory whose file changed: it is not replaced.
pub(super) fn accessory_changed(service: &str) -> Report {
    Report::new(format!(
        "accessory {service} changed in the compose file; it keeps running as it was"
    ))
    .hint(format!(
        "to replace it, `docker service rm {service}` and deploy again (its volume stays)"
    ))
}

/// One app: `None` when its live color already runs this version.
async fn cutover_app(
    sw: &Inner,
    cmd: &DeployCommand,
    app: &AppSpec,
    edges: &[Edge],
    p: &Progress,
) -> Result<Option<String>, Stop> {
    let project = &cmd.project.name;
    let name = &app.service.name;
    let route = naming::route(project, name);
    let views = switch::views(edges, &sw.edges, &route)
        .await
        .map_err(Stop::failed)?;
    let live = switch::live_color(&route, &views).map_err(Stop::failed)?;
    if let Some(held) = staged_on(project, name, &views) {
        return Err(Stop::invalid(held));
    }
    if cmd.stage.is_some() && live.is_none() {
        return Err(Stop::invalid(crate::stage::nothing_live(name)));
    }
    let (color, version) = match decide(sw, cmd, app, live, &views).await? {
        Decision::UpToDate { color, .. } => {
            p.warn(format!(
                "{name} is up to date ({color}); --force deploys it again"
            ));
            return Ok(None);
        }
        Decision::Deploy { color, version, .. } => (color, version),
    };
    let line = AppLine {
        project,
        operation: crate::stage::operation(cmd.stage),
        service: name,
        version: &version,
        color,
        started: tokio::time::Instant::now(),
    };
    let slot = Slot {
        color,
        version: &version,
        volumes: &cmd.project.volumes,
        live,
        stage: cmd.stage.map(|mode| Stage {
            mode,
            preview_hosts: app.cutover.preview_hosts.clone(),
            // One token for every node, so a canary cookie drawn on one
            // counts on all.
            token: format!("{:08x}", rand::random::<u32>()),
        }),
    };
    // The hooks around it, where they run on one host.
    let previous = views
        .iter()
        .find_map(|v| v.config.as_ref()?.version.clone());
    let hooks = HookRun {
        project,
        app,
        image: &app.service.image,
        version: &version,
        color,
        previous: previous.as_deref(),
    };
    let result = match hooks
        .run_on_swarm(sw, p, HookKind::PreDeploy, None, slot.volumes)
        .await
    {
        Ok(()) => launch(sw, project, app, &views, &slot, p).await,
        Err(report) => Err(Stop::failed(report)),
    };
    let after = match &result {
        // `post_deploy` runs when a staged version goes live, at `promote`.
        Ok(()) if slot.stage.is_some() => Ok(()),
        Ok(()) => {
            hooks
                .run_on_swarm(sw, p, HookKind::PostDeploy, None, slot.volumes)
                .await
        }
        Err(stop) => {
            let error = Some(stop.report.message.as_str());
            hooks
                .run_on_swarm(sw, p, HookKind::OnFailure, error, slot.volumes)
                .await
        }
    };
    if let Err(report) = after {
        p.warn(report);
    }
    record_app(&sw.history, p, line, result).await?;
    Ok(Some(format!("{name} {color} ({version})")))
}

/// The color an app's deploy starts, and the one it replaces.
struct Slot<'a> {
    color: Color,
    version: &'a str,
    /// The project's volumes, as a node creates them for the new tasks.
    volumes: &'a [VolumeSpec],
    live: Option<Color>,
    /// Staged beside `live` rather than switched to.
    stage: Option<Stage>,
}

/// Why an app's deploy or rollback cannot run now: some node has a
/// version staged beside its live one.
pub(super) fn staged_on(project: &str, app: &str, views: &[NodeRoute]) -> Option<Report> {
    let staged = views.iter().find_map(|v| v.staged.as_ref())?;
    let version = staged.set.version.as_deref().unwrap_or("-");
    let service = naming::swarm_app(project, app, staged.set.color);
    Some(crate::stage::staged_beside(app, version, &service))
}

/// Starts the new color's service, then switches every node to it.
async fn launch(
    sw: &Inner,
    project: &str,
    app: &AppSpec,
    views: &[NodeRoute],
    slot: &Slot<'_>,
    p: &Progress,
) -> Result<(), Stop> {
    let (color, version) = (slot.color, slot.version);
    let service = naming::swarm_app(project, &app.service.name, color);

    // 1. The new color's service. The slot may hold the version before
    //    last (kept at 0 tasks) or what a failed deploy left: replaced.
    let tasks = specs::tasks_shown(specs::wanted_tasks(&app.service));
    let keep = app.cutover.keep;
    kept::set_aside(sw, &service, keep, version, p).await?;
    let step = p.step(format!("start {service}: {tasks} of {version}"));
    sw.cluster
        .remove_service(&service)
        .await
        .map_err(Stop::failed)?;
    let mut spec = specs::app_service(project, app, color, version, &sw.edges.network);
    specs::own_volumes(&mut spec, project, slot.volumes);
    files::attach(sw, project, &app.service, &mut spec)
        .await
        .map_err(Stop::failed)?;
    if slot.stage.is_some() {
        // `promote` runs the app's post_deploy hook from it.
        let kept = files::by_object_name(project, app);
        let json = serde_json::to_string(&kept).expect("an app spec serializes");
        spec.labels.insert(labels::STAGED_APP.into(), json);
        let json = serde_json::to_string(slot.volumes).expect("volume specs serialize");
        spec.labels.insert(labels::STAGED_VOLUMES.into(), json);
    }
    sw.cluster
        .create_service(&spec)
        .await
        .map_err(Stop::failed)?;
    let timeout = app.cutover.timeouts.deploy;
    let addrs =
        match cutover::targets(sw, &service, app.cutover.port, &BTreeSet::new(), timeout).await {
            Ok(addrs) => addrs,
            Err(report) => {
                p.failed(step, &report.message);
                undo_service(sw, &service, Undo::Remove, p).await;
                return Err(Stop::failed(report));
            }
        };
    let listed: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    p.done(step, Some(listed.join(" ")));

    // 2. The switch on every node, the old color's drain and scale to 0.
    let candidate = Candidate {
        project,
        app: &app.service.name,
        color,
        version: version.to_string(),
        req: route_request(app, &Gateways::default(), &addrs, color, version),
        live: slot.live,
        keep_old: keep > 0,
        stage: slot.stage.clone(),
    };
    cutover::cut_over(sw, views, &candidate, Undo::Remove, p).await?;
    kept::prune(sw, project, &app.service.name, keep, version, p).await;
    Ok(())
}
