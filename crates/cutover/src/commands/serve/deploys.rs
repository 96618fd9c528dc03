//! The deploy engine of `cutover serve`, created when Docker first answers:
//! at start, or at the first deploy request after Docker came up. Until then
//! the daemon runs as a proxy only and deploy requests get a 503 that says
//! why. With `--engine swarm` it is the Swarm deploy engine, which switches
//! every node's edge instead of this daemon's own proxy.

use std::sync::Arc;

use cutover_core::diag::Report;
use cutover_deploy::owner::Owner;
use cutover_deploy::swarm::{EdgeSettings, SwarmEngine};
use cutover_deploy::DeployEngine;
use cutover_docker::DockerEngine;
use cutover_proxy::admin::{Admin, ApiError};

use crate::settings::EngineKind;

#[derive(Clone)]
pub(super) struct Deploys {
    admin: Admin,
    state_dir: std::path::PathBuf,
    owner: Arc<Owner>,
    /// Started by a handoff: the predecessor still stops its old colors.
    after_handoff: bool,
    kind: EngineKind,
    /// The one-host engine (`None` on a Swarm) and the routes it serves.
    engine: Arc<tokio::sync::OnceCell<(Option<DeployEngine>, axum::Router)>>,
}

impl Deploys {
    pub(super) fn new(
        admin: &Admin,
        state_dir: &std::path::Path,
        owner: Arc<Owner>,
        after_handoff: bool,
        kind: EngineKind,
    ) -> Deploys {
        Deploys {
            admin: admin.clone(),
            state_dir: state_dir.to_path_buf(),
            owner,
            after_handoff,
            kind,
            engine: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// Connects to Docker (where DOCKER_HOST says) and reconciles what a
    /// previous run left half-done; concurrent callers share one attempt.
    pub(super) async fn connect(&self) -> Result<&(Option<DeployEngine>, axum::Router), Report> {
        self.engine
            .get_or_try_init(|| async {
                let docker = DockerEngine::connect().await?;
                tracing::info!(docker = docker.host(), "connected to Docker");
                if let EngineKind::Swarm(edges) = &self.kind {
                    return swarm(docker, edges.clone(), &self.state_dir).await;
                }
                // A switch is saved when it happens, not at shutdown: a daemon
                // that is killed right after a deploy restarts on the new color.
                let admin = self.admin.clone();
                let engine = DeployEngine::new(
                    Arc::new(docker),
                    self.admin.proxy().clone(),
                    self.state_dir.clone(),
                    self.owner.clone(),
                )
                .on_routes_changed(Arc::new(move || {
                    let admin = admin.clone();
                    Box::pin(async move {
                        if let Err(e) = admin.persist().await {
                            tracing::error!(error = %e, "cannot save the state after a route change; the change is live but a restart would lose it");
                        }
                    })
                }));
                let report = if self.after_handoff {
                    engine.reconcile_after_handoff().await
                } else {
                    engine.reconcile().await
                };
                for warning in &report.warnings {
                    tracing::warn!("{warning}");
                }
                if !report.cleaned.is_empty() || !report.routes.is_empty() {
                    tracing::info!(cleaned = ?report.cleaned, routes = ?report.routes, "reconciled the deployed projects");
                }
                let router = cutover_deploy::router(engine.clone()).fallback(no_project_route);
                Ok((Some(engine), router))
            })
            .await
    }

    pub(super) fn engine(&self) -> Option<&DeployEngine> {
        self.engine.get().and_then(|(engine, _)| engine.as_ref())
    }

    /// The `/v1/projects` routes, forwarded to the deploy engine's router.
    pub(super) fn router(&self) -> axum::Router {
        use axum::routing::any;
        let router = axum::Router::new();
        // Only a Swarm engine has a cluster; on a host the route is
        // unknown, even while Docker is down (status tells them apart).
        let router = match self.kind {
            EngineKind::Swarm(_) => router.route("/v1/cluster", any(forward)),
            EngineKind::Docker => router,
        };
        router
            .route("/v1/projects", any(forward))
            .route("/v1/projects/{*rest}", any(forward))
            .route("/v1/build-contexts/{*rest}", any(forward))
            .with_state(self.clone())
    }
}

/// How often the Swarm deploy engine brings the edges to the current
/// routes: a node that comes back serves stale routes for at most this
/// long (plus one gate), and each pass asks every edge and the manager.
const RECONCILE_PERIOD: std::time::Duration = std::time::Duration::from_secs(2);

/// The Swarm deploy engine, on a manager's engine.
async fn swarm(
    docker: DockerEngine,
    edges: EdgeSettings,
    state_dir: &std::path::Path,
) -> Result<(Option<DeployEngine>, axum::Router), Report> {
    let engine: Arc<dyn cutover_docker::Engine> = Arc::new(docker.clone());
    let cluster = cutover_swarm::DockerSwarm::new(docker).await?;
    let info = cutover_swarm::Cluster::info(&cluster).await?;
    tracing::info!(
        nodes = info.nodes,
        managers = info.managers,
        edges = %edges.service,
        network = %edges.network,
        "deploying on a Swarm"
    );
    let swarm = SwarmEngine::new(Arc::new(cluster), engine, edges, state_dir);
    swarm.start_reconciler(RECONCILE_PERIOD);
    Ok((None, swarm.router().fallback(no_project_route)))
}

async fn no_project_route() -> ApiError {
    ApiError::not_found("no such route")
        .with_hint("the routes are listed in docs/api.md; they start with /v1/")
}

async fn forward(
    axum::extract::State(deploys): axum::extract::State<Deploys>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use tower_service::Service;
    match deploys.connect().await {
        Ok((_, router)) => {
            // The outer route's path parameters live in the extensions;
            // the inner router must match the path afresh.
            let (mut parts, body) = request.into_parts();
            parts.extensions = axum::http::Extensions::new();
            let request = axum::extract::Request::from_parts(parts, body);
            let mut router = router.clone();
            match router.call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
        Err(e) => {
            let report = e;
            let hint = report
                .hint
                .clone()
                .unwrap_or_else(|| "start Docker, or set DOCKER_HOST for the daemon".into());
            let report = report
                .map_message(|m| format!("the cutover daemon cannot deploy without Docker: {m}"))
                .hint(format!("{hint}; then try again (the daemon connects on the next request, and keeps routing running services meanwhile)"));
            ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, report).into_response()
        }
    }
}
