//! `cutover serve`: the per-host daemon. The proxy listener, the control
//! socket (and the opt-in TCP control and metrics listeners), the state file,
//! and an orderly shutdown on SIGTERM/SIGINT.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cutover_core::diag::Report;
use cutover_deploy::owner::Owner;
use cutover_deploy::DeployEngine;
use cutover_docker::DockerEngine;
use cutover_proxy::admin::{
    bind_control_socket, metrics_router, require_bearer, serve_control, Admin, ApiError,
    ControlTimeouts,
};
use cutover_proxy::state::{DirLock, StateError, StateStore};
use cutover_proxy::Proxy;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::args::{GlobalArgs, Origins, ServeArgs};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::settings::{HostEnv, ServeSettings};

/// After the data plane has drained, control connections still open (a
/// deploy that is waiting on its health gate) get this long to finish.
const CONTROL_GRACE: Duration = Duration::from_secs(5);

pub fn run(
    args: &ServeArgs,
    global: &GlobalArgs,
    origins: &Origins,
    env: &HostEnv,
) -> Result<ExitStatus, CliError> {
    let env = HostEnv {
        nofile_limit: crate::settings::raise_nofile_limit(),
        ..env.clone()
    };
    let settings = ServeSettings::resolve(args, global, origins, &env)?;
    crate::logging::init(settings.log_format, "info");
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all().thread_name("cutover");
    if let Some(n) = settings.threads {
        runtime.worker_threads(n);
    }
    let runtime = runtime
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))?;
    let status = runtime.block_on(serve(settings));
    // Streams to clients that never read do not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    status
}

type Server = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

async fn serve(settings: ServeSettings) -> Result<ExitStatus, CliError> {
    // Before anything can report the daemon ready: a SIGTERM sent right after
    // the socket answers must drain, not kill with the default action.
    let mut signals = Signals::new()?;
    let store = Arc::new(StateStore::open(&settings.state_dir)?);
    let restored = store.load()?;

    // The socket first: a second daemon must hear that one is running, not
    // that port 80 is taken. If anything after it fails, the file goes away.
    let socket = bind_control_socket(
        &settings.socket,
        settings.socket_group.as_ref().map(|g| g.gid),
    )
    .await?;
    let (unix, socket_file) = socket.into_parts();
    // After the socket: a second daemon on the same socket hears that one
    // answers there; one on another socket but this state dir stops here.
    let _state_dir_lock = match DirLock::acquire(store.dir()) {
        Ok(lock) => lock,
        Err(e) => {
            socket_file.remove();
            return Err(e.into());
        }
    };
    let listeners = async {
        let data = bind_tcp(settings.listen, "--listen").await?;
        let metrics = match settings.metrics_listen {
            Some(addr) => Some(bind_tcp(addr, "--metrics-listen").await?),
            None => None,
        };
        let control_tcp = match &settings.control_listen {
            Some(control) => Some((
                bind_tcp(control.addr, "--control-listen").await?,
                control.token.clone(),
            )),
            None => None,
        };
        Ok::<_, CliError>((data, metrics, control_tcp))
    };
    let (data, metrics, control_tcp) = match listeners.await {
        Ok(bound) => bound,
        Err(e) => {
            socket_file.remove();
            return Err(e);
        }
    };
    let listen = data
        .local_addr()
        .map_err(|e| CliError::failure(format!("the proxy listener has no address: {e}")))?;

    let proxy = Proxy::new(settings.proxy.clone());
    if let Some(state) = restored {
        tracing::info!(
            services = state.services.len(),
            path = %store.path().display(),
            "restoring services; each set routes to the targets its first probes find healthy, and to all of them while none is"
        );
        if let Err(e) = proxy.restore(state) {
            socket_file.remove();
            return Err(StateError::Unrestorable {
                path: store.path().to_path_buf(),
                detail: e.to_string(),
            }
            .into());
        }
    }

    let shutdown = CancellationToken::new();
    let admin = Admin::with_info(
        proxy.clone(),
        Some(store.clone()),
        shutdown.clone(),
        env!("CARGO_PKG_VERSION").into(),
        Some(listen),
    );

    let owner = match Owner::load(&settings.state_dir) {
        Ok(owner) => Arc::new(owner),
        Err(e) => {
            socket_file.remove();
            return Err(CliError::failure(Report::from(e)));
        }
    };
    tracing::info!(
        id = owner.id(),
        "daemon identity (label cutover.daemon on what it creates)"
    );
    let deploys = Deploys::new(&admin, &settings.state_dir, owner);
    if let Err(e) = deploys.connect().await {
        tracing::warn!(error = %e, "Docker is not reachable: serving as a proxy only; deploys are refused until Docker answers");
    }
    let control_router = admin.router().merge(deploys.router());

    // The control listeners time what a client owes as the data plane does.
    let timeouts = ControlTimeouts {
        header: settings.proxy.client_header_timeout,
        body: settings.proxy.client_body_timeout,
    };
    let mut control: JoinSet<(&'static str, io::Result<()>)> = JoinSet::new();
    spawn(
        &mut control,
        "control socket",
        Box::pin(serve_control(
            unix,
            control_router.clone(),
            timeouts,
            shutdown.clone(),
        )),
    );
    if let Some((tcp, token)) = control_tcp {
        let addr = tcp.local_addr().ok();
        spawn(
            &mut control,
            "control listener",
            Box::pin(serve_control(
                tcp,
                require_bearer(control_router, token),
                timeouts,
                shutdown.clone(),
            )),
        );
        tracing::info!(addr = ?addr, "control API on TCP, bearer token required");
    }
    if let Some(tcp) = metrics {
        let addr = tcp.local_addr().ok();
        spawn(
            &mut control,
            "metrics listener",
            Box::pin(serve_control(
                tcp,
                metrics_router(&admin),
                timeouts,
                shutdown.clone(),
            )),
        );
        tracing::info!(addr = ?addr, "metrics on TCP");
    }
    let data_task = tokio::spawn({
        let proxy = proxy.clone();
        let shutdown = shutdown.clone();
        async move { proxy.serve(data, shutdown).await }
    });
    tokio::pin!(data_task);

    tracing::info!(
        listen = %listen,
        socket = %socket_file.path().display(),
        state = %store.path().display(),
        version = env!("CARGO_PKG_VERSION"),
        "cutover serve is ready"
    );

    let mut status = ExitStatus::Success;
    let mut data_result = None;
    tokio::select! {
        name = signals.next() => tracing::info!(signal = name, "shutting down: no new connections, draining in-flight requests"),
        result = &mut data_task => {
            tracing::error!("the proxy listener stopped unexpectedly");
            data_result = Some(result);
            status = ExitStatus::Failure;
        }
        Some(Ok((what, result))) = control.join_next() => {
            tracing::error!(server = what, error = ?result.err(), "a control listener stopped unexpectedly");
            status = ExitStatus::Failure;
        }
    }
    shutdown.cancel();

    // The data plane bounds its own drain by the drain timeouts. A second
    // signal is the operator saying "now".
    let data_result = match data_result {
        Some(result) => Some(result),
        None => tokio::select! {
            result = &mut data_task => Some(result),
            name = signals.next() => {
                tracing::warn!(signal = name, "second signal: exiting without waiting for in-flight requests");
                status = ExitStatus::Failure;
                None
            }
        },
    };
    match data_result {
        Some(Ok(Ok(()))) | None => {}
        Some(Ok(Err(e))) => {
            tracing::error!(error = %e, "the proxy listener failed");
            status = ExitStatus::Failure;
        }
        Some(Err(e)) => {
            tracing::error!(error = %e, "the proxy task panicked");
            status = ExitStatus::Failure;
        }
    }
    let drained = tokio::time::timeout(CONTROL_GRACE, async {
        while let Some(joined) = control.join_next().await {
            if let Ok((what, Err(e))) = joined {
                tracing::warn!(server = what, error = %e, "control listener error during shutdown");
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("control requests still running after {CONTROL_GRACE:?}; cutting them");
        control.abort_all();
    }
    if let Some(engine) = deploys.engine() {
        // A deploy runs in a daemon task, not in its request: give one that is
        // half-way through a cutover the same grace before the process ends.
        engine.tasks().close();
        // Old colors still draining stay up; the next start stops them.
        engine.retirements().cancel_all();
        if tokio::time::timeout(CONTROL_GRACE, engine.tasks().wait())
            .await
            .is_err()
        {
            tracing::warn!("deploy operations still running after {CONTROL_GRACE:?}; the next start reconciles them");
        }
    }

    if let Err(e) = admin.persist().await {
        tracing::error!(error = %e, "cannot save the state at shutdown");
        status = ExitStatus::Failure;
    }
    socket_file.remove();
    tracing::info!("stopped");
    Ok(status)
}

/// The deploy engine, created when Docker first answers: at start, or at
/// the first deploy request after Docker came up. Until then the daemon runs
/// as a proxy only and deploy requests get a 503 that says why.
#[derive(Clone)]
struct Deploys {
    admin: Admin,
    state_dir: std::path::PathBuf,
    owner: Arc<Owner>,
    engine: Arc<tokio::sync::OnceCell<(DeployEngine, axum::Router)>>,
}

impl Deploys {
    fn new(admin: &Admin, state_dir: &std::path::Path, owner: Arc<Owner>) -> Deploys {
        Deploys {
            admin: admin.clone(),
            state_dir: state_dir.to_path_buf(),
            owner,
            engine: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// Connects to Docker (where DOCKER_HOST says) and reconciles what a
    /// previous run left half-done; concurrent callers share one attempt.
    async fn connect(&self) -> Result<&(DeployEngine, axum::Router), cutover_docker::EngineError> {
        self.engine
            .get_or_try_init(|| async {
                let docker = DockerEngine::connect().await?;
                tracing::info!(docker = docker.host(), "connected to Docker");
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
                let report = engine.reconcile().await;
                for warning in &report.warnings {
                    tracing::warn!("{warning}");
                }
                if !report.cleaned.is_empty() || !report.routes.is_empty() {
                    tracing::info!(cleaned = ?report.cleaned, routes = ?report.routes, "reconciled the deployed projects");
                }
                let router = cutover_deploy::router(engine.clone()).fallback(no_project_route);
                Ok((engine, router))
            })
            .await
    }

    fn engine(&self) -> Option<&DeployEngine> {
        self.engine.get().map(|(engine, _)| engine)
    }

    /// The `/v1/projects` routes, forwarded to the deploy engine's router.
    fn router(&self) -> axum::Router {
        use axum::routing::any;
        axum::Router::new()
            .route("/v1/projects", any(forward))
            .route("/v1/projects/{*rest}", any(forward))
            .with_state(self.clone())
    }
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
            let report = Report::from(e);
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

fn spawn(set: &mut JoinSet<(&'static str, io::Result<()>)>, what: &'static str, server: Server) {
    set.spawn(async move { (what, server.await) });
}

async fn bind_tcp(addr: SocketAddr, flag: &str) -> Result<TcpListener, CliError> {
    TcpListener::bind(addr).await.map_err(|e| {
        let err = CliError::failure(format!("cannot listen on {addr} ({flag}): {e}"));
        match e.kind() {
            io::ErrorKind::AddrInUse => {
                err.with_hint(format!("another process listens on {addr}: stop it, or choose another address with {flag}"))
            }
            io::ErrorKind::PermissionDenied if addr.port() < 1024 => err.with_hint(format!(
                "ports below 1024 need root or CAP_NET_BIND_SERVICE (dist/cutover.service grants it); or choose a higher port with {flag}"
            )),
            io::ErrorKind::AddrNotAvailable => err.with_hint(format!("{} is not an address of this host", addr.ip())),
            _ => err,
        }
    })
}

/// The signals `cutover serve` handles: SIGTERM and SIGINT stop it with a
/// drain; SIGHUP, which by default would kill it at once (a closed SSH
/// session, or `systemctl reload` on a unit without ExecReload), is
/// logged and changes nothing: there is no configuration file to re-read,
/// and routes change through the control API.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, CliError> {
        let install = |kind| {
            signal(kind).map_err(|e| CliError::failure(format!("cannot handle signals: {e}")))
        };
        Ok(Signals {
            term: install(SignalKind::terminate())?,
            int: install(SignalKind::interrupt())?,
            hup: install(SignalKind::hangup())?,
        })
    }

    /// The next signal that stops the daemon.
    async fn next(&mut self) -> &'static str {
        loop {
            tokio::select! {
                _ = self.term.recv() => return "SIGTERM",
                _ = self.int.recv() => return "SIGINT",
                _ = self.hup.recv() => tracing::info!(
                    "SIGHUP: nothing to reload (settings are flags, routes change through the control API); traffic is unaffected"
                ),
            }
        }
    }
}
