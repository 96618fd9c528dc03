//! Handing the daemon's listening sockets to a successor, so that a
//! restart or a binary upgrade refuses no connection and cuts no request.
//!
//! The running daemon (the *predecessor*) listens on `handoff.sock` in its
//! state dir (0600 in a 0700 dir: only its user reaches it). A successor is
//! `cutover serve --takeover`, started by `cutover upgrade` (through the
//! predecessor, so that systemd's `ExecReload` works) or by hand. As HAProxy
//! and sozu do, the listeners travel as file descriptors (SCM_RIGHTS): the
//! kernel's listening sockets never close, so a connection that arrives in
//! between waits in the accept queue instead of being refused.
//!
//! ```text
//!  successor                         predecessor (serving throughout)
//!  connect handoff.sock  ── hello ──▶ pause: stop the control listeners,
//!                                     refuse new deploys, wait for the
//!                                     running ones; save the routes;
//!                                     release the state-dir lock
//!                        ◀─ listeners + fds ──
//!  lock the state dir, load the
//!  routes, serve on the fds
//!                        ── ready ──▶ stop accepting; in-flight requests
//!                                     finish, WebSockets stay until their
//!                                     drain deadline (then 1012); exit 0
//! ```
//!
//! If the successor goes away or says nothing within [`READY_TIMEOUT`]
//! before `ready`, the predecessor takes its lock back, resumes its control
//! listeners and keeps serving: a broken new binary never takes the site
//! down.

use std::io::{self, BufRead, BufReader, IoSlice, IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};

/// The socket a daemon takes handoff requests on, in its state dir.
pub const SOCKET: &str = "handoff.sock";

/// How long the predecessor waits for its running deploys before it hands
/// over (new ones are refused meanwhile).
pub const PAUSE_TIMEOUT: Duration = Duration::from_secs(600);

/// How long the predecessor waits for `ready` once it sent the listeners.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The most listeners one handoff carries: data, control socket, control
/// TCP, metrics, and the apps' own ports.
const MAX_FDS: usize = 64;

/// What a listener is for, in the order the fds travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Data,
    ControlSocket,
    ControlTcp,
    Metrics,
    /// An app's own port (`ports:` in its compose file), by address.
    Port(std::net::SocketAddr),
}

/// The daemon's listening sockets, as the kernel holds them.
#[derive(Debug, Default)]
pub struct Listeners {
    pub data: Option<std::net::TcpListener>,
    pub control_socket: Option<UnixListener>,
    pub control_tcp: Option<std::net::TcpListener>,
    pub metrics: Option<std::net::TcpListener>,
    /// The apps' own ports, by address.
    pub ports: Vec<(std::net::SocketAddr, std::net::TcpListener)>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Message {
    Hello { pid: u32, version: String },
    Listeners { roles: Vec<Role> },
    Refused { reason: String },
    Ready { pid: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("no cutover daemon takes handoffs at {}: {source}", path.display())]
    NoPredecessor { path: PathBuf, source: io::Error },
    #[error("the running daemon refused the handoff: {0}")]
    Refused(String),
    #[error("the handoff broke off: {0}")]
    Io(#[from] io::Error),
    #[error("the handoff broke off: unexpected message {0}")]
    Protocol(String),
}

impl cutover_core::diag::Diagnose for HandoffError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            HandoffError::NoPredecessor { .. } => "start the daemon without --takeover, or give the --state-dir of the daemon to take over from".into(),
            HandoffError::Refused(_) => "the running daemon keeps serving; run `cutover upgrade` again once it is idle".into(),
            HandoffError::Io(_) | HandoffError::Protocol(_) => "the running daemon keeps serving; see both daemons' logs".into(),
        })
    }
}

fn write_line(stream: &mut UnixStream, msg: &Message) -> io::Result<()> {
    let mut line = serde_json::to_vec(msg).expect("handoff messages serialize");
    line.push(b'\n');
    stream.write_all(&line)
}

fn parse(line: &str) -> Result<Message, HandoffError> {
    serde_json::from_str(line.trim()).map_err(|_| HandoffError::Protocol(line.trim().into()))
}

// ---------------------------------------------------------------- successor

/// The successor's side of a handoff in progress: it holds the listeners
/// and still owes the predecessor its `ready`.
pub struct Takeover {
    pub listeners: Listeners,
    stream: UnixStream,
}

impl Takeover {
    /// Tells the predecessor to stop accepting: this process serves now.
    pub fn ready(mut self) -> io::Result<()> {
        write_line(
            &mut self.stream,
            &Message::Ready {
                pid: std::process::id(),
            },
        )
    }
}

/// Asks the daemon of `state_dir` for its listeners. Blocking: run it off
/// the async runtime.
pub fn take_over(state_dir: &Path, pause_timeout: Duration) -> Result<Takeover, HandoffError> {
    let path = state_dir.join(SOCKET);
    let mut stream = UnixStream::connect(&path).map_err(|source| HandoffError::NoPredecessor {
        path: path.clone(),
        source,
    })?;
    write_line(
        &mut stream,
        &Message::Hello {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
    )?;
    // The predecessor first waits for its running deploys.
    stream.set_read_timeout(Some(pause_timeout + Duration::from_secs(10)))?;
    let (line, fds) = recv_with_fds(&stream)?;
    let roles = match parse(&line)? {
        Message::Listeners { roles } => roles,
        Message::Refused { reason } => return Err(HandoffError::Refused(reason)),
        other => return Err(HandoffError::Protocol(format!("{other:?}"))),
    };
    if roles.len() != fds.len() {
        return Err(HandoffError::Protocol(format!(
            "{} listeners announced, {} received",
            roles.len(),
            fds.len()
        )));
    }
    let mut listeners = Listeners::default();
    for (role, fd) in roles.into_iter().zip(fds) {
        match role {
            Role::Data => listeners.data = Some(fd.into()),
            Role::ControlSocket => listeners.control_socket = Some(fd.into()),
            Role::ControlTcp => listeners.control_tcp = Some(fd.into()),
            Role::Metrics => listeners.metrics = Some(fd.into()),
            Role::Port(addr) => listeners.ports.push((addr, fd.into())),
        }
    }
    Ok(Takeover { listeners, stream })
}

/// One line and the descriptors sent with it.
fn recv_with_fds(stream: &UnixStream) -> io::Result<(String, Vec<OwnedFd>)> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut buf = vec![0u8; 64 * 1024];
    let mut fds = Vec::new();
    let mut len = 0;
    // The line is written in one sendmsg; a stream socket may still hand
    // it over in pieces, the descriptors with the first.
    while !buf[..len].contains(&b'\n') {
        let got = recvmsg(
            stream,
            &mut [IoSliceMut::new(&mut buf[len..])],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = msg {
                fds.extend(received);
            }
        }
        if got.bytes == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        len += got.bytes;
        if len == buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "handoff message too long",
            ));
        }
    }
    Ok((String::from_utf8_lossy(&buf[..len]).into_owned(), fds))
}

// -------------------------------------------------------------- predecessor

/// The predecessor's handoff socket, removed at exit only if still its own
/// (a successor binds its own in the same place).
pub struct HandoffSocket {
    listener: UnixListener,
    path: PathBuf,
    identity: (u64, u64),
}

impl HandoffSocket {
    /// Binds `handoff.sock` in `state_dir`, replacing a file left by a
    /// stopped daemon or by the predecessor this one took over from (the
    /// state-dir lock, held by the caller, says no other daemon runs here).
    pub fn bind(state_dir: &Path) -> io::Result<HandoffSocket> {
        let path = state_dir.join(SOCKET);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(&path)?;
        let meta = std::fs::symlink_metadata(&path)?;
        Ok(HandoffSocket {
            listener,
            path,
            identity: (meta.dev(), meta.ino()),
        })
    }

    /// The next successor that says hello. Blocking.
    pub fn accept(&self) -> io::Result<Successor> {
        loop {
            let (stream, _) = self.listener.accept()?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut reader = BufReader::new(stream.try_clone()?);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            match parse(&line) {
                Ok(Message::Hello { pid, version }) => {
                    return Ok(Successor {
                        stream,
                        reader,
                        pid,
                        version,
                    })
                }
                _ => tracing::warn!(
                    line = line.trim(),
                    "ignoring a handoff connection that did not say hello"
                ),
            }
        }
    }

    pub fn remove(&self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.identity {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// A successor that asked for the listeners.
pub struct Successor {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    pub pid: u32,
    pub version: String,
}

impl Successor {
    /// Says no; the successor exits.
    pub fn refuse(mut self, reason: &str) {
        let _ = write_line(
            &mut self.stream,
            &Message::Refused {
                reason: reason.into(),
            },
        );
    }

    /// Sends the listeners (the kernel duplicates the descriptors; ours stay
    /// open) and waits for `ready`. Blocking.
    pub fn hand_over(mut self, listeners: &[(Role, BorrowedFd<'_>)]) -> Result<u32, HandoffError> {
        let roles: Vec<Role> = listeners.iter().map(|(r, _)| *r).collect();
        let fds: Vec<BorrowedFd<'_>> = listeners.iter().map(|(_, fd)| *fd).collect();
        let mut line = serde_json::to_vec(&Message::Listeners { roles }).expect("serializes");
        line.push(b'\n');
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(
            control.push(SendAncillaryMessage::ScmRights(&fds)),
            "room for every listener"
        );
        let sent = sendmsg(
            &self.stream,
            &[IoSlice::new(&line)],
            &mut control,
            SendFlags::empty(),
        )
        .map_err(io::Error::from)?;
        if sent < line.len() {
            self.stream.write_all(&line[sent..])?;
        }
        self.stream.set_read_timeout(Some(READY_TIMEOUT))?;
        let mut answer = String::new();
        if self.reader.read_line(&mut answer)? == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        match parse(&answer)? {
            Message::Ready { pid } => Ok(pid),
            other => Err(HandoffError::Protocol(format!("{other:?}"))),
        }
    }
}

/// The borrowed descriptors of `listeners`, in the order they travel.
pub fn borrowed(listeners: &Listeners) -> Vec<(Role, BorrowedFd<'_>)> {
    let mut out = Vec::new();
    if let Some(l) = &listeners.data {
        out.push((Role::Data, l.as_fd()));
    }
    if let Some(l) = &listeners.control_socket {
        out.push((Role::ControlSocket, l.as_fd()));
    }
    if let Some(l) = &listeners.control_tcp {
        out.push((Role::ControlTcp, l.as_fd()));
    }
    if let Some(l) = &listeners.metrics {
        out.push((Role::Metrics, l.as_fd()));
    }
    for (addr, l) in &listeners.ports {
        out.push((Role::Port(*addr), l.as_fd()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ends in one process: the successor gets working duplicates of
    /// the listeners, and a connection made to the original is accepted on
    /// the duplicate.
    #[test]
    fn listeners_travel_and_keep_their_queue() {
        let dir = tempfile::tempdir().unwrap();
        let socket = HandoffSocket::bind(dir.path()).unwrap();
        let data = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = data.local_addr().unwrap();
        let control = UnixListener::bind(dir.path().join("c.sock")).unwrap();
        let ours = Listeners {
            data: Some(data),
            control_socket: Some(control),
            ..Listeners::default()
        };
        let predecessor = std::thread::spawn(move || {
            let successor = socket.accept().unwrap();
            assert_eq!(successor.version, env!("CARGO_PKG_VERSION"));
            let pid = successor.hand_over(&borrowed(&ours)).unwrap();
            (pid, ours)
        });
        let takeover = take_over(dir.path(), Duration::from_secs(5)).unwrap();
        // Queued before anyone accepts on the new descriptor.
        let client = std::net::TcpStream::connect(addr).unwrap();
        let data = takeover.listeners.data.as_ref().unwrap();
        assert_eq!(data.local_addr().unwrap(), addr);
        let (accepted, _) = data.accept().unwrap();
        assert_eq!(accepted.peer_addr().unwrap(), client.local_addr().unwrap());
        assert!(takeover.listeners.control_socket.is_some());
        assert!(takeover.listeners.control_tcp.is_none());
        takeover.ready().unwrap();
        let (pid, _ours) = predecessor.join().unwrap();
        assert_eq!(pid, std::process::id());
    }

    #[test]
    fn a_successor_that_goes_away_is_an_error_for_the_predecessor() {
        let dir = tempfile::tempdir().unwrap();
        let socket = HandoffSocket::bind(dir.path()).unwrap();
        let data = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = Listeners {
            data: Some(data),
            ..Listeners::default()
        };
        let predecessor = std::thread::spawn(move || {
            let successor = socket.accept().unwrap();
            successor.hand_over(&borrowed(&ours)).map(|_| ())
        });
        let takeover = take_over(dir.path(), Duration::from_secs(5)).unwrap();
        drop(takeover);
        assert!(predecessor.join().unwrap().is_err());
    }
}
