//! The deploy engine on a Docker Swarm (`cutover serve --engine swarm`):
//! the same deploy command as on one host, run against a manager's engine,
//! with every node's cutover edge switched together (docs/swarm.md).
//!
//! What it builds on: [`cutover_swarm::Cluster`] for services and tasks,
//! [`cutover_docker::Engine`] for the overlay networks, and each node's
//! edge, reached over the edge network ([`edges`]). The rule of the switch
//! is `cutover_core::fleet`'s.

mod cutover;
mod deploy;
mod down;
pub mod edges;
mod files;
mod gateways;
pub(crate) mod history;
mod hooks;
mod kept;
mod logs;
mod maintenance;
mod plan;
mod reconcile;
mod rollback;
pub(crate) mod specs;
mod stage;
mod status;
mod switch;
mod volumes;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use cutover_core::diag::Report;
use cutover_core::maintenance::{MaintenanceCommand, MaintenanceState};
use cutover_core::plan::Plan;
use cutover_core::progress::{
    DeployCommand, DownCommand, LogsQuery, Outcome, RollbackCommand, StageCommand,
};
use cutover_docker::Engine;
use cutover_swarm::Cluster;
use futures_util::stream::BoxStream;
use tokio_util::task::TaskTracker;

use crate::api::{self, error, Operator};
use crate::events::{Progress, Receiver};
use crate::executor::{lock_timeout, open, Operation, Stop};
use crate::history::{record_operation, Entry, History};
use crate::lock::{Holder, Locks};
use crate::operations::Operations;
use crate::stage::End;
pub use edges::{EdgeSettings, EdgeTls};

/// How long an operation waits for a reconcile pass on its project: one
/// gate of one node, in the worst case the app's deploy timeout.
const RECONCILE_WAIT: Duration = Duration::from_secs(120);

/// Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct SwarmEngine {
    inner: Arc<Inner>,
}

struct Inner {
    cluster: Arc<dyn Cluster>,
    /// The manager's engine, for the overlay networks.
    engine: Arc<dyn Engine>,
    edges: EdgeSettings,
    /// One operation per project (deploy, rollback), as on one host.
    locks: Locks,
    /// Held by an operation and by a reconcile pass while they change the
    /// edges' routes of a project; the pass never waits for it.
    routes: Locks,
    operations: Operations,
    /// In the swarm's raft store (`history.rs`), so a failover keeps it.
    history: History,
    tasks: TaskTracker,
}

impl Operator for SwarmEngine {
    fn deploy(&self, cmd: DeployCommand) -> Receiver {
        SwarmEngine::deploy(self, cmd)
    }

    fn rollback(&self, project: String, cmd: RollbackCommand) -> Receiver {
        SwarmEngine::rollback(self, project, cmd)
    }

    fn down(&self, project: String, cmd: DownCommand) -> Receiver {
        SwarmEngine::down(self, project, cmd)
    }

    fn promote(&self, project: String, cmd: StageCommand) -> Receiver {
        SwarmEngine::end_stage(self, project, cmd, End::Promote)
    }

    fn abort(&self, project: String, cmd: StageCommand) -> Receiver {
        SwarmEngine::end_stage(self, project, cmd, End::Abort)
    }

    fn follow(&self, project: &str, id: &str) -> Option<Receiver> {
        self.inner.operations.follow(project, id)
    }

    async fn maintenance(
        &self,
        project: &str,
        cmd: MaintenanceCommand,
    ) -> Result<Vec<MaintenanceState>, Report> {
        maintenance::maintenance(&self.inner, project, cmd).await
    }

    async fn plan(&self, cmd: &DeployCommand) -> Result<Plan, Stop> {
        plan::plan(&self.inner, cmd).await
    }

    async fn history(&self, project: &str, service: Option<&str>) -> Result<Vec<Entry>, Report> {
        self.inner.history.read(project, service).await
    }

    async fn logs(
        &self,
        project: &str,
        q: &LogsQuery,
    ) -> Result<BoxStream<'static, Bytes>, Report> {
        logs::logs(&self.inner, project, q).await
    }
}

impl SwarmEngine {
    pub fn new(
        cluster: Arc<dyn Cluster>,
        engine: Arc<dyn Engine>,
        edges: EdgeSettings,
        state_dir: &std::path::Path,
    ) -> SwarmEngine {
        SwarmEngine {
            inner: Arc::new(Inner {
                history: History::on_swarm(state_dir, cluster.clone()),
                cluster,
                engine,
                edges,
                locks: Locks::default(),
                routes: Locks::default(),
                operations: Operations::default(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// Brings every live node's edge to the current routes every `period`
    /// (`reconcile.rs` says what that is), until the daemon exits.
    pub fn start_reconciler(&self, period: Duration) {
        let inner = self.inner.clone();
        self.inner.tasks.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                for line in reconcile::pass(&inner).await {
                    tracing::info!("reconciled {line}");
                }
            }
        });
    }

    /// Starts a deploy in a daemon-owned task, under the project's lock;
    /// the receiver streams its progress and ends with `Finished`.
    pub fn deploy(&self, cmd: DeployCommand) -> Receiver {
        let op = Operation {
            project: cmd.project.name.clone(),
            name: "deploy",
            version: cmd.version.clone(),
            ok_recorded_per_app: true,
            adopt: false,
            id: cmd.deploy_id.clone(),
        };
        let wait_lock = cmd.wait_lock;
        self.spawn_exclusive(op, wait_lock, |inner, p| async move {
            deploy::deploy(&inner, &cmd, &p).await
        })
    }

    /// Starts a rollback to the version kept at 0 tasks, as
    /// [`SwarmEngine::deploy`] does a deploy.
    pub fn rollback(&self, project: String, cmd: RollbackCommand) -> Receiver {
        let op = Operation {
            project: project.clone(),
            name: "rollback",
            version: cmd.to.clone(),
            ok_recorded_per_app: true,
            adopt: false,
            id: None,
        };
        let wait_lock = cmd.wait_lock;
        self.spawn_exclusive(op, wait_lock, |inner, p| async move {
            rollback::rollback(&inner, &project, &cmd, &p).await
        })
    }

    /// Starts a `down` of the project, as [`SwarmEngine::deploy`] does a
    /// deploy.
    pub fn down(&self, project: String, cmd: DownCommand) -> Receiver {
        let op = Operation {
            project: project.clone(),
            name: "down",
            version: None,
            ok_recorded_per_app: false,
            adopt: false,
            id: None,
        };
        let wait_lock = cmd.wait_lock;
        self.spawn_exclusive(op, wait_lock, |inner, p| async move {
            down::down(&inner, &project, &cmd, &p).await
        })
    }

    /// Starts a `promote` or `abort` of the project's stages, as
    /// [`SwarmEngine::deploy`] does a deploy.
    fn end_stage(&self, project: String, cmd: StageCommand, end: End) -> Receiver {
        let op = end.operation(&project);
        let wait_lock = cmd.wait_lock;
        self.spawn_exclusive(op, wait_lock, move |inner, p| async move {
            stage::end(&inner, &project, &cmd, end, &p).await
        })
    }

    /// Runs `work` in a daemon task (a client that goes away does not stop
    /// it) under the project's lock, and returns its progress stream.
    fn spawn_exclusive<W, F>(&self, op: Operation, wait_lock: Duration, work: W) -> Receiver
    where
        W: FnOnce(Arc<Inner>, Arc<Progress>) -> F + Send + 'static,
        F: Future<Output = Result<(Outcome, Report), Stop>> + Send + 'static,
    {
        let (p, rx) = match open(&self.inner.operations, &op) {
            Ok(opened) => opened,
            Err(rx) => return rx,
        };
        let p = Arc::new(p);
        let inner = self.inner.clone();
        self.inner.tasks.spawn(async move {
            let started = tokio::time::Instant::now();
            let holder = Holder {
                operation: op.name.into(),
                version: op.version.clone(),
                since: SystemTime::now(),
            };
            let guard = inner
                .locks
                .acquire(&op.project, holder.clone(), wait_lock, |h| {
                    p.warn(format!("project {} is locked by {h}; waiting", op.project))
                })
                .await;
            let result = match guard {
                Ok(_guard) => {
                    // A reconcile pass bringing a node over holds the
                    // project's routes for one gate; an operation waits for
                    // it rather than fail as if another deploy ran.
                    match inner
                        .routes
                        .acquire(&op.project, holder, RECONCILE_WAIT, |_| {})
                        .await
                    {
                        Ok(_routes) => work(inner.clone(), p.clone()).await,
                        Err(h) => Err(Stop {
                            outcome: Outcome::LockTimeout,
                            report: lock_timeout(&op.project, h, RECONCILE_WAIT),
                            recorded: false,
                        }),
                    }
                }
                Err(h) => Err(Stop {
                    outcome: Outcome::LockTimeout,
                    report: lock_timeout(&op.project, h, wait_lock),
                    recorded: false,
                }),
            };
            // An app's cutover records its own line; the rest (a down, a
            // deploy that ended before any app) is the operation's.
            let (outcome, report, recorded) = match result {
                Ok((o, r)) => (o, r, op.ok_recorded_per_app && o == Outcome::Ok),
                Err(s) => (s.outcome, s.report, s.recorded),
            };
            if !recorded {
                let ended = (outcome, &report);
                let (project, name) = (&op.project, op.name);
                record_operation(
                    &inner.history,
                    &p,
                    project,
                    name,
                    op.version,
                    ended,
                    started,
                )
                .await;
            }
            p.finish(outcome, report);
        });
        rx
    }

    /// The deploy engine's routes a Swarm has; the others answer 501.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/cluster", get(cluster))
            .route(
                "/v1/projects/{project}/deploy",
                post(api::deploy::<SwarmEngine>),
            )
            .route(
                "/v1/projects/{project}/down",
                post(api::down::<SwarmEngine>),
            )
            .route(
                "/v1/projects/{project}/plan",
                post(api::plan::<SwarmEngine>),
            )
            .route(
                "/v1/projects/{project}/rollback",
                post(api::rollback::<SwarmEngine>),
            )
            .route(
                "/v1/projects/{project}/promote",
                post(api::promote::<SwarmEngine>),
            )
            .route(
                "/v1/projects/{project}/abort",
                post(api::abort::<SwarmEngine>),
            )
            .route(
                "/v1/projects/{project}/operations/{id}",
                get(api::follow::<SwarmEngine>),
            )
            .route(
                "/v1/projects/{project}/history",
                get(api::history::<SwarmEngine>),
            )
            .route("/v1/projects/{project}/logs", get(api::logs::<SwarmEngine>))
            .route(
                "/v1/projects/{project}/maintenance",
                post(api::maintenance::<SwarmEngine>),
            )
            .route(
                "/v1/projects/{project}/{*rest}",
                axum::routing::any(not_on_swarm),
            )
            .with_state(self.clone())
    }
}

async fn cluster(State(engine): State<SwarmEngine>) -> Response {
    match status::cluster(&engine.inner).await {
        Ok(status) => axum::Json(status).into_response(),
        Err(report) => error(StatusCode::BAD_GATEWAY, report),
    }
}

async fn not_on_swarm(Path((project, rest)): Path<(String, String)>) -> Response {
    error(
        StatusCode::NOT_IMPLEMENTED,
        Report::new(format!(
            "{rest} of project {project} is not built for a Swarm yet"
        ))
        .hint(
            "a Swarm deploy engine runs `cutover deploy`; docs/swarm.md lists what else is there",
        ),
    )
}
