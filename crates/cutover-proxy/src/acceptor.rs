//! The accept loop of a listener that is not the main one (an app's port,
//! the HTTPS listener, the gateways' one): each connection goes to the
//! data listener's hand-off, so all share the connection cap and the
//! data-plane threads. `cutover gateway`'s relay accepts with it too.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Accepts on `listener` until `stop`, giving each connection to `hand`,
/// which says `false` once its receiver is gone. An accept error (EMFILE
/// and friends) backs off rather than spins; the listener stays usable.
pub(crate) fn spawn(
    listener: TcpListener,
    stop: CancellationToken,
    what: String,
    mut hand: impl FnMut(TcpStream, SocketAddr) -> bool + Send + 'static,
) {
    tokio::spawn(async move {
        loop {
            // The stop wins over a connection waiting: one accepted after
            // it would go to a data plane that no longer reads them and be
            // reset, while the successor that shares the socket would have
            // served it.
            let accepted = tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((stream, peer)) => {
                    if !hand(stream, peer) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed on {what}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
}
