//! The deploy engine against the real Docker engine: the test origin image
//! deployed blue/green beside a Redis accessory. Fails (never skips) when
//! Docker is not usable. Everything a test creates carries its project's
//! label and is removed by label at the start and the end.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use cutover_core::compose::{load, ComposeFile, LoadInput, NoFiles, ResolvedProject};
use cutover_core::progress::{DeployCommand, Outcome, ProgressEvent, PullPolicy};
use cutover_deploy::down::DownCommand;
use cutover_deploy::owner::Owner;
use cutover_deploy::DeployEngine;
use cutover_docker::labels::LabelFilter;
use cutover_docker::{ContainerState, DockerEngine, Engine};
use cutover_proxy::{Proxy, ProxyConfig};
use tokio_util::sync::CancellationToken;

/// Removes everything labelled with the project, on creation and on drop
/// (also when the test panics).
struct Cleanup(String);

impl Cleanup {
    fn new(project: &str) -> Cleanup {
        let c = Cleanup(project.to_string());
        c.run();
        c
    }

    fn run(&self) {
        let label = format!("label=cutover.project={}", self.0);
        let ids = |args: &[&str]| -> Vec<String> {
            let out = Command::new("docker")
                .args(args)
                .output()
                .expect("docker runs");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .filter(|l| !l.is_empty())
                .collect()
        };
        let containers = ids(&["ps", "-aq", "--filter", &label]);
        if !containers.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&containers)
                .output();
        }
        let networks = ids(&["network", "ls", "-q", "--filter", &label]);
        if !networks.is_empty() {
            let _ = Command::new("docker")
                .args(["network", "rm"])
                .args(&networks)
                .output();
        }
        let volumes = ids(&["volume", "ls", "-q", "--filter", &label]);
        if !volumes.is_empty() {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f"])
                .args(&volumes)
                .output();
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.run();
    }
}

fn project(name: &str, origin: &str, redis: &str, greeting: &str, port: &str) -> ResolvedProject {
    let yaml = format!(
        r#"
name: {name}
services:
  web:
    image: {origin}
    environment:
      NAME: "{greeting}"
      PORT: "{port}"
      REDIS_HOST: redis
    depends_on: [redis]
    stop_grace_period: 2s
    x-cutover:
      port: 8080
      health: {{path: /up, interval: 200ms, timeout: 1s}}
      deploy_timeout: 5s
      drain_timeout: 2s
      websocket_drain_timeout: 2s
      keep: 1
  redis:
    image: {redis}
    volumes: [data:/data]
volumes:
  data: {{}}
"#
    );
    load(
        &LoadInput {
            files: vec![ComposeFile {
                path: "compose.yaml".into(),
                content: yaml,
            }],
            project_dir: "/tmp".into(),
            project_name: None,
            env: BTreeMap::new(),
        },
        &NoFiles,
    )
    .unwrap()
}

fn cmd(p: ResolvedProject) -> DeployCommand {
    DeployCommand {
        project: p,
        services: vec![],
        force: false,
        version: None,
        pull: PullPolicy::Never,
        wait_lock: Duration::ZERO,
        adopt: false,
        registry_auth: Default::default(),
        deploy_id: None,
        remote: false,
        build_contexts: Default::default(),
        stage: None,
    }
}

async fn collect(mut rx: cutover_deploy::events::Receiver) -> Vec<ProgressEvent> {
    let mut out = Vec::new();
    while let Some(e) = rx.recv().await {
        out.push(e);
    }
    out
}

fn outcome(ev: &[ProgressEvent]) -> Outcome {
    match ev.last() {
        Some(ProgressEvent::Finished { outcome, .. }) => *outcome,
        other => panic!("no Finished event: {other:?}"),
    }
}

struct Setup {
    engine: DeployEngine,
    docker: Arc<DockerEngine>,
    proxy_addr: SocketAddr,
    _shutdown: tokio_util::sync::DropGuard,
    _state: tempfile::TempDir,
}

async fn setup() -> Setup {
    cutover_test::images::require_docker();
    let docker = Arc::new(
        DockerEngine::connect()
            .await
            .unwrap_or_else(|e| panic!("this test needs Docker: {e}")),
    );
    let proxy = Proxy::new(ProxyConfig {
        access_log: false,
        ..ProxyConfig::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let p = proxy.clone();
    let s = shutdown.clone();
    tokio::spawn(async move { p.serve(listener, s).await });
    let state = tempfile::tempdir().unwrap();
    let engine = DeployEngine::new(
        docker.clone(),
        proxy,
        state.path().into(),
        Arc::new(Owner::load(state.path()).unwrap()),
    );
    Setup {
        engine,
        docker,
        proxy_addr,
        _shutdown: shutdown.drop_guard(),
        _state: state,
    }
}

async fn body(addr: SocketAddr) -> String {
    let (status, body) = cutover_test::client::get(addr, "athens.test", "/")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

async fn app_containers(docker: &DockerEngine, project: &str) -> Vec<(String, ContainerState)> {
    let mut v: Vec<(String, ContainerState)> = docker
        .list_containers(&LabelFilter::project(project).with("cutover.role", "app"))
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.state))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_env_rollout_and_a_failed_deploy_on_docker() {
    let origin = cutover_test::images::origin_image();
    let redis = cutover_test::images::redis_image();
    let name = format!("cdit{}a", std::process::id());
    let _cleanup = Cleanup::new(&name);
    let s = setup().await;

    let ev = collect(
        s.engine
            .deploy(cmd(project(&name, origin, redis, "one", "8080"))),
    )
    .await;
    assert_eq!(outcome(&ev), Outcome::Ok, "{ev:#?}");
    assert_eq!(body(s.proxy_addr).await, "one");
    // The app resolves the accessory by its service name on the exact
    // network name (failures #1, #3), and Redis is not published (#11).
    let blue = format!("{name}-web-blue");
    let out = s
        .docker
        .exec(&blue, &["getent".into(), "hosts".into(), "redis".into()])
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{out:?}");
    let redis_c = s
        .docker
        .inspect_container(&format!("{name}-redis"))
        .await
        .unwrap()
        .unwrap();
    assert!(redis_c.ports.is_empty(), "{:?}", redis_c.ports);
    assert!(redis_c.networks.contains_key(&format!("{name}_default")));

    // Unchanged: nothing to do.
    let ev = collect(
        s.engine
            .deploy(cmd(project(&name, origin, redis, "one", "8080"))),
    )
    .await;
    assert_eq!(outcome(&ev), Outcome::UpToDate, "{ev:#?}");

    // An env edit is a new version, rolled out to green (failure #2).
    let ev = collect(
        s.engine
            .deploy(cmd(project(&name, origin, redis, "two", "8080"))),
    )
    .await;
    assert_eq!(outcome(&ev), Outcome::Ok, "{ev:#?}");
    assert_eq!(body(s.proxy_addr).await, "two");
    let green = format!("{name}-web-green");
    // The deploy ended at the switch; blue is stopped once drained.
    s.engine.retirements().settled().await;
    let apps = app_containers(&s.docker, &name).await;
    assert!(
        apps.contains(&(green.clone(), ContainerState::Running)),
        "{apps:?}"
    );
    assert!(
        apps.contains(&(blue.clone(), ContainerState::Exited)),
        "{apps:?}"
    );

    // A version that never becomes healthy (listens on the wrong port):
    // failed, its container gone, green still serving (failures #5, #9).
    let ev = collect(
        s.engine
            .deploy(cmd(project(&name, origin, redis, "three", "9999"))),
    )
    .await;
    assert_eq!(outcome(&ev), Outcome::Failed, "{ev:#?}");
    assert!(
        ev.iter()
            .any(|e| matches!(e, ProgressEvent::Logs { lines, .. }
        if lines.iter().any(|l| l.contains("listening on 0.0.0.0:9999")))),
        "{ev:#?}"
    );
    assert_eq!(body(s.proxy_addr).await, "two");
    let apps = app_containers(&s.docker, &name).await;
    let running: Vec<_> = apps
        .iter()
        .filter(|(_, st)| *st == ContainerState::Running)
        .collect();
    assert_eq!(
        running,
        vec![&(green.clone(), ContainerState::Running)],
        "{apps:?}"
    );
    assert!(!apps.iter().any(|(n, _)| *n == blue), "{apps:?}");

    // Rollback brings "one" back from its recorded spec.
    let ev = collect(s.engine.rollback(
        name.clone(),
        cutover_core::progress::RollbackCommand {
            service: None,
            to: None,
            wait_lock: Duration::ZERO,
        },
    ))
    .await;
    assert_eq!(outcome(&ev), Outcome::Ok, "{ev:#?}");
    assert_eq!(body(s.proxy_addr).await, "one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_keeps_the_volume_unless_asked_on_docker() {
    let origin = cutover_test::images::origin_image();
    let redis = cutover_test::images::redis_image();
    let name = format!("cdit{}b", std::process::id());
    let _cleanup = Cleanup::new(&name);
    let s = setup().await;
    let ev = collect(
        s.engine
            .deploy(cmd(project(&name, origin, redis, "one", "8080"))),
    )
    .await;
    assert_eq!(outcome(&ev), Outcome::Ok, "{ev:#?}");
    let volume = format!("{name}_data");
    let network = format!("{name}_default");

    let ev = collect(s.engine.down(name.clone(), DownCommand::default())).await;
    assert_eq!(outcome(&ev), Outcome::Ok, "{ev:#?}");
    assert!(s
        .docker
        .list_containers(&LabelFilter::project(&name))
        .await
        .unwrap()
        .is_empty());
    assert!(s.docker.inspect_network(&network).await.unwrap().is_none());
    assert!(s.docker.inspect_volume(&volume).await.unwrap().is_some());
    assert!(s.engine.proxy().status().is_empty());

    let ev = collect(s.engine.down(
        name.clone(),
        DownCommand {
            volumes: true,
            ..DownCommand::default()
        },
    ))
    .await;
    assert_eq!(outcome(&ev), Outcome::Ok, "{ev:#?}");
    assert!(s.docker.inspect_volume(&volume).await.unwrap().is_none());
}
