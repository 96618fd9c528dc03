//! The TCP control listener: TLS by default, plain HTTP only on a loopback
//! address (`cutover serve` refuses anything else at start).
//!
//! TLS handshakes run in their own tasks, off the accept loop: a client
//! that opens a connection and says nothing must not keep the next one
//! from being accepted. A handshake that takes longer than the header
//! timeout is dropped.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;

/// Handshakes done but not yet taken by the accept loop.
const READY_BACKLOG: usize = 64;

pub struct ControlTcp {
    tcp: TcpListener,
    tls: Option<Tls>,
}

struct Tls {
    acceptor: TlsAcceptor,
    timeout: Duration,
    ready_tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    ready_rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl ControlTcp {
    /// Serves TLS with `config` when given, else plain HTTP.
    pub fn new(
        tcp: TcpListener,
        config: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
        handshake_timeout: Duration,
    ) -> ControlTcp {
        let tls = config.map(|config| {
            let (ready_tx, ready_rx) = mpsc::channel(READY_BACKLOG);
            Tls {
                acceptor: TlsAcceptor::from(config),
                timeout: handshake_timeout,
                ready_tx,
                ready_rx,
            }
        });
        ControlTcp { tcp, tls }
    }

    /// The listening socket, for a handoff to a successor.
    pub fn into_tcp(self) -> TcpListener {
        self.tcp
    }
}

impl axum::serve::Listener for ControlTcp {
    type Io = Either<TcpStream, TlsStream<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        loop {
            let Some(tls) = &mut self.tls else {
                let (stream, addr) = accept_tcp(&self.tcp).await;
                return (Either::Left(stream), addr);
            };
            tokio::select! {
                Some((stream, addr)) = tls.ready_rx.recv() => return (Either::Right(stream), addr),
                (stream, addr) = accept_tcp(&self.tcp) => {
                    let (acceptor, ready, timeout) = (tls.acceptor.clone(), tls.ready_tx.clone(), tls.timeout);
                    tokio::spawn(async move {
                        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => {
                                let _ = ready.send((stream, addr)).await;
                            }
                            Ok(Err(e)) => tracing::debug!(peer = %addr, error = %e, "control TLS handshake failed"),
                            Err(_) => tracing::debug!(peer = %addr, "control TLS handshake timed out"),
                        }
                    });
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// The next connection; an accept error (descriptors exhausted) is waited
/// out, as axum's own listener does.
async fn accept_tcp(tcp: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match tcp.accept().await {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                return (stream, addr);
            }
            Err(e) => {
                tracing::warn!(error = %e, "control listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
