//! `cutover dial-stdio`: stdin to the control socket, the socket to stdout.
//! What an `ssh://` client runs on the daemon's host, as `docker system
//! dial-stdio` is for Docker's: ssh carries the bytes, the socket's
//! permissions decide who may use it.

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use crate::args::{GlobalArgs, Origins};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::settings::{socket_path, HostEnv};

pub fn run(global: &GlobalArgs, origins: &Origins, env: &HostEnv) -> Result<ExitStatus, CliError> {
    let socket = socket_path(global, origins, env)?;
    let runtime = super::client_runtime()?;
    let status = runtime.block_on(async {
        let stream = UnixStream::connect(&socket).await.map_err(|e| {
            CliError::new(
                ExitStatus::Unreachable,
                format!("cannot reach the cutover daemon at {}: {e}", socket.display()),
            )
            .with_hint("start the daemon on this host, or name its socket in the ssh:// address: ssh://HOST/path/to/cutover.sock")
        })?;
        let (mut from_daemon, mut to_daemon) = stream.into_split();
        let (mut stdin, mut stdout) = (tokio::io::stdin(), tokio::io::stdout());
        let upstream = async {
            let r = tokio::io::copy(&mut stdin, &mut to_daemon).await;
            // The client is done sending: the daemon may still answer.
            let _ = to_daemon.shutdown().await;
            r
        };
        let downstream = async {
            let r = tokio::io::copy(&mut from_daemon, &mut stdout).await;
            let _ = stdout.flush().await;
            r
        };
        // The answer's end ends the command, whether or not stdin closed.
        tokio::pin!(upstream, downstream);
        tokio::select! {
            _ = &mut upstream => { let _ = (&mut downstream).await; }
            _ = &mut downstream => {}
        }
        Ok(ExitStatus::Success)
    });
    // A read of stdin may still block a thread: it must not hold the exit.
    runtime.shutdown_background();
    status
}
