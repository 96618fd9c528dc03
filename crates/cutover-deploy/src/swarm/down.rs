//! `down` on a Swarm: every node's edge stops routing to the project's apps
//! (their sets drain as on one host), then the project's services go with
//! the secrets and configs cutover made for them, then the overlay networks
//! cutover created. Named volumes are each node's own: with `--volumes`, a
//! job on every node removes the project's (`volumes.rs`).

use std::collections::BTreeSet;
use std::time::Duration;

use cutover_core::diag::{count, Report};
use cutover_core::naming;
use cutover_core::progress::{DownCommand, Outcome};
use cutover_docker::labels::{self, LabelFilter, Role};
use futures_util::future::join_all;

use super::{edges, files, switch, volumes, Inner};
use crate::events::Progress;
use crate::executor::Stop;

/// How long the networks have to lose their last tasks: a removed
/// service's tasks stop within their stop grace period.
const NETWORK_PATIENCE: Duration = Duration::from_secs(60);

pub(super) async fn down(
    sw: &Inner,
    project: &str,
    cmd: &DownCommand,
    p: &Progress,
) -> Result<(Outcome, Report), Stop> {
    let services = sw
        .cluster
        .list_services(&LabelFilter::project(project))
        .await
        .map_err(Stop::failed)?;
    let apps: BTreeSet<String> = services
        .iter()
        .filter(|s| s.labels.get(labels::ROLE).map(String::as_str) == Some(Role::App.as_str()))
        .filter_map(|s| s.labels.get(labels::SERVICE).cloned())
        .collect();

    // 1. No node routes to the apps any more; what they served drains.
    let edges = edges::live(&*sw.cluster, &sw.edges)
        .await
        .map_err(Stop::failed)?;
    for app in &apps {
        let route = &naming::route(project, app);
        let step = p.step(format!("stop routing {route} on {} nodes", edges.len()));
        let views = switch::views(&edges, &sw.edges, route)
            .await
            .map_err(Stop::failed)?;
        let removed = join_all(
            views
                .iter()
                .filter(|v| v.active.is_some())
                .map(
                    |v| async move { (v.edge.node.clone(), v.edge.remove(&sw.edges, route).await) },
                ),
        )
        .await;
        let failed: Vec<String> = removed
            .into_iter()
            .filter_map(|(node, r)| r.err().map(|e| format!("{node}: {e}")))
            .collect();
        if !failed.is_empty() {
            p.failed(step, failed.join("; "));
            return Err(Stop::failed(
                Report::new(format!(
                    "{route} could not be taken off every node; nothing was removed"
                ))
                .detail(failed.join("\n"))
                .hint("run `cutover down` again once every node's edge answers"),
            ));
        }
        let deadline = views
            .iter()
            .filter_map(|v| v.config.as_ref())
            .map(|c| c.timeouts.drain.max(c.timeouts.websocket_drain))
            .max()
            .unwrap_or_default();
        let late =
            switch::drain(&views, &sw.edges, route, deadline + Duration::from_secs(10)).await;
        if late.is_empty() {
            p.done(step, None);
        } else {
            p.done(step, Some(format!("still draining: {}", late.join("; "))));
        }
    }

    // 2. The services, apps and accessories alike.
    let step = p.step(format!("remove {} services", services.len()));
    for s in &services {
        sw.cluster.remove_service(&s.name).await.map_err(|e| {
            Stop::failed(Report::from(e).map_message(|m| format!("removing {}: {m}", s.name)))
        })?;
    }
    p.done(step, None);
    files::prune(sw, project, p).await;

    // 3. The networks cutover created for the project, once their tasks
    //    are gone.
    let networks = sw
        .engine
        .list_networks(&LabelFilter::project(project))
        .await
        .map_err(Stop::failed)?;
    for n in &networks {
        let step = p.step(format!("remove the network {}", n.name));
        match remove_network(sw, &n.name).await {
            Ok(()) => p.done(step, None),
            Err(e) => {
                p.failed(step, &e);
                p.warn(
                    Report::new(format!("the network {} is still there", n.name)).hint(format!(
                        "remove it with `docker network rm {}` once its tasks are gone",
                        n.name
                    )),
                );
            }
        }
    }
    let removed = format!(
        "{project} is down: {} and {} removed",
        count(services.len(), "service"),
        count(networks.len(), "network")
    );
    if !cmd.volumes {
        return Ok((
            Outcome::Ok,
            Report::new(format!("{removed}; its volumes stay on their nodes"))
                .hint("`cutover down --volumes` also deletes them, on every node"),
        ));
    }

    // 4. With --volumes, the project's volumes on every node.
    let volumes = remove_volumes(sw, project, p).await?;
    Ok((
        Outcome::Ok,
        Report::new(format!("{removed}, and {volumes}")),
    ))
}

/// Step 4: the job on every live node, its lines in the step; a node that
/// is not live, or whose task failed, keeps its volumes, and the operation
/// fails naming it (services and networks are gone by then, so a second
/// `down --volumes` does only this).
async fn remove_volumes(sw: &Inner, project: &str, p: &Progress) -> Result<String, Stop> {
    let nodes = sw.cluster.nodes().await.map_err(Stop::failed)?;
    let step = p.step(format!(
        "remove the volumes of {project} on every node (their data is deleted)"
    ));
    let removed = match volumes::remove(sw, project, p).await {
        Ok(removed) => removed,
        Err(e) => {
            p.failed(step, &e.message);
            return Err(Stop::failed(e.hint("run `cutover down --volumes` again")));
        }
    };
    let lines: Vec<String> = removed
        .nodes
        .iter()
        .flat_map(|(node, lines)| lines.iter().map(move |l| format!("{node}: {l}")))
        .collect();
    let mut kept = removed.failed.clone();
    kept.extend(
        nodes
            .iter()
            .filter(|n| !removed.nodes.contains_key(&n.hostname))
            .map(|n| {
                let seen = format!("{:?}, {:?}", n.state, n.availability).to_lowercase();
                format!("{}: not reached ({seen})", n.hostname)
            }),
    );
    if !kept.is_empty() {
        p.failed(step, kept.join("; "));
        return Err(Stop::failed(
            Report::new(format!(
                "the volumes of {project} stay on {}",
                count(kept.len(), "node")
            ))
            .detail(lines.into_iter().chain(kept).collect::<Vec<_>>().join("\n"))
            .hint("run `cutover down --volumes` again once every node is ready"),
        ));
    }
    let summary = format!(
        "{} removed on {}",
        count(removed.count, "volume"),
        count(removed.nodes.len(), "node")
    );
    p.done(step, (!lines.is_empty()).then(|| lines.join("; ")));
    Ok(summary)
}

/// Removing a network fails while tasks are still attached; they leave
/// within their stop grace period.
async fn remove_network(sw: &Inner, name: &str) -> Result<(), Report> {
    let deadline = tokio::time::Instant::now() + NETWORK_PATIENCE;
    loop {
        match sw.engine.delete_network(name).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
