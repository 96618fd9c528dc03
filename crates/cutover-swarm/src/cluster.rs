//! The [`Cluster`] trait: what a blue/green deploy needs of a Swarm.
//!
//! Boxed futures, as in [`cutover_docker::Engine`] and for the same reason:
//! the deploy code holds an `Arc<dyn Cluster>`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::future::BoxFuture;

use cutover_docker::{LabelFilter, LogOptions, LogStream, Removal};

use crate::error::SwarmError;
use crate::model::*;
use crate::spec::{ServiceCopy, ServiceSpec};

pub type SwarmResult<T> = Result<T, SwarmError>;
pub type SwarmFuture<'a, T> = BoxFuture<'a, SwarmResult<T>>;

/// Time between two task listings while a service converges: tasks take
/// hundreds of milliseconds to be scheduled and started, so polling faster
/// only loads the manager.
const CONVERGE_POLL_FIRST: Duration = Duration::from_millis(100);
const CONVERGE_POLL_MAX: Duration = Duration::from_millis(500);

pub trait Cluster: Send + Sync {
    /// The swarm as this engine sees it; [`SwarmError::NotInSwarm`] when it
    /// is in none.
    fn info(&self) -> SwarmFuture<'_, SwarmInfo>;
    fn nodes(&self) -> SwarmFuture<'_, Vec<NodeInfo>>;

    /// Creates exactly `spec.name`; a conflict when it exists.
    fn create_service<'a>(&'a self, spec: &'a ServiceSpec) -> SwarmFuture<'a, String>;
    /// By exact name (the engine would also answer to an id prefix).
    fn inspect_service<'a>(&'a self, name: &'a str) -> SwarmFuture<'a, Option<ServiceInfo>>;
    fn list_services<'a>(&'a self, filter: &'a LabelFilter) -> SwarmFuture<'a, Vec<ServiceInfo>>;
    /// Sets a replicated service's task count; its spec is otherwise kept,
    /// so scaling back up runs the very same version. A global service is
    /// kept at 0 tasks, or runs one per node again at any other count.
    fn scale_service<'a>(&'a self, name: &'a str, replicas: u64) -> SwarmFuture<'a, ()>;
    fn remove_service<'a>(&'a self, name: &'a str) -> SwarmFuture<'a, Removal>;
    /// Gives the service `spec.name` the spec `spec`, task by task, each
    /// new task started before an old one stops (`start-first`), so it
    /// never runs fewer tasks than it had. A new task that fails within
    /// 5 s makes the engine roll the update back. Returns once the update
    /// is sent, with the status of the update before it, if any:
    /// [`Cluster::wait_updated`] tells this one from it. The spec must
    /// change the tasks (a change of labels alone starts no update).
    fn update_service<'a>(&'a self, spec: &'a ServiceSpec)
        -> SwarmFuture<'a, Option<UpdateStatus>>;
    /// Creates `copy.name` from `from`'s spec with `copy`'s changes, at 0
    /// tasks (a global one parked, as [`Cluster::scale_service`] does);
    /// its id. A conflict when it exists.
    fn copy_service<'a>(&'a self, from: &'a str, copy: &'a ServiceCopy) -> SwarmFuture<'a, String>;
    /// Every task of the service the managers still remember, the ended
    /// ones among them. Takes the inspected service, whose id the engine's
    /// task filter needs, so a caller that inspected it does not do so twice.
    fn tasks<'a>(&'a self, service: &'a ServiceInfo) -> SwarmFuture<'a, Vec<TaskInfo>>;
    /// One task's log lines, fetched by the managers from its node.
    fn task_logs(&self, task: &TaskInfo, options: &LogOptions) -> LogStream;

    /// Creates the secret or config `name` holding `data`; its id. Both
    /// are immutable: new contents are a new object.
    fn create_file<'a>(
        &'a self,
        kind: FileKind,
        name: &'a str,
        labels: &'a BTreeMap<String, String>,
        data: &'a [u8],
    ) -> SwarmFuture<'a, String>;
    /// By exact name (the engine's name filter also takes a prefix).
    fn find_file<'a>(
        &'a self,
        kind: FileKind,
        name: &'a str,
    ) -> SwarmFuture<'a, Option<FileObject>>;
    fn list_files<'a>(
        &'a self,
        kind: FileKind,
        filter: &'a LabelFilter,
    ) -> SwarmFuture<'a, Vec<FileObject>>;
    /// By id; the engine refuses while a service mounts it.
    fn remove_file<'a>(&'a self, kind: FileKind, id: &'a str) -> SwarmFuture<'a, Removal>;

    // Provided policies.

    /// Waits until the service runs all its tasks (its replicas, or one
    /// per eligible node for a global service) and returns them. Fails at
    /// once when a task fails, except the tasks in `known`: those were there
    /// before the change being waited for, and their failures are history.
    /// At 0 replicas it returns once the scheduler wants no task running;
    /// the old tasks may still be stopping then (their stop grace period).
    fn wait_converged<'a>(
        &'a self,
        service: &'a str,
        known: &'a BTreeSet<String>,
        timeout: Duration,
    ) -> SwarmFuture<'a, Vec<TaskInfo>> {
        Box::pin(wait_converged(self, service, known, timeout))
    }

    /// Waits until the service's update ([`Cluster::update_service`],
    /// which said what the one `before` it was) completed; fails when the
    /// engine stopped or rolled it back, or at `timeout`.
    fn wait_updated<'a>(
        &'a self,
        service: &'a str,
        before: Option<&'a UpdateStatus>,
        timeout: Duration,
    ) -> SwarmFuture<'a, ()> {
        Box::pin(wait_updated(self, service, before, timeout))
    }
}

async fn wait_updated<C: Cluster + ?Sized>(
    cluster: &C,
    service: &str,
    before: Option<&UpdateStatus>,
    timeout: Duration,
) -> SwarmResult<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut poll = CONVERGE_POLL_FIRST;
    loop {
        let info = cluster
            .inspect_service(service)
            .await?
            .ok_or_else(|| SwarmError::Gone(service.to_string()))?;
        // The engine starts the update after it took the spec: until then
        // the status is the update before's, or none.
        match info
            .update
            .filter(|u| before.is_none_or(|b| b.started != u.started))
        {
            Some(UpdateStatus {
                state: UpdateState::Completed,
                ..
            }) => return Ok(()),
            Some(UpdateStatus {
                state: UpdateState::Stopped(why),
                ..
            }) => {
                return Err(SwarmError::UpdateFailed {
                    service: service.to_string(),
                    why,
                })
            }
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(SwarmError::UpdateFailed {
                service: service.to_string(),
                why: format!("not done within {}", humantime::format_duration(timeout)),
            });
        }
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(CONVERGE_POLL_MAX);
    }
}

async fn wait_converged<C: Cluster + ?Sized>(
    cluster: &C,
    service: &str,
    known: &BTreeSet<String>,
    timeout: Duration,
) -> SwarmResult<Vec<TaskInfo>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = CONVERGE_POLL_FIRST;
    loop {
        let info = cluster.inspect_service(service).await?.ok_or_else(|| {
            SwarmError::Engine(cutover_docker::EngineError::NotFound {
                kind: cutover_docker::ObjectKind::Service,
                name: service.to_owned(),
                message: "removed while cutover waited for its tasks".into(),
            })
        })?;
        let tasks = cluster.tasks(&info).await?;
        if let Some(failed) = tasks
            .iter()
            .find(|t| t.state.is_failure() && !known.contains(&t.id))
        {
            // The hostname is what `docker node ls` shows; the id is the
            // fallback when the node list cannot be had.
            let node = match cluster.nodes().await {
                Ok(nodes) => nodes
                    .into_iter()
                    .find(|n| n.id == failed.node_id)
                    .map(|n| n.hostname),
                Err(_) => None,
            };
            return Err(SwarmError::TaskFailed {
                service: service.to_owned(),
                task: failed.id.clone(),
                node: node.unwrap_or_else(|| failed.node_id.clone()),
                state: failed.state.as_str(),
                message: failed
                    .error
                    .clone()
                    .unwrap_or_else(|| failed.message.clone()),
            });
        }
        let wanted: Vec<&TaskInfo> = tasks
            .iter()
            .filter(|t| t.desired == TaskState::Running)
            .collect();
        let up: Vec<TaskInfo> = wanted
            .iter()
            .filter(|t| t.is_up())
            .map(|&t| t.clone())
            .collect();
        let target = match info.replicas {
            Some(n) => n as usize,
            // A global service has a task for every eligible node once the
            // scheduler has seen it; none yet means it has not.
            None => wanted.len().max(1),
        };
        if up.len() == target && wanted.len() == target {
            return Ok(up);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(SwarmError::NotConverged {
                service: service.to_owned(),
                running: up.len(),
                wanted: target,
                after: timeout,
                pending: wanted
                    .iter()
                    .find(|t| !t.is_up())
                    .map(|t| t.error.clone().unwrap_or_else(|| t.message.clone())),
            });
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(CONVERGE_POLL_MAX);
    }
}
