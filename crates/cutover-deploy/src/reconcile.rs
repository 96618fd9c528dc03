//! At daemon start: finish what a crash interrupted. Containers of an
//! unfinished deploy (journal + labels) are removed, old colors whose
//! retirement was under way are stopped, and the proxy routes
//! each live app at its container's current address (the proxy restored its
//! own state file, but a container restarted by Docker may have a new IP:
//! the live container is the truth). Running `deploy` again then converges.

use std::collections::BTreeSet;

use cutover_core::status::ServiceStatus;
use cutover_docker::labels::{self, LabelFilter};
use cutover_docker::ContainerInfo;
use serde::Serialize;

use crate::history::Entry;
use crate::journal::InProgress;
use crate::observe::AppContainer;
use crate::replicas;
use crate::specs;
use crate::DeployEngine;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileReport {
    /// Containers of unfinished operations that were removed (or stopped).
    pub cleaned: Vec<String>,
    /// Proxy services (re)installed at the live container's address.
    pub routes: Vec<String>,
    pub warnings: Vec<String>,
}

/// What a start does with old colors that were draining.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retired {
    Stop,
    LeaveToPredecessor,
}

impl DeployEngine {
    pub async fn reconcile(&self) -> ReconcileReport {
        self.reconcile_with(Retired::Stop).await
    }

    /// [`DeployEngine::reconcile`] for a daemon that took over from a
    /// running predecessor: that one still drains its old colors and stops
    /// them itself, so they are left alone here.
    pub async fn reconcile_after_handoff(&self) -> ReconcileReport {
        self.reconcile_with(Retired::LeaveToPredecessor).await
    }

    async fn reconcile_with(&self, retired: Retired) -> ReconcileReport {
        let inner = &self.inner;
        let mut report = ReconcileReport::default();

        for j in inner.journal.pending() {
            self.recover(&j, &mut report).await;
        }

        let projects: BTreeSet<String> = match inner
            .engine
            .list_containers(
                &LabelFilter::new().with(labels::ROLE, cutover_docker::Role::App.as_str()),
            )
            .await
        {
            // Another daemon's projects are its own to route and retire.
            Ok(list) => list
                .into_iter()
                .filter_map(|c| {
                    let project = c.labels.get(labels::PROJECT)?;
                    let foreign = inner.owner.foreign_owner(project, &c.labels).is_some();
                    (!foreign).then(|| project.clone())
                })
                .collect(),
            Err(e) => {
                report
                    .warnings
                    .push(format!("cannot list app containers: {e}"));
                return report;
            }
        };
        for project in projects {
            self.reroute(&project, retired, &mut report).await;
        }
        if !report.routes.is_empty() {
            inner.routes_changed().await;
        }
        for w in &report.warnings {
            tracing::warn!(warning = %w, "reconcile");
        }
        report
    }

    /// Settles the container of one unfinished operation: kept if the proxy
    /// already routes to it (the crash came after the switch), else removed
    /// (or stopped again, when it was a kept version restarted).
    async fn recover(&self, j: &InProgress, report: &mut ReconcileReport) {
        let inner = &self.inner;
        let engine = &*inner.engine;
        let info = match engine.inspect_container(&j.container).await {
            Ok(Some(info)) => info,
            Ok(None) => {
                inner.journal.end(&j.project, &j.service);
                return;
            }
            Err(e) => {
                report
                    .warnings
                    .push(format!("cannot inspect {}: {e}", j.container));
                return;
            }
        };
        let ours = info.labels.get(labels::PROJECT) == Some(&j.project)
            && info.labels.get(labels::SERVICE) == Some(&j.service);
        if !ours {
            report.warnings.push(format!(
                "journal names {} for {}/{}, but its labels say otherwise; left alone",
                j.container, j.project, j.service
            ));
            inner.journal.end(&j.project, &j.service);
            return;
        }
        let version = info.labels.get(labels::VERSION).cloned();
        let route = cutover_core::naming::route(&j.project, &j.service);
        let routed = inner
            .proxy
            .status()
            .iter()
            .any(|s| s.name == route && routes_to(s, version.as_deref(), &info));
        if routed {
            inner.journal.end(&j.project, &j.service);
            return;
        }
        let r = if j.reused {
            replicas::stop(engine, &j.container, specs::DEFAULT_STOP_GRACE).await
        } else {
            replicas::remove(engine, &j.container).await
        };
        if let Err(e) = r {
            report
                .warnings
                .push(format!("cannot clean up {}: {e}", j.container));
            return;
        }
        report.cleaned.push(j.container.clone());
        // Its client saw only a broken stream: history is where the operator
        // learns what became of it.
        let now = cutover_core::clock::now_ms();
        let entry = Entry {
            time_ms: now,
            project: j.project.clone(),
            operation: j.operation.clone(),
            service: Some(j.service.clone()),
            version,
            color: info
                .labels
                .get(labels::COLOR)
                .and_then(|c| serde_json::from_value(c.as_str().into()).ok()),
            result: cutover_core::progress::Outcome::Failed,
            duration_ms: now.saturating_sub(j.started_ms),
            error: Some(format!(
                "interrupted: the daemon stopped during the {}; {} was cleaned up at the next start",
                j.operation, j.container
            )),
        };
        if let Err(e) = inner.history.append_async(entry).await {
            report.warnings.push(e.to_string());
        }
        inner.journal.end(&j.project, &j.service);
    }

    /// Routes each live app of `project` at its container's current address,
    /// unless the proxy already does.
    async fn reroute(&self, project: &str, retired: Retired, report: &mut ReconcileReport) {
        let inner = &self.inner;
        let obs = match inner.project_containers(project).await {
            Ok(o) => o,
            Err(e) => {
                report.warnings.push(format!("{project}: {e}"));
                return;
            }
        };
        for (service, state) in obs.apps {
            if retired == Retired::Stop {
                self.finish_retirements(&state.stray, report).await;
            }
            let Some(live) = state.live else { continue };
            let Some(release) = live.release.clone() else {
                report.warnings.push(format!(
                    "{} runs but has no release record; deploy {project} again to route it",
                    live.name()
                ));
                continue;
            };
            let app = &release.app;
            let reached = match inner.app_targets(&live.info, app).await {
                Ok(addrs) => inner.gateways(&app.service).await.map(|g| (addrs, g)),
                Err(e) => Err(e),
            };
            let (addrs, gateways) = match reached {
                Ok(r) => r,
                Err(e) => {
                    report.warnings.push(e.to_string());
                    continue;
                }
            };
            let route = cutover_core::naming::route(project, &service);
            let current = inner.proxy.status().into_iter().find(|s| s.name == route);
            let agrees = current.as_ref().is_some_and(|s| {
                let routed: BTreeSet<String> =
                    s.active.targets.iter().map(|t| t.addr.clone()).collect();
                let running: BTreeSet<String> = addrs.iter().map(ToString::to_string).collect();
                routed == running && s.active.color == live.color
            });
            if agrees {
                continue;
            }
            let r = inner
                .proxy
                .deploy(
                    &route,
                    specs::route_request(app, &gateways, &addrs, live.color, &live.version),
                )
                .await;
            match r {
                Ok(_) => report.routes.push(route),
                Err(e) => report.warnings.push(format!(
                    "{route}: cannot route to {} at {}: {e}",
                    live.name(),
                    addrs
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
    }
}

impl DeployEngine {
    /// Old colors that were still draining when the daemon stopped: nothing
    /// routes to them any more (their connections ended with the old
    /// process), so their retirement finishes now. Running containers
    /// without a release record are left to the next deploy, which removes
    /// them as strays.
    async fn finish_retirements(&self, stray: &[AppContainer], report: &mut ReconcileReport) {
        for (c, release) in stray.iter().filter_map(|c| Some((c, c.release.as_ref()?))) {
            let grace = specs::stop_grace(&release.app.service);
            match replicas::stop(&*self.inner.engine, c.name(), grace).await {
                Ok(()) => report.cleaned.push(c.name().to_string()),
                Err(e) => report
                    .warnings
                    .push(format!("cannot stop the retired {}: {e}", c.name())),
            }
        }
    }
}

/// Whether the active set of `s` is `version` with a target at one of the
/// container's IPs.
fn routes_to(s: &ServiceStatus, version: Option<&str>, info: &ContainerInfo) -> bool {
    if s.active.version.as_deref() != version {
        return false;
    }
    let ips: BTreeSet<String> = info
        .networks
        .values()
        .filter_map(|n| n.ip.map(|ip| ip.to_string()))
        .collect();
    s.active.targets.iter().any(|t| {
        t.addr
            .rsplit_once(':')
            .is_some_and(|(h, _)| ips.contains(h.trim_matches(['[', ']'])))
    })
}
