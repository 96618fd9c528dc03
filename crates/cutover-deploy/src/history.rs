//! `<state>/history.jsonl`: one line per finished deploy, rollback or down.

use std::path::{Path, PathBuf};

/// The line's shape is part of the API (`GET .../history` serves them as
/// they are), so it is defined once with the other report types.
pub use cutover_core::report::HistoryEntry as Entry;

use crate::store::{self, StoreError};

#[derive(Clone)]
pub struct History {
    path: PathBuf,
}

impl History {
    pub fn new(state_dir: &Path) -> History {
        History {
            path: state_dir.join("history.jsonl"),
        }
    }

    pub fn append(&self, entry: &Entry) -> Result<(), StoreError> {
        let line = serde_json::to_string(entry).expect("history entry serializes");
        store::append_line(&self.path, &line)
    }

    /// [`History::append`] off the async runtime.
    pub async fn append_async(&self, entry: Entry) -> Result<(), StoreError> {
        let this = self.clone();
        store::off_runtime(&self.path, move || this.append(&entry)).await
    }

    /// Entries of `project` (and `service` when given), oldest first. A
    /// torn last line (crash mid-write) is skipped.
    pub fn read(&self, project: &str, service: Option<&str>) -> Vec<Entry> {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
            .filter(|e| e.project == project)
            .filter(|e| service.is_none_or(|s| e.service.as_deref() == Some(s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use cutover_core::progress::Outcome;
    use cutover_core::service::Color;

    use super::*;

    #[test]
    fn appends_and_filters_and_skips_a_torn_line() {
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
        assert_eq!(h.read("a", None).len(), 2);
        assert_eq!(h.read("a", Some("web")), vec![e("a", "web")]);
    }
}
