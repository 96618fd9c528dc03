//! Files in the daemon's state dir, written so that a crash leaves either the
//! old or the new content, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use cutover_core::diag::{Diagnose, Report};

#[derive(Debug, thiserror::Error)]
#[error("state file {}: {source}", path.display())]
pub struct StoreError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl Diagnose for StoreError {
    fn hint(&self) -> Option<String> {
        Some("the daemon's state dir must be writable by the daemon".into())
    }
}

impl From<StoreError> for Report {
    fn from(e: StoreError) -> Report {
        e.report()
    }
}

pub fn err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError {
        path: path.to_path_buf(),
        source,
    }
}

/// Replaces `path` atomically ([`cutover_fs::write_atomic`]), creating its
/// directory first.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    cutover_fs::write_atomic(path, bytes).map_err(err(path))
}

/// Appends one line and fsyncs: a JSON-lines log survives a crash up to the
/// last complete line.
pub fn append_line(path: &Path, line: &str) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(err(path))?;
    let mut buf = line.as_bytes().to_vec();
    buf.push(b'\n');
    f.write_all(&buf).map_err(err(path))?;
    f.sync_data().map_err(err(path))
}

/// Runs a state-file write (`f`, which writes `path`) on the blocking pool:
/// its fsync can take long on a busy disk, and an async worker must not wait
/// for it while the proxy and other operations share the runtime.
pub(crate) async fn off_runtime<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError {
            path: path.to_path_buf(),
            source: std::io::Error::other("the daemon shut down before the write ran"),
        }),
    }
}

/// `<dir>/<project>/<service>.json`: the one file per app of the
/// releases and stages stores.
pub fn app_file(dir: &Path, project: &str, service: &str) -> PathBuf {
    dir.join(safe_name(project))
        .join(format!("{}.json", safe_name(service)))
}

/// The services that have an [`app_file`] under `dir` for `project`.
pub fn app_files(dir: &Path, project: &str) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir.join(safe_name(project))) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_string)
        })
        .collect()
}

/// A project or service name as a file name: they are already restricted to
/// `[a-z0-9_-]`, but a name from a URL is not trusted.
pub fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}
