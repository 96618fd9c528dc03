//! Which daemon owns a project's containers, networks and volumes.
//!
//! Several daemons may share one engine (a test run beside a real one, two
//! state dirs on one host). Project names can collide; what must never
//! happen is one daemon retiring, renaming or deleting what another runs.
//! So every daemon has an identity, kept in its state dir, and labels all
//! it creates with it. Before an operation touches a project, the project's
//! objects are read: one labelled by another daemon stops the operation
//! (exit 2) naming that daemon, unless the user takes the project over
//! with `--adopt`, which is recorded so later operations accept it too.
//!
//! Objects with no owner label were made before daemons had an identity;
//! they count as the local daemon's, as they always did.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cutover_core::diag::Report;
use cutover_core::sync::lock;
use cutover_docker::labels::{self, LabelFilter};
use cutover_docker::Engine;
use std::sync::Mutex;

use crate::store::{self, StoreError};

const ID_FILE: &str = "daemon-id";
const ADOPTED_FILE: &str = "adopted.json";

/// This daemon's identity and the projects it took over from others.
pub struct Owner {
    id: String,
    state_dir: PathBuf,
    /// Project → owner ids taken over with `--adopt`.
    adopted: Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// Where `adopted` is kept; `None` for an identity that lives in memory.
    persist: bool,
}

/// An object of the project that another daemon owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    pub kind: &'static str,
    pub name: String,
    pub owner: String,
    /// The owner's state dir, as it labelled the object.
    pub owner_state_dir: Option<String>,
}

impl Owner {
    /// The identity kept in `state_dir`, created at the first start.
    pub fn load(state_dir: &Path) -> Result<Owner, StoreError> {
        let id_path = state_dir.join(ID_FILE);
        let id = match std::fs::read_to_string(&id_path) {
            Ok(text) if !text.trim().is_empty() => text.trim().to_string(),
            Ok(_) => new_identity(&id_path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => new_identity(&id_path)?,
            Err(e) => return Err(store::err(&id_path)(e)),
        };
        let adopted_path = state_dir.join(ADOPTED_FILE);
        let adopted = match std::fs::read(&adopted_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError {
                path: adopted_path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(store::err(&adopted_path)(e)),
        };
        Ok(Owner {
            id,
            state_dir: state_dir.to_path_buf(),
            adopted: Mutex::new(adopted),
            persist: true,
        })
    }

    /// A fresh identity that is never written: for engines in tests.
    pub fn ephemeral(state_dir: &Path) -> Owner {
        Owner {
            id: random_id(),
            state_dir: state_dir.to_path_buf(),
            adopted: Mutex::new(BTreeMap::new()),
            persist: false,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Labels `labels` (of an object about to be created) as this daemon's.
    pub fn stamp(&self, labels: &mut BTreeMap<String, String>) {
        labels.insert(labels::DAEMON.into(), self.id.clone());
        labels.insert(
            labels::DAEMON_STATE_DIR.into(),
            self.state_dir.display().to_string(),
        );
    }

    /// The owner id in `labels` when it is neither this daemon nor one it
    /// adopted `project` from.
    pub fn foreign_owner<'a>(
        &self,
        project: &str,
        labels: &'a BTreeMap<String, String>,
    ) -> Option<&'a str> {
        let owner = labels.get(labels::DAEMON)?;
        let adopted = lock(&self.adopted)
            .get(project)
            .is_some_and(|ids| ids.contains(owner));
        (owner != &self.id && !adopted).then_some(owner.as_str())
    }

    /// Checks that no other daemon owns anything of `project` before an
    /// operation changes it; with `adopt`, takes the project over instead.
    pub async fn claim(
        &self,
        engine: &dyn Engine,
        project: &str,
        adopt: bool,
    ) -> Result<(), Report> {
        let foreign = self
            .foreign_objects(engine, project)
            .await
            .map_err(Report::from)?;
        if foreign.is_empty() {
            return Ok(());
        }
        if adopt {
            let owners: BTreeSet<String> = foreign.iter().map(|f| f.owner.clone()).collect();
            tracing::warn!(project, from = ?owners, "taking the project over from another cutover daemon (--adopt)");
            self.adopt(project, owners)?;
            return Ok(());
        }
        Err(not_ours(project, &foreign))
    }

    async fn foreign_objects(
        &self,
        engine: &dyn Engine,
        project: &str,
    ) -> Result<Vec<Foreign>, cutover_docker::EngineError> {
        let filter = LabelFilter::project(project);
        let mut out = Vec::new();
        let mut note = |kind, name: &str, l: &BTreeMap<String, String>| {
            if let Some(owner) = self.foreign_owner(project, l) {
                out.push(Foreign {
                    kind,
                    name: name.to_string(),
                    owner: owner.to_string(),
                    owner_state_dir: l.get(labels::DAEMON_STATE_DIR).cloned(),
                });
            }
        };
        for c in engine.list_containers(&filter).await? {
            note("container", &c.name, &c.labels);
        }
        for n in engine.list_networks(&filter).await? {
            note("network", &n.name, &n.labels);
        }
        for v in engine.list_volumes(&filter).await? {
            note("volume", &v.name, &v.labels);
        }
        Ok(out)
    }

    fn adopt(&self, project: &str, owners: BTreeSet<String>) -> Result<(), Report> {
        let snapshot = {
            let mut adopted = lock(&self.adopted);
            adopted
                .entry(project.to_string())
                .or_default()
                .extend(owners);
            adopted.clone()
        };
        if self.persist {
            let bytes = serde_json::to_vec_pretty(&snapshot).expect("a map of strings serializes");
            store::write_atomic(&self.state_dir.join(ADOPTED_FILE), &bytes)?;
        }
        Ok(())
    }
}

fn not_ours(project: &str, foreign: &[Foreign]) -> Report {
    let first = &foreign[0];
    let place = first
        .owner_state_dir
        .as_deref()
        .map(|d| format!(", state dir {d}"))
        .unwrap_or_default();
    let detail = foreign
        .iter()
        .map(|f| format!("{} {} belongs to daemon {}", f.kind, f.name, f.owner))
        .collect::<Vec<_>>()
        .join("\n");
    Report::new(format!(
        "project {project} belongs to another cutover daemon (id {}{place}); nothing was changed",
        first.owner
    ))
    .detail(detail)
    .hint("run the command against the daemon that owns the project, or give this one another project name (`-p NAME`); if that daemon and its state dir are gone for good, `cutover deploy --adopt` takes the project over")
}

fn random_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn new_identity(path: &Path) -> Result<String, StoreError> {
    let id = random_id();
    store::write_atomic(path, format!("{id}\n").as_bytes())?;
    Ok(id)
}
