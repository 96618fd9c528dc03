//! The release workflow around a cutover: hooks that run in the new
//! version before and after the switch, route conflicts found before
//! anything starts, and what a failed first deploy says. Real
//! `cutover serve`, real Docker; projects are named `cvr-*` and removed by
//! label before and after.

use hyper::Method;
use serde_json::Value;

use crate::deploy::{docker, expect_code, images, text, Project};
use crate::util::{answers, tcp_request, Daemon};

/// An app whose hooks say what they see: the version's own env (`NAME`),
/// its volume (what earlier hooks wrote there) and its network (the
/// accessory by name). `NAME=broken` fails `pre_deploy`, `NAME=slow`
/// outlasts its timeout, `NAME=badpost` fails `post_deploy`.
const HOOKED: &str = r#"
name: PROJECT
services:
  web:
    image: cutover-test-origin:latest
    entrypoint: ["sh", "-c"]
    command: ["exec /usr/local/bin/cutover-origin"]
    environment:
      NAME: ${IT_GREETING}
    volumes:
      - data:/data
    depends_on: [cache]
    stop_grace_period: 1s
    x-cutover:
      port: 8080
      deploy_timeout: 30s
      drain_timeout: 1s
      keep: 1
      hooks:
        pre_deploy:
          command:
            - >-
              echo "migrate $$NAME as $$CUTOVER_VERSION after $${CUTOVER_PREVIOUS_VERSION:-nothing}";
              echo "seen: $$(cat /data/migrations 2>/dev/null | tr '\n' ' ')";
              echo "failure: $$(cat /data/failure 2>/dev/null)";
              getent hosts cache >/dev/null && echo "cache is reachable";
              echo $$NAME >> /data/migrations;
              if [ "$$NAME" = slow ]; then sleep 60; fi;
              test "$$NAME" != broken
          timeout: 3s
        post_deploy: ["echo warm $$NAME; test $$NAME != badpost"]
        on_failure: ["echo \"$$CUTOVER_ERROR\" > /data/failure"]
  cache:
    image: cutover-test-redis:latest
volumes:
  data: {}
"#;

fn hook_containers(project: &str) -> String {
    docker(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}}",
        "--filter",
        &format!("label=cutover.project={project}"),
        "--filter",
        "label=cutover.role=hook",
    ])
}

/// `pre_deploy` runs in the new version (its env, volume and network)
/// before its color starts, with its output in the progress; a failure or
/// a timeout starts nothing, leaves no container, runs `on_failure`, and
/// the live version serves on; `post_deploy` runs after the switch and its
/// failure is only a warning. Every run is in the history.
#[tokio::test]
async fn hooks_run_in_the_new_version_around_the_switch() {
    images();
    let project = Project::new("cvr-hooks", HOOKED, "IT_GREETING=one\n");
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;

    let out = project.cutover(&daemon, &["plan"]);
    expect_code(&out, 0, &daemon);
    let plan = text(&out.stdout);
    assert!(
        plan.contains("  web runs pre_deploy, before it starts: echo "),
        "{plan}"
    );
    assert!(
        plan.contains("  web runs on_failure, if its deploy fails: "),
        "{plan}"
    );
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 0, &daemon);
    let stdout = text(&out.stdout);
    for want in [
        "run pre_deploy hook of web",
        "cvr-hooks-web-pre_deploy | migrate one as ",
        "after nothing",
        "cvr-hooks-web-pre_deploy | cache is reachable",
        "cvr-hooks-web-post_deploy | warm one",
    ] {
        assert!(stdout.contains(want), "no {want:?} in:\n{stdout}");
    }
    // The hook ran before the color started, the warm-up after the switch.
    let at = |s: &str| stdout.find(s).unwrap_or_else(|| panic!("{s}: {stdout}"));
    assert!(
        at("migrate one") < at("start cvr-hooks-web-blue"),
        "{stdout}"
    );
    assert!(
        at("warm one") > at("traffic of web now goes to blue"),
        "{stdout}"
    );
    answers(daemon.listen, "one").await;
    assert_eq!(hook_containers("cvr-hooks"), "");
    assert_eq!(
        answer_for(&daemon, "x", "/_cutover/ready/cvr-hooks/web").await,
        "200 OK ready\n"
    );

    // A failing migration: nothing starts, blue serves on.
    project.set_env("IT_GREETING=broken\n");
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 1, &daemon);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the pre_deploy hook of web (")
            && stderr
                .contains("exited with code 1; web was not started, cvr-hooks-web-blue version"),
        "{stderr}"
    );
    assert!(!text(&out.stdout).contains("start cvr-hooks-web-green"));
    assert_eq!(
        docker(&["ps", "-aq", "--filter", "name=^cvr-hooks-web-green$"]),
        ""
    );
    assert_eq!(hook_containers("cvr-hooks"), "");
    answers(daemon.listen, "one").await;

    // Past its timeout it is killed, and that is a failure too.
    project.set_env("IT_GREETING=slow\n");
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 1, &daemon);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the pre_deploy hook of web did not end within 3s; it was killed"),
        "{stderr}"
    );
    assert_eq!(hook_containers("cvr-hooks"), "");
    answers(daemon.listen, "one").await;

    // The next hook sees what the failed ones wrote in the volume, and
    // what on_failure was told.
    project.set_env("IT_GREETING=badpost\n");
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 0, &daemon);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stdout.contains("seen: one broken slow "), "{stdout}");
    assert!(
        stdout.contains("failure: the pre_deploy hook of web did not end within 3s"),
        "{stdout}"
    );
    assert!(
        stderr.contains("the post_deploy hook of web (") && stderr.contains("serves all the same"),
        "{stderr}"
    );
    answers(daemon.listen, "badpost").await;
    assert_eq!(hook_containers("cvr-hooks"), "");

    let out = project.cutover(&daemon, &["history", "--json"]);
    expect_code(&out, 0, &daemon);
    let history: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let runs: Vec<(String, String)> = history
        .iter()
        .filter(|e| e["operation"] != "deploy")
        .map(|e| {
            (
                e["operation"].as_str().unwrap().to_string(),
                e["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let count =
        |op: &str, result: &str| runs.iter().filter(|(o, r)| o == op && r == result).count();
    assert_eq!(count("pre_deploy", "ok"), 2, "{runs:?}");
    assert_eq!(count("pre_deploy", "failed"), 2, "{runs:?}");
    assert_eq!(count("on_failure", "ok"), 2, "{runs:?}");
    assert_eq!(count("post_deploy", "ok"), 1, "{runs:?}");
    assert_eq!(count("post_deploy", "failed"), 1, "{runs:?}");

    // The same in Prometheus, with the time to switch and what is kept.
    let (_, metrics) = daemon.request(Method::GET, "/metrics", None).await;
    let metrics = metrics.as_str().unwrap().to_string();
    for want in [
        "cutover_operations_total{project=\"cvr-hooks\",operation=\"deploy\",result=\"ok\"} 2\n",
        "cutover_operations_total{project=\"cvr-hooks\",operation=\"deploy\",result=\"failed\"} 2\n",
        "cutover_operations_total{project=\"cvr-hooks\",operation=\"pre_deploy\",result=\"failed\"} 2\n",
        "cutover_kept_versions{project=\"cvr-hooks\",service=\"web\"} 1\n",
        "cutover_last_switch_seconds{project=\"cvr-hooks\",service=\"web\"} ",
    ] {
        assert!(metrics.contains(want), "no {want:?} in:\n{metrics}");
    }
}

const ROUTED: &str = r#"
name: PROJECT
services:
  api:
    image: cutover-test-origin:latest
    environment:
      NAME: api
      PORT: "8081"
    x-cutover:
      port: 8081
      hosts: [api.routes.test]
      deploy_timeout: 30s
  web:
    image: cutover-test-origin:latest
    environment:
      NAME: PROJECT
    x-cutover:
      port: 8080
      hosts: [routes.test]
      deploy_timeout: 30s
      drain_timeout: 1s
"#;

async fn answer_for(daemon: &Daemon, host: &str, path: &str) -> String {
    let (status, body) = tcp_request(daemon.listen, Method::GET, path, &[("host", host)])
        .await
        .unwrap();
    format!("{status} {}", String::from_utf8_lossy(&body))
}

/// A host another project already serves is found by `plan` and by
/// `deploy` before anything is built or started (exit 2, naming the
/// holder), so a multi-app deploy switches none of its apps; the holder
/// serves on, and redeploys its own route as usual.
#[tokio::test]
async fn a_route_another_project_holds_is_refused_before_anything_starts() {
    images();
    let a = Project::new("cvr-routes-a", ROUTED, "");
    let b = Project::new("cvr-routes-b", ROUTED, "");
    // b's web wants a's host; its api has a host of its own.
    std::fs::write(
        b.path().join("compose.yaml"),
        ROUTED
            .replace("PROJECT", "cvr-routes-b")
            .replace("hosts: [api.routes.test]", "hosts: [api-b.routes.test]"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;
    std::fs::write(
        a.path().join("compose.yaml"),
        ROUTED
            .replace("PROJECT", "cvr-routes-a")
            .replace("hosts: [api.routes.test]", "hosts: [api-a.routes.test]"),
    )
    .unwrap();
    expect_code(&a.cutover(&daemon, &["deploy"]), 0, &daemon);
    assert_eq!(
        answer_for(&daemon, "routes.test", "/").await,
        "200 OK cvr-routes-a"
    );

    let want = "web would route routes.test under path /, which cvr-routes-a/web already serves";
    for args in [&["plan"][..], &["deploy"][..]] {
        let out = b.cutover(&daemon, args);
        expect_code(&out, 2, &daemon);
        let stderr = text(&out.stderr);
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(stderr.contains("cutover down -p cvr-routes-a"), "{stderr}");
    }
    for kind in [&["ps", "-aq"][..], &["network", "ls", "-q"][..]] {
        let mut args = kind.to_vec();
        args.extend(["--filter", "label=cutover.project=cvr-routes-b"]);
        assert_eq!(docker(&args), "", "{kind:?} of cvr-routes-b");
    }
    assert!(answer_for(&daemon, "api-b.routes.test", "/")
        .await
        .starts_with("404"));
    assert_eq!(
        answer_for(&daemon, "routes.test", "/").await,
        "200 OK cvr-routes-a"
    );

    // The holder's own route is replaced, not a conflict.
    expect_code(&a.cutover(&daemon, &["deploy", "--force"]), 0, &daemon);
    assert_eq!(
        answer_for(&daemon, "routes.test", "/").await,
        "200 OK cvr-routes-a"
    );
}

/// A first deploy that fails says it was the first, and that what it
/// created stays until `down`, rather than that something keeps serving.
#[tokio::test]
async fn a_failed_first_deploy_says_so() {
    images();
    let compose = r#"
name: PROJECT
services:
  web:
    image: cutover-test-origin:latest
    environment:
      PORT: "9999"
    x-cutover:
      port: 8080
      deploy_timeout: 2s
"#;
    let project = Project::new("cvr-first", compose, "");
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 1, &daemon);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("its first deploy: nothing served it before, and nothing does now"),
        "{stderr}"
    );
    assert!(stderr.contains("`cutover down` removes it"), "{stderr}");
    assert!(!stderr.contains("keeps serving"), "{stderr}");
    assert!(answer_for(&daemon, "x", "/_cutover/ready/cvr-first/web")
        .await
        .starts_with("404"),);
    // What it left: the network, which plan shows as there.
    let out = project.cutover(&daemon, &["plan"]);
    expect_code(&out, 0, &daemon);
    assert!(
        !text(&out.stdout).contains("create network"),
        "{}",
        text(&out.stdout)
    );
}

const PLAIN: &str = r#"
name: PROJECT
services:
  web:
    image: cutover-test-origin:latest
    environment:
      NAME: ${IT_GREETING}
    stop_grace_period: 1s
    x-cutover:
      port: 8080
      deploy_timeout: 30s
      drain_timeout: 1s
      keep: 1
"#;

/// `maintenance on` answers every new request with the 503 page and its
/// Retry-After (curl, a client nobody here wrote), survives a restart of
/// the daemon and a deploy behind it, shows in `status`; with `--hold`
/// a request waits and is served once `maintenance off` ends it.
#[tokio::test]
async fn maintenance_takes_the_site_down_and_back() {
    images();
    let project = Project::new("cvr-maint", PLAIN, "IT_GREETING=one\n");
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::in_dir(dir.path()).start().await;
    expect_code(&project.cutover(&daemon, &["deploy"]), 0, &daemon);
    answers(daemon.listen, "one").await;

    let out = project.cutover(
        &daemon,
        &[
            "maintenance",
            "on",
            "--message",
            "back at ten",
            "--retry-after",
            "2m",
        ],
    );
    expect_code(&out, 0, &daemon);
    assert!(
        text(&out.stdout).contains("web: in maintenance"),
        "{}",
        text(&out.stdout)
    );
    let curl = |daemon: &Daemon| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-i", "--max-time", "20"])
            .arg(format!("http://{}/", daemon.listen))
            .output()
            .expect("curl runs");
        text(&out.stdout)
    };
    let page = curl(&daemon);
    assert!(page.starts_with("HTTP/1.1 503"), "{page}");
    assert!(
        page.to_ascii_lowercase().contains("retry-after: 120"),
        "{page}"
    );
    assert!(
        page.ends_with("503 Service Unavailable: back at ten\n"),
        "{page}"
    );

    // Kept by a restarted daemon, and by a deploy that switches behind it.
    daemon.stop().await;
    daemon = Daemon::in_dir(dir.path()).start().await;
    assert!(curl(&daemon).starts_with("HTTP/1.1 503"));
    project.set_env("IT_GREETING=two\n");
    expect_code(&project.cutover(&daemon, &["deploy"]), 0, &daemon);
    assert!(curl(&daemon).contains("back at ten"));
    let out = project.cutover(&daemon, &["status"]);
    expect_code(&out, 0, &daemon);
    assert!(
        text(&out.stdout).contains("web is in maintenance"),
        "{}",
        text(&out.stdout)
    );

    // Held instead: the request waits, then the live color answers it.
    let out = project.cutover(&daemon, &["maintenance", "on", "web", "--hold", "30s"]);
    expect_code(&out, 0, &daemon);
    let listen = daemon.listen;
    let held = std::thread::spawn(move || {
        let out = std::process::Command::new("curl")
            .args(["-s", "--max-time", "20"])
            .arg(format!("http://{listen}/"))
            .output()
            .expect("curl runs");
        text(&out.stdout)
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!held.is_finished(), "a held request waits");
    let out = project.cutover(&daemon, &["maintenance", "off"]);
    expect_code(&out, 0, &daemon);
    assert_eq!(text(&out.stdout), "web: serving\n");
    assert_eq!(held.join().unwrap(), "two");

    // Naming an app that is not routed is a usage error.
    let out = project.cutover(&daemon, &["maintenance", "on", "nope"]);
    expect_code(&out, 2, &daemon);
    assert!(text(&out.stderr).contains("no app nope of project cvr-maint is routed"));
}

/// An app whose PID 1 ignores SIGTERM (a shell that does not `exec` it) is
/// killed when its stop grace period runs out; `status` says so, with the
/// usual cause, next to the kept version it marks as stopped and killed.
#[tokio::test]
async fn status_says_when_an_old_color_had_to_be_killed() {
    images();
    let compose = r#"
name: PROJECT
services:
  web:
    image: cutover-test-origin:latest
    entrypoint: ["sh", "-c", "/usr/local/bin/cutover-origin & wait"]
    environment:
      NAME: ${IT_GREETING}
    stop_grace_period: 1s
    x-cutover:
      port: 8080
      deploy_timeout: 30s
      drain_timeout: 1s
      websocket_drain_timeout: 1s
"#;
    let project = Project::new("cvr-killed", compose, "IT_GREETING=one\n");
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;
    expect_code(&project.cutover(&daemon, &["deploy"]), 0, &daemon);
    project.set_env("IT_GREETING=two\n");
    expect_code(&project.cutover(&daemon, &["deploy"]), 0, &daemon);
    let start = std::time::Instant::now();
    let shown = loop {
        let out = project.cutover(&daemon, &["status"]);
        expect_code(&out, 0, &daemon);
        let shown = text(&out.stdout);
        if shown.contains("(stopped, killed)") || start.elapsed() > crate::util::PATIENCE {
            break shown;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert!(shown.contains("(stopped, killed)"), "{shown}");
    assert!(
        shown.contains(
            "did not exit within its stop_grace_period after SIGTERM and was killed (exit 137)"
        ),
        "{shown}"
    );
    let out = project.cutover(&daemon, &["status", "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["apps"][0]["kept"][0]["killed"], true, "{status}");
}

/// Forced redeploys of one version under new labels keep no copy of it
/// as another version, and `status`, `history` and the container agree on
/// the label asked for last; a rollback to a version moved out of its slot
/// moves that container back, and the history names every label.
#[tokio::test]
async fn versions_kept_are_exact_across_forced_redeploys_and_rollbacks() {
    images();
    let project = Project::new(
        "cvr-versions",
        &PLAIN.replace("keep: 1", "keep: 2"),
        "IT_GREETING=one\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;
    let deploy = |args: &[&str]| {
        let out = project.cutover(&daemon, args);
        expect_code(&out, 0, &daemon);
        text(&out.stdout)
    };
    let status = || {
        let out = project.cutover(&daemon, &["status", "--json"]);
        expect_code(&out, 0, &daemon);
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    deploy(&["deploy", "--version-label", "v1"]);
    let shown = deploy(&["deploy", "--force", "--version-label", "v2"]);
    assert!(
        shown.contains("removed: the same version now serves from cvr-versions-web-green"),
        "{shown}"
    );
    let st = status();
    assert_eq!(st["apps"][0]["live"]["version"], "v2", "{st}");
    assert_eq!(st["apps"][0]["kept"], serde_json::json!([]), "{st}");

    // Two other versions: v2 is moved out of its slot by the second.
    project.set_env("IT_GREETING=two\n");
    deploy(&["deploy", "--version-label", "v3"]);
    project.set_env("IT_GREETING=three\n");
    deploy(&["deploy", "--version-label", "v4"]);
    let st = status();
    let kept: Vec<&str> = st["apps"][0]["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["version"].as_str().unwrap())
        .collect();
    assert_eq!(kept, ["v3", "v2"], "{st}");
    let moved = st["apps"][0]["kept"][1]["container"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !moved.ends_with("-blue") && !moved.ends_with("-green"),
        "{moved}"
    );

    let out = project.cutover(&daemon, &["rollback", "--to", "v2"]);
    expect_code(&out, 0, &daemon);
    let shown = text(&out.stdout);
    assert!(
        shown.contains(&format!("move {moved} back into cvr-versions-web-")),
        "{shown}"
    );
    assert!(!shown.contains(&format!("remove {moved}")), "{shown}");
    answers(daemon.listen, "one").await;
    assert_eq!(status()["apps"][0]["live"]["version"], "v2");

    let out = project.cutover(&daemon, &["history", "--json"]);
    let history: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let versions: Vec<&str> = history
        .iter()
        .filter(|e| e["service"] == "web")
        .map(|e| e["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v1", "v2", "v3", "v4", "v2"], "{history:?}");
}
