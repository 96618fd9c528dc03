//! `deploy.mode: global` on the three-node swarm: an app color that runs
//! one task on every node, kept for rollback at none (a global service
//! cannot be scaled, so cutover parks it on a placement no node meets),
//! and an accessory on every node, whose volume on each `down --volumes`
//! removes.

use std::collections::BTreeSet;

use super::{athens_compose, running_on, serves, text, wait_for, Cluster};

/// A node agent: one on every node, living across deploys, with a volume
/// of the project's and an external one on each.
const AGENT: &str = r#"  agent:
    image: cutover-test-redis:latest
    command: redis-server --protected-mode no --port 7000
    volumes: [agent_data:/data, outside:/outside]
    deploy:
      mode: global
volumes:
  agent_data:
    labels: {tier: agent}
  outside:
    external: true
    name: shop-outside
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_global_app_runs_on_every_node_and_is_kept_at_none_for_rollback() {
    let c = Cluster::up("global").await;
    let compose = athens_compose("shop", "    deploy:\n      mode: global\n", "") + AGENT;
    std::fs::write(c.dir.path().join("compose.yaml"), compose).unwrap();

    // 1. v1: a task of web on each node, and of the agent.
    let out = c.deploy("v1", &[]);
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    assert!(
        text(&out).contains("start shop_web_blue: a task on every node of v1"),
        "{}",
        text(&out)
    );
    for edge in &c.edges {
        serves(*edge, "v1").await;
    }
    let all: BTreeSet<String> = c.swarm.nodes.iter().map(|n| n.name.clone()).collect();
    assert_eq!(running_on(&c, "shop_web_blue"), all);
    wait_for("the agent on every node", || async {
        running_on(&c, "shop_agent") == all
    })
    .await;

    // 2. The same version is up to date: one task per node is what runs.
    let out = c.cli(&["plan"], &[("VERSION", "v1")]);
    assert!(out.status.success(), "plan: {}", text(&out));
    assert!(text(&out).contains("up to date"), "{}", text(&out));

    // 3. v2 takes every node; v1 is kept on none.
    let out = c.deploy("v2", &[]);
    assert!(out.status.success(), "deploy v2: {}", text(&out));
    for edge in &c.edges {
        serves(*edge, "v2").await;
    }
    assert_eq!(running_on(&c, "shop_web_green"), all);
    wait_for("v1 on no node", || async {
        running_on(&c, "shop_web_blue").is_empty()
    })
    .await;
    let constraints = c.docker(&[
        "service",
        "inspect",
        "shop_web_blue",
        "--format",
        "{{.Spec.TaskTemplate.Placement.Constraints}}",
    ]);
    assert!(
        constraints.contains("node.id==cutover-parked"),
        "{constraints}"
    );

    // 4. The rollback runs v1 on every node again.
    let out = c.cli(&["rollback", "-p", "shop"], &[]);
    assert!(out.status.success(), "rollback: {}", text(&out));
    assert!(
        text(&out).contains("scale shop_web_blue to a task on every node of v1"),
        "{}",
        text(&out)
    );
    for edge in &c.edges {
        serves(*edge, "v1").await;
    }
    assert_eq!(running_on(&c, "shop_web_blue"), all);
    wait_for("v2 on no node", || async {
        running_on(&c, "shop_web_green").is_empty()
    })
    .await;

    // 5. Every node made the agent's volume with its labels and the
    //    project's; `down --volumes` removes it on every node, and leaves
    //    the external one, which is not cutover's.
    for i in 0..3 {
        let labels = c
            .swarm
            .docker(
                i,
                &[
                    "volume",
                    "inspect",
                    "shop_agent_data",
                    "--format",
                    "{{json .Labels}}",
                ],
            )
            .unwrap();
        assert!(
            labels.contains(r#""cutover.project":"shop""#) && labels.contains(r#""tier":"agent""#),
            "node {i}: {labels}"
        );
    }
    let out = c.cli(&["down", "-p", "shop", "--volumes"], &[]);
    assert!(out.status.success(), "down --volumes: {}", text(&out));
    for node in &c.swarm.nodes {
        assert!(
            text(&out).contains(&format!("{}: removed shop_agent_data", node.name)),
            "{}",
            text(&out)
        );
    }
    assert!(
        text(&out).contains("3 volumes removed on 3 nodes"),
        "{}",
        text(&out)
    );
    for i in 0..3 {
        let names = c
            .swarm
            .docker(i, &["volume", "ls", "--format", "{{.Name}}"])
            .unwrap();
        let names: BTreeSet<&str> = names.lines().collect();
        assert!(!names.contains("shop_agent_data"), "node {i}: {names:?}");
        assert!(names.contains("shop-outside"), "node {i}: {names:?}");
    }
    assert!(
        c.docker(&["service", "ls", "--format", "{{.Name}}"])
            .lines()
            .all(|l| !l.starts_with("shop_")),
        "the job is gone with the services"
    );
}
