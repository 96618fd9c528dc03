//! Serving the control API on a listener (the Unix socket, the TCP control
//! listener, the metrics listener) with the same guards the data plane has.
//! `axum::serve` sets no timer at all, so a client that connects and says
//! nothing, or sends half a head or half a body, held its connection for
//! ever; on the TCP listener that is before the token is even checked.

use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use super::PeerAddr;
use crate::body::ReqBody;
use crate::preface::Preface;

/// The timers of a control listener.
#[derive(Debug, Clone, Copy)]
pub struct ControlTimeouts {
    /// From accept to a whole request head, and between two requests on a
    /// kept-alive connection.
    pub header: Duration,
    /// Between two reads of a request body.
    pub body: Duration,
}

/// Serves `router` on `listener` until `stop`, then hands the listener
/// back (still bound: a daemon that pauses its control API for a handoff
/// may resume on it). Connections run in `conns`; at `stop` each finishes
/// the response it is sending (hyper's graceful shutdown) and the caller
/// waits for `conns` as long as it likes. Responses may stream for as long
/// as they like (progress, event streams): only what the client owes is
/// timed.
pub async fn serve_control<L>(
    mut listener: L,
    router: axum::Router,
    timeouts: ControlTimeouts,
    stop: CancellationToken,
    conns: TaskTracker,
) -> L
where
    L: axum::serve::Listener,
    L::Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    L::Addr: PeerOf,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    loop {
        let io = tokio::select! {
            _ = stop.cancelled() => return listener,
            (io, addr) = listener.accept() => (io, addr.peer()),
        };
        let (io, peer) = io;
        let (router, builder, stop) = (router.clone(), builder.clone(), stop.clone());
        conns.spawn(async move {
            let io = Preface::new(io, timeouts.header);
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                // The body limit is each handler's; only its pace is timed here.
                let mut req = req.map(|body| ReqBody::new(body, u64::MAX, timeouts.body));
                req.extensions_mut().insert(PeerAddr(peer));
                router.clone().call(req)
            });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "control connection ended with an error");
            }
        });
    }
}

/// The peer's TCP address, for the failed-attempt limit; a Unix socket's
/// peer has none.
pub trait PeerOf {
    fn peer(&self) -> Option<std::net::SocketAddr>;
}

impl PeerOf for std::net::SocketAddr {
    fn peer(&self) -> Option<std::net::SocketAddr> {
        Some(*self)
    }
}

impl PeerOf for tokio::net::unix::SocketAddr {
    fn peer(&self) -> Option<std::net::SocketAddr> {
        None
    }
}
