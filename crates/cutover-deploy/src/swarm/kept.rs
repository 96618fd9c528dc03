//! The old versions of an app on a Swarm, kept for `rollback` as on one
//! host (`x-cutover.keep`, 3 by default).
//!
//! An app has two color services. After a switch the replaced color is at
//! 0 tasks in its slot: the first kept version. The next deploy needs that
//! slot, and a Swarm service cannot be renamed, so before the slot is
//! replaced its version is copied aside, spec and all, as the service
//! `<project>_<app>_kept_<hash of the version>`, at 0 tasks (a global one
//! parked), labelled `cutover.kept` with the time. Those copies past
//! `keep - 1` are removed, oldest first.
//!
//! Lifecycle of a version: live in a slot → kept at 0 in its slot (the
//! switch) → set aside (the next deploy) → removed past `keep`, or put back
//! into the idle slot by `rollback --to` (the slot's own version is set
//! aside first, so a rollback loses none) → live again (the switch).
//!
//! Kept versions live in the swarm's own raft store, on every manager, not
//! in the deploy engine's state: a manager failover keeps them.

use std::collections::BTreeMap;

use cutover_core::clock::now_ms;
use cutover_core::diag::Report;
use cutover_core::naming;
use cutover_core::service::Color;
use cutover_docker::labels::{self, LabelFilter};
use cutover_swarm::{ServiceCopy, ServiceInfo};

use super::Inner;
use crate::events::Progress;
use crate::executor::Stop;

/// A version set aside.
#[derive(Debug, Clone)]
pub(super) struct Kept {
    /// Its service.
    pub name: String,
    pub version: String,
    pub kept_ms: u64,
}

/// The app's versions set aside, newest first.
pub(super) async fn list(sw: &Inner, project: &str, app: &str) -> Result<Vec<Kept>, Report> {
    let filter = LabelFilter::project(project).with(labels::SERVICE, app);
    let services = sw
        .cluster
        .list_services(&filter)
        .await
        .map_err(Report::from)?;
    let mut kept: Vec<Kept> = services.iter().filter_map(kept_of).collect();
    kept.sort_by(|a, b| b.kept_ms.cmp(&a.kept_ms).then(a.name.cmp(&b.name)));
    Ok(kept)
}

fn kept_of(s: &ServiceInfo) -> Option<Kept> {
    Some(Kept {
        name: s.name.clone(),
        version: s.labels.get(labels::VERSION)?.clone(),
        kept_ms: s.labels.get(labels::KEPT)?.parse().ok()?,
    })
}

/// Before a deploy replaces `slot`: the version it keeps at 0 tasks is
/// set aside when `keep` wants more than the one slot holds, unless it is
/// `deploying` (about to run again, live). A slot with tasks running is
/// what a deploy cut off before its switch left: never live, not kept.
pub(super) async fn set_aside(
    sw: &Inner,
    slot: &str,
    keep: u32,
    deploying: &str,
    p: &Progress,
) -> Result<(), Stop> {
    if keep < 2 {
        return Ok(());
    }
    let found = sw.cluster.inspect_service(slot).await;
    let Some(found) = found.map_err(Stop::failed)? else {
        return Ok(());
    };
    let (Some(version), Some(project), Some(app)) = (
        found.labels.get(labels::VERSION),
        found.labels.get(labels::PROJECT),
        found.labels.get(labels::SERVICE),
    ) else {
        return Ok(());
    };
    if found.replicas != Some(0) || version == deploying {
        return Ok(());
    }
    let name = naming::swarm_kept(project, app, version);
    let step = p.step(format!("keep {version} aside as {name}"));
    let copy = ServiceCopy {
        name: name.clone(),
        labels: BTreeMap::from([(labels::KEPT.into(), now_ms().to_string())]),
        unlabel: vec![labels::COLOR.into()],
        env: Vec::new(),
    };
    // An older copy of the same version label is superseded.
    let made = async {
        sw.cluster.remove_service(&name).await?;
        sw.cluster.copy_service(slot, &copy).await
    };
    match made.await {
        Ok(_) => {
            p.done(step, None);
            Ok(())
        }
        Err(e) => {
            p.failed(step, &e);
            Err(Stop::failed(Report::from(e).hint(format!(
                "nothing was started; `docker service inspect {slot}` holds the version, \
                 and `keep: 1` deploys without setting it aside"
            ))))
        }
    }
}

/// After a deploy's switch to `live`: the copies past `keep - 1` (the idle
/// slot holds one more), and one of the live version, are removed. A
/// failure is reported, not fatal: the deploy is done.
pub(super) async fn prune(
    sw: &Inner,
    project: &str,
    app: &str,
    keep: u32,
    live: &str,
    p: &Progress,
) {
    let kept = match list(sw, project, app).await {
        Ok(kept) => kept,
        Err(e) => return p.warn(e),
    };
    let room = keep.saturating_sub(1) as usize;
    let (current, older): (Vec<Kept>, Vec<Kept>) =
        kept.into_iter().partition(|k| k.version == live);
    for k in current.iter().chain(older.iter().skip(room)) {
        if let Err(e) = sw.cluster.remove_service(&k.name).await {
            p.warn(Report::from(e).hint(format!("remove it with `docker service rm {}`", k.name)));
        }
    }
}

/// Puts `kept` back into `color`'s slot at 0 tasks, for a rollback to
/// scale up: the slot's own version is set aside first, then the copy
/// takes the slot's name, color and `CUTOVER_COLOR`, and the copy aside
/// goes. Each step leaves every version in some service, so a failure
/// part-way loses none.
pub(super) async fn restore(
    sw: &Inner,
    project: &str,
    app: &str,
    kept: &Kept,
    color: Color,
    p: &Progress,
) -> Result<ServiceInfo, Stop> {
    let slot = naming::swarm_app(project, app, color);
    // A rollback adds no version, so whatever the slot keeps stays kept.
    set_aside(sw, &slot, u32::MAX, &kept.version, p).await?;
    let step = p.step(format!("put {} back as {slot}", kept.version));
    // The app reads its color from CUTOVER_COLOR, which cutover set.
    let env = [Color::Blue, Color::Green]
        .map(|c| {
            (
                format!("CUTOVER_COLOR={c}"),
                format!("CUTOVER_COLOR={color}"),
            )
        })
        .to_vec();
    let copy = ServiceCopy {
        name: slot.clone(),
        labels: BTreeMap::from([(labels::COLOR.into(), color.as_str().into())]),
        unlabel: vec![labels::KEPT.into()],
        env,
    };
    let moved = async {
        sw.cluster.remove_service(&slot).await?;
        sw.cluster.copy_service(&kept.name, &copy).await?;
        sw.cluster.remove_service(&kept.name).await?;
        sw.cluster.inspect_service(&slot).await
    };
    match moved.await {
        Ok(Some(info)) => {
            p.done(step, None);
            Ok(info)
        }
        Ok(None) => {
            let report = Report::new(format!("{slot} went away as it was put back"));
            p.failed(step, &report.message);
            Err(Stop::failed(report))
        }
        Err(e) => {
            p.failed(step, &e);
            Err(Stop::failed(e))
        }
    }
}
