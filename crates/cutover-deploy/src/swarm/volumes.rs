//! `down --volumes` on a Swarm. A named volume is its node's own, and only
//! that node's engine can remove it: the managers cannot. So the deploy
//! engine runs a global job, `<project>_cutover_volumes`, of cutover's own
//! image (the edges'): one task on every live node, with that node's Docker
//! socket, runs `cutover remove-volumes`, which removes the volumes
//! labelled with the project. Those are the ones the project's tasks made
//! (`specs::own_volumes`); an external volume has no such label and stays.
//! Each node's lines come back in the progress, and the job is removed
//! however it ends.

use std::collections::BTreeMap;
use std::time::Duration;

use cutover_core::diag::Report;
use cutover_core::naming;
use cutover_docker::labels::{self, Role};
use cutover_docker::LogOptions;
use cutover_swarm::{
    Availability, Mode, MountKind, NodeState, ServiceMount, ServiceSpec, TaskInfo, TaskState,
};
use futures_util::StreamExt;

use super::{edges, Inner};
use crate::events::Progress;

/// Where a node's engine listens, in the node and in the job's task.
const SOCKET: &str = "/var/run/docker.sock";
/// How long a node's task waits for a volume still held by a container of
/// a service `down` just removed (its stop grace period, then its removal).
const PATIENCE: Duration = Duration::from_secs(60);
/// The whole job: every node's patience, and its image's start.
const JOB_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(500);

/// What the job did on each node.
pub(super) struct Removed {
    /// Each node's lines, by hostname.
    pub nodes: BTreeMap<String, Vec<String>>,
    /// Nodes whose task did not end well, with why.
    pub failed: Vec<String>,
    /// The volumes removed, over all nodes.
    pub count: usize,
}

/// Runs the job to its end on every live node, then removes it.
pub(super) async fn remove(sw: &Inner, project: &str, p: &Progress) -> Result<Removed, Report> {
    let image = edges::service(&*sw.cluster, &sw.edges).await?.image;
    let spec = job(project, image);
    sw.cluster.create_service(&spec).await?;
    let ran = tokio::time::timeout(JOB_TIMEOUT, wait(sw, &spec.name)).await;
    let result = match ran {
        Ok(Ok(tasks)) => Ok(collect(sw, tasks).await),
        Ok(Err(report)) => Err(report),
        Err(_) => Err(Report::new(format!(
            "the job {} did not end on every node within {}",
            spec.name,
            humantime::format_duration(JOB_TIMEOUT)
        ))),
    };
    if let Err(e) = sw.cluster.remove_service(&spec.name).await {
        p.warn(
            Report::new(format!("the job {} could not be removed: {e}", spec.name))
                .hint(format!("remove it with `docker service rm {}`", spec.name)),
        );
    }
    result
}

fn job(project: &str, image: String) -> ServiceSpec {
    let mut s = ServiceSpec::new(naming::swarm_hook(project, "cutover", "volumes"), image);
    // The project's label: a job a dead deploy engine left goes with the
    // project's services at the next `down`.
    for (key, value) in [
        (labels::PROJECT, project),
        (labels::ROLE, Role::Hook.as_str()),
    ] {
        s.labels.insert(key.into(), value.into());
    }
    s.command = Some(vec![
        "remove-volumes".into(),
        format!("--project={project}"),
        format!("--patience={}", humantime::format_duration(PATIENCE)),
    ]);
    s.mode = Mode::GlobalJob;
    s.mounts.push(ServiceMount {
        kind: MountKind::Bind,
        source: SOCKET.into(),
        target: SOCKET.into(),
        read_only: false,
        create: None,
    });
    s
}

/// The job's tasks, once there is one on every live node and all ended.
async fn wait(sw: &Inner, job: &str) -> Result<Vec<TaskInfo>, Report> {
    loop {
        tokio::time::sleep(POLL).await;
        let Some(info) = sw.cluster.inspect_service(job).await? else {
            return Err(Report::new(format!("the job {job} is gone")));
        };
        let tasks = sw.cluster.tasks(&info).await?;
        let live = sw
            .cluster
            .nodes()
            .await?
            .iter()
            .filter(|n| n.state == NodeState::Ready && n.availability == Availability::Active)
            .count();
        if tasks.len() >= live && tasks.iter().all(|t| t.state.is_ended()) {
            return Ok(tasks);
        }
    }
}

/// Each task's output, by its node, and how it ended.
async fn collect(sw: &Inner, tasks: Vec<TaskInfo>) -> Removed {
    let hostnames: BTreeMap<String, String> = match sw.cluster.nodes().await {
        Ok(nodes) => nodes.into_iter().map(|n| (n.id, n.hostname)).collect(),
        Err(_) => BTreeMap::new(),
    };
    let options = LogOptions {
        tail: 10_000,
        since: None,
        follow: false,
    };
    let mut out = Removed {
        nodes: BTreeMap::new(),
        failed: Vec::new(),
        count: 0,
    };
    for t in tasks {
        let node = hostnames
            .get(&t.node_id)
            .cloned()
            .unwrap_or(t.node_id.clone());
        let lines: Vec<String> = sw
            .cluster
            .task_logs(&t, &options)
            .filter_map(|l| async move { l.ok().map(|l| l.text) })
            .collect()
            .await;
        out.count += lines.iter().filter(|l| l.starts_with("removed ")).count();
        if t.state != TaskState::Complete {
            let why = t.error.clone().unwrap_or_else(|| t.message.clone());
            out.failed.push(format!("{node}: {} ({why})", t.state));
        }
        out.nodes.insert(node, lines);
    }
    out
}
