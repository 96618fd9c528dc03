//! `cutover status` against a Swarm deploy engine: every node's view, and
//! where the nodes disagree.

use std::fmt::Write;

use cutover_core::fleet::ClusterStatus;
use cutover_core::status::{Health, TargetSetStatus};

use super::table;

/// One line per node and route (a node with no view says why), then the
/// routes the nodes do not serve alike. `project` keeps that project's
/// routes only.
pub fn nodes_table(cluster: &ClusterStatus, project: Option<&str>) -> String {
    let prefix = project.map(|p| format!("{p}/"));
    let mut rows = Vec::new();
    for node in &cluster.nodes {
        if let Some(error) = &node.error {
            rows.push(vec![
                node.node.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                error.clone(),
            ]);
            continue;
        }
        let services: Vec<_> = node
            .services
            .iter()
            .filter(|s| {
                prefix
                    .as_ref()
                    .is_none_or(|p| s.name.starts_with(p.as_str()))
            })
            .collect();
        if services.is_empty() {
            rows.push(vec![
                node.node.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "serves nothing".into(),
            ]);
        }
        for s in services {
            let draining: Vec<String> = s.draining.iter().map(describe).collect();
            rows.push(vec![
                node.node.clone(),
                s.name.clone(),
                s.active.color.to_string(),
                s.active.version.clone().unwrap_or_else(|| "-".into()),
                healthy(&s.active),
                if draining.is_empty() {
                    "-".into()
                } else {
                    format!("draining {}", draining.join(", "))
                },
            ]);
        }
    }
    let header = ["NODE", "SERVICE", "COLOR", "VERSION", "HEALTHY", "NOTE"];
    let mut out = table(&header, &rows, "");
    let shown: Vec<&String> = cluster
        .disagreements
        .iter()
        .filter(|d| prefix.as_ref().is_none_or(|p| d.starts_with(p.as_str())))
        .collect();
    if shown.is_empty() {
        out.push_str("every node that answered serves the same versions\n");
    } else {
        out.push_str("the nodes disagree:\n");
        for d in shown {
            let _ = writeln!(out, "  {d}");
        }
        out.push_str(
            "  a deploy that reached only some nodes; deploy again once every node's edge runs\n",
        );
    }
    out
}

fn healthy(set: &TargetSetStatus) -> String {
    let up = set
        .targets
        .iter()
        .filter(|t| t.health == Health::Healthy)
        .count();
    format!("{up}/{}", set.targets.len())
}

fn describe(set: &TargetSetStatus) -> String {
    let open: u64 = set.targets.iter().map(|t| t.in_flight + t.upgraded).sum();
    format!(
        "{} {} ({open} open)",
        set.color,
        set.version.as_deref().unwrap_or("-")
    )
}
