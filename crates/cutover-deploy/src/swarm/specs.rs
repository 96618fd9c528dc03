//! The compose model to Swarm services: an app color, an accessory. What a
//! Swarm deploy does not do yet is refused here, field by field, before
//! anything starts, so a deploy never does half of what the file asks.

use cutover_core::compose::{
    config_hash, AccessorySpec, AppSpec, HookKind, Mount, ServiceSpec, VolumeSpec,
};
use cutover_core::diag::Report;
use cutover_core::naming;
use cutover_core::progress::DeployCommand;
use cutover_core::service::Color;
use cutover_core::tls::CertificateSource;
use cutover_docker::labels;
use cutover_docker::Role;
use cutover_swarm::{
    Mode, MountKind, NewVolume, ServiceMount, ServiceNetwork, ServiceSpec as SwarmService,
};

/// Every part of the command a Swarm deploy cannot do yet, each naming
/// its field and what to do instead.
pub fn refusals(cmd: &DeployCommand) -> Vec<Report> {
    let project = &cmd.project;
    let mut out = Vec::new();
    let services = project
        .apps
        .iter()
        .map(|a| &a.service)
        .chain(project.accessories.iter().map(|a| &a.service));
    for s in services {
        let field = |f: &str| format!("services.{}.{f}", s.name);
        if s.build.is_some() {
            out.push(
                Report::new(format!("{}: a Swarm's nodes pull images, they do not build them", field("build")))
                    .hint("build and push the image to a registry every node can pull from, and name it in `image:`"),
            );
        }
        let files = s.secrets.iter().map(|r| (r, true));
        for (r, secret) in files.chain(s.configs.iter().map(|r| (r, false))) {
            if let Err(report) = crate::specs::file_owner(r, secret, &s.name) {
                out.push(report);
            }
        }
        let unmapped = unmapped_keys(s);
        if !unmapped.is_empty() {
            out.push(
                Report::new(format!(
                    "services.{}: {} not carried to a Swarm service yet",
                    s.name,
                    unmapped.join(", ")
                ))
                .hint("leave them out for a Swarm deploy; docs/swarm.md lists what a service gets"),
            );
        }
        for m in &s.mounts {
            match m {
                Mount::Volume {
                    source: None,
                    target,
                    ..
                } => out.push(
                    Report::new(format!(
                        "{}: the anonymous volume at {target} would be lost at every deploy",
                        field("volumes")
                    ))
                    .hint(format!(
                        "name it under top-level `volumes:` and mount it as `<name>:{target}`"
                    )),
                ),
                Mount::Tmpfs { target, .. } => out.push(
                    Report::new(format!(
                        "{}: the tmpfs at {target} is not built for a Swarm yet",
                        field("volumes")
                    ))
                    .hint("leave it out, or use a named volume"),
                ),
                _ => {}
            }
        }
    }
    for acc in project
        .accessories
        .iter()
        .filter(|a| !a.service.ports.is_empty())
    {
        out.push(
            Report::new(format!(
                "services.{}.ports: an accessory's published ports are not built for a Swarm yet",
                acc.service.name
            ))
            .hint("the apps reach it by name on the project's network; leave `ports:` out"),
        );
    }
    for app in &project.apps {
        let field = |f: &str| format!("services.{}.{f}", app.service.name);
        if !app.cutover.listen.is_empty() {
            out.push(
                Report::new(format!(
                    "{}: an app's own ports are not served on a Swarm yet",
                    field("ports")
                ))
                .hint("route it by `x-cutover.hosts` on the edges' port 80"),
            );
        }
        let files = app
            .cutover
            .tls
            .as_ref()
            .is_some_and(|t| matches!(t.certificate, CertificateSource::Files { .. }));
        if files {
            out.push(
                Report::new(format!(
                    "{}: certificate files are read on the daemon's host, and a Swarm's edges run on other nodes",
                    field("x-cutover.tls")
                ))
                .hint("write `tls: true`: the edges order the certificates and share them (docs/swarm.md#https)"),
            );
        }
    }
    out
}

/// The keys of a service `base` does not map, so that none is dropped
/// without a word. Published ports of an app are `listen`, refused apart.
fn unmapped_keys(s: &ServiceSpec) -> Vec<String> {
    let mut keys: Vec<String> = [
        ("user", s.user.is_some()),
        ("working_dir", s.working_dir.is_some()),
        ("extra_hosts", !s.extra_hosts.is_empty()),
        ("logging", s.logging.is_some()),
        ("expose", !s.expose.is_empty()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(key, _)| key.to_string())
    .collect();
    // The container options serialize only what is set; the CPU and
    // memory limits and the placement are mapped.
    if let Ok(serde_json::Value::Object(options)) = serde_json::to_value(&s.options) {
        keys.extend(
            options
                .keys()
                .filter(|k| {
                    !matches!(
                        k.as_str(),
                        "mem_limit" | "nano_cpus" | "resources" | "placement"
                    )
                })
                .cloned(),
        );
    }
    keys
}

/// An app color: `<project>_<service>_<color>`, with the app's replicas,
/// on its networks and on the edge network, where every node's edge
/// reaches its tasks.
pub fn app_service(
    project: &str,
    app: &AppSpec,
    color: Color,
    version: &str,
    edge_network: &str,
) -> SwarmService {
    let spec = &app.service;
    let mut s = base(
        naming::swarm_app(project, &spec.name, color),
        spec,
        project,
        Role::App,
    );
    s.mode = mode(spec);
    for (key, value) in [(labels::COLOR, color.as_str()), (labels::VERSION, version)] {
        s.labels.insert(key.into(), value.into());
        s.container_labels.insert(key.into(), value.into());
    }
    // As on one host, an app can tell which slot and version it runs as;
    // a value the user set wins.
    for (key, value) in [
        ("CUTOVER_COLOR", color.as_str()),
        ("CUTOVER_VERSION", version),
    ] {
        if !spec.environment.contains_key(key) {
            s.env.push(format!("{key}={value}"));
        }
    }
    if !s.networks.iter().any(|n| n.name == edge_network) {
        s.networks.push(ServiceNetwork {
            name: edge_network.into(),
            aliases: Vec::new(),
        });
    }
    s
}

/// A hook of an app: its version's image, config and networks, with the
/// hook's command and `env` added, as one task that runs to its end and
/// is not restarted (`<project>_<service>_<hook>`).
pub fn hook_service(
    project: &str,
    app: &AppSpec,
    kind: HookKind,
    command: &[String],
    env: &[(&str, String)],
) -> SwarmService {
    let spec = &app.service;
    let mut s = base(
        naming::swarm_hook(project, &spec.name, kind.as_str()),
        spec,
        project,
        Role::Hook,
    );
    s.mode = Mode::Job;
    s.command = Some(command.to_vec());
    // It is not routed to: a health check would only delay its end.
    s.healthcheck = None;
    s.env.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    s
}

/// An accessory: `<project>_<service>`, one task, living across deploys,
/// answering to its service name on its networks.
pub fn accessory_service(project: &str, acc: &AccessorySpec) -> SwarmService {
    let spec = &acc.service;
    let mut s = base(
        naming::swarm_accessory(project, &spec.name),
        spec,
        project,
        Role::Accessory,
    );
    // An accessory runs one task, or one per node (a node agent).
    s.mode = if spec.global {
        Mode::Global
    } else {
        Mode::Replicated(1)
    };
    s
}

/// How many tasks an app color runs: `deploy.replicas`, or one on every
/// eligible node.
fn mode(spec: &ServiceSpec) -> Mode {
    match wanted_tasks(spec) {
        Some(n) => Mode::Replicated(n),
        None => Mode::Global,
    }
}

/// The project's named volumes on `s`'s mounts, as a node creates them
/// when a task needs one it lacks: with the volume's driver, options and
/// labels, and the project's label, by which `down --volumes` finds it on
/// every node (`volumes.rs`). An external volume gets none of them: it is
/// not cutover's to make, nor to remove.
pub fn own_volumes(s: &mut SwarmService, project: &str, volumes: &[VolumeSpec]) {
    for m in s.mounts.iter_mut().filter(|m| m.kind == MountKind::Volume) {
        let Some(v) = volumes.iter().find(|v| v.name == m.source && !v.external) else {
            continue;
        };
        let made = crate::specs::volume(project, &v.name, Some(v));
        m.create = Some(NewVolume {
            driver: made.driver,
            driver_opts: made.driver_opts,
            labels: made.labels,
        });
    }
}

/// An app color's task count as the swarm reports it
/// ([`cutover_swarm::ServiceInfo::replicas`]): `None` for a global one.
pub(super) fn wanted_tasks(spec: &ServiceSpec) -> Option<u64> {
    (!spec.global).then(|| u64::from(spec.replicas.max(1)))
}

/// `3 tasks`, or `a task on every node`: what a step starts.
pub(super) fn tasks_shown(replicas: Option<u64>) -> String {
    match replicas {
        Some(n) => format!("{n} tasks"),
        None => "a task on every node".into(),
    }
}

fn base(name: String, spec: &ServiceSpec, project: &str, role: Role) -> SwarmService {
    let mut s = SwarmService::new(name, spec.image.clone());
    s.labels.extend(spec.labels.clone());
    for (key, value) in [
        (labels::PROJECT, project.to_string()),
        (labels::SERVICE, spec.name.clone()),
        (labels::ROLE, role.as_str().to_string()),
        (labels::CONFIG_HASH, config_hash(spec)),
    ] {
        s.labels.insert(key.into(), value.clone());
        s.container_labels.insert(key.into(), value);
    }
    s.env = spec
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    s.command = spec.command.clone();
    s.entrypoint = spec.entrypoint.clone();
    s.networks = spec
        .networks
        .iter()
        .map(|n| ServiceNetwork {
            name: n.name.clone(),
            // An app's names are its gateway's (gateways.rs): on its
            // colors or its hooks' jobs they would take callers past the
            // switch.
            aliases: match role {
                Role::Accessory => n.aliases.clone(),
                _ => Vec::new(),
            },
        })
        .collect();
    s.mounts = spec
        .mounts
        .iter()
        .filter_map(|m| match m {
            Mount::Volume {
                source: Some(source),
                target,
                read_only,
                ..
            } => Some(ServiceMount {
                kind: MountKind::Volume,
                source: source.clone(),
                target: target.clone(),
                read_only: *read_only,
                // Set from the project's volumes (`own_volumes`).
                create: None,
            }),
            Mount::Bind {
                source,
                target,
                read_only,
                ..
            } => Some(ServiceMount {
                kind: MountKind::Bind,
                source: source.display().to_string(),
                target: target.clone(),
                read_only: *read_only,
                create: None,
            }),
            // Refused before the deploy starts (`refusals`).
            Mount::Volume { source: None, .. } | Mount::Tmpfs { .. } => None,
        })
        .collect();
    s.healthcheck = spec.healthcheck.as_ref().map(crate::specs::healthcheck);
    s.stop_grace_period = spec.stop_grace_period;
    let limit = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    s.nano_cpus = spec.options.cpus_nano().map(limit);
    s.memory = spec.options.memory().map(limit);
    s.constraints = spec.options.placement.constraints.clone();
    s.max_per_node = spec.options.placement.max_replicas_per_node;
    s
}
