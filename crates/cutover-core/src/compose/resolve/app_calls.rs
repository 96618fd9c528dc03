//! Calls from one service to an app by name (nginx in front of `backend`,
//! a worker calling the API) go through cutover, so they are switched and
//! drained like outside traffic and never reach a color before its health
//! gate or after it retired. The colors answer to no name on the network;
//! instead each container on a network an app is on maps the app's names,
//! in its /etc/hosts, to that network's gateway, where the daemon answers
//! on the app's port. A DNS alias on both colors, as Compose gives, would
//! send callers to whichever color the resolver picks.
//!
//! Which network: the caller's first network (in its own order) that the
//! app is on. Which names: the app's service name, its `container_name`
//! and its aliases on that network. A name the caller maps itself in
//! `extra_hosts` stays the caller's. A service that shares another's
//! network stack (`network_mode`) has no /etc/hosts of its own to fill.
//! What an app depends on, directly or not (its database, its cache),
//! serves it and does not call it: it gets no entries, so adding an app
//! never recreates the database under it.

use std::collections::{BTreeMap, BTreeSet};

use super::super::model::{AccessorySpec, AppSpec, ResolvedProject, ServiceSpec};

/// One app as callers see it: its names on each network, and the
/// services it depends on.
struct Callee {
    names_on: BTreeMap<String, Vec<String>>,
    serves_it: BTreeSet<String>,
}

pub(super) fn route_app_calls(apps: &mut [AppSpec], accessories: &mut [AccessorySpec]) {
    let depends: BTreeMap<&str, Vec<&str>> = apps
        .iter()
        .map(|a| &a.service)
        .chain(accessories.iter().map(|a| &a.service))
        .map(|s| {
            let on = s.depends_on.iter().map(|d| d.service.as_str()).collect();
            (s.name.as_str(), on)
        })
        .collect();
    let callees: Vec<Callee> = apps.iter().map(|a| callee(a, &depends)).collect();
    let services = apps
        .iter_mut()
        .map(|a| &mut a.service)
        .chain(accessories.iter_mut().map(|a| &mut a.service));
    for s in services {
        s.app_hosts = app_hosts(s, &callees);
    }
}

/// On a Swarm, where nothing edits /etc/hosts: the networks on which
/// some service of `project` calls `app` by name (the entries above),
/// each with the names it is called by there. An app's gateway answers to
/// these names on these networks.
pub fn called_on(project: &ResolvedProject, app: &AppSpec) -> BTreeMap<String, Vec<String>> {
    let callers: Vec<&ServiceSpec> = project
        .apps
        .iter()
        .map(|a| &a.service)
        .chain(project.accessories.iter().map(|a| &a.service))
        .collect();
    let mut out = names_on(app);
    out.retain(|network, names| {
        callers.iter().any(|c| {
            c.app_hosts
                .iter()
                .any(|(name, on)| on == network && names.contains(name))
        })
    });
    out
}

/// The app's names on each of its networks: its service name, its
/// `container_name` and its aliases there.
fn names_on(app: &AppSpec) -> BTreeMap<String, Vec<String>> {
    let mut names_on: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in &app.service.networks {
        let names = names_on.entry(n.name.clone()).or_default();
        let all = std::iter::once(&app.service.name)
            .chain(app.container_name.as_ref())
            .chain(&n.aliases);
        for name in all {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names_on
}

fn callee(app: &AppSpec, depends: &BTreeMap<&str, Vec<&str>>) -> Callee {
    let names_on = names_on(app);
    let mut serves_it = BTreeSet::new();
    let mut todo = vec![app.service.name.as_str()];
    while let Some(s) = todo.pop() {
        for d in depends.get(s).into_iter().flatten() {
            if serves_it.insert(d.to_string()) {
                todo.push(d);
            }
        }
    }
    Callee {
        names_on,
        serves_it,
    }
}

fn app_hosts(caller: &ServiceSpec, callees: &[Callee]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if caller.options.network_mode.is_some() {
        return out;
    }
    let own: Vec<&str> = caller
        .extra_hosts
        .iter()
        .filter_map(|h| h.split_once(':').map(|(name, _)| name))
        .collect();
    for callee in callees
        .iter()
        .filter(|c| !c.serves_it.contains(&caller.name))
    {
        for n in &caller.networks {
            for name in callee.names_on.get(&n.name).into_iter().flatten() {
                if !own.contains(&name.as_str()) {
                    out.entry(name.clone()).or_insert_with(|| n.name.clone());
                }
            }
        }
    }
    out
}
