//! The daemon's listening sockets: bound at a fresh start, or taken over
//! from the daemon running on the same state dir (`--takeover`).

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::Duration;

use cutover_proxy::admin::{bind_control_socket, SocketFile};
use cutover_proxy::state::{DirLock, StateError};
use tokio::net::{TcpListener, UnixListener};

use crate::error::CliError;
use crate::handoff::{self, Takeover};
use crate::settings::ServeSettings;

/// Every listener the daemon serves on, and the lock of its state dir.
pub(super) struct Bound {
    pub data: TcpListener,
    pub control_socket: UnixListener,
    pub socket_file: SocketFile,
    pub control_tcp: Option<TcpListener>,
    pub metrics: Option<TcpListener>,
    /// The apps' own ports a predecessor handed over.
    pub ports: Vec<(SocketAddr, std::net::TcpListener)>,
    pub lock: DirLock,
}

impl Bound {
    /// Duplicates of the listening sockets, kept to hand to a successor:
    /// the serving tasks own the originals.
    pub fn duplicates(&self) -> io::Result<handoff::Listeners> {
        let tcp = |l: &TcpListener| -> io::Result<std::net::TcpListener> {
            Ok(l.as_fd().try_clone_to_owned()?.into())
        };
        Ok(handoff::Listeners {
            data: Some(tcp(&self.data)?),
            control_socket: Some(self.control_socket.as_fd().try_clone_to_owned()?.into()),
            control_tcp: self.control_tcp.as_ref().map(tcp).transpose()?,
            metrics: self.metrics.as_ref().map(tcp).transpose()?,
            // Taken from the proxy at handoff time: they change with deploys.
            ports: Vec::new(),
        })
    }
}

/// A fresh start. The control socket first: a second daemon must hear
/// that one is running, not that port 80 is taken. If anything after it
/// fails, the file goes away.
pub(super) async fn bind(settings: &ServeSettings) -> Result<Bound, CliError> {
    let socket = bind_control_socket(
        &settings.socket,
        settings.socket_group.as_ref().map(|g| g.gid),
    )
    .await?;
    let (control_socket, socket_file) = socket.into_parts();
    let rest = async {
        // After the socket: a second daemon on the same socket hears that
        // one answers there; one on another socket but this state dir
        // stops here.
        let lock = DirLock::acquire(&settings.state_dir)?;
        let data = bind_tcp(settings.listen, "--listen").await?;
        let (control_tcp, metrics) = bind_optional(settings, None, None).await?;
        Ok::<_, CliError>((lock, data, control_tcp, metrics))
    };
    match rest.await {
        Ok((lock, data, control_tcp, metrics)) => Ok(Bound {
            data,
            control_socket,
            socket_file,
            control_tcp,
            metrics,
            ports: Vec::new(),
            lock,
        }),
        Err(e) => {
            socket_file.remove();
            Err(e)
        }
    }
}

/// The listeners of the daemon running on this state dir, which stops
/// accepting once [`Takeover::ready`] is sent. A listener these settings
/// ask for and the predecessor did not have is bound here; one they do not
/// ask for is closed.
pub(super) async fn take_over(settings: &ServeSettings) -> Result<(Bound, Takeover), CliError> {
    let state_dir = settings.state_dir.clone();
    let mut takeover =
        tokio::task::spawn_blocking(move || handoff::take_over(&state_dir, handoff::PAUSE_TIMEOUT))
            .await
            .map_err(|e| CliError::failure(format!("the handoff task failed: {e}")))?
            .map_err(|e| CliError::failure(cutover_core::diag::Diagnose::report(&e)))?;
    let got = std::mem::take(&mut takeover.listeners);
    let lost = |what: &str| {
        CliError::failure(format!("the running daemon handed over no {what} listener"))
            .with_hint("it keeps serving; see its log")
    };
    let data = tokio_tcp(got.data.ok_or_else(|| lost("data"))?)?;
    let control_socket = {
        let std = got.control_socket.ok_or_else(|| lost("control socket"))?;
        std.set_nonblocking(true).map_err(adopt_err)?;
        UnixListener::from_std(std).map_err(adopt_err)?
    };
    let socket_file = SocketFile::existing(&settings.socket).map_err(|e| {
        CliError::failure(format!(
            "the control socket {} of the running daemon is not there: {e}",
            settings.socket.display()
        ))
        .with_hint("start the new daemon with the same --socket as the running one")
    })?;
    if let Ok(addr) = data.local_addr() {
        if settings.listen.port() != 0 && addr != settings.listen {
            tracing::warn!(%addr, wanted = %settings.listen, "the data listener taken over is not the --listen address; serving on it anyway");
        }
    }
    let lock = lock_after_handoff(&settings.state_dir).await?;
    let control_tcp = got.control_tcp.map(tokio_tcp).transpose()?;
    let metrics = got.metrics.map(tokio_tcp).transpose()?;
    let (control_tcp, metrics) = bind_optional(settings, control_tcp, metrics).await?;
    Ok((
        Bound {
            data,
            control_socket,
            socket_file,
            control_tcp,
            metrics,
            ports: got.ports,
            lock,
        },
        takeover,
    ))
}

/// The state dir's lock, which the other side of a handoff is letting go
/// of (the predecessor right before it sends the listeners, a failed
/// successor as it exits): a moment's retry covers the two processes'
/// ordering.
pub(super) async fn lock_after_handoff(state_dir: &std::path::Path) -> Result<DirLock, CliError> {
    let mut tries = 0;
    loop {
        match DirLock::acquire(state_dir) {
            Ok(lock) => return Ok(lock),
            Err(StateError::InUse { .. }) if tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

type Optional = (Option<TcpListener>, Option<TcpListener>);

/// The TCP control listener and the metrics listener as the settings ask
/// for them: the one taken over when there is one, else bound now.
async fn bind_optional(
    settings: &ServeSettings,
    control_have: Option<TcpListener>,
    metrics_have: Option<TcpListener>,
) -> Result<Optional, CliError> {
    let control_tcp = match &settings.control_listen {
        Some(control) => {
            let listener = match control_have {
                Some(l) => l,
                None => bind_tcp(control.addr, "--control-listen").await?,
            };
            Some(listener)
        }
        None => None,
    };
    let metrics = match settings.metrics_listen {
        Some(addr) => Some(match metrics_have {
            Some(l) => l,
            None => bind_tcp(addr, "--metrics-listen").await?,
        }),
        None => None,
    };
    Ok((control_tcp, metrics))
}

fn adopt_err(e: io::Error) -> CliError {
    CliError::failure(format!("cannot serve on a listener taken over: {e}"))
}

fn tokio_tcp(l: std::net::TcpListener) -> Result<TcpListener, CliError> {
    l.set_nonblocking(true).map_err(adopt_err)?;
    TcpListener::from_std(l).map_err(adopt_err)
}

async fn bind_tcp(addr: SocketAddr, flag: &str) -> Result<TcpListener, CliError> {
    TcpListener::bind(addr).await.map_err(|e| {
        let err = CliError::failure(format!("cannot listen on {addr} ({flag}): {e}"));
        match e.kind() {
            io::ErrorKind::AddrInUse => {
                err.with_hint(format!("another process listens on {addr}: stop it, or choose another address with {flag}"))
            }
            io::ErrorKind::PermissionDenied if addr.port() < 1024 => err.with_hint(format!(
                "ports below 1024 need root or CAP_NET_BIND_SERVICE (dist/cutover.service grants it); or choose a higher port with {flag}"
            )),
            io::ErrorKind::AddrNotAvailable => err.with_hint(format!("{} is not an address of this host", addr.ip())),
            _ => err,
        }
    })
}
