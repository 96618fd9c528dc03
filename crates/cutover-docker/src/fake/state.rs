//! What the fake engine remembers, and the engine's rules it follows.

use crate::engine::{not_found, EngineResult};
use crate::error::{EngineError, ObjectKind};
use crate::model::*;
use crate::spec::*;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use super::{Call, Failure, Op};

#[derive(Debug, Clone)]
pub(super) struct Injected {
    pub(super) op: Op,
    pub(super) target: Option<String>,
    pub(super) failure: Failure,
    /// How many more calls fail; `None` for all of them.
    pub(super) remaining: Option<usize>,
}

#[derive(Debug, Clone)]
pub(super) struct FakeContainer {
    pub(super) info: ContainerInfo,
    pub(super) spec: ContainerSpec,
    pub(super) logs: Vec<LogLine>,
    /// Health the container reports once started; `None` without a
    /// healthcheck.
    pub(super) health_when_started: Option<HealthState>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) calls: Vec<Call>,
    pub(super) networks: BTreeMap<String, NetworkInfo>,
    pub(super) volumes: BTreeMap<String, VolumeInfo>,
    pub(super) images: BTreeMap<String, ImageInfo>,
    /// Images `pull_image` can fetch, as if from a registry.
    pub(super) registry: BTreeMap<String, ImageInfo>,
    pub(super) containers: BTreeMap<String, FakeContainer>,
    pub(super) failures: Vec<Injected>,
    pub(super) exec_results: BTreeMap<String, ExecOutput>,
    pub(super) next_id: u64,
    pub(super) next_ip: u32,
    pub(super) info: Option<EngineInfo>,
    /// Whether new networks report a gateway ([`super::FakeEngine::with_gateways`]).
    pub(super) gateways: bool,
}

impl State {
    pub(super) fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:060x}", self.next_id)
    }

    pub(super) fn ip(&mut self) -> IpAddr {
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

    pub(super) fn record(&mut self, op: Op, target: &str) -> EngineResult<()> {
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
    pub(super) fn container_key(&self, name_or_id: &str) -> Option<String> {
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
    pub(super) fn recorded_container(
        &mut self,
        op: Op,
        name: &str,
    ) -> EngineResult<&mut FakeContainer> {
        self.record(op, name)?;
        let key = self
            .container_key(name)
            .ok_or_else(|| not_found(ObjectKind::Container, name))?;
        Ok(self.containers.get_mut(&key).expect("looked up"))
    }

    /// The last `lines` lines of a container's log, as the engine's tail.
    pub(super) fn log_tail(&mut self, name: &str, lines: usize) -> EngineResult<Vec<LogLine>> {
        let logs = &self.recorded_container(Op::Logs, name)?.logs;
        Ok(logs[logs.len().saturating_sub(lines)..].to_vec())
    }

    pub(super) fn network_key(&self, name_or_id: &str) -> Option<String> {
        if self.networks.contains_key(name_or_id) {
            return Some(name_or_id.to_owned());
        }
        self.networks
            .iter()
            .find(|(_, n)| n.id == name_or_id)
            .map(|(name, _)| name.clone())
    }

    pub(super) fn attach(
        &mut self,
        network: &str,
        container: &str,
        aliases: &[String],
    ) -> EngineResult<()> {
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

    pub(super) fn detach(&mut self, network: &str, container: &str) -> EngineResult<()> {
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

pub(super) fn kind_of(op: Op) -> ObjectKind {
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
