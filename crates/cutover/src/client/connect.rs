//! Opening one connection to the daemon over the transport its [`Host`]
//! names. Above this, every transport is the same HTTP/1.1.

use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use cutover_core::sync::lock;
use cutover_tls::Trust;

use super::host::{Host, SshHost};

/// A byte stream to the daemon.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Everything a connection needs: where, and for HTTPS what to trust and
/// which token to show.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: Host,
    pub trust: Trust,
    /// Sent as `Authorization: Bearer` on HTTPS; the Unix socket and ssh
    /// are guarded by who may open the socket.
    pub token: Option<String>,
    /// The ssh program and options before the destination
    /// (`CUTOVER_SSH_COMMAND`, else `ssh`).
    pub ssh_command: Vec<String>,
}

/// What went wrong opening a connection, with what the transport said.
#[derive(Debug)]
pub struct ConnectError {
    pub error: io::Error,
    /// The last lines ssh printed on stderr, when ssh was the transport.
    pub said: Option<String>,
}

impl From<io::Error> for ConnectError {
    fn from(error: io::Error) -> ConnectError {
        ConnectError { error, said: None }
    }
}

/// An open connection and, for ssh, a way to ask what ssh said when the
/// connection fails later (ssh reports a refused host key after the pipes
/// are open).
pub struct Connection {
    pub io: Box<dyn Io>,
    pub ssh_said: Option<SshStderr>,
}

pub async fn connect(endpoint: &Endpoint) -> Result<Connection, ConnectError> {
    match &endpoint.host {
        Host::Unix(path) => Ok(Connection {
            io: Box::new(UnixStream::connect(path).await?),
            ssh_said: None,
        }),
        Host::Https { host, port } => {
            let tcp = TcpStream::connect((host.as_str(), *port)).await?;
            let _ = tcp.set_nodelay(true);
            let config = cutover_tls::client_config(&endpoint.trust).map_err(io::Error::other)?;
            let name = rustls_pki_types::ServerName::try_from(host.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await?;
            Ok(Connection {
                io: Box::new(tls),
                ssh_said: None,
            })
        }
        Host::Ssh(ssh) => {
            let (io, said) = ssh_pipe(&endpoint.ssh_command, ssh)?;
            Ok(Connection {
                io: Box::new(io),
                ssh_said: Some(said),
            })
        }
    }
}

/// The arguments of the ssh call: batch mode (no password or host-key
/// prompt can hang a CI job), then the destination, then the command the
/// far side runs. The user's agent, keys, `~/.ssh/config` and known_hosts
/// apply as they would to any ssh.
pub fn ssh_args(ssh: &SshHost) -> Vec<String> {
    let mut args = vec!["-o".into(), "BatchMode=yes".into()];
    if let Some(port) = ssh.port {
        args.extend(["-p".into(), port.to_string()]);
    }
    if let Some(user) = &ssh.user {
        args.extend(["-l".into(), user.clone()]);
    }
    // `--` ends ssh's options: the host cannot be read as one.
    args.extend(["--".into(), ssh.host.clone()]);
    args.extend(["cutover".into(), "dial-stdio".into()]);
    if let Some(socket) = &ssh.socket {
        // The remote shell splits the command line: quote the path.
        args.extend(["--socket".into(), shell_quote(&socket.to_string_lossy())]);
    }
    args
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn ssh_pipe(command: &[String], ssh: &SshHost) -> Result<(SshIo, SshStderr), ConnectError> {
    let (program, options) = command
        .split_first()
        .expect("the ssh command is never empty");
    let mut child = Command::new(program)
        .args(options)
        .args(ssh_args(ssh))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            let error = if e.kind() == io::ErrorKind::NotFound {
                io::Error::new(
                    e.kind(),
                    format!("cannot run {program:?}: it is not on PATH"),
                )
            } else {
                io::Error::new(e.kind(), format!("cannot run {program:?}: {e}"))
            };
            ConnectError { error, said: None }
        })?;
    let said = SshStderr::default();
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let sink = said.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.push(&buf[..n]);
        }
    });
    let io = SshIo {
        stdin: child.stdin.take().expect("stdin is piped"),
        stdout: child.stdout.take().expect("stdout is piped"),
        _child: child,
    };
    Ok((io, said))
}

/// What ssh printed on stderr, kept to explain a failure (the last 4 KiB).
#[derive(Clone, Default)]
pub struct SshStderr(Arc<Mutex<Vec<u8>>>);

impl SshStderr {
    fn push(&self, bytes: &[u8]) {
        let mut kept = lock(&self.0);
        kept.extend_from_slice(bytes);
        let excess = kept.len().saturating_sub(4096);
        kept.drain(..excess);
    }

    /// The text so far, trimmed; `None` when ssh said nothing. ssh writes
    /// its last words as it exits: a moment is given for them to arrive.
    pub async fn text(&self) -> Option<String> {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let kept = lock(&self.0);
        let text = String::from_utf8_lossy(&kept).trim().to_string();
        (!text.is_empty()).then_some(text)
    }
}

/// ssh's stdout and stdin as one stream; dropping it kills ssh.
struct SshIo {
    stdin: ChildStdin,
    stdout: ChildStdout,
    _child: Child,
}

impl AsyncRead for SshIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for SshIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_runs_dial_stdio_in_batch_mode() {
        let Host::Ssh(ssh) = Host::parse("ssh://deploy@vm1:2222/run/my cutover.sock").unwrap()
        else {
            unreachable!()
        };
        assert_eq!(
            ssh_args(&ssh),
            [
                "-o",
                "BatchMode=yes",
                "-p",
                "2222",
                "-l",
                "deploy",
                "--",
                "vm1",
                "cutover",
                "dial-stdio",
                "--socket",
                "'/run/my cutover.sock'"
            ]
        );
    }
}
