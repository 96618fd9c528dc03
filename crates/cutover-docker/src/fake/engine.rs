//! The [`Engine`] calls, answered from the fake's state.

use crate::engine::{not_found, Engine, EngineFuture, EngineResult, LogStream};
use crate::error::{EngineError, ObjectKind};
use crate::labels::LabelFilter;
use crate::model::*;
use crate::spec::*;
use futures_util::stream::{self, StreamExt};
use std::collections::BTreeMap;
use std::time::Duration;

use super::state::FakeContainer;
use super::{FakeEngine, Op};

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
        container: &'a str,
        attachment: &'a NetworkAttachment,
    ) -> Fut<'a, ()> {
        let (network, aliases) = (&attachment.network, &attachment.aliases);
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

    /// The fake's registry has every image.
    fn check_pullable<'a>(
        &'a self,
        _reference: &'a str,
        _auth: Option<&'a cutover_core::registry::RegistryAuth>,
    ) -> Fut<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn pull_image<'a>(
        &'a self,
        reference: &'a str,
        _auth: Option<&'a cutover_core::registry::RegistryAuth>,
    ) -> Fut<'a, ImageInfo> {
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
