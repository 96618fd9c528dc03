//! `GET /v1/cluster`: every node's view, as its own edge reports it, and
//! the routes the nodes do not serve alike.

use cutover_core::diag::Report;
use cutover_core::fleet::{disagreements, ClusterStatus, NodeView};
use cutover_swarm::NodeState;
use futures_util::future::join_all;

use super::{edges, Inner};

pub(super) async fn cluster(sw: &Inner) -> Result<ClusterStatus, Report> {
    let nodes = edges::by_node(&*sw.cluster, &sw.edges).await?;
    let views = join_all(nodes.into_iter().map(|(node, edge)| async move {
        let Some(edge) = edge else {
            let error = if node.state == NodeState::Ready {
                format!(
                    "no cutover edge runs here (availability {:?})",
                    node.availability
                )
            } else {
                format!("the node is {:?}: it serves nothing", node.state)
            };
            return NodeView {
                node: node.hostname,
                edge: None,
                error: Some(error.to_lowercase()),
                services: Vec::new(),
            };
        };
        let (services, error) = match edge.services(&sw.edges).await {
            Ok(services) => (services, None),
            Err(e) => (Vec::new(), Some(format!("its edge did not answer: {e}"))),
        };
        NodeView {
            node: node.hostname,
            edge: Some(edge.addr.to_string()),
            error,
            services,
        }
    }))
    .await;
    Ok(ClusterStatus {
        disagreements: disagreements(&views),
        nodes: views,
    })
}
