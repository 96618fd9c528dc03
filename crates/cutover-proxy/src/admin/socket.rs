//! The control socket: created owner-only (or group-shared), never stolen
//! from a running daemon, removed at exit only if it is still ours.

use cutover_core::diag::Diagnose;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("another cutover daemon is already answering on {}", path.display())]
    InUse { path: PathBuf },
    #[error("{} exists and is not a socket", path.display())]
    NotASocket { path: PathBuf },
    #[error("cannot check whether {} is in use: {source}", path.display())]
    Probe { path: PathBuf, source: io::Error },
    #[error("cannot remove the stale socket {}: {source}", path.display())]
    RemoveStale { path: PathBuf, source: io::Error },
    #[error("cannot create the directory of the control socket {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot bind the control socket {}: {source}", path.display())]
    Bind { path: PathBuf, source: io::Error },
    #[error("cannot give the control socket {} to group id {gid}: {source}", path.display())]
    Chown {
        path: PathBuf,
        gid: u32,
        source: io::Error,
    },
    #[error("cannot set the mode of the control socket {}: {source}", path.display())]
    Chmod { path: PathBuf, source: io::Error },
}

impl Diagnose for SocketError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            SocketError::InUse { .. } => {
                "stop the other daemon first (e.g. `systemctl stop cutover`), or give this one another --socket".into()
            }
            SocketError::NotASocket { .. } => "remove the file or choose another path with --socket".into(),
            SocketError::Chown { .. } => {
                "only root or a member of the group can hand the socket to it; check --socket-group".into()
            }
            SocketError::Probe { .. }
            | SocketError::RemoveStale { .. }
            | SocketError::CreateDir { .. }
            | SocketError::Bind { .. }
            | SocketError::Chmod { .. } => {
                "check the permissions of the socket's directory, or choose another path with --socket".into()
            }
        })
    }
}

/// A bound control socket. [`ControlSocket::remove`] unlinks the file at
/// shutdown, unless someone replaced it meanwhile.
#[derive(Debug)]
pub struct ControlSocket {
    pub listener: UnixListener,
    path: PathBuf,
    identity: (u64, u64),
}

impl ControlSocket {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Splits off the listener; the returned handle removes the file later.
    pub fn into_parts(self) -> (UnixListener, SocketFile) {
        (
            self.listener,
            SocketFile {
                path: self.path,
                identity: self.identity,
            },
        )
    }
}

/// The file of a control socket whose listener has been handed to a server.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    identity: (u64, u64),
}

impl SocketFile {
    /// The socket file at `path` as it is now: for a daemon that took the
    /// listener over from its predecessor, which bound it.
    pub fn existing(path: &Path) -> io::Result<SocketFile> {
        let meta = fs::symlink_metadata(path)?;
        Ok(SocketFile {
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unlinks the socket if the file is still the one this daemon bound.
    pub fn remove(&self) {
        match fs::symlink_metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == self.identity => {
                if let Err(e) = fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the control socket");
                }
            }
            _ => {}
        }
    }
}

/// Binds `path` with mode 0600, or 0660 owned by group `gid` when given.
///
/// An existing socket file is removed only when nothing answers on it (a
/// daemon that crashed); a live daemon on it is an error, as is a file that
/// is not a socket.
pub async fn bind_control_socket(
    path: &Path,
    gid: Option<u32>,
) -> Result<ControlSocket, SocketError> {
    let path = path.to_path_buf();
    match fs::symlink_metadata(&path) {
        Ok(meta) if !meta.file_type().is_socket() => return Err(SocketError::NotASocket { path }),
        Ok(_) => match UnixStream::connect(&path).await {
            Ok(_) => return Err(SocketError::InUse { path }),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "removing the stale control socket of a stopped daemon");
                fs::remove_file(&path).map_err(|source| SocketError::RemoveStale {
                    path: path.clone(),
                    source,
                })?;
            }
            Err(source) => return Err(SocketError::Probe { path, source }),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(SocketError::Probe { path, source }),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|source| SocketError::CreateDir {
            path: dir.into(),
            source,
        })?;
    }
    let listener = UnixListener::bind(&path).map_err(|source| SocketError::Bind {
        path: path.clone(),
        source,
    })?;
    // Whatever fails from here on leaves no socket file behind.
    let cleanup = |e: SocketError| {
        let _ = fs::remove_file(&path);
        e
    };
    let mode = if let Some(gid) = gid {
        std::os::unix::fs::chown(&path, None, Some(gid)).map_err(|source| {
            cleanup(SocketError::Chown {
                path: path.clone(),
                gid,
                source,
            })
        })?;
        0o660
    } else {
        0o600
    };
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(|source| {
        cleanup(SocketError::Chmod {
            path: path.clone(),
            source,
        })
    })?;
    let meta = fs::symlink_metadata(&path).map_err(|source| {
        cleanup(SocketError::Chmod {
            path: path.clone(),
            source,
        })
    })?;
    Ok(ControlSocket {
        listener,
        identity: (meta.dev(), meta.ino()),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn owner_only_by_default_and_stale_sockets_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/cutover.sock");
        let first = bind_control_socket(&path, None).await.unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        // While it listens, a second daemon is refused.
        let err = bind_control_socket(&path, None).await.unwrap_err();
        assert!(matches!(err, SocketError::InUse { .. }), "{err}");

        // Dropping the listener without unlinking leaves a stale file, as a
        // crash would; the next bind takes it over.
        drop(first);
        assert!(path.exists());
        let second = bind_control_socket(&path, None).await.unwrap();
        let (_listener, file) = second.into_parts();
        file.remove();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_regular_file_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cutover.sock");
        fs::write(&path, "precious").unwrap();
        let err = bind_control_socket(&path, None).await.unwrap_err();
        assert!(matches!(err, SocketError::NotASocket { .. }), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
    }

    #[tokio::test]
    async fn group_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cutover.sock");
        let gid = fs::metadata(dir.path()).unwrap().gid();
        let _socket = bind_control_socket(&path, Some(gid)).await.unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        assert_eq!(meta.gid(), gid);
    }

    #[tokio::test]
    async fn removal_spares_a_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cutover.sock");
        let (listener, file) = bind_control_socket(&path, None).await.unwrap().into_parts();
        drop(listener);
        // Written aside then renamed over, so it cannot reuse the inode.
        let other = dir.path().join("other");
        fs::write(&other, "someone else's").unwrap();
        fs::rename(&other, &path).unwrap();
        file.remove();
        assert!(path.exists());
    }
}
