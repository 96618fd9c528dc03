//! Two nodes split between the colors, one each: the worker was down for
//! a deploy and comes back with the version it saved. No color has a
//! majority; the tie goes to the color switched to last, so the worker is
//! brought forward and the next deploy runs (before, every deploy refused
//! "the nodes do not serve ... with one color", for good).

use super::{
    athens_compose, host_docker, serves, text, version, wait_down, wait_for, Cluster, Nodes, Stack,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_split_between_the_colors_converge_on_the_last_switch() {
    let c = Cluster::on(Nodes::up_sized("tie", 2, 1), Stack::default()).await;
    let compose = athens_compose("tie", "", "");
    std::fs::write(c.dir.path().join("compose.yaml"), compose).unwrap();
    let out = c.deploy("v1", &[]);
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    for edge in &c.edges {
        serves(*edge, "v1").await;
    }

    // 1. The worker is down for v2: the manager alone switches.
    let worker = c.swarm.nodes[1].name.clone();
    host_docker(&["kill", &worker]);
    wait_down(&c, &worker).await;
    let out = c.deploy("v2", &[]);
    assert!(out.status.success(), "deploy v2: {}", text(&out));
    assert!(text(&out).contains("1 nodes switched"), "{}", text(&out));
    serves(c.edges[0], "v2").await;

    // 2. Back, it restores v1 (blue) beside the manager's v2 (green): one
    //    each. The reconcile pass brings it to v2, the later switch.
    host_docker(&["start", &worker]);
    wait_for("the worker brought to v2", || async {
        version(c.edges[1]).await == "v2"
    })
    .await;
    assert_eq!(version(c.edges[0]).await, "v2", "the manager kept v2");

    // 3. The nodes agree, so the next deploy switches both.
    let out = c.deploy("v3", &[]);
    assert!(out.status.success(), "deploy v3: {}", text(&out));
    assert!(text(&out).contains("2 nodes switched"), "{}", text(&out));
    for edge in &c.edges {
        serves(*edge, "v3").await;
    }
}
