//! The HTTPS listener (`--https-listen`): TLS in front of the same request
//! path as plain HTTP, so routes, switches, drains and WebSocket 1012s are
//! the same on both. Connections it accepts join the data listener's
//! hand-off to the data-plane threads, flagged as TLS.
//!
//! ```text
//!   configured ──first TLS route (or --https-listen given)──▶ bound ──data plane runs──▶ accepting
//! ```
//!
//! It is bound when a route first asks for TLS, or at start when the flag
//! was given, so a daemon with no HTTPS route holds no port 443. Across an
//! upgrade the bound socket travels to the successor with the apps' ports.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use cutover_core::diag::Report;
use cutover_core::sync::lock;
use cutover_tls::{Acceptors, Certificates};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A connection accepted on the HTTPS listener, before its handshake.
pub(crate) type Accepted = (TcpStream, SocketAddr);

pub(crate) struct Https {
    pub certs: Arc<Certificates>,
    pub acceptors: Acceptors,
    addr: SocketAddr,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    listener: Option<std::net::TcpListener>,
    /// A copy of the bound socket, for a successor (`cutover upgrade`).
    kept: Option<std::net::TcpListener>,
    local: Option<SocketAddr>,
    sink: Option<(mpsc::UnboundedSender<Accepted>, CancellationToken)>,
    accepting: bool,
}

impl Https {
    /// `adopted`: the predecessor's socket at `addr`, served instead of
    /// binding anew, so an upgrade refuses no HTTPS connection.
    pub fn new(
        certs: Arc<Certificates>,
        addr: SocketAddr,
        adopted: Option<std::net::TcpListener>,
    ) -> Result<Https, Report> {
        let https = Https {
            acceptors: Acceptors::new(certs.clone()).map_err(Report::new)?,
            certs,
            addr,
            state: Mutex::default(),
        };
        if let Some(listener) = adopted {
            let mut st = lock(&https.state);
            st.local = listener.local_addr().ok();
            st.kept = listener.try_clone().ok();
            st.listener = Some(listener);
        }
        Ok(https)
    }

    /// A copy of the listening socket, once bound.
    pub fn handoff(&self) -> Option<(SocketAddr, std::net::TcpListener)> {
        let st = lock(&self.state);
        Some((st.local?, st.kept.as_ref()?.try_clone().ok()?))
    }

    /// Binds the listener if it is not bound yet, and accepts on it once
    /// the data plane runs.
    pub fn ensure_listening(&self) -> Result<(), Report> {
        let mut st = lock(&self.state);
        if st.local.is_none() {
            let listener = std::net::TcpListener::bind(self.addr).map_err(|e| {
                Report::new(format!("cannot listen for HTTPS on {}: {e}", self.addr)).hint(
                    "another program holds the port (Caddy, nginx, an old proxy); stop it, or give cutover serve --https-listen another address",
                )
            })?;
            listener
                .set_nonblocking(true)
                .map_err(|e| Report::new(format!("cannot set up {}: {e}", self.addr)))?;
            st.local = listener.local_addr().ok();
            st.kept = listener.try_clone().ok();
            st.listener = Some(listener);
            tracing::info!(addr = ?st.local, "HTTPS listener bound");
        }
        start(&mut st);
        Ok(())
    }

    /// Where it listens, once bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        lock(&self.state).local
    }

    /// The port redirects name: the bound one (none in the URL for 443).
    pub fn public_port(&self) -> u16 {
        self.local_addr().map_or(self.addr.port(), |a| a.port())
    }

    /// The data plane runs: accepted connections go to `tx` until `stop`.
    pub fn attach(&self, tx: mpsc::UnboundedSender<Accepted>, stop: CancellationToken) {
        let mut st = lock(&self.state);
        st.sink = Some((tx, stop));
        start(&mut st);
    }
}

fn start(st: &mut State) {
    let (Some((tx, stop)), false) = (st.sink.clone(), st.accepting) else {
        return;
    };
    let Some(listener) = st.listener.take() else {
        return;
    };
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    st.accepting = true;
    let what = format!("the HTTPS listener {:?}", st.local);
    crate::acceptor::spawn(listener, stop, what, move |stream, peer| {
        tx.send((stream, peer)).is_ok()
    });
}
