//! An app's hooks (`x-cutover.hooks`): each runs in a one-off container of
//! the version being deployed, inside the daemon (so it survives the CI
//! client like the deploy does), with its output streamed to the progress
//! and its result in the history. The container is removed however it
//! ends: exit, timeout, or a failure to start.

use std::time::Duration;

use cutover_core::compose::{AppSpec, Hook, HookKind};
use cutover_core::diag::Report;
use cutover_core::progress::{Outcome, ProgressEvent};
use cutover_core::service::Color;
use cutover_docker::{labels, ContainerState, LogOptions, Role};
use futures_util::StreamExt;

use crate::events::Progress;
use crate::executor::Stop;
use crate::history::{record_app, AppLine};
use crate::specs::{self, AppLabels};
use crate::{replicas, Inner};

/// Lines of a hook's output sent to the progress; a migration that logs
/// every statement must not flood the client.
const MAX_LINES: usize = 5_000;
/// Time for the engine to report the exit once the log has ended.
const EXIT_SETTLE: Duration = Duration::from_secs(10);

/// The version a hook runs as, and what it is told about the deploy.
pub(crate) struct HookRun<'a> {
    pub project: &'a str,
    pub app: &'a AppSpec,
    /// The image of the version being deployed: its ID on one host, its
    /// reference on a Swarm (each node resolves it).
    pub image: &'a str,
    pub version: &'a str,
    pub color: Color,
    /// The live version before this deploy.
    pub previous: Option<&'a str>,
}

impl HookRun<'_> {
    /// Runs the hook `kind` if the app has one; `error` is the failure an
    /// `on_failure` hook is told of. Recorded in the history either way.
    pub async fn run(
        &self,
        inner: &Inner,
        p: &Progress,
        kind: HookKind,
        error: Option<&str>,
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
        let result = self.run_hook(inner, p, kind, hook, error).await;
        match &result {
            Ok(()) => p.done(step, None),
            Err(e) => p.failed(step, &e.message),
        }
        let outcome = if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        inner
            .proxy
            .operation_metrics()
            .operation(self.project, kind.as_str(), outcome.as_str());
        let recorded = record_app(&inner.history, p, line, result.map_err(Stop::failed)).await;
        recorded.map_err(|stop| stop.report)
    }

    async fn run_hook(
        &self,
        inner: &Inner,
        p: &Progress,
        kind: HookKind,
        hook: &Hook,
        error: Option<&str>,
    ) -> Result<(), Report> {
        let engine = &*inner.engine;
        let name = self.container_name(kind);
        // One left by a daemon that died during a hook: never run twice.
        clear(inner, self.project, &name).await?;
        let env = hook_env(kind, self.project, self.app, self.previous, error);
        let gateways = inner.gateways(&self.app.service).await?;
        let mut spec = specs::hook_container(
            &name,
            self.image,
            &self.app.service,
            &AppLabels {
                project: self.project,
                color: self.color,
                version: self.version,
            },
            &gateways,
            &hook.command,
            &env,
        )?;
        inner.owner.stamp(&mut spec.labels);
        engine.create_container(&spec).await.map_err(Report::from)?;
        let ran = async {
            engine.start_container(&name).await.map_err(Report::from)?;
            tokio::time::timeout(hook.timeout, follow(inner, p, &name))
                .await
                .map_err(|_| {
                    Report::new(format!(
                        "the {kind} hook of {} did not end within {}; it was killed",
                        self.app.service.name,
                        humantime::format_duration(hook.timeout)
                    ))
                    .hint(format!(
                        "make it faster, or give it more time: hooks: {{{kind}: {{command: ..., timeout: 30m}}}}"
                    ))
                })?
        }
        .await;
        if let Err(e) = replicas::remove(engine, &name).await {
            p.warn(
                Report::new(format!(
                    "the hook container {name} could not be removed: {e}"
                ))
                .hint(format!("remove it with `docker rm -f {name}`")),
            );
        }
        match ran? {
            0 => Ok(()),
            code => Err(Report::new(format!(
                "the {kind} hook of {} ({}) exited with code {code}",
                self.app.service.name,
                hook.shown()
            ))
            .hint("its output is above; fix what it reports, then deploy again")),
        }
    }

    /// `<slot base>-<kind>`: beside the app's colors in `docker ps`.
    fn container_name(&self, kind: HookKind) -> String {
        let slot = self.app.slot(self.project, self.color);
        let base = slot.rsplit_once('-').map_or(slot.as_str(), |(b, _)| b);
        format!("{base}-{kind}")
    }
}

/// What a hook is told of the deploy it runs in, on one host or a Swarm.
pub(crate) fn hook_env(
    kind: HookKind,
    project: &str,
    app: &AppSpec,
    previous: Option<&str>,
    error: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("CUTOVER_HOOK", kind.as_str().to_string()),
        ("CUTOVER_PROJECT", project.to_string()),
        ("CUTOVER_SERVICE", app.service.name.clone()),
    ];
    if let Some(previous) = previous {
        env.push(("CUTOVER_PREVIOUS_VERSION", previous.to_string()));
    }
    if let Some(error) = error {
        env.push(("CUTOVER_ERROR", error.to_string()));
    }
    env
}

/// The progress lines of a hook's output, bounded: a migration that logs
/// every statement must not flood the client.
pub(crate) struct HookOutput<'a> {
    p: &'a Progress,
    /// The hook's container or job, which each line is shown with.
    job: &'a str,
    shown: usize,
}

impl<'a> HookOutput<'a> {
    pub(crate) fn new(p: &'a Progress, job: &'a str) -> HookOutput<'a> {
        HookOutput { p, job, shown: 0 }
    }

    pub(crate) fn line(&mut self, line: String) {
        self.shown += 1;
        if self.shown <= MAX_LINES {
            self.p.emit(ProgressEvent::Output {
                container: self.job.to_string(),
                line,
            });
        }
    }

    pub(crate) fn finish(self) {
        if self.shown > MAX_LINES {
            self.p.emit(ProgressEvent::Output {
                container: self.job.to_string(),
                line: format!("… {} more lines not shown", self.shown - MAX_LINES),
            });
        }
    }
}

/// Streams the container's output to the progress until it stops, and
/// returns its exit code.
async fn follow(inner: &Inner, p: &Progress, name: &str) -> Result<i64, Report> {
    let engine = &*inner.engine;
    let options = LogOptions {
        tail: 1_000_000,
        since: None,
        follow: true,
    };
    let mut lines = engine.logs(name, &options);
    let mut output = HookOutput::new(p, name);
    while let Some(line) = lines.next().await {
        output.line(line.map_err(Report::from)?.text);
    }
    output.finish();
    // The log ends when the container stops; its state may lag a moment.
    let deadline = tokio::time::Instant::now() + EXIT_SETTLE;
    loop {
        let info = engine
            .inspect_container(name)
            .await
            .map_err(Report::from)?
            .ok_or_else(|| Report::new(format!("the hook container {name} vanished")))?;
        let running = matches!(
            info.state,
            ContainerState::Running | ContainerState::Restarting | ContainerState::Created
        );
        if !running {
            return Ok(info.exit_code.unwrap_or(-1));
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Report::new(format!(
                "the log of {name} ended, but the container still runs"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Removes a hook container of this project left by an earlier run; a
/// container by that name that is not one is never touched.
async fn clear(inner: &Inner, project: &str, name: &str) -> Result<(), Report> {
    let Some(info) = inner
        .engine
        .inspect_container(name)
        .await
        .map_err(Report::from)?
    else {
        return Ok(());
    };
    let ours = info.labels.get(labels::PROJECT).map(String::as_str) == Some(project)
        && info.labels.get(labels::ROLE).map(String::as_str) == Some(Role::Hook.as_str());
    if !ours {
        return Err(Report::new(format!(
            "container name {name} is taken by a container that is not this project's hook"
        ))
        .hint(format!("remove or rename it (`docker rm -f {name}`)")));
    }
    replicas::remove(&*inner.engine, name)
        .await
        .map(|_| ())
        .map_err(Report::from)
}
