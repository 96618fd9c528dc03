//! [`DockerSwarm`]: the [`Cluster`] over a manager's Docker Engine API.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bollard::models::{
    ConfigSpec, SecretSpec, TaskSpecContainerSpecConfigs, TaskSpecContainerSpecFile,
    TaskSpecContainerSpecFile1, TaskSpecContainerSpecSecrets,
};
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, Limit, LocalNodeState, Mount, MountType,
    MountVolumeOptions, MountVolumeOptionsDriverConfig, NetworkAttachmentConfig, ServiceSpecMode,
    ServiceSpecModeReplicated, ServiceSpecModeReplicatedJob, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec,
    TaskSpecContainerSpec, TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};
use bollard::query_parameters as q;

use cutover_docker::docker::{hashmap, health_config};
use cutover_docker::{
    DockerEngine, EngineError, LabelFilter, LogOptions, LogStream, ObjectKind, Removal,
};

use crate::cluster::{Cluster, SwarmFuture, SwarmResult};
use crate::error::SwarmError;
use crate::model::*;
use crate::spec::{Mode, MountKind, NewVolume, ServiceCopy, ServiceFile, ServiceSpec};
use crate::tasks;

// Deploy code holds the cluster as `Arc<dyn Cluster>`.
const _: fn(DockerSwarm) -> std::sync::Arc<dyn Cluster> = |c| std::sync::Arc::new(c);

/// A swarm reached through one of its managers' engine.
#[derive(Debug, Clone)]
pub struct DockerSwarm {
    engine: DockerEngine,
}

impl DockerSwarm {
    /// Wraps a connected engine, once it has said it manages a swarm.
    pub async fn new(engine: DockerEngine) -> SwarmResult<DockerSwarm> {
        let swarm = DockerSwarm { engine };
        let info = swarm.info().await?;
        if !info.is_manager {
            return Err(SwarmError::NotAManager {
                host: swarm.engine.host().to_owned(),
                node: info.node_id,
            });
        }
        Ok(swarm)
    }

    pub async fn connect_to(host: &str) -> SwarmResult<DockerSwarm> {
        DockerSwarm::new(DockerEngine::connect_to(host).await?).await
    }

    /// The manager's engine, for networks, images and its own containers.
    pub fn engine(&self) -> &DockerEngine {
        &self.engine
    }

    fn err(
        &self,
        action: &'static str,
        kind: ObjectKind,
        name: &str,
    ) -> impl FnOnce(bollard::errors::Error) -> SwarmError + '_ {
        let name = name.to_owned();
        move |e| EngineError::from_bollard(e, self.engine.host(), action, kind, &name).into()
    }
}

impl Cluster for DockerSwarm {
    fn info(&self) -> SwarmFuture<'_, SwarmInfo> {
        Box::pin(async move {
            let host = self.engine.host();
            let info = self.engine.client().info().await.map_err(self.err(
                "ask",
                ObjectKind::Engine,
                host,
            ))?;
            let swarm = info.swarm.unwrap_or_default();
            let state = swarm.local_node_state.unwrap_or(LocalNodeState::EMPTY);
            if state != LocalNodeState::ACTIVE {
                return Err(SwarmError::NotInSwarm {
                    host: host.to_owned(),
                    state: match state {
                        LocalNodeState::EMPTY => "unknown".to_owned(),
                        other => other.to_string(),
                    },
                });
            }
            Ok(SwarmInfo {
                node_id: swarm.node_id.unwrap_or_default(),
                node_addr: swarm.node_addr.unwrap_or_default(),
                is_manager: swarm.control_available.unwrap_or(false),
                nodes: swarm.nodes.unwrap_or(0).max(0) as u64,
                managers: swarm.managers.unwrap_or(0).max(0) as u64,
            })
        })
    }

    fn nodes(&self) -> SwarmFuture<'_, Vec<NodeInfo>> {
        Box::pin(async move {
            let nodes = self
                .engine
                .client()
                .list_nodes(None::<q::ListNodesOptions>)
                .await
                .map_err(self.err("list", ObjectKind::Node, "nodes"))?;
            Ok(nodes.into_iter().map(node_info).collect())
        })
    }

    fn create_service<'a>(&'a self, spec: &'a ServiceSpec) -> SwarmFuture<'a, String> {
        Box::pin(async move {
            let created = self
                .engine
                .client()
                .create_service(service_spec(spec), None)
                .await
                .map_err(self.err("create", ObjectKind::Service, &spec.name))?;
            Ok(created.id.unwrap_or_default())
        })
    }

    fn inspect_service<'a>(&'a self, name: &'a str) -> SwarmFuture<'a, Option<ServiceInfo>> {
        Box::pin(async move {
            match self
                .engine
                .client()
                .inspect_service(name, None::<q::InspectServiceOptions>)
                .await
            {
                Ok(service) => Ok(Some(service_info(service)).filter(|s| s.name == name)),
                Err(e) => match self.err("inspect", ObjectKind::Service, name)(e) {
                    SwarmError::Engine(e) if e.is_not_found() => Ok(None),
                    other => Err(other),
                },
            }
        })
    }

    fn list_services<'a>(&'a self, filter: &'a LabelFilter) -> SwarmFuture<'a, Vec<ServiceInfo>> {
        Box::pin(async move {
            let options = q::ListServicesOptions {
                filters: Some(filter.to_docker_filters()),
                ..Default::default()
            };
            let services = self
                .engine
                .client()
                .list_services(Some(options))
                .await
                .map_err(self.err("list", ObjectKind::Service, "services"))?;
            Ok(services.into_iter().map(service_info).collect())
        })
    }

    fn scale_service<'a>(&'a self, name: &'a str, replicas: u64) -> SwarmFuture<'a, ()> {
        Box::pin(async move {
            self.respec(name, "scale", |mut spec| {
                set_tasks(&mut spec, name, replicas)?;
                Ok(spec)
            })
            .await
        })
    }

    fn update_service<'a>(
        &'a self,
        spec: &'a ServiceSpec,
    ) -> SwarmFuture<'a, Option<UpdateStatus>> {
        Box::pin(async move {
            let before = self
                .inspect_service(&spec.name)
                .await?
                .and_then(|s| s.update);
            self.respec(&spec.name, "update", |_| {
                let mut new = service_spec(spec);
                new.update_config = Some(ServiceSpecUpdateConfig {
                    parallelism: Some(1),
                    order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
                    failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
                    // A new task that fails within this is a failed update.
                    monitor: Some(5_000_000_000),
                    ..Default::default()
                });
                Ok(new)
            })
            .await?;
            Ok(before)
        })
    }

    fn copy_service<'a>(&'a self, from: &'a str, copy: &'a ServiceCopy) -> SwarmFuture<'a, String> {
        Box::pin(async move {
            let docker = self.engine.client();
            let service = docker
                .inspect_service(from, None::<q::InspectServiceOptions>)
                .await
                .map_err(self.err("inspect", ObjectKind::Service, from))?;
            let mut spec = service.spec.unwrap_or_default();
            spec.name = Some(copy.name.clone());
            relabel(spec.labels.get_or_insert_with(HashMap::new), copy);
            let container = spec
                .task_template
                .get_or_insert_with(Default::default)
                .container_spec
                .get_or_insert_with(Default::default);
            relabel(container.labels.get_or_insert_with(HashMap::new), copy);
            for entry in container.env.iter_mut().flatten() {
                if let Some((_, to)) = copy.env.iter().find(|(from, _)| from == entry) {
                    entry.clone_from(to);
                }
            }
            set_tasks(&mut spec, &copy.name, 0)?;
            let created = docker.create_service(spec, None).await.map_err(self.err(
                "create",
                ObjectKind::Service,
                &copy.name,
            ))?;
            Ok(created.id.unwrap_or_default())
        })
    }

    fn remove_service<'a>(&'a self, name: &'a str) -> SwarmFuture<'a, Removal> {
        Box::pin(async move {
            // By exact name only: the engine would take an id prefix too.
            if self.inspect_service(name).await?.is_none() {
                return Ok(Removal::Absent);
            }
            match self.engine.client().delete_service(name).await {
                Ok(()) => Ok(Removal::Removed),
                Err(e) => match self.err("remove", ObjectKind::Service, name)(e) {
                    SwarmError::Engine(e) if e.is_not_found() => Ok(Removal::Absent),
                    other => Err(other),
                },
            }
        })
    }

    fn tasks<'a>(&'a self, service: &'a ServiceInfo) -> SwarmFuture<'a, Vec<TaskInfo>> {
        Box::pin(async move { Ok(tasks::list(self.engine.host(), &service.id).await?) })
    }

    fn task_logs(&self, task: &TaskInfo, options: &LogOptions) -> LogStream {
        self.engine.task_logs(&task.id, options)
    }

    fn create_file<'a>(
        &'a self,
        kind: FileKind,
        name: &'a str,
        labels: &'a BTreeMap<String, String>,
        data: &'a [u8],
    ) -> SwarmFuture<'a, String> {
        Box::pin(async move {
            let docker = self.engine.client();
            let (labels, data) = (Some(hashmap(labels)), Some(BASE64.encode(data)));
            let name_ = Some(name.to_owned());
            let created = match kind {
                FileKind::Secret => {
                    let spec = SecretSpec {
                        name: name_,
                        labels,
                        data,
                        ..Default::default()
                    };
                    docker.create_secret(spec).await
                }
                FileKind::Config => {
                    let spec = ConfigSpec {
                        name: name_,
                        labels,
                        data,
                        ..Default::default()
                    };
                    docker.create_config(spec).await
                }
            };
            let created = created.map_err(self.err("create", object_kind(kind), name))?;
            Ok(created.id)
        })
    }

    fn find_file<'a>(
        &'a self,
        kind: FileKind,
        name: &'a str,
    ) -> SwarmFuture<'a, Option<FileObject>> {
        Box::pin(async move {
            let filters = HashMap::from([("name".to_owned(), vec![name.to_owned()])]);
            let found = self.files(kind, filters).await?;
            Ok(found.into_iter().find(|f| f.name == name))
        })
    }

    fn list_files<'a>(
        &'a self,
        kind: FileKind,
        filter: &'a LabelFilter,
    ) -> SwarmFuture<'a, Vec<FileObject>> {
        Box::pin(async move { self.files(kind, filter.to_docker_filters()).await })
    }

    fn remove_file<'a>(&'a self, kind: FileKind, id: &'a str) -> SwarmFuture<'a, Removal> {
        Box::pin(async move {
            let docker = self.engine.client();
            let removed = match kind {
                FileKind::Secret => docker.delete_secret(id).await,
                FileKind::Config => docker.delete_config(id).await,
            };
            match removed {
                Ok(()) => Ok(Removal::Removed),
                Err(e) => match self.err("remove", object_kind(kind), id)(e) {
                    SwarmError::Engine(e) if e.is_not_found() => Ok(Removal::Absent),
                    other => Err(other),
                },
            }
        })
    }
}

impl DockerSwarm {
    /// Gives `name` the spec `change` makes of the one the engine holds,
    /// naming the version it read: the engine refuses the update if the
    /// spec changed in between.
    async fn respec(
        &self,
        name: &str,
        verb: &'static str,
        change: impl FnOnce(bollard::models::ServiceSpec) -> SwarmResult<bollard::models::ServiceSpec>,
    ) -> SwarmResult<()> {
        let docker = self.engine.client();
        let service = docker
            .inspect_service(name, None::<q::InspectServiceOptions>)
            .await
            .map_err(self.err("inspect", ObjectKind::Service, name))?;
        let version = service.version.and_then(|v| v.index).unwrap_or(0);
        let spec = change(service.spec.unwrap_or_default())?;
        let options = q::UpdateServiceOptions {
            version: i32::try_from(version).unwrap_or(i32::MAX),
            ..Default::default()
        };
        docker
            .update_service(name, spec, options, None)
            .await
            .map_err(self.err(verb, ObjectKind::Service, name))?;
        Ok(())
    }

    async fn files(
        &self,
        kind: FileKind,
        filters: HashMap<String, Vec<String>>,
    ) -> SwarmResult<Vec<FileObject>> {
        let docker = self.engine.client();
        let filters = Some(filters);
        let err = self.err("list", object_kind(kind), &format!("{}s", kind.as_str()));
        let object = |id: Option<String>,
                      name,
                      labels: Option<HashMap<String, String>>,
                      data: Option<Vec<u8>>| FileObject {
            kind,
            id: id.unwrap_or_default(),
            name: Option::unwrap_or_default(name),
            labels: labels.unwrap_or_default().into_iter().collect(),
            data,
        };
        Ok(match kind {
            FileKind::Secret => docker
                .list_secrets(Some(q::ListSecretsOptions { filters }))
                .await
                .map_err(err)?
                .into_iter()
                .map(|s| {
                    let spec = s.spec.unwrap_or_default();
                    object(s.id, spec.name, spec.labels, None)
                })
                .collect(),
            FileKind::Config => docker
                .list_configs(Some(q::ListConfigsOptions { filters }))
                .await
                .map_err(err)?
                .into_iter()
                .map(|c| {
                    let spec = c.spec.unwrap_or_default();
                    // The engine lists a config's contents, base64 as sent.
                    let data = spec.data.and_then(|d| BASE64.decode(d).ok());
                    object(c.id, spec.name, spec.labels, data)
                })
                .collect(),
        })
    }
}

/// What a node creates a volume with when a task mounts one it lacks.
fn volume_options(v: &NewVolume) -> MountVolumeOptions {
    MountVolumeOptions {
        labels: Some(hashmap(&v.labels)),
        driver_config: v
            .driver
            .as_ref()
            .map(|name| MountVolumeOptionsDriverConfig {
                name: Some(name.clone()),
                options: Some(hashmap(&v.driver_opts)),
            }),
        ..Default::default()
    }
}

fn object_kind(kind: FileKind) -> ObjectKind {
    match kind {
        FileKind::Secret => ObjectKind::Secret,
        FileKind::Config => ObjectKind::Config,
    }
}

/// Sets a service's task count: a replicated one's replicas; a global one
/// parked at 0 and unparked at any other count. A job cannot be scaled.
fn set_tasks(
    spec: &mut bollard::models::ServiceSpec,
    name: &str,
    replicas: u64,
) -> Result<(), SwarmError> {
    let mode = spec.mode.as_ref();
    if mode.and_then(|m| m.global.as_ref()).is_some() {
        park(spec, replicas == 0);
    } else if mode.and_then(|m| m.replicated.as_ref()).is_some() {
        spec.mode = Some(replicated(replicas));
    } else {
        return Err(EngineError::InvalidSpec {
            name: name.to_owned(),
            message: "a job runs to its end and cannot be scaled".into(),
        }
        .into());
    }
    Ok(())
}

fn relabel(labels: &mut HashMap<String, String>, copy: &ServiceCopy) {
    for key in &copy.unlabel {
        labels.remove(key);
    }
    labels.extend(copy.labels.clone());
}

/// A placement constraint no node meets (a node id is 25 letters and
/// digits): a global service cannot be scaled, so one at 0 tasks is one
/// that may run on no node. Its spec is otherwise kept, and taking the
/// constraint away runs the very same version again on every node.
pub const PARKED: &str = "node.id==cutover-parked";

fn park(spec: &mut bollard::models::ServiceSpec, parked: bool) {
    let placement = spec
        .task_template
        .get_or_insert_with(Default::default)
        .placement
        .get_or_insert_with(Default::default);
    let constraints = placement.constraints.get_or_insert_with(Vec::new);
    constraints.retain(|c| c != PARKED);
    if parked {
        constraints.push(PARKED.to_string());
    }
}

fn replicated(replicas: u64) -> ServiceSpecMode {
    ServiceSpecMode {
        replicated: Some(ServiceSpecModeReplicated {
            replicas: Some(i64::try_from(replicas).unwrap_or(i64::MAX)),
        }),
        ..Default::default()
    }
}

/// cutover's service to the engine's. The endpoint is always DNS round
/// robin: cutover's proxies reach tasks at their own addresses, and a
/// virtual IP would put IPVS, which cuts long-lived connections, in front
/// of every call between services.
fn service_spec(spec: &ServiceSpec) -> bollard::models::ServiceSpec {
    let container = TaskSpecContainerSpec {
        image: Some(spec.image.clone()),
        labels: Some(hashmap(&spec.container_labels)),
        command: spec.entrypoint.clone(),
        args: spec.command.clone(),
        env: (!spec.env.is_empty()).then(|| spec.env.clone()),
        mounts: (!spec.mounts.is_empty()).then(|| {
            spec.mounts
                .iter()
                .map(|b| Mount {
                    target: Some(b.target.clone()),
                    source: Some(b.source.clone()),
                    typ: Some(match b.kind {
                        MountKind::Bind => MountType::BIND,
                        MountKind::Volume => MountType::VOLUME,
                    }),
                    read_only: Some(b.read_only),
                    volume_options: b.create.as_ref().map(volume_options),
                    ..Default::default()
                })
                .collect()
        }),
        stop_grace_period: spec
            .stop_grace_period
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        health_check: spec.healthcheck.as_ref().map(health_config),
        secrets: files(spec, FileKind::Secret, |f| TaskSpecContainerSpecSecrets {
            file: Some(TaskSpecContainerSpecFile {
                name: Some(f.target.clone()),
                uid: Some(f.uid.clone()),
                gid: Some(f.gid.clone()),
                mode: Some(f.mode),
            }),
            secret_id: Some(f.id.clone()),
            secret_name: Some(f.name.clone()),
        }),
        configs: files(spec, FileKind::Config, |f| TaskSpecContainerSpecConfigs {
            file: Some(TaskSpecContainerSpecFile1 {
                name: Some(f.target.clone()),
                uid: Some(f.uid.clone()),
                gid: Some(f.gid.clone()),
                mode: Some(f.mode),
            }),
            runtime: None,
            config_id: Some(f.id.clone()),
            config_name: Some(f.name.clone()),
        }),
        ..Default::default()
    };
    let task = TaskSpec {
        container_spec: Some(container),
        resources: (spec.nano_cpus.is_some() || spec.memory.is_some()).then(|| TaskSpecResources {
            limits: Some(Limit {
                nano_cpus: spec.nano_cpus,
                memory_bytes: spec.memory,
                pids: None,
            }),
            ..Default::default()
        }),
        placement: Some(TaskSpecPlacement {
            constraints: (!spec.constraints.is_empty()).then(|| spec.constraints.clone()),
            max_replicas: spec
                .max_per_node
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
            ..Default::default()
        }),
        networks: Some(
            spec.networks
                .iter()
                .map(|n| NetworkAttachmentConfig {
                    target: Some(n.name.clone()),
                    aliases: (!n.aliases.is_empty()).then(|| n.aliases.clone()),
                    driver_opts: None,
                })
                .collect(),
        ),
        // A job that failed is not run again: a hook runs once.
        restart_policy: spec.mode.is_job().then(|| TaskSpecRestartPolicy {
            condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
            ..Default::default()
        }),
        ..Default::default()
    };
    let ports = spec
        .host_ports
        .iter()
        .map(|p| EndpointPortConfig {
            protocol: Some(EndpointPortConfigProtocolEnum::TCP),
            target_port: Some(i64::from(p.target)),
            published_port: Some(i64::from(p.published)),
            publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
            name: None,
        })
        .collect();
    bollard::models::ServiceSpec {
        name: Some(spec.name.clone()),
        labels: Some(hashmap(&spec.labels)),
        task_template: Some(task),
        mode: Some(match spec.mode {
            Mode::Replicated(n) => replicated(n),
            Mode::Global => ServiceSpecMode {
                global: Some(HashMap::new()),
                ..Default::default()
            },
            Mode::GlobalJob => ServiceSpecMode {
                global_job: Some(HashMap::new()),
                ..Default::default()
            },
            Mode::Job => ServiceSpecMode {
                replicated_job: Some(ServiceSpecModeReplicatedJob {
                    max_concurrent: Some(1),
                    total_completions: Some(1),
                }),
                ..Default::default()
            },
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: Some(ports),
        }),
        ..Default::default()
    }
}

/// The service's files of one kind, in the engine's shape; `None` for
/// none, as the engine writes it.
fn files<T>(spec: &ServiceSpec, kind: FileKind, to: impl Fn(&ServiceFile) -> T) -> Option<Vec<T>> {
    let out: Vec<T> = spec
        .files
        .iter()
        .filter(|f| f.kind == kind)
        .map(to)
        .collect();
    (!out.is_empty()).then_some(out)
}

fn service_info(service: bollard::models::Service) -> ServiceInfo {
    let spec = service.spec.unwrap_or_default();
    let container = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref());
    let secrets = container
        .and_then(|c| c.secrets.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|s| s.secret_id.clone());
    let configs = container
        .and_then(|c| c.configs.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.config_id.clone());
    let files = secrets.chain(configs).collect();
    let parked = spec
        .task_template
        .as_ref()
        .and_then(|t| t.placement.as_ref())
        .and_then(|p| p.constraints.as_ref())
        .is_some_and(|c| c.iter().any(|c| c == PARKED));
    let global = spec.mode.as_ref().is_some_and(|m| m.global.is_some());
    let replicas = match spec.mode.as_ref() {
        Some(_) if global => parked.then_some(0),
        m => m
            .and_then(|m| m.replicated.as_ref())
            .map(|r| r.replicas.unwrap_or(0).max(0) as u64),
    };
    let update = service.update_status.and_then(|u| {
        use bollard::models::ServiceUpdateStatusStateEnum as S;
        let state = match u.state? {
            S::UPDATING => UpdateState::Updating,
            S::COMPLETED => UpdateState::Completed,
            S::EMPTY => return None,
            other => UpdateState::Stopped(format!("{other}: {}", u.message.unwrap_or_default())),
        };
        // Compared, never read: any rendering of the time tells two apart.
        let started = u.started_at.map(|t| format!("{t:?}")).unwrap_or_default();
        Some(UpdateStatus { state, started })
    });
    ServiceInfo {
        update,
        id: service.id.unwrap_or_default(),
        name: spec.name.unwrap_or_default(),
        version: service.version.and_then(|v| v.index).unwrap_or(0),
        labels: spec.labels.unwrap_or_default().into_iter().collect(),
        image: spec
            .task_template
            .and_then(|t| t.container_spec)
            .and_then(|c| c.image)
            .unwrap_or_default(),
        replicas,
        global,
        files,
    }
}

fn node_info(node: bollard::models::Node) -> NodeInfo {
    use bollard::models::{NodeSpecAvailabilityEnum as A, NodeSpecRoleEnum as R, NodeState as S};
    let spec = node.spec.unwrap_or_default();
    let status = node.status.unwrap_or_default();
    NodeInfo {
        id: node.id.unwrap_or_default(),
        hostname: node
            .description
            .and_then(|d| d.hostname)
            .unwrap_or_default(),
        addr: status.addr.unwrap_or_default(),
        role: match spec.role {
            Some(R::MANAGER) => NodeRole::Manager,
            _ => NodeRole::Worker,
        },
        state: match status.state {
            Some(S::READY) => NodeState::Ready,
            Some(S::DOWN) => NodeState::Down,
            Some(S::DISCONNECTED) => NodeState::Disconnected,
            _ => NodeState::Unknown,
        },
        availability: match spec.availability {
            Some(A::PAUSE) => Availability::Pause,
            Some(A::DRAIN) => Availability::Drain,
            _ => Availability::Active,
        },
        leader: node.manager_status.and_then(|m| m.leader).unwrap_or(false),
    }
}
