//! Written before a new color container is created and removed once the
//! operation settled, so a daemon that died in between knows at start which
//! container belongs to an unfinished deploy.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::{self, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InProgress {
    pub project: String,
    pub service: String,
    pub operation: String,
    /// The container being created (or started, for a rollback).
    pub container: String,
    /// True when the container existed before (a kept version restarted by
    /// a rollback): recovery stops it rather than removing it.
    pub reused: bool,
    pub started_ms: u64,
}

#[derive(Clone)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    pub fn new(state_dir: &Path) -> Journal {
        Journal {
            dir: state_dir.join("journal"),
        }
    }

    fn path(&self, project: &str, service: &str) -> PathBuf {
        self.dir.join(format!(
            "{}--{}.json",
            store::safe_name(project),
            store::safe_name(service)
        ))
    }

    pub fn begin(&self, entry: &InProgress) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(entry).expect("journal serializes");
        store::write_atomic(&self.path(&entry.project, &entry.service), &bytes)
    }

    /// [`Journal::begin`] off the async runtime.
    pub async fn begin_async(&self, entry: InProgress) -> Result<(), StoreError> {
        let this = self.clone();
        let path = self.path(&entry.project, &entry.service);
        store::off_runtime(&path, move || this.begin(&entry)).await
    }

    pub fn end(&self, project: &str, service: &str) {
        let path = self.path(project, service);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove journal entry");
            }
        }
    }

    /// Unfinished operations found on disk.
    pub fn pending(&self) -> Vec<InProgress> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect()
    }
}
