//! The data listener: accept, one hyper connection (HTTP/1.1 or h2c) per
//! client, graceful shutdown.
//!
//! Connections are served on dedicated data-plane threads, one per core, each
//! with its own current-thread runtime (nginx's worker model). A request then
//! runs wholly on one thread: its client connection, its handler and the
//! pooled upstream connection it uses, whose task was spawned there too. A
//! work-stealing runtime would bounce each request between cores and pay
//! thread wake-ups for it. The caller's runtime only accepts and hands
//! sockets out round-robin.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover_core::sync::lock;
use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::context::{Context, ProxyConfig};
use crate::preface::Preface;
use crate::proxy::{self, ConnInfo};
use crate::worker::{self, data_threads};

/// Concurrent streams per HTTP/2 client connection (nginx:
/// `http2_max_concurrent_streams 128`).
const H2_MAX_STREAMS: u32 = 128;
/// Response bytes buffered per HTTP/2 stream before the proxy stops
/// reading from the origin: 128 streams of 64 KiB, 8 MiB per connection.
const H2_SEND_BUFFER: usize = 64 * 1024;

fn builder(config: &ProxyConfig) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    // hyper's header read timer also runs while a keep-alive connection
    // waits for its next request, so it doubles as the HTTP/1 idle timeout:
    // the shorter of the two settings wins.
    b.http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(config.client_header_timeout.min(config.idle_timeout))
        // A head bigger than the read buffer is answered 431 by hyper.
        .max_buf_size(config.max_header_bytes.max(8192));
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(config.max_header_bytes.min(u32::MAX as usize) as u32)
        // What one connection may make the proxy hold for a client that
        // stops reading (a zero window): hyper's defaults, 200 streams of
        // 400 KB each, are 80 MB per connection.
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_send_buf_size(H2_SEND_BUFFER)
        // Pings find dead h2 peers; an unanswered ping closes the connection.
        .keep_alive_interval(Some(config.idle_timeout))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

/// One open client connection counted against `--max-connections`, from
/// accept until its task ends.
struct Slot(Arc<Context>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.connections.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An accepted connection on its way to a data-plane thread, with the
/// service it is pinned to when it came in on an app's own port, and
/// whether it came in on the HTTPS listener.
type Handoff = (
    std::net::TcpStream,
    SocketAddr,
    Slot,
    Option<Arc<str>>,
    bool,
);

/// At shutdown, how long a connection that has not sent its first request
/// yet gets to start it.
const FIRST_REQUEST_GRACE: Duration = Duration::from_millis(500);

/// At shutdown, how long a WebSocket handshake under way gets to finish.
const UPGRADE_GRACE: Duration = Duration::from_secs(5);

pub(crate) async fn serve(
    inner: Arc<Context>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let builder = Arc::new(builder(&inner.config));
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    let mut workers: Vec<mpsc::UnboundedSender<Handoff>> = Vec::new();
    let mut finished: Vec<oneshot::Receiver<()>> = Vec::new();
    for i in 0..data_threads() {
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (inner, builder, shutdown, dispatch) = (
            inner.clone(),
            builder.clone(),
            shutdown.clone(),
            dispatch.clone(),
        );
        std::thread::Builder::new()
            .name(format!("cutover-data-{i}"))
            .spawn(move || {
                // Logs from this thread go where the caller's would.
                let _log = tracing::dispatcher::set_default(&dispatch);
                worker::enter(i + 1);
                runtime.block_on(worker(inner, builder, rx, shutdown));
                let _ = done_tx.send(());
            })?;
        workers.push(tx);
        finished.push(done_rx);
    }

    // Connections from the apps' own ports come in through this channel,
    // so they share the connection cap and the hand-off with the rest.
    let (pinned_tx, mut pinned_rx) = mpsc::unbounded_channel();
    // And those apps' gateways relay, each pinned to the route it names.
    let gateways = lock(&inner.gateways).take();
    if let Some(listener) = gateways.map(TcpListener::from_std).transpose()? {
        crate::gateway::listen(listener, pinned_tx.clone(), shutdown.child_token());
    }
    inner.ports.attach(pinned_tx, shutdown.child_token());
    // And those of the HTTPS listener, which are TLS.
    let (https_tx, mut https_rx) = mpsc::unbounded_channel();
    if let Some(https) = inner.https.get() {
        https.attach(https_tx, shutdown.child_token());
    }
    let mut next = 0usize;
    let mut warned: Option<Instant> = None;
    loop {
        let (accepted, pinned, tls) = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => (a, None, false),
            Some((stream, peer, service)) = pinned_rx.recv() => (Ok((stream, peer)), Some(service), false),
            Some((stream, peer)) = https_rx.recv() => (Ok((stream, peer)), None, true),
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off rather than spin; the
                // listener itself stays usable.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // One that arrived at an app's in-network address is that app's.
        let pinned = match tls {
            true => None,
            false => pinned.or_else(|| inner.ports.pinned_at(&stream)),
        };
        let Some(slot) = take_slot(&inner) else {
            // Shedding the newest keeps every connection already served
            // and the descriptors the rest of the daemon needs.
            drop(stream);
            inner.connections.shed.fetch_add(1, Ordering::Relaxed);
            if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                warned = Some(Instant::now());
                tracing::warn!(
                    max = inner.config.max_connections,
                    "--max-connections client connections are open; closing new ones until some end"
                );
            }
            continue;
        };
        // Re-registered with the worker's own reactor on the other side.
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        next = next.wrapping_add(1);
        if workers[next % workers.len()]
            .send((stream, peer, slot, pinned, tls))
            .is_err()
        {
            tracing::error!("a data-plane thread is gone; closing the connection");
        }
    }
    drop(listener);
    // Connections an app's port or the HTTPS listener accepted just before
    // the shutdown are served like the rest, not closed unread (which
    // would reset them).
    let late = std::iter::from_fn(|| {
        pinned_rx
            .try_recv()
            .ok()
            .map(|(stream, peer, service)| (stream, peer, Some(service), false))
            .or_else(|| {
                https_rx
                    .try_recv()
                    .ok()
                    .map(|(stream, peer)| (stream, peer, None, true))
            })
    });
    for (stream, peer, pinned, tls) in late {
        let (Some(slot), Ok(stream)) = (take_slot(&inner), stream.into_std()) else {
            continue;
        };
        next = next.wrapping_add(1);
        let _ = workers[next % workers.len()].send((stream, peer, slot, pinned, tls));
    }
    drop(workers);
    if inner.handed_over.load(Ordering::Relaxed) {
        keep_upgraded(&inner).await;
    }
    // Upgraded connections get their 1012 now; health monitors stop.
    inner.shutdown.cancel();
    inner.tasks.close();
    for done in finished {
        let _ = done.await;
    }
    Ok(())
}

/// After a handoff: the WebSockets this process relays stay until their
/// clients close them or the WebSocket drain deadline passes.
async fn keep_upgraded(inner: &Context) {
    let deadline = tokio::time::Instant::now() + inner.max_websocket_drain();
    while inner.upgraded() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn take_slot(inner: &Arc<Context>) -> Option<Slot> {
    let open = &inner.connections.open;
    let max = inner.config.max_connections as u64;
    open.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
        (n < max).then_some(n + 1)
    })
    .ok()
    .map(|_| Slot(inner.clone()))
}

/// One data-plane thread: serves the connections handed to it until
/// shutdown, then waits (bounded) for its in-flight work.
async fn worker(
    inner: Arc<Context>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    mut handoff: mpsc::UnboundedReceiver<Handoff>,
    shutdown: CancellationToken,
) {
    let conns = TaskTracker::new();
    // Until the acceptor is done and has dropped its sender: a connection
    // it accepted just before the shutdown is served, not dropped unread.
    while let Some((stream, peer, slot, pinned, tls)) = handoff.recv().await {
        let Ok(stream) = TcpStream::from_std(stream) else {
            continue;
        };
        let (inner, builder, shutdown) = (inner.clone(), builder.clone(), shutdown.clone());
        if !tls {
            conns.spawn(serve_conn(
                inner,
                builder,
                (stream, peer, pinned, false),
                slot,
                shutdown,
            ));
            continue;
        }
        conns.spawn(async move {
            let _ = stream.set_nodelay(true);
            let https = inner
                .https
                .get()
                .expect("TLS connections come from the HTTPS listener");
            let limit = inner.config.client_header_timeout;
            match https.acceptors.accept(stream, limit).await {
                Ok(Some(tls)) => {
                    serve_conn(inner, builder, (tls, peer, None, true), slot, shutdown).await
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
            }
        });
    }
    conns.close();
    let bound = inner.max_drain();
    let waited = tokio::time::timeout(bound, async {
        conns.wait().await;
        // Relays spawned on this thread must finish before its runtime goes.
        inner.tasks.wait().await;
    })
    .await;
    if waited.is_err() {
        tracing::warn!("shutdown: work still running after {bound:?}; leaving it");
    }
}

async fn serve_conn<S>(
    inner: Arc<Context>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    (stream, peer, pinned, tls): (S, SocketAddr, Option<Arc<str>>, bool),
    _slot: Slot,
    shutdown: CancellationToken,
) where
    S: Nodelay + tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    stream.nodelay();
    let stream = Preface::new(stream, inner.config.client_header_timeout);
    let info = Arc::new(ConnInfo {
        peer_ip: HeaderValue::from_str(&peer.ip().to_string())
            .expect("an IP address is a valid header value"),
        started: AtomicBool::new(false),
        upgrading: AtomicBool::new(false),
        first_request: Notify::new(),
        pinned,
        tls,
    });
    let conn_info = info.clone();
    let svc = service_fn(move |req| proxy::handle(inner.clone(), info.clone(), req));
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.cancelled() => {
            // A connection accepted just before the shutdown may have its
            // first request on the wire: closing it unread would answer
            // that request with an RST. It gets a moment to start.
            if !conn_info.started.load(Ordering::Relaxed) {
                tokio::select! {
                    r = conn.as_mut() => return log_end(peer, r),
                    _ = conn_info.first_request.notified() => {}
                    _ = tokio::time::sleep(FIRST_REQUEST_GRACE) => {}
                }
            }
            // A WebSocket handshake under way finishes first: hyper's
            // graceful shutdown would put `Connection: close` on the 101
            // and fail it. The connection ends as the upgrade happens.
            if conn_info.upgrading.load(Ordering::Relaxed) {
                if let Ok(r) = tokio::time::timeout(UPGRADE_GRACE, conn.as_mut()).await {
                    return log_end(peer, r);
                }
            }
            // Connection: close after the current response (HTTP/1)
            // or GOAWAY (HTTP/2); idle connections close now.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    log_end(peer, result);
}

fn log_end(peer: SocketAddr, result: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(e) = result {
        tracing::debug!(peer = %peer, error = %e, "client connection ended with an error");
    }
}

/// Small writes go out at once (the response head, an h2 frame).
trait Nodelay {
    fn nodelay(&self);
}

impl Nodelay for TcpStream {
    fn nodelay(&self) {
        let _ = self.set_nodelay(true);
    }
}

/// Set on the TCP stream before the handshake.
impl Nodelay for tokio_rustls::server::TlsStream<TcpStream> {
    fn nodelay(&self) {}
}
