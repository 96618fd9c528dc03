//! `status`, `projects`, `history` and `logs`: what runs, read from the
//! engine by label and from the proxy; nothing here changes anything.

use cutover_core::diag::Report;
use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use cutover_core::report::{
    AccessoryStatus, AppStatus, Busy, KeptVersion, LiveVersion, NetworkStatus, ProjectStatus,
    ProjectSummary, StagedVersion,
};
use cutover_core::status::{Health, TargetStatus};
use cutover_docker::labels::{self, LabelFilter};
use cutover_docker::{ContainerState, EngineError, LogOptions, LogStream};
use futures_util::stream::{self, BoxStream, StreamExt};

use crate::history::Entry;
use crate::observe::AppContainer;
use crate::replicas;
use crate::DeployEngine;

pub use cutover_core::progress::LogsQuery;

impl DeployEngine {
    pub async fn status(&self, project: &str) -> Result<ProjectStatus, EngineError> {
        let inner = &self.inner;
        let engine = &*inner.engine;
        let obs = inner.project_containers(project).await?;
        let proxy = inner.proxy.status();
        let mut apps = Vec::new();
        for (service, state) in &obs.apps {
            let route = cutover_core::naming::route(project, service);
            let ps = proxy.iter().find(|s| s.name == route);
            let live = state.live.as_ref().map(|l| {
                let active = ps.map(|s| &s.active).filter(|a| a.color == l.color);
                LiveVersion {
                    color: l.color,
                    version: l.version.clone(),
                    version_id: l.version_id.clone(),
                    container: l.name().to_string(),
                    health: active.map(|a| overall_health(&a.targets)),
                    since_ms: active.map(|a| a.since_ms),
                    targets: active.map(|a| a.targets.clone()).unwrap_or_default(),
                    requests: active.map_or(0, |a| a.requests),
                    errors: active.map_or(0, |a| a.errors),
                }
            });
            let staged = state.staged.as_ref().and_then(|c| {
                let record = inner.stages.get(project, service)?;
                let routed = ps.and_then(|s| s.staged.as_ref());
                Some(StagedVersion {
                    mode: record.mode,
                    color: c.color,
                    version: record.release.version,
                    version_id: c.version_id.clone(),
                    container: c.name().to_string(),
                    health: routed.map(|s| overall_health(&s.set.targets)),
                    preview_hosts: record.release.app.cutover.preview_hosts.clone(),
                    requests: routed.map_or(0, |s| s.set.requests),
                    errors: routed.map_or(0, |s| s.set.errors),
                })
            });
            apps.push(AppStatus {
                service: service.clone(),
                route,
                live,
                // One that goes when drained is not kept: its connections
                // are in `draining_connections`.
                kept: state
                    .kept
                    .iter()
                    .filter(|c| !c.going(&inner.retirements))
                    .map(|c| kept(c, inner.retirements.is_stopping(&c.info.id)))
                    .collect(),
                draining_connections: ps
                    .map(|s| {
                        s.draining
                            .iter()
                            .flat_map(|d| &d.targets)
                            .map(|t| t.in_flight + t.upgraded)
                            .sum()
                    })
                    .unwrap_or(0),
                maintenance: ps.and_then(|s| s.maintenance.clone()),
                staged,
            });
        }
        let accessories = obs
            .accessories
            .iter()
            .map(|(service, info)| AccessoryStatus {
                service: service.clone(),
                container: info.name.clone(),
                state: info.state.as_str().to_string(),
                health: info.health.map(|h| format!("{h:?}").to_lowercase()),
                image: info.image.clone(),
                published: info
                    .ports
                    .iter()
                    .map(|p| {
                        format!(
                            "{}:{}->{}/{}",
                            p.host_ip
                                .map(|i| i.to_string())
                                .unwrap_or_else(|| "0.0.0.0".into()),
                            p.host_port,
                            p.container_port,
                            p.protocol.as_str()
                        )
                    })
                    .collect(),
            })
            .collect();
        let mut names: BTreeSet<String> = engine
            .list_networks(&LabelFilter::project(project))
            .await?
            .into_iter()
            .map(|n| n.name)
            .collect();
        for info in obs
            .accessories
            .values()
            .chain(obs.apps.values().flat_map(|a| {
                a.live
                    .iter()
                    .chain(&a.kept)
                    .chain(&a.stray)
                    .map(|c: &AppContainer| &c.info)
            }))
        {
            names.extend(info.networks.keys().cloned());
        }
        let mut networks = Vec::new();
        for name in names {
            if let Some(n) = engine.inspect_network(&name).await? {
                networks.push(NetworkStatus {
                    external: !n.is_owned_by(project),
                    attached: n.containers.iter().map(|c| c.name.clone()).collect(),
                    name,
                });
            }
        }
        Ok(ProjectStatus {
            project: project.to_string(),
            apps,
            accessories,
            networks,
            busy: inner.locks.holder(project).map(|h| Busy {
                operation: h.operation,
                version: h.version,
            }),
        })
    }

    /// Projects with containers on this engine. One that is down is gone
    /// from the list; its releases stay on record, so a later deploy can
    /// still roll back to what it ran.
    pub async fn projects(&self) -> Result<Vec<ProjectSummary>, EngineError> {
        let list = self
            .inner
            .engine
            .list_containers(&LabelFilter::new().with_key(labels::PROJECT))
            .await?;
        let mut by: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for c in &list {
            let e = by.entry(c.labels[labels::PROJECT].clone()).or_default();
            e.0 += 1;
            if c.state == ContainerState::Running {
                e.1 += 1;
            }
        }
        Ok(by
            .into_iter()
            .map(|(name, (containers, running))| ProjectSummary {
                name,
                containers,
                running,
            })
            .collect())
    }

    pub async fn history(
        &self,
        project: &str,
        service: Option<&str>,
    ) -> Result<Vec<Entry>, Report> {
        self.inner.history.read(project, service).await
    }

    /// Log lines of the live color (all colors with `all`), as text.
    pub async fn logs(
        &self,
        project: &str,
        q: &LogsQuery,
    ) -> Result<BoxStream<'static, Bytes>, Report> {
        let engine = self.inner.engine.clone();
        let obs = self
            .inner
            .project_containers(project)
            .await
            .map_err(Report::from)?;
        let service = logs_service(project, q.service.as_deref(), obs.apps.keys())?;
        let names: Vec<String> = if let Some(info) = obs.accessories.get(&service) {
            vec![info.name.clone()]
        } else {
            let Some(state) = obs.apps.get(&service) else {
                let known: Vec<&str> = obs
                    .apps
                    .keys()
                    .chain(obs.accessories.keys())
                    .map(String::as_str)
                    .collect();
                return Err(Report::new(format!(
                    "no containers of {service} in project {project}"
                ))
                .hint(if known.is_empty() {
                    format!("project {project} has no containers: deploy it first")
                } else {
                    format!("its services with containers: {}", known.join(", "))
                }));
            };
            let shown: Vec<&AppContainer> = if q.all {
                state
                    .live
                    .iter()
                    .chain(&state.stray)
                    .chain(&state.kept)
                    .collect()
            } else {
                state
                    .live
                    .as_ref()
                    .or(state.kept.first())
                    .into_iter()
                    .collect()
            };
            // Each color's other replicas with it.
            let mut names = Vec::new();
            for c in shown {
                names.push(c.name().to_string());
                let followers = replicas::followers(&*self.inner.engine, &c.info)
                    .await
                    .map_err(Report::from)?;
                names.extend(followers.into_iter().map(|f| f.name));
            }
            names
        };
        let prefix = q.all || names.len() > 1;
        let options = LogOptions {
            tail: q.tail,
            since: q.since,
            follow: q.follow,
        };
        let streams = names
            .into_iter()
            .map(|n| {
                let lines = engine.logs(&n, &options);
                (n, lines)
            })
            .collect();
        Ok(merged_logs(streams, prefix, q.follow))
    }
}

/// The service whose logs are asked for: the one named, or the project's
/// only app.
pub(crate) fn logs_service<'a>(
    project: &str,
    named: Option<&str>,
    apps: impl IntoIterator<Item = &'a String>,
) -> Result<String, Report> {
    if let Some(s) = named {
        return Ok(s.to_string());
    }
    let apps: Vec<&str> = apps.into_iter().map(String::as_str).collect();
    match apps.as_slice() {
        [only] => Ok((*only).to_string()),
        [] => Err(Report::new(format!(
            "project {project} has no app containers"
        ))),
        many => Err(Report::new(format!(
            "project {project} has several apps: {}",
            many.join(", ")
        ))
        .hint("pass service=<name>")),
    }
}

/// Log streams as one body of text lines, each prefixed with its source's
/// name when `prefix`: merged as lines come when following, one source
/// after the other otherwise.
pub(crate) fn merged_logs(
    streams: Vec<(String, LogStream)>,
    prefix: bool,
    follow: bool,
) -> BoxStream<'static, Bytes> {
    let streams = streams.into_iter().map(move |(name, lines)| {
        lines
            .map(move |r| match r {
                Ok(l) if prefix => Bytes::from(format!("{name} | {}\n", l.text)),
                Ok(l) => Bytes::from(format!("{}\n", l.text)),
                Err(e) => Bytes::from(format!("{name}: cannot read logs: {e}\n")),
            })
            .boxed()
    });
    if follow {
        stream::select_all(streams).boxed()
    } else {
        stream::iter(streams).flatten().boxed()
    }
}

fn kept(c: &AppContainer, stopping: bool) -> KeptVersion {
    KeptVersion {
        version: c.version.clone(),
        version_id: c.version_id.clone(),
        container: c.name().to_string(),
        released_ms: c.release.as_ref().map(|r| r.released_ms),
        retiring: c.retiring,
        stopping,
        // 128 + SIGKILL: what `docker stop` leaves when the grace period
        // ran out (an OOM kill leaves it too; the hint names both).
        killed: c.info.state == cutover_docker::ContainerState::Exited
            && c.info.exit_code == Some(137),
    }
}

/// One health for a set: healthy only when every target is, unhealthy as
/// soon as one is known to be.
fn overall_health(targets: &[TargetStatus]) -> Health {
    if targets.iter().all(|t| t.health == Health::Healthy) {
        Health::Healthy
    } else if targets.iter().any(|t| t.health == Health::Unhealthy) {
        Health::Unhealthy
    } else {
        Health::Unknown
    }
}
