//! Secrets and configs on the three-node swarm: each value the compose
//! file gives (an environment variable, inline content, a file beside it)
//! becomes a Swarm object of the project's own, an external one is the
//! swarm's, and the app's tasks (and its hook's job) find each at its
//! target with its owner and mode. A changed value is a new color with a
//! new object; the kept color keeps its own, so a rollback runs with the
//! old value; what no service mounts any more goes, and `down` takes the
//! project's objects and leaves the external one.

use std::collections::BTreeSet;

use super::{in_task, serves, services, text, Cluster};

/// athens, as the user it runs as (65534), with a secret from the
/// environment, an external one readable by that user alone, a config
/// written inline and one read from a file; its `pre_deploy` hook prints
/// them all from its one-off job.
const COMPOSE: &str = r#"
name: files
services:
  web:
    image: cutover-test-athens:latest
    environment:
      REDIS_HOST: redis
      REDIS_PORT: "6379"
      APP_VERSION: ${VERSION}
    secrets:
      - api_key
      - {source: vendor_token, target: /etc/vendor/token, uid: "65534", gid: "65534", mode: 0400}
    configs:
      - {source: site, target: /etc/site.conf}
      - settings
    x-cutover:
      port: 8080
      # The idle color is the one kept version, so step 7's deploy leaves
      # v2's key unmounted (a version set aside keeps its own).
      keep: 1
      deploy_timeout: 20s
      drain_timeout: 2s
      websocket_drain_timeout: 2s
      health:
        path: /api/v1/open/health-check
        interval: 500ms
      hooks:
        pre_deploy:
          command: [sh, -c, "echo \"key=$$(cat /run/secrets/api_key) vendor=$$(cat /etc/vendor/token) $$(cat /etc/site.conf) $$(cat /settings)\""]
          timeout: 30s
  redis:
    image: cutover-test-redis:latest
    command: redis-server --protected-mode no
secrets:
  api_key:
    environment: API_KEY
  vendor_token:
    external: true
    name: files_vendor_token_2026
configs:
  site:
    content: greeting=${GREETING}
  settings:
    file: ./settings.ini
"#;

const EXTERNAL: &str = "files_vendor_token_2026";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_and_configs_are_swarm_objects_per_value_and_follow_the_color() {
    let c = Cluster::up("files").await;
    std::fs::write(c.dir.path().join("compose.yaml"), COMPOSE).unwrap();
    std::fs::write(c.dir.path().join("settings.ini"), "mode=fast").unwrap();
    let env = |key: &'static str| [("API_KEY", key), ("GREETING", "hello")];

    // 1. The external secret is not there yet: plan and deploy say so, and
    //    nothing is made.
    let out = c.cli(
        &["plan"],
        &[("VERSION", "v1"), ("API_KEY", "one"), ("GREETING", "hello")],
    );
    assert_eq!(out.status.code(), Some(2), "plan: {}", text(&out));
    let refused = format!("the external secret \"{EXTERNAL}\" does not exist in the swarm");
    assert!(text(&out).contains(&refused), "{}", text(&out));
    let out = c.deploy("v1", &env("one"));
    assert_eq!(out.status.code(), Some(2), "deploy: {}", text(&out));
    assert!(text(&out).contains(&refused), "{}", text(&out));
    assert!(
        text(&out).contains("docker secret create"),
        "{}",
        text(&out)
    );
    assert!(!services(&c).contains("files_"), "{}", services(&c));
    assert!(objects(&c, "secret").is_empty() && objects(&c, "config").is_empty());

    // 2. Made outside cutover, as a team does on a manager.
    let token = c.dir.path().join("vendor-token");
    std::fs::write(&token, "vendor-secret").unwrap();
    c.docker(&["secret", "create", EXTERNAL, &token.display().to_string()]);

    // 3. v1: every value where the file says, readable by the app's user.
    let out = c.deploy("v1", &env("one"));
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    let printed = "vendor=vendor-secret greeting=hello mode=fast";
    assert!(
        text(&out).contains(&format!("key=one {printed}")),
        "the hook's job reads them all: {}",
        text(&out)
    );
    for edge in &c.edges {
        serves(*edge, "v1").await;
    }
    assert_eq!(in_task(&c, "files_web_blue", "/run/secrets/api_key"), "one");
    assert_eq!(
        in_task(&c, "files_web_blue", "/etc/vendor/token"),
        "vendor-secret"
    );
    assert_eq!(
        in_task(&c, "files_web_blue", "stat -c %u:%a /etc/vendor/token"),
        "65534:400"
    );
    let v1_secrets = objects(&c, "secret");
    assert_eq!(
        v1_secrets.len(),
        1,
        "the api key; not the external: {v1_secrets:?}"
    );
    assert!(v1_secrets.iter().all(|n| n.starts_with("files_api_key_")));
    assert_eq!(objects(&c, "config").len(), 2);

    // 4. The same values again: the same version, nothing made.
    let out = c.deploy("v1", &env("one"));
    assert!(out.status.success(), "deploy v1 again: {}", text(&out));
    assert!(text(&out).contains("up to date"), "{}", text(&out));
    assert_eq!(objects(&c, "secret"), v1_secrets);

    // 5. A new key is a new object for the new color; the kept color keeps
    //    the old one.
    let out = c.deploy("v2", &env("two"));
    assert!(out.status.success(), "deploy v2: {}", text(&out));
    assert!(text(&out).contains("key=two "), "{}", text(&out));
    for edge in &c.edges {
        serves(*edge, "v2").await;
    }
    assert_eq!(
        in_task(&c, "files_web_green", "/run/secrets/api_key"),
        "two"
    );
    let v2_secrets = objects(&c, "secret");
    assert_eq!(v2_secrets.len(), 2, "{v2_secrets:?}");
    let two: BTreeSet<String> = v2_secrets.difference(&v1_secrets).cloned().collect();

    // 6. The rollback runs v1 with v1's key.
    let out = c.cli(&["rollback", "-p", "files"], &[]);
    assert!(out.status.success(), "rollback: {}", text(&out));
    for edge in &c.edges {
        serves(*edge, "v1").await;
    }
    assert_eq!(in_task(&c, "files_web_blue", "/run/secrets/api_key"), "one");

    // 7. v3 takes the slot v2 was kept in: v2's key is mounted by no
    //    service any more, and goes.
    let out = c.deploy("v3", &env("three"));
    assert!(out.status.success(), "deploy v3: {}", text(&out));
    let v3_secrets = objects(&c, "secret");
    assert_eq!(v3_secrets.len(), 2, "{v3_secrets:?}");
    assert!(v3_secrets.is_superset(&v1_secrets), "{v3_secrets:?}");
    assert!(v3_secrets.is_disjoint(&two), "{v3_secrets:?}");

    // 8. `down` takes the project's objects; the external one stays.
    let out = c.cli(&["down", "-p", "files"], &[]);
    assert!(out.status.success(), "down: {}", text(&out));
    assert!(
        objects(&c, "secret").is_empty(),
        "{:?}",
        objects(&c, "secret")
    );
    assert!(
        objects(&c, "config").is_empty(),
        "{:?}",
        objects(&c, "config")
    );
    let all = c.docker(&["secret", "ls", "--format", "{{.Name}}"]);
    assert!(all.lines().any(|n| n == EXTERNAL), "{all}");
    c.docker(&["secret", "rm", EXTERNAL]);
}

/// The names of the project's secrets or configs (`kind`) in the swarm.
fn objects(c: &Cluster, kind: &str) -> BTreeSet<String> {
    c.docker(&[
        kind,
        "ls",
        "--filter",
        "label=cutover.project=files",
        "--format",
        "{{.Name}}",
    ])
    .lines()
    .map(String::from)
    .collect()
}
