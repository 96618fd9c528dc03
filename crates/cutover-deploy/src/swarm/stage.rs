//! `promote` and `abort` on a Swarm: the end of a stage that `deploy
//! --preview|--canary` left on every node. The stage is the edges' own
//! (each saved it in its state file, under the one token the deploy
//! engine drew); the staged version is its color's service, running
//! beside the live one. Nothing of it is kept here, so a manager failover
//! loses no stage.
//!
//! - promote: every node that holds the stage switches to it, as a
//!   deploy's commit does, once all of them report a healthy target in it
//!   (a node that does not refuses the promote everywhere, nothing
//!   switched); then the old color drains on every node and is kept at 0
//!   tasks. A node that missed the stage (it was down) is brought over in
//!   the same step, its own gate first, as the reconcile pass would. The
//!   app's `post_deploy` hook runs then, from the spec the staged service
//!   keeps (`labels::STAGED_APP`): the deploy engine keeps no compose file.
//! - abort: every node drops the staged set, which drains; then its
//!   service is removed. The version its slot held was set aside when the
//!   stage began (`kept.rs`), so a rollback still finds it.

use std::collections::BTreeSet;

use cutover_core::compose::{AppSpec, HookKind, VolumeSpec};
use cutover_core::diag::Report;
use cutover_core::naming;
use cutover_core::progress::{Outcome, ProgressEvent, StageCommand};
use cutover_core::stage::HOW_TO_STAGE;
use cutover_core::status::{Health, StagedStatus};
use cutover_docker::labels;
use futures_util::future::join_all;

use super::cutover::{retire, switched_sets, Candidate, DRAIN_SLACK};
use super::edges::{self, Edge};
use super::reconcile::bring_over;
use super::rollback::apps_of;
use super::switch::{self, NodeRoute};
use super::{files, Inner};
use crate::events::Progress;
use crate::executor::hooks::HookRun;
use crate::executor::Stop;
use crate::history::{record_app, AppLine};
use crate::stage::{nothing_staged, End};

pub(super) async fn end(
    sw: &Inner,
    project: &str,
    cmd: &StageCommand,
    end: End,
    p: &Progress,
) -> Result<(Outcome, Report), Stop> {
    // 1. The apps staged on some node, the ones named when any are.
    let edges = edges::live(&*sw.cluster, &sw.edges)
        .await
        .map_err(Stop::failed)?;
    let mut staged = Vec::new();
    for app in apps_of(sw, project).await? {
        let route = naming::route(project, &app);
        let views = switch::views(&edges, &sw.edges, &route)
            .await
            .map_err(Stop::failed)?;
        if let Some(stage) = views.iter().find_map(|v| v.staged.clone()) {
            staged.push((app, stage, views));
        }
    }
    let names: Vec<&str> = staged.iter().map(|(a, _, _)| a.as_str()).collect();
    if let Some(missing) = cmd.services.iter().find(|s| !names.contains(&s.as_str())) {
        return Err(Stop::invalid(nothing_staged(project, missing, &names)));
    }
    let wanted: BTreeSet<&String> = cmd.services.iter().collect();
    staged.retain(|(a, _, _)| wanted.is_empty() || wanted.contains(a));
    if staged.is_empty() {
        return Err(Stop::invalid(
            Report::new(format!("project {project} has nothing staged")).hint(HOW_TO_STAGE),
        ));
    }

    // 2. Each app's stage ends on every node; its history line says how.
    let mut done = Vec::new();
    for (app, stage, views) in &staged {
        let version = stage.set.version.clone().unwrap_or_else(|| "-".into());
        let line = AppLine {
            project,
            operation: end.name(),
            service: app,
            version: &version,
            color: stage.set.color,
            started: tokio::time::Instant::now(),
        };
        let staged_app = Staged {
            project,
            app,
            stage,
            views,
        };
        let result = match end {
            End::Promote => staged_app.promote(sw, p).await,
            End::Abort => staged_app.abort(sw, p).await,
        };
        record_app(&sw.history, p, line, result).await?;
        done.push(format!("{app} {version}"));
    }
    // An aborted version's secrets and configs are mounted by no service
    // any more.
    files::prune(sw, project, p).await;
    let message = match end {
        End::Promote => format!("promoted {} on {} nodes", done.join(", "), edges.len()),
        End::Abort => format!(
            "aborted {}; the live versions kept serving",
            done.join(", ")
        ),
    };
    Ok((Outcome::Ok, message.into()))
}

/// One app's stage, as the nodes hold it.
struct Staged<'a> {
    project: &'a str,
    app: &'a str,
    stage: &'a StagedStatus,
    views: &'a [NodeRoute],
}

impl Staged<'_> {
    fn route(&self) -> String {
        naming::route(self.project, self.app)
    }

    /// The nodes that hold the stage, and those that do not.
    fn holders(&self) -> (Vec<&Edge>, Vec<&Edge>) {
        let (with, without): (Vec<&NodeRoute>, Vec<&NodeRoute>) =
            self.views.iter().partition(|v| v.staged.is_some());
        (
            with.into_iter().map(|v| &v.edge).collect(),
            without.into_iter().map(|v| &v.edge).collect(),
        )
    }

    async fn promote(&self, sw: &Inner, p: &Progress) -> Result<(), Stop> {
        let route = self.route();
        let color = self.stage.set.color;
        // 1. Every node that holds it has a healthy target in it, or none
        //    switches.
        let unhealthy: Vec<String> = self
            .views
            .iter()
            .filter_map(|v| Some((&v.edge.node, v.staged.as_ref()?)))
            .filter(|(_, s)| !s.set.targets.iter().any(|t| t.health == Health::Healthy))
            .map(|(node, _)| node.clone())
            .collect();
        if !unhealthy.is_empty() {
            return Err(Stop::invalid(
                Report::new(format!(
                    "the staged version of {route} has no healthy target on {}; nothing was promoted",
                    unhealthy.join(", ")
                ))
                .hint("`cutover status` shows its targets' last errors; abort it, or fix the app and stage it again"),
            ));
        }

        // 2. The switch on every node that holds it; one that missed the
        //    stage is brought over as the reconcile pass would, gating the
        //    staged tasks first.
        let (holders, missed) = self.holders();
        let step = p.step(format!(
            "promote {route} to {color} on {} nodes",
            self.views.len()
        ));
        let promoted = join_all(holders.iter().map(|e| {
            let route = &route;
            async move { (e.node.clone(), e.promote(&sw.edges, route).await.map(drop)) }
        }));
        let brought = join_all(missed.iter().map(|e| {
            let (route, config) = (&route, &self.stage.config);
            async move {
                let result = bring_over(sw, e, route, config).await;
                (
                    e.node.clone(),
                    result.map_err(|why| format!("it missed the stage{why}")),
                )
            }
        }));
        let (promoted, brought) = futures_util::join!(promoted, brought);
        let (ok, failed): (Vec<_>, Vec<_>) = promoted
            .into_iter()
            .chain(brought)
            .partition(|(_, r)| r.is_ok());
        let ok: BTreeSet<String> = ok.into_iter().map(|(node, _)| node).collect();
        let failed: Vec<String> = failed
            .into_iter()
            .filter_map(|(node, r)| r.err().map(|e| format!("{node}: {e}")))
            .collect();
        if ok.is_empty() {
            p.failed(step, failed.join("; "));
            return Err(Stop::failed(
                Report::new(format!("{route}: no node promoted its staged version"))
                    .detail(failed.join("\n"))
                    .hint(
                        "the live color still serves; `cutover promote` again, or `cutover abort`",
                    ),
            ));
        }
        p.done(step, Some(format!("{} nodes switched", ok.len())));
        for missed in failed {
            p.warn(
                Report::new(format!("a node was not promoted: {missed}"))
                    .hint("the reconcile pass brings it to the color most nodes serve"),
            );
        }
        let version = self.stage.set.version.clone().unwrap_or_default();
        p.emit(ProgressEvent::Switched {
            service: self.app.to_string(),
            color,
            version: version.clone(),
        });

        // 3. The old color drains on every node and is kept at 0 tasks.
        let old = Candidate {
            project: self.project,
            app: self.app,
            color,
            version,
            req: self.stage.config.clone(),
            live: Some(color.other()),
            keep_old: true,
            stage: None,
        };
        let switched = switched_sets(self.views, |node| ok.contains(node));
        retire(sw, switched, &route, &old, color.other(), p).await;

        // 4. Its post_deploy hook, as after a deploy's switch: a failure is
        //    reported, the version stays live.
        if let Err(report) = self.post_deploy(sw, &old.version, p).await {
            p.warn(report);
        }
        Ok(())
    }

    /// The staged app's `post_deploy` hook, from the spec its service
    /// keeps (`labels::STAGED_APP`).
    async fn post_deploy(&self, sw: &Inner, version: &str, p: &Progress) -> Result<(), Report> {
        let color = self.stage.set.color;
        let service = naming::swarm_app(self.project, self.app, color);
        let found = sw.cluster.inspect_service(&service).await?;
        let Some(json) = found
            .as_ref()
            .and_then(|s| s.labels.get(labels::STAGED_APP))
        else {
            return Ok(());
        };
        let app: AppSpec = serde_json::from_str(json).map_err(|e| {
            Report::new(format!(
                "{service}'s {} label cannot be read: {e}",
                labels::STAGED_APP
            ))
            .hint("its post_deploy hook did not run; run it by hand")
        })?;
        let previous = self
            .views
            .iter()
            .find_map(|v| v.config.as_ref()?.version.clone());
        let hooks = HookRun {
            project: self.project,
            app: &app,
            image: &app.service.image,
            version,
            color,
            previous: previous.as_deref(),
        };
        // Staged before the label was kept: the nodes have its volumes.
        let volumes: Vec<VolumeSpec> = found
            .as_ref()
            .and_then(|s| s.labels.get(labels::STAGED_VOLUMES))
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        hooks
            .run_on_swarm(sw, p, HookKind::PostDeploy, None, &volumes)
            .await
    }

    async fn abort(&self, sw: &Inner, p: &Progress) -> Result<(), Stop> {
        let route = self.route();
        let service = naming::swarm_app(self.project, self.app, self.stage.set.color);
        // 1. Every node drops its staged set, which drains.
        let (holders, _) = self.holders();
        let step = p.step(format!(
            "drop the staged {service} on {} nodes",
            holders.len()
        ));
        let answers = join_all(holders.iter().map(|e| {
            let route = &route;
            async move { ((*e).clone(), e.unstage(&sw.edges, route).await) }
        }))
        .await;
        let mut sets = Vec::new();
        let mut failed = Vec::new();
        for (edge, answer) in answers {
            match answer {
                Ok(id) => sets.push((edge, id)),
                Err(e) => failed.push(format!("{}: {e}", edge.node)),
            }
        }
        if !failed.is_empty() {
            p.failed(step, failed.join("; "));
            return Err(Stop::failed(
                Report::new(format!(
                    "{route}: the stage could not be dropped on every node; {service} keeps running"
                ))
                .detail(failed.join("\n"))
                .hint("run `cutover abort` again once every node's edge answers"),
            ));
        }
        let timeouts = &self.stage.config.timeouts;
        let deadline = timeouts.drain.max(timeouts.websocket_drain) + DRAIN_SLACK;
        let late = switch::drain_sets(sets, &sw.edges, &route, deadline).await;
        if late.is_empty() {
            p.done(step, None);
        } else {
            p.done(step, Some(format!("still draining: {}", late.join("; "))));
        }

        // 2. Its service goes.
        let step = p.step(format!("remove {service}"));
        match sw.cluster.remove_service(&service).await {
            Ok(_) => p.done(step, None),
            Err(e) => {
                p.failed(step, &e);
                return Err(Stop::failed(Report::from(e).hint(format!(
                    "nothing routes to it any more; remove it with `docker service rm {service}`"
                ))));
            }
        }
        Ok(())
    }
}
