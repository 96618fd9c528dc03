//! The compose model to the engine's specs, in one place: containers,
//! networks and volumes, with the labels that are the only way cutover
//! recognizes what it created (failure #4). The two models share names
//! (`NetworkSpec`, `VolumeSpec`): here the compose ones are `compose::*`.

use cutover_core::diag::Report;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use cutover_core::compose::{self, config_hash, AppSpec, Mount, ServiceSpec};
use cutover_core::service::{Color, DeployRequest};
use cutover_docker::labels;
use cutover_docker::{
    ContainerSpec, FileSpec, HealthTest, HealthcheckSpec, LoggingSpec, MountSpec,
    NetworkAttachment, NetworkSpec, PortSpec, Protocol, RestartPolicy, Role, VolumeSpec,
};

/// Each network's gateway: the host's address on it, where the daemon
/// answers when other containers call an app by name (cutover-core's
/// `resolve/app_calls.rs` says why). A network without one (none is
/// known when the daemon cannot reach the networks, as with Docker
/// Desktop's VM) falls back to Compose's way: the colors carry the app's
/// names as DNS aliases, and such calls skip the gate and the drain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gateways(pub BTreeMap<String, IpAddr>);

impl Gateways {
    /// `/etc/hosts` entries (`name:ip`) for the apps `spec` calls.
    fn extra_hosts<'a>(&'a self, spec: &'a ServiceSpec) -> impl Iterator<Item = String> + 'a {
        spec.app_hosts
            .iter()
            .filter_map(|(name, network)| Some(format!("{name}:{}", self.0.get(network)?)))
    }

    /// Where the daemon answers for `app` on its networks.
    pub fn in_network(&self, app: &AppSpec) -> Vec<String> {
        app.service
            .networks
            .iter()
            .filter_map(|n| self.0.get(&n.name))
            .map(|ip| SocketAddr::new(*ip, app.cutover.port).to_string())
            .collect()
    }
}

/// The proxy's route to one version of an app at `addrs` (one per
/// replica), with the hosts, health check and timeouts of its `x-cutover`
/// settings, and the in-network addresses `gateways` give it.
pub fn route_request(
    app: &AppSpec,
    gateways: &Gateways,
    addrs: &[SocketAddr],
    color: Color,
    version: &str,
) -> DeployRequest {
    let settings = &app.cutover;
    DeployRequest {
        targets: addrs.iter().map(ToString::to_string).collect(),
        hosts: settings.hosts.clone(),
        path_prefix: settings.path_prefix.clone(),
        color: Some(color),
        version: Some(version.to_string()),
        health: settings.health.clone(),
        timeouts: settings.timeouts.clone(),
        listen: settings.listen.clone(),
        in_network: gateways.in_network(app),
        tls: settings.tls.clone(),
    }
}

pub struct AppLabels<'a> {
    pub project: &'a str,
    pub color: Color,
    /// The user-facing version label.
    pub version: &'a str,
}

/// A network as the engine creates it: the exact name the user wrote (or
/// Compose's `<project>_<key>`), the project label, and what the compose
/// file sets. `spec` is `None` for the default network nobody declared.
pub fn network(project: &str, name: &str, spec: Option<&compose::NetworkSpec>) -> NetworkSpec {
    let mut out = NetworkSpec::new(name).label(labels::PROJECT, project);
    if let Some(n) = spec {
        out.labels.extend(n.labels.clone());
        out.driver = n.driver.clone();
        out.internal = n.internal;
        out.attachable = n.attachable;
        out.enable_ipv6 = n.enable_ipv6;
        out.ipam = n.ipam.clone();
    }
    out
}

/// A named volume as the engine creates it.
pub fn volume(project: &str, name: &str, spec: Option<&compose::VolumeSpec>) -> VolumeSpec {
    let mut out = VolumeSpec::new(name).label(labels::PROJECT, project);
    if let Some(v) = spec {
        out.labels.extend(v.labels.clone());
        out.driver = v.driver.clone();
        out.driver_opts = v.driver_opts.clone();
    }
    out
}

/// An app container in one color slot.
pub fn app_container(
    name: &str,
    image: &str,
    spec: &ServiceSpec,
    l: &AppLabels<'_>,
    gateways: &Gateways,
    publish_loopback: Option<u16>,
) -> Result<ContainerSpec, Report> {
    let mut c = base(name, image, spec, l.project, Role::App, gateways)?;
    // Both colors run at once, so neither may hold a host port: the daemon
    // listens on the app's published ports itself (`AppSettings::listen`).
    c.ports.clear();
    c.labels
        .insert(labels::COLOR.into(), l.color.as_str().into());
    c.labels.insert(labels::VERSION.into(), l.version.into());
    // An app can tell which slot and version it runs as (for logs, or a
    // response header) without grepping its hostname. Not part of the config
    // hash: the same version in the other slot is the same version. A value
    // the user set wins.
    for (key, value) in [
        ("CUTOVER_COLOR", l.color.as_str()),
        ("CUTOVER_VERSION", l.version),
    ] {
        c.env
            .entry(key.to_owned())
            .or_insert_with(|| value.to_owned());
    }
    // Where the daemon answers for the app, the colors answer to no name:
    // calls by name go through cutover. Elsewhere both colors carry the
    // service name, as Compose's alias.
    for n in &mut c.networks {
        if gateways.0.contains_key(&n.network) {
            n.aliases.clear();
        } else if !n.aliases.iter().any(|a| a == &spec.name) {
            n.aliases.push(spec.name.clone());
        }
    }
    if let Some(port) = publish_loopback {
        if !c.ports.iter().any(|p| p.container_port == port) {
            c.ports.push(PortSpec {
                container_port: port,
                protocol: Protocol::Tcp,
                host_ip: Some(IpAddr::from([127, 0, 0, 1])),
                host_port: None,
            });
        }
    }
    Ok(c)
}

/// The one-off container of an app's hook: the version's own container
/// (image, environment, secrets, volumes, networks) with the hook's
/// command, no published port, no name on the networks (it must not
/// answer for the app), no restart, and a log the daemon can read back.
pub fn hook_container(
    name: &str,
    image: &str,
    spec: &ServiceSpec,
    l: &AppLabels<'_>,
    gateways: &Gateways,
    command: &[String],
    env: &[(&str, String)],
) -> Result<ContainerSpec, Report> {
    let mut c = app_container(name, image, spec, l, gateways, None)?;
    c.labels
        .insert(labels::ROLE.into(), Role::Hook.as_str().into());
    c.labels.remove(labels::COLOR);
    c.cmd = Some(command.to_vec());
    for n in &mut c.networks {
        n.aliases.clear();
        // A static address belongs to the app's own container.
        n.ipv4_address = None;
        n.ipv6_address = None;
    }
    c.restart = RestartPolicy::No;
    c.healthcheck = None;
    // The output is streamed to the deploy from the engine's log, which a
    // driver such as syslog or none would not give back.
    c.logging = Some(LoggingSpec {
        driver: "json-file".into(),
        options: BTreeMap::new(),
    });
    for (k, v) in env {
        c.env.insert((*k).to_string(), v.clone());
    }
    Ok(c)
}

pub fn accessory_container(
    name: &str,
    spec: &ServiceSpec,
    project: &str,
    gateways: &Gateways,
) -> Result<ContainerSpec, Report> {
    base(name, &spec.image, spec, project, Role::Accessory, gateways)
}

fn base(
    name: &str,
    image: &str,
    spec: &ServiceSpec,
    project: &str,
    role: Role,
    gateways: &Gateways,
) -> Result<ContainerSpec, Report> {
    let mut c = ContainerSpec::new(name, image);
    for (k, v) in &spec.labels {
        c.labels.insert(k.clone(), v.clone());
    }
    c.labels.insert(labels::PROJECT.into(), project.into());
    c.labels.insert(labels::SERVICE.into(), spec.name.clone());
    c.labels.insert(labels::ROLE.into(), role.as_str().into());
    c.labels
        .insert(labels::CONFIG_HASH.into(), config_hash(spec));
    c.env = spec.environment.clone();
    c.cmd = spec.command.clone();
    c.entrypoint = spec.entrypoint.clone();
    c.networks = spec
        .networks
        .iter()
        .map(|n| NetworkAttachment {
            network: n.name.clone(),
            aliases: n.aliases.clone(),
            ipv4_address: n.ipv4_address.clone(),
            ipv6_address: n.ipv6_address.clone(),
        })
        .collect();
    for m in &spec.mounts {
        c.mounts.push(match m {
            Mount::Volume {
                source: Some(source),
                target,
                read_only,
                nocopy,
            } => MountSpec::Volume {
                name: source.clone(),
                target: target.clone(),
                read_only: *read_only,
                nocopy: *nocopy,
            },
            Mount::Volume { source: None, target, .. } => {
                return Err(Report::new(format!(
                    "services.{}: the anonymous volume at {target} is not supported: it would be lost at every deploy",
                    spec.name
                ))
                .hint(format!(
                    "name it under top-level `volumes:` and mount it as `<name>:{target}`"
                )))
            }
            Mount::Bind {
                source,
                target,
                read_only,
                create_host_path,
                ..
            } => MountSpec::Bind {
                source: source.clone(),
                target: target.clone(),
                read_only: *read_only,
                create_host_path: *create_host_path,
            },
            Mount::Tmpfs { target, size, mode } => MountSpec::Tmpfs {
                target: target.clone(),
                size: *size,
                mode: *mode,
            },
        });
    }
    for p in &spec.ports {
        let host_ip = match &p.host_ip {
            None => None,
            Some(ip) => Some(ip.parse::<IpAddr>().map_err(|_| {
                format!(
                    "services.{}: port host address {ip:?} is not an IP address",
                    spec.name
                )
            })?),
        };
        c.ports.push(PortSpec {
            container_port: p.target,
            protocol: if p.protocol == "udp" {
                Protocol::Udp
            } else {
                Protocol::Tcp
            },
            host_ip,
            host_port: p.published,
        });
    }
    c.restart = restart(spec.restart.as_deref());
    c.user = spec.user.clone();
    c.working_dir = spec.working_dir.clone();
    c.stop_grace = spec.stop_grace_period;
    c.extra_hosts = spec.extra_hosts.clone();
    c.extra_hosts.extend(gateways.extra_hosts(spec));
    c.logging = spec.logging.as_ref().map(|l| LoggingSpec {
        driver: l.driver.clone().unwrap_or_else(|| "json-file".into()),
        options: l.options.clone(),
    });
    c.healthcheck = spec.healthcheck.as_ref().map(healthcheck);
    c.expose = spec.expose.clone();
    c.options = spec.options.clone();
    for (refs, secret) in [(&spec.secrets, true), (&spec.configs, false)] {
        for r in refs {
            provide_file(&mut c, r, secret, &spec.name)?;
        }
    }
    Ok(c)
}

/// A secret or config as compose provides it without Swarm: a host file is
/// mounted read-only, other contents are copied in before the start, owned
/// by `uid:gid` with `mode` (0444 unless set).
fn provide_file(
    c: &mut ContainerSpec,
    r: &compose::FileRef,
    secret: bool,
    service: &str,
) -> Result<(), Report> {
    let path = r.path(secret);
    let content = match &r.from {
        compose::FileSource::File(source) => {
            c.mounts.push(MountSpec::Bind {
                source: source.clone(),
                target: path,
                read_only: true,
                create_host_path: false,
            });
            return Ok(());
        }
        compose::FileSource::Environment { value, .. } => value.clone(),
        compose::FileSource::Content(text) => text.clone(),
        compose::FileSource::External { .. } => return Err(external_on_a_host(service, r, secret)),
    };
    let (uid, gid) = file_owner(r, secret, service)?;
    c.files.push(FileSpec {
        path,
        content: content.into_bytes(),
        uid,
        gid,
        mode: r.mode.unwrap_or(0o444),
    });
    Ok(())
}

/// A secret's or config's `uid` and `gid`, root's when unset. Numbers
/// only, on one host as on a Swarm: the engine does not look names up.
pub(crate) fn file_owner(
    r: &compose::FileRef,
    secret: bool,
    service: &str,
) -> Result<(u64, u64), Report> {
    let id = |v: &Option<String>, what: &str| -> Result<u64, Report> {
        match v {
            None => Ok(0),
            Some(s) => s.parse().map_err(|_| {
                Report::new(format!(
                    "services.{service}: {} {}: {what} {s:?} is not a number",
                    if secret { "secret" } else { "config" },
                    r.source
                ))
                .hint("write the numeric id; the image's user names are not known before it runs")
            }),
        }
    };
    Ok((id(&r.uid, "uid")?, id(&r.gid, "gid")?))
}

/// The first secret or config of the project that only a Swarm has, as
/// the error a deploy on one host stops at before anything starts.
pub fn external_file(project: &compose::ResolvedProject) -> Option<Report> {
    project
        .apps
        .iter()
        .map(|a| &a.service)
        .chain(project.accessories.iter().map(|a| &a.service))
        .find_map(|s| {
            let refs = s.secrets.iter().map(|r| (r, true));
            refs.chain(s.configs.iter().map(|r| (r, false)))
                .find(|(r, _)| matches!(r.from, compose::FileSource::External { .. }))
                .map(|(r, secret)| external_on_a_host(&s.name, r, secret))
        })
}

fn external_on_a_host(service: &str, r: &compose::FileRef, secret: bool) -> Report {
    let kind = if secret { "secret" } else { "config" };
    Report::new(format!(
        "services.{service}.{kind}s: {} is an external {kind}, which only a Docker Swarm has; this daemon runs containers on one host",
        r.source
    ))
    .hint(format!(
        "give the top-level {kind} `{}` a `file:` or an `environment:` variable, or deploy to a Swarm (docs/swarm.md)",
        r.source
    ))
}

fn restart(policy: Option<&str>) -> RestartPolicy {
    match policy {
        Some("always") => RestartPolicy::Always,
        Some("unless-stopped") => RestartPolicy::UnlessStopped,
        Some("on-failure") => RestartPolicy::OnFailure { max_retries: None },
        Some(p) if p.starts_with("on-failure:") => RestartPolicy::OnFailure {
            max_retries: p["on-failure:".len()..].parse().ok(),
        },
        _ => RestartPolicy::No,
    }
}

pub(crate) fn healthcheck(h: &compose::Healthcheck) -> HealthcheckSpec {
    let test = match h.test.first().map(String::as_str) {
        Some("NONE") => HealthTest::Disabled,
        Some("CMD-SHELL") => HealthTest::Shell(h.test[1..].join(" ")),
        Some("CMD") => HealthTest::Exec(h.test[1..].to_vec()),
        _ => HealthTest::Exec(h.test.clone()),
    };
    HealthcheckSpec {
        test,
        interval: h.interval,
        timeout: h.timeout,
        retries: h.retries,
        start_period: h.start_period,
    }
}

/// Docker's own default, for a service without `stop_grace_period` and for
/// containers whose spec is not at hand.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

/// How long a stop waits before SIGKILL.
pub fn stop_grace(spec: &ServiceSpec) -> Duration {
    spec.stop_grace_period.unwrap_or(DEFAULT_STOP_GRACE)
}
