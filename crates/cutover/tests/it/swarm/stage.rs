//! The release workflow on the three-node swarm: `deploy --preview` and
//! `--canary` stage a version beside the live one on every node, under one
//! token (a canary session keeps its side on whichever node it reaches);
//! `abort` drops it everywhere, `promote` puts it live everywhere, on a
//! node that missed the stage too; then `maintenance` on every node.

use std::net::SocketAddr;
use std::process::Command;

use super::{athens_compose, host_docker, serves, text, version_in, wait_down, wait_for, Cluster};

/// Runs when a version goes live: after a deploy's switch, and at promote
/// for a staged one (never at the stage, nor at abort).
const POST_DEPLOY: &str = r#"      hooks:
        post_deploy:
          command: [sh, -c, "echo live $$APP_VERSION after $$CUTOVER_PREVIOUS_VERSION"]
          timeout: 30s
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stage_spans_every_node_and_ends_on_all_of_them() {
    let c = Cluster::up("stage").await;
    let compose = athens_compose("stage", "", POST_DEPLOY);
    std::fs::write(c.dir.path().join("compose.yaml"), compose).unwrap();
    let out = c.deploy("v1", &[]);
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    for edge in &c.edges {
        serves(*edge, "v1").await;
    }

    // 1. A preview: every node keeps v1 for everyone but who asks.
    let out = stage(&c, "v2", &["--preview"]);
    assert!(out.status.success(), "preview v2: {}", text(&out));
    assert!(text(&out).contains("3 nodes staged"), "{}", text(&out));
    assert!(!text(&out).contains("live v2"), "{}", text(&out));
    for edge in &c.edges {
        assert_eq!(curl(*edge, &[]), "v1");
        assert_eq!(curl(*edge, &["-H", "cutover-preview: 1"]), "v2");
    }
    let status = c.cli(&["status", "-p", "stage"], &[]);
    let said = text(&status);
    assert!(status.status.success(), "status: {said}");
    assert_eq!(
        said.matches("staged green v2 (preview)").count(),
        3,
        "{said}"
    );

    // 2. Nothing else deploys while it is staged.
    let out = c.deploy("v3", &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("has version v2 staged beside the live one"),
        "{}",
        text(&out)
    );

    // 3. abort: no node reaches v2 any more, and its service is gone.
    let out = c.cli(&["abort", "-p", "stage"], &[]);
    assert!(out.status.success(), "abort: {}", text(&out));
    assert!(!text(&out).contains("live v2"), "{}", text(&out));
    for edge in &c.edges {
        assert_eq!(curl(*edge, &["-H", "cutover-preview: 1"]), "v1");
    }
    assert!(
        !super::services(&c).contains("stage_web_green "),
        "{}",
        super::services(&c)
    );

    // 4. A canary: a session draws its side once, on any node, and keeps
    //    it on the others (one token, so one cookie, on all).
    let out = stage(&c, "v3", &["--canary", "50%"]);
    assert!(out.status.success(), "canary v3: {}", text(&out));
    let mut seen = std::collections::BTreeSet::new();
    for n in 0..12 {
        let (first, cookie) = curl_session(c.edges[n % 3], None);
        let cookie = cookie.unwrap_or_else(|| panic!("session {n} drew no cookie"));
        for edge in &c.edges {
            let (again, _) = curl_session(*edge, Some(&cookie));
            assert_eq!(again, first, "session {n} ({cookie}) on {edge}");
        }
        seen.insert(first);
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["v1", "v3"],
        "12 sessions at 50% reach both"
    );

    // 5. promote: every node serves v3; v1 is kept at 0 tasks.
    let out = c.cli(&["promote", "-p", "stage"], &[]);
    assert!(out.status.success(), "promote: {}", text(&out));
    assert!(
        text(&out).contains("promoted web v3 on 3 nodes"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("live v3 after v1"),
        "the post_deploy hook runs at promote: {}",
        text(&out)
    );
    for edge in &c.edges {
        serves(*edge, "v3").await;
    }
    wait_for("v1 kept at 0 tasks", || async {
        super::services(&c).contains("stage_web_blue 0/0")
    })
    .await;

    // 6. A node down while v4 is staged holds no stage when it comes
    //    back; `promote` brings it over with the others.
    let lost = c.swarm.nodes[2].name.clone();
    host_docker(&["kill", &lost]);
    wait_down(&c, &lost).await;
    let out = stage(&c, "v4", &["--preview"]);
    assert!(out.status.success(), "preview v4: {}", text(&out));
    assert!(text(&out).contains("2 nodes staged"), "{}", text(&out));
    host_docker(&["start", &lost]);
    wait_for("the node that came back serving v3", || async {
        super::version(c.edges[2]).await == "v3"
    })
    .await;
    wait_for("its edge running, as the managers see it", || async {
        super::services(&c).lines().any(|l| l == "cutover_edge 3/3")
    })
    .await;
    let status = text(&c.cli(&["status", "-p", "stage"], &[]));
    assert!(status.contains("the nodes disagree"), "{status}");
    let out = c.cli(&["promote", "-p", "stage"], &[]);
    assert!(out.status.success(), "promote v4: {}", text(&out));
    assert!(text(&out).contains("3 nodes switched"), "{}", text(&out));
    for edge in &c.edges {
        serves(*edge, "v4").await;
    }

    // 7. Maintenance on every node, with one start, and off again.
    let out = c.cli(&["maintenance", "on", "--message", "back at ten"], &[]);
    assert!(out.status.success(), "maintenance on: {}", text(&out));
    for edge in &c.edges {
        let (status, body) = super::tcp_request(*edge, hyper::Method::GET, "/", &[])
            .await
            .unwrap();
        assert_eq!(status, 503, "{edge}");
        assert!(
            String::from_utf8_lossy(&body).contains("back at ten"),
            "{edge}"
        );
    }
    let said = text(&c.cli(&["status", "-p", "stage"], &[]));
    assert_eq!(said.matches("maintenance").count(), 3, "{said}");
    assert!(
        said.contains("every node that answered serves the same versions"),
        "{said}"
    );
    let out = c.cli(&["maintenance", "off"], &[]);
    assert!(out.status.success(), "maintenance off: {}", text(&out));
    for edge in &c.edges {
        serves(*edge, "v4").await;
    }

    // 8. History has each step, in order.
    let out = c.cli(&["history", "-p", "stage", "web"], &[]);
    let said = text(&out);
    assert!(out.status.success(), "history: {said}");
    let mut at = 0;
    for step in [
        "deploy", "preview", "abort", "canary", "promote", "preview", "promote",
    ] {
        let found = said[at..]
            .find(step)
            .unwrap_or_else(|| panic!("{step} after {at}: {said}"));
        at += found + step.len();
    }
}

/// `cutover deploy --version VERSION` with the staging flags.
fn stage(c: &Cluster, version: &str, flags: &[&str]) -> std::process::Output {
    let mut args = vec!["deploy", "--version", version];
    args.extend_from_slice(flags);
    c.cli(&args, &[("VERSION", version)])
}

/// The version `curl` gets from `edge`'s `/`, with `args`.
fn curl(edge: SocketAddr, args: &[&str]) -> String {
    curl_full(edge, args).0
}

/// A canary session's request at `edge`: the version, and the canary
/// cookie the answer set (`cutover-canary=...`), sending `cookie` if any.
fn curl_session(edge: SocketAddr, cookie: Option<&str>) -> (String, Option<String>) {
    let header = cookie.map(|c| format!("cookie: {c}"));
    let args: Vec<&str> = match &header {
        Some(h) => vec!["-H", h],
        None => Vec::new(),
    };
    let (version, head) = curl_full(edge, &args);
    let set = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("set-cookie").then(|| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
    });
    (version, set.filter(|c| c.starts_with("cutover-canary=")))
}

/// `curl -i`: the version in the body, and the response head.
fn curl_full(edge: SocketAddr, args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10"])
        .args(args)
        .arg(format!("http://{edge}/"))
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {edge}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (version_in(body.as_bytes()), head.to_string())
}
