//! `deploy --preview` and `--canary N%` stage a version beside the live
//! one; `promote` puts it live, `abort` drains it away. Real `cutover
//! serve`, real Docker, curl as the client (its cookie jar is a browser's);
//! projects are named `cvs-*`.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deploy::{docker, expect_code, images, text, Project};
use crate::util::{Daemon, PATIENCE};

const HOST: &str = "app.cvs.test";
const PREVIEW: &str = "preview.cvs.test";

const STAGED: &str = r#"
name: PROJECT
services:
  web:
    image: cutover-test-origin:latest
    entrypoint: ["sh", "-c"]
    command: ["exec /usr/local/bin/cutover-origin"]
    environment:
      NAME: ${IT_GREETING}
    stop_grace_period: 1s
    x-cutover:
      port: 8080
      hosts: [app.cvs.test]
      preview_hosts: [preview.cvs.test]
      deploy_timeout: 30s
      drain_timeout: 1s
      keep: 1
      hooks:
        post_deploy: ["echo warm $$NAME"]
"#;

/// One GET through the proxy with curl: the body. `args` go first.
fn curl(daemon: &Daemon, host: &str, args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "-H", &format!("Host: {host}")])
        .args(args)
        .arg(format!("http://{}/", daemon.listen))
        .output()
        .expect("curl runs");
    text(&out.stdout)
}

fn status(project: &Project, daemon: &Daemon) -> Value {
    let out = project.cutover(daemon, &["status", "--json"]);
    expect_code(&out, 0, daemon);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn containers(project: &str) -> String {
    docker(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}}",
        "--filter",
        &format!("label=cutover.project={project}"),
    ])
}

/// A preview is served only to who asks (header, cookie, preview host);
/// a deploy or rollback waits for its end; `promote` switches to it as a
/// deploy would, and the history says what happened.
#[tokio::test]
async fn a_preview_is_seen_by_who_asks_until_it_is_promoted() {
    images();
    let project = Project::new("cvs-preview", STAGED, "IT_GREETING=one\n");
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::in_dir(dir.path()).start().await;
    expect_code(
        &project.cutover(&daemon, &["deploy", "--version-label", "v1"]),
        0,
        &daemon,
    );

    project.set_env("IT_GREETING=two\n");
    let out = project.cutover(&daemon, &["deploy", "--preview", "--version-label", "v2"]);
    expect_code(&out, 0, &daemon);
    let shown = text(&out.stdout);
    assert!(
        shown.contains(
            "web v2 is staged in cvs-preview-web-green (preview; also at preview.cvs.test)"
        ),
        "{shown}"
    );
    assert!(shown.contains("`cutover promote` puts it live"), "{shown}");
    assert!(
        !shown.contains("warm two"),
        "post_deploy waits for promote: {shown}"
    );

    assert_eq!(curl(&daemon, HOST, &[]), "one");
    assert_eq!(curl(&daemon, HOST, &["-H", "cutover-preview: 1"]), "two");
    assert_eq!(curl(&daemon, HOST, &["-b", "cutover-preview=1"]), "two");
    assert_eq!(curl(&daemon, PREVIEW, &[]), "two");

    let st = status(&project, &daemon);
    let app = &st["apps"][0];
    assert_eq!(app["live"]["version"], "v1", "{st}");
    assert_eq!(app["staged"]["version"], "v2", "{st}");
    assert_eq!(app["staged"]["mode"], "preview", "{st}");
    assert_eq!(app["staged"]["requests"], 3, "{st}");
    let out = project.cutover(&daemon, &["status"]);
    assert!(text(&out.stdout).contains("web v2 is staged in cvs-preview-web-green (preview, at preview.cvs.test): 3 requests, 0 errors (live: "), "{}", text(&out.stdout));

    // Kept by a restarted daemon: routes, the staged container, its record.
    daemon.stop().await;
    daemon = Daemon::in_dir(dir.path()).start().await;
    assert_eq!(curl(&daemon, HOST, &[]), "one");
    assert_eq!(curl(&daemon, PREVIEW, &[]), "two");

    // Nothing else changes the app while it has a stage.
    for args in [&["deploy", "--force"][..], &["rollback"]] {
        let out = project.cutover(&daemon, args);
        expect_code(&out, 2, &daemon);
        let said = text(&out.stderr);
        assert!(
            said.contains("web has version v2 staged beside the live one"),
            "{said}"
        );
        assert!(said.contains("`cutover promote` puts it live"), "{said}");
    }

    let out = project.cutover(&daemon, &["promote"]);
    expect_code(&out, 0, &daemon);
    let shown = text(&out.stdout);
    assert!(
        shown.contains("web now serves from cvs-preview-web-green"),
        "{shown}"
    );
    assert!(shown.contains("promoted web v2"), "{shown}");
    assert!(
        shown.contains("cvs-preview-web-post_deploy | warm two"),
        "{shown}"
    );
    assert_eq!(curl(&daemon, HOST, &[]), "two");
    let st = status(&project, &daemon);
    assert_eq!(st["apps"][0]["live"]["version"], "v2", "{st}");
    assert!(st["apps"][0]["staged"].is_null(), "{st}");
    assert_eq!(st["apps"][0]["kept"][0]["version"], "v1", "{st}");
    assert_ne!(
        curl(&daemon, PREVIEW, &["-o", "/dev/null", "-w", "%{http_code}"]),
        "200"
    );

    let out = project.cutover(&daemon, &["promote"]);
    expect_code(&out, 2, &daemon);
    assert!(
        text(&out.stderr).contains("has nothing staged"),
        "{}",
        text(&out.stderr)
    );

    let out = project.cutover(&daemon, &["history", "--json"]);
    let history: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ops: Vec<(&str, &str)> = history
        .iter()
        .filter(|e| e["service"] == "web")
        .map(|e| {
            (
                e["operation"].as_str().unwrap(),
                e["version"].as_str().unwrap(),
            )
        })
        .collect();
    for want in [("deploy", "v1"), ("preview", "v2"), ("promote", "v2")] {
        assert!(ops.contains(&want), "{want:?} in {ops:?}");
    }
}

/// A canary draws each new session once (curl's cookie jar keeps it on
/// its side); `abort` drains the canary, removes its container, and every
/// session is back on the live version.
#[tokio::test]
async fn a_canary_keeps_its_sessions_and_abort_removes_it() {
    images();
    let project = Project::new("cvs-canary", STAGED, "IT_GREETING=one\n");
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;
    let out = project.cutover(&daemon, &["deploy", "--canary", "50%"]);
    expect_code(&out, 2, &daemon);
    assert!(
        text(&out.stderr).contains("serves nothing yet"),
        "{}",
        text(&out.stderr)
    );
    let out = project.cutover(&daemon, &["deploy", "--canary", "150%"]);
    expect_code(&out, 2, &daemon);
    assert!(
        text(&out.stderr).contains("between 1% and 99%"),
        "{}",
        text(&out.stderr)
    );

    expect_code(&project.cutover(&daemon, &["deploy"]), 0, &daemon);
    project.set_env("IT_GREETING=two\n");
    let out = project.cutover(
        &daemon,
        &["deploy", "--canary", "50%", "--version-label", "c2"],
    );
    expect_code(&out, 0, &daemon);

    let jars = tempfile::tempdir().unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..24 {
        let jar = jars.path().join(format!("{i}.txt"));
        let jar = jar.to_str().unwrap();
        let first = curl(&daemon, HOST, &["-c", jar, "-b", jar]);
        // The same session, three times more: the same side.
        for _ in 0..3 {
            assert_eq!(
                curl(&daemon, HOST, &["-c", jar, "-b", jar]),
                first,
                "session {i}"
            );
        }
        *seen.entry(first).or_insert(0) += 1;
    }
    // 24 sessions at 50%: all on one side has a chance of 1 in 8 million.
    assert_eq!(seen.keys().collect::<Vec<_>>(), ["one", "two"], "{seen:?}");

    let out = project.cutover(&daemon, &["abort"]);
    expect_code(&out, 0, &daemon);
    let shown = text(&out.stdout);
    assert!(
        shown.contains("retire cvs-canary-web-green in the background"),
        "{shown}"
    );
    assert!(
        shown.contains("aborted web c2; the live versions kept serving"),
        "{shown}"
    );
    for i in 0..24 {
        let jar = jars.path().join(format!("{i}.txt"));
        let jar = jar.to_str().unwrap();
        assert_eq!(curl(&daemon, HOST, &["-b", jar]), "one", "session {i}");
    }
    let start = Instant::now();
    while containers("cvs-canary").contains("cvs-canary-web-green") {
        assert!(start.elapsed() < PATIENCE, "{}", containers("cvs-canary"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let st = status(&project, &daemon);
    assert!(st["apps"][0]["staged"].is_null(), "{st}");
    assert_eq!(st["apps"][0]["live"]["color"], "blue", "{st}");
    // And the next deploy goes on as usual.
    expect_code(&project.cutover(&daemon, &["deploy"]), 0, &daemon);
    assert_eq!(curl(&daemon, HOST, &[]), "two");
}
