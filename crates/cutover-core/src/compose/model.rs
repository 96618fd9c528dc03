//! The resolved, normalized project: what `cutover deploy` sends to the daemon.
//! Every value is final: variables interpolated, paths absolute, env merged,
//! durations parsed, resource names as they will be created.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use super::options::{ContainerOptions, Device, Placement, ResourceSet, Resources, Ulimit};
use crate::service::{HealthCheck, Timeouts};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedProject {
    pub name: String,
    /// Directory of the first compose file; relative paths were resolved against it.
    pub project_dir: PathBuf,
    /// Colored services, in dependency order.
    pub apps: Vec<AppSpec>,
    /// Shared long-lived services, in dependency order.
    pub accessories: Vec<AccessorySpec>,
    pub networks: Vec<NetworkSpec>,
    pub volumes: Vec<VolumeSpec>,
    pub warnings: Vec<Diagnostic>,
}

impl ResolvedProject {
    pub fn app(&self, service: &str) -> Option<&AppSpec> {
        self.apps.iter().find(|a| a.service.name == service)
    }

    pub fn accessory(&self, service: &str) -> Option<&AccessorySpec> {
        self.accessories.iter().find(|a| a.service.name == service)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSpec {
    pub service: ServiceSpec,
    pub cutover: AppSettings,
    /// `container_name:`: the colors are named from it, `<name>-blue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
}

impl AppSpec {
    /// The container of `color`: `<container_name>-<color>`, else
    /// `<project>-<service>-<color>`.
    pub fn slot(&self, project: &str, color: crate::service::Color) -> String {
        match &self.container_name {
            Some(name) => format!("{name}-{color}"),
            None => crate::naming::app_slot(project, &self.service.name, color),
        }
    }
}

/// The `x-cutover:` block of an app, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSettings {
    /// Port the app serves inside its container.
    pub port: u16,
    pub health: HealthCheck,
    pub hosts: Vec<String>,
    /// Hosts that reach only a staged version (`deploy --preview`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preview_hosts: Vec<String>,
    pub path_prefix: Option<String>,
    pub timeouts: Timeouts,
    /// Old versions kept (stopped) for rollback.
    pub keep: u32,
    /// The host addresses the app's `ports:` publish (`0.0.0.0:8080`): the
    /// daemon listens there itself and forwards to the live color's
    /// `port`, so no container holds the host port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen: Vec<String>,
    /// `tls`, `tls_redirect` and `hsts`: HTTPS for `hosts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::TlsRoute>,
    /// `hooks`: commands run in one-off containers of the new version.
    #[serde(default, skip_serializing_if = "Hooks::is_empty")]
    pub hooks: Hooks,
}

/// `x-cutover.hooks`. Each runs in a one-off container of the version
/// being deployed (its image, environment, secrets, volumes and networks,
/// with `command` in place of the service's), inside the daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hooks {
    /// Before the new color starts; a failure fails the deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_deploy: Option<Hook>,
    /// After the switch; a failure is reported, nothing is rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_deploy: Option<Hook>,
    /// After the app's deploy failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<Hook>,
}

impl Hooks {
    /// The hook run at `kind`'s moment, if the app has one.
    pub fn get(&self, kind: HookKind) -> Option<&Hook> {
        match kind {
            HookKind::PreDeploy => self.pre_deploy.as_ref(),
            HookKind::PostDeploy => self.post_deploy.as_ref(),
            HookKind::OnFailure => self.on_failure.as_ref(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pre_deploy.is_none() && self.post_deploy.is_none() && self.on_failure.is_none()
    }
}

/// Which hook: the key under `hooks:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookKind {
    PreDeploy,
    PostDeploy,
    OnFailure,
}

impl HookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::PreDeploy => "pre_deploy",
            HookKind::PostDeploy => "post_deploy",
            HookKind::OnFailure => "on_failure",
        }
    }
}

impl std::fmt::Display for HookKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// Replaces the service's command; the image's entrypoint stays, as
    /// with `docker compose run SERVICE COMMAND`.
    pub command: Vec<String>,
    /// Past it the hook is killed and counts as failed.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Hook {
    /// The command as the progress and `plan` show it.
    pub fn shown(&self) -> String {
        self.command.join(" ")
    }
}

/// A hook's `timeout` when it sets none: migrations can be slow, but not
/// unbounded.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessorySpec {
    pub service: ServiceSpec,
    /// `container_name:` when given, else `<project>-<service>`.
    pub container_name: String,
}

/// Everything about one container that comes from the compose file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// The key under `services:`.
    pub name: String,
    /// Image reference; `<project>-<service>` for a build-only service.
    pub image: String,
    pub build: Option<BuildSpec>,
    /// `None` keeps the image's CMD.
    pub command: Option<Vec<String>>,
    /// `None` keeps the image's ENTRYPOINT.
    pub entrypoint: Option<Vec<String>>,
    /// `env_file` entries in order, then `environment`, later wins.
    pub environment: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
    pub networks: Vec<ServiceNetwork>,
    pub ports: Vec<PortSpec>,
    pub depends_on: Vec<Dependency>,
    pub healthcheck: Option<Healthcheck>,
    /// `no`, `always`, `unless-stopped`, `on-failure` or `on-failure:N`.
    pub restart: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    #[serde(with = "humantime_serde")]
    pub stop_grace_period: Option<Duration>,
    /// `host:ip` entries.
    pub extra_hosts: Vec<String>,
    pub logging: Option<Logging>,
    /// `expose:` as written (`8080`, `9000-9001`, `53/udp`): no effect on
    /// networking, but `x-cutover.port` defaults to a single one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    /// `pull_policy:`: `always`, `never`, `missing` or `build`; `None`
    /// follows the deploy's `--pull`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<String>,
    /// Passed to the engine as written.
    #[serde(default, skip_serializing_if = "ContainerOptions::is_empty")]
    pub options: ContainerOptions,
    /// `secrets:`, each with where its contents come from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileRef>,
    /// `configs:`, likewise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<FileRef>,
    /// `profiles:` (the service is deployed: one of them is active).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Apps this service calls by name through cutover: each name (an app's
    /// service name, `container_name` or alias) and the Docker network on
    /// whose gateway the daemon answers for it. Not a compose key: derived
    /// by the resolver (`resolve/app_calls.rs`), and part of the config hash
    /// so a container is recreated when the apps it can reach change.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub app_hosts: BTreeMap<String, String>,
    /// Containers per color of an app (`deploy.replicas` or `scale`); an
    /// accessory runs one. Part of the version: a new count is a new color.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub replicas: u32,
    /// `deploy.mode: global`: one task on every eligible node of a Swarm
    /// instead of `replicas` (on one host, one container). Left out when
    /// false, so older hashes and plans stay.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub global: bool,
}

/// Serde's default for a replica count (the model's and the plan's).
pub(crate) fn one() -> u32 {
    1
}

/// A replica count of one is left out, so older hashes and plans stay.
pub(crate) fn is_one(n: &u32) -> bool {
    *n == 1
}

/// One entry of a service's `secrets:` or `configs:`: a file the container
/// finds at [`FileRef::path`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// The key under top-level `secrets:` / `configs:`.
    pub source: String,
    /// As written; `None` is Compose's default place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    pub from: FileSource,
}

impl FileRef {
    /// Where the container sees it: a secret under `/run/secrets/` (its
    /// target, else its name), a config at its target, else `/<name>`.
    pub fn path(&self, secret: bool) -> String {
        match (&self.target, secret) {
            (Some(t), _) if t.starts_with('/') => t.clone(),
            (Some(t), true) => format!("/run/secrets/{t}"),
            (Some(t), false) => format!("/{t}"),
            (None, true) => format!("/run/secrets/{}", self.source),
            (None, false) => format!("/{}", self.source),
        }
    }
}

/// Where a secret's or config's contents come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileSource {
    /// A file on the daemon's host, mounted read-only.
    File(PathBuf),
    /// A variable of the project's environment, and its value, copied into
    /// the container before it starts.
    Environment { var: String, value: String },
    /// Text written in the compose file (`content:`), copied likewise.
    Content(String),
    /// A Swarm secret or config made outside the project (`external:
    /// true`), by its name there. Only a Swarm has them: one host refuses it.
    External { name: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSpec {
    /// Absolute directory, or a URL (git or https) as written.
    pub context: String,
    /// Relative to the context, as Docker expects.
    pub dockerfile: Option<String>,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Mount {
    Volume {
        /// The Docker volume name (`<project>_<key>` or its `name:`); `None` is
        /// an anonymous volume.
        source: Option<String>,
        target: String,
        read_only: bool,
        nocopy: bool,
    },
    Bind {
        /// Absolute path on the host.
        source: PathBuf,
        target: String,
        read_only: bool,
        create_host_path: bool,
        /// `z` or `Z`.
        selinux: Option<String>,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
        mode: Option<u32>,
    },
}

impl Mount {
    pub fn target(&self) -> &str {
        match self {
            Mount::Volume { target, .. }
            | Mount::Bind { target, .. }
            | Mount::Tmpfs { target, .. } => target,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceNetwork {
    /// The key under top-level `networks:` (`default` for the implicit one).
    pub key: String,
    /// The Docker network name.
    pub name: String,
    /// DNS names on this network. For an accessory the service name comes
    /// first (Compose's implicit alias); an app has only those written.
    pub aliases: Vec<String>,
    /// A static address on this network (`ipv4_address:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    pub target: u16,
    /// `None` publishes on an ephemeral host port.
    pub published: Option<u16>,
    /// `None` is every interface.
    pub host_ip: Option<String>,
    /// `tcp` or `udp`.
    pub protocol: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependsCondition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    pub service: String,
    pub condition: DependsCondition,
    /// `required: false` tolerates the dependency being absent or failing.
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["NONE"]` disables the image's check; else `CMD` or `CMD-SHELL` first.
    pub test: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub interval: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub timeout: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub start_period: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logging {
    pub driver: Option<String>,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// The key under top-level `networks:`.
    pub key: String,
    /// The Docker network name: `name:`, else `<project>_<key>`; an external
    /// network's key is its name.
    pub name: String,
    /// Never created by cutover; must exist.
    pub external: bool,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub internal: bool,
    pub attachable: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enable_ipv6: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
}

/// A network's address plan (`ipam:`), as the engine takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipam {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamPool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, String>,
}

impl NetworkSpec {
    /// Network `key` as the compose file leaves it unset: named
    /// `<project>_<key>`, created by cutover, no options.
    pub fn project_default(project: &str, key: String) -> NetworkSpec {
        NetworkSpec {
            name: crate::naming::project_scoped(project, &key),
            key,
            external: false,
            driver: None,
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
            internal: false,
            attachable: false,
            enable_ipv6: false,
            ipam: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub key: String,
    pub name: String,
    pub external: bool,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// An error or warning about the compose input, located as precisely as known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub file: Option<String>,
    pub line: Option<usize>,
    /// 1-based, in characters; absent from diagnostics older daemons wrote.
    #[serde(default)]
    pub column: Option<usize>,
    /// Key path such as `services.backend.ports[0]`; empty for file-level.
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line, self.column) {
            (Some(file), Some(line), Some(column)) => write!(f, "{file}:{line}:{column}: ")?,
            (Some(file), Some(line), None) => write!(f, "{file}:{line}: ")?,
            (Some(file), None, _) => write!(f, "{file}: ")?,
            _ => {}
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl crate::diag::Diagnose for Diagnostic {
    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
}

/// All errors found in the input; loading reports every one it can at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeError {
    pub errors: Vec<Diagnostic>,
    /// Warnings found before the errors stopped loading; not part of Display.
    pub warnings: Vec<Diagnostic>,
}

impl fmt::Display for ComposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ComposeError {}
