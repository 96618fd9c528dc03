//! The control listeners of `cutover serve` (the Unix socket, the TCP
//! control listener, the metrics listener), which a handoff pauses: they
//! stop accepting and hand their listeners back, so that the daemon can
//! resume on them if its successor fails.

use std::sync::Arc;

use cutover_proxy::admin::{
    metrics_router, require_token, serve_control, Admin, ControlTcp, ControlTimeouts, Guard,
};
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The listeners, while nobody accepts on them.
pub(super) struct Idle {
    pub socket: UnixListener,
    pub tcp: Option<(ControlTcp, Arc<Guard>)>,
    pub metrics: Option<TcpListener>,
}

pub(super) struct Control {
    router: axum::Router,
    metrics: axum::Router,
    timeouts: ControlTimeouts,
    /// Every control connection, across pauses: shutdown waits for them.
    pub conns: TaskTracker,
    running: Option<Running>,
}

struct Running {
    stop: CancellationToken,
    socket: JoinHandle<UnixListener>,
    tcp: Option<(JoinHandle<ControlTcp>, Arc<Guard>)>,
    metrics: Option<JoinHandle<TcpListener>>,
}

impl Control {
    pub fn new(router: axum::Router, admin: &Admin, timeouts: ControlTimeouts) -> Control {
        Control {
            router,
            metrics: metrics_router(admin),
            timeouts,
            conns: TaskTracker::new(),
            running: None,
        }
    }

    /// Accepts on `idle` until [`Control::pause`].
    pub fn start(&mut self, idle: Idle) {
        let stop = CancellationToken::new();
        let serve =
            |router: axum::Router| (router, self.timeouts, stop.clone(), self.conns.clone());
        let (r, t, s, c) = serve(self.router.clone());
        let socket = tokio::spawn(serve_control(idle.socket, r, t, s, c));
        let tcp = idle.tcp.map(|(listener, guard)| {
            let (r, t, s, c) = serve(require_token(self.router.clone(), guard.clone()));
            (tokio::spawn(serve_control(listener, r, t, s, c)), guard)
        });
        let metrics = idle.metrics.map(|listener| {
            let (r, t, s, c) = serve(self.metrics.clone());
            tokio::spawn(serve_control(listener, r, t, s, c))
        });
        self.running = Some(Running {
            stop,
            socket,
            tcp,
            metrics,
        });
    }

    /// Stops accepting (connections already open finish their response)
    /// and returns the listeners, still bound.
    pub async fn pause(&mut self) -> Option<Idle> {
        let running = self.running.take()?;
        running.stop.cancel();
        let socket = running.socket.await.ok()?;
        let tcp = match running.tcp {
            Some((handle, guard)) => handle.await.ok().map(|l| (l, guard)),
            None => None,
        };
        let metrics = match running.metrics {
            Some(handle) => handle.await.ok(),
            None => None,
        };
        Some(Idle {
            socket,
            tcp,
            metrics,
        })
    }
}
