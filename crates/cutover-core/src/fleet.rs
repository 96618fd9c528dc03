//! A switch coordinated across the nodes of a cluster, in two phases: the
//! rule is here, the deploy engine runs it (cutover-deploy's `swarm`
//! module), and each node's proxy carries it out (cutover-proxy's
//! `prepare.rs`).
//!
//! Lifecycle of one app's switch:
//!
//! ```text
//!             every voter Ready
//! Preparing ───────────────────▶ Committing ──▶ Committed (old color drains on every node)
//!     │
//!     │ a voter Unhealthy or Unreachable, or no voter at all
//!     ▼
//! Aborting: each node that prepared drops its set; the old color never stopped serving
//! ```
//!
//! - **Prepare**: each node's proxy health-gates the new set from where it
//!   stands and holds it, routed nowhere.
//! - **Who votes**: the live nodes, those the cluster reports ready and
//!   active. A node the cluster reports down takes no part and does not
//!   hold the deploy up (the rule is "finish on the live nodes"); it must
//!   take the current routes before it serves again. A node reported ready
//!   whose proxy does not answer votes `Unreachable` and the switch
//!   aborts: the coordinator cannot tell a slow node from a partitioned one
//!   that still serves, and a split between colors is worse than a retry.
//! - **Commit**: sent to every voter at once. A node that prepared but
//!   cannot commit (it restarted in between, and a prepared set is not
//!   kept across restarts) does not undo the others: the switch is done
//!   on the nodes that committed, and the outcome names the one that did
//!   not, as a node that must take the current routes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::service::Color;
use crate::status::ServiceStatus;

/// A node's answer to prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vote {
    /// The set passed this node's gate and is held as `set_id`.
    Ready { set_id: u64 },
    /// The gate failed here; `detail` names the targets and their errors.
    Unhealthy { detail: String },
    /// The node's proxy did not answer, or answered with an error.
    Unreachable { error: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Commit,
    /// Why, node by node (`node: reason`), in node order.
    Abort {
        reasons: Vec<String>,
    },
}

/// The rule of the module docs: commit only when every voter is ready.
pub fn decide(votes: &BTreeMap<String, Vote>) -> Decision {
    if votes.is_empty() {
        return Decision::Abort {
            reasons: vec!["no live node has a cutover proxy to switch".into()],
        };
    }
    let reasons: Vec<String> = votes
        .iter()
        .filter_map(|(node, vote)| match vote {
            Vote::Ready { .. } => None,
            Vote::Unhealthy { detail } => Some(format!("{node}: not healthy from there: {detail}")),
            Vote::Unreachable { error } => {
                Some(format!("{node}: its proxy did not answer: {error}"))
            }
        })
        .collect();
    if reasons.is_empty() {
        Decision::Commit
    } else {
        Decision::Abort { reasons }
    }
}

/// The color every node serves a route with, `None` when none serves it
/// yet. Nodes that disagree (a switch that reached only some of them) are
/// an error naming each node's color: a deploy to either color would
/// replace one that serves.
pub fn agreed_color(views: &BTreeMap<String, Option<Color>>) -> Result<Option<Color>, String> {
    let mut colors = views.values().copied();
    let first = colors.next().flatten();
    if colors.all(|c| c == first) {
        return Ok(first);
    }
    Err(views
        .iter()
        .map(|(node, c)| match c {
            Some(c) => format!("{node} serves {c}"),
            None => format!("{node} serves nothing"),
        })
        .collect::<Vec<_>>()
        .join(", "))
}

/// Whether every node reads one certificate storage (by the name each
/// reports), as HTTPS on a cluster needs: otherwise each node would order
/// its own certificate and a CA's check sent to one node would miss the
/// answer another wrote. The error groups the nodes by storage.
pub fn shared_storage(by_node: &BTreeMap<String, Option<String>>) -> Result<(), String> {
    let mut groups: BTreeMap<Option<&str>, Vec<&str>> = BTreeMap::new();
    for (node, id) in by_node {
        groups.entry(id.as_deref()).or_default().push(node);
    }
    if groups.len() <= 1 && !groups.contains_key(&None) {
        return Ok(());
    }
    Err(groups
        .iter()
        .map(|(id, nodes)| {
            let nodes = nodes.join(", ");
            match id {
                // The first 8 hex digits tell storages apart in a message.
                Some(id) => format!("{nodes}: storage {}", &id[..id.len().min(8)]),
                None => format!("{nodes}: no certificate storage"),
            }
        })
        .collect::<Vec<_>>()
        .join("; "))
}

/// The color more nodes serve a route with than any other: what a node
/// that missed a switch, or came back, is brought to. Each node's view is
/// its active color and since when that set is active (its own clock).
///
/// A tie (two nodes, or four, split by a deploy engine that died between
/// the commits) goes to the color switched to last. The commits are the
/// second phase: they are sent only once every node voted ready, so a
/// commit seen on any node means the decision was to switch, and the
/// nodes that did not hear it are brought forward. A tie whose two colors
/// became active at the same millisecond goes to blue: nobody can tell
/// which is current then, and any fixed choice brings the nodes together
/// (both colors passed the gate of every node that serves them), where
/// leaving them split would refuse every `deploy` and `rollback`. `None`
/// when no node serves the route.
pub fn majority(views: impl IntoIterator<Item = (Color, u64)>) -> Option<Color> {
    let (mut blue, mut green) = ((0usize, 0u64), (0usize, 0u64));
    for (color, since_ms) in views {
        let side = match color {
            Color::Blue => &mut blue,
            Color::Green => &mut green,
        };
        side.0 += 1;
        side.1 = side.1.max(since_ms);
    }
    let by_count = blue.0.cmp(&green.0);
    let by_time = blue.1.cmp(&green.1);
    match by_count.then(by_time) {
        _ if blue.0 + green.0 == 0 => None,
        std::cmp::Ordering::Greater | std::cmp::Ordering::Equal => Some(Color::Blue),
        std::cmp::Ordering::Less => Some(Color::Green),
    }
}

/// How far apart the nodes switched, by the clock each reported
/// (milliseconds since the Unix epoch); `None` with fewer than two.
pub fn spread(switched_at_ms: impl IntoIterator<Item = u64>) -> Option<Duration> {
    let (mut lo, mut hi, mut n) = (u64::MAX, 0u64, 0usize);
    for t in switched_at_ms {
        lo = lo.min(t);
        hi = hi.max(t);
        n += 1;
    }
    (n >= 2).then(|| Duration::from_millis(hi - lo))
}

/// `PUT /v1/services/{name}/prepared`: the set a node gated and holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedAnswer {
    pub set_id: u64,
    pub color: Color,
    /// Targets that passed the gate, of `targets`.
    pub healthy: usize,
    pub targets: usize,
}

/// `POST /v1/services/{name}/prepared/{id}/commit`: the route after the
/// switch, and when this node made it by its own clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitAnswer {
    pub status: ServiceStatus,
    pub switched_at_ms: u64,
}

/// `DELETE /v1/services/{name}/staged`: the set that stopped being staged
/// and now drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnstagedAnswer {
    pub set_id: u64,
}

/// `GET /v1/cluster` of a Swarm deploy engine: what every node's edge
/// serves, and where the nodes disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub nodes: Vec<NodeView>,
    /// One line per route the nodes do not serve alike ([`disagreements`]).
    pub disagreements: Vec<String>,
}

/// One node, as its edge reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// The node's hostname.
    pub node: String,
    /// Where its edge's control API was asked; `None` when no edge runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<String>,
    /// Why the node has no view: no edge runs there, or it did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub services: Vec<ServiceStatus>,
}

/// What a node serves a route with, as far as the nodes must agree.
#[derive(PartialEq, Eq)]
struct Served<'a> {
    color: Color,
    version: Option<&'a str>,
    /// The version staged beside it (`Some(None)`: one without a label).
    staged: Option<Option<&'a str>>,
    maintenance: bool,
}

impl std::fmt::Display for Served<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.color)?;
        if let Some(v) = self.version {
            write!(f, " {v}")?;
        }
        if let Some(staged) = self.staged {
            write!(f, " (staged {})", staged.unwrap_or("-"))?;
        }
        if self.maintenance {
            write!(f, " (maintenance)")?;
        }
        Ok(())
    }
}

/// The routes the answering nodes do not serve with the same color,
/// version, stage and maintenance, one line each: `shop/web: n1 green v2, n2 blue v1, n3 nothing`.
pub fn disagreements(nodes: &[NodeView]) -> Vec<String> {
    let answering: Vec<&NodeView> = nodes.iter().filter(|n| n.error.is_none()).collect();
    let routes: std::collections::BTreeSet<&str> = answering
        .iter()
        .flat_map(|n| n.services.iter().map(|s| s.name.as_str()))
        .collect();
    let mut out = Vec::new();
    for route in routes {
        // Each node's view of the route, if it has it.
        let served: Vec<(&str, Option<Served>)> = answering
            .iter()
            .map(|n| {
                let active = n.services.iter().find(|s| s.name == route).map(|s| Served {
                    color: s.active.color,
                    version: s.active.version.as_deref(),
                    staged: s.staged.as_ref().map(|st| st.set.version.as_deref()),
                    maintenance: s.maintenance.is_some(),
                });
                (n.node.as_str(), active)
            })
            .collect();
        if served.windows(2).all(|w| w[0].1 == w[1].1) {
            continue;
        }
        let each: Vec<String> = served
            .iter()
            .map(|(node, active)| match active {
                Some(served) => format!("{node} {served}"),
                None => format!("{node} nothing"),
            })
            .collect();
        out.push(format!("{route}: {}", each.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn votes(list: &[(&str, Vote)]) -> BTreeMap<String, Vote> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn certificates_are_shared_only_when_every_node_reads_one_storage() {
        let nodes = |list: &[(&str, Option<&str>)]| -> BTreeMap<String, Option<String>> {
            list.iter()
                .map(|(n, id)| (n.to_string(), id.map(str::to_string)))
                .collect()
        };
        let one = "0123456789abcdef0123456789abcdef";
        let other = "fedcba9876543210fedcba9876543210";
        assert_eq!(
            shared_storage(&nodes(&[("n1", Some(one)), ("n2", Some(one))])),
            Ok(())
        );
        assert_eq!(
            shared_storage(&nodes(&[
                ("n1", Some(one)),
                ("n2", Some(other)),
                ("n3", Some(one))
            ])),
            Err("n1, n3: storage 01234567; n2: storage fedcba98".to_string())
        );
        assert_eq!(
            shared_storage(&nodes(&[("n1", Some(one)), ("n2", None)])),
            Err("n2: no certificate storage; n1: storage 01234567".to_string())
        );
    }

    #[test]
    fn every_voter_ready_commits() {
        let v = votes(&[
            ("n1", Vote::Ready { set_id: 4 }),
            ("n2", Vote::Ready { set_id: 9 }),
        ]);
        assert_eq!(decide(&v), Decision::Commit);
    }

    #[test]
    fn one_unhealthy_or_unreachable_node_aborts_everywhere_and_is_named() {
        let v = votes(&[
            ("n1", Vote::Ready { set_id: 4 }),
            (
                "n2",
                Vote::Unhealthy {
                    detail: "10.0.1.5:8080: connection refused".into(),
                },
            ),
            (
                "n3",
                Vote::Unreachable {
                    error: "timed out".into(),
                },
            ),
        ]);
        let Decision::Abort { reasons } = decide(&v) else {
            panic!("a failed gate must abort");
        };
        assert_eq!(reasons.len(), 2);
        assert!(
            reasons[0].starts_with("n2: not healthy from there"),
            "{reasons:?}"
        );
        assert!(reasons[0].contains("connection refused"));
        assert!(
            reasons[1].starts_with("n3: its proxy did not answer"),
            "{reasons:?}"
        );
    }

    #[test]
    fn no_voter_aborts() {
        assert!(matches!(decide(&BTreeMap::new()), Decision::Abort { .. }));
    }

    #[test]
    fn the_nodes_color_is_agreed_or_each_one_is_named() {
        let views = |list: &[(&str, Option<Color>)]| -> BTreeMap<String, Option<Color>> {
            list.iter().map(|(n, c)| (n.to_string(), *c)).collect()
        };
        let same = views(&[("n1", Some(Color::Blue)), ("n2", Some(Color::Blue))]);
        assert_eq!(agreed_color(&same), Ok(Some(Color::Blue)));
        assert_eq!(
            agreed_color(&views(&[("n1", None), ("n2", None)])),
            Ok(None)
        );
        let split = views(&[
            ("n1", Some(Color::Green)),
            ("n2", Some(Color::Blue)),
            ("n3", None),
        ]);
        assert_eq!(
            agreed_color(&split),
            Err("n1 serves green, n2 serves blue, n3 serves nothing".into())
        );
    }

    fn node(name: &str, routes: &[(&str, &str, &str)]) -> NodeView {
        let services = routes
            .iter()
            .map(|(route, color, version)| {
                serde_json::from_value(serde_json::json!({
                    "name": route,
                    "config": { "targets": [] },
                    "active": {
                        "id": 1, "color": color, "version": version, "state": "active",
                        "since_ms": 0, "targets": []
                    },
                    "draining": []
                }))
                .unwrap()
            })
            .collect();
        NodeView {
            node: name.into(),
            edge: Some("10.0.0.1:26091".into()),
            error: None,
            services,
        }
    }

    #[test]
    fn nodes_that_serve_a_route_differently_are_each_named() {
        let agree = [
            node("n1", &[("shop/web", "blue", "v1")]),
            node("n2", &[("shop/web", "blue", "v1")]),
        ];
        assert!(disagreements(&agree).is_empty());
        let mut down = node("n4", &[]);
        down.error = Some("no cutover edge runs here".into());
        let split = [
            node(
                "n1",
                &[("shop/web", "green", "v2"), ("shop/api", "blue", "a1")],
            ),
            node(
                "n2",
                &[("shop/web", "blue", "v1"), ("shop/api", "blue", "a1")],
            ),
            node("n3", &[("shop/api", "blue", "a1")]),
            down,
        ];
        assert_eq!(
            disagreements(&split),
            ["shop/web: n1 green v2, n2 blue v1, n3 nothing"],
            "a node with no view is not a disagreement of its own"
        );
    }

    #[test]
    fn the_majority_color_is_current_and_a_tie_goes_to_the_last_switch() {
        use Color::*;
        assert_eq!(majority([(Green, 5), (Blue, 9), (Green, 1)]), Some(Green));
        assert_eq!(majority([(Blue, 0)]), Some(Blue));
        // Two nodes split by a deploy cut between its commits: green was
        // committed, so green is where both go.
        assert_eq!(majority([(Blue, 100), (Green, 200)]), Some(Green));
        assert_eq!(majority([(Blue, 300), (Green, 200)]), Some(Blue));
        assert_eq!(
            majority([(Blue, 100), (Green, 200), (Blue, 150), (Green, 120)]),
            Some(Green)
        );
        // The same millisecond: a fixed choice, whichever node says it first.
        assert_eq!(majority([(Blue, 7), (Green, 7)]), Some(Blue));
        assert_eq!(majority([(Green, 7), (Blue, 7)]), Some(Blue));
        assert_eq!(majority([]), None);
    }

    #[test]
    fn spread_is_the_gap_between_the_first_and_last_switch() {
        assert_eq!(
            spread([1_000, 1_012, 1_003]),
            Some(Duration::from_millis(12))
        );
        assert_eq!(spread([1_000]), None);
    }

    proptest! {
        #[test]
        fn commits_exactly_when_every_vote_is_ready(ready in proptest::collection::vec(any::<bool>(), 1..8)) {
            let v: BTreeMap<String, Vote> = ready
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let vote = if *r {
                        Vote::Ready { set_id: i as u64 }
                    } else {
                        Vote::Unhealthy { detail: "down".into() }
                    };
                    (format!("n{i}"), vote)
                })
                .collect();
            let expect_commit = ready.iter().all(|r| *r);
            prop_assert_eq!(decide(&v) == Decision::Commit, expect_commit);
            if let Decision::Abort { reasons } = decide(&v) {
                prop_assert_eq!(reasons.len(), ready.iter().filter(|r| !**r).count());
            }
        }
    }
}
