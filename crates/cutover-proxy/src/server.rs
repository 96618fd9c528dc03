//! The data listener: accept, one hyper connection (HTTP/1.1 or h2c) per
//! client, graceful shutdown.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::handle::{Inner, ProxyConfig};
use crate::proxy::{self, ConnInfo};

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
        // Pings find dead h2 peers; an unanswered ping closes the connection.
        .keep_alive_interval(Some(config.idle_timeout))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

pub(crate) async fn serve(
    inner: Arc<Inner>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let builder = Arc::new(builder(&inner.config));
    let conns = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
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
        let _ = stream.set_nodelay(true);
        let info = Arc::new(ConnInfo {
            peer_ip: HeaderValue::from_str(&peer.ip().to_string())
                .expect("an IP address is a valid header value"),
        });
        let inner = inner.clone();
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req| proxy::handle(inner.clone(), info.clone(), req));
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = shutdown.cancelled() => {
                    // Connection: close after the current response (HTTP/1)
                    // or GOAWAY (HTTP/2); idle connections close now.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(peer = %peer, error = %e, "client connection ended with an error");
            }
        });
    }
    drop(listener);
    // Upgraded connections get their 1012 now; health monitors stop.
    inner.shutdown.cancel();
    conns.close();
    inner.tasks.close();
    let bound = inner.max_drain();
    let waited = tokio::time::timeout(bound, async {
        conns.wait().await;
        inner.tasks.wait().await;
    })
    .await;
    if waited.is_err() {
        tracing::warn!("shutdown: work still running after {bound:?}; leaving it");
    }
    Ok(())
}
