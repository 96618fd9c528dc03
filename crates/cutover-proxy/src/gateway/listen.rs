//! The edge's side (`cutover serve --role edge --gateway-listen`): each
//! connection a gateway relays starts with its header, read here in a
//! task of its own so a slow one holds up no other; then it joins the
//! data listener's hand-off as a connection pinned to the route it names,
//! exactly like one accepted on an app's own port.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ports::Pinned;

/// A gateway writes its header with its first bytes; one that sends none
/// this long is not a gateway.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts on `listener` until `stop`; each connection whose header reads
/// goes to `tx`, pinned to its route and with the caller's address.
pub(crate) fn spawn(
    listener: TcpListener,
    tx: mpsc::UnboundedSender<Pinned>,
    stop: CancellationToken,
) {
    let what = format!("the gateway listener {:?}", listener.local_addr().ok());
    crate::acceptor::spawn(listener, stop, what, move |mut stream, peer| {
        let open = !tx.is_closed();
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HEADER_TIMEOUT, super::header::read(&mut stream)).await {
                Ok(Ok(relayed)) => {
                    let _ = tx.send((stream, relayed.client, relayed.route.into()));
                }
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "a relayed connection without a usable header")
                }
                Err(_) => tracing::debug!(%peer, "a relayed connection sent no header in time"),
            }
        });
        open
    });
}
