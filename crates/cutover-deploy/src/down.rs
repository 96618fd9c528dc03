//! `down`: stop and remove the project's containers (by label), its proxy
//! routes and the networks cutover created. Volumes hold data: only removed
//! when asked (`volumes: true`), and external ones never.

use std::time::{Duration, SystemTime};

use cutover_core::progress::Outcome;
use cutover_docker::labels::{self, LabelFilter};
use serde::{Deserialize, Serialize};

use crate::containers;
use crate::events::{Progress, Receiver};
use crate::executor::deploy::{finish, Finish};
use crate::executor::{lock_timeout_message, Stop};
use crate::lock::Holder;
use crate::{DeployEngine, Inner};

/// Body of `POST /v1/projects/{project}/down`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownCommand {
    /// Also remove the project's named volumes (their data is lost).
    #[serde(default)]
    pub volumes: bool,
    #[serde(default, with = "humantime_serde")]
    pub wait_lock: Duration,
}

impl DeployEngine {
    pub fn down(&self, project: String, cmd: DownCommand) -> Receiver {
        let (p, rx) = Progress::channel();
        let inner = self.inner.clone();
        self.inner.tasks.spawn(async move {
            let started = tokio::time::Instant::now();
            let holder = Holder {
                operation: "down".into(),
                version: None,
                since: SystemTime::now(),
            };
            let result = match inner.locks.acquire(&project, holder, cmd.wait_lock).await {
                Ok(guard) => {
                    let r = down(&inner, &project, &cmd, &p).await;
                    drop(guard);
                    r
                }
                Err(h) => Err(Stop {
                    outcome: Outcome::LockTimeout,
                    message: lock_timeout_message(&project, h, cmd.wait_lock),
                    recorded: false,
                }),
            };
            finish(
                &inner,
                &p,
                Finish {
                    project: &project,
                    operation: "down",
                    version: None,
                    started,
                    ok_recorded_per_app: false,
                },
                result,
            );
        });
        rx
    }
}

async fn down(
    inner: &Inner,
    project: &str,
    cmd: &DownCommand,
    p: &Progress,
) -> Result<(Outcome, String), Stop> {
    let engine = &*inner.engine;
    let list = engine
        .list_containers(&LabelFilter::project(project))
        .await
        .map_err(Stop::failed)?;
    let mut errors = Vec::new();

    let mut apps: Vec<String> = list
        .iter()
        .filter(|c| {
            c.labels.get(labels::ROLE).map(String::as_str)
                == Some(cutover_docker::Role::App.as_str())
        })
        .filter_map(|c| c.labels.get(labels::SERVICE).cloned())
        .collect();
    apps.sort();
    apps.dedup();
    for service in &apps {
        let route = containers::route_name(project, service);
        if inner.proxy.status().iter().any(|s| s.name == route) {
            let s = p.step(format!("remove route {route}"));
            match inner.proxy.remove(&route) {
                Ok(()) => p.done(s, None),
                Err(e) => p.failed(s, e),
            }
        }
    }

    if !apps.is_empty() {
        inner.routes_changed().await;
    }

    // Apps first: they are the accessories' clients.
    let mut ordered = list.clone();
    ordered.sort_by_key(|c| {
        c.labels.get(labels::ROLE).map(String::as_str) != Some(cutover_docker::Role::App.as_str())
    });
    for c in &ordered {
        let grace = c
            .labels
            .get(labels::SERVICE)
            .and_then(|s| inner.releases.list(project, s).into_iter().next())
            .map(|r| containers::stop_grace(&r.app.service))
            .unwrap_or(Duration::from_secs(10));
        let s = p.step(format!("stop and remove {}", c.name));
        let r = async {
            engine.stop_container(&c.id, grace).await?;
            engine.remove_container(&c.id).await
        }
        .await;
        match r {
            Ok(_) => p.done(s, None),
            Err(e) => {
                errors.push(format!("{}: {e}", c.name));
                p.failed(s, e);
            }
        }
    }

    let networks = engine
        .list_networks(&LabelFilter::project(project))
        .await
        .map_err(Stop::failed)?;
    for n in &networks {
        let s = p.step(format!("remove network {}", n.name));
        match engine.remove_network(&n.name, project).await {
            Ok(_) => p.done(s, None),
            Err(e) => {
                errors.push(format!("network {}: {e}", n.name));
                p.failed(s, e);
            }
        }
    }

    let volumes = engine
        .list_volumes(&LabelFilter::project(project))
        .await
        .map_err(Stop::failed)?;
    if cmd.volumes {
        for v in &volumes {
            let s = p.step(format!("remove volume {} (its data is deleted)", v.name));
            match engine.remove_volume(&v.name).await {
                Ok(_) => p.done(s, None),
                Err(e) => {
                    errors.push(format!("volume {}: {e}", v.name));
                    p.failed(s, e);
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(Stop::failed(format!(
            "down of {project} left things behind: {}",
            errors.join("; ")
        )));
    }
    let mut message = format!(
        "{project} is down: removed {} container(s), {} network(s)",
        list.len(),
        networks.len()
    );
    if cmd.volumes {
        message.push_str(&format!(", {} volume(s)", volumes.len()));
    } else if !volumes.is_empty() {
        message.push_str(&format!(
            "; kept {} volume(s) with their data\nhint: `cutover down --volumes` also deletes the volumes",
            volumes.len()
        ));
    }
    Ok((Outcome::Ok, message))
}
