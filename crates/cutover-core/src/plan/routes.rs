//! Route conflicts, found before anything starts: the routes a deploy
//! would install, checked against the routes the proxy serves now and
//! against each other. The proxy checks again at the switch; this is what
//! lets `plan` say so, and a multi-app deploy stop before its first app.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::PlanError;
use crate::compose::ResolvedProject;
use crate::naming;
use crate::route::{on_main_listener, RouteError, RouteTable};

/// A route the proxy serves now, by its name (`<project>/<service>` for
/// the deploy engine's routes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRoute {
    pub name: String,
    pub hosts: Vec<String>,
    pub path_prefix: Option<String>,
    #[serde(default)]
    pub listen: Vec<String>,
}

/// The conflicts of routing the apps in `routed` as `desired` says, with
/// every other route in `held` staying as it is. The routes of `routed`
/// apps are replaced, so they conflict with nothing.
pub fn route_conflicts(
    desired: &ResolvedProject,
    routed: &BTreeSet<String>,
    held: &[HeldRoute],
) -> Vec<PlanError> {
    let replaced: BTreeSet<String> = routed
        .iter()
        .map(|s| naming::route(&desired.name, s))
        .collect();
    let mut table: RouteTable<String> = RouteTable::new();
    for h in held.iter().filter(|h| !replaced.contains(&h.name)) {
        if on_main_listener(&h.hosts, h.path_prefix.as_deref(), &h.listen) {
            // What the proxy serves is consistent; an error here would be
            // its own, and is not this deploy's to report.
            let _ = table.insert(&h.hosts, h.path_prefix.as_deref(), h.name.clone());
        }
    }
    let mut errors = Vec::new();
    for app in desired
        .apps
        .iter()
        .filter(|a| routed.contains(&a.service.name))
    {
        let c = &app.cutover;
        if !on_main_listener(&c.hosts, c.path_prefix.as_deref(), &c.listen) {
            continue;
        }
        let name = naming::route(&desired.name, &app.service.name);
        let Err(RouteError::Duplicate { host, prefix }) =
            table.insert(&c.hosts, c.path_prefix.as_deref(), name)
        else {
            // Invalid patterns are the resolver's to report, with a line.
            continue;
        };
        let pattern = (host != "*").then_some(host.as_str());
        let held_by = table
            .holder(pattern, Some(&prefix))
            .cloned()
            .unwrap_or_else(|| "another route".into());
        errors.push(PlanError::RouteConflict {
            project: desired.name.clone(),
            service: app.service.name.clone(),
            host,
            prefix,
            held_by,
        });
    }
    errors.extend(shared_call_ports(desired, routed));
    errors
}

/// Two apps on one network with the same `x-cutover.port`: the daemon
/// answers calls by name for each at that network's gateway and that port
/// (docs/config.md, "Calls to an app by name"), which can be only one
/// app's. Found here, not when the second app's switch binds it.
fn shared_call_ports(desired: &ResolvedProject, routed: &BTreeSet<String>) -> Vec<PlanError> {
    let mut first: std::collections::BTreeMap<(&str, u16), &str> = Default::default();
    let mut errors = Vec::new();
    for app in &desired.apps {
        for n in &app.service.networks {
            let key = (n.name.as_str(), app.cutover.port);
            match first.get(&key) {
                None => {
                    first.insert(key, &app.service.name);
                }
                Some(other) if routed.contains(&app.service.name) || routed.contains(*other) => {
                    errors.push(PlanError::SharedCallPort {
                        services: [other.to_string(), app.service.name.clone()],
                        network: n.name.clone(),
                        port: app.cutover.port,
                    });
                }
                Some(_) => {}
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{load, ComposeFile, LoadInput, NoFiles};

    type App<'a> = (&'a str, &'a [&'a str], Option<&'a str>);

    /// A project `name` whose apps have these hosts and path prefixes,
    /// each on a port of its own unless the name ends in `-same-port`.
    fn project_with_apps(name: &str, apps: &[App]) -> ResolvedProject {
        let mut yaml = format!("name: {name}\nservices:\n");
        for (i, (service, hosts, prefix)) in apps.iter().enumerate() {
            let port = if name.ends_with("-same-port") {
                8080
            } else {
                8080 + i
            };
            yaml += &format!(
                "  {service}:\n    image: app:1\n    x-cutover:\n      port: {port}\n      hosts: [{}]\n",
                hosts.join(", ")
            );
            if let Some(p) = prefix {
                yaml += &format!("      path_prefix: {p}\n");
            }
        }
        let input = LoadInput {
            files: vec![ComposeFile {
                path: "compose.yaml".into(),
                content: yaml,
            }],
            project_dir: "/srv".into(),
            project_name: None,
            env: Default::default(),
        };
        load(&input, &NoFiles).unwrap_or_else(|e| panic!("{e}"))
    }

    fn held(name: &str, hosts: &[&str], prefix: Option<&str>) -> HeldRoute {
        HeldRoute {
            name: name.into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            path_prefix: prefix.map(Into::into),
            listen: vec![],
        }
    }

    fn all(p: &ResolvedProject) -> BTreeSet<String> {
        p.apps.iter().map(|a| a.service.name.clone()).collect()
    }

    #[test]
    fn a_host_another_project_serves_is_named_with_its_holder() {
        let p = project_with_apps("shop", &[("web", &["app.test"], None)]);
        let errors = route_conflicts(&p, &all(&p), &[held("blog/web", &["APP.test"], Some("/"))]);
        assert_eq!(
            errors,
            vec![PlanError::RouteConflict {
                project: "shop".into(),
                service: "web".into(),
                host: "app.test".into(),
                prefix: "/".into(),
                held_by: "blog/web".into(),
            }]
        );
    }

    #[test]
    fn the_apps_own_routes_are_replaced_and_conflict_with_nothing() {
        let p = project_with_apps("shop", &[("web", &["app.test"], None)]);
        assert!(route_conflicts(&p, &all(&p), &[held("shop/web", &["app.test"], None)]).is_empty());
    }

    #[test]
    fn an_app_not_deployed_now_keeps_its_route() {
        let p = project_with_apps(
            "shop",
            &[("web", &["app.test"], None), ("api", &["app.test"], None)],
        );
        let only_api = BTreeSet::from(["api".to_string()]);
        let errors = route_conflicts(&p, &only_api, &[held("shop/web", &["app.test"], None)]);
        assert!(
            matches!(&errors[..], [PlanError::RouteConflict { service, held_by, .. }] if service == "api" && held_by == "shop/web"),
            "{errors:?}"
        );
    }

    #[test]
    fn two_apps_of_one_project_that_claim_the_same_route() {
        let p = project_with_apps(
            "shop",
            &[("api", &[], Some("/api")), ("web", &[], Some("/api/"))],
        );
        let errors = route_conflicts(&p, &all(&p), &[]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].to_string().contains("shop/api"), "{}", errors[0]);
    }

    #[test]
    fn two_apps_on_one_network_need_two_ports() {
        let p = project_with_apps(
            "shop-same-port",
            &[("api", &["a.test"], None), ("web", &["w.test"], None)],
        );
        let errors = route_conflicts(&p, &all(&p), &[]);
        assert_eq!(
            errors,
            vec![PlanError::SharedCallPort {
                services: ["api".into(), "web".into()],
                network: "shop-same-port_default".into(),
                port: 8080,
            }]
        );
    }

    #[test]
    fn different_prefixes_and_own_ports_do_not_conflict() {
        let p = project_with_apps("shop", &[("web", &["app.test"], Some("/v2"))]);
        let errors = route_conflicts(
            &p,
            &all(&p),
            &[
                held("blog/web", &["app.test"], None),
                HeldRoute {
                    listen: vec!["0.0.0.0:9000".into()],
                    ..held("tcp/db", &[], None)
                },
            ],
        );
        assert!(errors.is_empty(), "{errors:?}");
    }
}
