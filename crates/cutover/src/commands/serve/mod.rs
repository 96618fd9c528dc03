//! `cutover serve`: the per-host daemon. The proxy listener, the control
//! socket (and the opt-in TCP control and metrics listeners), the state file,
//! an orderly shutdown on SIGTERM/SIGINT, and the handoff to a successor
//! (`cutover upgrade`, `--takeover`) that restarts it without an outage.

mod control;
mod deploys;
mod listeners;
pub(crate) mod signals;
mod succession;

use std::sync::Arc;
use std::time::Duration;

use cutover_core::diag::Report;
use cutover_core::status::UpgradeAnswer;
use cutover_deploy::owner::Owner;
use cutover_proxy::admin::{Admin, ApiError, ControlTcp, ControlTimeouts, Guard, Tokens};
use cutover_proxy::state::{StateError, StateStore};
use cutover_proxy::Proxy;
use tokio_util::sync::CancellationToken;

use crate::args::{GlobalArgs, Origins, RoleArg, ServeArgs};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::handoff::HandoffSocket;
use crate::settings::{HostEnv, ServeSettings};
use control::{Control, Idle};
use deploys::Deploys;
use listeners::Bound;
use signals::Signals;

/// After the data plane has drained, control connections still open (a
/// deploy that is waiting on its health gate) get this long to finish.
const CONTROL_GRACE: Duration = Duration::from_secs(5);

pub fn run(
    args: &ServeArgs,
    global: &GlobalArgs,
    origins: &Origins,
    env: &HostEnv,
) -> Result<ExitStatus, CliError> {
    crate::allocator::ensure_daemon_options();
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

/// How the daemon's serving ended.
enum End {
    /// SIGTERM or SIGINT: drain and exit.
    Signal,
    /// A successor serves the listeners now.
    HandedOver,
    /// A listener failed.
    Failed,
}

async fn serve(settings: ServeSettings) -> Result<ExitStatus, CliError> {
    // Before anything can report the daemon ready: a SIGTERM sent right after
    // the socket answers must drain, not kill with the default action.
    let mut signals = Signals::new()?;
    let store = Arc::new(StateStore::open(&settings.state_dir)?);

    // 1. The listeners and the state dir's lock: taken over from the daemon
    //    running here, or bound afresh.
    let (mut bound, takeover) = if settings.takeover {
        let (bound, takeover) = listeners::take_over(&settings).await?;
        (bound, Some(takeover))
    } else {
        (listeners::bind(&settings).await?, None)
    };
    let socket_file = &bound.socket_file;
    let fail = |e: CliError| {
        // A successor leaves the socket file to the daemon it took over from.
        if takeover.is_none() {
            socket_file.remove();
        }
        e
    };
    let listen = bound.data.local_addr().map_err(|e| {
        fail(CliError::failure(format!(
            "the proxy listener has no address: {e}"
        )))
    })?;
    let kept = bound.duplicates().map_err(|e| {
        fail(CliError::failure(format!(
            "cannot keep the listeners for a later handoff: {e}"
        )))
    })?;

    // 2. The routes, as the last daemon on this state dir saved them.
    let proxy = Proxy::new(settings.proxy.clone());
    proxy.main_listener(listen);
    proxy.adopt_ports(std::mem::take(&mut bound.ports));
    let certificates = cutover_tls::Certificates::new(settings.tls.clone())
        .map_err(|e| fail(CliError::failure(e)))?;
    proxy
        .enable_https(
            certificates.clone(),
            settings.https_listen,
            settings.https_explicit,
        )
        .map_err(|e| fail(CliError::failure(e)))?;
    if let Some(addr) = settings.gateway_listen {
        let gateways = std::net::TcpListener::bind(addr).map_err(|e| {
            fail(
                CliError::failure(format!("cannot listen for gateways on {addr}: {e}")).with_hint(
                    "--gateway-listen needs a port nothing else in the edge's container holds",
                ),
            )
        })?;
        proxy
            .serve_gateways(gateways)
            .map_err(|e| fail(CliError::failure(format!("cannot set up {addr}: {e}"))))?;
    }
    restore(&proxy, &store).map_err(fail)?;
    let certificates_stop = CancellationToken::new();
    tokio::spawn(certificates.clone().run(certificates_stop.clone()));
    let _stop_certificates = certificates_stop.drop_guard();
    let shutdown = CancellationToken::new();
    let control_tls = match &settings.control_listen {
        Some(control) => control.tls(&certificates).map_err(fail)?,
        None => None,
    };
    let tokens = Arc::new(
        Tokens::load(
            &settings.state_dir,
            control_tls.as_ref().and_then(|t| t.fingerprint.clone()),
        )
        .map_err(|e| fail(CliError::failure(cutover_core::diag::Diagnose::report(&e))))?,
    );
    let admin = Admin::with_info(
        proxy.clone(),
        Some(store.clone()),
        shutdown.clone(),
        env!("CARGO_PKG_VERSION").into(),
        Some(listen),
    )
    .with_tokens(tokens.clone());
    let edge = settings.role == RoleArg::Edge;
    let admin = if edge { admin.as_edge() } else { admin };

    // 3. The deploy engine, under this daemon's identity.
    let owner = Owner::load(&settings.state_dir)
        .map(Arc::new)
        .map_err(|e| fail(CliError::failure(Report::from(e))))?;
    tracing::info!(
        id = owner.id(),
        "daemon identity (label cutover.daemon on what it creates)"
    );
    let deploys = Deploys::new(
        &admin,
        &settings.state_dir,
        owner,
        takeover.is_some(),
        settings.engine.clone(),
    );
    if edge {
        tracing::info!("an edge of a Swarm: the Swarm deploy engine sends the compose routes; this daemon runs no deploys");
    } else if let Err(e) = deploys.connect().await {
        tracing::warn!(error = %e, "Docker is not reachable: serving as a proxy only; deploys are refused until Docker answers");
    }

    // 4. Serve: control listeners, the data plane, the handoff socket.
    let (upgrade_tx, mut upgrades) = tokio::sync::mpsc::channel(4);
    let mut control_router = admin.router().merge(succession::router(upgrade_tx));
    if !edge {
        control_router = control_router.merge(deploys.router());
    }
    // The control listeners time what a client owes as the data plane does.
    let timeouts = ControlTimeouts {
        header: settings.proxy.client_header_timeout,
        body: settings.proxy.client_body_timeout,
    };
    let Bound {
        data,
        control_socket,
        socket_file,
        control_tcp,
        metrics,
        lock,
        ports: _,
    } = bound;
    let mut lock = Some(lock);
    let mut control = Control::new(control_router, &admin, timeouts);
    let control_tcp = match (control_tcp, &settings.control_listen) {
        (Some(tcp), Some(settings)) => {
            let addr = tcp.local_addr().ok();
            match &control_tls {
                Some(tls) => match &tls.fingerprint {
                    Some(fingerprint) => {
                        tracing::info!(addr = ?addr, %fingerprint, certificate = %tls.serves, "control API on TCP over TLS, token required (clients pin --tls-fingerprint or --tls-ca)")
                    }
                    None => {
                        tracing::info!(addr = ?addr, certificate = %tls.serves, "control API on TCP over TLS, token required")
                    }
                },
                None => {
                    tracing::warn!(addr = ?addr, "control API on TCP over plain HTTP (loopback only), token required")
                }
            }
            let config = control_tls.as_ref().map(|t| t.config.clone());
            Some((
                ControlTcp::new(tcp, config, timeouts.header),
                Guard::new(tokens.clone(), settings.token.clone()),
            ))
        }
        _ => None,
    };
    if let Some(tcp) = &metrics {
        tracing::info!(addr = ?tcp.local_addr().ok(), "metrics on TCP");
    }
    control.start(Idle {
        socket: control_socket,
        tcp: control_tcp,
        metrics,
    });
    let data_shutdown = CancellationToken::new();
    let data_task = tokio::spawn({
        let proxy = proxy.clone();
        let stop = data_shutdown.clone();
        async move { proxy.serve(data, stop).await }
    });
    tokio::pin!(data_task);
    let handoff_socket = match HandoffSocket::bind(&settings.state_dir) {
        Ok(socket) => Some(Arc::new(socket)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot bind the handoff socket; `cutover upgrade` is off for this daemon");
            None
        }
    };
    let mut successors = match &handoff_socket {
        Some(socket) => succession::successors(socket.clone()),
        None => tokio::sync::mpsc::channel(1).1,
    };
    let took_over = takeover.is_some();
    if let Some(takeover) = takeover {
        if let Err(e) = takeover.ready() {
            tracing::warn!(error = %e, "could not tell the previous daemon to stop accepting; it keeps accepting until it exits");
        }
    }
    notify_ready();
    tracing::info!(
        listen = %listen,
        socket = %socket_file.path().display(),
        state = %store.path().display(),
        version = env!("CARGO_PKG_VERSION"),
        took_over,
        "cutover serve is ready"
    );

    // 5. Until a signal, a failed listener, or a successor that took over.
    let mut pending: Option<(succession::Reply, tokio::process::Child)> = None;
    let end = loop {
        tokio::select! {
            name = signals.next() => {
                tracing::info!(signal = name, "shutting down: no new connections, draining in-flight requests");
                break End::Signal;
            }
            result = &mut data_task => {
                tracing::error!(result = ?result, "the proxy listener stopped unexpectedly");
                break End::Failed;
            }
            Some(reply) = upgrades.recv() => {
                if pending.is_some() {
                    let _ = reply.send(Err(ApiError::new(
                        axum::http::StatusCode::CONFLICT,
                        Report::new("an upgrade is already under way").hint("wait for it to finish"),
                    )));
                    continue;
                }
                match succession::spawn_successor() {
                    Ok(child) => {
                        tracing::info!(pid = child.id(), "upgrade: started the successor");
                        pending = Some((reply, child));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(ApiError::new(
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            Report::new(format!("cannot start the new cutover process: {e}"))
                                .hint("check that the cutover binary the daemon was started as is still there"),
                        )));
                    }
                }
            }
            exited = async { pending.as_mut().expect("guarded").1.wait().await }, if pending.is_some() => {
                let (reply, _) = pending.take().expect("guarded");
                let status = exited.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                tracing::warn!(%status, "upgrade: the successor exited before it took over; still serving");
                let _ = reply.send(Err(ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    Report::new(format!("the new cutover process exited ({status}) before it took over; this daemon keeps serving"))
                        .hint("its error is in the daemon's log (journalctl -u cutover)"),
                )));
            }
            Some(successor) = successors.recv() => {
                let version = successor.version.clone();
                tracing::info!(pid = successor.pid, version, "a successor asks to take over");
                let paused = succession::Paused {
                    control: &mut control,
                    deploys: &deploys,
                    admin: &admin,
                    lock: &mut lock,
                    state_dir: &settings.state_dir,
                    listeners: &kept,
                };
                let result = succession::hand_over(paused, successor).await;
                // The successor outlives this process; dropping its handle
                // neither waits for it nor kills it.
                let reply = pending.take().map(|(reply, _child)| reply);
                match result {
                    Ok(pid) => {
                        tracing::info!(pid, version, "handed over: draining, then exiting");
                        if let Some(reply) = reply {
                            let _ = reply.send(Ok(UpgradeAnswer {
                                previous_pid: std::process::id(),
                                pid,
                                version,
                            }));
                        }
                        break End::HandedOver;
                    }
                    Err(report) => {
                        tracing::warn!(error = %report, "handoff failed; still serving");
                        if let Some(reply) = reply {
                            let _ = reply.send(Err(ApiError::new(
                                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                                report.map_message(|m| format!("{m}; this daemon keeps serving")),
                            )));
                        }
                    }
                }
            }
        }
    };

    // 6. Drain and exit.
    let handed_over = matches!(end, End::HandedOver);
    let mut status = match end {
        End::Failed => ExitStatus::Failure,
        End::Signal | End::HandedOver => ExitStatus::Success,
    };
    if handed_over {
        proxy.hand_over();
    }
    // Only the serving tasks hold the listeners now: when they stop, new
    // connections go to the successor, or are refused.
    drop(kept);
    control.pause().await;
    data_shutdown.cancel();
    shutdown.cancel();

    // The data plane bounds its own drain by the drain timeouts. A second
    // signal is the operator saying "now".
    let data_ended = matches!(end, End::Failed);
    tokio::select! {
        result = &mut data_task, if !data_ended => match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the proxy listener failed");
                status = ExitStatus::Failure;
            }
            Err(e) => {
                tracing::error!(error = %e, "the proxy task panicked");
                status = ExitStatus::Failure;
            }
        },
        name = signals.next(), if !data_ended => {
            tracing::warn!(signal = name, "second signal: exiting without waiting for in-flight requests");
            status = ExitStatus::Failure;
        }
        else => {}
    }
    control.conns.close();
    if tokio::time::timeout(CONTROL_GRACE, control.conns.wait())
        .await
        .is_err()
    {
        tracing::warn!("control requests still running after {CONTROL_GRACE:?}; cutting them");
    }
    if let Some(engine) = deploys.engine() {
        // A deploy runs in a daemon task, not in its request: give one that is
        // half-way through a cutover the same grace before the process ends.
        engine.tasks().close();
        if handed_over {
            // The successor leaves this daemon's old colors to it.
            if tokio::time::timeout(CONTROL_GRACE, engine.retirements().settled())
                .await
                .is_err()
            {
                tracing::warn!("old colors still retiring; the next start stops them");
            }
        }
        // Old colors still draining stay up; the next start stops them.
        engine.retirements().cancel_all();
        if tokio::time::timeout(CONTROL_GRACE, engine.tasks().wait())
            .await
            .is_err()
        {
            tracing::warn!("deploy operations still running after {CONTROL_GRACE:?}; the next start reconciles them");
        }
    }

    if handed_over {
        // The routes, the control socket and the handoff socket are the
        // successor's now.
        tracing::info!("stopped after the handoff");
        return Ok(status);
    }
    if let Err(e) = admin.persist().await {
        tracing::error!(error = %e, "cannot save the state at shutdown");
        status = ExitStatus::Failure;
    }
    socket_file.remove();
    if let Some(socket) = &handoff_socket {
        socket.remove();
    }
    drop(lock);
    tracing::info!("stopped");
    Ok(status)
}

/// Reinstalls the saved routes; an entry this version cannot restore stops
/// the start, so that no route is dropped (and erased at the next save).
fn restore(proxy: &Proxy, store: &StateStore) -> Result<(), CliError> {
    let Some(state) = store.load()? else {
        return Ok(());
    };
    tracing::info!(
        services = state.services.len(),
        path = %store.path().display(),
        "restoring services; each set routes to the targets its first probes find healthy, and to all of them while none is"
    );
    proxy.restore(state).map_err(|e| {
        StateError::Unrestorable {
            path: store.path().to_path_buf(),
            detail: e.to_string(),
        }
        .into()
    })
}

/// Tells systemd (`Type=notify`) that this process serves, and, when it
/// took over, that it is the service's main process now. Without systemd
/// (no NOTIFY_SOCKET) it does nothing.
fn notify_ready() {
    use sd_notify::NotifyState;
    let pid = std::process::id();
    if let Err(e) = sd_notify::notify(false, &[NotifyState::MainPid(pid), NotifyState::Ready]) {
        tracing::debug!(error = %e, "cannot notify systemd");
    }
}
