//! `cutover deploy | plan | rollback | status | history | logs | down`
//! against a real `cutover serve` and the real Docker engine of this machine.
//! Projects have a fixed name per test, so that snapshots are stable, and
//! are removed by label before and after.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::Value;

use crate::util::{answers, cutover, run, run_with_stdin, tcp_request, Daemon, PATIENCE};

/// A compose project in a temporary folder; its containers, networks and
/// volumes are removed (by the labels cutover writes) when it is dropped.
pub(crate) struct Project {
    name: String,
    dir: tempfile::TempDir,
}

impl Project {
    pub(crate) fn new(name: &str, compose: &str, env: &str) -> Project {
        cutover_test::images::require_docker();
        remove_by_label(name);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            compose.replace("PROJECT", name),
        )
        .unwrap();
        std::fs::write(dir.path().join(".env"), env).unwrap();
        Project {
            name: name.into(),
            dir,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `cutover <args>` run in the project's folder against `daemon`.
    pub(crate) fn cutover(&self, daemon: &Daemon, args: &[&str]) -> Output {
        run(cutover()
            .current_dir(self.path())
            .arg("--socket")
            .arg(&daemon.socket)
            .args(args))
    }

    pub(crate) fn set_env(&self, env: &str) {
        std::fs::write(self.path().join(".env"), env).unwrap();
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        remove_by_label(&self.name);
    }
}

pub(crate) fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn remove_by_label(project: &str) {
    let filter = format!("label=cutover.project={project}");
    let ids = |kind: &[&str]| -> Vec<String> {
        let mut args = kind.to_vec();
        args.extend(["--filter", &filter]);
        docker(&args).lines().map(str::to_string).collect()
    };
    for (list, remove) in [
        (&["ps", "-aq"][..], &["rm", "-f", "-v"][..]),
        (&["network", "ls", "-q"][..], &["network", "rm"][..]),
        (&["volume", "ls", "-q"][..], &["volume", "rm", "-f"][..]),
    ] {
        let found = ids(list);
        if !found.is_empty() {
            let mut args = remove.to_vec();
            args.extend(found.iter().map(String::as_str));
            docker(&args);
        }
    }
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the exit code, showing everything when it differs.
#[track_caller]
pub(crate) fn expect_code(out: &Output, code: i32, daemon: &Daemon) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}\ndaemon:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        daemon.stderr()
    );
}

pub(crate) fn json_lines(out: &Output) -> Vec<Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

const APP: &str = r#"
name: PROJECT
services:
  web:
    image: cutover-test-origin:latest
    environment:
      NAME: ${IT_GREETING}
    depends_on: [cache]
    x-cutover:
      port: 8080
      deploy_timeout: 5s
      drain_timeout: 1s
      keep: 2
  cache:
    image: cutover-test-redis:latest
    volumes:
      - cache-data:/data
volumes:
  cache-data: {}
"#;

pub(crate) fn images() {
    cutover_test::images::origin_image();
    cutover_test::images::redis_image();
}

#[tokio::test]
async fn plan_shows_what_a_deploy_would_do() {
    images();
    let project = Project::new("cvit-plan", APP, "IT_GREETING=hello\n");
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;

    let out = project.cutover(&daemon, &["plan", "--json"]);
    expect_code(&out, 0, &daemon);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The version is a hash of the image ID, which changes when the test
    // image is rebuilt.
    let version = plan["steps"][3]["version"].as_str().unwrap().to_string();
    // So are the image IDs, in full and as the text shows them.
    let ids: Vec<String> = plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_string))
        .collect();
    let redact = |t: String| {
        ids.iter().fold(t.replace(&version, "[VERSION]"), |t, id| {
            let short: String = id.trim_start_matches("sha256:").chars().take(12).collect();
            t.replace(id, "[IMAGE ID]").replace(&short, "[IMAGE ID]")
        })
    };
    insta::assert_snapshot!("plan_json", redact(text(&out.stdout)));

    let out = project.cutover(&daemon, &["plan"]);
    expect_code(&out, 0, &daemon);
    insta::assert_snapshot!("plan_text", redact(text(&out.stdout)));

    // The same file on stdin (`-f -`, as `envsubst < tpl | cutover plan -f -`)
    // gives the same plan: `.env` and the project's folder come from the
    // working directory.
    let compose = std::fs::read_to_string(project.path().join("compose.yaml")).unwrap();
    let piped = run_with_stdin(
        cutover()
            .current_dir(project.path())
            .arg("--socket")
            .arg(&daemon.socket)
            .args(["plan", "-f", "-"]),
        &compose,
    );
    expect_code(&piped, 0, &daemon);
    assert_eq!(text(&piped.stdout), text(&out.stdout));

    // A plan changes nothing.
    assert_eq!(
        docker(&["ps", "-aq", "--filter", "label=cutover.project=cvit-plan"]),
        ""
    );

    // After a deploy, a changed env var is named, its value is not.
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 0, &daemon);
    project.set_env("IT_GREETING=secret-value-2\n");
    let out = project.cutover(&daemon, &["plan"]);
    expect_code(&out, 0, &daemon);
    let plan = text(&out.stdout);
    assert!(plan.contains("env keys changed NAME"), "{plan}");
    assert!(!plan.contains("secret-value-2"), "{plan}");
    assert!(
        plan.contains("deploy app web to green as cvit-plan-web-green"),
        "{plan}"
    );
}

#[tokio::test]
async fn deploy_switch_rollback_and_down() {
    images();
    let project = Project::new("cvit-e2e", APP, "IT_GREETING=one\n");
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;

    // First deploy: accessory, network, volume, blue.
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 0, &daemon);
    let stdout = text(&out.stdout);
    // Not a terminal: every line starts with an RFC 3339 timestamp.
    for line in stdout.lines() {
        let ts = line.split(' ').next().unwrap();
        assert!(humantime::parse_rfc3339(ts).is_ok(), "{line}");
    }
    assert!(
        stdout.contains("traffic of web now goes to blue"),
        "{stdout}"
    );
    answers(daemon.listen, "one").await;

    // Same input again: nothing to do, exit 0.
    let out = project.cutover(&daemon, &["deploy", "--json"]);
    expect_code(&out, 0, &daemon);
    let events = json_lines(&out);
    assert_eq!(
        events.last().unwrap()["outcome"],
        "up_to_date",
        "{events:?}"
    );

    // An edit of .env is a new version: green.
    project.set_env("IT_GREETING=two\n");
    let out = project.cutover(&daemon, &["deploy", "--json"]);
    expect_code(&out, 0, &daemon);
    let events = json_lines(&out);
    assert!(events.iter().all(|e| e["event"].is_string()));
    let switched = events.iter().find(|e| e["event"] == "switched").unwrap();
    assert_eq!(switched["color"], "green");
    assert_eq!(events.last().unwrap()["event"], "finished");
    answers(daemon.listen, "two").await;

    // Status names the live color and the kept version.
    let out = project.cutover(&daemon, &["status", "--json"]);
    expect_code(&out, 0, &daemon);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["project"], "cvit-e2e");
    let web = &status["apps"][0];
    assert_eq!(web["service"], "web");
    assert_eq!(web["live"]["color"], "green");
    assert_eq!(web["live"]["container"], "cvit-e2e-web-green");
    assert_eq!(web["kept"].as_array().unwrap().len(), 1, "{status}");
    assert_eq!(status["accessories"][0]["container"], "cvit-e2e-cache");
    let network = status["networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "cvit-e2e_default")
        .unwrap_or_else(|| panic!("{status}"));
    let attached: Vec<&str> = network["attached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(attached.contains(&"cvit-e2e-cache"), "{attached:?}");
    assert!(attached.contains(&"cvit-e2e-web-green"), "{attached:?}");
    let out = project.cutover(&daemon, &["status"]);
    expect_code(&out, 0, &daemon);
    let table = text(&out.stdout);
    assert!(table.starts_with("project cvit-e2e\n"), "{table}");
    assert!(table.contains("cvit-e2e-web-green"), "{table}");
    assert!(table.contains("cvit-e2e_default"), "{table}");

    // Logs of the live color; --all adds the kept one, prefixed.
    let out = project.cutover(&daemon, &["logs", "web", "--tail", "5"]);
    expect_code(&out, 0, &daemon);
    assert!(
        text(&out.stdout).contains("cutover-origin two listening"),
        "{}",
        text(&out.stdout)
    );
    // `--since` reaches the engine (the adapter's own test checks that it
    // filters): an hour back still has the start-up line.
    let out = project.cutover(&daemon, &["logs", "web", "--since", "1h"]);
    expect_code(&out, 0, &daemon);
    assert!(
        text(&out.stdout).contains("cutover-origin two listening"),
        "{}",
        text(&out.stdout)
    );
    let out = project.cutover(&daemon, &["logs", "web", "--all"]);
    expect_code(&out, 0, &daemon);
    let all = text(&out.stdout);
    assert!(all.contains("cvit-e2e-web-blue"), "{all}");
    assert!(all.contains("cutover-origin one listening"), "{all}");

    // A deploy that fails its health check leaves green serving and shows
    // the new container's log.
    let broken = APP.replace("port: 8080", "port: 9999");
    std::fs::write(
        project.path().join("compose.yaml"),
        broken.replace("PROJECT", "cvit-e2e"),
    )
    .unwrap();
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 1, &daemon);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("log of cvit-e2e-web-blue:"), "{stdout}");
    assert!(stdout.contains("listening on 0.0.0.0:8080"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error: "), "{stderr}");
    assert!(
        stderr.contains(
            "hint: the log says the app listens on port 8080, but x-cutover.port is 9999"
        ),
        "{stderr}"
    );
    answers(daemon.listen, "two").await;
    std::fs::write(
        project.path().join("compose.yaml"),
        APP.replace("PROJECT", "cvit-e2e"),
    )
    .unwrap();

    // History: every deploy, the one with nothing to do included.
    let out = project.cutover(&daemon, &["history", "--json"]);
    expect_code(&out, 0, &daemon);
    let history: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let results: Vec<&str> = history
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["ok", "up_to_date", "ok", "failed"], "{history:?}");
    let out = project.cutover(&daemon, &["history", "web"]);
    expect_code(&out, 0, &daemon);
    assert!(
        text(&out.stdout).starts_with("TIME "),
        "{}",
        text(&out.stdout)
    );

    // Rollback: back to "one" on blue, in place.
    let out = project.cutover(&daemon, &["rollback"]);
    expect_code(&out, 0, &daemon);
    assert!(
        text(&out.stdout).contains("traffic of web now goes to blue"),
        "{}",
        text(&out.stdout)
    );
    answers(daemon.listen, "one").await;

    // Down keeps the data volume; down --volumes removes it.
    let out = project.cutover(&daemon, &["down"]);
    expect_code(&out, 0, &daemon);
    assert_eq!(
        docker(&["ps", "-aq", "--filter", "label=cutover.project=cvit-e2e"]),
        ""
    );
    assert!(docker(&["volume", "ls", "-q"])
        .lines()
        .any(|v| v == "cvit-e2e_cache-data"));
    let (status, _) = tcp_request(daemon.listen, Method::GET, "/", &[])
        .await
        .unwrap();
    assert_eq!(status, hyper::StatusCode::NOT_FOUND);
    let out = project.cutover(&daemon, &["down", "--volumes", "--json"]);
    expect_code(&out, 0, &daemon);
    assert_eq!(json_lines(&out).last().unwrap()["outcome"], "ok");
    assert!(!docker(&["volume", "ls", "-q"])
        .lines()
        .any(|v| v == "cvit-e2e_cache-data"));
}

/// The compose loader runs before the daemon is asked: its errors are exit 2
/// with file:line whether or not a daemon runs.
#[test]
fn compose_errors_exit_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: x\n    x-cutover:\n      prot: 80\n",
    )
    .unwrap();
    let mut from_file = String::new();
    for command in ["deploy", "plan"] {
        let out = run(cutover()
            .current_dir(dir.path())
            .args([command, "--socket"])
            .arg(dir.path().join("none.sock")));
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "");
        insta::assert_snapshot!(format!("compose_error_{command}"), text(&out.stderr));
        from_file = text(&out.stderr);
    }

    // From stdin, the messages name it where they would name the file.
    let compose = std::fs::read_to_string(dir.path().join("compose.yaml")).unwrap();
    let out = run_with_stdin(
        cutover()
            .current_dir(dir.path())
            .args(["plan", "-f", "-", "--socket"])
            .arg(dir.path().join("none.sock")),
        &compose,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(from_file.contains("compose.yaml:5:"), "{from_file}");
    assert_eq!(
        text(&out.stderr),
        from_file.replace("compose.yaml:", "<stdin>:")
    );

    let empty = tempfile::tempdir().unwrap();
    let out = run(cutover()
        .current_dir(empty.path())
        .args(["deploy", "--socket"])
        .arg(empty.path().join("none.sock")));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr).replace(&canonical(empty.path()), "[TMP]");
    insta::assert_snapshot!("compose_not_found", stderr);
}

fn canonical(p: &Path) -> String {
    PathBuf::from(p)
        .canonicalize()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn deploy_without_a_daemon_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: x\n    x-cutover:\n      port: 80\n",
    )
    .unwrap();
    for args in [
        &["deploy"][..],
        &["plan"],
        &["rollback", "-p", "x"],
        &["down", "-p", "x"],
    ] {
        let out = run(cutover()
            .current_dir(dir.path())
            .args(args)
            .arg("--socket")
            .arg(dir.path().join("none.sock")));
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {}",
            text(&out.stderr)
        );
        insta::assert_snapshot!(
            "daemon_unreachable",
            text(&out.stderr).replace(dir.path().to_str().unwrap(), "[TMP]")
        );
    }
}

/// Without Docker the daemon still proxies; deploys get a clear error until
/// Docker answers.
#[tokio::test]
async fn a_daemon_without_docker_refuses_deploys_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let docker_host = format!("unix://{}", dir.path().join("no-docker.sock").display());
    let daemon = Daemon::in_dir(dir.path())
        .env("DOCKER_HOST", docker_host)
        .start()
        .await;
    std::fs::write(
        dir.path().join("compose.yaml"),
        // A registry on the loopback where nothing listens: asking it
        // sends nothing off the machine.
        "name: cvit-nodocker\nservices:\n  web:\n    image: 127.0.0.1:1/cvit/web:1\n    x-cutover:\n      port: 80\n",
    )
    .unwrap();
    let out = run(cutover()
        .current_dir(dir.path())
        .args(["deploy", "--socket"])
        .arg(&daemon.socket));
    expect_code(&out, 1, &daemon);
    insta::assert_snapshot!(text(&out.stderr).replace(dir.path().to_str().unwrap(), "[TMP]"));
    // The proxy side is unaffected.
    let (status, _) = daemon.request(Method::GET, "/v1/services", None).await;
    assert_eq!(status, hyper::StatusCode::OK);

    // Docker appears where DOCKER_HOST points: the next request connects.
    cutover_test::images::require_docker();
    let real = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
    std::os::unix::fs::symlink(&real, dir.path().join("no-docker.sock")).unwrap();
    let out = run(cutover()
        .current_dir(dir.path())
        .args(["plan", "--socket"])
        .arg(&daemon.socket));
    expect_code(&out, 0, &daemon);
    assert!(
        text(&out.stdout).contains("deploy app web to blue as cvit-nodocker-web-blue"),
        "{}",
        text(&out.stdout)
    );
    // The registry cannot be reached: the plan says it could not ask, and
    // does not fail for it.
    assert!(
        text(&out.stdout)
            .contains("warning: cannot ask 127.0.0.1:1 whether it has 127.0.0.1:1/cvit/web:1"),
        "{}",
        text(&out.stdout)
    );
}

/// Two deploys of one project cannot interleave: the second one waits at
/// most `--wait-lock` and then exits 4, naming what holds the project.
#[tokio::test]
async fn a_second_deploy_exits_4_while_the_first_holds_the_lock() {
    images();
    // Never healthy: the first deploy holds the lock for its deploy_timeout.
    let slow = APP
        .replace("port: 8080", "port: 9999")
        .replace("deploy_timeout: 5s", "deploy_timeout: 10s");
    let project = Project::new("cvit-lock", &slow, "IT_GREETING=one\n");
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;

    let mut first = cutover()
        .current_dir(project.path())
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["deploy", "--json"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let (_, status) = daemon
            .request(Method::GET, "/v1/projects/cvit-lock/status", None)
            .await;
        if !status["busy"].is_null() {
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the first deploy never held the project: {status}\n{}",
            daemon.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let out = project.cutover(&daemon, &["deploy", "--wait-lock", "100ms"]);
    expect_code(&out, 4, &daemon);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error: "), "{stderr}");
    // While it waits it says who holds the project, once.
    let waiting = "warning: project cvit-lock is locked by deploy";
    assert_eq!(stderr.matches(waiting).count(), 1, "{stderr}");
    assert!(stderr.contains("; waiting"), "{stderr}");
    let out = project.cutover(&daemon, &["deploy", "--json"]);
    expect_code(&out, 4, &daemon);
    assert_eq!(json_lines(&out).last().unwrap()["outcome"], "lock_timeout");

    let first = tokio::task::spawn_blocking(move || {
        let status = first.wait().unwrap();
        let mut stdout = String::new();
        std::io::Read::read_to_string(first.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        (status, stdout)
    })
    .await
    .unwrap();
    assert_eq!(first.0.code(), Some(1), "{}", first.1);
    let events: Vec<Value> = first
        .1
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.last().unwrap()["outcome"], "failed");
    assert!(events.iter().any(|e| e["event"] == "logs"), "{events:?}");
}

/// A daemon restarted with the same state directory routes to the live
/// color again (the deploy engine reconciles at start), and the next deploy
/// continues from it.
#[tokio::test]
async fn a_restarted_daemon_keeps_serving_the_live_color() {
    images();
    let project = Project::new("cvit-restart", APP, "IT_GREETING=before\n");
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::in_dir(dir.path()).start().await;
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 0, &daemon);
    answers(daemon.listen, "before").await;
    let stopped = daemon.stop().await;
    assert!(stopped.success(), "{}", daemon.stderr());

    let daemon = Daemon::in_dir(dir.path()).start().await;
    answers(daemon.listen, "before").await;
    project.set_env("IT_GREETING=after\n");
    let out = project.cutover(&daemon, &["deploy", "--json"]);
    expect_code(&out, 0, &daemon);
    let switched = json_lines(&out)
        .into_iter()
        .find(|e| e["event"] == "switched")
        .unwrap();
    assert_eq!(switched["color"], "green");
    answers(daemon.listen, "after").await;
}

/// `history`, `status`, `rollback`... need the project's name only: a
/// variable that only the deploy needs may be unset, while `deploy` itself
/// reports it (exit 2).
#[tokio::test]
async fn commands_that_do_not_deploy_need_only_the_name() {
    cutover_test::images::require_docker();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;
    let project = dir.path().join("project");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(
        project.join("compose.yaml"),
        "name: cvit-names\nservices:\n  web:\n    image: ${IT_UNSET_IMAGE:?set IT_UNSET_IMAGE}\n    x-cutover:\n      port: 80\n",
    )
    .unwrap();
    let cmd = |args: &[&str]| {
        run(cutover()
            .current_dir(&project)
            .env_remove("IT_UNSET_IMAGE")
            .arg("--socket")
            .arg(&daemon.socket)
            .args(args))
    };
    let out = cmd(&["history", "--json"]);
    expect_code(&out, 0, &daemon);
    assert_eq!(text(&out.stdout).trim(), "[]");
    let out = cmd(&["status", "--json"]);
    expect_code(&out, 0, &daemon);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["project"], "cvit-names");

    let out = cmd(&["deploy"]);
    expect_code(&out, 2, &daemon);
    assert!(
        text(&out.stderr).contains("IT_UNSET_IMAGE"),
        "{}",
        text(&out.stderr)
    );
}

/// Two daemons on this machine's engine, one project name: the second is
/// refused (exit 2, naming the owner) and the first keeps serving with its
/// volume; `--adopt` takes the project over.
#[tokio::test]
async fn a_second_daemon_never_touches_the_first_daemons_project() {
    images();
    let project = Project::new("cvit-owner", APP, "IT_GREETING=first\n");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = Daemon::in_dir(dir_a.path()).start().await;
    let out = project.cutover(&first, &["deploy"]);
    expect_code(&out, 0, &first);
    answers(first.listen, "first").await;
    let owner = std::fs::read_to_string(first.state_dir.join("daemon-id")).unwrap();
    let labelled = docker(&[
        "ps",
        "-q",
        "--filter",
        "label=cutover.project=cvit-owner",
        "--filter",
        &format!("label=cutover.daemon={}", owner.trim()),
    ]);
    assert_eq!(
        labelled.lines().count(),
        2,
        "web and cache carry the owner label"
    );

    let second = Daemon::in_dir(dir_b.path()).start().await;
    project.set_env("IT_GREETING=second\n");
    let out = project.cutover(&second, &["deploy"]);
    expect_code(&out, 2, &second);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "project cvit-owner belongs to another cutover daemon (id {}",
            owner.trim()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--adopt"), "{stderr}");
    let out = project.cutover(&second, &["down", "--volumes"]);
    expect_code(&out, 2, &second);
    // The first daemon's app still answers, and the volume is there.
    answers(first.listen, "first").await;
    assert_eq!(
        docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            "label=cutover.project=cvit-owner"
        ])
        .lines()
        .count(),
        1
    );

    // Its state dir lost for good: the second one takes over.
    drop(first);
    let out = project.cutover(&second, &["deploy", "--adopt"]);
    expect_code(&out, 0, &second);
    answers(second.listen, "second").await;
    let out = project.cutover(&second, &["down", "--volumes"]);
    expect_code(&out, 0, &second);
}

/// A new container that exits fails the deploy with its exit code, not at
/// the end of a long `deploy_timeout`; the log shown opens with its first
/// lines. One that listens on another port than `x-cutover.port` gets a
/// hint naming both.
#[tokio::test]
async fn a_container_that_exits_or_listens_elsewhere_is_named_at_once() {
    images();
    let compose = r#"
name: PROJECT
services:
  web:
    image: cutover-test-origin:latest
    entrypoint: ["sh", "-c", "echo starting the app; i=0; while [ $$i -lt 60 ]; do i=$$((i+1)); echo line $$i; done; exit 3"]
    x-cutover:
      port: 8080
      deploy_timeout: 10m
"#;
    let project = Project::new("cvit-exits", compose, "");
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 1, &daemon);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("exited with code 3 before its health check passed"),
        "{all}"
    );
    assert!(!all.contains("did not become healthy"), "{all}");
    let first = all
        .find("starting the app")
        .expect("the first line is shown");
    let gap = all.find("lines …").expect("the lines between are counted");
    let last = all.find("line 60").expect("the last line is shown");
    assert!(first < gap && gap < last, "{all}");
    // Nothing of the failed color is left.
    assert_eq!(
        docker(&[
            "ps",
            "-aq",
            "--filter",
            "label=cutover.project=cvit-exits",
            "--filter",
            "label=cutover.role=app"
        ])
        .trim(),
        ""
    );

    // The origin listens on $PORT: 8081, while x-cutover.port says 8080.
    std::fs::write(
        project.path().join("compose.yaml"),
        "name: cvit-exits\nservices:\n  web:\n    image: cutover-test-origin:latest\n    environment: {PORT: \"8081\"}\n    x-cutover:\n      port: 8080\n      deploy_timeout: 3s\n",
    )
    .unwrap();
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 1, &daemon);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "hint: the log says the app listens on port 8081, but x-cutover.port is 8080"
        ),
        "{}{stderr}",
        text(&out.stdout)
    );
}
