//! A manager failover in the middle of a deploy, on a swarm of three
//! managers: the node running the deploy engine dies while the new color
//! starts. The swarm keeps its raft majority (two of three), starts the
//! deploy engine on another manager, and from the state the dead one left
//! a `deploy` and then a `rollback` converge the two live nodes. The dead
//! node, started again, rejoins and is brought to the current color; the
//! history the dead engine wrote is still read.

use std::time::Duration;

use super::{
    deploy_api, host_docker, serves, text, version, wait_for, Cluster, Nodes, Stack, COMPOSE,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manager_lost_mid_deploy_leaves_a_state_deploy_and_rollback_converge_from() {
    let mut c = Cluster::on(Nodes::up_with_managers("failover", 3), Stack::default()).await;
    let lost = control_node(&c, 0);
    let alive: Vec<usize> = (0..3).filter(|&i| i != lost).collect();
    let (ask, lost_name) = (alive[0], c.swarm.nodes[lost].name.clone());
    // Redis lives where the deploy engine does not: this test is about the
    // deploy engine's manager, not the accessory's data.
    let pinned = format!("node.hostname == {}", c.swarm.nodes[ask].name);
    let compose = COMPOSE.replace("node.role == manager", &pinned);
    std::fs::write(c.dir.path().join("compose.yaml"), compose).unwrap();
    let out = c.deploy("v1", &[]);
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    for &i in &alive {
        serves(c.edges[i], "v1").await;
    }

    // 1. The deploy engine's node dies once v2's service exists, while its
    //    tasks start and every node health-gates them.
    let mut deploy = tokio::process::Command::from(
        c.command(&["deploy", "--version", "v2"], &[("VERSION", "v2")]),
    );
    let deploy = deploy.kill_on_drop(true).output();
    let kill = async {
        wait_for("v2's service created", || async {
            c.swarm
                .docker(ask, &["service", "ls", "--format", "{{.Name}}"])
                .is_ok_and(|s| s.lines().any(|l| l == "shop_web_green"))
        })
        .await;
        host_docker(&["kill", &lost_name]);
    };
    let (out, ()) = tokio::join!(tokio::time::timeout(Duration::from_secs(180), deploy), kill);
    let out = out
        .expect("the CLI ends when its deploy engine dies")
        .unwrap();
    eprintln!(
        "deploy v2 with {lost_name} lost: {:?}\n{}",
        out.status.code(),
        text(&out)
    );
    let (a, b) = (
        version(c.edges[alive[0]]).await,
        version(c.edges[alive[1]]).await,
    );
    assert!(
        a == b && (a == "v1" || a == "v2"),
        "the live nodes serve one version: {a:?} {b:?}"
    );

    // 2. The swarm elects a leader if it lost it, sees the node down, and
    //    runs the deploy engine on another manager.
    wait_for("the lost manager reported down", || async {
        c.swarm
            .docker(
                ask,
                &["node", "ls", "--format", "{{.Hostname}} {{.Status}}"],
            )
            .is_ok_and(|s| s.lines().any(|l| l == format!("{lost_name} Down")))
    })
    .await;
    c.api = deploy_api(&c.swarm, ask).await;
    assert_ne!(control_node(&c, ask), lost, "the deploy engine moved");

    // 3. From what the dead deploy engine left, a deploy converges.
    let out = c.deploy("v2", &[]);
    assert!(out.status.success(), "deploy v2 again: {}", text(&out));
    assert!(text(&out).contains("2 nodes switched"), "{}", text(&out));
    for &i in &alive {
        serves(c.edges[i], "v2").await;
    }
    // The old color is kept at 0 tasks (its spec; a task of it on the
    // dead node stays listed until that node comes back).
    let kept = c
        .swarm
        .docker(
            ask,
            &[
                "service",
                "inspect",
                "shop_web_blue",
                "--format",
                "{{.Spec.Mode.Replicated.Replicas}}",
            ],
        )
        .unwrap();
    eprintln!(
        "after the converging deploy:\n{}",
        c.swarm
            .docker(
                ask,
                &["service", "ls", "--format", "{{.Name}} {{.Replicas}}"]
            )
            .unwrap()
    );
    assert_eq!(kept.trim(), "0", "v1 is kept at 0 tasks");

    // 4. ... and so does a rollback, to v1, kept at 0 tasks.
    let out = c.cli(&["rollback", "-p", "shop"], &[]);
    assert!(out.status.success(), "rollback: {}", text(&out));
    for &i in &alive {
        serves(c.edges[i], "v1").await;
    }

    // 4b. The history the lost engine wrote is the new one's too: it lives
    //     in the swarm's raft store, not on the lost manager's volume. The
    //     deploy cut by the failover never ended, so it has no line.
    let out = c.cli(&["history", "-p", "shop", "web", "--json"], &[]);
    assert!(out.status.success(), "history: {}", text(&out));
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let web: Vec<String> = entries
        .iter()
        .filter(|e| e["operation"] != "pre_deploy")
        .map(|e| format!("{} {} {}", e["operation"], e["version"], e["result"]).replace('"', ""))
        .collect();
    assert_eq!(
        web,
        ["deploy v1 ok", "deploy v2 ok", "rollback v1 ok"],
        "{entries:?}"
    );

    // 5. The lost manager comes back, rejoins the raft, and its edge is
    //    brought to v1 by the reconcile pass.
    host_docker(&["start", &lost_name]);
    wait_for("the lost manager ready again", || async {
        c.swarm
            .docker(
                ask,
                &["node", "ls", "--format", "{{.Hostname}} {{.Status}}"],
            )
            .is_ok_and(|s| s.lines().any(|l| l == format!("{lost_name} Ready")))
    })
    .await;
    serves(c.edges[lost], "v1").await;
}

/// The index of the node that runs the deploy engine, as node `via`'s
/// engine says.
fn control_node(c: &Cluster, via: usize) -> usize {
    let api_ip = c
        .api
        .trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let by_api = c.swarm.nodes.iter().position(|n| n.addr == api_ip);
    let ps = c
        .swarm
        .docker(
            via,
            &[
                "service",
                "ps",
                "cutover_control",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Node}}",
            ],
        )
        .unwrap();
    let node = ps.lines().next().unwrap_or_default();
    let i = c
        .swarm
        .nodes
        .iter()
        .position(|n| n.name == node)
        .unwrap_or_else(|| panic!("the deploy engine runs on no node: {ps:?}"));
    assert_eq!(by_api, Some(i), "the API is where the engine runs");
    i
}
