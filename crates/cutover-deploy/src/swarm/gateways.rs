//! An app's gateway on a Swarm: the service `<project>_<app>` that answers
//! to the app's names on its networks (Compose's DNS names) and relays
//! each call to an edge, which routes it to the live color, switched and
//! drained like outside traffic (`cutover_proxy::gateway`). The colors
//! answer to no name, as on one host, so no call reaches a color before
//! its gate or after it retired.
//!
//! A gateway does not depend on the color: it is made once, before the
//! app's first switch, and lives across deploys. It is replaced only when
//! what callers see changes (the app's port, networks or names), and
//! removed with `down`. It runs cutover's own image (the edges'), with two
//! tasks: calls still find one while a node is down.

use std::collections::BTreeMap;
use std::time::Duration;

use cutover_core::compose::{self, AppSpec, ResolvedProject};
use cutover_core::diag::Report;
use cutover_core::naming;
use cutover_docker::labels::{self, Role};
use cutover_swarm::{Mode, ServiceNetwork, ServiceSpec};

use super::Inner;
use crate::events::Progress;
use crate::executor::Stop;

/// Tasks per gateway, which Swarm spreads over the nodes.
const TASKS: u64 = 2;

/// How long a gateway's tasks have to run.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A gateway's relays end within this much after SIGTERM
/// (`cutover gateway`'s grace is shorter).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What a deploy does with an app's gateway.
pub(super) enum Wanted {
    /// It runs as the file wants it.
    UpToDate,
    /// None runs yet.
    Start(Gateway),
    /// The app's port, networks or names changed.
    Replace(Gateway),
}

/// The gateway the file wants: its service, and the networks it answers
/// on, with its names there.
pub(super) struct Gateway {
    pub spec: ServiceSpec,
    pub networks: BTreeMap<String, Vec<String>>,
}

/// What `deploy` will do with `app`'s gateway, decided here for `deploy`
/// and `plan` alike. A service of its name that is not cutover's gateway
/// is refused, naming it.
pub(super) async fn wanted(
    sw: &Inner,
    project: &ResolvedProject,
    app: &AppSpec,
) -> Result<Wanted, Stop> {
    let name = naming::swarm_gateway(&project.name, &app.service.name);
    let found = sw
        .cluster
        .inspect_service(&name)
        .await
        .map_err(Stop::failed)?;
    let ours = found.as_ref().is_some_and(|f| {
        f.labels.get(labels::ROLE).map(String::as_str) == Some(Role::Gateway.as_str())
    });
    if found.is_some() && !ours {
        return Err(Stop::invalid(
            Report::new(format!(
                "services.{}: the Swarm service {name} exists and is not its gateway",
                app.service.name
            ))
            .hint(format!("cutover answers for {} by name through a service of that name: remove or rename `{name}` (`docker service rm {name}`)", app.service.name)),
        ));
    }
    // Every app is on a network (its colors are reached there) and calls
    // itself by name on its first one, so there is always one.
    let networks = compose::called_on(project, app);
    // The edges' image holds `cutover gateway` too.
    let image = super::edges::service(&*sw.cluster, &sw.edges)
        .await
        .map_err(Stop::failed)?
        .image;
    let spec = spec(sw, &project.name, app, &networks, image);
    let gateway = Gateway { spec, networks };
    Ok(match found {
        None => Wanted::Start(gateway),
        Some(f)
            if f.labels.get(labels::CONFIG_HASH)
                == gateway.spec.labels.get(labels::CONFIG_HASH) =>
        {
            Wanted::UpToDate
        }
        Some(_) => Wanted::Replace(gateway),
    })
}

/// `app`'s gateway runs as the file wants it. A failure stops the deploy
/// before the app switches; a gateway this call made is removed then.
pub(super) async fn ensure(
    sw: &Inner,
    project: &ResolvedProject,
    app: &AppSpec,
    p: &Progress,
) -> Result<(), Stop> {
    let Gateway { spec, networks } = match wanted(sw, project, app).await? {
        Wanted::UpToDate => return Ok(()),
        Wanted::Start(g) => g,
        Wanted::Replace(g) => return replace(sw, &g.spec, p).await,
    };
    let name = &spec.name;
    let on: Vec<&str> = networks.keys().map(String::as_str).collect();
    let step = p.step(format!(
        "start {name}, answering for {} on {}",
        app.service.name,
        on.join(", ")
    ));
    super::deploy::start_service(sw, &spec, START_TIMEOUT, step, p)
        .await
        .map_err(|e| {
            Stop::failed(e.hint(
                "a gateway runs cutover's own image, the edges': every node needs it (docs/swarm.md, set-up step 2)",
            ))
        })
}

/// A gateway whose port, networks or names changed, updated in place: each
/// new task starts (and answers to the names) before an old one stops,
/// and an old one's calls under way finish in its stop grace period, so
/// no call is cut. A new task that fails leaves the old ones serving.
async fn replace(sw: &Inner, spec: &ServiceSpec, p: &Progress) -> Result<(), Stop> {
    let name = &spec.name;
    let step = p.step(format!(
        "replace {name}, new tasks first: the app's port, networks or names changed"
    ));
    let updated = match sw.cluster.update_service(spec).await {
        Ok(before) => {
            sw.cluster
                .wait_updated(name, before.as_ref(), START_TIMEOUT)
                .await
        }
        Err(e) => Err(e),
    };
    match updated {
        Ok(()) => {
            p.done(step, None);
            Ok(())
        }
        Err(e) => {
            p.failed(step, &e);
            Err(Stop::failed(e))
        }
    }
}

/// The gateway's service: `cutover gateway` on the app's port, with the
/// app's names on the networks it is called on, and on the edge network,
/// where it reaches every edge by the name `tasks.<edge service>`.
fn spec(
    sw: &Inner,
    project: &str,
    app: &AppSpec,
    networks: &BTreeMap<String, Vec<String>>,
    image: String,
) -> ServiceSpec {
    let route = naming::route(project, &app.service.name);
    let mut s = ServiceSpec::new(naming::swarm_gateway(project, &app.service.name), image);
    s.command = Some(vec![
        "gateway".into(),
        format!("--route={route}"),
        format!("--listen=0.0.0.0:{}", app.cutover.port),
        format!(
            "--edges=tasks.{}:{}",
            sw.edges.service, sw.edges.gateway_port
        ),
    ]);
    s.mode = Mode::Replicated(TASKS);
    s.networks = networks
        .iter()
        .map(|(name, aliases)| ServiceNetwork {
            name: name.clone(),
            aliases: aliases.clone(),
        })
        .collect();
    if !networks.contains_key(&sw.edges.network) {
        s.networks.push(ServiceNetwork {
            name: sw.edges.network.clone(),
            aliases: Vec::new(),
        });
    }
    s.stop_grace_period = Some(STOP_GRACE);
    // What callers see, not the image: a new cutover image on the edges
    // does not restart every gateway's tasks by itself.
    let seen = serde_json::to_vec(&(&s.command, networks)).expect("strings serialize");
    let hash = naming::hashed("gateway", &seen, naming::SWARM_SERVICE_MAX);
    for (key, value) in [
        (labels::PROJECT, project.to_string()),
        (labels::SERVICE, app.service.name.clone()),
        (labels::ROLE, Role::Gateway.as_str().to_string()),
        (labels::CONFIG_HASH, hash),
    ] {
        s.labels.insert(key.into(), value.clone());
        s.container_labels.insert(key.into(), value);
    }
    s
}
