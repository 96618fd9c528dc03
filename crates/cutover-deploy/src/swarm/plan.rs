//! What a deploy on a Swarm would do, decided in one place: [`decide`] is
//! what `deploy` acts on for each app, and [`plan`] shows the same
//! decisions as `cutover plan` does on one host, with nothing changed.

use std::collections::BTreeSet;

use cutover_core::compose::{config_hash, version_id, AppSpec};
use cutover_core::diag::{Diagnose, Report};
use cutover_core::naming;
use cutover_core::plan::{ConfigChange, DeployReason, Plan, StartReason, Step};
use cutover_core::progress::DeployCommand;
use cutover_core::service::{Color, DeployRequest};
use cutover_docker::labels;

use super::deploy::{accessory_changed, missing_networks, preflight, with_files_read, Preflight};
use super::switch::{self, NodeRoute};
use super::{gateways, Inner};
use crate::executor::Stop;
use crate::specs::{route_request, Gateways};

/// An app's fate in a deploy.
pub(super) enum Decision {
    /// The live color already runs this: nothing is done.
    UpToDate { color: Color, version: String },
    /// A new color starts and takes the route.
    Deploy {
        color: Color,
        version: String,
        reason: DeployReason,
    },
}

/// Whether `app` gets a new color: none is live yet, `force`, or its live
/// service differs in image, config or task count, or the nodes route it
/// otherwise than the file says (hosts, path, health, timeouts, TLS). A
/// route change is deployed as a new color too, so it is health-gated and
/// switched on every node together.
pub(super) async fn decide(
    sw: &Inner,
    cmd: &DeployCommand,
    app: &AppSpec,
    live: Option<Color>,
    views: &[NodeRoute],
) -> Result<Decision, Stop> {
    let project = &cmd.project.name;
    let hash = config_hash(&app.service);
    let version = cmd
        .version
        .clone()
        .unwrap_or_else(|| version_id(&app.service.image, &hash));
    let Some(color) = live else {
        return Ok(Decision::Deploy {
            color: Color::Blue,
            version,
            reason: DeployReason::New,
        });
    };
    let deploy = |reason| Decision::Deploy {
        color: color.other(),
        version: version.clone(),
        reason,
    };
    let service = naming::swarm_app(project, &app.service.name, color);
    let Some(found) = sw
        .cluster
        .inspect_service(&service)
        .await
        .map_err(Stop::failed)?
    else {
        return Ok(deploy(DeployReason::New));
    };
    let mut fields = Vec::new();
    if found.labels.get(labels::CONFIG_HASH) != Some(&hash) {
        fields.push("config".to_string());
    }
    if found.replicas != super::specs::wanted_tasks(&app.service) {
        fields.push(if app.service.global || found.replicas.is_none() {
            "deploy.mode".into()
        } else {
            "deploy.replicas".into()
        });
    }
    if let Some(routed) = views.iter().find_map(|v| v.config.as_ref()) {
        let want = route_request(app, &Gateways::default(), &[], color, &version);
        fields.extend(route_changes(routed, &want).into_iter().map(String::from));
    }
    let reason = if found.image != app.service.image {
        Some(DeployReason::ImageChanged {
            from: found.image.clone(),
            to: app.service.image.clone(),
        })
    } else if !fields.is_empty() {
        Some(DeployReason::ConfigChanged(ConfigChange {
            fields,
            ..ConfigChange::default()
        }))
    } else if cmd.force {
        Some(DeployReason::Forced)
    } else {
        None
    };
    Ok(match reason {
        Some(reason) => deploy(reason),
        None => Decision::UpToDate {
            color,
            version: found
                .labels
                .get(labels::VERSION)
                .cloned()
                .unwrap_or(version),
        },
    })
}

/// The `x-cutover` keys whose route on the nodes differs from the file's.
fn route_changes(routed: &DeployRequest, want: &DeployRequest) -> Vec<&'static str> {
    [
        ("x-cutover.hosts", routed.hosts != want.hosts),
        (
            "x-cutover.path_prefix",
            routed.path_prefix != want.path_prefix,
        ),
        ("x-cutover.health", routed.health != want.health),
        ("x-cutover timeouts", routed.timeouts != want.timeouts),
        ("x-cutover.tls", routed.tls != want.tls),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

/// `cutover plan` on a Swarm: the deploy's checks and decisions, run.
pub(super) async fn plan(sw: &Inner, cmd: &DeployCommand) -> Result<Plan, Stop> {
    let cmd = &with_files_read(cmd)?;
    let project = &cmd.project;
    let Preflight { selected, edges } = preflight(sw, cmd).await?;
    let mut steps = Vec::new();
    let mut warnings: Vec<Report> = project.warnings.iter().map(Diagnose::report).collect();

    // 1. The networks a deploy creates.
    for n in missing_networks(sw, project).await? {
        steps.push(Step::CreateNetwork {
            key: n.key.clone(),
            name: n.name.clone(),
        });
    }

    // 2. Accessories start once; a changed one is left as it runs.
    for acc in &project.accessories {
        let spec = super::specs::accessory_service(&project.name, acc);
        let service = acc.service.name.clone();
        let container = spec.name.clone();
        match sw
            .cluster
            .inspect_service(&spec.name)
            .await
            .map_err(Stop::failed)?
        {
            None => steps.push(Step::StartAccessory {
                service,
                container,
                reason: StartReason::Missing,
            }),
            Some(found) => {
                if found.labels.get(labels::CONFIG_HASH) != spec.labels.get(labels::CONFIG_HASH) {
                    warnings.push(accessory_changed(&spec.name));
                }
                steps.push(Step::LeaveAccessory { service, container });
            }
        }
    }

    // 3. Each selected app's gateway, before any switch.
    for app in selected_in_order(project, &selected) {
        let (gateway, replace) = match gateways::wanted(sw, project, app).await? {
            gateways::Wanted::UpToDate => continue,
            gateways::Wanted::Start(g) => (g, false),
            gateways::Wanted::Replace(g) => (g, true),
        };
        steps.push(Step::StartGateway {
            service: app.service.name.clone(),
            name: gateway.spec.name,
            networks: gateway.networks.into_keys().collect(),
            replace,
        });
    }

    // 4. Each selected app, as the deploy decides it.
    for app in selected_in_order(project, &selected) {
        let route = naming::route(&project.name, &app.service.name);
        let views = switch::views(&edges, &sw.edges, &route)
            .await
            .map_err(Stop::failed)?;
        let live = switch::live_color(&route, &views).map_err(Stop::failed)?;
        let service = app.service.name.clone();
        steps.push(match decide(sw, cmd, app, live, &views).await? {
            Decision::UpToDate { color, version } => Step::AppUpToDate {
                service,
                color,
                version,
            },
            Decision::Deploy {
                color,
                version,
                reason,
            } => Step::DeployApp {
                container: naming::swarm_app(&project.name, &service, color),
                service,
                color,
                version: Some(version),
                reuse: None,
                reason,
                replicas: app.service.replicas,
            },
        });
    }
    Ok(Plan {
        steps,
        warnings,
        // The nodes pull the images when their tasks start.
        images: Vec::new(),
    })
}

/// The selected apps, in the file's order.
pub(super) fn selected_in_order<'a>(
    project: &'a cutover_core::compose::ResolvedProject,
    selected: &'a BTreeSet<String>,
) -> impl Iterator<Item = &'a AppSpec> + 'a {
    project
        .apps
        .iter()
        .filter(move |a| selected.contains(&a.service.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed() -> DeployRequest {
        serde_json::from_value(serde_json::json!({
            "targets": ["10.0.1.5:8080"],
            "hosts": ["shop.example"],
            "color": "blue",
            "version": "v1"
        }))
        .unwrap()
    }

    /// Targets, color and version are the deploy's own; what the file
    /// says of the route is what is compared.
    #[test]
    fn a_route_change_is_named_by_its_key() {
        let now = routed();
        let mut want = routed();
        want.targets.clear();
        want.color = Some(Color::Green);
        want.version = Some("v2".into());
        assert!(route_changes(&now, &want).is_empty());
        want.hosts = vec!["shop.example".into(), "www.shop.example".into()];
        want.path_prefix = Some("/api".into());
        assert_eq!(
            route_changes(&now, &want),
            ["x-cutover.hosts", "x-cutover.path_prefix"]
        );
    }
}
