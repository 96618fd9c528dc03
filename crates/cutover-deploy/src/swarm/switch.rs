//! One app's switch on every live node, in the two phases of
//! `cutover_core::fleet`, and the old color's drain on each of them.

use std::collections::BTreeMap;
use std::time::Duration;

use cutover_core::diag::Report;
use cutover_core::fleet::{self, Decision, Vote};
use cutover_core::service::{Color, DeployRequest};
use cutover_core::stage::Stage;
use cutover_core::status::StagedStatus;
use futures_util::future::join_all;

use super::edges::{Edge, EdgeSettings};

/// What one node serves a route with before the switch.
pub(super) struct NodeRoute {
    pub edge: Edge,
    /// The active set's color and id there.
    pub active: Option<(Color, u64)>,
    /// The request that made it live: a rollback's template.
    pub config: Option<DeployRequest>,
    /// The version staged beside it there (`--preview`, `--canary`).
    pub staged: Option<StagedStatus>,
}

/// What phase two does on every node once all of them are ready.
#[derive(Clone, Copy)]
pub(super) enum PhaseTwo<'a> {
    /// The set goes live: a deploy's or a rollback's switch.
    Commit,
    /// The set is staged beside the live one, under one token.
    Stage(&'a Stage),
}

/// Every live node's view of `route`; a node that does not answer fails
/// the deploy before anything changes.
pub(super) async fn views(
    edges: &[Edge],
    s: &EdgeSettings,
    route: &str,
) -> Result<Vec<NodeRoute>, Report> {
    let answers = join_all(edges.iter().map(|e| e.route(s, route))).await;
    let mut out = Vec::new();
    for (edge, answer) in edges.iter().zip(answers) {
        let status = answer.map_err(|e| {
            Report::new(format!(
                "the cutover edge on {} did not say what it serves: {e}",
                edge.node
            ))
            .hint(format!(
                "check that node's edge (`docker service ps {}`); nothing was changed",
                s.service
            ))
        })?;
        out.push(NodeRoute {
            edge: edge.clone(),
            active: status.as_ref().map(|s| (s.active.color, s.active.id)),
            staged: status.as_ref().and_then(|s| s.staged.clone()),
            config: status.map(|s| s.config),
        });
    }
    Ok(out)
}

/// The color the live nodes agree on (`None`: a first deploy).
pub(super) fn live_color(route: &str, views: &[NodeRoute]) -> Result<Option<Color>, Report> {
    let colors: BTreeMap<String, Option<Color>> = views
        .iter()
        .map(|v| (v.edge.node.clone(), v.active.map(|(c, _)| c)))
        .collect();
    fleet::agreed_color(&colors).map_err(|split| {
        Report::new(format!("the nodes do not serve {route} with one color: {split}"))
            .hint("a switch reached only some nodes; deploy again once every node's edge runs, and the nodes converge on the new color")
    })
}

/// The switch as it happened.
pub(super) struct Switched {
    /// Nodes that switched, with the time each reported (ms since the epoch).
    pub committed: BTreeMap<String, u64>,
    /// Nodes that prepared but did not switch, with why.
    pub missed: Vec<String>,
}

impl Switched {
    pub fn spread(&self) -> Option<Duration> {
        fleet::spread(self.committed.values().copied())
    }
}

/// Prepare on every node, then commit (or stage) on every node or abort
/// on all.
pub(super) async fn switch(
    views: &[NodeRoute],
    s: &EdgeSettings,
    route: &str,
    req: &DeployRequest,
    then: PhaseTwo<'_>,
) -> Result<Switched, Report> {
    // 1. Each node gates the new tasks from where it stands.
    let votes = join_all(views.iter().map(|v| v.edge.prepare(s, route, req))).await;
    let votes: BTreeMap<String, (Edge, Vote)> = views
        .iter()
        .zip(votes)
        .map(|(v, vote)| (v.edge.node.clone(), (v.edge.clone(), vote)))
        .collect();
    let ballot: BTreeMap<String, Vote> = votes
        .iter()
        .map(|(node, (_, vote))| (node.clone(), vote.clone()))
        .collect();
    let prepared = || {
        votes.values().filter_map(|(edge, vote)| match vote {
            Vote::Ready { set_id } => Some((edge, *set_id)),
            _ => None,
        })
    };

    // 2. The rule decides, and every node hears the same answer.
    if let Decision::Abort { reasons } = fleet::decide(&ballot) {
        join_all(prepared().map(|(edge, id)| edge.abort(s, route, id))).await;
        return Err(Report::new(format!(
            "{route}: the new version is not healthy from every node; nothing was switched on any"
        ))
        .detail(reasons.join("\n"))
        .hint("the old color still serves on every node; check the new tasks' logs (`docker service logs`) and the health check path"));
    }
    let commits = join_all(prepared().map(|(edge, id)| async move {
        let answer = match then {
            PhaseTwo::Commit => edge.commit(s, route, id).await,
            PhaseTwo::Stage(stage) => edge.stage(s, route, id, stage).await,
        };
        (edge.node.clone(), answer)
    }))
    .await;
    let mut switched = Switched {
        committed: BTreeMap::new(),
        missed: Vec::new(),
    };
    for (node, result) in commits {
        match result {
            Ok(answer) => {
                switched.committed.insert(node, answer.switched_at_ms);
            }
            Err(e) => switched.missed.push(format!("{node}: {e}")),
        }
    }
    if switched.committed.is_empty() {
        return Err(Report::new(format!("{route}: no node switched"))
            .detail(switched.missed.join("\n"))
            .hint("the old color still serves; deploy again"));
    }
    Ok(switched)
}

/// Waits for the old color's set to drain on every node that served it.
/// Returns the nodes where it did not within `timeout`.
pub(super) async fn drain(
    views: &[NodeRoute],
    s: &EdgeSettings,
    route: &str,
    timeout: Duration,
) -> Vec<String> {
    let sets = views
        .iter()
        .filter_map(|v| Some((v.edge.clone(), v.active?.1)));
    drain_sets(sets.collect(), s, route, timeout).await
}

/// Waits for each node's set to drain there; the nodes where it did not
/// within `timeout`, with why.
pub(super) async fn drain_sets(
    sets: Vec<(Edge, u64)>,
    s: &EdgeSettings,
    route: &str,
    timeout: Duration,
) -> Vec<String> {
    let waits = sets.iter().map(|(edge, id)| async move {
        (
            edge.node.clone(),
            edge.drained(s, route, *id, timeout).await,
        )
    });
    join_all(waits)
        .await
        .into_iter()
        .filter_map(|(node, r)| match r {
            Ok(answer) if answer.drained => None,
            Ok(answer) => Some(format!("{node}: still {}", answer.state)),
            Err(e) => Some(format!("{node}: {e}")),
        })
        .collect()
}
