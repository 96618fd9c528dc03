//! The deploy engine inside the daemon: runs blue/green deploys, rollbacks
//! and `down` against Docker (through [`cutover_docker::Engine`]) and the
//! in-process proxy (through [`cutover_proxy::Proxy`]), streams progress as
//! NDJSON, and keeps what a rollback and crash recovery need in the state dir.
//!
//! Naming: an app's two slots are `<project>-<service>-blue|green`. A
//! retired version stays, stopped, under its slot name until that slot is
//! needed again; it is then renamed `<project>-<service>-<version_id>` (even
//! while it still drains: a rename keeps the container's id, address and
//! connections) or removed when it is past `keep`. The proxy service of an
//! app is `<project>/<service>`.
#![forbid(unsafe_code)]

pub mod api;
pub mod down;
pub mod events;
pub mod executor;
pub mod history;
pub mod journal;
pub mod lock;
pub mod maintenance;
pub mod observe;
pub mod operations;
pub mod owner;
pub mod reconcile;
pub mod releases;
pub mod replicas;
pub mod retire;
pub mod rollback;
pub mod specs;
mod stage;
pub mod stages;
pub mod status;
pub mod store;
pub mod swarm;
pub mod uploads;

use cutover_core::diag::Report;
use cutover_core::sync::lock;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cutover_docker::{container_address, ContainerInfo, Engine, EngineError, Reachability};
use cutover_proxy::Proxy;
use tokio_util::task::TaskTracker;

pub use api::router;

/// Resolves the address the proxy sends an app container's traffic to.
pub type AddressFn =
    Arc<dyn Fn(&ContainerInfo, &str, u16) -> Result<SocketAddr, String> + Send + Sync>;

/// Called after the engine changed the proxy's routes (a switch, a route
/// update, a `down`, a reconcile), e.g. to persist the proxy's state file.
pub type RoutesChanged =
    Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;

/// How the daemon reaches app containers.
#[derive(Clone)]
pub enum Addressing {
    /// Ask the engine once (Docker Desktop cannot route to container IPs).
    Detect,
    Fixed(Reachability),
    /// Tests: map containers to in-process origins on loopback.
    Custom(AddressFn),
}

/// The engine of deploys; cheap to clone, clones share everything.
#[derive(Clone)]
pub struct DeployEngine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub engine: Arc<dyn Engine>,
    pub proxy: Proxy,
    pub owner: Arc<owner::Owner>,
    pub state_dir: PathBuf,
    pub locks: lock::Locks,
    pub releases: releases::Releases,
    pub stages: stages::Stages,
    pub history: history::History,
    pub journal: journal::Journal,
    /// Operations run here, not in the HTTP handler: a client that
    /// disconnects does not cancel its deploy.
    pub tasks: TaskTracker,
    pub retirements: retire::Retirements,
    /// Operations by id, for `wait` and retried deploys.
    pub operations: operations::Operations,
    pub uploads: uploads::Uploads,
    addressing: Mutex<Addressing>,
    routes_changed: Mutex<Option<RoutesChanged>>,
    /// Set while the daemon hands over to a successor: no new operation.
    pub paused: std::sync::atomic::AtomicBool,
}

impl DeployEngine {
    /// `owner` is the daemon's identity ([`owner::Owner::load`] of its
    /// state dir): what the engine creates is labelled with it, and what
    /// another daemon owns is never touched.
    pub fn new(
        engine: Arc<dyn Engine>,
        proxy: Proxy,
        state_dir: PathBuf,
        owner: Arc<owner::Owner>,
    ) -> DeployEngine {
        DeployEngine {
            inner: Arc::new(Inner {
                engine,
                proxy,
                owner,
                locks: lock::Locks::default(),
                releases: releases::Releases::new(&state_dir),
                stages: stages::Stages::new(&state_dir),
                history: history::History::new(&state_dir),
                journal: journal::Journal::new(&state_dir),
                uploads: uploads::Uploads::new(&state_dir),
                state_dir,
                tasks: TaskTracker::new(),
                retirements: retire::Retirements::default(),
                operations: operations::Operations::default(),
                addressing: Mutex::new(Addressing::Detect),
                routes_changed: Mutex::new(None),
                paused: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    pub fn with_addressing(self, addressing: Addressing) -> DeployEngine {
        *lock(&self.inner.addressing) = addressing;
        self
    }

    /// Runs `hook` after every change of the proxy's routes this engine
    /// makes, so the daemon can persist the proxy's state at once rather
    /// than at shutdown.
    pub fn on_routes_changed(self, hook: RoutesChanged) -> DeployEngine {
        *lock(&self.inner.routes_changed) = Some(hook);
        self
    }

    pub fn proxy(&self) -> &Proxy {
        &self.inner.proxy
    }

    pub fn state_dir(&self) -> &std::path::Path {
        &self.inner.state_dir
    }

    /// Operations still running (the daemon waits for them at shutdown).
    pub fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    /// Refuses new operations (a handoff to a successor daemon is under
    /// way) and waits, up to `bound`, for the running ones to end. Returns
    /// whether they did; the caller resumes or hands over.
    pub async fn pause(&self, bound: std::time::Duration) -> bool {
        use std::sync::atomic::Ordering;
        self.inner.paused.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + bound;
        while !self.inner.tasks.is_empty() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        true
    }

    /// Takes operations again after a handoff that did not happen.
    pub fn resume(&self) {
        self.inner
            .paused
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Old colors draining before their stop.
    pub fn retirements(&self) -> &retire::Retirements {
        &self.inner.retirements
    }
}

impl Inner {
    /// The project's containers as this daemon sees them: with their
    /// release records and whether each is retiring.
    pub(crate) async fn project_containers(
        &self,
        project: &str,
    ) -> Result<observe::Observation, EngineError> {
        observe::project_containers(
            &*self.engine,
            project,
            &self.releases,
            &self.stages,
            &self.retirements,
        )
        .await
    }

    pub(crate) async fn routes_changed(&self) {
        let hook = lock(&self.routes_changed).clone();
        if let Some(hook) = hook {
            hook().await;
        }
    }

    /// Whether app ports must be published on loopback for the daemon.
    pub(crate) async fn reachability(&self) -> Result<Option<Reachability>, EngineError> {
        let current = lock(&self.addressing).clone();
        match current {
            Addressing::Fixed(r) => Ok(Some(r)),
            Addressing::Custom(_) => Ok(None),
            Addressing::Detect => {
                let r = Reachability::detect(&self.engine.info().await?);
                *lock(&self.addressing) = Addressing::Fixed(r);
                Ok(Some(r))
            }
        }
    }

    /// The gateways of the networks `spec` is on or calls apps on; none
    /// when the daemon cannot be reached from the networks (see
    /// [`specs::Gateways`]).
    pub(crate) async fn gateways(
        &self,
        spec: &cutover_core::compose::ServiceSpec,
    ) -> Result<specs::Gateways, Report> {
        let mut out = specs::Gateways::default();
        if let Some(Reachability::PublishedLoopback) =
            self.reachability().await.map_err(Report::from)?
        {
            return Ok(out);
        }
        let names = spec
            .networks
            .iter()
            .map(|n| &n.name)
            .chain(spec.app_hosts.values());
        for name in names {
            if out.0.contains_key(name) {
                continue;
            }
            let info = self
                .engine
                .inspect_network(name)
                .await
                .map_err(Report::from)?;
            if let Some(ip) = info.and_then(|n| n.gateway) {
                out.0.insert(name.clone(), ip);
            }
        }
        Ok(out)
    }

    /// Where the proxy reaches `info`, a container of `app`. Always taken on
    /// the first network the app lists, so that reconcile and a route update
    /// agree with the deploy that routed it.
    pub(crate) async fn app_address(
        &self,
        info: &ContainerInfo,
        app: &cutover_core::compose::AppSpec,
    ) -> Result<SocketAddr, Report> {
        let network = app
            .service
            .networks
            .first()
            .map(|n| n.name.as_str())
            .unwrap_or_default();
        self.address(info, network, app.cutover.port).await
    }

    /// Where the proxy reaches each replica of the color whose first
    /// container is `first`, first first.
    pub(crate) async fn app_targets(
        &self,
        first: &ContainerInfo,
        app: &cutover_core::compose::AppSpec,
    ) -> Result<Vec<SocketAddr>, Report> {
        let mut out = vec![self.app_address(first, app).await?];
        let followers = replicas::followers(&*self.engine, first)
            .await
            .map_err(Report::from)?;
        for f in &followers {
            out.push(self.app_address(f, app).await?);
        }
        Ok(out)
    }

    pub(crate) async fn address(
        &self,
        info: &ContainerInfo,
        network: &str,
        port: u16,
    ) -> Result<SocketAddr, Report> {
        let custom = match &*lock(&self.addressing) {
            Addressing::Custom(f) => Some(f.clone()),
            _ => None,
        };
        if let Some(f) = custom {
            return f(info, network, port).map_err(Report::new);
        }
        let how = self
            .reachability()
            .await
            .map_err(Report::from)?
            .unwrap_or(Reachability::ContainerIp);
        container_address(info, network, port, how).map_err(Report::from)
    }
}

#[cfg(test)]
mod tests;
