//! Deploy logic against the in-memory engine and a real proxy whose
//! targets are in-process origins on loopback.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use cutover_core::compose::{load, ComposeFile, EnvFileReader, LoadInput, ResolvedProject};
use cutover_core::progress::{DeployCommand, Outcome, ProgressEvent, PullPolicy};
use cutover_core::service::Color;
use cutover_docker::fake::{FakeEngine, Op};
use cutover_docker::labels;
use cutover_proxy::{Proxy, ProxyConfig};
use cutover_test::Origin;

use crate::events::Receiver;
use crate::{Addressing, DeployEngine};

struct NoEnvFiles;

impl EnvFileReader for NoEnvFiles {
    fn read_env_file(
        &self,
        _: &Path,
    ) -> Result<Option<Vec<(String, String)>>, cutover_core::diag::Report> {
        Ok(None)
    }
}

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

fn parse(yaml: String) -> ResolvedProject {
    load(
        &LoadInput {
            files: vec![ComposeFile {
                path: "compose.yaml".into(),
                content: yaml,
            }],
            project_dir: "/srv/athens".into(),
            project_name: None,
            env: BTreeMap::new(),
        },
        &NoEnvFiles,
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
        let map = origins.clone();
        let engine = DeployEngine::new(Arc::new(fake.clone()), proxy.clone(), dir.path().into())
            .with_addressing(Addressing::Custom(Arc::new(move |info, _, _| {
                map.lock()
                    .unwrap()
                    .get(&info.name)
                    .copied()
                    .ok_or_else(|| format!("no origin for {}", info.name))
            })));
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

#[tokio::test]
async fn fresh_deploy_creates_everything_with_labels_and_routes_blue() {
    let h = Harness::new().await;
    let saved = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = saved.clone();
    let engine = h.engine.clone().on_routes_changed(Arc::new(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async {})
    }));
    let ev = collect(engine.deploy(cmd(compose("hello", 2)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    // The daemon gets to persist the proxy's state right after the switch.
    assert_eq!(saved.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(h.fake.network_names(), vec!["athens_default"]);
    assert_eq!(h.fake.volume_names(), vec!["athens_redis-data"]);
    assert!(h.running("athens-redis") && h.running("athens-web-blue"));
    let spec = h.fake.spec_of("athens-web-blue").unwrap();
    assert_eq!(spec.labels[labels::PROJECT], "athens");
    assert_eq!(spec.labels[labels::SERVICE], "web");
    assert_eq!(spec.labels[labels::COLOR], "blue");
    assert_eq!(spec.labels[labels::ROLE], "app");
    assert_eq!(spec.labels[labels::VERSION].len(), 12);
    assert!(spec.labels.contains_key(labels::CONFIG_HASH));
    // The app answers to its service name on the project network, and
    // redis to its own (failure #3).
    assert!(spec.networks[0].aliases.contains(&"web".to_string()));
    let redis = h.fake.spec_of("athens-redis").unwrap();
    assert!(redis.networks[0].aliases.contains(&"redis".to_string()));
    assert_eq!(redis.labels[labels::ROLE], "accessory");
    assert!(redis.ports.is_empty());
    assert_eq!(h.live().unwrap().0, Color::Blue);
    assert!(ev.iter().any(|e| matches!(
        e,
        ProgressEvent::Switched {
            color: Color::Blue,
            ..
        }
    )));
    // Traffic reached the blue origin's health endpoint through the gate.
    assert!(h.blue.requests() > 0);
    let hist = h.engine.inner.history.read("athens", Some("web"));
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].result, Outcome::Ok);
}

#[tokio::test]
async fn unchanged_version_is_up_to_date_and_force_redeploys() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    h.fake.clear_calls();
    let ev = collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    let (o, msg) = outcome(&ev);
    assert_eq!(o, Outcome::UpToDate, "{ev:#?}");
    assert!(msg.starts_with("up to date: web "), "{msg}");
    assert!(h.fake.calls_of(Op::CreateContainer).is_empty());

    let mut forced = cmd(compose("hello", 2));
    forced.force = true;
    let ev = collect(h.engine.deploy(forced)).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(h.live().unwrap().0, Color::Green);
}

#[tokio::test]
async fn env_change_rolls_out_to_the_other_color_and_keeps_the_old_stopped() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    let ev = collect(h.engine.deploy(cmd(compose("bonjour", 2)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(h.live().unwrap().0, Color::Green);
    let green = h.fake.spec_of("athens-web-green").unwrap();
    assert_eq!(green.env["GREETING"], "bonjour");
    assert!(h.running("athens-web-green"));
    // Drained, stopped, kept for rollback.
    h.settle().await;
    assert!(!h.running("athens-web-blue"));
    assert!(h
        .fake
        .container_names()
        .contains(&"athens-web-blue".to_string()));
    // The accessory was left alone.
    assert_eq!(
        h.fake
            .calls_of(Op::CreateContainer)
            .iter()
            .filter(|c| c.as_str() == "athens-redis")
            .count(),
        1
    );
}

#[tokio::test]
async fn failed_health_leaves_nothing_behind_and_the_old_color_serving() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    h.green.set_healthy(false);
    let ev = collect(h.engine.deploy(cmd(compose("broken", 2)))).await;
    let (o, msg) = outcome(&ev);
    assert_eq!(o, Outcome::Failed, "{ev:#?}");
    assert!(msg.contains("athens-web-blue"), "{msg}");
    assert!(ev.iter().any(
        |e| matches!(e, ProgressEvent::Logs { container, .. } if container == "athens-web-green")
    ));
    assert!(ev
        .iter()
        .any(|e| matches!(e, ProgressEvent::StepFailed { .. })));
    assert!(!h
        .fake
        .container_names()
        .contains(&"athens-web-green".to_string()));
    assert_eq!(h.live().unwrap().0, Color::Blue);
    assert!(h.running("athens-web-blue"));
    assert!(h.engine.inner.journal.pending().is_empty());
    let hist = h.engine.inner.history.read("athens", Some("web"));
    assert_eq!(hist.last().unwrap().result, Outcome::Failed);
}

#[tokio::test]
async fn a_held_lock_times_out_naming_the_holder() {
    let h = Harness::new().await;
    let _held = h
        .engine
        .inner
        .locks
        .acquire(
            "athens",
            crate::lock::Holder {
                operation: "rollback".into(),
                version: Some("v7".into()),
                since: std::time::SystemTime::now(),
            },
            std::time::Duration::ZERO,
        )
        .await
        .unwrap();
    let ev = collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    let (o, msg) = outcome(&ev);
    assert_eq!(o, Outcome::LockTimeout);
    assert!(msg.contains("locked by rollback of version v7"), "{msg}");
    assert!(h.fake.calls_of(Op::CreateContainer).is_empty());
}

#[tokio::test]
async fn keep_prunes_versions_past_it() {
    let h = Harness::new().await;
    for g in ["one", "two", "three", "four"] {
        let ev = collect(h.engine.deploy(cmd(compose(g, 1)))).await;
        assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    }
    // Live: "four"; kept: "three" only.
    let mut apps: Vec<String> = h
        .fake
        .container_names()
        .into_iter()
        .filter(|n| n.starts_with("athens-web"))
        .collect();
    apps.sort();
    assert_eq!(apps.len(), 2, "{apps:?}");
    let envs: Vec<String> = apps
        .iter()
        .map(|n| h.fake.spec_of(n).unwrap().env["GREETING"].clone())
        .collect();
    assert!(
        envs.contains(&"four".to_string()) && envs.contains(&"three".to_string()),
        "{envs:?}"
    );
}

#[tokio::test]
async fn keep_two_moves_the_kept_version_aside_by_version_name() {
    let h = Harness::new().await;
    for g in ["one", "two", "three"] {
        let ev = collect(h.engine.deploy(cmd(compose(g, 2)))).await;
        assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    }
    // "one" was in blue, which "three" needed: it lives on by version name.
    let names = h.fake.container_names();
    let moved: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("athens-web-") && !n.ends_with("blue") && !n.ends_with("green"))
        .collect();
    assert_eq!(moved.len(), 1, "{names:?}");
    assert_eq!(h.fake.spec_of(moved[0]).unwrap().env["GREETING"], "one");
    h.settle().await;
    assert!(!h.running(moved[0]));
}

#[tokio::test]
async fn a_disconnected_client_does_not_stop_the_deploy() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    // The client goes away while the new color is being health-gated.
    h.green.set_healthy(false);
    let mut rx = h.engine.deploy(cmd(compose("bonjour", 2)));
    loop {
        match rx.recv().await {
            Some(ProgressEvent::StepStarted { what, .. }) if what.starts_with("health check") => {
                break
            }
            Some(_) => {}
            None => panic!("the deploy ended before its health gate"),
        }
    }
    drop(rx);
    h.green.set_healthy(true);
    h.engine.tasks().close();
    h.engine.tasks().wait().await;
    h.settle().await;
    assert_eq!(h.live().unwrap().0, Color::Green);
    assert!(!h.running("athens-web-blue"));
    let hist = h.engine.history("athens", Some("web"));
    assert_eq!(hist.last().unwrap().result, Outcome::Ok);
}

#[tokio::test]
async fn plan_has_no_side_effects_and_names_env_keys_only() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    h.fake.clear_calls();
    let plan = h
        .engine
        .plan(&cmd(compose("secret-value", 2)))
        .await
        .unwrap();
    let json = serde_json::to_string(&plan).unwrap();
    assert!(json.contains("GREETING"), "{json}");
    assert!(!json.contains("secret-value"), "{json}");
    assert!(json.contains("deploy_app"), "{json}");
    for op in [
        Op::CreateContainer,
        Op::PullImage,
        Op::CreateNetwork,
        Op::StartContainer,
    ] {
        assert!(h.fake.calls_of(op).is_empty(), "{op:?}");
    }
}

#[tokio::test]
async fn a_missing_external_network_is_invalid_with_a_hint() {
    let h = Harness::new().await;
    let mut p = compose("hello", 2);
    for n in &mut p.networks {
        n.external = true;
        n.name = "ubuntu_app-network".into();
    }
    let ev = collect(h.engine.deploy(cmd(p))).await;
    let (o, _) = outcome(&ev);
    assert_eq!(o, Outcome::Invalid);
    match ev.last().unwrap() {
        ProgressEvent::Finished { hint, message, .. } => {
            assert!(message.contains("ubuntu_app-network"), "{message}");
            assert!(hint
                .as_deref()
                .unwrap_or("")
                .contains("docker network create"));
        }
        _ => unreachable!(),
    }
    assert!(h.fake.calls_of(Op::CreateContainer).is_empty());
}

fn rollback_cmd() -> cutover_core::progress::RollbackCommand {
    cutover_core::progress::RollbackCommand {
        service: None,
        to: None,
        wait_lock: std::time::Duration::ZERO,
    }
}

#[tokio::test]
async fn rollback_restarts_the_kept_version() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    collect(h.engine.deploy(cmd(compose("bonjour", 2)))).await;
    h.fake.clear_calls();
    let ev = collect(h.engine.rollback("athens".into(), rollback_cmd())).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(h.live().unwrap().0, Color::Blue);
    // The kept container itself came back: nothing pulled, built or created.
    assert!(h.fake.calls_of(Op::CreateContainer).is_empty());
    assert!(h.fake.calls_of(Op::PullImage).is_empty());
    h.settle().await;
    assert!(h.running("athens-web-blue") && !h.running("athens-web-green"));
    assert_eq!(
        h.fake.spec_of("athens-web-blue").unwrap().env["GREETING"],
        "hello"
    );
}

#[tokio::test]
async fn rollback_recreates_a_lost_version_with_its_recorded_env() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    collect(h.engine.deploy(cmd(compose("bonjour", 2)))).await;
    // Someone removed the kept container by hand.
    cutover_docker::Engine::remove_container(&h.fake, "athens-web-blue")
        .await
        .unwrap();
    let ev = collect(h.engine.rollback("athens".into(), rollback_cmd())).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(h.live().unwrap().0, Color::Blue);
    // Today's compose says "bonjour"; the recorded version said "hello".
    assert_eq!(
        h.fake.spec_of("athens-web-blue").unwrap().env["GREETING"],
        "hello"
    );
    let hist = h.engine.history("athens", Some("web"));
    assert_eq!(hist.last().unwrap().operation, "rollback");
}

#[tokio::test]
async fn rollback_to_an_unknown_version_is_invalid_and_lists_the_known() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    let mut c = cmd(compose("bonjour", 2));
    c.version = Some("v2".into());
    collect(h.engine.deploy(c)).await;
    let mut r = rollback_cmd();
    r.to = Some("v9".into());
    let ev = collect(h.engine.rollback("athens".into(), r)).await;
    let (o, msg) = outcome(&ev);
    assert_eq!(o, Outcome::Invalid);
    assert!(msg.contains("no recorded version v9"), "{msg}");
}

#[tokio::test]
async fn down_keeps_volumes_unless_asked() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    collect(h.engine.deploy(cmd(compose("bonjour", 2)))).await;
    let ev = collect(h.engine.down("athens".into(), Default::default())).await;
    let (o, msg) = outcome(&ev);
    assert_eq!(o, Outcome::Ok, "{ev:#?}");
    assert!(msg.contains("kept 1 volume"), "{msg}");
    assert!(h.fake.container_names().is_empty());
    assert!(h.fake.network_names().is_empty());
    assert_eq!(h.fake.volume_names(), vec!["athens_redis-data"]);
    assert!(h.live().is_none());

    let ev = collect(h.engine.down(
        "athens".into(),
        crate::down::DownCommand {
            volumes: true,
            ..Default::default()
        },
    ))
    .await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert!(h.fake.volume_names().is_empty());
}

#[tokio::test]
async fn down_never_removes_an_external_network() {
    let h = Harness::new().await;
    h.fake
        .add_network(&cutover_docker::NetworkSpec::new("ubuntu_app-network"));
    let mut p = compose("hello", 2);
    for n in &mut p.networks {
        n.external = true;
        n.name = "ubuntu_app-network".into();
    }
    for a in &mut p.apps {
        for n in &mut a.service.networks {
            n.name = "ubuntu_app-network".into();
        }
    }
    for a in &mut p.accessories {
        for n in &mut a.service.networks {
            n.name = "ubuntu_app-network".into();
        }
    }
    let ev = collect(h.engine.deploy(cmd(p))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    let st = h.engine.status("athens").await.unwrap();
    let net = st
        .networks
        .iter()
        .find(|n| n.name == "ubuntu_app-network")
        .unwrap();
    assert!(net.external);
    assert_eq!(net.attached, vec!["athens-redis", "athens-web-blue"]);
    collect(h.engine.down("athens".into(), Default::default())).await;
    assert_eq!(h.fake.network_names(), vec!["ubuntu_app-network"]);
}

#[tokio::test]
async fn status_shows_live_kept_accessories_and_attachments() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    let mut c = cmd(compose("bonjour", 2));
    c.version = Some("v2".into());
    collect(h.engine.deploy(c)).await;
    let st = h.engine.status("athens").await.unwrap();
    let web = &st.apps[0];
    assert_eq!(web.route, "athens/web");
    let live = web.live.as_ref().unwrap();
    assert_eq!((live.color, live.version.as_str()), (Color::Green, "v2"));
    assert_eq!(live.container, "athens-web-green");
    assert!(live.since_ms.is_some());
    assert_eq!(web.kept.len(), 1);
    assert_eq!(web.kept[0].container, "athens-web-blue");
    assert_eq!(st.accessories[0].container, "athens-redis");
    assert_eq!(st.accessories[0].state, "running");
    assert_eq!(st.networks[0].name, "athens_default");
    assert!(!st.networks[0].external);
    assert!(st.networks[0]
        .attached
        .contains(&"athens-web-green".to_string()));
    let projects = h.engine.projects().await.unwrap();
    assert_eq!(projects[0].name, "athens");
}

#[tokio::test]
async fn reconcile_removes_the_container_of_an_unfinished_deploy() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    // As if the daemon died after creating green and before the switch.
    h.engine
        .inner
        .journal
        .begin(&crate::journal::InProgress {
            project: "athens".into(),
            service: "web".into(),
            operation: "deploy".into(),
            container: "athens-web-green".into(),
            reused: false,
            started_ms: 0,
        })
        .unwrap();
    let mut spec = h.fake.spec_of("athens-web-blue").unwrap();
    spec.name = "athens-web-green".into();
    spec.labels.insert(labels::COLOR.into(), "green".into());
    cutover_docker::Engine::create_container(&h.fake, &spec)
        .await
        .unwrap();
    cutover_docker::Engine::start_container(&h.fake, "athens-web-green")
        .await
        .unwrap();

    // A new daemon: fresh proxy (its state file held blue's route).
    let proxy = Proxy::new(ProxyConfig::default());
    proxy.restore(h.proxy.state());
    let map = h.origins.clone();
    let engine = DeployEngine::new(
        Arc::new(h.fake.clone()),
        proxy.clone(),
        h._dir.path().into(),
    )
    .with_addressing(Addressing::Custom(Arc::new(move |info, _, _| {
        map.lock()
            .unwrap()
            .get(&info.name)
            .copied()
            .ok_or_else(|| "no origin".to_string())
    })));
    let report = engine.reconcile().await;
    assert_eq!(report.cleaned, vec!["athens-web-green"], "{report:?}");
    assert!(!h
        .fake
        .container_names()
        .contains(&"athens-web-green".to_string()));
    assert!(engine.inner.journal.pending().is_empty());
    let last = engine
        .inner
        .history
        .read("athens", Some("web"))
        .pop()
        .unwrap();
    assert_eq!(last.result, Outcome::Failed, "{last:?}");
    assert_eq!(last.color, Some(cutover_core::service::Color::Green));
    assert!(last.error.unwrap().starts_with("interrupted: "));
    // Blue's route agreed with its container: left as restored.
    assert!(report.routes.is_empty(), "{report:?}");
    // A deploy now converges.
    let ev = collect(engine.deploy(cmd(compose("bonjour", 2)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
}

#[tokio::test]
async fn reconcile_reinstalls_a_route_the_proxy_lost() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    let proxy = Proxy::new(ProxyConfig::default());
    let map = h.origins.clone();
    let engine = DeployEngine::new(
        Arc::new(h.fake.clone()),
        proxy.clone(),
        h._dir.path().into(),
    )
    .with_addressing(Addressing::Custom(Arc::new(move |info, _, _| {
        map.lock()
            .unwrap()
            .get(&info.name)
            .copied()
            .ok_or_else(|| "no origin".to_string())
    })));
    let report = engine.reconcile().await;
    assert_eq!(report.routes, vec!["athens/web"], "{report:?}");
    let st = proxy.status();
    assert_eq!(st[0].active.targets[0].addr, h.blue.target());
}

async fn serve_api(engine: DeployEngine) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, crate::router(engine)).await });
    addr
}

async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: cutover\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer =
        cutover_test::client::raw(addr, req.as_bytes(), std::time::Duration::from_secs(10))
            .await
            .unwrap();
    let status = cutover_test::client::raw_status(&answer).unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn api_streams_a_deploy_as_ndjson_and_names_bad_fields() {
    let h = Harness::new().await;
    let addr = serve_api(h.engine.clone()).await;
    let body = serde_json::to_string(&cmd(compose("hello", 2))).unwrap();

    let (status, text) = http(addr, "POST", "/v1/projects/athens/deploy", &body).await;
    assert_eq!(status, 200, "{text}");
    let events: Vec<ProgressEvent> = text
        .lines()
        // Chunked encoding: keep the JSON lines only.
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(outcome(&events).0, Outcome::Ok, "{text}");

    let bad = body.replace("\"force\":false", "\"force\":\"yes\"");
    let (status, text) = http(addr, "POST", "/v1/projects/athens/deploy", &bad).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("\"error\":\"force: invalid type"), "{text}");

    let (status, text) = http(addr, "POST", "/v1/projects/other/deploy", &body).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("project.name"), "{text}");

    let (status, text) = http(addr, "GET", "/v1/projects/athens/status", "").await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"route\":\"athens/web\""), "{text}");

    let (status, text) = http(addr, "POST", "/v1/projects/athens/plan", &body).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("app_up_to_date"), "{text}");

    let (status, text) = http(addr, "GET", "/v1/projects/athens/history?service=web", "").await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"operation\":\"deploy\""), "{text}");

    let (status, text) = http(addr, "GET", "/v1/projects/athens/logs?tail=x", "").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("tail"), "{text}");

    let (status, text) = http(
        addr,
        "POST",
        "/v1/projects/athens/down",
        "{\"volume\":true}",
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("volume"), "{text}");
}

#[tokio::test]
async fn a_failed_deploy_does_not_cost_the_kept_version() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("one", 1)))).await;
    collect(h.engine.deploy(cmd(compose("two", 1)))).await;
    // "three" needs blue, where "one" is kept; it fails its health gate.
    h.blue.set_healthy(false);
    let ev = collect(h.engine.deploy(cmd(compose("three", 1)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Failed, "{ev:#?}");
    // "one" was moved aside, not removed: past `keep` only after a success.
    let kept: Vec<String> = h
        .fake
        .container_names()
        .into_iter()
        .filter(|n| n.starts_with("athens-web-") && !n.ends_with("green"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(h.fake.spec_of(&kept[0]).unwrap().env["GREETING"], "one");
    h.blue.set_healthy(true);
    let ev = collect(h.engine.deploy(cmd(compose("three", 1)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    // Now it goes: live "three", kept "two".
    let mut envs: Vec<String> = h
        .fake
        .container_names()
        .into_iter()
        .filter(|n| n.starts_with("athens-web-"))
        .map(|n| h.fake.spec_of(&n).unwrap().env["GREETING"].clone())
        .collect();
    envs.sort();
    assert_eq!(envs, vec!["three", "two"]);
}

#[tokio::test]
async fn a_datastore_published_everywhere_is_warned_about() {
    let h = Harness::new().await;
    let p = compose_with("hello", 2, "    ports: [\"6379:6379\"]\n");
    let ev = collect(h.engine.deploy(cmd(p))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert!(
        ev.iter().any(
            |e| matches!(e, ProgressEvent::Warning { message, .. } if message.contains("6379"))
        ),
        "{ev:#?}"
    );
    // Published as written: the user asked for it.
    let spec = h.fake.spec_of("athens-redis").unwrap();
    assert_eq!(spec.ports[0].host_port, Some(6379));
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A WebSocket through the proxy; the origin greets with its name.
async fn ws_connect(addr: SocketAddr) -> Ws {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async("ws://athens.test/ws", stream)
        .await
        .unwrap();
    ws
}

async fn next_text(ws: &mut Ws) -> String {
    use futures_util::StreamExt;
    match tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await {
        Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => t.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

async fn echo(ws: &mut Ws, text: &str) {
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(text))
        .await
        .unwrap();
    assert_eq!(next_text(ws).await, text);
}

/// Closes from the client side, as a browser leaving the page does.
async fn close(mut ws: Ws) {
    use futures_util::StreamExt;
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
}

fn kept_by_version_name(h: &Harness) -> Vec<String> {
    h.fake
        .container_names()
        .into_iter()
        .filter(|n| n.starts_with("athens-web-") && !n.ends_with("blue") && !n.ends_with("green"))
        .collect()
}

#[tokio::test]
async fn a_deploy_ends_at_the_switch_and_the_old_color_retires_once_drained() {
    let h = Harness::new().await;
    let addr = h.serve().await;
    collect(h.engine.deploy(cmd(compose_long_ws_drain("one", 2)))).await;
    let mut ws = ws_connect(addr).await;
    assert_eq!(next_text(&mut ws).await, "blue");

    let ev = collect(h.engine.deploy(cmd(compose_long_ws_drain("two", 2)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    // The deploy is over while blue still holds a WebSocket (its drain
    // deadline is an hour away): blue runs on, listed as retiring.
    assert_eq!(h.live().unwrap().0, Color::Green);
    assert!(h.running("athens-web-blue"));
    let st = h.engine.status("athens").await.unwrap();
    assert!(
        st.apps[0]
            .kept
            .iter()
            .any(|k| k.container == "athens-web-blue" && k.retiring),
        "{:?}",
        st.apps[0].kept
    );
    echo(&mut ws, "still there").await;

    // The next deploy needs blue's slot while blue still drains: blue is
    // renamed aside, keeps running and keeps its WebSocket.
    let ev = collect(h.engine.deploy(cmd(compose_long_ws_drain("three", 2)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(h.live().unwrap().0, Color::Blue);
    assert_eq!(
        h.fake.spec_of("athens-web-blue").unwrap().env["GREETING"],
        "three"
    );
    let moved = kept_by_version_name(&h);
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(h.fake.spec_of(&moved[0]).unwrap().env["GREETING"], "one");
    assert!(h.running(&moved[0]));
    echo(&mut ws, "after the rename").await;

    // The client leaves: the drain of "one" is over, so it is stopped and
    // kept. "two" had no connection left and is stopped too.
    close(ws).await;
    h.settle().await;
    assert!(!h.running(&moved[0]));
    assert!(!h.running("athens-web-green"));
    assert!(h.running("athens-web-blue"));
    let st = h.engine.status("athens").await.unwrap();
    assert!(st.apps[0].kept.iter().all(|k| !k.retiring));
}

#[tokio::test]
async fn a_rollback_takes_back_a_version_that_still_drains() {
    let h = Harness::new().await;
    let addr = h.serve().await;
    collect(h.engine.deploy(cmd(compose_long_ws_drain("one", 2)))).await;
    let ws = ws_connect(addr).await;
    collect(h.engine.deploy(cmd(compose_long_ws_drain("two", 2)))).await;
    assert!(h.running("athens-web-blue"));

    h.fake.clear_calls();
    let ev = collect(h.engine.rollback("athens".into(), rollback_cmd())).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(h.live().unwrap().0, Color::Blue);
    assert!(h.fake.calls_of(Op::CreateContainer).is_empty());

    // Its old drain ending must not stop it now that it is live again.
    close(ws).await;
    h.settle().await;
    assert!(h.running("athens-web-blue"));
    assert!(!h.running("athens-web-green"));
}

#[tokio::test]
async fn an_old_color_past_keep_is_removed_once_drained() {
    let h = Harness::new().await;
    let addr = h.serve().await;
    collect(h.engine.deploy(cmd(compose_long_ws_drain("one", 0)))).await;
    let ws = ws_connect(addr).await;
    let ev = collect(h.engine.deploy(cmd(compose_long_ws_drain("two", 0)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    // Past keep, but its WebSocket is still open: it stays until drained.
    assert!(h.running("athens-web-blue"));
    close(ws).await;
    h.settle().await;
    assert!(!h.exists("athens-web-blue"));
    assert!(h.running("athens-web-green"));
}

#[tokio::test]
async fn the_next_start_stops_an_old_color_whose_drain_a_shutdown_cut_short() {
    let h = Harness::new().await;
    let addr = h.serve().await;
    collect(h.engine.deploy(cmd(compose_long_ws_drain("one", 2)))).await;
    let _ws = ws_connect(addr).await;
    collect(h.engine.deploy(cmd(compose_long_ws_drain("two", 2)))).await;
    // The daemon stops while blue drains: blue is left running.
    h.engine.retirements().cancel_all();
    h.settle().await;
    assert!(h.running("athens-web-blue"));

    // The next daemon over the same engine and state dir.
    let restarted = DeployEngine::new(
        Arc::new(h.fake.clone()),
        Proxy::new(ProxyConfig::default()),
        h.engine.state_dir().to_path_buf(),
    )
    .with_addressing(Addressing::Custom(Arc::new({
        let map = h.origins.clone();
        move |info, _, _| {
            map.lock()
                .unwrap()
                .get(&info.name)
                .copied()
                .ok_or_else(|| format!("no origin for {}", info.name))
        }
    })));
    let report = restarted.reconcile().await;
    assert_eq!(
        report.cleaned,
        vec!["athens-web-blue".to_string()],
        "{report:?}"
    );
    assert!(!h.running("athens-web-blue"));
    assert!(h.running("athens-web-green"));
}

/// What a deploy had done before it failed is a fact below the error, not
/// text glued onto its hint.
#[tokio::test]
async fn a_failure_after_a_switch_says_what_was_switched_in_the_detail() {
    let h = Harness::new().await;
    let yaml = compose_yaml("hello", 2, "").replace(
        "  redis:\n",
        "  worker:\n    image: athens:1\n    depends_on: [web]\n    x-cutover: {port: 8080}\n  redis:\n",
    );
    let ev = collect(h.engine.deploy(cmd(parse(yaml)))).await;
    let Some(ProgressEvent::Finished {
        outcome,
        message,
        detail,
        hint,
        ..
    }) = ev.last()
    else {
        panic!("no Finished: {ev:#?}");
    };
    assert_eq!(*outcome, Outcome::Failed, "{ev:#?}");
    // The worker has no origin in this harness, so its address fails.
    assert!(message.contains("worker"), "{message}");
    assert!(!message.contains('\n'), "{message}");
    assert_eq!(
        detail.as_deref(),
        Some("already switched in this deploy: web (blue)")
    );
    assert!(
        hint.as_deref().is_none_or(|h| !h.contains("switched")),
        "{hint:?}"
    );
}
