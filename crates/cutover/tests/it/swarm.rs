//! cutover on a real three-node Docker Swarm (#15): the stack of
//! `dist/swarm/cutover.yml` (an edge on every node, the deploy engine on the
//! manager), and `cutover deploy` of the example app (athens and its Redis)
//! from here over HTTPS, under HTTP and WebSocket load sent to all three
//! nodes. Every node switches together, a version that fails its health
//! check switches on none, the old color is kept at 0 tasks, Redis and its
//! counter live across deploys, and no request fails.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use cutover_test::images::{
    ensure_athens_image, ensure_cutover_image, ensure_redis_image, remove_image, require_docker,
    workspace_root,
};
use cutover_test::swarm::TestSwarm;
use hyper::Method;

use crate::util::{bin, cutover, tcp_request, Load, Tally};

mod calls;
mod failover;
mod files;
mod global;
mod https;
mod keep;
mod partition;
mod stage;
mod tie;

const TOKEN: &str = "swarm-deploy-token-0123456789abcdef";
const EDGE_TOKEN: &str = "swarm-edge-token-0123456789abcdef";

/// examples/athens/compose.yaml as a Swarm takes it: the local images,
/// three replicas, short drains, and its `pre_deploy` hook (the store's
/// migration, run as a one-off job). `APP_PORT` set wrong makes a version
/// no node can reach.
const COMPOSE: &str = r#"
name: shop
services:
  web:
    image: cutover-test-athens:latest
    environment:
      REDIS_HOST: redis
      REDIS_PORT: "6379"
      APP_VERSION: ${VERSION}
    deploy:
      replicas: 3
    x-cutover:
      port: ${APP_PORT:-8080}
      deploy_timeout: 20s
      drain_timeout: 5s
      websocket_drain_timeout: 5s
      health:
        path: /api/v1/open/health-check
        interval: 500ms
      hooks:
        # Bounded: a job on a node that dies must not hold a deploy long.
        pre_deploy: {command: ["athens", "migrate"], timeout: 30s}
  redis:
    image: cutover-test-redis:latest
    command: redis-server --appendonly yes --protected-mode no --dir /data
    volumes:
      - redis-data:/data
    # Its volume is its node's: pinned, it keeps its data, and a worker
    # the fault test kills never takes it away.
    deploy:
      placement:
        constraints: [node.role == manager]
volumes:
  redis-data: {}
"#;

/// What a test waits on in a swarm: tasks are scheduled, images are
/// started, overlays are joined on three engines at once.
const SWARM_PATIENCE: Duration = Duration::from_secs(90);

struct Cluster {
    swarm: TestSwarm,
    /// The test's own build of cutover, removed from the host's engine
    /// when the test ends (the swarm's nodes go with the swarm); held for
    /// its drop.
    _image: CutoverImage,
    dir: tempfile::TempDir,
    api: String,
    /// Every node's port 80.
    edges: Vec<SocketAddr>,
}

/// A swarm with the images loaded, before cutover's stack is deployed.
struct Nodes {
    swarm: TestSwarm,
    image: CutoverImage,
}

/// This build's image, in use by one cluster: the last one to go removes
/// it. Counted and built under the lock that removal holds, so it is never
/// built just before it is removed.
struct CutoverImage(String);

impl CutoverImage {
    fn ensure() -> CutoverImage {
        let mut alive = CLUSTERS.lock().unwrap_or_else(|e| e.into_inner());
        let tag = ensure_cutover_image(Path::new(bin())).unwrap();
        *alive += 1;
        CutoverImage(tag)
    }
}

impl Drop for CutoverImage {
    fn drop(&mut self) {
        let mut alive = CLUSTERS.lock().unwrap_or_else(|e| e.into_inner());
        *alive -= 1;
        if *alive == 0 {
            remove_image(&self.0);
        }
    }
}

impl Nodes {
    /// A swarm named after `tag`, with this build's image and the app's.
    fn up(tag: &str) -> Nodes {
        Nodes::up_with_managers(tag, 1)
    }

    /// As [`Nodes::up`], with the first `managers` of the three nodes
    /// managers.
    fn up_with_managers(tag: &str, managers: usize) -> Nodes {
        Nodes::up_sized(tag, 3, managers)
    }

    /// As [`Nodes::up`], `count` nodes, the first `managers` of them
    /// managers.
    fn up_sized(tag: &str, count: usize, managers: usize) -> Nodes {
        require_docker();
        let image = CutoverImage::ensure();
        let images = [
            image.0.as_str(),
            ensure_athens_image().unwrap(),
            ensure_redis_image().unwrap(),
        ];
        let swarm = TestSwarm::up_with_managers(tag, count, managers).unwrap();
        swarm.load(&images).unwrap();
        Nodes { swarm, image }
    }
}

/// Compose files deployed over dist/swarm/cutover.yml, and the variables
/// they read.
#[derive(Default)]
struct Stack {
    files: Vec<std::path::PathBuf>,
    env: Vec<(String, String)>,
}

impl Cluster {
    /// A swarm named after `tag`, its images, and cutover's stack on it.
    async fn up(tag: &str) -> Cluster {
        Cluster::on(Nodes::up(tag), Stack::default()).await
    }

    /// cutover's stack, with `extra`'s files over it, on `nodes`.
    async fn on(nodes: Nodes, extra: Stack) -> Cluster {
        let Nodes {
            swarm,
            image: cutover_image,
        } = nodes;
        let dir = tempfile::tempdir().unwrap();
        let addrs: Vec<&str> = swarm.nodes.iter().map(|n| n.addr.as_str()).collect();
        secrets(dir.path(), &addrs);
        let mut deploy = Command::new("docker");
        deploy
            .arg("-H")
            .arg(&swarm.manager().host)
            .args(["stack", "deploy", "-c"])
            .arg(workspace_root().join("dist/swarm/cutover.yml"));
        for file in &extra.files {
            deploy.arg("-c").arg(file);
        }
        let out = deploy
            .arg("cutover")
            .envs(extra.env.iter().map(|(k, v)| (k, v)))
            .env("CUTOVER_IMAGE", &cutover_image.0)
            .env("CUTOVER_EDGE_TOKEN_FILE", dir.path().join("edge-token"))
            .env("CUTOVER_TOKEN_FILE", dir.path().join("token"))
            .env("CUTOVER_TLS_CERT_FILE", dir.path().join("cert.pem"))
            .env("CUTOVER_TLS_KEY_FILE", dir.path().join("key.pem"))
            .env(
                "CUTOVER_EDGE_TLS_CERT_FILE",
                dir.path().join("edge-cert.pem"),
            )
            .env("CUTOVER_EDGE_TLS_KEY_FILE", dir.path().join("edge-key.pem"))
            .output()
            .unwrap();
        assert!(out.status.success(), "docker stack deploy: {}", text(&out));
        let edges: Vec<SocketAddr> = swarm
            .nodes
            .iter()
            .map(|n| format!("{}:80", n.addr).parse().unwrap())
            .collect();
        for edge in &edges {
            wait_for(&format!("the edge at {edge}"), || async {
                matches!(tcp_request(*edge, Method::GET, "/_cutover/health", &[]).await, Ok((s, _)) if s.is_success())
            })
            .await;
        }
        // The managers count each edge as running (what gives a node its
        // vote) a moment after the edge first answers.
        let all = format!("cutover_edge {0}/{0}", swarm.nodes.len());
        wait_for("every edge running, as the managers see it", || async {
            swarm
                .docker(0, &["service", "ls", "--format", "{{.Name}} {{.Replicas}}"])
                .is_ok_and(|out| out.lines().any(|l| l == all))
        })
        .await;
        let api = deploy_api(&swarm, 0).await;
        Cluster {
            swarm,
            _image: cutover_image,
            dir,
            api,
            edges,
        }
    }

    /// `cutover deploy --version VERSION` of the app answering VERSION.
    fn deploy(&self, version: &str, env: &[(&str, &str)]) -> Output {
        let mut env = env.to_vec();
        env.push(("VERSION", version));
        self.cli(&["deploy", "--version", version], &env)
    }

    /// `cutover ARGS` from the project's folder, against the manager.
    fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().unwrap()
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = cutover();
        cmd.current_dir(self.dir.path())
            .args(["--host", &self.api, "--tls-ca"])
            .arg(self.dir.path().join("cert.pem"))
            .arg("--token-file")
            .arg(self.dir.path().join("token"))
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// `docker ARGS` against the manager's engine; its stdout.
    fn docker(&self, args: &[&str]) -> String {
        self.swarm.docker(0, args).unwrap()
    }
}

/// Clusters of this process alive (or being set up): they share the
/// image of this build.
static CLUSTERS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

/// The URL of the deploy API, on whichever manager the swarm runs it,
/// asking node `via`'s engine; once it answers. The deploy engine connects
/// to the manager's engine before it listens: its port accepting means it
/// is ready.
async fn deploy_api(swarm: &TestSwarm, via: usize) -> String {
    let mut addr = None;
    wait_for("the deploy API", || {
        let node = swarm
            .docker(
                via,
                &[
                    "service",
                    "ps",
                    "cutover_control",
                    "--filter",
                    "desired-state=running",
                    "--format",
                    "{{.Node}} {{.CurrentState}}",
                ],
            )
            .unwrap_or_default();
        let running = node
            .lines()
            .find(|l| l.contains(" Running"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| swarm.nodes.iter().find(|s| s.name == n));
        addr = running.map(|n| format!("{}:26090", n.addr).parse::<SocketAddr>().unwrap());
        let at = addr;
        async move {
            match at {
                Some(at) => tokio::net::TcpStream::connect(at).await.is_ok(),
                None => false,
            }
        }
    })
    .await;
    format!("https://{}", addr.unwrap())
}

/// The edges' and the API's tokens, a certificate for every node's
/// address (the deploy API runs on one of the managers) that the CLI
/// trusts with --tls-ca, and the edges' certificate for the name the
/// deploy engine checks.
fn secrets(dir: &Path, nodes: &[&str]) {
    std::fs::write(dir.join("edge-token"), EDGE_TOKEN).unwrap();
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let api: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
    for (names, prefix) in [(api, ""), (vec!["cutover-edge".to_string()], "edge-")] {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(names).unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{prefix}cert.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{prefix}key.pem")), key.serialize_pem()).unwrap();
    }
    std::fs::write(dir.join("compose.yaml"), COMPOSE).unwrap();
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < SWARM_PATIENCE {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{what} was not ready within {SWARM_PATIENCE:?}");
}

/// The gap between the nodes' switches the deploy reported, in ms.
fn spread_ms(out: &str) -> u64 {
    let at = out
        .find(" ms of each other")
        .unwrap_or_else(|| panic!("the deploy did not report the nodes' spread:\n{out}"));
    let digits: String = out[..at]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.chars().rev().collect::<String>().parse().unwrap()
}

/// WebSocket clients of two libraries nobody here wrote (aiohttp and
/// websockets), one of each on a node's edge, each sending every 250 ms.
struct WsClients {
    edge: SocketAddr,
    _child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl WsClients {
    async fn connect(edge: SocketAddr) -> WsClients {
        use tokio::io::AsyncBufReadExt;
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../cutover-proxy/tests/ws_clients.py"
        );
        let mut child = tokio::process::Command::new("/usr/bin/python3")
            .arg(script)
            .args([
                edge.to_string(),
                "shop.test".into(),
                "1".into(),
                "120".into(),
            ])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("/usr/bin/python3 runs with aiohttp and websockets (scripts/deps.sh)");
        let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut clients = WsClients {
            edge,
            _child: child,
            lines,
        };
        for _ in 0..2 {
            let line = clients.next().await;
            assert!(line.starts_with("connected "), "{edge}: {line}");
        }
        clients
    }

    async fn next(&mut self) -> String {
        tokio::time::timeout(SWARM_PATIENCE, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("the WebSocket clients on {} said nothing", self.edge))
            .unwrap()
            .expect("the WebSocket client script ended early")
    }

    /// How each client's WebSocket ended.
    async fn ends(mut self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for _ in 0..2 {
            out.push(serde_json::from_str(&self.next().await).unwrap());
        }
        out
    }
}

/// The accessory's one task, by id: the same across deploys.
fn redis_task(c: &Cluster) -> String {
    c.docker(&[
        "service",
        "ps",
        "-q",
        "--filter",
        "desired-state=running",
        "shop_redis",
    ])
    .trim()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploys_switch_every_node_together_under_load() {
    let c = Cluster::up("deploy").await;

    // 0. Without one certificate folder for all edges (no https.yml), an
    //    app with `tls: true` is refused before anything starts.
    let compose = c.dir.path().join("compose.yaml");
    let plain = std::fs::read_to_string(&compose).unwrap();
    let tls = plain.replace(
        "    x-cutover:\n",
        "    x-cutover:\n      hosts: [shop.example]\n      tls: true\n",
    );
    std::fs::write(&compose, tls).unwrap();
    let out = c.deploy("v0", &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("do not share one certificate storage"),
        "{said}"
    );
    for node in &c.swarm.nodes {
        assert!(said.contains(&node.name), "{said}");
    }
    assert!(!services(&c).contains("shop_"), "{}", services(&c));
    std::fs::write(&compose, plain).unwrap();

    // 1. The first deploy: every node serves v1, and Redis counts.
    let out = c.deploy("v1", &[]);
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    assert!(text(&out).contains("3 nodes switched"), "{}", text(&out));
    // The migration ran before the new color, and said so.
    assert!(
        text(&out).contains("shop_web_pre_deploy") && text(&out).contains("the store"),
        "{}",
        text(&out)
    );
    for edge in &c.edges {
        serves(*edge, "v1").await;
    }
    let redis = redis_task(&c);
    assert!(!redis.is_empty(), "the accessory runs");
    let mut visits = vec![visit(c.edges[0]).await];

    // 2. Under HTTP load on all three nodes, and WebSockets on each: v2.
    let loads: Vec<Load> = c.edges.iter().map(|e| Load::start(*e)).collect();
    let mut sockets = Vec::new();
    for edge in &c.edges {
        sockets.push(WsClients::connect(*edge).await);
    }
    let out = c.deploy("v2", &[]);
    assert!(out.status.success(), "deploy v2: {}", text(&out));
    let spread = spread_ms(&text(&out));
    eprintln!("v2: the nodes switched within {spread} ms of each other");
    for edge in &c.edges {
        serves(*edge, "v2").await;
    }
    visits.push(visit(c.edges[1]).await);
    // The WebSockets on v1 got 1012 at its drain deadline, on every node,
    // before the deploy scaled v1 down.
    for clients in sockets {
        let edge = clients.edge;
        for end in clients.ends().await {
            assert_eq!(end["close"], 1012, "{edge}: {end}");
        }
    }

    // 3. A version no node can reach: it fails, naming every node, and
    //    switches none.
    let out = c.deploy("v3", &[("APP_PORT", "9999")]);
    let all = text(&out);
    assert!(
        !out.status.success(),
        "a version no node can reach must fail: {all}"
    );
    assert!(all.contains("nothing was switched on any"), "{all}");
    for node in &c.swarm.nodes {
        assert!(all.contains(&node.name), "every node says why: {all}");
    }
    let listed = services(&c);
    assert!(
        !listed.contains("shop_web_blue 3/3") && listed.contains("shop_web_green 3/3"),
        "the failed color is removed and the live one runs: {listed}"
    );

    // 4. v4, v5 and v6, each switching every node.
    for (n, v) in ["v4", "v5", "v6"].iter().enumerate() {
        let out = c.deploy(v, &[]);
        assert!(out.status.success(), "deploy {v}: {}", text(&out));
        for edge in &c.edges {
            serves(*edge, v).await;
        }
        visits.push(visit(c.edges[n % 3]).await);
    }
    // v5 is kept at 0 tasks (its last ones may still be stopping).
    wait_for("v5 at 0 tasks", || async {
        services(&c).contains("shop_web_green 0/0")
    })
    .await;
    assert!(
        services(&c).contains("shop_web_blue 3/3"),
        "{}",
        services(&c)
    );

    // 5. A rollback runs v5 again and switches every node back to it.
    let out = c.cli(&["rollback", "-p", "shop"], &[]);
    assert!(out.status.success(), "rollback: {}", text(&out));
    assert!(
        text(&out).contains("rolled web back to v5 (green) on 3 nodes"),
        "{}",
        text(&out)
    );
    for edge in &c.edges {
        serves(*edge, "v5").await;
    }
    visits.push(visit(c.edges[2]).await);
    for (edge, load) in c.edges.iter().zip(loads) {
        let tally = load.stop().await;
        let versions = by_version(&tally);
        eprintln!("load on {edge}: {versions:?}");
        tally.assert_none_failed();
        assert!(
            !versions.contains_key("v3"),
            "v3 never served: {versions:?}"
        );
        for v in ["v1", "v2", "v4", "v5", "v6"] {
            assert!(versions.contains_key(v), "the load saw {v}: {versions:?}");
        }
    }
    wait_for("v6 at 0 tasks", || async {
        services(&c).contains("shop_web_blue 0/0")
    })
    .await;

    // 6. Redis is the same task, and its counter counted on: one more at
    //    each visit, through every deploy and the rollback.
    assert_eq!(
        redis_task(&c),
        redis,
        "the accessory lived across the deploys"
    );
    let expected: Vec<u64> = (visits[0]..visits[0] + visits.len() as u64).collect();
    assert_eq!(visits, expected, "the counter was kept");

    // 7. Every node's view: the same color and version, all targets healthy.
    let out = c.cli(&["status"], &[("VERSION", "v5")]);
    let status = text(&out);
    assert!(out.status.success(), "{status}");
    for node in &c.swarm.nodes {
        let line = status
            .lines()
            .find(|l| l.starts_with(&node.name))
            .unwrap_or_else(|| panic!("no line for {}: {status}", node.name));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&cells[1..5], ["shop/web", "green", "v5", "3/3"], "{status}");
    }
    assert!(
        status.contains("every node that answered serves the same versions"),
        "{status}"
    );

    // 7b. `history`: each deploy and the rollback of web, in order, with
    //     v3's failure; the refused v0 as the operation's own line.
    let out = c.cli(&["history", "-p", "shop", "--json"], &[]);
    assert!(out.status.success(), "history: {}", text(&out));
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let web: Vec<String> = entries
        .iter()
        .filter(|e| e["service"] == "web" && e["operation"] != "pre_deploy")
        .map(|e| format!("{} {} {}", e["operation"], e["version"], e["result"]).replace('"', ""))
        .collect();
    assert_eq!(
        web,
        [
            "deploy v1 ok",
            "deploy v2 ok",
            "deploy v3 failed",
            "deploy v4 ok",
            "deploy v5 ok",
            "deploy v6 ok",
            "rollback v5 ok"
        ],
        "{entries:?}"
    );
    // Each deploy's migration, v3's too (its port is wrong, not its store).
    let migrations = entries
        .iter()
        .filter(|e| e["operation"] == "pre_deploy" && e["result"] == "ok")
        .count();
    assert_eq!(migrations, 6, "{entries:?}");
    assert!(
        entries.iter().any(|e| e["version"] == "v0"
            && e["result"] == "invalid"
            && e["error"]
                .as_str()
                .is_some_and(|m| m.contains("certificate storage"))),
        "{entries:?}"
    );

    // 7c. `logs`: the live color's three tasks, each line named by its
    //     slot and node; an accessory's one task as it is.
    let out = c.cli(&["logs", "web", "-p", "shop", "--tail", "50"], &[]);
    let logs = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "logs: {}", text(&out));
    let lines: Vec<&str> = logs.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        lines.iter().any(|l| l.contains("athens")),
        "athens logs at start: {logs}"
    );
    assert!(
        lines.iter().all(|l| l.starts_with("shop_web_green.")),
        "{logs}"
    );
    let tasks: std::collections::BTreeSet<&str> =
        lines.iter().filter_map(|l| l.split(" | ").next()).collect();
    assert_eq!(tasks.len(), 3, "three tasks: {tasks:?}");
    for t in &tasks {
        let node = t.rsplit_once('@').map(|(_, n)| n).unwrap_or_default();
        assert!(
            c.swarm.nodes.iter().any(|n| n.name == node),
            "{t} names its node"
        );
    }
    let out = c.cli(&["logs", "redis", "-p", "shop"], &[]);
    let logs = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(logs.contains("Ready to accept connections"), "{logs}");
    assert!(!logs.contains(" | "), "one task, no prefix: {logs}");

    // 8. Deploying the version that serves changes nothing.
    let out = c.deploy("v5", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("up to date"), "{}", text(&out));

    // 8b. `plan` says what a deploy would do, and does nothing: the
    //     live version is up to date, a new one goes to the idle color.
    let plan = |version: &str| {
        let out = c.cli(&["plan", "--json"], &[("VERSION", version)]);
        assert!(out.status.success(), "plan {version}: {}", text(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let steps = |plan: &serde_json::Value| -> Vec<String> {
        plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let name = s["container"].as_str().or(s["service"].as_str());
                format!("{} {}", s["step"].as_str().unwrap(), name.unwrap())
            })
            .collect()
    };
    let same = plan("v5");
    assert_eq!(
        steps(&same),
        ["leave_accessory shop_redis", "app_up_to_date web"],
        "{same}"
    );
    let next = plan("v7");
    assert_eq!(
        steps(&next),
        ["leave_accessory shop_redis", "deploy_app shop_web_blue"],
        "{next}"
    );
    assert_eq!(next["steps"][1]["reason"]["fields"][0], "config", "{next}");
    assert!(
        services(&c).contains("shop_web_green 3/3"),
        "{}",
        services(&c)
    );

    // 9. `down`: no node routes to the app, and the project's services and
    //    networks are gone; the volumes stay (`down --volumes` is
    //    swarm/global.rs's).
    let out = c.cli(&["down", "-p", "shop"], &[]);
    let said = text(&out);
    assert!(out.status.success(), "down: {said}");
    for edge in &c.edges {
        let (status, _) = tcp_request(*edge, Method::GET, "/", &[]).await.unwrap();
        assert_eq!(status, 404, "{edge} routes nothing");
    }
    let left = services(&c);
    assert!(!left.contains("shop_"), "no service, no hook job: {left}");
    // The manager forgets a removed network once its last task is gone.
    wait_for("the project's network removed", || async {
        !c.docker(&["network", "ls", "--format", "{{.Name}}"])
            .lines()
            .any(|n| n == "shop_default")
    })
    .await;
    assert!(said.contains("its volumes stay"), "{said}");
}

/// athens and its Redis as the smaller swarm tests write them: project
/// `name`; `web` with `web_extra` (lines at the service's keys' indent,
/// four spaces) and its `x-cutover` with `cutover_extra` (six spaces);
/// probes every 500 ms and 1 s drains. `ATHENS_IMAGE` replaces the image.
fn athens_compose(name: &str, web_extra: &str, cutover_extra: &str) -> String {
    format!(
        r#"
name: {name}
services:
  web:
    image: ${{ATHENS_IMAGE:-cutover-test-athens:latest}}
    environment:
      REDIS_HOST: redis
      REDIS_PORT: "6379"
      APP_VERSION: ${{VERSION}}
{web_extra}    x-cutover:
      port: 8080
      deploy_timeout: 20s
      drain_timeout: 1s
      websocket_drain_timeout: 1s
      health:
        path: /api/v1/open/health-check
        interval: 500ms
{cutover_extra}  redis:
    image: cutover-test-redis:latest
    command: redis-server --protected-mode no
"#
    )
}

/// Waits until the managers report node `name` down.
async fn wait_down(c: &Cluster, name: &str) {
    wait_for(&format!("{name} reported down"), || async {
        c.docker(&["node", "ls", "--format", "{{.Hostname}} {{.Status}}"])
            .lines()
            .any(|l| l == format!("{name} Down"))
    })
    .await;
}

/// What `cat PATH`, or the command given, prints in the running task of
/// `service`, on whichever node runs it.
fn in_task(c: &Cluster, service: &str, what: &str) -> String {
    let command = if what.starts_with('/') {
        format!("cat {what}")
    } else {
        what.to_string()
    };
    let out = task_exec(c, service, &command).output().unwrap();
    assert!(
        out.status.success(),
        "in {service}: {command}: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The nodes where `service` has a running task.
fn running_on(c: &Cluster, service: &str) -> std::collections::BTreeSet<String> {
    c.docker(&[
        "service",
        "ps",
        service,
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Node}} {{.CurrentState}}",
    ])
    .lines()
    .filter(|l| l.contains(" Running"))
    .filter_map(|l| l.split_whitespace().next().map(String::from))
    .collect()
}

/// `docker exec` of `bash -c COMMAND` in the running task of `service`, on
/// the engine of whichever node runs it, not started yet.
fn task_exec(c: &Cluster, service: &str, command: &str) -> Command {
    let node = running_on(c, service)
        .into_iter()
        .next()
        .unwrap_or_default();
    let i = c
        .swarm
        .nodes
        .iter()
        .position(|n| n.name == node)
        .unwrap_or_else(|| panic!("{service} runs on no node of the swarm: {node:?}"));
    let filter = format!("label=com.docker.swarm.service.name={service}");
    let ids = c
        .swarm
        .docker(i, &["ps", "-q", "--filter", &filter])
        .unwrap();
    let id = ids
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no container of {service}"));
    let mut cmd = Command::new("docker");
    cmd.arg("-H")
        .arg(&c.swarm.nodes[i].host)
        .args(["exec", id, "bash", "-c", command]);
    cmd
}

/// `docker ARGS` on the host's engine, where the nodes are containers
/// (`kill`, `start` a node).
fn host_docker(args: &[&str]) {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(out.status.success(), "docker {args:?}: {}", text(&out));
}

/// `NAME REPLICAS` of every service of the swarm, one per line.
fn services(c: &Cluster) -> String {
    c.docker(&["service", "ls", "--format", "{{.Name}} {{.Replicas}}"])
}

/// The version athens answers `/` with at `edge`, or why there is none.
async fn version(edge: SocketAddr) -> String {
    match tcp_request(edge, Method::GET, "/", &[]).await {
        Ok((s, body)) if s.is_success() => version_in(&body),
        Ok((s, body)) => format!("{s}: {}", String::from_utf8_lossy(&body)),
        Err(e) => format!("error: {e}"),
    }
}

fn version_in(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["version"].as_str().map(String::from))
        .unwrap_or_else(|| format!("not athens: {}", String::from_utf8_lossy(body)))
}

/// Polls `edge` until it answers `/` with version `want`.
async fn serves(edge: SocketAddr, want: &str) {
    wait_for(&format!("{edge} serving {want}"), || async {
        version(edge).await == want
    })
    .await;
}

/// The answers of a load by version (athens names its instance in each).
fn by_version(tally: &Tally) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for (body, n) in &tally.bodies {
        *out.entry(version_in(body.as_bytes())).or_default() += n;
    }
    out
}

/// Athens' Redis counter, one visit more.
async fn visit(edge: SocketAddr) -> u64 {
    let (status, body) = tcp_request(edge, Method::GET, "/api/v1/visits", &[])
        .await
        .unwrap();
    assert!(
        status.is_success(),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["count"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_lost_mid_deploy_does_not_wedge_it_and_comes_back_on_the_current_color() {
    let c = Cluster::up("faults").await;
    let out = c.deploy("v1", &[]);
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    let lost = c.swarm.nodes[2].name.clone();
    let (alive, lost_edge) = (&c.edges[..2], c.edges[2]);

    // 1. A worker dies while v2 deploys. The rule: a node the managers
    //    still report ready but whose edge does not answer aborts the
    //    switch; nothing is left half-done, and the deploy ends.
    let mut deploy = tokio::process::Command::from(
        c.command(&["deploy", "--version", "v2"], &[("VERSION", "v2")]),
    );
    let deploy = deploy.kill_on_drop(true).output();
    let kill = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        host_docker(&["kill", &lost]);
    };
    let (out, ()) = tokio::join!(tokio::time::timeout(Duration::from_secs(180), deploy), kill);
    let out = out
        .expect("the deploy ends though a node died under it")
        .unwrap();
    eprintln!(
        "deploy v2 with {lost} lost: {:?}\n{}",
        out.status.code(),
        text(&out)
    );
    let (a, b) = (version(alive[0]).await, version(alive[1]).await);
    assert!(
        a == b && (a == "v1" || a == "v2"),
        "the live nodes serve one version: {a:?} {b:?}"
    );

    // 2. Once the managers report it down, it has no vote: a deploy
    //    finishes on the live nodes.
    wait_down(&c, &lost).await;
    let out = c.deploy("v3", &[]);
    assert!(
        out.status.success(),
        "deploy v3 on the live nodes: {}",
        text(&out)
    );
    assert!(text(&out).contains("2 nodes switched"), "{}", text(&out));
    for edge in alive {
        serves(*edge, "v3").await;
    }

    // 3. It comes back: its edge restored the routes it had saved, and is
    //    brought to v3 (the reconcile pass), with every node agreeing.
    host_docker(&["start", &lost]);
    wait_for("the node that came back serving v3", || async {
        version(lost_edge).await == "v3"
    })
    .await;
    wait_for("every node agreeing", || async {
        let out = c.cli(&["status"], &[("VERSION", "v3")]);
        let status = text(&out);
        status.contains("every node that answered serves the same versions")
            && status
                .lines()
                .filter(|l| {
                    let cells: Vec<&str> = l.split_whitespace().collect();
                    cells.get(1) == Some(&"shop/web") && cells.get(3) == Some(&"v3")
                })
                .count()
                == 3
    })
    .await;
}
