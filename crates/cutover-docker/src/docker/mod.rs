//! [`DockerEngine`]: the [`Engine`] over the Docker Engine API, with bollard.
//!
//! Written against API 1.41 (Docker 20.10) and newer: the version is
//! negotiated at connect, and nothing newer than 1.41 is sent. That is why a
//! container is created on its first network only and joins the others
//! before it starts: creating on several networks at once needs API 1.44.

use std::time::Duration;

use bollard::models::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest, VolumeCreateRequest,
};
use bollard::query_parameters as q;
use bollard::Docker;
use futures_util::stream::{StreamExt, TryStreamExt};

use crate::context;
use crate::engine::{Engine, EngineFuture, EngineResult, LogStream};
use crate::error::{EngineError, ObjectKind};
use crate::labels::LabelFilter;
use crate::logs::LineSplitter;
use crate::model::*;
use crate::spec::*;

/// Where the engine listens when `DOCKER_HOST` is unset.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// Timeout of one engine request (until the answer starts) in bollard; long
/// stops get more, see [`Engine::stop_container`].
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The engine address the docker CLI would use given the value of
/// `DOCKER_HOST`.
pub fn docker_host(env_value: Option<&str>) -> String {
    match env_value.map(str::trim) {
        Some(value) if !value.is_empty() => value.to_owned(),
        _ => DEFAULT_DOCKER_HOST.to_owned(),
    }
}

// Deploy code holds the engine as `Arc<dyn Engine>`.
const _: fn(DockerEngine) -> std::sync::Arc<dyn Engine> = |e| std::sync::Arc::new(e);

#[derive(Debug, Clone)]
pub struct DockerEngine {
    docker: Docker,
    host: String,
}

impl DockerEngine {
    /// Writes `files` into the created container `id` in one archive, as
    /// compose copies secrets and configs that are not host files.
    async fn copy_files(
        &self,
        id: &str,
        name: &str,
        files: &[FileSpec],
    ) -> Result<(), EngineError> {
        if files.is_empty() {
            return Ok(());
        }
        let archive = files_archive(files).map_err(|e| EngineError::InvalidSpec {
            name: name.to_owned(),
            message: format!("cannot pack its secrets and configs: {e}"),
        })?;
        let options = q::UploadToContainerOptions {
            path: "/".to_owned(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(
                id,
                Some(options),
                bollard::body_full(bytes::Bytes::from(archive)),
            )
            .await
            .map_err(self.err("copy secrets and configs into", ObjectKind::Container, name))
    }

    /// Connects where `DOCKER_HOST` says, as the docker CLI does.
    pub async fn connect() -> EngineResult<DockerEngine> {
        let host = docker_host(std::env::var("DOCKER_HOST").ok().as_deref());
        Self::connect_to(&host).await
    }

    /// Connects to `host` (`unix:///path`, `tcp://host:port`,
    /// `http://host:port`) and settles on an API version both sides speak.
    pub async fn connect_to(host: &str) -> EngineResult<DockerEngine> {
        let err = |e| EngineError::from_bollard(e, host, "connect to", ObjectKind::Engine, host);
        let docker = Docker::connect_with_host(host)
            .map_err(err)?
            .with_timeout(REQUEST_TIMEOUT);
        let docker = docker.negotiate_version().await.map_err(err)?;
        Ok(DockerEngine {
            docker,
            host: host.to_owned(),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The bollard client, for what this adapter does not cover.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    fn err(
        &self,
        action: &'static str,
        kind: ObjectKind,
        name: &str,
    ) -> impl FnOnce(bollard::errors::Error) -> EngineError + '_ {
        let name = name.to_owned();
        move |e| EngineError::from_bollard(e, &self.host, action, kind, &name)
    }
}

/// `Ok(None)` for a 404, so inspects can answer "does it exist".
fn optional<T>(result: EngineResult<T>) -> EngineResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err),
    }
}

fn removal(result: EngineResult<()>) -> EngineResult<Removal> {
    match result {
        Ok(()) => Ok(Removal::Removed),
        Err(err) if err.is_not_found() => Ok(Removal::Absent),
        Err(err) => Err(err),
    }
}

/// Start and stop answer 304 when there was nothing to do.
fn not_modified_ok(
    result: Result<(), bollard::errors::Error>,
) -> Result<(), bollard::errors::Error> {
    match result {
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        other => other,
    }
}

mod convert;
mod logs;
#[cfg(test)]
mod tests;

use convert::*;
pub use convert::{hashmap, health_config, parse_ip};
use logs::log_frame;

/// The context folder as the tar `/build` takes, and its Dockerfile, off
/// the runtime's threads.
async fn pack_context(spec: &BuildSpec) -> Result<(String, Vec<u8>), EngineError> {
    let (context, dockerfile) = (spec.context.clone(), spec.dockerfile.clone());
    tokio::task::spawn_blocking(move || context::pack(&context, dockerfile.as_deref()))
        .await
        .map_err(|e| EngineError::Context {
            path: spec.context.display().to_string(),
            message: format!("packing the context failed: {e}"),
        })?
}

impl Engine for DockerEngine {
    fn info(&self) -> EngineFuture<'_, EngineInfo> {
        Box::pin(async move {
            let info = self.docker.info().await.map_err(self.err(
                "query",
                ObjectKind::Engine,
                &self.host,
            ))?;
            let v = self.docker.client_version();
            Ok(EngineInfo {
                operating_system: info.operating_system.unwrap_or_default(),
                server_version: info.server_version.unwrap_or_default(),
                api_version: format!("{}.{}", v.major_version, v.minor_version),
            })
        })
    }

    fn create_network<'a>(&'a self, spec: &'a NetworkSpec) -> EngineFuture<'a, NetworkInfo> {
        Box::pin(async move {
            let request = NetworkCreateRequest {
                name: spec.name.clone(),
                driver: Some(spec.driver.clone().unwrap_or_else(|| "bridge".into())),
                internal: Some(spec.internal),
                attachable: spec.attachable.then_some(true),
                enable_ipv6: spec.enable_ipv6.then_some(true),
                ipam: spec.ipam.as_ref().map(ipam),
                labels: Some(hashmap(&spec.labels)),
                ..Default::default()
            };
            self.docker.create_network(request).await.map_err(self.err(
                "create",
                ObjectKind::Network,
                &spec.name,
            ))?;
            match self.inspect_network(&spec.name).await? {
                Some(info) => Ok(info),
                None => Err(EngineError::NotFound {
                    kind: ObjectKind::Network,
                    name: spec.name.clone(),
                    message: "removed right after it was created".into(),
                }),
            }
        })
    }

    fn inspect_network<'a>(&'a self, name: &'a str) -> EngineFuture<'a, Option<NetworkInfo>> {
        Box::pin(async move {
            let result = self
                .docker
                .inspect_network(name, None)
                .await
                .map_err(self.err("inspect", ObjectKind::Network, name));
            // The engine also answers to an id prefix or a partial match;
            // cutover means the exact name only.
            Ok(optional(result)?
                .map(network_info)
                .filter(|n| n.name == name || n.id == name))
        })
    }

    fn list_networks<'a>(&'a self, filter: &'a LabelFilter) -> EngineFuture<'a, Vec<NetworkInfo>> {
        Box::pin(async move {
            let options = q::ListNetworksOptions {
                filters: Some(filter.to_docker_filters()),
            };
            let nets = self
                .docker
                .list_networks(Some(options))
                .await
                .map_err(self.err("list", ObjectKind::Network, ""))?;
            let mut out: Vec<NetworkInfo> = nets
                .into_iter()
                .map(|n| NetworkInfo {
                    id: n.id.unwrap_or_default(),
                    name: n.name.unwrap_or_default(),
                    driver: n.driver.unwrap_or_default(),
                    internal: n.internal.unwrap_or(false),
                    gateway: convert::gateway(n.ipam.as_ref()),
                    labels: btree(n.labels),
                    containers: Vec::new(),
                })
                .collect();
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
    }

    fn connect_network<'a>(
        &'a self,
        container: &'a str,
        attachment: &'a NetworkAttachment,
    ) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            let network = &attachment.network;
            let request = NetworkConnectRequest {
                container: container.to_owned(),
                endpoint_config: Some(endpoint(attachment)),
            };
            self.docker
                .connect_network(network, request)
                .await
                .map_err(self.err("connect to", ObjectKind::Network, network))
        })
    }

    fn disconnect_network<'a>(
        &'a self,
        network: &'a str,
        container: &'a str,
    ) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            let request = NetworkDisconnectRequest {
                container: container.to_owned(),
                force: Some(true),
            };
            self.docker
                .disconnect_network(network, request)
                .await
                .map_err(self.err("disconnect from", ObjectKind::Network, network))
        })
    }

    fn delete_network<'a>(&'a self, name: &'a str) -> EngineFuture<'a, Removal> {
        Box::pin(async move {
            removal(self.docker.remove_network(name).await.map_err(self.err(
                "remove",
                ObjectKind::Network,
                name,
            )))
        })
    }

    fn create_volume<'a>(&'a self, spec: &'a VolumeSpec) -> EngineFuture<'a, VolumeInfo> {
        Box::pin(async move {
            let request = VolumeCreateRequest {
                name: Some(spec.name.clone()),
                driver: spec.driver.clone(),
                driver_opts: (!spec.driver_opts.is_empty()).then(|| hashmap(&spec.driver_opts)),
                labels: Some(hashmap(&spec.labels)),
                ..Default::default()
            };
            let volume = self.docker.create_volume(request).await.map_err(self.err(
                "create",
                ObjectKind::Volume,
                &spec.name,
            ))?;
            Ok(volume_info(volume))
        })
    }

    fn inspect_volume<'a>(&'a self, name: &'a str) -> EngineFuture<'a, Option<VolumeInfo>> {
        Box::pin(async move {
            let result = self.docker.inspect_volume(name).await.map_err(self.err(
                "inspect",
                ObjectKind::Volume,
                name,
            ));
            Ok(optional(result)?.map(volume_info))
        })
    }

    fn list_volumes<'a>(&'a self, filter: &'a LabelFilter) -> EngineFuture<'a, Vec<VolumeInfo>> {
        Box::pin(async move {
            let options = q::ListVolumesOptions {
                filters: Some(filter.to_docker_filters()),
            };
            let list = self
                .docker
                .list_volumes(Some(options))
                .await
                .map_err(self.err("list", ObjectKind::Volume, ""))?;
            let mut out: Vec<VolumeInfo> = list
                .volumes
                .unwrap_or_default()
                .into_iter()
                .map(volume_info)
                .collect();
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
    }

    fn remove_volume<'a>(&'a self, name: &'a str) -> EngineFuture<'a, Removal> {
        Box::pin(async move {
            removal(
                self.docker
                    .remove_volume(name, None::<q::RemoveVolumeOptions>)
                    .await
                    .map_err(self.err("remove", ObjectKind::Volume, name)),
            )
        })
    }

    fn inspect_image<'a>(&'a self, reference: &'a str) -> EngineFuture<'a, Option<ImageInfo>> {
        Box::pin(async move {
            let result = self.docker.inspect_image(reference).await.map_err(self.err(
                "inspect",
                ObjectKind::Image,
                reference,
            ));
            Ok(optional(result)?.map(|image| ImageInfo {
                id: image.id.unwrap_or_default(),
                tags: image.repo_tags.unwrap_or_default(),
                labels: btree(image.config.and_then(|c| c.labels)),
            }))
        })
    }

    fn check_pullable<'a>(
        &'a self,
        reference: &'a str,
        auth: Option<&'a cutover_core::registry::RegistryAuth>,
    ) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            self.docker
                .inspect_registry_image(reference, auth.map(|a| credentials(reference, a)))
                .await
                .map(|_| ())
                .map_err(|e| EngineError::Pull {
                    image: reference.to_owned(),
                    message: e.to_string(),
                })
        })
    }

    fn pull_image<'a>(
        &'a self,
        reference: &'a str,
        auth: Option<&'a cutover_core::registry::RegistryAuth>,
    ) -> EngineFuture<'a, ImageInfo> {
        Box::pin(async move {
            let (image, tag) = split_reference(reference);
            let options = q::CreateImageOptions {
                from_image: Some(image.to_owned()),
                tag: Some(tag.to_owned()),
                ..Default::default()
            };
            // As the X-Registry-Auth header `docker pull` sends.
            let credentials = auth.map(|a| credentials(reference, a));
            let mut progress = self.docker.create_image(Some(options), None, credentials);
            while let Some(item) = progress.next().await {
                if let Err(err) = item {
                    let err = EngineError::from_bollard(
                        err,
                        &self.host,
                        "pull",
                        ObjectKind::Image,
                        reference,
                    );
                    return Err(match err {
                        EngineError::Unreachable { .. } => err,
                        other => EngineError::Pull {
                            image: reference.to_owned(),
                            message: match other {
                                EngineError::NotFound { message, .. }
                                | EngineError::Api { message, .. }
                                | EngineError::Transport { message, .. } => message,
                                other => other.to_string(),
                            },
                        },
                    });
                }
            }
            self.inspect_image(reference)
                .await?
                .ok_or_else(|| EngineError::Pull {
                    image: reference.to_owned(),
                    message: "the pull ended but the image is not there".into(),
                })
        })
    }

    fn build_image<'a>(&'a self, spec: &'a BuildSpec) -> EngineFuture<'a, BuildOutput> {
        Box::pin(async move {
            let (dockerfile, tar) = match &spec.packed {
                // The client checked its Dockerfile when it packed it.
                Some(tar) => (
                    spec.dockerfile.as_ref().map_or_else(
                        || "Dockerfile".to_owned(),
                        |d| d.to_string_lossy().into_owned(),
                    ),
                    tokio::fs::read(tar)
                        .await
                        .map_err(|e| EngineError::Context {
                            path: spec.context.display().to_string(),
                            message: format!(
                                "the uploaded context {} cannot be read: {e}",
                                tar.display()
                            ),
                        })?,
                ),
                None => pack_context(spec).await?,
            };
            let options = q::BuildImageOptions {
                dockerfile,
                t: Some(spec.tag.clone()),
                buildargs: (!spec.build_args.is_empty()).then(|| hashmap(&spec.build_args)),
                labels: (!spec.labels.is_empty()).then(|| hashmap(&spec.labels)),
                target: spec.target.clone().unwrap_or_default(),
                pull: spec.pull.then(|| "1".to_owned()),
                nocache: spec.no_cache,
                networkmode: spec.network_mode.clone(),
                rm: true,
                forcerm: true,
                ..Default::default()
            };
            let mut log: Vec<String> = Vec::new();
            let mut partial = String::new();
            let mut image_id = None;
            let mut stream = self.docker.build_image(
                options,
                None,
                Some(bollard::body_full(bytes::Bytes::from(tar))),
            );
            while let Some(item) = stream.next().await {
                match item {
                    Ok(info) => {
                        if let Some(text) = info.stream {
                            partial.push_str(&text);
                            while let Some(pos) = partial.find('\n') {
                                let line: String = partial.drain(..=pos).collect();
                                log.push(line.trim_end().to_owned());
                            }
                        }
                        if let Some(id) = info.aux.and_then(|aux| aux.id) {
                            image_id = Some(id);
                        }
                    }
                    Err(err) => {
                        if !partial.trim().is_empty() {
                            log.push(partial.trim_end().to_owned());
                        }
                        let message = match err {
                            bollard::errors::Error::DockerStreamError { error } => error,
                            other => {
                                let sorted = EngineError::from_bollard(
                                    other,
                                    &self.host,
                                    "build",
                                    ObjectKind::Image,
                                    &spec.tag,
                                );
                                if sorted.is_unreachable() {
                                    return Err(sorted);
                                }
                                sorted.to_string()
                            }
                        };
                        let skip = log.len().saturating_sub(20);
                        return Err(EngineError::Build {
                            tag: spec.tag.clone(),
                            message: message.trim().to_owned(),
                            log_tail: log.split_off(skip),
                        });
                    }
                }
            }
            if !partial.trim().is_empty() {
                log.push(partial.trim_end().to_owned());
            }
            let image_id = match image_id {
                Some(id) => id,
                // Older engines only print "Successfully built <id>".
                None => self
                    .inspect_image(&spec.tag)
                    .await?
                    .map(|i| i.id)
                    .ok_or_else(|| EngineError::Build {
                        tag: spec.tag.clone(),
                        message: "the build ended without producing the image".into(),
                        log_tail: log.clone(),
                    })?,
            };
            Ok(BuildOutput { image_id, log })
        })
    }

    fn create_container<'a>(&'a self, spec: &'a ContainerSpec) -> EngineFuture<'a, String> {
        Box::pin(async move {
            spec.validate()
                .map_err(|message| EngineError::InvalidSpec {
                    name: spec.name.clone(),
                    message,
                })?;
            // The engine accepts a created container on a network that does
            // not exist and fails only at start; refuse up front instead.
            for net in &spec.networks {
                if self.inspect_network(&net.network).await?.is_none() {
                    return Err(EngineError::NotFound {
                        kind: ObjectKind::Network,
                        name: net.network.clone(),
                        message: format!(
                            "container {} is to join network {}, which does not exist",
                            spec.name, net.network
                        ),
                    });
                }
            }
            let options = q::CreateContainerOptions {
                name: Some(spec.name.clone()),
                ..Default::default()
            };
            let created = self
                .docker
                .create_container(Some(options), create_body(spec))
                .await
                .map_err(self.err("create", ObjectKind::Container, &spec.name))?;
            for warning in &created.warnings {
                tracing::warn!(container = %spec.name, "engine: {warning}");
            }
            // A half-wired container must not stay behind.
            let wired = async {
                for net in spec.networks.iter().skip(1) {
                    self.connect_network(&created.id, net).await?;
                }
                self.copy_files(&created.id, &spec.name, &spec.files).await
            };
            if let Err(err) = wired.await {
                if let Err(cleanup) = self.remove_container(&created.id).await {
                    tracing::warn!(container = %spec.name, "removing a half-created container: {cleanup}");
                }
                return Err(err);
            }
            Ok(created.id)
        })
    }

    fn start_container<'a>(&'a self, name: &'a str) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            not_modified_ok(self.docker.start_container(name, None).await).map_err(self.err(
                "start",
                ObjectKind::Container,
                name,
            ))
        })
    }

    fn stop_container<'a>(&'a self, name: &'a str, grace: Duration) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            let secs = i32::try_from(grace.as_millis().div_ceil(1000)).unwrap_or(i32::MAX);
            let options = q::StopContainerOptions {
                t: Some(secs),
                signal: None,
            };
            // The engine answers only once the container is down, which may
            // take the whole grace period.
            let docker = if grace + Duration::from_secs(30) > REQUEST_TIMEOUT {
                self.docker
                    .clone()
                    .with_timeout(grace + Duration::from_secs(30))
            } else {
                self.docker.clone()
            };
            not_modified_ok(docker.stop_container(name, Some(options)).await).map_err(self.err(
                "stop",
                ObjectKind::Container,
                name,
            ))
        })
    }

    fn remove_container<'a>(&'a self, name: &'a str) -> EngineFuture<'a, Removal> {
        Box::pin(async move {
            let options = q::RemoveContainerOptions {
                force: true,
                v: true,
                link: false,
            };
            let result = self
                .docker
                .remove_container(name, Some(options))
                .await
                .map_err(self.err("remove", ObjectKind::Container, name));
            match result {
                // Already being removed (by an earlier call or auto-remove):
                // it will be gone without us.
                Err(EngineError::Conflict { message, .. })
                    if message.contains("already in progress") =>
                {
                    Ok(Removal::Removed)
                }
                other => removal(other),
            }
        })
    }

    fn rename_container<'a>(&'a self, name: &'a str, new_name: &'a str) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            let options = q::RenameContainerOptions {
                name: new_name.to_owned(),
            };
            self.docker
                .rename_container(name, options)
                .await
                .map_err(self.err("rename", ObjectKind::Container, name))
        })
    }

    fn inspect_container<'a>(&'a self, name: &'a str) -> EngineFuture<'a, Option<ContainerInfo>> {
        Box::pin(async move {
            let result = self
                .docker
                .inspect_container(name, None)
                .await
                .map_err(self.err("inspect", ObjectKind::Container, name));
            Ok(optional(result)?.map(container_info))
        })
    }

    fn list_containers<'a>(
        &'a self,
        filter: &'a LabelFilter,
    ) -> EngineFuture<'a, Vec<ContainerSummary>> {
        Box::pin(async move {
            let options = q::ListContainersOptions {
                all: true,
                filters: Some(filter.to_docker_filters()),
                ..Default::default()
            };
            let list = self
                .docker
                .list_containers(Some(options))
                .await
                .map_err(self.err("list", ObjectKind::Container, ""))?;
            let mut out: Vec<ContainerSummary> = list
                .into_iter()
                .map(|c| ContainerSummary {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .names
                        .and_then(|n| n.into_iter().next())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_owned(),
                    image: c.image.unwrap_or_default(),
                    labels: btree(c.labels),
                    state: c
                        .state
                        .map(|s| ContainerState::parse(s.as_ref()))
                        .unwrap_or(ContainerState::Unknown),
                    status: c.status.unwrap_or_default(),
                })
                .collect();
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
    }

    fn logs_tail<'a>(&'a self, name: &'a str, lines: usize) -> EngineFuture<'a, Vec<LogLine>> {
        Box::pin(async move {
            let options = LogOptions {
                tail: lines,
                ..LogOptions::default()
            };
            self.logs(name, &options).try_collect().await
        })
    }

    fn logs(&self, name: &str, options: &LogOptions) -> LogStream {
        self.log_stream(name, options)
    }

    fn exec<'a>(&'a self, container: &'a str, argv: &'a [String]) -> EngineFuture<'a, ExecOutput> {
        Box::pin(async move {
            let config = bollard::models::ExecConfig {
                cmd: Some(argv.to_vec()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            };
            let created = self
                .docker
                .create_exec(container, config)
                .await
                .map_err(self.err("exec in", ObjectKind::Container, container))?;
            let started = self
                .docker
                .start_exec(&created.id, None)
                .await
                .map_err(self.err("start", ObjectKind::Exec, &created.id))?;
            let mut splitter = LineSplitter::default();
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            if let bollard::exec::StartExecResults::Attached { mut output, .. } = started {
                while let Some(chunk) = output.next().await {
                    let chunk =
                        chunk.map_err(self.err("read output of", ObjectKind::Exec, &created.id))?;
                    let (source, bytes) = log_frame(chunk);
                    for line in splitter.push(source, &bytes) {
                        match line.source {
                            LogSource::Stdout => stdout.push(line.text),
                            LogSource::Stderr => stderr.push(line.text),
                        }
                    }
                }
            }
            for line in splitter.finish() {
                match line.source {
                    LogSource::Stdout => stdout.push(line.text),
                    LogSource::Stderr => stderr.push(line.text),
                }
            }
            let inspect = self
                .docker
                .inspect_exec(&created.id)
                .await
                .map_err(self.err("inspect", ObjectKind::Exec, &created.id))?;
            Ok(ExecOutput {
                exit_code: inspect.exit_code.unwrap_or(-1),
                stdout: stdout.join("\n"),
                stderr: stderr.join("\n"),
            })
        })
    }
}

/// `name[:tag]` (or `name@digest`) into what the create-image call takes.
fn split_reference(reference: &str) -> (&str, &str) {
    if let Some((name, digest)) = reference.split_once('@') {
        return (name, digest);
    }
    // A colon after the last slash is a tag; before it, a registry port.
    let last_slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            &reference[last_slash + i + 1..],
        ),
        None => (reference, "latest"),
    }
}
