//! An app's own ports (`ports: ["8080:8080"]` in its compose file): host
//! addresses where the daemon listens for that one service, so users reach
//! it where they always did while both colors run without holding the
//! port. A connection accepted there is pinned to the service: it is
//! routed to the live set whatever its Host, switched and drained like
//! every route.
//!
//! Lifecycle of one address, per deploy of its service:
//!
//! ```text
//!   claim ──▶ staged (bound, not accepting) ──gate fails──▶ released
//!                  │
//!                  └─install──▶ serving ──service drops it / removed──▶ closed
//! ```
//!
//! Binding comes first, before the health gate, so a port another program
//! holds fails the deploy before anything switches. Listeners the data
//! plane is not running yet (at start, before `serve`) begin accepting
//! when it starts. Across an upgrade the bound sockets travel to the
//! successor like the main listener ([`PortRoutes::handoff`]).
//!
//! The same goes for an app's in-network addresses (a bridge gateway at
//! the app's port, where other containers reach it by name). Those can
//! overlap: one project publishes `0.0.0.0:8080` while another's app
//! listens on 8080 in its network. So these sockets share the port
//! (`SO_REUSEPORT`) and the kernel gives each connection to the socket
//! bound most exactly to where it arrived. The main listener does not
//! share (a second daemon on its port must fail), so an address it covers
//! is not bound: the main listener's acceptor asks [`PortRoutes::pinned_at`]
//! whose it is.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cutover_core::diag::Report;
use cutover_core::sync::lock;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A connection accepted on an app's port, and the service it is for.
pub(crate) type Pinned = (TcpStream, SocketAddr, Arc<str>);

#[derive(Default)]
pub(crate) struct PortRoutes {
    state: Mutex<State>,
    /// Whether any committed address is the main listener's to accept, so
    /// its acceptor looks up nothing (no `getsockname`) until one is.
    on_main: AtomicBool,
}

#[derive(Default)]
struct State {
    bound: BTreeMap<SocketAddr, Bound>,
    /// Where the data listener is bound.
    main: Vec<SocketAddr>,
    /// Sockets a predecessor handed over, until a service claims them.
    adopted: BTreeMap<SocketAddr, std::net::TcpListener>,
    /// Where accepted connections go while the data plane runs.
    sink: Option<Sink>,
}

struct Bound {
    service: String,
    /// `None`: the main listener covers the address and accepts for it.
    listener: Option<std::net::TcpListener>,
    /// Set while an acceptor runs; cancelling it stops accepting.
    accepting: Option<CancellationToken>,
    /// Installed by a deploy: accepts once the data plane runs.
    committed: bool,
}

#[derive(Clone)]
struct Sink {
    tx: mpsc::UnboundedSender<Pinned>,
    stop: CancellationToken,
}

/// What a claim bound anew, to release if the deploy does not go through.
#[must_use]
#[derive(Debug)]
pub(crate) struct Claim {
    fresh: Vec<SocketAddr>,
}

impl PortRoutes {
    /// Binds every address of `listen` that `service` does not hold yet.
    /// One that another service holds, or that cannot be bound, is an
    /// error naming it; nothing stays bound then.
    pub fn claim(&self, service: &str, listen: &[String]) -> Result<Claim, Report> {
        let mut st = lock(&self.state);
        let mut claim = Claim { fresh: Vec::new() };
        for text in listen {
            let addr: SocketAddr = text
                .parse()
                .map_err(|_| Report::new(format!("listen: {text:?} is not an address")))?;
            match st.bound.get(&addr) {
                Some(b) if b.service == service => continue,
                Some(b) => {
                    let other = b.service.clone();
                    release(&mut st, &claim);
                    return Err(
                        Report::new(format!("{addr} is already the port of {other}"))
                            .hint("give one of the apps another host port in its `ports:`"),
                    );
                }
                None => {}
            }
            let listener = match st.adopted.remove(&addr) {
                Some(l) => Some(l),
                None if st.main.iter().any(|m| covers(*m, addr)) => None,
                None => match bind(addr, &st) {
                    Ok(l) => Some(l),
                    Err(e) => {
                        release(&mut st, &claim);
                        return Err(Report::new(format!("cannot listen on {addr}: {e}")).hint(
                            "another program holds the port (a container that publishes it, an old proxy); stop it, or publish the app on another host port",
                        ));
                    }
                },
            };
            st.bound.insert(
                addr,
                Bound {
                    service: service.to_string(),
                    listener,
                    accepting: None,
                    committed: false,
                },
            );
            claim.fresh.push(addr);
        }
        Ok(claim)
    }

    /// The deploy did not go through: what its claim bound is closed.
    pub fn release(&self, claim: Claim) {
        release(&mut lock(&self.state), &claim);
    }

    /// The deploy is installed: `service` is served on exactly `listen`.
    /// Its other addresses stop accepting and close; connections already
    /// accepted there go on.
    pub fn commit(&self, service: &str, listen: &[String]) {
        let mut st = lock(&self.state);
        let wanted: Vec<SocketAddr> = listen.iter().filter_map(|a| a.parse().ok()).collect();
        let dropped: Vec<SocketAddr> = st
            .bound
            .iter()
            .filter(|(a, b)| b.service == service && !wanted.contains(a))
            .map(|(a, _)| *a)
            .collect();
        for addr in dropped {
            if let Some(b) = st.bound.remove(&addr) {
                if let Some(t) = b.accepting {
                    t.cancel();
                }
            }
        }
        let sink = st.sink.clone();
        for addr in wanted {
            if let Some(b) = st.bound.get_mut(&addr) {
                b.committed = true;
                if let Some(sink) = &sink {
                    start(addr, b, sink);
                }
            }
        }
        let on_main = st
            .bound
            .values()
            .any(|b| b.committed && b.listener.is_none());
        self.on_main.store(on_main, Ordering::Relaxed);
    }

    /// The data listener is bound at `addr`.
    pub fn main_listener(&self, addr: SocketAddr) {
        let mut st = lock(&self.state);
        if !st.main.contains(&addr) {
            st.main.push(addr);
        }
    }

    /// The service a connection the main listener accepted is pinned to:
    /// one that arrived at an app's in-network address the main listener
    /// covers.
    pub fn pinned_at(&self, stream: &TcpStream) -> Option<Arc<str>> {
        if !self.on_main.load(Ordering::Relaxed) {
            return None;
        }
        let local = stream.local_addr().ok()?;
        let st = lock(&self.state);
        let b = st.bound.get(&local)?;
        (b.committed && b.listener.is_none()).then(|| b.service.as_str().into())
    }

    /// `service` is gone: its ports close.
    pub fn remove(&self, service: &str) {
        self.commit(service, &[]);
    }

    /// The data plane runs: accepted connections go to `tx` until `stop`.
    pub fn attach(&self, tx: mpsc::UnboundedSender<Pinned>, stop: CancellationToken) {
        let mut st = lock(&self.state);
        let sink = Sink { tx, stop };
        for (addr, b) in st.bound.iter_mut().filter(|(_, b)| b.committed) {
            start(*addr, b, &sink);
        }
        st.sink = Some(sink);
    }

    /// Copies of the bound sockets, for a successor to serve.
    pub fn handoff(&self) -> std::io::Result<Vec<(SocketAddr, std::net::TcpListener)>> {
        let st = lock(&self.state);
        st.bound
            .iter()
            .filter(|(_, b)| b.committed)
            .filter_map(|(a, b)| Some((a, b.listener.as_ref()?)))
            .map(|(a, l)| Ok((*a, l.try_clone()?)))
            .collect()
    }

    /// Sockets handed over by the predecessor: claims take them instead of
    /// binding anew.
    pub fn adopt(&self, listeners: Vec<(SocketAddr, std::net::TcpListener)>) {
        lock(&self.state).adopted.extend(listeners);
    }

    /// The handed-over socket bound at `addr`, for a listener other than
    /// an app's (the HTTPS one).
    pub fn take_adopted(&self, addr: SocketAddr) -> Option<std::net::TcpListener> {
        lock(&self.state).adopted.remove(&addr)
    }

    /// Closes the handed-over sockets no service claimed.
    pub fn forget_adopted(&self) {
        lock(&self.state).adopted.clear();
    }
}

fn release(st: &mut State, claim: &Claim) {
    for addr in &claim.fresh {
        st.bound.remove(addr);
    }
}

/// Whether a socket bound at `main` receives connections to `addr`.
fn covers(main: SocketAddr, addr: SocketAddr) -> bool {
    main.port() == addr.port() && (main.ip().is_unspecified() || main.ip() == addr.ip())
}

/// Binds `addr` so that our other sockets on the port may overlap it
/// (`SO_REUSEPORT`), but not another program's: a plain bind is tried
/// first, and only one of our own overlapping sockets excuses its failure.
fn bind(addr: SocketAddr, st: &State) -> std::io::Result<std::net::TcpListener> {
    // std sets SO_REUSEADDR, so a port left in TIME_WAIT by the previous
    // daemon binds again at once.
    if let Err(e) = std::net::TcpListener::bind(addr) {
        let ours = st
            .bound
            .iter()
            .any(|(a, b)| b.listener.is_some() && (covers(*a, addr) || covers(addr, *a)));
        if !ours {
            return Err(e);
        }
    }
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Starts accepting on `b` unless it already does, or the main listener
/// accepts for it.
fn start(addr: SocketAddr, b: &mut Bound, sink: &Sink) {
    if b.accepting.is_some() {
        return;
    }
    let Some(own) = &b.listener else { return };
    let listener = match own.try_clone().and_then(tokio::net::TcpListener::from_std) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, service = %b.service, error = %e, "cannot accept on the app's port");
            return;
        }
    };
    let stop = sink.stop.child_token();
    b.accepting = Some(stop.clone());
    let service: Arc<str> = b.service.as_str().into();
    let tx = sink.tx.clone();
    let what = format!("the app's port {addr}");
    crate::acceptor::spawn(listener, stop, what, move |stream, peer| {
        tx.send((stream, peer, service.clone())).is_ok()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_port() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    }

    #[test]
    fn a_port_is_one_services_and_a_failed_claim_binds_nothing() {
        let ports = PortRoutes::default();
        let (a, b) = (free_port(), free_port());
        let claim = ports.claim("shop/web", std::slice::from_ref(&a)).unwrap();
        ports.commit("shop/web", std::slice::from_ref(&a));
        drop(claim);
        let e = ports
            .claim("shop/admin", &[b.clone(), a.clone()])
            .unwrap_err();
        assert!(
            e.message.contains("is already the port of shop/web"),
            "{e:?}"
        );
        // b was bound by the failed claim and released again.
        assert!(std::net::TcpListener::bind(&b).is_ok());
        // A port another program holds is named.
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap().to_string();
        let e = ports.claim("shop/admin", &[addr]).unwrap_err();
        assert!(
            e.message.starts_with("cannot listen on 127.0.0.1:"),
            "{e:?}"
        );
        // Removing the service frees its port.
        ports.remove("shop/web");
        assert!(std::net::TcpListener::bind(&a).is_ok());
    }
}
