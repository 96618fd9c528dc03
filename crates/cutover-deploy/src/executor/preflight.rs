//! What a deploy or plan checks of the selected apps before anything is
//! built or started: the secrets they need, the routes they claim, and the
//! certificates this daemon can get for them.

use std::collections::BTreeSet;

use cutover_core::compose::ResolvedProject;
use cutover_core::plan::{route_conflicts, PlanErrors};

use crate::executor::Stop;
use crate::Inner;

/// The routes of the selected apps against every other route the proxy
/// serves. An app that is up to date claims what it already holds, so
/// checking every selected app needs no image and runs before any build.
pub(crate) fn check_selected(
    inner: &Inner,
    desired: &ResolvedProject,
    selected: &BTreeSet<String>,
) -> Result<(), Stop> {
    // A secret only a Swarm has cannot be given to a container here.
    if let Some(refused) = crate::specs::external_file(desired) {
        return Err(Stop::invalid(refused));
    }
    let conflicts = route_conflicts(desired, selected, &inner.proxy.held_routes());
    if !conflicts.is_empty() {
        return Err(Stop::invalid(PlanErrors(conflicts)));
    }
    // A certificate this daemon cannot get is found before anything starts.
    let refused = desired
        .apps
        .iter()
        .filter(|a| selected.contains(&a.service.name))
        .find_map(|a| {
            let c = &a.cutover;
            let r = inner.proxy.refuses_certificate(c.tls.as_ref(), &c.hosts)?;
            Some(r.map_message(|m| format!("services.{}.x-cutover.tls: {m}", a.service.name)))
        });
    refused.map_or(Ok(()), |r| Err(Stop::invalid(r)))
}
