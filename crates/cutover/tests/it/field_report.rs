//! The field report's own compose files, as the report has them, with only
//! `x-cutover` added to the app: its deploy scenario (deploy, an `.env`
//! edit, a broken version, a rollback) under load, with no failed request.
//!
//! What the test changes, so runs can share an engine and nothing is
//! pulled: host port numbers, container and network names get a per-run
//! suffix, and `redis:latest` is the local Redis test image.

use std::process::Output;

use crate::deploy::{docker, expect_code, images, text, Project};
use crate::util::{answers, cutover, free_port, run, Daemon, Load};

/// docker-compose.yml, the report's first version.
const FIRST: &str = r#"version: "3"

services:
  backend:
    image: ${DOCKER_IMAGE}
    container_name: athens-backend
    ports:
      - 8080:8080
    env_file: .env
    volumes:
      - ./log:/log
    restart: always
    depends_on:
      - redis
    networks:
      - app-network
    x-cutover:
      port: 8080

  redis:
    image: redis:latest
    container_name: athens-redis
    ports:
      - 6379:6379
    volumes:
      - redis-data:/data
    restart: always
    networks:
      - app-network

networks:
  app-network:
    driver: bridge

volumes:
  redis-data:
"#;

/// The final docker-compose.yml: Redis alone, on the network the deploy
/// script creates.
const FINAL_BASE: &str = r#"services:  
  redis:  
    image: redis:latest  
    container_name: athens-redis  
    ports:  
      - 6379:6379  
    volumes:  
      - redis-data:/data  
    restart: always  
    networks:  
      - ubuntu_app-network  
  
networks:  
  ubuntu_app-network:  
    external: true  
  
volumes:  
  redis-data:
"#;

/// The final docker-compose.blue.yml.
const FINAL_BLUE: &str = r#"services:  
  backend-blue:  
    image: ${DOCKER_IMAGE}  
    container_name: athens-blue  
    env_file: .env  
    volumes:  
      - ./log:/log  
    ports:  
      - 8081:8080  
    restart: always  
    depends_on:  
      - redis  
    networks:  
      - ubuntu_app-network  
    x-cutover:
      port: 8080

networks:  
  ubuntu_app-network:  
    external: true
"#;

/// The report's `.env` (spaces round `=` and a `//` note, which Compose
/// keeps in the value), and the greeting the test origin answers with.
fn dotenv(greeting: &str) -> String {
    format!(
        "REDIS_HOST = redis // Docker Compose에서 정의한 서비스 이름\nREDIS_PORT = 6379 // 기본 포트\nNAME={greeting}\n"
    )
}

/// The report's scenario on `project`, whose app answers on `app_port`.
async fn scenario(project: &Project, name: &str, files: &[&str], app_port: u16) {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;
    let deploy = |image: &str, extra: &[&str]| -> Output {
        let mut c = cutover();
        c.current_dir(project.path())
            .env("DOCKER_IMAGE", image)
            .arg("--socket")
            .arg(&daemon.socket)
            .args(extra)
            .args(["-p", name]);
        for f in files {
            c.args(["-f", f]);
        }
        run(&mut c)
    };
    let app: std::net::SocketAddr = ([127, 0, 0, 1], app_port).into();

    let out = deploy("cutover-test-origin:latest", &["deploy"]);
    expect_code(&out, 0, &daemon);
    answers(app, "one").await;

    let loader = Load::start(app);

    // An .env edit reaches the container: a new version.
    project.set_env(&dotenv("two"));
    let out = deploy("cutover-test-origin:latest", &["deploy"]);
    expect_code(&out, 0, &daemon);
    answers(app, "two").await;

    // A broken version (the bare base image exits at once) fails the
    // deploy; the live one keeps serving.
    let out = deploy("cutover-base:bookworm", &["deploy"]);
    expect_code(&out, 1, &daemon);
    // It exits, or with `restart: always` is restarted: either is named.
    assert!(
        text(&out.stderr).contains("before its health check passed"),
        "{}",
        text(&out.stderr)
    );
    answers(app, "two").await;

    // Rollback: the previous version, with its old env.
    let out = deploy("cutover-test-origin:latest", &["rollback"]);
    expect_code(&out, 0, &daemon);
    answers(app, "one").await;

    let load = loader.stop().await;
    load.assert_none_failed();
    eprintln!(
        "field report scenario on {files:?}: {} requests, 0 failed",
        load.ok()
    );
}

/// The report's files with per-run names and ports: `(from, to)` pairs.
fn adapt(text: &str, swaps: &[(&str, String)]) -> String {
    swaps
        .iter()
        .fold(text.to_string(), |t, (from, to)| t.replace(from, to))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reports_first_files_deploy_with_only_x_cutover_added() {
    images();
    let name = "cvit-report-first";
    let (app_port, redis_port) = (free_port(), free_port());
    let run_id = format!("{name}{}", std::process::id());
    let compose = adapt(
        FIRST,
        &[
            ("8080:8080", format!("{app_port}:8080")),
            ("6379:6379", format!("127.0.0.1:{redis_port}:6379")),
            ("athens-", format!("{run_id}-athens-")),
            ("redis:latest", "cutover-test-redis:latest".into()),
        ],
    );
    let project = Project::new(name, "", &dotenv("one"));
    std::fs::remove_file(project.path().join("compose.yaml")).unwrap();
    std::fs::write(project.path().join("docker-compose.yml"), compose).unwrap();
    scenario(&project, name, &[], app_port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reports_final_files_deploy_with_the_network_created_first() {
    images();
    let name = "cvit-report-final";
    let (app_port, redis_port) = (free_port(), free_port());
    let run_id = format!("{name}{}", std::process::id());
    let network = format!("ubuntu_app-network-{run_id}");
    let swaps = [
        ("8081:8080", format!("{app_port}:8080")),
        ("6379:6379", format!("127.0.0.1:{redis_port}:6379")),
        ("athens-", format!("{run_id}-athens-")),
        ("redis:latest", "cutover-test-redis:latest".into()),
        ("ubuntu_app-network", network.clone()),
    ];
    let project = Project::new(name, "", &dotenv("one"));
    std::fs::remove_file(project.path().join("compose.yaml")).unwrap();
    std::fs::write(
        project.path().join("docker-compose.yml"),
        adapt(FINAL_BASE, &swaps),
    )
    .unwrap();
    std::fs::write(
        project.path().join("docker-compose.blue.yml"),
        adapt(FINAL_BLUE, &swaps),
    )
    .unwrap();
    // As the report's deploy script does.
    docker(&["network", "create", &network]);
    struct RemoveNetwork(String);
    impl Drop for RemoveNetwork {
        fn drop(&mut self) {
            docker(&["network", "rm", &self.0]);
        }
    }
    let _net = RemoveNetwork(network);
    scenario(
        &project,
        name,
        &["docker-compose.yml", "docker-compose.blue.yml"],
        app_port,
    )
    .await;
}
