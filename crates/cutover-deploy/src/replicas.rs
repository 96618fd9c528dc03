//! An app's replicas (`deploy.replicas: 3`). Per color, the first replica
//! is the container the whole lifecycle follows: the slot
//! (`athens-web-blue`), then a kept version (`athens-web-<version id>`).
//! The others follow it under its name with their number
//! (`athens-web-blue-2`, `-3`, labelled `cutover.replica`): each step on
//! the first (start, stop, rename, remove) is done to them too, so slots,
//! kept versions, retirements and the journal still name one container.
//! The proxy routes to all of them, and gates all before a switch.

use cutover_docker::labels::{self, LabelFilter};
use cutover_docker::{ContainerInfo, Engine, EngineError};
use std::time::Duration;

/// The name of replica `i` (2 and up) of the color whose first is `first`.
pub fn follower_name(first: &str, i: u32) -> String {
    format!("{first}-{i}")
}

/// The replica number of a follower, from its label.
pub fn number(info: &ContainerInfo) -> Option<u32> {
    info.labels.get(labels::REPLICA)?.parse().ok()
}

/// The followers of `first` as they exist now, in replica order.
pub async fn followers(
    engine: &dyn Engine,
    first: &ContainerInfo,
) -> Result<Vec<ContainerInfo>, EngineError> {
    let (Some(project), Some(service)) = (
        first.labels.get(labels::PROJECT),
        first.labels.get(labels::SERVICE),
    ) else {
        return Ok(Vec::new());
    };
    let filter = LabelFilter::app_service(project, service).with_key(labels::REPLICA);
    let mut out = Vec::new();
    for c in engine.list_containers(&filter).await? {
        let Some(i) = c.labels.get(labels::REPLICA).and_then(|n| n.parse().ok()) else {
            continue;
        };
        if c.name != follower_name(&first.name, i) {
            continue;
        }
        if let Some(info) = engine.inspect_container(&c.id).await? {
            out.push((i, info));
        }
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, c)| c).collect())
}

/// The first (by name or id) and its followers; empty when it is gone.
async fn group(engine: &dyn Engine, first: &str) -> Result<Vec<ContainerInfo>, EngineError> {
    let Some(info) = engine.inspect_container(first).await? else {
        return Ok(Vec::new());
    };
    let mut all = followers(engine, &info).await?;
    all.insert(0, info);
    Ok(all)
}

/// Starts the first and its followers.
pub async fn start(engine: &dyn Engine, first: &str) -> Result<(), EngineError> {
    engine.start_container(first).await?;
    let Some(info) = engine.inspect_container(first).await? else {
        return Ok(());
    };
    for f in followers(engine, &info).await? {
        engine.start_container(&f.id).await?;
    }
    Ok(())
}

/// Stops the followers, then the first: all together, each with `grace`.
pub async fn stop(engine: &dyn Engine, first: &str, grace: Duration) -> Result<(), EngineError> {
    let all = group(engine, first).await?;
    let stops = all.iter().map(|c| engine.stop_container(&c.id, grace));
    futures_util::future::try_join_all(stops).await?;
    Ok(())
}

/// Removes the first and its followers.
pub async fn remove(engine: &dyn Engine, first: &str) -> Result<(), EngineError> {
    for c in group(engine, first).await?.iter().rev() {
        engine.remove_container(&c.id).await?;
    }
    Ok(())
}

/// Renames the first to `to`, and each follower after it.
pub async fn rename(
    engine: &dyn Engine,
    first: &ContainerInfo,
    to: &str,
) -> Result<(), EngineError> {
    for f in followers(engine, first).await? {
        let i = number(&f).unwrap_or_default();
        engine
            .rename_container(&f.id, &follower_name(to, i))
            .await?;
    }
    engine.rename_container(&first.id, to).await
}
