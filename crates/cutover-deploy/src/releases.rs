//! Every released version of an app with the full spec it ran with, so a
//! rollback runs that version's own env and config rather than today's
//! compose file (which is what Kamal does).
//!
//! One JSON file per app: `<state>/releases/<project>/<service>.json`,
//! newest first.

use std::path::{Path, PathBuf};

use cutover_core::compose::AppSpec;
use cutover_core::service::Color;
use serde::{Deserialize, Serialize};

use crate::store::{self, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// `version_id(image_id, config_hash)`: the identity of the version.
    pub version_id: String,
    /// The user-facing label (`--version`, else the version id).
    pub version: String,
    pub image_id: String,
    pub config_hash: String,
    /// The color it went live in.
    pub color: Color,
    /// The container's current name: its slot name while it is live or the
    /// last retired one, `<project>-<service>-<version_id>` once moved aside.
    pub container: String,
    pub released_ms: u64,
    pub app: AppSpec,
}

#[derive(Clone)]
pub struct Releases {
    dir: PathBuf,
}

impl Releases {
    pub fn new(state_dir: &Path) -> Releases {
        Releases {
            dir: state_dir.join("releases"),
        }
    }

    fn path(&self, project: &str, service: &str) -> PathBuf {
        store::app_file(&self.dir, project, service)
    }

    /// Newest first; empty when none was recorded (or the file is unreadable,
    /// which is logged: a broken history must not block deploys).
    pub fn list(&self, project: &str, service: &str) -> Vec<Release> {
        let path = self.path(project, service);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "unreadable releases file");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        }
    }

    pub fn find(&self, project: &str, service: &str, version_id: &str) -> Option<Release> {
        self.list(project, service)
            .into_iter()
            .find(|r| r.version_id == version_id)
    }

    fn save(&self, project: &str, service: &str, list: &[Release]) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(list).expect("releases serialize");
        store::write_atomic(&self.path(project, service), &bytes)
    }

    /// Records `release` as the newest; an earlier record of the same version
    /// is replaced. Records past `limit` are dropped (rollback can only
    /// reach kept versions, plus a margin for those recreated from records).
    pub fn record(&self, project: &str, release: Release, limit: usize) -> Result<(), StoreError> {
        let service = release.app.service.name.clone();
        let mut list = self.list(project, &service);
        list.retain(|r| r.version_id != release.version_id);
        list.insert(0, release);
        list.truncate(limit.max(1));
        self.save(project, &service, &list)
    }

    /// [`Releases::record`] off the async runtime.
    pub async fn record_async(
        &self,
        project: &str,
        release: Release,
        limit: usize,
    ) -> Result<(), StoreError> {
        let this = self.clone();
        let path = self.path(project, &release.app.service.name);
        let project = project.to_string();
        store::off_runtime(&path, move || this.record(&project, release, limit)).await
    }

    /// Applies `f` to the record of `version_id`, if there is one.
    pub fn update(
        &self,
        project: &str,
        service: &str,
        version_id: &str,
        f: impl FnOnce(&mut Release),
    ) -> Result<(), StoreError> {
        let mut list = self.list(project, service);
        if let Some(r) = list.iter_mut().find(|r| r.version_id == version_id) {
            f(r);
            self.save(project, service, &list)?;
        }
        Ok(())
    }

    /// [`Releases::update`] off the async runtime.
    pub async fn update_async(
        &self,
        project: &str,
        service: &str,
        version_id: &str,
        f: impl FnOnce(&mut Release) + Send + 'static,
    ) -> Result<(), StoreError> {
        let this = self.clone();
        let path = self.path(project, service);
        let (project, service, version_id) = (
            project.to_string(),
            service.to_string(),
            version_id.to_string(),
        );
        store::off_runtime(&path, move || {
            this.update(&project, &service, &version_id, f)
        })
        .await
    }

    pub fn services(&self, project: &str) -> Vec<String> {
        store::app_files(&self.dir, project)
    }
}
