//! The history: one line per finished deploy, rollback or down. On one
//! host, `<state>/history.jsonl`; on a Swarm, the swarm's raft store
//! (`swarm::history`), so a manager failover keeps it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The line's shape is part of the API (`GET .../history` serves them as
/// they are), so it is defined once with the other report types.
pub use cutover_core::report::HistoryEntry as Entry;

use cutover_core::clock::now_ms;
use cutover_core::diag::Report;
use cutover_core::progress::Outcome;
use cutover_core::service::Color;
use cutover_swarm::Cluster;

use crate::events::Progress;
use crate::executor::Stop;
use crate::store::{self, StoreError};

#[derive(Clone)]
pub struct History {
    path: PathBuf,
    /// Where a Swarm deploy engine writes; `path` then holds only what a
    /// manager wrote before its lines moved to the swarm, read still.
    swarm: Option<Arc<dyn Cluster>>,
}

impl History {
    pub fn new(state_dir: &Path) -> History {
        History {
            path: state_dir.join("history.jsonl"),
            swarm: None,
        }
    }

    pub fn on_swarm(state_dir: &Path, cluster: Arc<dyn Cluster>) -> History {
        History {
            swarm: Some(cluster),
            ..History::new(state_dir)
        }
    }

    pub fn append(&self, entry: &Entry) -> Result<(), StoreError> {
        let line = serde_json::to_string(entry).expect("history entry serializes");
        store::append_line(&self.path, &line)
    }

    /// [`History::append`] off the async runtime, or into the swarm.
    pub async fn append_async(&self, entry: Entry) -> Result<(), Report> {
        if let Some(cluster) = &self.swarm {
            return crate::swarm::history::append(&**cluster, &entry)
                .await
                .map_err(|e| {
                    Report::from(e).map_message(|m| format!("the history line was not kept: {m}"))
                });
        }
        let this = self.clone();
        Ok(store::off_runtime(&self.path, move || this.append(&entry)).await?)
    }

    /// Entries of `project` (and `service` when given), oldest first.
    pub async fn read(&self, project: &str, service: Option<&str>) -> Result<Vec<Entry>, Report> {
        let mut entries = self.read_file(project);
        if let Some(cluster) = &self.swarm {
            entries.extend(crate::swarm::history::read(&**cluster, project).await?);
            entries.sort_by_key(|e| e.time_ms);
        }
        entries.retain(|e| service.is_none_or(|s| e.service.as_deref() == Some(s)));
        Ok(entries)
    }

    /// The file's entries of `project`. A torn last line (crash
    /// mid-write) is skipped.
    fn read_file(&self, project: &str) -> Vec<Entry> {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
            .filter(|e| e.project == project)
            .collect()
    }
}

/// An operation on one app, for its history line.
pub(crate) struct AppLine<'a> {
    pub project: &'a str,
    pub operation: &'a str,
    pub service: &'a str,
    pub version: &'a str,
    pub color: Color,
    pub started: tokio::time::Instant,
}

/// Appends `line`'s entry with how it ended, and marks a failure as
/// recorded so the operation does not record it again. A write that fails
/// is a warning: the operation's own outcome stands.
pub(crate) async fn record_app<T>(
    history: &History,
    p: &Progress,
    line: AppLine<'_>,
    result: Result<T, Stop>,
) -> Result<T, Stop> {
    let entry = Entry {
        time_ms: now_ms(),
        project: line.project.to_string(),
        operation: line.operation.to_string(),
        service: Some(line.service.to_string()),
        version: Some(line.version.to_string()),
        color: Some(line.color),
        result: match &result {
            Ok(_) => Outcome::Ok,
            Err(s) => s.outcome,
        },
        duration_ms: line.started.elapsed().as_millis() as u64,
        error: result.as_ref().err().map(|s| s.report.message.clone()),
    };
    if let Err(e) = history.append_async(entry).await {
        p.warn(e);
    }
    result.map_err(|mut s| {
        s.recorded = true;
        s
    })
}

/// Appends the line of a whole operation on `project` (a down, a deploy
/// that ended before any app, one that was up to date).
pub(crate) async fn record_operation(
    history: &History,
    p: &Progress,
    project: &str,
    operation: &str,
    version: Option<String>,
    ended: (Outcome, &Report),
    started: tokio::time::Instant,
) {
    let (outcome, report) = ended;
    let entry = Entry {
        time_ms: now_ms(),
        project: project.to_string(),
        operation: operation.to_string(),
        service: None,
        version,
        color: None,
        result: outcome,
        duration_ms: started.elapsed().as_millis() as u64,
        error: (!matches!(outcome, Outcome::Ok | Outcome::UpToDate))
            .then(|| report.message.clone()),
    };
    if let Err(e) = history.append_async(entry).await {
        p.warn(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_and_filters_and_skips_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::new(dir.path());
        let e = |p: &str, s: &str| Entry {
            time_ms: 1,
            project: p.into(),
            operation: "deploy".into(),
            service: Some(s.into()),
            version: Some("v1".into()),
            color: Some(Color::Blue),
            result: Outcome::Ok,
            duration_ms: 5,
            error: None,
        };
        h.append(&e("a", "web")).unwrap();
        h.append(&e("b", "web")).unwrap();
        h.append(&e("a", "api")).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("history.jsonl"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"time_ms\":"))
            .unwrap();
        assert_eq!(h.read("a", None).await.unwrap().len(), 2);
        assert_eq!(h.read("a", Some("web")).await.unwrap(), vec![e("a", "web")]);
    }
}
