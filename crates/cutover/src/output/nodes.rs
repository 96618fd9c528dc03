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
        // A node with no route to show: its name and why.
        let bare = |note: &str| {
            let mut row = vec![node.node.clone()];
            row.extend(["-"; 4].map(String::from));
            row.push(note.to_string());
            row
        };
        if let Some(error) = &node.error {
            rows.push(bare(error));
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
            rows.push(bare("serves nothing"));
        }
        for s in services {
            let draining: Vec<String> = s.draining.iter().map(describe).collect();
            let mut notes = Vec::new();
            if let Some(staged) = &s.staged {
                notes.push(format!(
                    "staged {} {} ({}) {}",
                    staged.set.color,
                    staged.set.version.as_deref().unwrap_or("-"),
                    staged.stage.mode.describe(),
                    healthy(&staged.set)
                ));
            }
            if s.maintenance.is_some() {
                notes.push("maintenance".into());
            }
            if !draining.is_empty() {
                notes.push(format!("draining {}", draining.join(", ")));
            }
            rows.push(vec![
                node.node.clone(),
                s.name.clone(),
                s.active.color.to_string(),
                s.active.version.clone().unwrap_or_else(|| "-".into()),
                healthy(&s.active),
                if notes.is_empty() {
                    "-".into()
                } else {
                    notes.join("; ")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(disagreements: &[&str]) -> ClusterStatus {
        let route = |color: &str, version: &str, draining: bool| {
            serde_json::json!({
                "name": "shop/web",
                "config": { "targets": [] },
                "active": {
                    "id": 2, "color": color, "version": version, "state": "active", "since_ms": 0,
                    "targets": [
                        {"addr": "10.0.1.5:8080", "health": "healthy", "last_error": null, "in_flight": 0, "upgraded": 0},
                        {"addr": "10.0.1.6:8080", "health": "unhealthy", "last_error": "refused", "in_flight": 0, "upgraded": 0}
                    ]
                },
                "draining": if draining { serde_json::json!([{
                    "id": 1, "color": "blue", "version": "v1", "state": "draining", "since_ms": 0,
                    "targets": [{"addr": "10.0.1.4:8080", "health": "healthy", "last_error": null, "in_flight": 1, "upgraded": 2}]
                }]) } else { serde_json::json!([]) }
            })
        };
        serde_json::from_value(serde_json::json!({
            "nodes": [
                {"node": "n1", "edge": "10.0.1.2:26091", "services": [route("green", "v2", true)]},
                {"node": "n2", "edge": "10.0.1.3:26091", "services": []},
                {"node": "n3", "error": "the node is down: it serves nothing", "services": []}
            ],
            "disagreements": disagreements
        }))
        .unwrap()
    }

    #[test]
    fn each_node_says_what_it_serves_or_why_not_and_disagreements_follow() {
        let out = nodes_table(&cluster(&["shop/web: n1 green v2, n2 nothing"]), None);
        assert_eq!(
            out,
            "NODE  SERVICE   COLOR  VERSION  HEALTHY  NOTE\n\
             n1    shop/web  green  v2       1/2      draining blue v1 (3 open)\n\
             n2    -         -      -        -        serves nothing\n\
             n3    -         -      -        -        the node is down: it serves nothing\n\
             the nodes disagree:\n  \
             shop/web: n1 green v2, n2 nothing\n  \
             a deploy that reached only some nodes; deploy again once every node's edge runs\n"
        );
        let other = nodes_table(&cluster(&[]), Some("blog"));
        assert!(
            other.contains("n1    -"),
            "another project's routes are not shown:\n{other}"
        );
        assert!(other.ends_with("every node that answered serves the same versions\n"));
    }
}
