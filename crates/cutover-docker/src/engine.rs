//! The [`Engine`] trait: the engine operations a blue/green deploy needs.
//!
//! Methods return boxed futures rather than being `async fn`: an `async fn`
//! in a trait makes it unusable as `dyn Engine`, and the deploy code holds an
//! `Arc<dyn Engine>` so that tests swap in [`crate::fake::FakeEngine`]. Boxed
//! futures are what the `async-trait` macro would generate, written out, so no
//! macro dependency is needed. The cost, one allocation per engine call, is
//! nothing next to the engine round trip.
//!
//! Implementations provide the primitive calls; the policies built on them
//! (idempotent ensure, network removal that disconnects what is ours, waiting
//! for health) are provided methods, so the real engine and the fake share
//! them and the fake's tests exercise the same code.

use cutover_core::registry::RegistryAuth;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

use crate::error::{EngineError, ObjectKind};
use crate::labels::{self, LabelFilter};
use crate::model::*;
use crate::spec::*;

pub type EngineResult<T> = Result<T, EngineError>;
pub type EngineFuture<'a, T> = BoxFuture<'a, EngineResult<T>>;
/// Lines of a followed log, until the container stops or the stream is
/// dropped.
pub type LogStream = BoxStream<'static, EngineResult<LogLine>>;

/// Time between two inspects while waiting for health: short at first so a
/// fast container is seen fast, then capped so a slow one costs little.
const HEALTH_POLL_FIRST: Duration = Duration::from_millis(50);
const HEALTH_POLL_MAX: Duration = Duration::from_millis(250);

pub trait Engine: Send + Sync {
    /// Identifies the engine; also proves it answers.
    fn info(&self) -> EngineFuture<'_, EngineInfo>;

    // Networks.

    /// Creates exactly `spec.name`; a conflict when it exists.
    fn create_network<'a>(&'a self, spec: &'a NetworkSpec) -> EngineFuture<'a, NetworkInfo>;
    fn inspect_network<'a>(&'a self, name: &'a str) -> EngineFuture<'a, Option<NetworkInfo>>;
    /// Networks whose labels match; their `containers` are left empty.
    fn list_networks<'a>(&'a self, filter: &'a LabelFilter) -> EngineFuture<'a, Vec<NetworkInfo>>;
    /// Joins `container` to `attachment.network` with its aliases and
    /// static addresses.
    fn connect_network<'a>(
        &'a self,
        container: &'a str,
        attachment: &'a NetworkAttachment,
    ) -> EngineFuture<'a, ()>;
    /// Forced: works on stopped containers too.
    fn disconnect_network<'a>(
        &'a self,
        network: &'a str,
        container: &'a str,
    ) -> EngineFuture<'a, ()>;
    /// The bare engine call; see [`Engine::remove_network`] for the policy.
    fn delete_network<'a>(&'a self, name: &'a str) -> EngineFuture<'a, Removal>;

    // Volumes.

    fn create_volume<'a>(&'a self, spec: &'a VolumeSpec) -> EngineFuture<'a, VolumeInfo>;
    fn inspect_volume<'a>(&'a self, name: &'a str) -> EngineFuture<'a, Option<VolumeInfo>>;
    fn list_volumes<'a>(&'a self, filter: &'a LabelFilter) -> EngineFuture<'a, Vec<VolumeInfo>>;
    /// Data is lost: only ever called on an explicit request of the user.
    fn remove_volume<'a>(&'a self, name: &'a str) -> EngineFuture<'a, Removal>;

    // Images.

    fn inspect_image<'a>(&'a self, reference: &'a str) -> EngineFuture<'a, Option<ImageInfo>>;
    /// Asks the registry whether it has `reference`, without pulling it:
    /// `Ok` when it does, else why not (no such image, a login refused, a
    /// registry that cannot be reached).
    fn check_pullable<'a>(
        &'a self,
        reference: &'a str,
        auth: Option<&'a RegistryAuth>,
    ) -> EngineFuture<'a, ()>;
    /// Pulls `reference`, logged in with `auth` when given.
    fn pull_image<'a>(
        &'a self,
        reference: &'a str,
        auth: Option<&'a RegistryAuth>,
    ) -> EngineFuture<'a, ImageInfo>;
    fn build_image<'a>(&'a self, spec: &'a BuildSpec) -> EngineFuture<'a, BuildOutput>;

    // Containers.

    /// Creates (does not start) the container and attaches all its networks.
    /// Returns the container id.
    fn create_container<'a>(&'a self, spec: &'a ContainerSpec) -> EngineFuture<'a, String>;
    /// Starting a running container is not an error.
    fn start_container<'a>(&'a self, name: &'a str) -> EngineFuture<'a, ()>;
    /// Sends the stop signal, waits up to `grace`, then kills. Stopping a
    /// stopped container is not an error.
    fn stop_container<'a>(&'a self, name: &'a str, grace: Duration) -> EngineFuture<'a, ()>;
    /// Forced removal (running or not), with its anonymous volumes.
    fn remove_container<'a>(&'a self, name: &'a str) -> EngineFuture<'a, Removal>;
    /// Renames a container, running or not; its id, addresses and open
    /// connections stay. A taken `new_name` is a `Conflict`.
    fn rename_container<'a>(&'a self, name: &'a str, new_name: &'a str) -> EngineFuture<'a, ()>;
    fn inspect_container<'a>(&'a self, name: &'a str) -> EngineFuture<'a, Option<ContainerInfo>>;
    /// All containers, running or not, whose labels match. There is
    /// deliberately no listing by name.
    fn list_containers<'a>(
        &'a self,
        filter: &'a LabelFilter,
    ) -> EngineFuture<'a, Vec<ContainerSummary>>;
    /// The last `lines` lines of stdout and stderr, in order.
    fn logs_tail<'a>(&'a self, name: &'a str, lines: usize) -> EngineFuture<'a, Vec<LogLine>>;
    /// The log as `options` select it: the last `tail` lines (of those
    /// written after `since`), then, with `follow`, new lines as they come.
    fn logs(&self, name: &str, options: &LogOptions) -> LogStream;
    /// Runs `argv` in the running container and waits for it.
    fn exec<'a>(&'a self, container: &'a str, argv: &'a [String]) -> EngineFuture<'a, ExecOutput>;

    // Provided policies.

    /// Creates the network unless it exists. An existing network is returned
    /// as it is, whoever made it: [`NetworkInfo::is_external`] tells.
    fn ensure_network<'a>(
        &'a self,
        spec: &'a NetworkSpec,
    ) -> EngineFuture<'a, Ensured<NetworkInfo>> {
        Box::pin(ensure_network(self, spec))
    }

    /// Removes a network of `project`, first disconnecting the containers
    /// of that project still attached. Refuses, naming them, when containers
    /// of anyone else are attached, and refuses a network that is not the
    /// project's.
    fn remove_network<'a>(&'a self, name: &'a str, project: &'a str) -> EngineFuture<'a, Removal> {
        Box::pin(remove_network(self, name, project))
    }

    fn ensure_volume<'a>(&'a self, spec: &'a VolumeSpec) -> EngineFuture<'a, Ensured<VolumeInfo>> {
        Box::pin(ensure_volume(self, spec))
    }

    /// Containers attached to a network now.
    fn network_containers<'a>(&'a self, name: &'a str) -> EngineFuture<'a, Vec<AttachedContainer>> {
        Box::pin(async move {
            match self.inspect_network(name).await? {
                Some(net) => Ok(net.containers),
                None => Err(not_found(ObjectKind::Network, name)),
            }
        })
    }

    /// The image's info, pulling it only when it is not there locally, so a
    /// machine without registry access deploys what it has.
    fn ensure_image<'a>(&'a self, reference: &'a str) -> EngineFuture<'a, ImageInfo> {
        Box::pin(async move {
            match self.inspect_image(reference).await? {
                Some(image) => Ok(image),
                None => self.pull_image(reference, None).await,
            }
        })
    }

    /// Waits until the container's Docker healthcheck reports healthy, for
    /// at most `timeout`. Fails early when it reports unhealthy or the
    /// container stops.
    fn wait_healthy<'a>(
        &'a self,
        name: &'a str,
        timeout: Duration,
    ) -> EngineFuture<'a, ContainerInfo> {
        Box::pin(wait_healthy(self, name, timeout))
    }
}

pub(crate) fn not_found(kind: ObjectKind, name: &str) -> EngineError {
    EngineError::NotFound {
        kind,
        name: name.to_owned(),
        message: format!("no such {kind}: {name}"),
    }
}

async fn ensure_network<E: Engine + ?Sized>(
    engine: &E,
    spec: &NetworkSpec,
) -> EngineResult<Ensured<NetworkInfo>> {
    if let Some(existing) = engine.inspect_network(&spec.name).await? {
        return Ok(Ensured {
            value: existing,
            created: false,
        });
    }
    match engine.create_network(spec).await {
        Ok(created) => Ok(Ensured {
            value: created,
            created: true,
        }),
        // Someone created it between inspect and create: theirs is as good.
        Err(err) if err.is_conflict() => match engine.inspect_network(&spec.name).await? {
            Some(existing) => Ok(Ensured {
                value: existing,
                created: false,
            }),
            None => Err(err),
        },
        Err(err) => Err(err),
    }
}

async fn ensure_volume<E: Engine + ?Sized>(
    engine: &E,
    spec: &VolumeSpec,
) -> EngineResult<Ensured<VolumeInfo>> {
    if let Some(existing) = engine.inspect_volume(&spec.name).await? {
        return Ok(Ensured {
            value: existing,
            created: false,
        });
    }
    let created = engine.create_volume(spec).await?;
    Ok(Ensured {
        value: created,
        created: true,
    })
}

async fn remove_network<E: Engine + ?Sized>(
    engine: &E,
    name: &str,
    project: &str,
) -> EngineResult<Removal> {
    let Some(network) = engine.inspect_network(name).await? else {
        return Ok(Removal::Absent);
    };
    if !network.is_owned_by(project) {
        return Err(EngineError::Conflict {
            kind: ObjectKind::Network,
            name: name.to_owned(),
            message: match network.labels.get(labels::PROJECT) {
                Some(other) => format!("it belongs to project {other}, not {project}"),
                None => format!(
                    "it was not created by cutover (no {} label), so cutover leaves it alone",
                    labels::PROJECT
                ),
            },
        });
    }

    let mut foreign = Vec::new();
    let mut ours = Vec::new();
    for attached in &network.containers {
        match engine.inspect_container(&attached.id).await? {
            // Gone since the inspect: nothing to disconnect.
            None => {}
            Some(c) if c.labels.get(labels::PROJECT).map(String::as_str) == Some(project) => {
                ours.push(attached.id.clone())
            }
            Some(c) => foreign.push(c.name),
        }
    }
    if !foreign.is_empty() {
        foreign.sort();
        return Err(EngineError::NetworkInUse {
            network: name.to_owned(),
            project: project.to_owned(),
            containers: foreign,
        });
    }
    for id in &ours {
        match engine.disconnect_network(name, id).await {
            Ok(()) => {}
            // Already detached or removed: the goal is reached.
            Err(err) if err.is_not_found() => {}
            Err(err) => return Err(err),
        }
    }
    engine.delete_network(name).await
}

async fn wait_healthy<E: Engine + ?Sized>(
    engine: &E,
    name: &str,
    timeout: Duration,
) -> EngineResult<ContainerInfo> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = HEALTH_POLL_FIRST;
    loop {
        let info = engine
            .inspect_container(name)
            .await?
            .ok_or_else(|| not_found(ObjectKind::Container, name))?;
        if info.state.is_stopped() {
            return Err(EngineError::NotRunning {
                name: name.to_owned(),
                state: info.state.as_str(),
                exit_code: info
                    .exit_code
                    .filter(|_| info.state != ContainerState::Created),
            });
        }
        match info.health {
            None => {
                return Err(EngineError::NoHealthcheck {
                    name: name.to_owned(),
                })
            }
            Some(HealthState::Healthy) => return Ok(info),
            Some(HealthState::Unhealthy) => {
                return Err(EngineError::Unhealthy {
                    name: name.to_owned(),
                    output: info.last_health_output,
                })
            }
            Some(HealthState::Starting) => {}
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(EngineError::Timeout {
                what: format!("container {name} to become healthy"),
                after: timeout,
                output: info.last_health_output,
            });
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(HEALTH_POLL_MAX);
    }
}
