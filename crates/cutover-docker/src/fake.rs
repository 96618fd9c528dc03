//! [`FakeEngine`]: an in-memory [`Engine`] for testing deploy logic without
//! Docker.
//!
//! It keeps networks, volumes, images and containers with their labels,
//! follows the engine's rules where deploys depend on them (names are unique,
//! a network with endpoints cannot be removed, a removed container leaves its
//! networks), records every call, and can be told to fail a call. Container
//! processes do not run: tests set health and state, and append log lines.

use cutover_core::sync::lock;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};

use crate::engine::{not_found, Engine, EngineFuture, EngineResult, LogStream};
use crate::error::{EngineError, ObjectKind};
use crate::labels::LabelFilter;
use crate::model::*;
use crate::spec::*;

/// One recorded engine call: the operation and the name it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub op: Op,
    pub target: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Info,
    CreateNetwork,
    InspectNetwork,
    ListNetworks,
    ConnectNetwork,
    DisconnectNetwork,
    DeleteNetwork,
    CreateVolume,
    InspectVolume,
    ListVolumes,
    RemoveVolume,
    InspectImage,
    PullImage,
    BuildImage,
    CreateContainer,
    StartContainer,
    StopContainer,
    RemoveContainer,
    RenameContainer,
    InspectContainer,
    ListContainers,
    Logs,
    Exec,
}

/// What an injected failure looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    NotFound,
    Conflict,
    Unreachable,
    Api { status: u16, message: String },
}

#[derive(Debug, Clone)]
struct Injected {
    op: Op,
    target: Option<String>,
    failure: Failure,
    /// How many more calls fail; `None` for all of them.
    remaining: Option<usize>,
}

#[derive(Debug, Clone)]
struct FakeContainer {
    info: ContainerInfo,
    spec: ContainerSpec,
    logs: Vec<LogLine>,
    /// Health the container reports once started; `None` without a
    /// healthcheck.
    health_when_started: Option<HealthState>,
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    networks: BTreeMap<String, NetworkInfo>,
    volumes: BTreeMap<String, VolumeInfo>,
    images: BTreeMap<String, ImageInfo>,
    /// Images `pull_image` can fetch, as if from a registry.
    registry: BTreeMap<String, ImageInfo>,
    containers: BTreeMap<String, FakeContainer>,
    failures: Vec<Injected>,
    exec_results: BTreeMap<String, ExecOutput>,
    next_id: u64,
    next_ip: u32,
    info: Option<EngineInfo>,
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:060x}", self.next_id)
    }

    fn ip(&mut self) -> IpAddr {
        self.next_ip += 1;
        let n = self.next_ip;
        // .2 to .251 in each /24, skipping the gateway and broadcast ends.
        IpAddr::V4(Ipv4Addr::new(
            172,
            30,
            ((n / 250) % 256) as u8,
            (n % 250) as u8 + 2,
        ))
    }

    fn record(&mut self, op: Op, target: &str) -> EngineResult<()> {
        self.calls.push(Call {
            op,
            target: target.to_owned(),
        });
        let hit = self.failures.iter_mut().position(|f| {
            f.op == op && f.target.as_deref().is_none_or(|t| t == target) && f.remaining != Some(0)
        });
        let Some(index) = hit else { return Ok(()) };
        let injected = &mut self.failures[index];
        if let Some(n) = injected.remaining.as_mut() {
            *n -= 1;
        }
        let kind = kind_of(op);
        let name = target.to_owned();
        Err(match injected.failure.clone() {
            Failure::NotFound => EngineError::NotFound {
                kind,
                name,
                message: "injected".into(),
            },
            Failure::Conflict => EngineError::Conflict {
                kind,
                name,
                message: "injected".into(),
            },
            Failure::Unreachable => EngineError::Unreachable {
                host: "fake://".into(),
                message: "injected".into(),
            },
            Failure::Api { status, message } => EngineError::Api {
                action: "run",
                kind,
                name,
                status,
                message,
            },
        })
    }

    /// By name or id, as the engine resolves them.
    fn container_key(&self, name_or_id: &str) -> Option<String> {
        if self.containers.contains_key(name_or_id) {
            return Some(name_or_id.to_owned());
        }
        self.containers
            .iter()
            .find(|(_, c)| c.info.id == name_or_id)
            .map(|(name, _)| name.clone())
    }

    /// The opening of every call on one container: record it (so injected
    /// failures fire), then find the container or say it is not there.
    fn recorded_container(&mut self, op: Op, name: &str) -> EngineResult<&mut FakeContainer> {
        self.record(op, name)?;
        let key = self
            .container_key(name)
            .ok_or_else(|| not_found(ObjectKind::Container, name))?;
        Ok(self.containers.get_mut(&key).expect("looked up"))
    }

    /// The last `lines` lines of a container's log, as the engine's tail.
    fn log_tail(&mut self, name: &str, lines: usize) -> EngineResult<Vec<LogLine>> {
        let logs = &self.recorded_container(Op::Logs, name)?.logs;
        Ok(logs[logs.len().saturating_sub(lines)..].to_vec())
    }

    fn network_key(&self, name_or_id: &str) -> Option<String> {
        if self.networks.contains_key(name_or_id) {
            return Some(name_or_id.to_owned());
        }
        self.networks
            .iter()
            .find(|(_, n)| n.id == name_or_id)
            .map(|(name, _)| name.clone())
    }

    fn attach(&mut self, network: &str, container: &str, aliases: &[String]) -> EngineResult<()> {
        let net_key = self
            .network_key(network)
            .ok_or_else(|| not_found(ObjectKind::Network, network))?;
        let key = self
            .container_key(container)
            .ok_or_else(|| not_found(ObjectKind::Container, container))?;
        if self.containers[&key].info.networks.contains_key(&net_key) {
            return Err(EngineError::Conflict {
                kind: ObjectKind::Network,
                name: net_key,
                message: format!("container {key} is already attached"),
            });
        }
        let ip = self.ip();
        let c = self.containers.get_mut(&key).expect("looked up above");
        c.info.networks.insert(
            net_key.clone(),
            EndpointInfo {
                ip: Some(ip),
                aliases: aliases.to_vec(),
            },
        );
        let id = c.info.id.clone();
        let net = self.networks.get_mut(&net_key).expect("looked up above");
        net.containers.push(AttachedContainer {
            id,
            name: key,
            ipv4: Some(ip),
        });
        net.containers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(())
    }

    fn detach(&mut self, network: &str, container: &str) -> EngineResult<()> {
        let net_key = self
            .network_key(network)
            .ok_or_else(|| not_found(ObjectKind::Network, network))?;
        let key = self
            .container_key(container)
            .ok_or_else(|| not_found(ObjectKind::Container, container))?;
        let c = self.containers.get_mut(&key).expect("looked up above");
        if c.info.networks.remove(&net_key).is_none() {
            return Err(not_found(ObjectKind::Container, &key));
        }
        let id = c.info.id.clone();
        self.networks
            .get_mut(&net_key)
            .expect("looked up above")
            .containers
            .retain(|a| a.id != id);
        Ok(())
    }
}

fn kind_of(op: Op) -> ObjectKind {
    use Op::*;
    match op {
        Info => ObjectKind::Engine,
        CreateNetwork | InspectNetwork | ListNetworks | ConnectNetwork | DisconnectNetwork
        | DeleteNetwork => ObjectKind::Network,
        CreateVolume | InspectVolume | ListVolumes | RemoveVolume => ObjectKind::Volume,
        InspectImage | PullImage | BuildImage => ObjectKind::Image,
        CreateContainer | StartContainer | StopContainer | RemoveContainer | RenameContainer
        | InspectContainer | ListContainers | Logs => ObjectKind::Container,
        Exec => ObjectKind::Exec,
    }
}

/// Cheap to clone: clones share one state, so a test keeps a handle while
/// the code under test owns an `Arc<dyn Engine>`.
#[derive(Debug, Clone, Default)]
pub struct FakeEngine {
    state: Arc<Mutex<State>>,
}

impl FakeEngine {
    pub fn new() -> FakeEngine {
        FakeEngine::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already;
        // the state is still worth reading.
        lock(&self.state)
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The targets of the calls of one kind, in order.
    pub fn calls_of(&self, op: Op) -> Vec<String> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.op == op)
            .map(|c| c.target.clone())
            .collect()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Makes the next `times` calls of `op` (on `target`, or any) fail.
    pub fn fail(&self, op: Op, target: Option<&str>, failure: Failure, times: usize) {
        self.lock().failures.push(Injected {
            op,
            target: target.map(str::to_owned),
            failure,
            remaining: Some(times),
        });
    }

    /// Makes every call of `op` (on `target`, or any) fail from now on.
    pub fn fail_always(&self, op: Op, target: Option<&str>, failure: Failure) {
        self.lock().failures.push(Injected {
            op,
            target: target.map(str::to_owned),
            failure,
            remaining: None,
        });
    }

    pub fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// What `info` reports; a Linux engine by default.
    pub fn set_info(&self, info: EngineInfo) {
        self.lock().info = Some(info);
    }

    /// An image present locally.
    pub fn add_image(&self, reference: &str) -> ImageInfo {
        let mut st = self.lock();
        let id = format!("sha256:{}", st.id(""));
        let image = ImageInfo {
            id,
            tags: vec![reference.to_owned()],
            labels: BTreeMap::new(),
        };
        st.images.insert(reference.to_owned(), image.clone());
        image
    }

    /// An image `pull_image` can fetch. Others fail to pull, as with no
    /// registry reachable.
    pub fn add_registry_image(&self, reference: &str) {
        let mut st = self.lock();
        let id = format!("sha256:{}", st.id(""));
        st.registry.insert(
            reference.to_owned(),
            ImageInfo {
                id,
                tags: vec![reference.to_owned()],
                labels: BTreeMap::new(),
            },
        );
    }

    /// Puts a network in place as if the user had created it (no labels
    /// unless given).
    pub fn add_network(&self, spec: &NetworkSpec) -> NetworkInfo {
        let mut st = self.lock();
        let info = NetworkInfo {
            id: st.id("n"),
            name: spec.name.clone(),
            driver: spec.driver.clone().unwrap_or_else(|| "bridge".into()),
            internal: spec.internal,
            labels: spec.labels.clone(),
            containers: Vec::new(),
        };
        st.networks.insert(spec.name.clone(), info.clone());
        info
    }

    /// The health a container reports once it is running.
    pub fn set_health(&self, container: &str, health: Option<HealthState>) {
        let mut st = self.lock();
        if let Some(key) = st.container_key(container) {
            let c = st.containers.get_mut(&key).expect("looked up");
            c.health_when_started = health;
            if c.info.state == ContainerState::Running {
                c.info.health = health;
            }
        }
    }

    pub fn set_health_output(&self, container: &str, output: &str) {
        let mut st = self.lock();
        if let Some(key) = st.container_key(container) {
            st.containers
                .get_mut(&key)
                .expect("looked up")
                .info
                .last_health_output = Some(output.to_owned());
        }
    }

    /// As if the container's process ended by itself.
    pub fn exit(&self, container: &str, exit_code: i64) {
        let mut st = self.lock();
        if let Some(key) = st.container_key(container) {
            let c = st.containers.get_mut(&key).expect("looked up");
            c.info.state = ContainerState::Exited;
            c.info.exit_code = Some(exit_code);
            c.info.health = c.info.health.map(|_| HealthState::Unhealthy);
        }
    }

    pub fn push_log(&self, container: &str, source: LogSource, text: &str) {
        let mut st = self.lock();
        if let Some(key) = st.container_key(container) {
            st.containers
                .get_mut(&key)
                .expect("looked up")
                .logs
                .push(LogLine {
                    source,
                    text: text.to_owned(),
                });
        }
    }

    /// What `exec` in `container` returns; exit 0 and no output otherwise.
    pub fn set_exec_result(&self, container: &str, output: ExecOutput) {
        self.lock()
            .exec_results
            .insert(container.to_owned(), output);
    }

    /// The spec a container was created from.
    pub fn spec_of(&self, container: &str) -> Option<ContainerSpec> {
        let st = self.lock();
        st.container_key(container)
            .map(|key| st.containers[&key].spec.clone())
    }

    pub fn container_names(&self) -> Vec<String> {
        self.lock().containers.keys().cloned().collect()
    }

    pub fn network_names(&self) -> Vec<String> {
        self.lock().networks.keys().cloned().collect()
    }

    pub fn volume_names(&self) -> Vec<String> {
        self.lock().volumes.keys().cloned().collect()
    }
}

type Fut<'a, T> = EngineFuture<'a, T>;

fn ready<'a, T: Send + 'a>(result: EngineResult<T>) -> Fut<'a, T> {
    Box::pin(std::future::ready(result))
}

impl Engine for FakeEngine {
    fn info(&self) -> Fut<'_, EngineInfo> {
        let mut st = self.lock();
        let result = st.record(Op::Info, "").map(|()| {
            st.info.clone().unwrap_or_else(|| EngineInfo {
                operating_system: "Fake Linux".into(),
                server_version: "20.10.0-fake".into(),
                api_version: "1.41".into(),
            })
        });
        ready(result)
    }

    fn create_network<'a>(&'a self, spec: &'a NetworkSpec) -> Fut<'a, NetworkInfo> {
        let result = (|| {
            let mut st = self.lock();
            st.record(Op::CreateNetwork, &spec.name)?;
            if st.networks.contains_key(&spec.name) {
                return Err(EngineError::Conflict {
                    kind: ObjectKind::Network,
                    name: spec.name.clone(),
                    message: format!("network with name {} already exists", spec.name),
                });
            }
            drop(st);
            Ok(self.add_network(spec))
        })();
        ready(result)
    }

    fn inspect_network<'a>(&'a self, name: &'a str) -> Fut<'a, Option<NetworkInfo>> {
        let mut st = self.lock();
        let result = st
            .record(Op::InspectNetwork, name)
            .map(|()| st.network_key(name).map(|k| st.networks[&k].clone()));
        ready(result)
    }

    fn list_networks<'a>(&'a self, filter: &'a LabelFilter) -> Fut<'a, Vec<NetworkInfo>> {
        let mut st = self.lock();
        let result = st.record(Op::ListNetworks, "").map(|()| {
            st.networks
                .values()
                .filter(|n| filter.matches(&n.labels))
                .map(|n| NetworkInfo {
                    containers: Vec::new(),
                    ..n.clone()
                })
                .collect()
        });
        ready(result)
    }

    fn connect_network<'a>(
        &'a self,
        network: &'a str,
        container: &'a str,
        aliases: &'a [String],
    ) -> Fut<'a, ()> {
        let mut st = self.lock();
        let result = st
            .record(Op::ConnectNetwork, network)
            .and_then(|()| st.attach(network, container, aliases));
        ready(result)
    }

    fn disconnect_network<'a>(&'a self, network: &'a str, container: &'a str) -> Fut<'a, ()> {
        let mut st = self.lock();
        let result = st
            .record(Op::DisconnectNetwork, network)
            .and_then(|()| st.detach(network, container));
        ready(result)
    }

    fn delete_network<'a>(&'a self, name: &'a str) -> Fut<'a, Removal> {
        let result = (|| {
            let mut st = self.lock();
            st.record(Op::DeleteNetwork, name)?;
            let Some(key) = st.network_key(name) else {
                return Ok(Removal::Absent);
            };
            if !st.networks[&key].containers.is_empty() {
                return Err(EngineError::Api {
                    action: "remove",
                    kind: ObjectKind::Network,
                    name: key.clone(),
                    status: 403,
                    message: format!(
                        "error while removing network: network {key} has active endpoints"
                    ),
                });
            }
            st.networks.remove(&key);
            Ok(Removal::Removed)
        })();
        ready(result)
    }

    fn create_volume<'a>(&'a self, spec: &'a VolumeSpec) -> Fut<'a, VolumeInfo> {
        let mut st = self.lock();
        let result = st.record(Op::CreateVolume, &spec.name).map(|()| {
            // Like the engine: creating an existing volume returns it as is.
            st.volumes
                .entry(spec.name.clone())
                .or_insert_with(|| VolumeInfo {
                    name: spec.name.clone(),
                    driver: spec.driver.clone().unwrap_or_else(|| "local".into()),
                    labels: spec.labels.clone(),
                })
                .clone()
        });
        ready(result)
    }

    fn inspect_volume<'a>(&'a self, name: &'a str) -> Fut<'a, Option<VolumeInfo>> {
        let mut st = self.lock();
        let result = st
            .record(Op::InspectVolume, name)
            .map(|()| st.volumes.get(name).cloned());
        ready(result)
    }

    fn list_volumes<'a>(&'a self, filter: &'a LabelFilter) -> Fut<'a, Vec<VolumeInfo>> {
        let mut st = self.lock();
        let result = st.record(Op::ListVolumes, "").map(|()| {
            st.volumes
                .values()
                .filter(|v| filter.matches(&v.labels))
                .cloned()
                .collect()
        });
        ready(result)
    }

    fn remove_volume<'a>(&'a self, name: &'a str) -> Fut<'a, Removal> {
        let result = (|| {
            let mut st = self.lock();
            st.record(Op::RemoveVolume, name)?;
            if !st.volumes.contains_key(name) {
                return Ok(Removal::Absent);
            }
            let users: Vec<String> = st
                .containers
                .iter()
                .filter(|(_, c)| {
                    c.spec
                        .mounts
                        .iter()
                        .any(|m| matches!(m, MountSpec::Volume { name: v, .. } if v == name))
                })
                .map(|(n, _)| n.clone())
                .collect();
            if !users.is_empty() {
                return Err(EngineError::Conflict {
                    kind: ObjectKind::Volume,
                    name: name.to_owned(),
                    message: format!("volume is in use by {}", users.join(", ")),
                });
            }
            st.volumes.remove(name);
            Ok(Removal::Removed)
        })();
        ready(result)
    }

    fn inspect_image<'a>(&'a self, reference: &'a str) -> Fut<'a, Option<ImageInfo>> {
        let mut st = self.lock();
        let result = st
            .record(Op::InspectImage, reference)
            .map(|()| st.images.get(reference).cloned());
        ready(result)
    }

    fn pull_image<'a>(&'a self, reference: &'a str) -> Fut<'a, ImageInfo> {
        let result = (|| {
            let mut st = self.lock();
            st.record(Op::PullImage, reference)?;
            match st.registry.get(reference).cloned() {
                Some(image) => {
                    st.images.insert(reference.to_owned(), image.clone());
                    Ok(image)
                }
                None => Err(EngineError::Pull {
                    image: reference.to_owned(),
                    message: "no registry reachable (fake engine)".into(),
                }),
            }
        })();
        ready(result)
    }

    fn build_image<'a>(&'a self, spec: &'a BuildSpec) -> Fut<'a, BuildOutput> {
        let result = (|| {
            let mut st = self.lock();
            st.record(Op::BuildImage, &spec.tag)?;
            let id = format!("sha256:{}", st.id(""));
            st.images.insert(
                spec.tag.clone(),
                ImageInfo {
                    id: id.clone(),
                    tags: vec![spec.tag.clone()],
                    labels: spec.labels.clone(),
                },
            );
            Ok(BuildOutput {
                image_id: id,
                log: vec![format!("Successfully tagged {}", spec.tag)],
            })
        })();
        ready(result)
    }

    fn create_container<'a>(&'a self, spec: &'a ContainerSpec) -> Fut<'a, String> {
        let result = (|| {
            let mut st = self.lock();
            st.record(Op::CreateContainer, &spec.name)?;
            spec.validate()
                .map_err(|message| EngineError::InvalidSpec {
                    name: spec.name.clone(),
                    message,
                })?;
            if st.containers.contains_key(&spec.name) {
                return Err(EngineError::Conflict {
                    kind: ObjectKind::Container,
                    name: spec.name.clone(),
                    message: format!("the container name \"/{}\" is already in use", spec.name),
                });
            }
            let image =
                st.images
                    .get(&spec.image)
                    .cloned()
                    .ok_or_else(|| EngineError::NotFound {
                        kind: ObjectKind::Image,
                        name: spec.image.clone(),
                        message: format!("no such image: {}", spec.image),
                    })?;
            for net in &spec.networks {
                if st.network_key(&net.network).is_none() {
                    return Err(not_found(ObjectKind::Network, &net.network));
                }
            }
            let id = st.id("c");
            let ports = spec
                .ports
                .iter()
                .enumerate()
                .map(|(i, p)| PublishedPort {
                    container_port: p.container_port,
                    protocol: p.protocol,
                    host_ip: p.host_ip,
                    host_port: p.host_port.unwrap_or(49_000 + i as u16),
                })
                .collect();
            st.containers.insert(
                spec.name.clone(),
                FakeContainer {
                    info: ContainerInfo {
                        id: id.clone(),
                        name: spec.name.clone(),
                        image: spec.image.clone(),
                        image_id: image.id,
                        labels: spec.labels.clone(),
                        state: ContainerState::Created,
                        exit_code: None,
                        health: None,
                        last_health_output: None,
                        restart_count: 0,
                        networks: BTreeMap::new(),
                        ports,
                    },
                    spec: spec.clone(),
                    logs: Vec::new(),
                    health_when_started: spec
                        .healthcheck
                        .as_ref()
                        .filter(|h| h.test != HealthTest::Disabled)
                        .map(|_| HealthState::Starting),
                },
            );
            for net in &spec.networks {
                st.attach(&net.network, &spec.name, &net.aliases)?;
            }
            Ok(id)
        })();
        ready(result)
    }

    fn start_container<'a>(&'a self, name: &'a str) -> Fut<'a, ()> {
        let result = (|| {
            let mut st = self.lock();
            let c = st.recorded_container(Op::StartContainer, name)?;
            if c.info.state != ContainerState::Running {
                c.info.state = ContainerState::Running;
                c.info.exit_code = None;
                c.info.health = c.health_when_started;
            }
            Ok(())
        })();
        ready(result)
    }

    fn stop_container<'a>(&'a self, name: &'a str, _grace: Duration) -> Fut<'a, ()> {
        let result = (|| {
            let mut st = self.lock();
            let c = st.recorded_container(Op::StopContainer, name)?;
            if c.info.state == ContainerState::Running {
                c.info.state = ContainerState::Exited;
                c.info.exit_code = Some(0);
                c.info.health = c.info.health.map(|_| HealthState::Unhealthy);
            }
            Ok(())
        })();
        ready(result)
    }

    fn rename_container<'a>(&'a self, name: &'a str, new_name: &'a str) -> Fut<'a, ()> {
        let result = (|| {
            let mut st = self.lock();
            st.record(Op::RenameContainer, name)?;
            let key = st
                .container_key(name)
                .ok_or_else(|| not_found(ObjectKind::Container, name))?;
            if st.containers.contains_key(new_name) {
                return Err(EngineError::Conflict {
                    kind: ObjectKind::Container,
                    name: new_name.to_owned(),
                    message: format!("the container name \"/{new_name}\" is already in use"),
                });
            }
            let mut c = st.containers.remove(&key).expect("looked up");
            c.info.name = new_name.to_owned();
            c.spec.name = new_name.to_owned();
            for net in st.networks.values_mut() {
                for a in net.containers.iter_mut().filter(|a| a.id == c.info.id) {
                    a.name = new_name.to_owned();
                }
            }
            st.containers.insert(new_name.to_owned(), c);
            Ok(())
        })();
        ready(result)
    }

    fn remove_container<'a>(&'a self, name: &'a str) -> Fut<'a, Removal> {
        let result = (|| {
            let mut st = self.lock();
            st.record(Op::RemoveContainer, name)?;
            let Some(key) = st.container_key(name) else {
                return Ok(Removal::Absent);
            };
            let c = st.containers.remove(&key).expect("looked up");
            for net in st.networks.values_mut() {
                net.containers.retain(|a| a.id != c.info.id);
            }
            Ok(Removal::Removed)
        })();
        ready(result)
    }

    fn inspect_container<'a>(&'a self, name: &'a str) -> Fut<'a, Option<ContainerInfo>> {
        let mut st = self.lock();
        let result = st.record(Op::InspectContainer, name).map(|()| {
            st.container_key(name)
                .map(|k| st.containers[&k].info.clone())
        });
        ready(result)
    }

    fn list_containers<'a>(&'a self, filter: &'a LabelFilter) -> Fut<'a, Vec<ContainerSummary>> {
        let mut st = self.lock();
        let result = st.record(Op::ListContainers, "").map(|()| {
            st.containers
                .values()
                .filter(|c| filter.matches(&c.info.labels))
                .map(|c| ContainerSummary {
                    id: c.info.id.clone(),
                    name: c.info.name.clone(),
                    image: c.info.image.clone(),
                    labels: c.info.labels.clone(),
                    state: c.info.state,
                    status: c.info.state.as_str().to_owned(),
                })
                .collect()
        });
        ready(result)
    }

    fn logs_tail<'a>(&'a self, name: &'a str, lines: usize) -> Fut<'a, Vec<LogLine>> {
        ready(self.lock().log_tail(name, lines))
    }

    /// The lines there are now; the fake has no process to follow, so the
    /// stream ends after them. Its lines carry no time, so `since` selects
    /// them all.
    fn logs(&self, name: &str, options: &LogOptions) -> LogStream {
        match self.lock().log_tail(name, options.tail) {
            Ok(lines) => stream::iter(lines.into_iter().map(Ok)).boxed(),
            Err(err) => stream::once(std::future::ready(Err(err))).boxed(),
        }
    }

    fn exec<'a>(&'a self, container: &'a str, _argv: &'a [String]) -> Fut<'a, ExecOutput> {
        let result = (|| {
            let mut st = self.lock();
            st.record(Op::Exec, container)?;
            let key = st
                .container_key(container)
                .ok_or_else(|| not_found(ObjectKind::Container, container))?;
            if st.containers[&key].info.state != ContainerState::Running {
                return Err(EngineError::Conflict {
                    kind: ObjectKind::Container,
                    name: key,
                    message: "container is not running".into(),
                });
            }
            Ok(st.exec_results.get(&key).cloned().unwrap_or(ExecOutput {
                exit_code: 0,
                stdout: String::new(),
                stderr: String::new(),
            }))
        })();
        ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;
    use cutover_core::diag::Diagnose;

    fn app_spec(name: &str, project: &str, network: &str) -> ContainerSpec {
        ContainerSpec::new(name, "app:1")
            .label(labels::PROJECT, project)
            .network(NetworkAttachment::new(network).alias("backend"))
    }

    fn engine_with_network(project: &str, network: &str) -> FakeEngine {
        let fake = FakeEngine::new();
        fake.add_image("app:1");
        fake.add_network(&NetworkSpec::new(network).label(labels::PROJECT, project));
        fake
    }

    #[tokio::test]
    async fn ensure_network_is_idempotent_and_keeps_the_name() {
        let fake = FakeEngine::new();
        let engine: Arc<dyn Engine> = Arc::new(fake.clone());
        let spec = NetworkSpec::new("app-network").label(labels::PROJECT, "athens");
        let first = engine.ensure_network(&spec).await.unwrap();
        let second = engine.ensure_network(&spec).await.unwrap();
        assert!(first.created);
        assert!(!second.created);
        assert_eq!(first.value.id, second.value.id);
        assert_eq!(fake.network_names(), vec!["app-network"]);
        assert_eq!(fake.calls_of(Op::CreateNetwork), vec!["app-network"]);
    }

    #[tokio::test]
    async fn external_network_is_reported_and_never_removed() {
        let fake = FakeEngine::new();
        fake.add_network(&NetworkSpec::new("ubuntu_app-network"));
        let ensured = fake
            .ensure_network(
                &NetworkSpec::new("ubuntu_app-network").label(labels::PROJECT, "athens"),
            )
            .await
            .unwrap();
        assert!(ensured.value.is_external());
        let err = fake
            .remove_network("ubuntu_app-network", "athens")
            .await
            .unwrap_err();
        assert!(err.is_conflict(), "{err}");
        assert!(err.to_string().contains("not created by cutover"), "{err}");
        assert_eq!(fake.network_names(), vec!["ubuntu_app-network"]);
    }

    #[tokio::test]
    async fn list_by_label_ignores_name_lookalikes() {
        let fake = engine_with_network("athens", "app");
        fake.create_container(
            &app_spec("athens-blue", "athens", "app").label(labels::COLOR, "blue"),
        )
        .await
        .unwrap();
        // Named like an app color but not labelled as one: failure #4.
        fake.create_container(
            &ContainerSpec::new("athens-redis-blue", "app:1")
                .label(labels::PROJECT, "athens-redis"),
        )
        .await
        .unwrap();
        let found = fake
            .list_containers(&LabelFilter::project("athens").with_key(labels::COLOR))
            .await
            .unwrap();
        assert_eq!(
            found.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            vec!["athens-blue"]
        );
    }

    #[tokio::test]
    async fn remove_network_disconnects_our_containers_first() {
        let fake = engine_with_network("athens", "app");
        fake.create_container(&app_spec("athens-blue", "athens", "app"))
            .await
            .unwrap();
        fake.start_container("athens-blue").await.unwrap();
        // The raw call refuses, as the engine does with active endpoints.
        let err = fake.delete_network("app").await.unwrap_err();
        assert!(err.to_string().contains("active endpoints"), "{err}");

        assert_eq!(
            fake.remove_network("app", "athens").await.unwrap(),
            Removal::Removed
        );
        assert_eq!(fake.calls_of(Op::DisconnectNetwork), vec!["app"]);
        assert!(fake.network_names().is_empty());
        let c = fake
            .inspect_container("athens-blue")
            .await
            .unwrap()
            .unwrap();
        assert!(c.networks.is_empty());
        assert_eq!(
            fake.remove_network("app", "athens").await.unwrap(),
            Removal::Absent
        );
    }

    #[tokio::test]
    async fn remove_network_names_foreign_containers() {
        let fake = engine_with_network("athens", "app");
        fake.create_container(&app_spec("athens-blue", "athens", "app"))
            .await
            .unwrap();
        fake.create_container(
            &ContainerSpec::new("someone-else", "app:1").network(NetworkAttachment::new("app")),
        )
        .await
        .unwrap();
        let err = fake.remove_network("app", "athens").await.unwrap_err();
        match &err {
            EngineError::NetworkInUse { containers, .. } => {
                assert_eq!(containers, &vec!["someone-else".to_owned()])
            }
            other => panic!("expected NetworkInUse, got {other:?}"),
        }
        assert!(err.report().to_string().contains("\nhint: "), "{err}");
        // Nothing was disconnected on the way to the refusal.
        assert!(fake.calls_of(Op::DisconnectNetwork).is_empty());
        assert_eq!(fake.network_names(), vec!["app"]);
    }

    #[tokio::test]
    async fn container_lifecycle_and_errors() {
        let fake = engine_with_network("p", "app");
        let spec = app_spec("c1", "p", "app");
        fake.create_container(&spec).await.unwrap();
        let err = fake.create_container(&spec).await.unwrap_err();
        assert!(err.is_conflict());
        let err = fake
            .create_container(&ContainerSpec::new("c2", "missing:1"))
            .await
            .unwrap_err();
        assert!(err.is_not_found());

        fake.start_container("c1").await.unwrap();
        fake.start_container("c1").await.unwrap();
        let info = fake.inspect_container("c1").await.unwrap().unwrap();
        assert_eq!(info.state, ContainerState::Running);
        assert_eq!(info.networks["app"].aliases, vec!["backend"]);
        assert!(info.ip_on("app").is_some());

        fake.stop_container("c1", Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(
            fake.inspect_container("c1").await.unwrap().unwrap().state,
            ContainerState::Exited
        );
        assert_eq!(fake.remove_container("c1").await.unwrap(), Removal::Removed);
        assert_eq!(fake.remove_container("c1").await.unwrap(), Removal::Absent);
        assert!(fake.start_container("c1").await.unwrap_err().is_not_found());
    }

    #[tokio::test]
    async fn addresses_stay_distinct_past_one_subnet() {
        let fake = engine_with_network("p", "app");
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..300 {
            let name = format!("c{i}");
            fake.create_container(&app_spec(&name, "p", "app"))
                .await
                .unwrap();
            let info = fake.inspect_container(&name).await.unwrap().unwrap();
            assert!(seen.insert(info.ip_on("app").unwrap()));
        }
    }

    #[tokio::test]
    async fn injected_failures_count_down() {
        let fake = engine_with_network("p", "app");
        fake.create_container(&app_spec("c", "p", "app"))
            .await
            .unwrap();
        fake.fail(
            Op::StartContainer,
            Some("c"),
            Failure::Api {
                status: 500,
                message: "port is already allocated".into(),
            },
            1,
        );
        let err = fake.start_container("c").await.unwrap_err();
        assert!(
            err.to_string().contains("port is already allocated"),
            "{err}"
        );
        fake.start_container("c").await.unwrap();
    }

    #[tokio::test]
    async fn volumes_survive_containers_and_refuse_removal_in_use() {
        let fake = engine_with_network("p", "app");
        let vol = VolumeSpec::new("redis-data").label(labels::PROJECT, "p");
        assert!(fake.ensure_volume(&vol).await.unwrap().created);
        assert!(!fake.ensure_volume(&vol).await.unwrap().created);
        let spec = app_spec("redis", "p", "app").mount(MountSpec::Volume {
            name: "redis-data".into(),
            target: "/data".into(),
            read_only: false,
        });
        fake.create_container(&spec).await.unwrap();
        assert!(fake
            .remove_volume("redis-data")
            .await
            .unwrap_err()
            .is_conflict());
        fake.remove_container("redis").await.unwrap();
        assert_eq!(
            fake.list_volumes(&LabelFilter::project("p"))
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            fake.remove_volume("redis-data").await.unwrap(),
            Removal::Removed
        );
    }

    #[tokio::test]
    async fn ensure_image_pulls_only_what_is_missing() {
        let fake = FakeEngine::new();
        fake.add_image("local:1");
        fake.add_registry_image("remote:1");
        fake.ensure_image("local:1").await.unwrap();
        fake.ensure_image("remote:1").await.unwrap();
        let err = fake.ensure_image("nowhere:1").await.unwrap_err();
        assert!(
            err.report()
                .to_string()
                .contains("hint: the engine must reach"),
            "{err}"
        );
        assert_eq!(fake.calls_of(Op::PullImage), vec!["remote:1", "nowhere:1"]);
    }

    #[tokio::test]
    async fn logs_tail_returns_the_last_lines() {
        let fake = engine_with_network("p", "app");
        fake.create_container(&app_spec("c", "p", "app"))
            .await
            .unwrap();
        for i in 0..5 {
            fake.push_log("c", LogSource::Stdout, &format!("line {i}"));
        }
        let tail = fake.logs_tail("c", 2).await.unwrap();
        assert_eq!(
            tail.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            vec!["line 3", "line 4"]
        );
        let options = LogOptions {
            tail: 1,
            follow: true,
            ..LogOptions::default()
        };
        let followed: Vec<_> = fake.logs("c", &options).collect().await;
        assert_eq!(followed.len(), 1);
        assert!(fake.logs_tail("nope", 2).await.unwrap_err().is_not_found());
    }

    fn with_healthcheck(name: &str) -> ContainerSpec {
        let mut spec = app_spec(name, "p", "app");
        spec.healthcheck = Some(HealthcheckSpec {
            test: HealthTest::Shell("true".into()),
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
        });
        spec
    }

    #[tokio::test(start_paused = true)]
    async fn wait_healthy_sees_the_status_change() {
        let fake = engine_with_network("p", "app");
        fake.create_container(&with_healthcheck("c")).await.unwrap();
        fake.start_container("c").await.unwrap();
        let waiter = {
            let fake = fake.clone();
            tokio::spawn(async move { fake.wait_healthy("c", Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!waiter.is_finished());
        fake.set_health("c", Some(HealthState::Healthy));
        let info = waiter.await.unwrap().unwrap();
        assert_eq!(info.health, Some(HealthState::Healthy));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_healthy_times_out_with_the_last_output() {
        let fake = engine_with_network("p", "app");
        fake.create_container(&with_healthcheck("c")).await.unwrap();
        fake.start_container("c").await.unwrap();
        fake.set_health_output("c", "connection refused");
        let err = fake
            .wait_healthy("c", Duration::from_secs(5))
            .await
            .unwrap_err();
        match &err {
            EngineError::Timeout { after, .. } => assert_eq!(*after, Duration::from_secs(5)),
            other => panic!("expected Timeout, got {other:?}"),
        }
        assert!(err.to_string().contains("connection refused"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn wait_healthy_fails_fast_on_exit_unhealthy_or_no_check() {
        let fake = engine_with_network("p", "app");
        fake.create_container(&with_healthcheck("exits"))
            .await
            .unwrap();
        fake.start_container("exits").await.unwrap();
        fake.exit("exits", 3);
        let err = fake
            .wait_healthy("exits", Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                EngineError::NotRunning {
                    exit_code: Some(3),
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "container exits is not running (exited, exit code 3), so it cannot become healthy"
        );

        fake.create_container(&with_healthcheck("never-started"))
            .await
            .unwrap();
        let err = fake
            .wait_healthy("never-started", Duration::from_secs(60))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "container never-started is not running (created), so it cannot become healthy"
        );

        fake.create_container(&with_healthcheck("sick"))
            .await
            .unwrap();
        fake.start_container("sick").await.unwrap();
        fake.set_health("sick", Some(HealthState::Unhealthy));
        match fake.wait_healthy("sick", Duration::from_secs(60)).await {
            Err(EngineError::Unhealthy { .. }) => {}
            other => panic!("expected Unhealthy, got {other:?}"),
        }

        fake.create_container(&app_spec("plain", "p", "app"))
            .await
            .unwrap();
        fake.start_container("plain").await.unwrap();
        match fake.wait_healthy("plain", Duration::from_secs(60)).await {
            Err(EngineError::NoHealthcheck { .. }) => {}
            other => panic!("expected NoHealthcheck, got {other:?}"),
        }
    }
}
