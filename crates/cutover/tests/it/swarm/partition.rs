//! A worker partitioned from the other nodes (its packets dropped, not
//! refused, while it keeps running) as a deploy starts: the deploy ends
//! within its timeouts with nothing half-done; once the managers report
//! the node down a deploy switches the others; healed, the node is brought
//! to the current color.

use std::time::{Duration, Instant};

use super::{athens_compose, serves, text, version, wait_down, wait_for, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_worker_does_not_wedge_a_deploy_and_rejoins_on_the_current_color() {
    let c = Cluster::up("part").await;
    let compose = athens_compose("part", "    deploy:\n      replicas: 2\n", "");
    std::fs::write(c.dir.path().join("compose.yaml"), compose).unwrap();
    let out = c.deploy("v1", &[]);
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    for edge in &c.edges {
        serves(*edge, "v1").await;
    }
    let cut = c.swarm.nodes[2].name.clone();
    let alive = &c.edges[..2];

    // 1. Cut off while the managers still report it ready: its edge's
    //    answers never come, so it votes "unreachable" once a call times
    //    out, and the deploy ends with the live nodes on one version.
    c.swarm.partition(2).unwrap();
    let started = Instant::now();
    let deploy = tokio::process::Command::from(
        c.command(&["deploy", "--version", "v2"], &[("VERSION", "v2")]),
    )
    .kill_on_drop(true)
    .output();
    let out = tokio::time::timeout(Duration::from_secs(180), deploy)
        .await
        .expect("the deploy ends though a node is cut off")
        .unwrap();
    eprintln!(
        "deploy v2 with {cut} cut off, {:?} in {:?}:\n{}",
        out.status.code(),
        started.elapsed(),
        text(&out)
    );
    let (a, b) = (version(alive[0]).await, version(alive[1]).await);
    assert!(
        a == b && (a == "v1" || a == "v2"),
        "the live nodes serve one version: {a:?} {b:?}"
    );
    if !out.status.success() {
        assert!(
            text(&out).contains(&cut),
            "the failure names {cut}: {}",
            text(&out)
        );
        let listed = super::services(&c);
        assert!(
            !listed.contains("part_web_green 2/2"),
            "a failed deploy leaves no new color running: {listed}"
        );
    }

    // 2. Reported down, it has no vote: the next deploy switches the two
    //    others.
    wait_down(&c, &cut).await;
    let out = c.deploy("v3", &[]);
    assert!(out.status.success(), "deploy v3: {}", text(&out));
    assert!(text(&out).contains("2 nodes switched"), "{}", text(&out));
    for edge in alive {
        serves(*edge, "v3").await;
    }

    // 3. Healed: it rejoins, and the reconcile pass brings it to v3, with
    //    every node agreeing.
    c.swarm.heal(2).unwrap();
    serves(c.edges[2], "v3").await;
    wait_for("every node agreeing", || async {
        let status = text(&c.cli(&["status", "-p", "part"], &[]));
        status.contains("every node that answered serves the same versions")
            && status
                .lines()
                .filter(|l| {
                    let cells: Vec<&str> = l.split_whitespace().collect();
                    cells.get(1) == Some(&"part/web") && cells.get(3) == Some(&"v3")
                })
                .count()
                == 3
    })
    .await;
}
