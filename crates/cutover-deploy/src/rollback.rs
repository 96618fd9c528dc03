//! `rollback`: back to a kept version, run with the spec recorded when it
//! was released (its own env and config, not today's compose file). No
//! pull, no build: a version whose image is gone cannot come back.

use cutover_core::diag::Report;
use cutover_core::progress::{Outcome, RollbackCommand};

use crate::events::{Progress, Receiver};
use crate::executor::switch::{self, Candidate};
use crate::executor::{Operation, Stop};
use crate::releases::Release;
use crate::{DeployEngine, Inner};

impl DeployEngine {
    pub fn rollback(&self, project: String, cmd: RollbackCommand) -> Receiver {
        let op = Operation {
            project: project.clone(),
            name: "rollback",
            version: cmd.to.clone(),
            ok_recorded_per_app: true,
            adopt: false,
            id: None,
        };
        self.spawn_exclusive(op, cmd.wait_lock, |inner, p| async move {
            rollback(&inner, &project, &cmd, &p).await
        })
    }
}

async fn rollback(
    inner: &Inner,
    project: &str,
    cmd: &RollbackCommand,
    p: &Progress,
) -> Result<(Outcome, Report), Stop> {
    let engine = &*inner.engine;
    let obs = inner
        .project_containers(project)
        .await
        .map_err(Stop::failed)?;
    let mut services: Vec<String> = obs.apps.keys().cloned().collect();
    for s in inner.releases.services(project) {
        if !services.contains(&s) {
            services.push(s);
        }
    }
    let service = match (&cmd.service, services.as_slice()) {
        (Some(s), _) => s.clone(),
        (None, [only]) => only.clone(),
        (None, []) => {
            return Err(Stop::invalid(
                Report::new(format!("project {project} has no app deployed"))
                    .hint("deploy it first"),
            ))
        }
        (None, many) => {
            return Err(Stop::invalid(
                Report::new(format!(
                    "project {project} has several apps: {}",
                    many.join(", ")
                ))
                .hint("name the one to roll back"),
            ))
        }
    };
    let state = obs.apps.get(&service).cloned().unwrap_or_default();
    if let Some(refused) = crate::stage::still_staged(&state, &service) {
        return Err(Stop::invalid(refused));
    }
    let Some(live) = &state.live else {
        return Err(Stop::invalid(
            Report::new(format!("{service} has no live version to roll back from"))
                .hint("`cutover deploy` starts it"),
        ));
    };
    let records = inner.releases.list(project, &service);
    let target: Release = match &cmd.to {
        Some(to) => records
            .iter()
            .find(|r| &r.version == to || &r.version_id == to)
            .or_else(|| {
                records
                    .iter()
                    .find(|r| to.len() >= 4 && r.version_id.starts_with(to.as_str()))
            })
            .cloned()
            .ok_or_else(|| {
                Stop::invalid(
                    Report::new(format!("{service} has no recorded version {to}")).hint(format!(
                        "versions that can come back: {}",
                        describe(&records, &live.version_id)
                    )),
                )
            })?,
        None => state
            .kept
            .iter()
            .find_map(|k| k.release.clone())
            .or_else(|| {
                records
                    .iter()
                    .find(|r| r.version_id != live.version_id)
                    .cloned()
            })
            .ok_or_else(|| {
                Stop::invalid(
                    Report::new(format!("{service} has no previous version to roll back to"))
                        .hint(format!("only {} was ever released here", live.version)),
                )
            })?,
    };
    if target.version_id == live.version_id {
        return Ok((
            Outcome::UpToDate,
            format!("{service} already runs version {}", target.version).into(),
        ));
    }
    let image = match engine
        .inspect_image(&target.image_id)
        .await
        .map_err(Stop::failed)?
    {
        Some(_) => target.image_id.clone(),
        None => match engine
            .inspect_image(&target.app.service.image)
            .await
            .map_err(Stop::failed)?
        {
            Some(img) if img.id == target.image_id => target.app.service.image.clone(),
            _ => {
                return Err(Stop::failed(
                    Report::new(format!(
                        "the image of version {} ({}, {}) is no longer on this host",
                        target.version, target.app.service.image, target.image_id
                    ))
                    .hint("pull or load that image, or roll back to another version"),
                ))
            }
        },
    };
    // The kept copies of the target become redundant once it is live, and
    // the retiring version joins the kept ones, so prune past `keep`.
    let color = live.color.other();
    let slot = target.app.slot(project, color);
    let remove_after = past_keep(inner, &state, &target, &slot);
    switch::roll_out(
        inner,
        p,
        project,
        Candidate {
            app: &target.app,
            image,
            image_id: target.image_id.clone(),
            version: target.version.clone(),
            version_id: target.version_id.clone(),
            config_hash: target.config_hash.clone(),
            color,
            operation: "rollback",
            stage: None,
            started: p.started(),
        },
        &state,
        &remove_after,
    )
    .await?;
    Ok((
        Outcome::Ok,
        format!(
            "rolled {service} back to version {} ({color}); {} drains, then is stopped and kept",
            target.version, live.version
        )
        .into(),
    ))
}

/// What goes once `target` is live in `slot` (rollback and promote alike):
/// its other kept copies, and the versions past `keep` once the live one
/// joins the kept ones.
pub(crate) fn past_keep(
    inner: &Inner,
    state: &crate::observe::AppState,
    target: &Release,
    slot: &str,
) -> Vec<String> {
    let kept = || state.kept.iter().filter(|k| !k.going(&inner.retirements));
    let mut remove_after: Vec<String> = kept()
        .filter(|k| k.version_id == target.version_id && k.name() != slot)
        .map(|k| k.name().to_string())
        .collect();
    let others: Vec<String> = state
        .live
        .iter()
        .chain(kept().filter(|k| k.version_id != target.version_id))
        .map(|k| k.name().to_string())
        .collect();
    remove_after.extend(others.into_iter().skip(target.app.cutover.keep as usize));
    remove_after
}

fn describe(records: &[Release], live: &str) -> String {
    let v: Vec<String> = records
        .iter()
        .filter(|r| r.version_id != live)
        .map(|r| format!("{} ({})", r.version, r.version_id))
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}
