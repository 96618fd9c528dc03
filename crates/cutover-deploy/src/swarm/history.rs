//! A swarm's history lines, in the swarm itself: one config per line,
//! `cutover-history-<ms>-<random>`, labelled with its project
//! ([`labels::HISTORY_OF`]) and holding the line's JSON.
//!
//! Configs live in the managers' raft store, as the kept versions do, so
//! the deploy engine that a manager failover starts on another manager
//! reads every line the one before wrote. A config cannot change, which a
//! line never needs to; the oldest are removed past [`KEEP`] per project,
//! so the store does not grow with every deploy.

use std::collections::BTreeMap;

use cutover_docker::labels::{self, LabelFilter};
use cutover_swarm::{Cluster, FileKind, FileObject, SwarmError};

use crate::history::Entry;

/// Lines kept per project. A deploy of three apps writes about six, so
/// this is well over a hundred deploys, at a few hundred bytes each.
pub(crate) const KEEP: usize = 1000;

/// Writes `entry` as a config of its own, then removes the project's
/// oldest lines past [`KEEP`].
pub(crate) async fn append(cluster: &dyn Cluster, entry: &Entry) -> Result<(), SwarmError> {
    let data = serde_json::to_vec(entry).expect("history entry serializes");
    // A name the swarm never had: two engines (one a failover's) can write
    // in the same millisecond.
    let name = format!(
        "cutover-history-{}-{:08x}",
        entry.time_ms,
        rand::random::<u32>()
    );
    let labels = BTreeMap::from([(labels::HISTORY_OF.to_string(), entry.project.clone())]);
    cluster
        .create_file(FileKind::Config, &name, &labels, &data)
        .await?;
    let mut lines = lines(cluster, &entry.project).await?;
    let past = lines.len().saturating_sub(KEEP);
    for (_, old) in lines.drain(..past) {
        cluster.remove_file(FileKind::Config, &old.id).await?;
    }
    Ok(())
}

/// The project's lines, oldest first; one the engine lists unreadable is
/// skipped, as a torn line of the file is.
pub(crate) async fn read(cluster: &dyn Cluster, project: &str) -> Result<Vec<Entry>, SwarmError> {
    Ok(lines(cluster, project)
        .await?
        .into_iter()
        .map(|(e, _)| e)
        .collect())
}

async fn lines(
    cluster: &dyn Cluster,
    project: &str,
) -> Result<Vec<(Entry, FileObject)>, SwarmError> {
    let mine = LabelFilter::new().with(labels::HISTORY_OF, project);
    let mut lines: Vec<(Entry, FileObject)> = cluster
        .list_files(FileKind::Config, &mine)
        .await?
        .into_iter()
        .filter_map(|o| {
            let entry = serde_json::from_slice::<Entry>(o.data.as_deref()?).ok()?;
            Some((entry, o))
        })
        .collect();
    // By time, then by name (the same millisecond), so the order is one.
    lines.sort_by(|(a, x), (b, y)| a.time_ms.cmp(&b.time_ms).then(x.name.cmp(&y.name)));
    Ok(lines)
}
