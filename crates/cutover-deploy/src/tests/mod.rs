//! Deploy logic against the in-memory engine and a real proxy whose
//! targets are in-process origins on loopback.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use cutover_core::compose::{load, ComposeFile, LoadInput, NoFiles, ResolvedProject};
use cutover_core::progress::{DeployCommand, Outcome, ProgressEvent, PullPolicy};
use cutover_core::service::Color;
use cutover_docker::fake::{FakeEngine, Op};
use cutover_docker::labels;
use cutover_proxy::{Proxy, ProxyConfig};
use cutover_test::Origin;

use crate::events::Receiver;
use crate::owner::Owner;
use crate::{Addressing, DeployEngine};

pub fn compose(greeting: &str, keep: u32) -> ResolvedProject {
    compose_with(greeting, keep, "")
}

pub fn compose_with(greeting: &str, keep: u32, redis_extra: &str) -> ResolvedProject {
    parse(compose_yaml(greeting, keep, redis_extra))
}

/// Old colors keep their WebSockets for an hour: only a client closing them
/// ends their drain.
pub fn compose_long_ws_drain(greeting: &str, keep: u32) -> ResolvedProject {
    let yaml = compose_yaml(greeting, keep, "");
    assert!(yaml.contains("websocket_drain_timeout: 1s"));
    parse(yaml.replace("websocket_drain_timeout: 1s", "websocket_drain_timeout: 1h"))
}

fn compose_yaml(greeting: &str, keep: u32, redis_extra: &str) -> String {
    format!(
        r#"
name: athens
services:
  web:
    image: athens:1
    environment:
      REDIS_HOST: redis
      GREETING: "{greeting}"
    depends_on: [redis]
    x-cutover:
      port: 8080
      health: {{path: /up, interval: 100ms, timeout: 1s}}
      deploy_timeout: 2s
      drain_timeout: 1s
      websocket_drain_timeout: 1s
      keep: {keep}
  redis:
    image: redis:7
    volumes: [redis-data:/data]
{redis_extra}volumes:
  redis-data: {{}}
"#
    )
}

pub(crate) fn parse(yaml: String) -> ResolvedProject {
    parse_with_env(yaml, &[])
}

/// [`parse`] with these variables in the project's environment.
pub(crate) fn parse_with_env(yaml: String, env: &[(&str, &str)]) -> ResolvedProject {
    load(
        &LoadInput {
            files: vec![ComposeFile {
                path: "compose.yaml".into(),
                content: yaml,
            }],
            project_dir: "/srv/athens".into(),
            project_name: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
        &NoFiles,
    )
    .unwrap()
}

pub fn cmd(project: ResolvedProject) -> DeployCommand {
    DeployCommand {
        project,
        services: vec![],
        force: false,
        version: None,
        pull: PullPolicy::Missing,
        wait_lock: std::time::Duration::ZERO,
        adopt: false,
        registry_auth: Default::default(),
        deploy_id: None,
        remote: false,
        build_contexts: Default::default(),
        stage: None,
    }
}

pub struct Harness {
    pub fake: FakeEngine,
    pub proxy: Proxy,
    pub engine: DeployEngine,
    pub _dir: tempfile::TempDir,
    /// Container name -> origin standing in for it.
    pub origins: Arc<Mutex<HashMap<String, SocketAddr>>>,
    pub blue: Origin,
    pub green: Origin,
}

/// A deploy engine on `fake`, with its state (and so its daemon identity)
/// in `dir`, reaching app containers at the origins standing in for them.
pub fn engine_on(
    fake: &FakeEngine,
    proxy: Proxy,
    dir: &std::path::Path,
    origins: &Arc<Mutex<HashMap<String, SocketAddr>>>,
) -> DeployEngine {
    let map = origins.clone();
    DeployEngine::new(
        Arc::new(fake.clone()),
        proxy,
        dir.into(),
        Arc::new(Owner::load(dir).unwrap()),
    )
    .with_addressing(Addressing::Custom(Arc::new(move |info, _, _| {
        map.lock()
            .unwrap()
            .get(&info.name)
            .copied()
            .ok_or_else(|| format!("no origin for {}", info.name))
    })))
}

impl Harness {
    pub async fn new() -> Harness {
        let fake = FakeEngine::new();
        fake.add_image("athens:1");
        fake.add_image("redis:7");
        let proxy = Proxy::new(ProxyConfig::default());
        let dir = tempfile::tempdir().unwrap();
        let origins: Arc<Mutex<HashMap<String, SocketAddr>>> = Arc::default();
        let blue = Origin::start("blue").await.unwrap();
        let green = Origin::start("green").await.unwrap();
        origins
            .lock()
            .unwrap()
            .insert("athens-web-blue".into(), blue.addr());
        origins
            .lock()
            .unwrap()
            .insert("athens-web-green".into(), green.addr());
        let engine = engine_on(&fake, proxy.clone(), dir.path(), &origins);
        Harness {
            fake,
            proxy,
            engine,
            _dir: dir,
            origins,
            blue,
            green,
        }
    }

    /// The proxy serving on loopback, for clients that go through it.
    pub async fn serve(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = self.proxy.clone();
        tokio::spawn(async move {
            proxy
                .serve(listener, tokio_util::sync::CancellationToken::new())
                .await
        });
        addr
    }

    /// Until the old colors handed to retirement have been stopped or
    /// removed.
    pub async fn settle(&self) {
        self.engine.retirements().settled().await;
    }

    pub fn exists(&self, name: &str) -> bool {
        self.fake.container_names().iter().any(|n| n == name)
    }

    pub fn live(&self) -> Option<(Color, Option<String>)> {
        self.proxy
            .status()
            .into_iter()
            .find(|s| s.name == "athens/web")
            .map(|s| (s.active.color, s.active.version))
    }

    pub fn running(&self, name: &str) -> bool {
        futures_util::FutureExt::now_or_never(cutover_docker::Engine::inspect_container(
            &self.fake, name,
        ))
        .unwrap()
        .unwrap()
        .is_some_and(|c| c.state == cutover_docker::ContainerState::Running)
    }
}

pub async fn collect(mut rx: Receiver) -> Vec<ProgressEvent> {
    let mut out = Vec::new();
    while let Some(e) = rx.recv().await {
        out.push(e);
    }
    out
}

pub fn outcome(events: &[ProgressEvent]) -> (Outcome, String) {
    match events.last() {
        Some(ProgressEvent::Finished {
            outcome, message, ..
        }) => (*outcome, message.clone()),
        other => panic!("the stream did not end with Finished: {other:?}\n{events:#?}"),
    }
}

mod api;
mod calls;
mod deploys;
mod down_status;
mod owner;
mod reconcile;
mod replicas;
mod retire;
mod rollback;
mod stage;
mod swarm_specs;
