//! `logs` on a Swarm: the tasks of an app's live color (every color with
//! `all`), or of an accessory, each fetched by the managers from its node.
//! A line is named `<service>.<slot>@<node>`, as `docker service logs`
//! names it, whenever there is more than one task.

use std::collections::BTreeMap;

use bytes::Bytes;
use cutover_core::diag::Report;
use cutover_core::progress::LogsQuery;
use cutover_docker::{labels, LabelFilter, LogOptions, Role};
use cutover_swarm::{ServiceInfo, TaskInfo, TaskState};
use futures_util::stream::BoxStream;

use super::Inner;
use crate::status::{logs_service, merged_logs};

pub(super) async fn logs(
    sw: &Inner,
    project: &str,
    q: &LogsQuery,
) -> Result<BoxStream<'static, Bytes>, Report> {
    // 1. The project's Swarm services, by compose service.
    let listed = sw
        .cluster
        .list_services(&LabelFilter::project(project))
        .await
        .map_err(Report::from)?;
    let mut by_service: BTreeMap<String, Vec<ServiceInfo>> = BTreeMap::new();
    let mut apps = Vec::new();
    for s in listed {
        let Some(name) = s.labels.get(labels::SERVICE).cloned() else {
            continue;
        };
        // An app's gateway only relays bytes; its logs are not the app's.
        if s.labels.get(labels::ROLE).map(String::as_str) == Some(Role::Gateway.as_str()) {
            continue;
        }
        if s.labels.get(labels::ROLE).map(String::as_str) == Some(Role::App.as_str()) {
            apps.push(name.clone());
        }
        by_service.entry(name).or_default().push(s);
    }
    apps.sort();
    apps.dedup();

    // 2. Which one, and which of its colors.
    let service = logs_service(project, q.service.as_deref(), &apps)?;
    let Some(colors) = by_service.get(&service) else {
        let known: Vec<&str> = by_service.keys().map(String::as_str).collect();
        return Err(Report::new(format!(
            "no Swarm service of {service} in project {project}"
        ))
        .hint(if known.is_empty() {
            format!("project {project} has no services: deploy it first")
        } else {
            format!("its services: {}", known.join(", "))
        }));
    };
    // The live color runs tasks; the kept one is at 0 and shows only with
    // `all` (or when nothing runs).
    let running: Vec<&ServiceInfo> = colors.iter().filter(|s| s.replicas != Some(0)).collect();
    let shown: Vec<&ServiceInfo> = if q.all || running.is_empty() {
        colors.iter().collect()
    } else {
        running
    };

    // 3. Their tasks, each named by slot and node.
    let hostnames: BTreeMap<String, String> = sw
        .cluster
        .nodes()
        .await
        .map_err(Report::from)?
        .into_iter()
        .map(|n| (n.id, n.hostname))
        .collect();
    let mut tasks: Vec<(String, TaskInfo)> = Vec::new();
    for s in shown {
        for t in sw.cluster.tasks(s).await.map_err(Report::from)? {
            if q.all || t.desired == TaskState::Running {
                tasks.push((task_name(s, &t, &hostnames), t));
            }
        }
    }
    tasks.sort_by(|a, b| a.0.cmp(&b.0));
    let options = LogOptions {
        tail: q.tail,
        since: q.since,
        follow: q.follow,
    };
    let prefix = q.all || tasks.len() > 1;
    let streams = tasks
        .into_iter()
        .map(|(name, t)| {
            let lines = sw.cluster.task_logs(&t, &options);
            (name, lines)
        })
        .collect();
    Ok(merged_logs(streams, prefix, q.follow))
}

/// `shop_web_blue.2@node-3`; a global service's task by its id instead.
fn task_name(s: &ServiceInfo, t: &TaskInfo, hostnames: &BTreeMap<String, String>) -> String {
    let slot = match t.slot {
        Some(n) => n.to_string(),
        None => t.id.chars().take(12).collect(),
    };
    let node = hostnames.get(&t.node_id).unwrap_or(&t.node_id);
    format!("{}.{slot}@{node}", s.name)
}
