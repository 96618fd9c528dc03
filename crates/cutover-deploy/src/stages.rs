//! The versions staged beside a live one (`deploy --preview|--canary`),
//! one file per app: `<state>/stages/<project>/<service>.json`. The proxy
//! routes the staged set (and persists it with its routes); this record is
//! what the deploy engine needs to finish the job: the release to record
//! at `promote`, and which container is the staged one, so no deploy
//! mistakes it for one left by a crash.

use std::path::{Path, PathBuf};

use cutover_core::stage::StageMode;
use serde::{Deserialize, Serialize};

use crate::releases::Release;
use crate::store::{self, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageRecord {
    /// What `promote` records as the newest release.
    pub release: Release,
    pub mode: StageMode,
    /// The staged container's id (names change; ids do not).
    pub container_id: String,
    pub staged_ms: u64,
}

#[derive(Clone)]
pub struct Stages {
    dir: PathBuf,
}

impl Stages {
    pub fn new(state_dir: &Path) -> Stages {
        Stages {
            dir: state_dir.join("stages"),
        }
    }

    fn path(&self, project: &str, service: &str) -> PathBuf {
        store::app_file(&self.dir, project, service)
    }

    /// The app's stage; `None` when there is none or its file is unreadable
    /// (logged: the container it named is then a stray the next deploy
    /// removes, which is what an unfinished stage is).
    pub fn get(&self, project: &str, service: &str) -> Option<StageRecord> {
        let path = self.path(project, service);
        let bytes = std::fs::read(&path).ok()?;
        serde_json::from_slice(&bytes)
            .map_err(
                |e| tracing::warn!(path = %path.display(), error = %e, "unreadable stage file"),
            )
            .ok()
    }

    /// Every staged app of the project, by service name.
    pub fn list(&self, project: &str) -> Vec<(String, StageRecord)> {
        let mut out: Vec<(String, StageRecord)> = store::app_files(&self.dir, project)
            .into_iter()
            .filter_map(|name| {
                let record = self.get(project, &name)?;
                Some((record.release.app.service.name.clone(), record))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub async fn put_async(&self, project: &str, record: StageRecord) -> Result<(), StoreError> {
        let path = self.path(project, &record.release.app.service.name);
        let bytes = serde_json::to_vec_pretty(&record).expect("a stage serializes");
        let target = path.clone();
        store::off_runtime(&path, move || store::write_atomic(&target, &bytes)).await
    }

    /// Forgets the app's stage (promoted, aborted, or gone).
    pub fn clear(&self, project: &str, service: &str) -> Result<(), StoreError> {
        let path = self.path(project, service);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(store::err(&path)(e)),
            _ => Ok(()),
        }
    }
}
