//! What a deploy must do: `plan(desired, observed)` compares the resolved
//! project with what exists on the host and returns ordered steps. Pure, so
//! every decision of a deploy can be tested and shown (`cutover plan`) before
//! anything runs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

mod images;
mod routes;
pub use images::{pull_policy, ImageAction, ImagePlan};
pub use routes::{route_conflicts, HeldRoute};

use crate::compose::{
    changed_fields, config_hash, env_changes, version_id, AppSettings, AppSpec, EnvChanges,
    ResolvedProject, ServiceSpec,
};
use crate::diag::{Diagnose, Report};
use crate::service::Color;

/// What exists on the host, as the daemon observed it through the labels it
/// writes (never by name patterns).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// Names of existing networks.
    pub networks: BTreeSet<String>,
    /// Names of existing volumes.
    pub volumes: BTreeSet<String>,
    /// Accessory containers of this project by service name.
    pub accessories: BTreeMap<String, ObservedAccessory>,
    /// Apps of this project by service name.
    pub apps: BTreeMap<String, ObservedApp>,
    /// Image ID each image reference resolves to now (after pull or build).
    /// A reference missing here is compared by config only.
    pub images: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedAccessory {
    pub container: String,
    /// The `cutover.config-hash` label.
    pub config_hash: String,
    pub image_id: Option<String>,
    pub running: bool,
    /// The spec it was created from, when the daemon kept it; only used to
    /// name what changed.
    pub spec: Option<ServiceSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedApp {
    /// The version the proxy routes to.
    pub live: Option<ObservedVersion>,
    /// Stopped versions kept for rollback, newest first.
    pub kept: Vec<ObservedVersion>,
    /// The `x-cutover` settings the proxy routes the live version with, when
    /// known; a change of routing alone needs no new container.
    #[serde(default)]
    pub settings: Option<AppSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedVersion {
    pub color: Color,
    pub version_id: String,
    pub config_hash: String,
    pub image_id: String,
    pub container: String,
    pub spec: Option<ServiceSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOptions {
    /// Deploy apps even when nothing changed.
    pub force: bool,
    /// The deploy's `--pull`, for services without a `pull_policy`.
    #[serde(default)]
    pub pull: crate::progress::PullPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    CreateNetwork {
        key: String,
        name: String,
    },
    CreateVolume {
        key: String,
        name: String,
    },
    StartAccessory {
        service: String,
        container: String,
        reason: StartReason,
    },
    /// Interrupts the accessory: clients see it go away and come back.
    RecreateAccessory {
        service: String,
        container: String,
        reason: RecreateReason,
    },
    LeaveAccessory {
        service: String,
        container: String,
    },
    /// On a Swarm: the service that answers to an app's names on the
    /// networks it is called on and relays the calls to the edges.
    StartGateway {
        service: String,
        /// The gateway's Swarm service, `<project>_<service>`.
        name: String,
        networks: Vec<String>,
        /// One runs and the app's port, networks or names changed: it is
        /// updated task by task, each new one started first.
        replace: bool,
    },
    DeployApp {
        service: String,
        /// The slot the new version goes into: the other one of the live color.
        color: Color,
        container: String,
        /// `None` when the image ID is only known after pulling or building.
        version: Option<String>,
        /// A kept container of exactly this version, to restart instead of
        /// creating one (a rollback).
        reuse: Option<String>,
        reason: DeployReason,
        /// Containers of the new color (`deploy.replicas`); the others
        /// follow `container`, named `<container>-2` and up.
        #[serde(
            default = "crate::compose::model::one",
            skip_serializing_if = "crate::compose::model::is_one"
        )]
        replicas: u32,
    },
    AppUpToDate {
        service: String,
        color: Color,
        version: String,
    },
    /// The live version keeps running; only how the proxy routes to it and
    /// checks it changes (hosts, path_prefix, health, timeouts).
    UpdateRoute {
        service: String,
        changed: Vec<String>,
    },
    /// Kept versions beyond `keep`, removed once the deploy succeeded.
    RemoveOldVersions {
        service: String,
        containers: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartReason {
    Missing,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecreateReason {
    ConfigChanged(ConfigChange),
    ImageChanged { from: String, to: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeployReason {
    New,
    ImageChanged { from: String, to: String },
    ConfigChanged(ConfigChange),
    Forced,
}

/// What differs in the container config; empty when the previous spec is
/// unknown (only its hash was kept).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    /// Top-level fields, e.g. `environment`, `image`, `mounts`.
    pub fields: Vec<String>,
    pub env: EnvChanges,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub warnings: Vec<Report>,
    /// Each image the deploy uses and whether it builds, pulls or finds
    /// it; absent from plans of older daemons.
    #[serde(default)]
    pub images: Vec<ImagePlan>,
}

impl Plan {
    /// True when the plan creates, starts or deploys nothing.
    pub fn is_noop(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s, Step::LeaveAccessory { .. } | Step::AppUpToDate { .. }))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    MissingExternalNetwork {
        key: String,
        name: String,
    },
    MissingExternalVolume {
        key: String,
        name: String,
    },
    /// Not on this host, and its pull rule says never.
    ImageUnavailable {
        service: String,
        image: String,
    },
    /// The app's host and path prefix are already routed elsewhere.
    RouteConflict {
        project: String,
        service: String,
        /// As written, or `*` for an app with no hosts.
        host: String,
        /// Normalized, `/` for everything.
        prefix: String,
        /// The route that holds it (`<project>/<service>`).
        held_by: String,
    },
    /// Two apps on one network with the same `x-cutover.port`.
    SharedCallPort {
        services: [String; 2],
        network: String,
        port: u16,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::MissingExternalNetwork { key, name } => write!(
                f,
                "network {name} (networks.{key}, external) does not exist"
            ),
            PlanError::MissingExternalVolume { key, name } => {
                write!(f, "volume {name} (volumes.{key}, external) does not exist")
            }
            PlanError::ImageUnavailable { service, image } => write!(
                f,
                "image {image} (service {service}) is not on this host and pulling is off"
            ),
            PlanError::RouteConflict {
                service,
                host,
                prefix,
                held_by,
                ..
            } => {
                let host = if host == "*" { "every host" } else { host };
                write!(
                    f,
                    "{service} would route {host} under path {prefix}, which {held_by} already serves"
                )
            }
            PlanError::SharedCallPort {
                services: [a, b],
                network,
                port,
            } => write!(
                f,
                "apps {a} and {b} both have x-cutover.port {port} on network {network}"
            ),
        }
    }
}

impl Diagnose for PlanError {
    fn hint(&self) -> Option<String> {
        let (kind, name) = match self {
            PlanError::MissingExternalNetwork { name, .. } => ("network", name),
            PlanError::MissingExternalVolume { name, .. } => ("volume", name),
            PlanError::RouteConflict {
                project, held_by, ..
            } => {
                let holder = held_by.split_once('/').map_or(held_by.as_str(), |(p, _)| p);
                return Some(if holder == project {
                    "give one of them other `x-cutover.hosts` or a `path_prefix`; nothing was started".into()
                } else {
                    format!(
                        "give one of them other `x-cutover.hosts` or a `path_prefix`, or take {held_by} down first (`cutover down -p {holder}`); nothing was started"
                    )
                });
            }
            PlanError::SharedCallPort { network, port, .. } => {
                return Some(format!(
                    "the daemon answers calls to an app by name at {network}'s gateway on the app's port, and {port} can be only one app's there: let one of them listen on another port in its container and set its x-cutover.port to it"
                ));
            }
            PlanError::ImageUnavailable { .. } => {
                return Some(
                    "pull or load it first, or let it be pulled (`--pull missing`, or `pull_policy: missing` on the service)"
                        .into(),
                )
            }
        };
        Some(format!(
            "create it with `docker {kind} create {name}`, or remove `external: true` so cutover creates it"
        ))
    }
}

/// Every problem that stops the plan, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanErrors(pub Vec<PlanError>);

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanErrors {}

/// One problem reads as itself; several as a count, each below with its hint.
impl From<PlanErrors> for Report {
    fn from(errors: PlanErrors) -> Report {
        match errors.0.as_slice() {
            [one] => one.report(),
            all => all.iter().fold(
                Report::new(format!("{} problems stop the plan", all.len())),
                |r, e| {
                    let e = e.report();
                    r.detail(match e.hint {
                        Some(hint) => format!("{}; {hint}", e.message),
                        None => e.message,
                    })
                },
            ),
        }
    }
}

pub fn plan(desired: &ResolvedProject, observed: &Observed) -> Result<Plan, PlanErrors> {
    plan_with(desired, observed, &PlanOptions::default())
}

pub fn plan_with(
    desired: &ResolvedProject,
    observed: &Observed,
    opts: &PlanOptions,
) -> Result<Plan, PlanErrors> {
    let mut steps = Vec::new();
    let mut warnings: Vec<Report> = desired.warnings.iter().map(Diagnose::report).collect();
    let mut errors = Vec::new();

    create_missing(
        desired
            .networks
            .iter()
            .map(|n| (&n.key, &n.name, n.external)),
        &observed.networks,
        |key, name| Step::CreateNetwork { key, name },
        |key, name| PlanError::MissingExternalNetwork { key, name },
        &mut steps,
        &mut errors,
    );
    create_missing(
        desired
            .volumes
            .iter()
            .map(|v| (&v.key, &v.name, v.external)),
        &observed.volumes,
        |key, name| Step::CreateVolume { key, name },
        |key, name| PlanError::MissingExternalVolume { key, name },
        &mut steps,
        &mut errors,
    );
    let images = images::plan_images(
        desired
            .accessories
            .iter()
            .map(|a| &a.service)
            .chain(desired.apps.iter().map(|a| &a.service)),
        observed,
        opts.pull,
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(PlanErrors(errors));
    }

    // Accessories that depend on an app (nginx in front of it) start
    // after the apps, the others before.
    let late = after_apps(desired);
    for acc in desired
        .accessories
        .iter()
        .filter(|a| !late.contains(&a.service.name))
    {
        steps.push(accessory_step(acc, observed, &mut warnings));
    }
    for (service, obs) in &observed.accessories {
        if desired.accessory(service).is_none() && desired.app(service).is_none() {
            warnings.push(
                Report::new(format!(
                    "container {} belongs to service {service}, which is no longer in the compose file; it is left running",
                    obs.container
                ))
                .hint(format!("remove it with `docker rm -f {}`", obs.container)),
            );
        }
    }

    for app in &desired.apps {
        let service = app.service.name.clone();
        let hash = config_hash(&app.service);
        let image_id = observed.images.get(&app.service.image);
        let version = image_id.map(|id| version_id(id, &hash));
        let obs = observed.apps.get(&service).cloned().unwrap_or_default();
        let reuse = version
            .as_ref()
            .and_then(|v| obs.kept.iter().find(|k| &k.version_id == v))
            .map(|k| k.container.clone());

        let (color, reason, retiring) = match &obs.live {
            None => (Color::Blue, DeployReason::New, None),
            Some(live) => match redeploy_reason(live, &obs, app, &hash, image_id, opts) {
                Some(reason) => (live.color.other(), reason, Some(live)),
                None => {
                    steps.push(Step::AppUpToDate {
                        service: service.clone(),
                        color: live.color,
                        version: live.version_id.clone(),
                    });
                    let changed = obs
                        .settings
                        .as_ref()
                        .map(|s| route_changes(s, &app.cutover))
                        .unwrap_or_default();
                    if !changed.is_empty() {
                        steps.push(Step::UpdateRoute {
                            service: service.clone(),
                            changed,
                        });
                    }
                    if let Some(s) = remove_old(&service, &obs.kept, None, None, app.cutover.keep) {
                        steps.push(s);
                    }
                    continue;
                }
            },
        };
        steps.push(Step::DeployApp {
            service: service.clone(),
            color,
            container: app.slot(&desired.name, color),
            version,
            reuse: reuse.clone(),
            reason,
            replicas: app.service.replicas,
        });
        if let Some(s) = remove_old(
            &service,
            &obs.kept,
            retiring,
            reuse.as_deref(),
            app.cutover.keep,
        ) {
            steps.push(s);
        }
    }
    for acc in desired
        .accessories
        .iter()
        .filter(|a| late.contains(&a.service.name))
    {
        steps.push(accessory_step(acc, observed, &mut warnings));
    }
    Ok(Plan {
        steps,
        warnings,
        images,
    })
}

/// What to do with one accessory: start, recreate, or leave it.
fn accessory_step(
    acc: &crate::compose::AccessorySpec,
    observed: &Observed,
    warnings: &mut Vec<Report>,
) -> Step {
    let service = acc.service.name.clone();
    let container = acc.container_name.clone();
    let hash = config_hash(&acc.service);
    let Some(obs) = observed.accessories.get(&service) else {
        return Step::StartAccessory {
            service,
            container,
            reason: StartReason::Missing,
        };
    };
    let image_now = observed.images.get(&acc.service.image);
    let reason = if obs.config_hash != hash {
        Some(RecreateReason::ConfigChanged(config_change(
            obs.spec.as_ref(),
            &acc.service,
        )))
    } else {
        match (&obs.image_id, image_now) {
            (Some(from), Some(to)) if from != to => Some(RecreateReason::ImageChanged {
                from: from.clone(),
                to: to.clone(),
            }),
            _ => None,
        }
    };
    match reason {
        Some(reason) => {
            warnings.push(Report::new(format!(
                "{service} will be recreated ({}): its clients lose their connections while {container} restarts; data in named volumes is kept",
                describe_recreate(&reason)
            )));
            Step::RecreateAccessory {
                service,
                container,
                reason,
            }
        }
        None if !obs.running => Step::StartAccessory {
            service,
            container: obs.container.clone(),
            reason: StartReason::Stopped,
        },
        None => Step::LeaveAccessory {
            service,
            container: obs.container.clone(),
        },
    }
}

/// The accessories that depend on an app, directly or through other
/// accessories.
fn after_apps(desired: &ResolvedProject) -> std::collections::BTreeSet<String> {
    let mut late: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    // Accessories come in dependency order, so one pass sees each
    // dependency's verdict first.
    for acc in &desired.accessories {
        if acc
            .service
            .depends_on
            .iter()
            .any(|d| desired.app(&d.service).is_some() || late.contains(&d.service))
        {
            late.insert(acc.service.name.clone());
        }
    }
    late
}

/// Why the live version of `app` must be replaced, if it must: its config
/// (or port) changed, its image did, or the deploy is forced.
fn redeploy_reason(
    live: &ObservedVersion,
    obs: &ObservedApp,
    app: &AppSpec,
    hash: &str,
    image_id: Option<&String>,
    opts: &PlanOptions,
) -> Option<DeployReason> {
    let port_changed = obs
        .settings
        .as_ref()
        .is_some_and(|s| s.port != app.cutover.port);
    if live.config_hash != hash || port_changed {
        let mut change = config_change(live.spec.as_ref(), &app.service);
        if port_changed {
            // A new port is only proven by a health-gated deploy.
            change.fields.push("x-cutover.port".into());
        }
        Some(DeployReason::ConfigChanged(change))
    } else if let Some(to) = image_id.filter(|id| **id != live.image_id) {
        Some(DeployReason::ImageChanged {
            from: live.image_id.clone(),
            to: to.clone(),
        })
    } else if opts.force {
        Some(DeployReason::Forced)
    } else {
        None
    }
}

/// Networks and volumes alike: one that does not exist yet is created,
/// except an external one, which cutover never creates: the plan fails.
fn create_missing<'a>(
    wanted: impl Iterator<Item = (&'a String, &'a String, bool)>,
    existing: &BTreeSet<String>,
    create: impl Fn(String, String) -> Step,
    missing_external: impl Fn(String, String) -> PlanError,
    steps: &mut Vec<Step>,
    errors: &mut Vec<PlanError>,
) {
    for (key, name, external) in wanted {
        if existing.contains(name) {
            continue;
        }
        if external {
            errors.push(missing_external(key.clone(), name.clone()));
        } else {
            steps.push(create(key.clone(), name.clone()));
        }
    }
}

/// After a deploy the live version joins the kept ones (newest first); those
/// past `keep` go. A kept container reused for the deploy is not a kept one.
fn remove_old(
    service: &str,
    kept: &[ObservedVersion],
    retiring: Option<&ObservedVersion>,
    reused: Option<&str>,
    keep: u32,
) -> Option<Step> {
    let old: Vec<&ObservedVersion> = retiring
        .into_iter()
        .chain(kept.iter())
        .filter(|v| Some(v.container.as_str()) != reused)
        .collect();
    let containers: Vec<String> = old
        .iter()
        .skip(keep as usize)
        .map(|v| v.container.clone())
        .collect();
    (!containers.is_empty()).then(|| Step::RemoveOldVersions {
        service: service.to_string(),
        containers,
    })
}

fn route_changes(old: &AppSettings, new: &AppSettings) -> Vec<String> {
    let mut out = Vec::new();
    if old.hosts != new.hosts {
        out.push("hosts".to_string());
    }
    if old.path_prefix != new.path_prefix {
        out.push("path_prefix".into());
    }
    if old.health != new.health {
        out.push("health".into());
    }
    if old.timeouts != new.timeouts {
        out.push("timeouts".into());
    }
    if old.listen != new.listen {
        out.push("ports".into());
    }
    out
}

fn config_change(old: Option<&ServiceSpec>, new: &ServiceSpec) -> ConfigChange {
    match old {
        Some(old) => ConfigChange {
            fields: changed_fields(old, new),
            env: env_changes(old, new),
        },
        None => ConfigChange::default(),
    }
}

fn describe_recreate(r: &RecreateReason) -> String {
    match r {
        RecreateReason::ImageChanged { .. } => "its image changed".into(),
        RecreateReason::ConfigChanged(c) if c.fields.is_empty() => {
            "its configuration changed".into()
        }
        RecreateReason::ConfigChanged(c) => {
            let mut s = format!("changed: {}", c.fields.join(", "));
            let keys: Vec<&str> = c
                .env
                .added
                .iter()
                .chain(&c.env.changed)
                .chain(&c.env.removed)
                .map(String::as_str)
                .collect();
            if !keys.is_empty() {
                s.push_str(&format!("; env keys {}", keys.join(", ")));
            }
            s
        }
    }
}
