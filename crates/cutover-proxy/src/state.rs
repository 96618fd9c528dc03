//! The daemon's state file: what `cutover serve` needs to bring its routes back
//! after a restart.
//!
//! Every write replaces the file atomically (temp file in the same directory,
//! fsync, rename, fsync of the directory), so a crash or power loss leaves
//! either the old or the new state, never a torn file. A file that does not
//! parse is an error, not an empty state: silently dropping routes would take
//! every service offline at the next restart.

use cutover_core::diag::Diagnose;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cutover_core::status::ProxyState;
use cutover_core::sync::lock;
use serde::{Deserialize, Serialize};

/// File name of the state inside the state directory.
pub const STATE_FILE: &str = "state.json";

/// Version of the file layout. Bump it when a change is not backward
/// compatible, and teach [`StateStore::load`] the old one.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create the state directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot read the state file {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("the state file {} is corrupt: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("the state file {} has a service this cutover cannot restore: {detail}", path.display())]
    Unrestorable { path: PathBuf, detail: String },
    #[error("the state file {} has format version {found}, this cutover reads version {FORMAT_VERSION}", path.display())]
    UnsupportedVersion { path: PathBuf, found: u64 },
    #[error("cannot write the state file {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("another cutover daemon is using the state directory {}", dir.display())]
    InUse { dir: PathBuf },
    #[error("cannot lock the state directory {} ({}): {source}", dir.display(), LOCK_FILE)]
    Lock { dir: PathBuf, source: io::Error },
}

impl Diagnose for StateError {
    /// What the user can do about it, when there is something.
    fn hint(&self) -> Option<String> {
        match self {
            StateError::CreateDir { .. } | StateError::Write { .. } => Some(
                "check that the state directory is writable by the user running cutover, or pick another one with --state-dir"
                    .into(),
            ),
            StateError::Read { .. } => Some("check the file's permissions".into()),
            StateError::Corrupt { path, .. } => Some(format!(
                "fix the file by hand, or move it away (e.g. to {}.bad) to start with no services; cutover does not start without it so that no route is dropped silently",
                path.display()
            )),
            StateError::Unrestorable { path, .. } => Some(format!(
                "a newer cutover wrote it, or it was edited by hand: run the version that wrote it, fix that entry, or move the file away (e.g. to {}.bad) to start with no services; cutover does not start without it so that no route is dropped silently",
                path.display()
            )),
            StateError::InUse { .. } => Some(
                "stop that daemon first, or give this one its own --state-dir; two daemons writing one state directory would overwrite each other's routes"
                    .into(),
            ),
            StateError::Lock { .. } => Some(
                "check that the state directory is writable by the user running cutover".into(),
            ),
            StateError::UnsupportedVersion { .. } => {
                Some("the file was written by a newer cutover; run that version, or move the file away to start with no services".into())
            }
        }
    }
}

/// The file whose lock says "a daemon owns this state directory".
const LOCK_FILE: &str = "daemon.lock";

/// Exclusive ownership of a state directory for as long as it lives. The
/// kernel drops the lock when the process dies, so a crashed daemon never
/// leaves a stale lock behind.
#[derive(Debug)]
pub struct DirLock {
    _file: fs::File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<DirLock, StateError> {
        let lock_err = |source| StateError::Lock {
            dir: dir.to_path_buf(),
            source,
        };
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(lock_err)?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(StateError::InUse {
                dir: dir.to_path_buf(),
            }),
            Err(fs::TryLockError::Error(e)) => Err(lock_err(e)),
        }
    }
}

#[derive(Serialize)]
struct FileOut<'a> {
    version: u32,
    state: &'a ProxyState,
}

#[derive(Deserialize)]
struct FileVersion {
    version: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIn {
    #[allow(dead_code)]
    version: u64,
    state: ProxyState,
}

/// The state file of one state directory.
#[derive(Debug)]
pub struct StateStore {
    dir: PathBuf,
    path: PathBuf,
    /// Serializes writers so that the file on disk is always the state read by
    /// the last writer, never an older snapshot that lost a race.
    write_lock: Mutex<()>,
}

impl StateStore {
    /// Opens (and creates when missing) the state directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<StateStore, StateError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| StateError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        Ok(StateStore {
            path: dir.join(STATE_FILE),
            dir,
            write_lock: Mutex::new(()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The persisted state, or `None` when no state was ever written.
    pub fn load(&self) -> Result<Option<ProxyState>, StateError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let corrupt = |detail: String| StateError::Corrupt {
            path: self.path.clone(),
            detail,
        };
        // The version is read on its own first so that a future layout gets a
        // version error rather than a confusing field error.
        let header: FileVersion =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        match header.version {
            None => return Err(corrupt("missing field `version`".into())),
            Some(v) if v != u64::from(FORMAT_VERSION) => {
                return Err(StateError::UnsupportedVersion {
                    path: self.path.clone(),
                    found: v,
                })
            }
            Some(_) => {}
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let file: FileIn = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                corrupt(inner.to_string())
            } else {
                corrupt(format!("{path}: {inner}"))
            }
        })?;
        Ok(Some(file.state))
    }

    /// Atomically replaces the file with `state`.
    pub fn save(&self, state: &ProxyState) -> Result<(), StateError> {
        self.save_with(|| state.clone())
    }

    /// Takes the state from `current` while holding the writer lock and saves
    /// it. Concurrent callers that each read the live state this way can never
    /// leave an older state on disk than the last one read.
    pub fn save_with(&self, current: impl FnOnce() -> ProxyState) -> Result<(), StateError> {
        let _guard = lock(&self.write_lock);
        let state = current();
        let mut bytes = serde_json::to_vec_pretty(&FileOut {
            version: FORMAT_VERSION,
            state: &state,
        })
        .expect("a ProxyState always serializes");
        bytes.push(b'\n');
        cutover_fs::write_atomic(&self.path, &bytes).map_err(|source| StateError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

impl From<StateError> for cutover_core::diag::Report {
    fn from(e: StateError) -> Self {
        e.report()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::service::DeployRequest;
    use cutover_core::status::PersistedService;

    fn sample() -> ProxyState {
        ProxyState {
            services: vec![PersistedService {
                name: "web".into(),
                active_since_ms: 0,
                request: DeployRequest {
                    targets: vec!["127.0.0.1:8081".into()],
                    hosts: vec!["example.com".into()],
                    path_prefix: None,
                    color: Some(cutover_core::service::Color::Green),
                    version: Some("v2".into()),
                    health: Default::default(),
                    timeouts: Default::default(),
                    listen: Vec::new(),
                    in_network: Vec::new(),
                    tls: None,
                },
                maintenance: None,
                staged: None,
            }],
        }
    }

    #[test]
    fn a_state_dir_has_one_owner_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(err, StateError::InUse { .. }), "{err}");
        assert!(err.hint().unwrap().contains("--state-dir"));
        drop(first);
        DirLock::acquire(dir.path()).expect("free again once the owner is gone");
    }

    #[test]
    fn missing_file_is_no_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path().join("nested/state")).unwrap();
        assert_eq!(store.load().unwrap(), None);
        assert!(dir.path().join("nested/state").is_dir());
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store.save(&sample()).unwrap();
        assert_eq!(store.load().unwrap(), Some(sample()));

        // A second store on the same directory (a restarted daemon) sees it.
        let again = StateStore::open(dir.path()).unwrap();
        assert_eq!(again.load().unwrap(), Some(sample()));

        let raw: serde_json::Value =
            serde_json::from_slice(&fs::read(store.path()).unwrap()).unwrap();
        assert_eq!(raw["version"], FORMAT_VERSION);
    }

    #[test]
    fn save_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store.save(&sample()).unwrap();
        store.save(&ProxyState::default()).unwrap();
        assert_eq!(store.load().unwrap(), Some(ProxyState::default()));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STATE_FILE)]);
    }

    #[test]
    fn failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state");
        let store = StateStore::open(&state_dir).unwrap();
        store.save(&sample()).unwrap();
        // With the directory away, the temp file cannot be created: the
        // write fails before the rename, as a full disk would.
        let aside = dir.path().join("aside");
        fs::rename(&state_dir, &aside).unwrap();
        let err = store.save(&ProxyState::default()).unwrap_err();
        fs::rename(&aside, &state_dir).unwrap();
        assert!(matches!(err, StateError::Write { .. }), "{err}");
        assert_eq!(store.load().unwrap(), Some(sample()));
        let names: Vec<_> = fs::read_dir(&state_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STATE_FILE)]);
    }

    #[test]
    fn corrupt_file_names_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        fs::write(
            store.path(),
            r#"{"version":1,"state":{"services":[{"name":"web","request":{"targets":"x"}}]}}"#,
        )
        .unwrap();
        let err = store.load().unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, StateError::Corrupt { .. }), "{msg}");
        assert!(msg.contains(&store.path().display().to_string()), "{msg}");
        assert!(msg.contains("state.services[0].request.targets"), "{msg}");
        assert!(err.hint().unwrap().contains("move it away"));
    }

    #[test]
    fn truncated_file_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store.save(&sample()).unwrap();
        let bytes = fs::read(store.path()).unwrap();
        fs::write(store.path(), &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(
            store.load().unwrap_err(),
            StateError::Corrupt { .. }
        ));
    }

    #[test]
    fn newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        fs::write(
            store.path(),
            r#"{"version":7,"state":{"services":[],"new_thing":1}}"#,
        )
        .unwrap();
        assert!(matches!(
            store.load().unwrap_err(),
            StateError::UnsupportedVersion { found: 7, .. }
        ));
    }
}
