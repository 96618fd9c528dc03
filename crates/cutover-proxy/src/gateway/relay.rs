//! The gateway's side (`cutover gateway`): accept a caller, connect to an
//! edge, send the header, then copy bytes both ways. No HTTP is parsed
//! here, so HTTP/1.1, h2c and WebSockets all pass as they came, and the
//! edge, which has the routes, does the rest.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::header;

#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// The edges' route this gateway is for (`project/service`).
    pub route: String,
    /// A name that resolves to every edge's address, and their gateway
    /// port: `tasks.cutover_edge:26092`. Resolved per connection, so an
    /// edge that joins is used and one that left is not tried.
    pub edges: String,
    pub connect_timeout: Duration,
    /// At shutdown, how long connections being relayed get to end.
    pub grace: Duration,
}

/// Relays every connection `listener` accepts until `stop` (on the
/// accept loop every other listener has), then waits (at most the
/// grace) for those under way.
pub async fn relay(listener: TcpListener, s: RelaySettings, stop: CancellationToken) {
    let s = Arc::new(s);
    let next = Arc::new(AtomicUsize::new(0));
    let conns = TaskTracker::new();
    let what = format!("the gateway's listener {:?}", listener.local_addr().ok());
    crate::acceptor::spawn(listener, stop.clone(), what, {
        let (s, conns) = (s.clone(), conns.clone());
        move |client, peer| {
            conns.spawn(relay_one(client, peer, s.clone(), next.clone()));
            true
        }
    });
    stop.cancelled().await;
    conns.close();
    if tokio::time::timeout(s.grace, conns.wait()).await.is_err() {
        tracing::info!(
            open = conns.len(),
            "relayed connections still open at the end of the grace"
        );
    }
}

async fn relay_one(
    mut client: TcpStream,
    peer: SocketAddr,
    s: Arc<RelaySettings>,
    next: Arc<AtomicUsize>,
) {
    let _ = client.set_nodelay(true);
    // 1. An edge that takes the connection.
    let Some(mut edge) = connect(&s, &next).await else {
        tracing::warn!(%peer, edges = %s.edges, "no edge took the connection; closing it");
        return;
    };
    // 2. The header, then the bytes both ways until both sides are done.
    let local = client.local_addr().unwrap_or(peer);
    let sent = match header::encode(&s.route, peer, local) {
        Ok(bytes) => edge.write_all(&bytes).await,
        Err(e) => Err(e),
    };
    if let Err(e) = sent {
        tracing::warn!(%peer, error = %e, "the edge went away before the header");
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut edge).await;
}

/// The edges in the order the resolver gave, starting one further each
/// connection, so callers spread over them; one that does not answer in
/// time is skipped.
async fn connect(s: &RelaySettings, next: &AtomicUsize) -> Option<TcpStream> {
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host(&s.edges).await {
        Ok(addrs) => addrs.collect(),
        Err(e) => {
            tracing::warn!(edges = %s.edges, error = %e, "the edges' name does not resolve");
            return None;
        }
    };
    let start = next.fetch_add(1, Ordering::Relaxed);
    for i in 0..addrs.len() {
        let addr = addrs[(start + i) % addrs.len()];
        match tokio::time::timeout(s.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Some(stream);
            }
            Ok(Err(e)) => tracing::debug!(%addr, error = %e, "an edge refused the connection"),
            Err(_) => tracing::debug!(%addr, "an edge did not answer in time"),
        }
    }
    None
}
