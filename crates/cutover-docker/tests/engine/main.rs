//! The Docker adapter against the real engine.
//!
//! Needs a reachable engine (DOCKER_HOST or /var/run/docker.sock) and the
//! local base image `cutover-base:bookworm` (`scripts/images.sh base`); a test
//! fails loudly when either is missing, it never skips. Nothing is pulled:
//! the images used here are built from the base by the adapter itself.
//!
//! Every object a test creates carries a `cutover-test.run` label unique to
//! that test, and a guard removes everything with that label when the test
//! ends, passed or failed. Listing is always by label, so other people's
//! containers on the same engine are neither seen nor touched.

use cutover_core::diag::Diagnose;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cutover_docker::labels::{self, LabelFilter};
use cutover_docker::*;
use futures_util::StreamExt;
use tokio::sync::OnceCell;

const BASE_IMAGE: &str = "cutover-base:bookworm";
/// Built from the base by the first test that needs it. No new layer, only a
/// CMD, so it costs nothing to keep between runs.
const SLEEPER_IMAGE: &str = "cutover-docker-test/sleeper:1";
const TEST_RUN: &str = "cutover-test.run";
const GRACE: Duration = Duration::from_secs(5);
/// Upper bound of any wait for the engine in these tests; reaching it is a
/// failure, never a measurement.
const PATIENCE: Duration = Duration::from_secs(60);

static SLEEPER: OnceCell<()> = OnceCell::const_new();
static COUNTER: AtomicU64 = AtomicU64::new(0);

async fn connect() -> DockerEngine {
    match DockerEngine::connect().await {
        Ok(engine) => engine,
        Err(err) => panic!("these tests need a Docker engine: {err}"),
    }
}

/// One test's slice of the engine: its names, its labels, its cleanup.
struct Env {
    engine: DockerEngine,
    /// Unique per test and run; prefixes every name and labels every object.
    run: String,
    _guard: Guard,
}

impl Env {
    async fn new(test: &str) -> Env {
        let engine = connect().await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let run = format!(
            "cdt-{test}-{}-{}-{nanos:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        if engine.inspect_image(BASE_IMAGE).await.unwrap().is_none() {
            panic!(
                "the local image {BASE_IMAGE} is missing; build it with `scripts/images.sh base` \
                 (a debootstrap of Debian imported into Docker, no registry needed)"
            );
        }
        Env {
            engine,
            run: run.clone(),
            _guard: Guard { run },
        }
    }

    /// The project name of this test.
    fn project(&self) -> &str {
        &self.run
    }

    fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.run)
    }

    /// A container of this test's project.
    fn container(&self, suffix: &str, image: &str) -> ContainerSpec {
        ContainerSpec::new(self.name(suffix), image)
            .label(labels::PROJECT, self.project())
            .label(TEST_RUN, &self.run)
    }

    fn network(&self, suffix: &str) -> NetworkSpec {
        NetworkSpec::new(self.name(suffix))
            .label(labels::PROJECT, self.project())
            .label(TEST_RUN, &self.run)
    }

    async fn sleeper(&self) -> &'static str {
        SLEEPER
            .get_or_init(|| async {
                let dir = tempfile::tempdir().unwrap();
                std::fs::write(
                    dir.path().join("Dockerfile"),
                    format!(
                        "FROM {BASE_IMAGE}\n\
                         CMD [\"bash\", \"-c\", \"trap 'exit 0' TERM; sleep infinity & wait\"]\n"
                    ),
                )
                .unwrap();
                self.engine
                    .build_image(&BuildSpec::new(dir.path(), SLEEPER_IMAGE))
                    .await
                    .unwrap_or_else(|e| panic!("building {SLEEPER_IMAGE}: {e}"));
            })
            .await;
        SLEEPER_IMAGE
    }

    /// Creates and starts `spec`; one without networks joins the test's own
    /// network rather than the engine's default bridge, which some engines
    /// (this development machine's among them) run without.
    async fn run_container(&self, spec: &ContainerSpec) -> ContainerInfo {
        let mut spec = spec.clone();
        if spec.networks.is_empty() {
            let net = self.network("default");
            self.engine.ensure_network(&net).await.unwrap();
            spec.networks.push(NetworkAttachment::new(net.name));
        }
        let spec = &spec;
        self.engine.create_container(spec).await.unwrap();
        self.engine.start_container(&spec.name).await.unwrap();
        self.inspect(&spec.name).await
    }

    async fn inspect(&self, name: &str) -> ContainerInfo {
        self.engine
            .inspect_container(name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("container {name} is gone"))
    }

    /// Polls until the container has stopped by itself.
    async fn wait_exit(&self, name: &str) -> ContainerInfo {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let info = self.inspect(name).await;
                if info.state == ContainerState::Exited || info.state == ContainerState::Dead {
                    return info;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("container {name} did not exit within {PATIENCE:?}"))
    }

    async fn stdout_of(&self, name: &str) -> Vec<String> {
        self.engine
            .logs_tail(name, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|l| l.source == LogSource::Stdout)
            .map(|l| l.text)
            .collect()
    }
}

/// Removes whatever carries the test's label when the test ends, also when it
/// panicked. Drop cannot await, and the test's runtime may be the one
/// unwinding, so the cleanup runs on a thread with its own runtime.
struct Guard {
    run: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let run = self.run.clone();
        let joined = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime")
                .block_on(cleanup(&run))
        })
        .join();
        if let Ok(Err(problems)) = joined {
            eprintln!("cleanup left things behind: {problems}");
        }
    }
}

async fn cleanup(run: &str) -> Result<(), String> {
    let engine = DockerEngine::connect().await.map_err(|e| e.to_string())?;
    let mine = LabelFilter::new().with(TEST_RUN, run);
    let mut problems = Vec::new();
    for c in engine
        .list_containers(&mine)
        .await
        .map_err(|e| e.to_string())?
    {
        if let Err(e) = engine.remove_container(&c.id).await {
            problems.push(e.to_string());
        }
    }
    for n in engine
        .list_networks(&mine)
        .await
        .map_err(|e| e.to_string())?
    {
        if let Err(e) = engine.delete_network(&n.name).await {
            problems.push(e.to_string());
        }
    }
    for v in engine
        .list_volumes(&mine)
        .await
        .map_err(|e| e.to_string())?
    {
        if let Err(e) = engine.remove_volume(&v.name).await {
            problems.push(e.to_string());
        }
    }
    let images = engine
        .client()
        .list_images(Some(bollard::query_parameters::ListImagesOptions {
            filters: Some(mine.to_docker_filters()),
            ..Default::default()
        }))
        .await
        .map_err(|e| e.to_string())?;
    for image in images {
        let options = bollard::query_parameters::RemoveImageOptions {
            force: true,
            ..Default::default()
        };
        if let Err(e) = engine
            .client()
            .remove_image(&image.id, Some(options), None)
            .await
        {
            problems.push(e.to_string());
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn texts(lines: &[LogLine]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}

#[tokio::test]
async fn network_ensure_is_idempotent_and_keeps_the_exact_name() {
    let env = Env::new("net").await;
    let spec = env.network("app-network");

    let first = env.engine.ensure_network(&spec).await.unwrap();
    let second = env.engine.ensure_network(&spec).await.unwrap();

    assert!(first.created);
    assert!(!second.created);
    assert_eq!(first.value.id, second.value.id);
    // No project or folder prefix: failure #1 of the field report.
    assert_eq!(first.value.name, spec.name);
    assert!(first.value.is_owned_by(env.project()));
    assert!(!first.value.is_external());
    let listed = env
        .engine
        .list_networks(&LabelFilter::project(env.project()))
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        vec![spec.name.as_str()]
    );
    // An exact name only: a prefix of it is not the network.
    let prefix = &spec.name[..spec.name.len() - 3];
    assert!(env.engine.inspect_network(prefix).await.unwrap().is_none());
}

#[tokio::test]
async fn volume_survives_container_removal() {
    let env = Env::new("vol").await;
    let vol = VolumeSpec::new(env.name("data"))
        .label(labels::PROJECT, env.project())
        .label(TEST_RUN, &env.run);
    assert!(env.engine.ensure_volume(&vol).await.unwrap().created);
    assert!(!env.engine.ensure_volume(&vol).await.unwrap().created);
    let mount = MountSpec::Volume {
        name: vol.name.clone(),
        target: "/data".into(),
        read_only: false,
        nocopy: false,
    };

    let writer = env
        .container("writer", BASE_IMAGE)
        .mount(mount.clone())
        .cmd(["bash", "-c", "echo kept > /data/f"]);
    env.run_container(&writer).await;
    assert_eq!(env.wait_exit(&writer.name).await.exit_code, Some(0));
    assert_eq!(
        env.engine.remove_container(&writer.name).await.unwrap(),
        Removal::Removed
    );

    let volumes = env
        .engine
        .list_volumes(&LabelFilter::project(env.project()))
        .await
        .unwrap();
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0].name, vol.name);

    let reader = env
        .container("reader", BASE_IMAGE)
        .mount(mount)
        .cmd(["cat", "/data/f"]);
    env.run_container(&reader).await;
    env.wait_exit(&reader.name).await;
    assert_eq!(env.stdout_of(&reader.name).await, vec!["kept"]);
}

#[tokio::test]
async fn listing_is_by_label_not_by_name() {
    let env = Env::new("list").await;
    let image = env.sleeper().await;
    let blue = env
        .container("athens-blue", image)
        .label(labels::COLOR, "blue")
        .label(labels::ROLE, Role::App.as_str());
    env.run_container(&blue).await;
    // What `docker ps --filter name=athens` also matched: same name stem,
    // but another project and no color.
    let redis = ContainerSpec::new(env.name("athens-redis-blue"), image)
        .label(labels::PROJECT, &env.name("other"))
        .label(labels::ROLE, Role::Accessory.as_str())
        .label(TEST_RUN, &env.run);
    env.run_container(&redis).await;

    let apps = env
        .engine
        .list_containers(&LabelFilter::project(env.project()).with_key(labels::COLOR))
        .await
        .unwrap();
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(apps[0].name, blue.name);
    assert_eq!(apps[0].state, ContainerState::Running);
    assert_eq!(apps[0].labels[labels::COLOR], "blue");

    let info = env.inspect(&blue.name).await;
    assert_eq!(info.labels[labels::ROLE], "app");
    assert_eq!(info.image, image);
}

#[tokio::test]
async fn network_removal_after_stop_and_remove_and_with_attached_containers() {
    let env = Env::new("netrm").await;
    let image = env.sleeper().await;
    let net = env.network("app");
    env.engine.ensure_network(&net).await.unwrap();

    // The field report's order: stop, remove, then the network.
    let old = env
        .container("old", image)
        .network(NetworkAttachment::new(&net.name));
    env.run_container(&old).await;
    env.engine.stop_container(&old.name, GRACE).await.unwrap();
    // A second stop is not an error.
    env.engine.stop_container(&old.name, GRACE).await.unwrap();
    assert_eq!(env.inspect(&old.name).await.state, ContainerState::Exited);
    assert_eq!(
        env.engine.remove_container(&old.name).await.unwrap(),
        Removal::Removed
    );
    assert_eq!(
        env.engine
            .remove_network(&net.name, env.project())
            .await
            .unwrap(),
        Removal::Removed
    );
    assert!(env
        .engine
        .inspect_network(&net.name)
        .await
        .unwrap()
        .is_none());

    // Failure #5: removing the network while our container is still on it
    // disconnects it first instead of failing.
    env.engine.ensure_network(&net).await.unwrap();
    let running = env
        .container("running", image)
        .network(NetworkAttachment::new(&net.name));
    env.run_container(&running).await;
    let attached = env.engine.network_containers(&net.name).await.unwrap();
    assert_eq!(attached.len(), 1);
    assert_eq!(attached[0].name, running.name);
    assert_eq!(
        env.engine
            .remove_network(&net.name, env.project())
            .await
            .unwrap(),
        Removal::Removed
    );
    assert!(!env
        .inspect(&running.name)
        .await
        .networks
        .contains_key(&net.name));

    // A container of someone else on it: refused, naming it.
    env.engine.ensure_network(&net).await.unwrap();
    let foreign = ContainerSpec::new(env.name("foreign"), image)
        .label(TEST_RUN, &env.run)
        .network(NetworkAttachment::new(&net.name));
    env.run_container(&foreign).await;
    let err = env
        .engine
        .remove_network(&net.name, env.project())
        .await
        .unwrap_err();
    match &err {
        EngineError::NetworkInUse { containers, .. } => {
            assert_eq!(containers, &vec![foreign.name.clone()])
        }
        other => panic!("expected NetworkInUse, got {other}"),
    }
    assert!(env
        .engine
        .inspect_network(&net.name)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        env.engine
            .remove_network("no-such-network-cutover", env.project())
            .await
            .unwrap(),
        Removal::Absent
    );
}

#[tokio::test]
async fn logs_tail_returns_the_last_lines_and_follow_streams() {
    let env = Env::new("logs").await;
    let printer = env.container("printer", BASE_IMAGE).cmd([
        "bash",
        "-c",
        "for i in $(seq 1 50); do echo line $i; done",
    ]);
    env.run_container(&printer).await;
    env.wait_exit(&printer.name).await;
    let tail = env.engine.logs_tail(&printer.name, 3).await.unwrap();
    assert_eq!(texts(&tail), vec!["line 48", "line 49", "line 50"]);
    assert!(tail.iter().all(|l| l.source == LogSource::Stdout));

    // The engine orders lines of different streams only by the time it read
    // them, so stderr is checked on its own.
    let complainer = env.container("complainer", BASE_IMAGE).cmd([
        "bash",
        "-c",
        "echo warn 1 >&2; echo warn 2 >&2",
    ]);
    env.run_container(&complainer).await;
    env.wait_exit(&complainer.name).await;
    let tail = env.engine.logs_tail(&complainer.name, 1).await.unwrap();
    assert_eq!(texts(&tail), vec!["warn 2"]);
    assert_eq!(tail[0].source, LogSource::Stderr);

    // Follow: a container that keeps printing; the stream yields its lines as
    // they come and stops when the container stops.
    let ticker = env.container("ticker", BASE_IMAGE).cmd([
        "bash",
        "-c",
        "for i in $(seq 1 5); do echo tick $i; sleep 0.2; done",
    ]);
    env.run_container(&ticker).await;
    let lines: Vec<LogLine> = tokio::time::timeout(
        PATIENCE,
        env.engine
            .logs(
                &ticker.name,
                &LogOptions {
                    tail: 100,
                    follow: true,
                    ..LogOptions::default()
                },
            )
            .map(|l| l.unwrap())
            .collect(),
    )
    .await
    .expect("the followed log ends when the container exits");
    assert_eq!(
        texts(&lines),
        vec!["tick 1", "tick 2", "tick 3", "tick 4", "tick 5"]
    );

    // `since` selects by the engine's own timestamps: a minute ahead is
    // after every line, the epoch before all of them.
    let read_since = |since: std::time::SystemTime| {
        env.engine
            .logs(
                &ticker.name,
                &LogOptions {
                    tail: 100,
                    since: Some(since),
                    follow: false,
                },
            )
            .map(|l| l.unwrap())
            .collect::<Vec<LogLine>>()
    };
    let now = std::time::SystemTime::now();
    assert!(read_since(now + Duration::from_secs(60)).await.is_empty());
    assert_eq!(
        read_since(std::time::UNIX_EPOCH + Duration::from_secs(1))
            .await
            .len(),
        5
    );

    let err = env
        .engine
        .logs_tail(&env.name("missing"), 3)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn build_with_build_arg_target_and_dockerignore() {
    let env = Env::new("build").await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("docker")).unwrap();
    std::fs::write(
        root.join("docker/Dockerfile.app"),
        format!(
            "FROM {BASE_IMAGE} AS base\n\
             ARG GREETING=unset\n\
             RUN echo \"$GREETING\" > /greeting\n\
             COPY . /ctx/\n\
             FROM base AS final\n\
             RUN echo final > /stage\n\
             FROM base AS other\n\
             RUN echo other > /stage\n"
        ),
    )
    .unwrap();
    std::fs::write(root.join(".dockerignore"), "secret.txt\n").unwrap();
    std::fs::write(root.join("secret.txt"), "do not send").unwrap();
    std::fs::write(root.join("app.txt"), "app").unwrap();

    let tag = format!("cutover-docker-test/{}:1", env.run);
    let mut spec = BuildSpec::new(root, &tag);
    spec.dockerfile = Some(Path::new("docker/Dockerfile.app").to_path_buf());
    spec.build_args = BTreeMap::from([("GREETING".into(), "hello".into())]);
    spec.target = Some("final".into());
    spec.labels = BTreeMap::from([(TEST_RUN.into(), env.run.clone())]);
    // RUN steps need no network, and some engines run without a default
    // bridge for them.
    spec.network_mode = Some("none".into());
    let built = env.engine.build_image(&spec).await.unwrap();

    let image = env.engine.inspect_image(&tag).await.unwrap().unwrap();
    assert_eq!(built.image_id, image.id);
    assert!(image.id.starts_with("sha256:"), "{}", image.id);
    assert_eq!(image.labels[TEST_RUN], env.run);
    assert!(!built.log.is_empty());

    let probe = env
        .container("probe", &tag)
        .cmd(["bash", "-c", "cat /greeting /stage; ls /ctx"]);
    env.run_container(&probe).await;
    env.wait_exit(&probe.name).await;
    assert_eq!(
        env.stdout_of(&probe.name).await,
        vec!["hello", "final", "app.txt", "docker"]
    );

    // A failing step: the error carries the builder's last lines.
    std::fs::write(
        root.join("docker/Dockerfile.app"),
        format!("FROM {BASE_IMAGE}\nRUN echo about to fail && exit 3\n"),
    )
    .unwrap();
    spec.target = None;
    let err = env.engine.build_image(&spec).await.unwrap_err();
    match &err {
        EngineError::Build {
            message, log_tail, ..
        } => {
            assert!(message.contains("returned a non-zero code: 3"), "{message}");
            assert!(
                log_tail.iter().any(|l| l.contains("about to fail")),
                "{log_tail:?}"
            );
        }
        other => panic!("expected a build error, got {other}"),
    }
}

#[tokio::test]
async fn containers_resolve_each_other_by_service_alias() {
    let env = Env::new("alias").await;
    let image = env.sleeper().await;
    let net = env.network("app");
    let other_net = env.network("edge");
    env.engine.ensure_network(&net).await.unwrap();
    env.engine.ensure_network(&other_net).await.unwrap();

    let redis = env
        .container("redis", image)
        .network(NetworkAttachment::new(&net.name).alias("redis"));
    let redis_info = env.run_container(&redis).await;
    // Two networks at create: the second joins before start (API 1.41).
    let app = env
        .container("app", image)
        .network(NetworkAttachment::new(&net.name).alias("backend"))
        .network(NetworkAttachment::new(&other_net.name).alias("web"));
    let app_info = env.run_container(&app).await;
    assert!(app_info.networks[&net.name]
        .aliases
        .contains(&"backend".to_owned()));
    assert!(app_info.networks[&other_net.name]
        .aliases
        .contains(&"web".to_owned()));

    let redis_ip = redis_info.ip_on(&net.name).expect("redis has an address");
    let out = env
        .engine
        .exec(
            &app.name,
            &["getent".into(), "hosts".into(), "redis".into()],
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with(&format!("{redis_ip} ")),
        "redis resolved to {:?}, expected {redis_ip}",
        out.stdout
    );
    let out = env
        .engine
        .exec(
            &app.name,
            &[
                "getent".into(),
                "hosts".into(),
                "nothing-by-this-name".into(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 2, "{out:?}");
}

#[tokio::test]
async fn failed_network_join_leaves_no_container_behind() {
    let env = Env::new("orphan").await;
    let image = env.sleeper().await;
    let net = env.network("app");
    env.engine.ensure_network(&net).await.unwrap();
    let spec = env
        .container("half", image)
        .network(NetworkAttachment::new(&net.name))
        .network(NetworkAttachment::new(env.name("missing")));
    let err = env.engine.create_container(&spec).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(env
        .engine
        .inspect_container(&spec.name)
        .await
        .unwrap()
        .is_none());

    // Name taken: a conflict, typed.
    let ok = env.container("taken", image);
    env.engine.create_container(&ok).await.unwrap();
    let err = env.engine.create_container(&ok).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
}

#[tokio::test]
async fn wait_healthy_follows_the_docker_healthcheck() {
    let env = Env::new("health").await;
    let image = env.sleeper().await;
    // Failures inside the start period do not count, as with compose; the
    // first success ends it.
    let check = |test: &str, start_period: Option<Duration>| HealthcheckSpec {
        test: HealthTest::Shell(test.into()),
        interval: Some(Duration::from_millis(200)),
        timeout: Some(Duration::from_secs(5)),
        retries: Some(2),
        start_period,
    };

    let mut good = env.container("good", image).cmd([
        "bash",
        "-c",
        "sleep 0.5; touch /tmp/ready; exec sleep infinity",
    ]);
    good.healthcheck = Some(check("test -f /tmp/ready", Some(PATIENCE)));
    env.run_container(&good).await;
    let info = env.engine.wait_healthy(&good.name, PATIENCE).await.unwrap();
    assert_eq!(info.health, Some(HealthState::Healthy));

    let mut bad = env.container("bad", image);
    bad.healthcheck = Some(check("echo not ready; exit 1", None));
    env.run_container(&bad).await;
    match env.engine.wait_healthy(&bad.name, PATIENCE).await {
        Err(EngineError::Unhealthy { output, .. }) => {
            assert_eq!(output.as_deref().map(str::trim), Some("not ready"))
        }
        other => panic!("expected Unhealthy, got {other:?}"),
    }

    let plain = env.container("plain", image);
    env.run_container(&plain).await;
    match env.engine.wait_healthy(&plain.name, PATIENCE).await {
        Err(EngineError::NoHealthcheck { .. }) => {}
        other => panic!("expected NoHealthcheck, got {other:?}"),
    }
}

#[tokio::test]
async fn address_is_the_network_ip_or_a_loopback_port() {
    let env = Env::new("addr").await;
    let image = env.sleeper().await;
    let net = env.network("app");
    env.engine.ensure_network(&net).await.unwrap();
    let mut spec = env
        .container("web", image)
        .network(NetworkAttachment::new(&net.name));
    spec.ports = vec![PortSpec {
        container_port: 8080,
        protocol: Protocol::Tcp,
        host_ip: Some("127.0.0.1".parse().unwrap()),
        host_port: None,
    }];
    spec.restart = RestartPolicy::UnlessStopped;
    spec.stop_grace = Some(GRACE);
    spec.env = BTreeMap::from([("A".into(), "1".into())]);
    spec.logging = Some(LoggingSpec {
        driver: "json-file".into(),
        options: BTreeMap::from([("max-size".into(), "1m".into())]),
    });
    spec.extra_hosts = vec!["upstream.test:127.0.0.1".into()];
    spec.working_dir = Some("/tmp".into());
    spec.user = Some("nobody".into());
    let info = env.run_container(&spec).await;

    let engine_info = env.engine.info().await.unwrap();
    assert!(!engine_info.api_version.is_empty());
    let ip = info.ip_on(&net.name).expect("an address on the network");
    assert_eq!(
        container_address(&info, &net.name, 8080, Reachability::ContainerIp).unwrap(),
        std::net::SocketAddr::new(ip, 8080)
    );
    let published =
        container_address(&info, &net.name, 8080, Reachability::PublishedLoopback).unwrap();
    assert_eq!(published.ip(), std::net::Ipv4Addr::LOCALHOST);
    assert_ne!(published.port(), 0);

    // The rest of the spec reached the container.
    let out = env
        .engine
        .exec(
            &spec.name,
            &[
                "bash".into(),
                "-c".into(),
                "echo $A; pwd; id -un; getent hosts upstream.test".into(),
            ],
        )
        .await
        .unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..3], ["1", "/tmp", "nobody"], "{out:?}");
    assert!(lines[3].starts_with("127.0.0.1 "), "{out:?}");
}

/// A draining old color is renamed out of its slot while it still serves:
/// its id and address must survive, and a taken name must be refused.
#[tokio::test]
async fn rename_keeps_a_running_container_and_its_address() {
    let env = Env::new("rename").await;
    let image = env.sleeper().await;
    let net = env.network("app");
    env.engine.ensure_network(&net).await.unwrap();
    let spec = env
        .container("blue", image)
        .network(NetworkAttachment::new(&net.name));
    let before = env.run_container(&spec).await;
    let other = env.run_container(&env.container("other", image)).await;

    let moved = env.name("v1");
    env.engine
        .rename_container(&spec.name, &moved)
        .await
        .unwrap();
    let after = env.inspect(&before.id).await;
    assert_eq!(after.name, moved);
    assert_eq!(after.state, ContainerState::Running);
    assert_eq!(after.ip_on(&net.name), before.ip_on(&net.name));
    assert!(env
        .engine
        .inspect_container(&spec.name)
        .await
        .unwrap()
        .is_none());

    let taken = env.engine.rename_container(&moved, &other.name).await;
    assert!(
        matches!(taken, Err(EngineError::Conflict { .. })),
        "{taken:?}"
    );
}

#[tokio::test]
async fn unreachable_engine_is_a_typed_error_with_a_hint() {
    let err = DockerEngine::connect_to("unix:///nonexistent/cutover/docker.sock")
        .await
        .unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    let text = err.report().to_string();
    assert!(
        text.contains("unix:///nonexistent/cutover/docker.sock"),
        "{text}"
    );
    assert!(text.contains("\nhint: is dockerd running"), "{text}");

    // Nothing listens on port 1 of the loopback: refused, not a hang.
    let err = DockerEngine::connect_to("tcp://127.0.0.1:1")
        .await
        .unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
}

const CHILD_MARKER: &str = "CUTOVER_DOCKER_TEST_CHILD";
const MISSING_SOCKET: &str = "unix:///nonexistent/cutover/from-env.sock";

/// `connect()` goes where DOCKER_HOST says. Setting the variable in this
/// process would redirect the other tests running beside it, so the test
/// runs itself again as a child with the variable set.
#[tokio::test]
async fn connect_follows_docker_host() {
    if std::env::var_os(CHILD_MARKER).is_some() {
        let err = DockerEngine::connect().await.unwrap_err();
        assert!(err.is_unreachable(), "{err:?}");
        assert!(err.to_string().contains(MISSING_SOCKET), "{err}");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "connect_follows_docker_host", "--test-threads=1"])
        .env(CHILD_MARKER, "1")
        .env("DOCKER_HOST", MISSING_SOCKET)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The child ran the test, it did not filter it away.
    assert!(stdout.contains("1 passed"), "{stdout}");
}

#[tokio::test]
async fn pull_failure_says_a_registry_is_needed() {
    let env = Env::new("pull").await;
    // A registry on the loopback where nothing listens: the engine fails
    // without any traffic leaving the machine.
    let err = env
        .engine
        .pull_image("127.0.0.1:1/cutover/nothing:1", None)
        .await
        .unwrap_err();
    match &err {
        EngineError::Pull { image, .. } => assert_eq!(image, "127.0.0.1:1/cutover/nothing:1"),
        other => panic!("expected a pull error, got {other:?}"),
    }
    assert!(
        err.report()
            .to_string()
            .contains("\nhint: the engine must reach"),
        "{err}"
    );
    // The local image is used without a pull.
    let base = env.engine.ensure_image(BASE_IMAGE).await.unwrap();
    assert!(base.tags.contains(&BASE_IMAGE.to_owned()));
}

#[tokio::test]
async fn static_addresses_on_networks_with_an_address_plan() {
    let env = Env::new("ipam").await;
    let image = env.sleeper().await;
    // A subnet per process, so two runs on one engine do not collide.
    let octet = std::process::id() % 200 + 20;
    let plan = |third: u32| cutover_core::compose::Ipam {
        config: vec![cutover_core::compose::IpamPool {
            subnet: Some(format!("10.{third}.{octet}.0/24")),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut front = env.network("front");
    front.ipam = Some(plan(231));
    let mut back = env.network("back");
    back.ipam = Some(plan(232));
    env.engine.ensure_network(&front).await.unwrap();
    env.engine.ensure_network(&back).await.unwrap();

    let mut on_front = NetworkAttachment::new(&front.name);
    on_front.ipv4_address = Some(format!("10.231.{octet}.10"));
    // The second network joins through connect, after the create.
    let mut on_back = NetworkAttachment::new(&back.name);
    on_back.ipv4_address = Some(format!("10.232.{octet}.20"));
    let c = env
        .container("fixed", image)
        .network(on_front)
        .network(on_back);
    let info = env.run_container(&c).await;
    assert_eq!(
        info.ip_on(&front.name).map(|ip| ip.to_string()),
        Some(format!("10.231.{octet}.10"))
    );
    assert_eq!(
        info.ip_on(&back.name).map(|ip| ip.to_string()),
        Some(format!("10.232.{octet}.20"))
    );
}
