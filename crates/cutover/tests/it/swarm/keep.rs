//! `keep` on the three-node swarm, as on one host: the versions before the
//! idle color's are set aside at 0 tasks, `rollback --to` reaches any of
//! them, and a failed deploy loses none.

use super::{athens_compose, serves, services, text, wait_for, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_versions_are_kept_aside_and_rollback_reaches_any_of_them() {
    let c = Cluster::up("keep").await;
    let compose = athens_compose("keep", "", "");
    std::fs::write(c.dir.path().join("compose.yaml"), compose).unwrap();

    // 1. Five versions, colors alternating: v5 is live (blue), v4 is kept
    //    in the green slot, v3 and v2 aside; v1 is past `keep: 3` (the
    //    default) and gone.
    for v in ["v1", "v2", "v3", "v4", "v5"] {
        let out = c.deploy(v, &[]);
        assert!(out.status.success(), "deploy {v}: {}", text(&out));
    }
    for edge in &c.edges {
        serves(*edge, "v5").await;
    }
    assert_eq!(slot(&c, "blue"), "v5 1/1");
    wait_for("v4 kept at 0 tasks", || async {
        slot(&c, "green") == "v4 0/0"
    })
    .await;
    assert_eq!(aside(&c), ["v2 0/0", "v3 0/0"]);

    // 2. `--to` a version set aside: the green slot's own v4 is set aside,
    //    v3 (which ran blue) is put back as green with its color, and every
    //    node switches to it.
    let out = c.cli(&["rollback", "-p", "keep", "--to", "v3"], &[]);
    assert!(out.status.success(), "rollback to v3: {}", text(&out));
    for said in [
        "keep v4 aside as keep_web_kept_",
        "put v3 back as keep_web_green",
    ] {
        assert!(text(&out).contains(said), "{said}: {}", text(&out));
    }
    for edge in &c.edges {
        serves(*edge, "v3").await;
    }
    assert_eq!(slot(&c, "green"), "v3 1/1");
    let env = c.docker(&[
        "service",
        "inspect",
        "keep_web_green",
        "--format",
        "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
    ]);
    assert!(
        env.contains("CUTOVER_COLOR=green") && !env.contains("CUTOVER_COLOR=blue"),
        "{env}"
    );
    wait_for("v5 kept at 0 tasks", || async {
        slot(&c, "blue") == "v5 0/0"
    })
    .await;
    assert_eq!(aside(&c), ["v2 0/0", "v4 0/0"]);

    // 3. A version no longer kept is refused, naming those that are.
    let out = c.cli(&["rollback", "-p", "keep", "--to", "v1"], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("the versions kept, newest first: v5, v4, v2"),
        "{}",
        text(&out)
    );

    // 4. A deploy that fails (no node has its image) sets v5 aside before
    //    it replaces the blue slot, so a plain rollback still finds v5.
    let out = c.deploy("v6", &[("ATHENS_IMAGE", "cutover-test-absent-keep:latest")]);
    assert!(
        !out.status.success(),
        "a missing image deploys: {}",
        text(&out)
    );
    assert!(!services(&c).contains("keep_web_blue "), "{}", services(&c));
    let out = c.cli(&["rollback", "-p", "keep"], &[]);
    assert!(out.status.success(), "rollback: {}", text(&out));
    assert!(
        text(&out).contains("rolled web back to v5 (blue)"),
        "{}",
        text(&out)
    );
    for edge in &c.edges {
        serves(*edge, "v5").await;
    }

    // 5. `down` removes the versions kept with the rest.
    let out = c.cli(&["down", "-p", "keep"], &[]);
    assert!(out.status.success(), "down: {}", text(&out));
    assert!(!services(&c).contains("keep_"), "{}", services(&c));
}

/// `VERSION RUNNING/WANTED` of the app's `color` service.
fn slot(c: &Cluster, color: &str) -> String {
    described(c, &format!("keep_web_{color}"))
}

/// `VERSION RUNNING/WANTED` of each version set aside, sorted.
fn aside(c: &Cluster) -> Vec<String> {
    let names = c.docker(&[
        "service",
        "ls",
        "--filter",
        "label=cutover.project=keep",
        "--filter",
        "label=cutover.kept",
        "--format",
        "{{.Name}}",
    ]);
    let mut out: Vec<String> = names.lines().map(|n| described(c, n)).collect();
    out.sort();
    out
}

fn described(c: &Cluster, service: &str) -> String {
    let version = c.docker(&[
        "service",
        "inspect",
        service,
        "--format",
        "{{index .Spec.Labels \"cutover.version\"}}",
    ]);
    let replicas = services(c)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{service} ")).map(String::from))
        .unwrap_or_else(|| "absent".into());
    format!("{} {replicas}", version.trim())
}
