//! The failures of docs' the-problem.md that the other modules do not
//! already cover end to end (docs/problem-coverage.md maps every row): a
//! daemon or a client killed mid-deploy, WebSockets across a real deploy,
//! named environments from one compose file, exact network names and an
//! accessory that is not published. Real `cutover serve`, real Docker;
//! projects are named `cvp-*` and removed by label before and after.

use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hyper::Method;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::deploy::{docker, expect_code, images, json_lines, remove_by_label, text, Project};
use crate::util::{answers, cutover, Daemon, PATIENCE};

/// One app, no accessory: what the crash tests need, and fast to start.
/// `IT_PORT` moves the app off the port cutover probes (never healthy);
/// `IT_DELAY` makes it start late.
const WEB: &str = r#"
name: PROJECT
services:
  web:
    image: cutover-test-origin:latest
    entrypoint: ["sh", "-c", "sleep ${IT_DELAY:-0}; exec /usr/local/bin/cutover-origin"]
    environment:
      NAME: ${IT_GREETING}
      PORT: ${IT_PORT:-8080}
    stop_grace_period: 1s
    x-cutover:
      port: 8080
      deploy_timeout: 60s
      drain_timeout: 1s
      websocket_drain_timeout: ${IT_WS_DRAIN:-2s}
      keep: 1
"#;

/// `cutover deploy --json` in the background.
fn spawn_deploy(project: &Project, daemon: &Daemon) -> Child {
    cutover()
        .current_dir(project.path())
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["deploy", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cutover deploy starts")
}

async fn wait_output(child: Child) -> std::process::Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

/// `docker inspect -f {{.State.Status}}`, or "" when there is no such
/// container.
fn container_state(name: &str) -> String {
    docker(&["inspect", "-f", "{{.State.Status}}", name])
        .trim()
        .to_string()
}

async fn wait_for_container(name: &str, state: &str, daemon: &Daemon) {
    let start = Instant::now();
    while container_state(name) != state {
        assert!(
            start.elapsed() < PATIENCE,
            "{name} never became {state:?} (is {:?}):\n{}",
            container_state(name),
            daemon.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The proxy service `route` as the daemon's state file records it.
fn persisted(daemon: &Daemon, route: &str) -> Value {
    let path = daemon.state_dir.join("state.json");
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), daemon.stderr()));
    let file: Value = serde_json::from_slice(&bytes).unwrap();
    file["state"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == route)
        .unwrap_or_else(|| panic!("no {route} in {file}"))["request"]
        .clone()
}

async fn kill_daemon(daemon: &mut Daemon) {
    daemon.signal("KILL");
    daemon.wait_exit().await;
}

/// Failures #5 and #12: the daemon dies (SIGKILL, no shutdown code runs)
/// while a new color waits on its health gate. The restarted daemon removes
/// that container, the old color serves on, and deploying again converges.
/// The state file was current before the kill (written at the switch, not
/// at shutdown).
#[tokio::test]
async fn a_daemon_killed_mid_deploy_leaves_nothing_behind() {
    images();
    let project = Project::new("cvp-daemon-kill", WEB, "IT_GREETING=one\n");
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::in_dir(dir.path()).start().await;
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 0, &daemon);
    answers(daemon.listen, "one").await;
    assert_eq!(
        persisted(&daemon, "cvp-daemon-kill/web")["color"],
        "blue",
        "{}",
        daemon.stderr()
    );

    // Listens where cutover does not probe: green never becomes healthy.
    project.set_env("IT_GREETING=two\nIT_PORT=9999\n");
    let client = spawn_deploy(&project, &daemon);
    wait_for_container("cvp-daemon-kill-web-green", "running", &daemon).await;
    kill_daemon(&mut daemon).await;
    let out = wait_output(client).await;
    assert!(
        !out.status.success(),
        "a deploy whose daemon died reported success:\n{}",
        text(&out.stdout)
    );

    let mut daemon = Daemon::in_dir(dir.path()).start().await;
    // Reconcile ran before the control socket answered.
    assert_eq!(container_state("cvp-daemon-kill-web-green"), "");
    assert_eq!(container_state("cvp-daemon-kill-web-blue"), "running");
    answers(daemon.listen, "one").await;
    let out = project.cutover(&daemon, &["status", "--json"]);
    expect_code(&out, 0, &daemon);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["apps"][0]["live"]["color"], "blue", "{status}");
    assert!(status["busy"].is_null(), "{status}");
    let out = project.cutover(&daemon, &["history", "--json"]);
    expect_code(&out, 0, &daemon);
    let history: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let last = history.last().unwrap();
    assert_eq!(last["result"], "failed", "{history:?}");
    assert_eq!(last["color"], "green", "{history:?}");
    assert!(
        last["error"].as_str().unwrap().starts_with("interrupted: "),
        "{history:?}"
    );

    project.set_env("IT_GREETING=two\n");
    let out = project.cutover(&daemon, &["deploy", "--json"]);
    expect_code(&out, 0, &daemon);
    let switched = json_lines(&out)
        .into_iter()
        .find(|e| e["event"] == "switched")
        .unwrap();
    assert_eq!(switched["color"], "green");
    answers(daemon.listen, "two").await;

    // A third version takes blue's slot: with keep 1, "one" is removed and
    // "two" stays stopped; nothing else of the project exists.
    project.set_env("IT_GREETING=three\n");
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 0, &daemon);
    answers(daemon.listen, "three").await;
    // The deploy ended at the switch; "two" is stopped once drained.
    wait_for_container("cvp-daemon-kill-web-green", "exited", &daemon).await;
    let mut containers: Vec<String> = docker(&[
        "ps",
        "-a",
        "--filter",
        "label=cutover.project=cvp-daemon-kill",
        "--format",
        "{{.Names}} {{.State}}",
    ])
    .lines()
    .map(str::to_string)
    .collect();
    containers.sort();
    assert_eq!(
        containers,
        [
            "cvp-daemon-kill-web-blue running",
            "cvp-daemon-kill-web-green exited"
        ]
    );
    daemon.stop().await;
}

/// Failure #12: CI kills `cutover deploy` (SIGKILL) half-way. The daemon
/// owns the deploy and finishes it; status and history show it, and the
/// state file names the new color the moment it switched.
#[tokio::test]
async fn a_client_killed_mid_deploy_does_not_stop_the_deploy() {
    images();
    let project = Project::new("cvp-client-kill", WEB, "IT_GREETING=one\n");
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::in_dir(dir.path()).start().await;
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 0, &daemon);
    answers(daemon.listen, "one").await;

    // Starts late, so the client is killed well before the switch.
    project.set_env("IT_GREETING=two\nIT_DELAY=3\n");
    let mut client = spawn_deploy(&project, &daemon);
    wait_for_container("cvp-client-kill-web-green", "running", &daemon).await;
    client.kill().unwrap();
    client.wait().unwrap();

    let start = Instant::now();
    loop {
        let (_, status) = daemon
            .request(Method::GET, "/v1/projects/cvp-client-kill/status", None)
            .await;
        if status["busy"].is_null() && status["apps"][0]["live"]["color"] == "green" {
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the deploy did not finish without its client: {status}\n{}",
            daemon.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    answers(daemon.listen, "two").await;
    let out = project.cutover(&daemon, &["history", "--json"]);
    expect_code(&out, 0, &daemon);
    let history: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let results: Vec<&str> = history
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["ok", "ok"], "{history:?}");

    // The route change was saved when it happened: a daemon that dies now
    // restarts on green.
    let version = status_version(&project, &daemon);
    kill_daemon(&mut daemon).await;
    let route = persisted(&daemon, "cvp-client-kill/web");
    assert_eq!(route["color"], "green", "{route}");
    assert_eq!(route["version"], version.as_str(), "{route}");
}

fn status_version(project: &Project, daemon: &Daemon) -> String {
    let out = project.cutover(daemon, &["status", "--json"]);
    expect_code(&out, 0, daemon);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    status["apps"][0]["live"]["version"]
        .as_str()
        .unwrap_or_else(|| panic!("{status}"))
        .to_string()
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn ws_connect(addr: SocketAddr) -> Ws {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (ws, resp) = tokio_tungstenite::client_async("ws://cutover/ws", stream)
        .await
        .unwrap();
    assert_eq!(resp.status(), hyper::StatusCode::SWITCHING_PROTOCOLS);
    ws
}

async fn next_text(ws: &mut Ws) -> String {
    match tokio::time::timeout(PATIENCE, ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => t.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Failures #6 and #8 through a real container: during `cutover deploy`
/// every request answers 200 from one color or the other; a WebSocket open
/// on blue keeps working after the switch, also after the deploy has ended
/// (blue retires in the background), and is closed with 1012 (service
/// restart) at `websocket_drain_timeout`; a new one lands on green; blue is
/// stopped once drained.
#[tokio::test]
async fn websockets_are_drained_not_cut_by_a_deploy() {
    images();
    // A drain deadline far enough out that the deploy surely ends first.
    let project = Project::new("cvp-ws", WEB, "IT_GREETING=one\nIT_WS_DRAIN=8s\n");
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 0, &daemon);
    answers(daemon.listen, "one").await;

    let mut old = ws_connect(daemon.listen).await;
    assert_eq!(next_text(&mut old).await, "one");

    project.set_env("IT_GREETING=two\nIT_WS_DRAIN=8s\n");
    let client = spawn_deploy(&project, &daemon);
    // Bounded in count and time; every answer until the switch and a while
    // after it must be a success.
    let mut seen_two = 0;
    let start = Instant::now();
    for _ in 0..5_000 {
        let (status, body) = cutover_test::client::get(daemon.listen, "cutover", "/")
            .await
            .unwrap_or_else(|e| panic!("a request failed during the deploy: {e}"));
        assert_eq!(status, 200, "{body}\n{}", daemon.stderr());
        assert!(body == "one" || body == "two", "{body}");
        if body == "two" {
            seen_two += 1;
            if seen_two == 20 {
                break;
            }
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the deploy never switched:\n{}",
            daemon.stderr()
        );
    }
    assert_eq!(seen_two, 20);

    // The deploy is over while blue still serves its WebSocket.
    let out = wait_output(client).await;
    expect_code(&out, 0, &daemon);
    let events = json_lines(&out);
    assert_eq!(events.last().unwrap()["event"], "finished", "{events:?}");
    assert_eq!(events.last().unwrap()["outcome"], "ok", "{events:?}");
    old.send(Message::text("still there?")).await.unwrap();
    assert_eq!(next_text(&mut old).await, "still there?");
    let out = project.cutover(&daemon, &["status", "--json"]);
    expect_code(&out, 0, &daemon);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["apps"][0]["kept"][0]["retiring"], true, "{status}");
    assert_eq!(container_state("cvp-ws-web-blue"), "running");
    let mut new = ws_connect(daemon.listen).await;
    assert_eq!(next_text(&mut new).await, "two");

    let close = tokio::time::timeout(PATIENCE, async {
        loop {
            match old.next().await {
                Some(Ok(Message::Close(frame))) => {
                    // Answer the close like a browser does.
                    while let Some(Ok(_)) = old.next().await {}
                    return frame.map(|f| u16::from(f.code));
                }
                Some(Ok(_)) => continue,
                other => panic!("the WebSocket ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("a close frame at the drain deadline");
    assert_eq!(close, Some(1012));
    wait_for_container("cvp-ws-web-blue", "exited", &daemon).await;
    new.send(Message::text("hi")).await.unwrap();
    assert_eq!(next_text(&mut new).await, "hi");
}

/// Removes a second project's resources, before and after, like
/// [`Project`] does for its own.
struct Labelled(&'static str);

impl Labelled {
    fn new(project: &'static str) -> Labelled {
        remove_by_label(project);
        Labelled(project)
    }
}

impl Drop for Labelled {
    fn drop(&mut self) {
        remove_by_label(self.0);
    }
}

/// The hosts and the greeting come from the environment file: one
/// description, deployed as staging and as production.
const STAGED: &str = r#"
services:
  web:
    image: cutover-test-origin:latest
    env_file: [app.env]
    environment:
      NAME: ${IT_GREETING}
    depends_on: [cache]
    x-cutover:
      port: 8080
      hosts: ["${IT_HOST}"]
      drain_timeout: 1s
      keep: 1
  cache:
    image: cutover-test-redis:latest
"#;

async fn answer_for_host(addr: SocketAddr, host: &str) -> (u16, String) {
    let (status, body) = cutover_test::client::get(addr, host, "/").await.unwrap();
    (status.as_u16(), body)
}

async fn wait_for_host(addr: SocketAddr, host: &str, want: &str) {
    let start = Instant::now();
    loop {
        let (status, body) = answer_for_host(addr, host).await;
        if status == 200 && body == want {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{host} never answered {want:?}; last {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Failure #7 (and #2 for `env_file`): staging and production from the same
/// compose file (`-p` and `--env-file`) live side by side: own containers,
/// networks and hosts. An experiment in staging, previewed by `plan`, does
/// not touch production, and `down` of staging leaves production serving.
#[tokio::test]
async fn named_environments_from_one_compose_file() {
    images();
    let project = Project::new("cvp-staging", STAGED, "");
    let _production = Labelled::new("cvp-production");
    let dir = project.path();
    std::fs::write(dir.join("app.env"), "FEATURE=off\n").unwrap();
    std::fs::write(
        dir.join("staging.env"),
        "IT_GREETING=staging\nIT_HOST=staging.test\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("production.env"),
        "IT_GREETING=production\nIT_HOST=production.test\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(state.path()).start().await;
    let staging = ["-p", "cvp-staging", "--env-file", "staging.env"];
    let production = ["-p", "cvp-production", "--env-file", "production.env"];
    let with = |env: &[&'static str], args: &[&'static str]| -> Vec<&'static str> {
        args.iter().chain(env).copied().collect()
    };

    for env in [&staging, &production] {
        let out = project.cutover(&daemon, &with(env, &["deploy"]));
        expect_code(&out, 0, &daemon);
    }
    wait_for_host(daemon.listen, "staging.test", "staging").await;
    wait_for_host(daemon.listen, "production.test", "production").await;
    for name in ["cvp-staging", "cvp-production"] {
        assert_eq!(container_state(&format!("{name}-web-blue")), "running");
        assert_eq!(container_state(&format!("{name}-cache")), "running");
        let attached = docker(&[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}} {{end}}",
            &format!("{name}_default"),
        ]);
        let mut attached: Vec<&str> = attached.split_whitespace().collect();
        attached.sort();
        assert_eq!(
            attached,
            [format!("{name}-cache"), format!("{name}-web-blue")]
        );
    }
    let production_id = docker(&["inspect", "-f", "{{.Id}}", "cvp-production-web-blue"]);

    // The experiment: a changed env_file, previewed, then deployed to
    // staging only.
    std::fs::write(dir.join("app.env"), "FEATURE=on\n").unwrap();
    let out = project.cutover(&daemon, &with(&staging, &["plan"]));
    expect_code(&out, 0, &daemon);
    let plan = text(&out.stdout);
    assert!(plan.contains("env keys changed FEATURE"), "{plan}");
    assert!(
        plan.contains("deploy app web to green as cvp-staging-web-green"),
        "{plan}"
    );
    let out = project.cutover(&daemon, &with(&staging, &["deploy", "--json"]));
    expect_code(&out, 0, &daemon);
    let switched = json_lines(&out)
        .into_iter()
        .find(|e| e["event"] == "switched")
        .unwrap();
    assert_eq!(switched["color"], "green");
    assert_eq!(container_state("cvp-staging-web-green"), "running");
    assert_eq!(
        docker(&["inspect", "-f", "{{.Id}}", "cvp-production-web-blue"]),
        production_id
    );
    assert_eq!(container_state("cvp-production-web-green"), "");
    wait_for_host(daemon.listen, "production.test", "production").await;

    let out = project.cutover(&daemon, &with(&staging, &["down"]));
    expect_code(&out, 0, &daemon);
    assert_eq!(answer_for_host(daemon.listen, "staging.test").await.0, 404);
    wait_for_host(daemon.listen, "production.test", "production").await;
    assert_eq!(container_state("cvp-production-cache"), "running");
}

/// A network that is not cutover's: removed before and after.
struct ExternalNetwork(&'static str);

impl ExternalNetwork {
    fn absent(name: &'static str) -> ExternalNetwork {
        docker(&["network", "rm", name]);
        ExternalNetwork(name)
    }

    fn create(&self) {
        let out = std::process::Command::new("docker")
            .args(["network", "create", self.0])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

impl Drop for ExternalNetwork {
    fn drop(&mut self) {
        docker(&["network", "rm", self.0]);
    }
}

const NETWORKED: &str = r#"
name: PROJECT
services:
  web:
    image: cutover-test-origin:latest
    environment:
      NAME: networked
    networks: [cvp-app-network]
    depends_on: [cache]
    x-cutover:
      port: 8080
      drain_timeout: 1s
  cache:
    image: cutover-test-redis:latest
    networks: [cvp-app-network]
PORTS
networks:
  cvp-app-network:
    external: true
"#;

/// Failures #1, #4 and #11: an external network is used under the exact
/// name written (and a missing one is exit 2 with the command that creates
/// it); the accessory has no host port unless published, and publishing
/// Redis on every interface is warned about; a container that merely looks
/// like one of the project's by name is neither listed nor removed.
#[tokio::test]
async fn exact_network_names_and_an_accessory_kept_off_the_host() {
    images();
    let network = ExternalNetwork::absent("cvp-app-network");
    let project = Project::new("cvp-net", &NETWORKED.replace("PORTS\n", ""), "");
    // Named like the project's app, but not labelled by cutover.
    let lookalike = "cvp-net-web-blue-copy";
    let _lookalike = LooseContainer::absent(lookalike);
    let state = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(state.path()).start().await;

    for command in ["plan", "deploy"] {
        let out = project.cutover(&daemon, &[command]);
        expect_code(&out, 2, &daemon);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(
                "network cvp-app-network (networks.cvp-app-network, external) does not exist"
            ),
            "{stderr}"
        );
        assert!(
            stderr.contains("hint: create it with `docker network create cvp-app-network`"),
            "{stderr}"
        );
    }
    assert_eq!(
        docker(&["ps", "-aq", "--filter", "label=cutover.project=cvp-net"]),
        ""
    );
    network.create();

    // Published on every interface: the plan warns.
    std::fs::write(
        project.path().join("compose.yaml"),
        NETWORKED
            .replace("PROJECT", "cvp-net")
            .replace("PORTS\n", "    ports: [\"6379:6379\"]\n"),
    )
    .unwrap();
    let out = project.cutover(&daemon, &["plan"]);
    expect_code(&out, 0, &daemon);
    let plan = text(&out.stdout);
    let warning = plan
        .lines()
        .find(|l| l.starts_with("warning: "))
        .unwrap_or_else(|| panic!("{plan}"));
    assert!(
        warning.contains("cache publishes Redis port 6379 on every interface"),
        "{plan}"
    );
    std::fs::write(
        project.path().join("compose.yaml"),
        NETWORKED
            .replace("PROJECT", "cvp-net")
            .replace("PORTS\n", ""),
    )
    .unwrap();

    let status = docker(&[
        "run",
        "-d",
        "--name",
        lookalike,
        "--network",
        "cvp-app-network",
        "cutover-test-origin:latest",
    ]);
    assert!(!status.is_empty(), "docker run {lookalike} failed");
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 0, &daemon);
    answers(daemon.listen, "networked").await;

    // Not published: no host port, reachable by name on the network.
    assert_eq!(docker(&["port", "cvp-net-cache"]).trim(), "");
    let resolves = std::process::Command::new("docker")
        .args(["exec", "cvp-net-web-blue", "getent", "hosts", "cache"])
        .output()
        .unwrap();
    assert!(resolves.status.success(), "{}", text(&resolves.stderr));
    // Exactly the network written, no project-prefixed copy.
    for name in ["cvp-net-web-blue", "cvp-net-cache"] {
        let networks = docker(&[
            "inspect",
            "-f",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
            name,
        ]);
        assert_eq!(networks.trim(), "cvp-app-network", "{name}");
    }
    assert_eq!(
        docker(&["network", "ls", "-q", "--filter", "name=cvp-net_"]),
        ""
    );

    let out = project.cutover(&daemon, &["status", "--json"]);
    expect_code(&out, 0, &daemon);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = status["networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "cvp-app-network")
        .unwrap_or_else(|| panic!("{status}"));
    let attached: Vec<&str> = listed["attached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(attached.contains(&"cvp-net-web-blue"), "{status}");
    assert!(attached.contains(&"cvp-net-cache"), "{status}");
    assert_eq!(status["accessories"][0]["published"], serde_json::json!([]));
    // The network shows everyone on it; the project's own containers are
    // those it labelled.
    assert!(attached.contains(&lookalike), "{status}");
    for list in ["apps", "accessories"] {
        assert!(!status[list].to_string().contains(lookalike), "{status}");
    }

    let out = project.cutover(&daemon, &["down"]);
    expect_code(&out, 0, &daemon);
    assert_eq!(container_state(lookalike), "running");
    assert_eq!(container_state("cvp-net-cache"), "");
    assert!(
        !docker(&["network", "inspect", "-f", "{{.Name}}", "cvp-app-network"]).is_empty(),
        "down removed the external network"
    );
}

/// A container that is not cutover's: removed before and after.
struct LooseContainer(&'static str);

impl LooseContainer {
    fn absent(name: &'static str) -> LooseContainer {
        docker(&["rm", "-f", name]);
        LooseContainer(name)
    }
}

impl Drop for LooseContainer {
    fn drop(&mut self) {
        docker(&["rm", "-f", self.0]);
    }
}
