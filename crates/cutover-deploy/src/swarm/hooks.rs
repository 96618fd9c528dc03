//! An app's hooks on a Swarm: each runs as a one-off job of the version
//! being deployed (`<project>_<service>_<hook>`: its image, environment
//! and networks, the hook's command), wherever the scheduler puts it. Its
//! output is streamed to the progress, its end is in the history, and the
//! job is removed however it ends.
//!
//! The hook's place in a deploy is the one it has on a host:
//! `pre_deploy` before the new color starts (a failure fails the deploy
//! with nothing started), `post_deploy` after the switch (a failure is
//! reported), `on_failure` once the app's deploy failed.

use std::time::Duration;

use cutover_core::compose::{HookKind, VolumeSpec};
use cutover_core::diag::Report;
use cutover_docker::LogOptions;
use cutover_swarm::{TaskInfo, TaskState};
use futures_util::StreamExt;

use super::{files, specs, Inner};
use crate::events::Progress;
use crate::executor::hooks::{hook_env, HookOutput, HookRun};
use crate::executor::Stop;
use crate::history::{record_app, AppLine};

/// How often the job's task is looked at while it runs.
const POLL: Duration = Duration::from_millis(250);
/// How long the last lines of an ended job have to arrive.
const FLUSH: Duration = Duration::from_secs(2);

/// The same hooks as on one host (`HookRun`'s other half, in
/// `executor::hooks`), run on a Swarm.
impl HookRun<'_> {
    /// Runs the app's `kind` hook if it has one; `error` is what an
    /// `on_failure` hook is told of. `volumes`, the project's, are how the
    /// job's node creates one it lacks (`specs::own_volumes`).
    pub(super) async fn run_on_swarm(
        &self,
        sw: &Inner,
        p: &Progress,
        kind: HookKind,
        error: Option<&str>,
        volumes: &[VolumeSpec],
    ) -> Result<(), Report> {
        let Some(hook) = self.app.cutover.hooks.get(kind) else {
            return Ok(());
        };
        let service = &self.app.service.name;
        let line = AppLine {
            project: self.project,
            operation: kind.as_str(),
            service,
            version: self.version,
            color: self.color,
            started: tokio::time::Instant::now(),
        };
        let step = p.step(format!("run {kind} hook of {service}: {}", hook.shown()));
        let env = hook_env(kind, self.project, self.app, self.previous, error);
        let mut spec = specs::hook_service(self.project, self.app, kind, &hook.command, &env);
        specs::own_volumes(&mut spec, self.project, volumes);
        let ran = match files::attach(sw, self.project, &self.app.service, &mut spec).await {
            Ok(()) => tokio::time::timeout(hook.timeout, job(sw, p, &spec)).await,
            Err(report) => Ok(Err(report)),
        };
        let ran = ran
            .unwrap_or_else(|_| {
                Err(Report::new(format!(
                    "the {kind} hook of {service} did not end within {}; it was stopped",
                    humantime::format_duration(hook.timeout)
                ))
                .hint(format!(
                    "make it faster, or give it more time: hooks: {{{kind}: {{command: ..., timeout: 30m}}}}"
                )))
            });
        if let Err(e) = sw.cluster.remove_service(&spec.name).await {
            p.warn(
                Report::new(format!(
                    "the hook's job {} could not be removed: {e}",
                    spec.name
                ))
                .hint(format!("remove it with `docker service rm {}`", spec.name)),
            );
        }
        match &ran {
            Ok(()) => p.done(step, None),
            Err(e) => p.failed(step, &e.message),
        }
        let recorded = record_app(&sw.history, p, line, ran.map_err(Stop::failed)).await;
        recorded.map_err(|stop| stop.report)
    }
}

/// Creates the job (after one a dead deploy engine left), streams its
/// task's output, and waits for the task's end.
async fn job(sw: &Inner, p: &Progress, spec: &cutover_swarm::ServiceSpec) -> Result<(), Report> {
    // 1. Never two at once: one left behind is removed first.
    sw.cluster
        .remove_service(&spec.name)
        .await
        .map_err(Report::from)?;
    sw.cluster
        .create_service(spec)
        .await
        .map_err(Report::from)?;

    // 2. Its one task, once the scheduler has placed and started it.
    let task = loop {
        if let Some(t) = task_of(sw, &spec.name).await? {
            if t.state >= TaskState::Running || t.state.is_failure() {
                break t;
            }
        }
        tokio::time::sleep(POLL).await;
    };

    // 3. Its output while it runs, then how it ended. A task's followed
    //    log does not end with the task, so its state says when to stop.
    let options = LogOptions {
        tail: 1_000_000,
        since: None,
        follow: true,
    };
    let mut output = HookOutput::new(p, &spec.name);
    let mut lines = sw.cluster.task_logs(&task, &options);
    let mut poll = tokio::time::interval(POLL);
    let mut open = true;
    let end = loop {
        tokio::select! {
            line = lines.next(), if open => match line {
                Some(Ok(line)) => output.line(line.text),
                _ => open = false,
            },
            _ = poll.tick() => {
                if let Some(end) = ended(sw, &spec.name).await? {
                    break end;
                }
            }
        }
    };
    // Its last lines may still be on their way from the node.
    let _ = tokio::time::timeout(FLUSH, async {
        while let Some(Ok(line)) = lines.next().await {
            output.line(line.text);
        }
    })
    .await;
    output.finish();
    end
}

/// How the job ended, once it has: `None` while its task runs.
async fn ended(sw: &Inner, job: &str) -> Result<Option<Result<(), Report>>, Report> {
    let Some(t) = task_of(sw, job).await? else {
        return Err(Report::new(format!("the job {job} lost its task")));
    };
    Ok(match t.state {
        TaskState::Complete => Some(Ok(())),
        s if s.is_failure() || s == TaskState::Shutdown => {
            let why = t.error.clone().unwrap_or_else(|| t.message.clone());
            Some(Err(Report::new(format!(
                "the hook's job {job} ended {}: {why}",
                s.as_str()
            ))
            .hint(
                "its output is above; fix what it reports, then deploy again",
            )))
        }
        _ => None,
    })
}

/// The job's task, once the scheduler made it.
async fn task_of(sw: &Inner, service: &str) -> Result<Option<TaskInfo>, Report> {
    let Some(info) = sw
        .cluster
        .inspect_service(service)
        .await
        .map_err(Report::from)?
    else {
        return Ok(None);
    };
    // A job that is never restarted has one task.
    let tasks = sw.cluster.tasks(&info).await.map_err(Report::from)?;
    Ok(tasks.into_iter().next())
}
