use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover_core::compose::*;
use cutover_core::service::Color;

mod common;

use common::Shown;

/// The project's other files (env files, included and extended compose
/// files) served from memory, keyed by absolute path.
#[derive(Default)]
struct MemFiles(BTreeMap<PathBuf, String>);

impl MemFiles {
    /// An env file of `pairs`, single-quoted so every value is literal.
    fn with(self, path: &str, pairs: &[(&str, &str)]) -> Self {
        let text: String = pairs.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
        self.file(path, text)
    }

    fn file(mut self, path: &str, content: impl Into<String>) -> Self {
        self.0.insert(PathBuf::from(path), content.into());
        self
    }
}

impl ProjectFiles for MemFiles {
    fn read_file(&self, path: &Path) -> Result<Option<String>, cutover_core::diag::Report> {
        Ok(self.0.get(path).cloned())
    }
}

const DIR: &str = "/srv/athens";

fn input(files: &[(&str, &str)], env: &[(&str, &str)]) -> LoadInput {
    LoadInput {
        files: files
            .iter()
            .map(|(p, c)| ComposeFile {
                path: PathBuf::from(p),
                content: c.to_string(),
            })
            .collect(),
        project_dir: PathBuf::from(DIR),
        project_name: None,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn load_one(src: &str, env: &[(&str, &str)]) -> Result<ResolvedProject, ComposeError> {
    load(&input(&[("compose.yaml", src)], env), &MemFiles::default())
}

fn ok(src: &str) -> ResolvedProject {
    match load_one(src, &[("HOME", "/home/ci")]) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn err(src: &str) -> String {
    load_one(src, &[]).expect_err("expected an error").shown()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/field-report")
            .join(name),
    )
    .unwrap()
}

fn field_report_env() -> MemFiles {
    MemFiles::default().with(
        "/srv/athens/.env",
        &[("REDIS_HOST", "redis"), ("REDIS_PORT", "6379")],
    )
}

fn field_report(image: &str) -> ResolvedProject {
    let inp = input(
        &[("compose.yaml", &fixture("compose.yaml"))],
        &[("DOCKER_IMAGE", image)],
    );
    load(&inp, &field_report_env()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn field_report_as_one_file() {
    let p = field_report("registry.example/athens:42");
    assert_eq!(p.name, "athens");
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let app = p.app("backend").unwrap();
    assert_eq!(app.service.image, "registry.example/athens:42");
    assert_eq!(app.cutover.port, 8080);
    assert_eq!(app.cutover.health.path, "/api/v1/open/health-check");
    assert_eq!(
        app.cutover.timeouts.websocket_drain,
        Duration::from_secs(600)
    );
    assert_eq!(app.cutover.keep, 3);
    assert_eq!(
        cutover_core::naming::app_slot(&p.name, "backend", Color::Green),
        "athens-backend-green"
    );
    assert_eq!(
        app.service.environment,
        BTreeMap::from([
            ("REDIS_HOST".to_string(), "redis".to_string()),
            ("REDIS_PORT".to_string(), "6379".to_string())
        ])
    );
    assert_eq!(
        app.service.mounts,
        [Mount::Bind {
            source: "/srv/athens/log".into(),
            target: "/log".into(),
            read_only: false,
            create_host_path: true,
            selinux: None
        }]
    );
    assert_eq!(
        app.service.depends_on[0].condition,
        DependsCondition::ServiceHealthy
    );
    let redis = p.accessory("redis").unwrap();
    assert_eq!(redis.container_name, "athens-redis");
    assert!(redis.service.ports.is_empty());
    assert_eq!(
        p.networks
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["athens_app-network"]
    );
    assert_eq!(app.service.networks[0].name, "athens_app-network");
    assert_eq!(p.volumes[0].name, "athens_redis-data");
    assert_eq!(
        redis.service.mounts[0],
        Mount::Volume {
            source: Some("athens_redis-data".into()),
            target: "/data".into(),
            read_only: false,
            nocopy: false
        }
    );
    assert_eq!(redis.service.networks[0].aliases, ["redis"]);
    assert!(app.service.networks[0].aliases.is_empty());
    insta::assert_json_snapshot!("field_report_resolved", p);
    // A change here changes every deployed version's identity: upgrading
    // cutover would redeploy every app. Make it on purpose only.
    insta::assert_snapshot!("field_report_config_hash", config_hash(&app.service));
}

#[test]
fn field_report_requires_docker_image() {
    let inp = input(&[("compose.yaml", &fixture("compose.yaml"))], &[]);
    let e = load(&inp, &field_report_env()).unwrap_err().shown();
    insta::assert_snapshot!("field_report_missing_image", e);
}

/// The report's first file, with only `x-cutover` added: the daemon
/// listens on the app's published port, the colors are named from its
/// container_name, and what needs a look is a warning, not an error.
#[test]
fn field_report_original_file_loads_with_its_ports_and_container_name() {
    let inp = input(
        &[("docker-compose.yml", &fixture("original.yaml"))],
        &[("DOCKER_IMAGE", "athens:1")],
    );
    let p = load(&inp, &field_report_env()).unwrap_or_else(|e| panic!("{e}"));
    let backend = p.app("backend").unwrap();
    assert_eq!(backend.cutover.listen, ["0.0.0.0:8080"]);
    assert_eq!(backend.slot(&p.name, Color::Blue), "athens-backend-blue");
    let text: Vec<String> = p.warnings.iter().map(|w| w.shown()).collect();
    insta::assert_snapshot!("field_report_original_warnings", text.join("\n"));
}

#[test]
fn two_services_on_one_host_port_is_an_error_naming_both() {
    let e = err("services:\n  web:\n    image: app\n    ports: [\"8080:8080\"]\n    x-cutover: {}\n  admin:\n    image: admin\n    ports: [\"127.0.0.1:8080:80\"]\n");
    assert!(
        e.contains(
            "compose.yaml:8:13: services.admin.ports[0]: host port 8080 is published by web too"
        ),
        "{e}"
    );
    let e = err("services:\n  web:\n    image: app\n    ports: [\"8080:8080\", \"9090:9090\"]\n    x-cutover: {port: 8080}\n");
    assert!(e.contains("cutover forwards one port of an app, x-cutover.port 8080 over TCP; this entry publishes 9090/tcp"), "{e}");
}

#[test]
fn datastore_port_and_obsolete_keys_warn() {
    let p = ok(r#"
version: "3.8"
services:
  redis:
    image: redis:7
    ports: ["6379:6379", "127.0.0.1:6380:6379"]
    deploy: {replicas: 2}
"#);
    let text: Vec<String> = p.warnings.iter().map(|w| w.shown()).collect();
    insta::assert_snapshot!("warnings", text.join("\n"));
}

// ---- interpolation ----

#[test]
fn interpolation_every_form() {
    let p = load_one(
        r#"
services:
  web:
    image: ${IMG}
    command: [a$A, "${A}", "${NOPE:-d}", "${NOPE-d}", "${EMPTY:-d}", "${EMPTY-d}", "${A:+alt}", "${NOPE+alt}", "${EMPTY+alt}", "${NOPE:-${A}x}", "$$A", "${EMPTY?unused}"]
"#,
        &[("IMG", "app:42"), ("A", "1"), ("EMPTY", "")],
    )
    .unwrap();
    let web = p.accessory("web").unwrap();
    assert_eq!(web.service.image, "app:42");
    assert_eq!(
        web.service.command.as_deref().unwrap(),
        ["a1", "1", "d", "d", "d", "", "alt", "", "alt", "1x", "$A", ""]
    );
}

#[test]
fn interpolation_errors_name_file_line_and_variable() {
    let e = err("services:\n  web:\n    image: app\n    environment:\n      DB: ${DB_URL:?set it to the database URL}\n      X: ${EMPTY:?}\n");
    insta::assert_snapshot!("interpolation_required", e);
    let e = err("services:\n  web:\n    image: app\n    command: echo ${ foo}\n");
    insta::assert_snapshot!("interpolation_invalid", e);
}

#[test]
fn unset_variable_warns_once_with_line() {
    let p = load_one(
        "services:\n  web:\n    image: app:${TAG}\n    labels: [\"x=${TAG}\"]\n",
        &[],
    )
    .unwrap();
    assert_eq!(p.accessory("web").unwrap().service.image, "app:");
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(
        p.warnings[0].shown(),
        "compose.yaml:3:5: services.web.image: variable TAG is not set, using an empty string\n\
         hint: set TAG in the environment or in .env, or give a default: ${TAG:-value}"
    );
}

#[test]
fn keys_are_not_interpolated() {
    let p = ok("services:\n  web:\n    image: app\n    labels:\n      $$x: v\n");
    assert!(p
        .accessory("web")
        .unwrap()
        .service
        .labels
        .contains_key("$$x"));
}

// ---- merge of -f files ----

#[test]
fn later_files_override_earlier_ones() {
    let base = r#"
name: athens
services:
  backend:
    image: app:1
    command: java -jar app.jar
    environment: [A=1, B=2]
    volumes: ["./log:/log", "./data:/data"]
    x-cutover: {port: 8080, hosts: [a.example]}
  redis:
    image: redis:7
"#;
    let over = r#"
services:
  backend:
    image: app:2
    command: ["java", "-Xmx1g", "-jar", "app.jar"]
    environment: {B: "3", C: "4"}
    volumes: ["./other-log:/log"]
    x-cutover: {hosts: [b.example], keep: 5}
  redis:
    ports: ["127.0.0.1:6379:6379"]
"#;
    let p = load(
        &input(&[("compose.yaml", base), ("compose.prod.yaml", over)], &[]),
        &MemFiles::default(),
    )
    .unwrap();
    let b = p.app("backend").unwrap();
    assert_eq!(b.service.image, "app:2");
    assert_eq!(
        b.service.command.as_deref().unwrap(),
        ["java", "-Xmx1g", "-jar", "app.jar"]
    );
    assert_eq!(
        b.service
            .environment
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
        ["A=1", "B=3", "C=4"]
    );
    let targets: Vec<String> = b
        .service
        .mounts
        .iter()
        .map(|m| match m {
            Mount::Bind { source, target, .. } => format!("{}:{target}", source.display()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        targets,
        ["/srv/athens/other-log:/log", "/srv/athens/data:/data"]
    );
    assert_eq!(b.cutover.port, 8080);
    assert_eq!(b.cutover.hosts, ["b.example"]);
    assert_eq!(b.cutover.keep, 5);
    assert_eq!(
        p.accessory("redis").unwrap().service.ports[0]
            .host_ip
            .as_deref(),
        Some("127.0.0.1")
    );
}

#[test]
fn errors_point_into_the_file_that_defines_the_key() {
    let base = "services:\n  backend:\n    image: app\n    x-cutover:\n      port: 8080\n";
    let over = "services:\n  backend:\n    x-cutover:\n      prot: 8081\n";
    let e = load(
        &input(
            &[("compose.yaml", base), ("compose.override.yaml", over)],
            &[],
        ),
        &MemFiles::default(),
    )
    .unwrap_err()
    .shown();
    assert_eq!(
        e,
        "compose.override.yaml:4:7: services.backend.x-cutover.prot: unknown key `prot`\nhint: did you mean `port`?"
    );
}

// ---- supported keys, short and long syntax ----

#[test]
fn volumes_short_and_long() {
    let p = ok(r#"
services:
  db:
    image: postgres:16
    volumes:
      - pgdata:/var/lib/postgresql/data
      - ./init:/docker-entrypoint-initdb.d:ro,z
      - ~/backups:/backups
      - /cache
      - type: bind
        source: ../shared
        target: /shared
        read_only: true
        bind: {create_host_path: false}
      - type: volume
        source: other
        target: /other
        volume: {nocopy: true}
      - type: tmpfs
        target: /tmp
        tmpfs: {size: 1048576}
volumes:
  pgdata: {}
  other: {name: exact-name}
"#);
    let m = &p.accessory("db").unwrap().service.mounts;
    assert_eq!(
        m,
        &[
            Mount::Volume {
                source: Some("athens_pgdata".into()),
                target: "/var/lib/postgresql/data".into(),
                read_only: false,
                nocopy: false
            },
            Mount::Bind {
                source: "/srv/athens/init".into(),
                target: "/docker-entrypoint-initdb.d".into(),
                read_only: true,
                create_host_path: true,
                selinux: Some("z".into())
            },
            Mount::Bind {
                source: "/home/ci/backups".into(),
                target: "/backups".into(),
                read_only: false,
                create_host_path: true,
                selinux: None
            },
            Mount::Volume {
                source: None,
                target: "/cache".into(),
                read_only: false,
                nocopy: false
            },
            Mount::Bind {
                source: "/srv/shared".into(),
                target: "/shared".into(),
                read_only: true,
                create_host_path: false,
                selinux: None
            },
            Mount::Volume {
                source: Some("exact-name".into()),
                target: "/other".into(),
                read_only: false,
                nocopy: true
            },
            Mount::Tmpfs {
                target: "/tmp".into(),
                size: Some(1048576),
                mode: None
            },
        ]
    );
}

#[test]
fn ports_short_and_long() {
    let p = ok(r#"
services:
  web:
    image: nginx
    ports:
      - 80
      - "8443:443"
      - "127.0.0.1:9000-9001:9000-9001/udp"
      - target: 8080
        published: "18080"
        host_ip: 10.0.0.1
        protocol: tcp
        mode: host
"#);
    let ports: Vec<String> = p
        .accessory("web")
        .unwrap()
        .service
        .ports
        .iter()
        .map(|p| {
            format!(
                "{}:{:?}:{}/{}",
                p.host_ip.as_deref().unwrap_or("*"),
                p.published,
                p.target,
                p.protocol
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            "*:None:80/tcp",
            "*:Some(8443):443/tcp",
            "127.0.0.1:Some(9000):9000/udp",
            "127.0.0.1:Some(9001):9001/udp",
            "10.0.0.1:Some(18080):8080/tcp"
        ]
    );
}

#[test]
fn networks_list_map_external_and_default() {
    let p = ok(r#"
services:
  api:
    image: api
    networks:
      front:
        aliases: [api.internal]
      shared:
  worker:
    image: worker
networks:
  front: {name: exact-front}
  shared: {external: true}
  back: {external: true, name: corp_back}
"#);
    let api = &p.accessory("api").unwrap().service;
    assert_eq!(
        api.networks,
        [
            ServiceNetwork {
                key: "front".into(),
                name: "exact-front".into(),
                aliases: vec!["api".into(), "api.internal".into()],
                ipv4_address: None,
                ipv6_address: None,
            },
            ServiceNetwork {
                key: "shared".into(),
                name: "shared".into(),
                aliases: vec!["api".into()],
                ipv4_address: None,
                ipv6_address: None,
            },
        ]
    );
    let worker = &p.accessory("worker").unwrap().service;
    assert_eq!(worker.networks[0].name, "athens_default");
    let names: Vec<(&str, bool)> = p
        .networks
        .iter()
        .map(|n| (n.name.as_str(), n.external))
        .collect();
    // `back` is used by no service: like Compose, cutover leaves it out.
    assert_eq!(
        names,
        [
            ("exact-front", false),
            ("shared", true),
            ("athens_default", false)
        ]
    );
}

#[test]
fn environment_env_file_labels_and_more() {
    let src = r#"
name: shop
services:
  api:
    build:
      context: ./api
      dockerfile: Dockerfile.prod
      args: [VERSION=1.2, FROM_ENV]
      target: runtime
    entrypoint: /entry.sh --flag
    command: ["serve", "--port", "8080"]
    env_file:
      - common.env
      - path: ./missing.env
        required: false
      - api.env
    environment:
      - LEVEL=debug
      - FROM_ENV
      - NOT_IN_ENV
    labels: [team=web, tier]
    user: "1000:1000"
    working_dir: /app
    stop_grace_period: 1m30s
    extra_hosts: ["host.docker.internal:host-gateway", "v6=::1"]
    logging:
      driver: json-file
      options: {max-size: 10m, max-file: 3}
    restart: on-failure:5
    healthcheck:
      test: curl -f http://localhost:8080/up
      interval: 10s
      timeout: 2s
      retries: 3
      start_period: 30s
  worker:
    build: ./worker
    healthcheck: {disable: true}
    depends_on: [api]
    extra_hosts: {db.local: 10.0.0.5}
"#;
    let env_files = MemFiles::default()
        .with(
            "/srv/athens/common.env",
            &[("LEVEL", "info"), ("SHARED", "1")],
        )
        .with("/srv/athens/api.env", &[("SHARED", "2")]);
    let p = load(
        &input(&[("compose.yaml", src)], &[("FROM_ENV", "yes")]),
        &env_files,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let api = &p.accessory("api").unwrap().service;
    let b = api.build.as_ref().unwrap();
    assert_eq!(b.context, "/srv/athens/api");
    assert_eq!(b.dockerfile.as_deref(), Some("Dockerfile.prod"));
    assert_eq!(
        b.args,
        BTreeMap::from([
            ("VERSION".into(), "1.2".into()),
            ("FROM_ENV".into(), "yes".into())
        ])
    );
    assert_eq!(b.target.as_deref(), Some("runtime"));
    assert_eq!(api.image, "shop-api");
    assert_eq!(api.entrypoint.as_deref().unwrap(), ["/entry.sh", "--flag"]);
    assert_eq!(api.command.as_deref().unwrap(), ["serve", "--port", "8080"]);
    assert_eq!(
        api.environment,
        BTreeMap::from([
            ("LEVEL".into(), "debug".into()),
            ("SHARED".into(), "2".into()),
            ("FROM_ENV".into(), "yes".into())
        ])
    );
    assert_eq!(
        api.labels,
        BTreeMap::from([("team".into(), "web".into()), ("tier".into(), "".into())])
    );
    assert_eq!(api.user.as_deref(), Some("1000:1000"));
    assert_eq!(api.working_dir.as_deref(), Some("/app"));
    assert_eq!(api.stop_grace_period, Some(Duration::from_secs(90)));
    assert_eq!(
        api.extra_hosts,
        ["host.docker.internal:host-gateway", "v6:::1"]
    );
    let log = api.logging.as_ref().unwrap();
    assert_eq!(log.driver.as_deref(), Some("json-file"));
    assert_eq!(log.options.get("max-file").map(String::as_str), Some("3"));
    assert_eq!(api.restart.as_deref(), Some("on-failure:5"));
    let hc = api.healthcheck.as_ref().unwrap();
    assert_eq!(hc.test, ["CMD-SHELL", "curl -f http://localhost:8080/up"]);
    assert_eq!(
        (hc.interval, hc.timeout, hc.retries),
        (
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(2)),
            Some(3)
        )
    );
    assert_eq!(hc.start_period, Some(Duration::from_secs(30)));
    let worker = &p.accessory("worker").unwrap().service;
    assert_eq!(worker.build.as_ref().unwrap().context, "/srv/athens/worker");
    assert_eq!(worker.healthcheck.as_ref().unwrap().test, ["NONE"]);
    assert_eq!(
        worker.depends_on,
        [Dependency {
            service: "api".into(),
            condition: DependsCondition::ServiceStarted,
            required: true
        }]
    );
    assert_eq!(worker.extra_hosts, ["db.local:10.0.0.5"]);
    // Dependency order: api before worker whatever the file order.
    assert_eq!(
        p.accessories
            .iter()
            .map(|a| a.service.name.as_str())
            .collect::<Vec<_>>(),
        ["api", "worker"]
    );
}

#[test]
fn x_cutover_keys() {
    let p = ok(r#"
services:
  web:
    image: app
    x-cutover:
      port: "3000"
      health: {path: /healthz, interval: 2s, timeout: 1s, host: app.internal}
      hosts: shop.example.com
      path_prefix: /api
      deploy_timeout: 2m
      drain_timeout: 10s
      websocket_drain_timeout: 1h
      keep: 1
"#);
    let c = &p.app("web").unwrap().cutover;
    assert_eq!(c.port, 3000);
    assert_eq!(c.health.path, "/healthz");
    assert_eq!(c.health.interval, Duration::from_secs(2));
    assert_eq!(c.health.timeout, Duration::from_secs(1));
    assert_eq!(c.health.host.as_deref(), Some("app.internal"));
    assert_eq!(c.hosts, ["shop.example.com"]);
    assert_eq!(c.path_prefix.as_deref(), Some("/api"));
    assert_eq!(c.timeouts.deploy, Duration::from_secs(120));
    assert_eq!(c.timeouts.drain, Duration::from_secs(10));
    assert_eq!(c.timeouts.websocket_drain, Duration::from_secs(3600));
    assert_eq!(c.keep, 1);
}

#[test]
fn hooks_take_a_command_or_a_command_and_a_timeout() {
    let p = ok(r#"
services:
  web:
    image: app
    x-cutover:
      port: 8080
      hooks:
        pre_deploy: ["bin/rails", "db:migrate"]
        post_deploy: {command: "sh -c 'echo warm'", timeout: 30s}
"#);
    let h = &p.app("web").unwrap().cutover.hooks;
    let pre = h.pre_deploy.as_ref().unwrap();
    assert_eq!(pre.command, ["bin/rails", "db:migrate"]);
    assert_eq!(pre.timeout, HOOK_TIMEOUT);
    let post = h.post_deploy.as_ref().unwrap();
    assert_eq!(post.command, ["sh", "-c", "echo warm"]);
    assert_eq!(post.timeout, Duration::from_secs(30));
    assert!(h.on_failure.is_none());
}

#[test]
fn hook_mistakes_name_the_key() {
    let e = err(r#"
services:
  web:
    image: app
    x-cutover:
      port: 8080
      hooks:
        pre_deploy: {timeout: 1m}
        post_deploy: []
        on_failure: 3
        before: [true]
"#);
    insta::assert_snapshot!("hook_errors", e);
}

#[test]
fn unknown_and_invalid_keys_are_errors_with_line_and_hint() {
    let e = err(r#"
services:
  web:
    image: app
    enviroment: {A: "1"}
    runtime: runsc
    ports: ["80:80"]
    container_name: web
    networks: [nowhere]
    volumes: ["data:/data"]
    stop_grace_period: 30
    x-cutover:
      prot: 8080
      health: {path: up}
  cache:
    image: redis
    ports: ["http"]
    depends_on: [db]
models:
  llm: {model: ai/smollm2}
"#);
    insta::assert_snapshot!("unknown_keys", e);
}

#[test]
fn yaml_syntax_error_has_a_line() {
    let e = err("services:\n  web:\n    image: app\n   bad: [\n");
    assert!(e.starts_with("compose.yaml:"), "{e}");
    assert!(e.contains("not valid YAML"), "{e}");
}

#[test]
fn dependency_cycle_is_an_error() {
    let e = err("services:\n  a: {image: a, depends_on: [b]}\n  b: {image: b, depends_on: [a]}\n");
    assert!(e.contains("depends_on forms a cycle between a, b"), "{e}");
}

#[test]
fn anchors_and_merge_keys() {
    let p = ok(r#"
x-common: &common
  restart: always
  environment: {TZ: UTC}
services:
  a:
    <<: *common
    image: a
"#);
    let a = &p.accessory("a").unwrap().service;
    assert_eq!(a.restart.as_deref(), Some("always"));
    assert_eq!(a.environment.get("TZ").map(String::as_str), Some("UTC"));
}

// ---- project names ----

#[test]
fn project_name_precedence() {
    let with_name = "name: from-file\nservices: {a: {image: a}}\n";
    let mut inp = input(&[("compose.yaml", with_name)], &[]);
    inp.project_name = Some("from-flag".into());
    assert_eq!(load(&inp, &MemFiles::default()).unwrap().name, "from-flag");
    inp.project_name = None;
    assert_eq!(load(&inp, &MemFiles::default()).unwrap().name, "from-file");
    let mut inp = input(&[("compose.yaml", "services: {a: {image: a}}\n")], &[]);
    inp.project_dir = PathBuf::from("/home/ci/My.App");
    assert_eq!(load(&inp, &MemFiles::default()).unwrap().name, "myapp");
    inp.project_name = Some("Bad Name".into());
    let e = load(&inp, &MemFiles::default()).unwrap_err().shown();
    assert!(
        e.starts_with("-p \"Bad Name\" is not a valid project name\nhint:"),
        "{e}"
    );
}

// ---- version identity ----

#[test]
fn config_hash_is_stable_across_key_order_and_changes_with_env() {
    let a = ok("services:\n  web:\n    image: app\n    environment: {A: '1', B: '2'}\n    labels: [x=1, y=2]\n");
    let b = ok("services:\n  web:\n    labels: {y: '2', x: '1'}\n    environment: [B=2, A=1]\n    image: app\n");
    let (a, b) = (
        &a.accessory("web").unwrap().service,
        &b.accessory("web").unwrap().service,
    );
    assert_eq!(config_hash(a), config_hash(b));
    assert_eq!(config_hash(a).len(), 64);

    let p1 = field_report("athens:42");
    let mut env2 = field_report_env();
    env2 = env2.with(
        "/srv/athens/.env",
        &[("REDIS_HOST", "redis"), ("REDIS_PORT", "6380")],
    );
    let p2 = load(
        &input(
            &[("compose.yaml", &fixture("compose.yaml"))],
            &[("DOCKER_IMAGE", "athens:42")],
        ),
        &env2,
    )
    .unwrap();
    let (s1, s2) = (
        &p1.app("backend").unwrap().service,
        &p2.app("backend").unwrap().service,
    );
    assert_ne!(config_hash(s1), config_hash(s2));
    assert_eq!(
        env_changes(s1, s2),
        EnvChanges {
            added: vec![],
            removed: vec![],
            changed: vec!["REDIS_PORT".into()]
        }
    );

    let v1 = version_id("sha256:aaa", &config_hash(s1));
    assert_eq!(v1.len(), 12);
    assert_eq!(v1, version_id("sha256:aaa", &config_hash(s1)));
    assert_ne!(v1, version_id("sha256:aaa", &config_hash(s2)));
    assert_ne!(v1, version_id("sha256:bbb", &config_hash(s1)));
}

#[test]
fn depends_on_does_not_change_the_hash() {
    let a = ok("services:\n  web: {image: app, depends_on: [db]}\n  db: {image: pg}\n");
    let b = ok("services:\n  web: {image: app}\n  db: {image: pg}\n");
    assert_eq!(
        config_hash(&a.accessory("web").unwrap().service),
        config_hash(&b.accessory("web").unwrap().service)
    );
}

#[test]
fn env_changes_lists_keys_only() {
    let a = ok("services:\n  web: {image: app, environment: {KEEP: '1', GONE: x, EDIT: old}}\n");
    let b = ok("services:\n  web: {image: app, environment: {KEEP: '1', NEW: y, EDIT: new}}\n");
    let c = env_changes(
        &a.accessory("web").unwrap().service,
        &b.accessory("web").unwrap().service,
    );
    assert_eq!(
        c,
        EnvChanges {
            added: vec!["NEW".into()],
            removed: vec!["GONE".into()],
            changed: vec!["EDIT".into()]
        }
    );
}

#[test]
fn resolved_project_round_trips_through_json() {
    let p = field_report("athens:42");
    let json = serde_json::to_string(&p).unwrap();
    let back: ResolvedProject = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
}

#[test]
fn reset_tag_in_a_single_file_removes_the_value() {
    let p = ok("services:\n  web:\n    image: app\n    ports: !reset []\n    environment: !override {A: '1'}\n");
    let web = &p.accessory("web").unwrap().service;
    assert!(web.ports.is_empty());
    assert_eq!(web.environment.get("A").map(String::as_str), Some("1"));
}

#[test]
fn empty_services_is_an_error() {
    assert_eq!(
        err("name: x\nservices: {}\n"),
        "compose.yaml:2:1: services: no services defined\nhint: add at least one service under `services:`"
    );
}

/// A value written under an anchor and merged in (`<<: *base`) is reported
/// where the anchor wrote it, with its column.
#[test]
fn errors_in_merged_anchors_point_at_the_anchor() {
    let e = err(
        "x-app: &app\n  image: app\n  stop_grace_period: 30\nservices:\n  web:\n    <<: *app\n    x-cutover: {port: 8080, prot: 1}\n",
    );
    assert!(
        e.contains("compose.yaml:3:3: services.web.stop_grace_period: expected a duration"),
        "{e}"
    );
    assert!(
        e.contains("compose.yaml:7:29: services.web.x-cutover.prot: unknown key `prot`"),
        "{e}"
    );
}

#[test]
fn include_and_extends_errors_name_the_file_and_the_service() {
    let files = MemFiles::default()
        .file(
            "/srv/athens/loop.yaml",
            "include: [compose.yaml]\nservices:\n  x: {image: x}\n",
        )
        .file(
            "/srv/athens/common.yaml",
            "services:\n  base: {image: base}\n",
        );
    let run = |src: &str| {
        load(&input(&[("compose.yaml", src)], &[]), &files)
            .expect_err("expected an error")
            .shown()
    };
    let e = run("include: [loop.yaml]\nservices:\n  web: {image: app}\n");
    assert!(e.contains("includes itself"), "{e}");
    let e = run("include: [gone.yaml]\nservices:\n  web: {image: app}\n");
    assert!(
        e.contains(
            "compose.yaml:1:11: include[0]: included file /srv/athens/gone.yaml does not exist"
        ),
        "{e}"
    );
    let e = run("services:\n  web:\n    extends: {file: common.yaml, service: nope}\n");
    assert!(
        e.contains("common.yaml has no service \"nope\"")
            && e.contains("services in common.yaml: base"),
        "{e}"
    );
    let e = run("services:\n  a: {extends: b}\n  b: {extends: a}\n");
    assert!(e.contains("extends itself"), "{e}");
    let e = run("include: [common.yaml]\nservices:\n  base: {image: other}\n");
    assert!(
        e.contains("services.base is defined here and in the included /srv/athens/common.yaml"),
        "{e}"
    );
}

#[test]
fn the_app_port_defaults_to_its_one_exposed_port() {
    let p = ok("services:\n  web:\n    image: app\n    expose: [\"8000\"]\n    x-cutover: {}\n");
    assert_eq!(p.app("web").unwrap().cutover.port, 8000);
    let e = err("services:\n  web:\n    image: app\n    expose: [8000, 9000]\n    x-cutover: {}\n");
    assert!(
        e.contains("compose.yaml:5:5: services.web.x-cutover: missing `port`; the service names ports 8000, 9000"),
        "{e}"
    );
}

#[test]
fn an_external_secret_is_the_swarm_object_by_its_name_and_has_no_source() {
    let p = ok("services:\n  web:\n    image: app\n    secrets: [api, tls]\nsecrets:\n  api: {external: true}\n  tls: {external: true, name: shop_tls_2026}\n");
    let names: Vec<_> = p.accessories[0]
        .service
        .secrets
        .iter()
        .map(|r| r.from.clone())
        .collect();
    assert_eq!(
        names,
        [
            FileSource::External { name: "api".into() },
            FileSource::External {
                name: "shop_tls_2026".into()
            }
        ]
    );
    let e = err("services:\n  web:\n    image: app\n    configs: [site]\nconfigs:\n  site: {external: true, content: x}\n");
    assert!(
        e.contains("compose.yaml:6:26: configs.site.content: site is external, and an external config has no `content:`"),
        "{e}"
    );
    assert!(!e.contains("not declared"), "{e}");
}

#[test]
fn deploy_mode_global_is_one_task_per_node_and_takes_no_count() {
    let p = ok("services:\n  web:\n    image: app\n    deploy: {mode: global}\n    x-cutover: {port: 80}\n  worker:\n    image: w\n    deploy: {mode: replicated, replicas: 2}\n    x-cutover: {port: 80, hosts: [w.test]}\n");
    let web = p.app("web").unwrap();
    assert!(web.service.global);
    assert_eq!(web.service.replicas, 1);
    let worker = p.app("worker").unwrap();
    assert!(!worker.service.global);
    assert_eq!(worker.service.replicas, 2);
    let e = err("services:\n  web:\n    image: app\n    deploy: {mode: global, replicas: 3}\n    x-cutover: {port: 80}\n");
    assert!(
        e.contains("compose.yaml:4:14: services.web.deploy.mode: a global service runs one task per node, and deploy.replicas sets a count"),
        "{e}"
    );
    let e = err("services:\n  web:\n    image: app\n    deploy: {mode: global-job}\n");
    assert!(
        e.contains("services.web.deploy.mode: deploy.mode \"global-job\" is not one cutover runs"),
        "{e}"
    );
}
