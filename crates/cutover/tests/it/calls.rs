//! nginx in front of an app, calling it by its service name as compose
//! files do (`proxy_pass http://web:8080`): the calls go through cutover,
//! so nginx follows each switch (it resolves `web` once, at its start),
//! never reaches a color before its health gate, and loses no request.

use crate::deploy::{expect_code, images, text, Project};
use crate::util::{answers, free_port, Daemon, Load};

const APP: &str = r#"
name: PROJECT
services:
  web:
    image: cutover-test-origin:latest
    environment:
      NAME: ${IT_NAME}
    x-cutover:
      port: 8080
      health: {path: "${IT_HEALTH:-/up}", interval: 100ms, timeout: 500ms}
      deploy_timeout: 4s
      drain_timeout: 2s
      keep: 1
  front:
    image: cutover-test-nginx:latest
    depends_on: [web]
    ports: ["127.0.0.1:FRONT_PORT:80"]
    configs:
      - source: site
        target: /etc/nginx/conf.d/default.conf
configs:
  site:
    content: |
      server {
        listen 80;
        location / { proxy_pass http://web:8080; }
      }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_calls_the_app_by_name_through_the_switch_and_the_gate() {
    images();
    cutover_test::images::nginx_image();
    let port = free_port();
    let compose = APP.replace("FRONT_PORT", &port.to_string());
    let project = Project::new("cvit-calls", &compose, "IT_NAME=one\n");
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;
    let front: std::net::SocketAddr = ([127, 0, 0, 1], port).into();

    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 0, &daemon);
    answers(front, "one").await;
    let load = Load::start(front);

    // A new version: nginx, still on the address it resolved at its start,
    // reaches it once it is live, and only it once the old one drained.
    project.set_env("IT_NAME=two\n");
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 0, &daemon);
    answers(front, "two").await;

    // A version that runs but never passes its gate is never reached.
    project.set_env("IT_NAME=three\nIT_HEALTH=/slow?ms=3000\n");
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 1, &daemon);
    assert!(
        text(&out.stderr).contains("health"),
        "{}",
        text(&out.stderr)
    );
    answers(front, "two").await;

    let tally = load.stop().await;
    tally.assert_none_failed();
    assert!(!tally.bodies.contains_key("three"), "{:?}", tally.bodies);
    assert!(tally.bodies.contains_key("two"), "{:?}", tally.bodies);
    eprintln!(
        "nginx in front, by name, across a switch and a failed gate: {:?}, 0 failed",
        tally.bodies
    );
}
