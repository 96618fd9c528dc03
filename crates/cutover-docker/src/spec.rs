//! What cutover asks the engine to create. These stay close to the Docker
//! create APIs: the compose loader resolves its files into cutover-core's
//! service specs, and the deploy code maps those to these. The settings
//! passed through unchanged (`ContainerOptions`, `Ipam`) are cutover-core's
//! own types, which already have the engine's shape.

use cutover_core::compose::{ContainerOptions, Ipam};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Exact name: never prefixed with a project or folder name.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `bridge` when unset.
    pub driver: Option<String>,
    /// No route to the outside world.
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: bool,
    /// The address plan; the engine picks a subnet when unset.
    pub ipam: Option<Ipam>,
}

impl NetworkSpec {
    pub fn new(name: impl Into<String>) -> Self {
        NetworkSpec {
            name: name.into(),
            labels: BTreeMap::new(),
            driver: None,
            internal: false,
            attachable: false,
            enable_ipv6: false,
            ipam: None,
        }
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// Exact name, like networks.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `local` when unset.
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
}

impl VolumeSpec {
    pub fn new(name: impl Into<String>) -> Self {
        VolumeSpec {
            name: name.into(),
            labels: BTreeMap::new(),
            driver: None,
            driver_opts: BTreeMap::new(),
        }
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }
}

/// One image build: the classic builder's `/build` call.
///
/// `.dockerignore` at the context root is honoured for the common patterns
/// (see [`crate::context`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    pub context: PathBuf,
    /// The context already packed as a tar (uploaded by a remote client):
    /// sent as it is, and `context` names it in messages only.
    pub packed: Option<PathBuf>,
    /// Path of the Dockerfile relative to the context; `Dockerfile` when
    /// unset. A Dockerfile outside the context is refused.
    pub dockerfile: Option<PathBuf>,
    /// `name:tag` given to the result.
    pub tag: String,
    pub build_args: BTreeMap<String, String>,
    /// Stage of a multi-stage Dockerfile to stop at.
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Try to pull newer base images (needs a registry).
    pub pull: bool,
    pub no_cache: bool,
    /// Network of the RUN steps (`none`, `host`, a network name); the
    /// engine's default bridge when unset.
    pub network_mode: Option<String>,
}

impl BuildSpec {
    pub fn new(context: impl Into<PathBuf>, tag: impl Into<String>) -> Self {
        BuildSpec {
            context: context.into(),
            packed: None,
            dockerfile: None,
            tag: tag.into(),
            build_args: BTreeMap::new(),
            target: None,
            labels: BTreeMap::new(),
            pull: false,
            no_cache: false,
            network_mode: None,
        }
    }
}

/// Everything one container is created with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerSpec {
    /// Exact container name.
    pub name: String,
    pub image: String,
    /// Ordered so that the created container, and so its config hash, does not
    /// depend on map iteration order.
    pub env: BTreeMap<String, String>,
    /// Replaces the image's CMD when set.
    pub cmd: Option<Vec<String>>,
    /// Replaces the image's ENTRYPOINT when set; `Some(vec![])` clears it.
    pub entrypoint: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    /// The first network is attached at create, the others before start.
    pub networks: Vec<NetworkAttachment>,
    pub mounts: Vec<MountSpec>,
    pub ports: Vec<PortSpec>,
    pub restart: RestartPolicy,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// Signal sent by stop; the image's STOPSIGNAL (or SIGTERM) when unset.
    /// Time between the stop signal and SIGKILL; the engine's 10 s when unset.
    pub stop_grace: Option<Duration>,
    /// `host:ip` entries added to /etc/hosts.
    pub extra_hosts: Vec<String>,
    pub logging: Option<LoggingSpec>,
    pub healthcheck: Option<HealthcheckSpec>,
    /// `expose:` entries (`8080`, `9000-9001/udp`): image metadata only.
    pub expose: Vec<String>,
    /// Kernel, process, resource and terminal settings, from compose.
    pub options: ContainerOptions,
    /// Files written into the container after it is created and before it
    /// starts: secrets and configs whose contents are not a host file.
    pub files: Vec<FileSpec>,
}

/// One file copied into a container, as compose does for a secret or a
/// config read from the environment or written inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Absolute path in the container; missing folders are created.
    pub path: String,
    pub content: Vec<u8>,
    /// Numeric ids; root when unset.
    pub uid: u64,
    pub gid: u64,
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkAttachment {
    pub network: String,
    pub aliases: Vec<String>,
    /// Static addresses on this network; the engine picks one when unset.
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
}

impl NetworkAttachment {
    pub fn new(network: impl Into<String>) -> Self {
        NetworkAttachment {
            network: network.into(),
            aliases: Vec::new(),
            ipv4_address: None,
            ipv6_address: None,
        }
    }

    pub fn alias(mut self, alias: impl Into<String>) -> Self {
        self.aliases.push(alias.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// A named volume.
    Volume {
        name: String,
        target: String,
        read_only: bool,
        /// Do not copy the image's files into a new volume.
        nocopy: bool,
    },
    /// A host path; must be absolute (relative paths are resolved against the
    /// project directory before they get here).
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
        /// Create a missing source folder, as `docker run -v` and compose's
        /// short syntax do; else a missing source fails the create, as
        /// compose's long syntax asks.
        create_host_path: bool,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
        mode: Option<u32>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub container_port: u16,
    pub protocol: Protocol,
    /// Interface on the host; every interface when unset, which is how the
    /// field report's Redis ended up open on 0.0.0.0:6379.
    pub host_ip: Option<IpAddr>,
    /// The engine picks a free port when unset.
    pub host_port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    OnFailure {
        max_retries: Option<u32>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggingSpec {
    pub driver: String,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckSpec {
    pub test: HealthTest,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub start_period: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthTest {
    /// Disable a healthcheck the image declares.
    Disabled,
    /// Run without a shell.
    Exec(Vec<String>),
    /// Run with the image's shell.
    Shell(String),
}

impl HealthTest {
    /// The `Test` array of the engine's HealthConfig.
    pub fn to_docker(&self) -> Vec<String> {
        match self {
            HealthTest::Disabled => vec!["NONE".to_owned()],
            HealthTest::Exec(argv) => std::iter::once("CMD".to_owned())
                .chain(argv.iter().cloned())
                .collect(),
            HealthTest::Shell(line) => vec!["CMD-SHELL".to_owned(), line.clone()],
        }
    }
}

impl ContainerSpec {
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        ContainerSpec {
            name: name.into(),
            image: image.into(),
            ..Default::default()
        }
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn network(mut self, attachment: NetworkAttachment) -> Self {
        self.networks.push(attachment);
        self
    }

    pub fn cmd<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.cmd = Some(argv.into_iter().map(Into::into).collect());
        self
    }

    pub fn mount(mut self, mount: MountSpec) -> Self {
        self.mounts.push(mount);
        self
    }

    /// Checks what the engine would reject late or accept wrongly.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("the container name is empty".into());
        }
        if self.image.is_empty() {
            return Err("the image is empty".into());
        }
        for mount in &self.mounts {
            match mount {
                MountSpec::Bind { source, .. } if !source.is_absolute() => {
                    return Err(format!(
                        "bind mount source {} is not an absolute path",
                        source.display()
                    ));
                }
                MountSpec::Volume { name, .. } if name.is_empty() => {
                    return Err("a volume mount has an empty volume name".into());
                }
                _ => {}
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for net in &self.networks {
            if !seen.insert(net.network.as_str()) {
                return Err(format!("network {} is attached twice", net.network));
            }
        }
        if let Some(hc) = &self.healthcheck {
            if let HealthTest::Exec(argv) = &hc.test {
                if argv.is_empty() {
                    return Err("the healthcheck command is empty".into());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_test_forms() {
        assert_eq!(HealthTest::Disabled.to_docker(), vec!["NONE"]);
        assert_eq!(
            HealthTest::Exec(vec!["curl".into(), "-f".into()]).to_docker(),
            vec!["CMD", "curl", "-f"]
        );
        assert_eq!(
            HealthTest::Shell("true".into()).to_docker(),
            vec!["CMD-SHELL", "true"]
        );
    }

    #[test]
    fn validate_rejects_relative_bind_and_duplicate_network() {
        let spec = ContainerSpec::new("c", "img").mount(MountSpec::Bind {
            source: "log".into(),
            target: "/log".into(),
            read_only: false,
            create_host_path: true,
        });
        assert!(spec
            .validate()
            .unwrap_err()
            .contains("not an absolute path"));

        let spec = ContainerSpec::new("c", "img")
            .network(NetworkAttachment::new("n"))
            .network(NetworkAttachment::new("n"));
        assert!(spec.validate().unwrap_err().contains("attached twice"));

        assert!(ContainerSpec::new("c", "img").validate().is_ok());
    }
}
