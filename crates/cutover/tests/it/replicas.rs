//! `deploy.replicas: 3` on the real engine: three containers per color,
//! requests spread over all of them, a deploy under load switches all three
//! at once with no failed request, and `down` leaves none behind.

use std::collections::BTreeSet;

use hyper::Method;

use crate::deploy::{docker, expect_code, images, text, Project};
use crate::util::{answers, tcp_request, Daemon, Load};

const APP: &str = r#"
name: PROJECT
services:
  web:
    image: cutover-test-origin:latest
    environment:
      NAME: ${IT_NAME}
    deploy:
      replicas: 3
    x-cutover:
      port: 8080
      health: {interval: 100ms}
      deploy_timeout: 20s
      drain_timeout: 2s
      keep: 1
"#;

/// The containers that answer `/whoami` over 30 fresh connections.
async fn answering(addr: std::net::SocketAddr) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..30 {
        let (status, body) = tcp_request(addr, Method::GET, "/whoami", &[])
            .await
            .unwrap();
        assert!(status.is_success(), "{status} {}", text(&body));
        seen.insert(text(&body));
    }
    seen
}

fn running(color: &str) -> BTreeSet<String> {
    docker(&[
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        "label=cutover.project=cvit-replicas",
        "--filter",
        &format!("label=cutover.color={color}"),
    ])
    .lines()
    .map(|id| id[..12].to_string())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_per_color_share_the_traffic_and_switch_together() {
    images();
    let project = Project::new("cvit-replicas", APP, "IT_NAME=one\n");
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;

    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 0, &daemon);
    let blue = running("blue");
    assert_eq!(blue.len(), 3, "{blue:?}");
    assert_eq!(answering(daemon.listen).await, blue);

    let load = Load::start(daemon.listen);
    project.set_env("IT_NAME=two\n");
    let out = project.cutover(&daemon, &["deploy"]);
    expect_code(&out, 0, &daemon);
    answers(daemon.listen, "two").await;
    let green = running("green");
    assert_eq!(green.len(), 3, "{green:?}");
    assert_eq!(answering(daemon.listen).await, green);
    let tally = load.stop().await;
    tally.assert_none_failed();
    eprintln!(
        "3 replicas per color, a deploy under load: {:?}, 0 failed",
        tally.bodies
    );

    let out = project.cutover(&daemon, &["down"]);
    expect_code(&out, 0, &daemon);
    assert_eq!(
        docker(&[
            "ps",
            "-aq",
            "--filter",
            "label=cutover.project=cvit-replicas"
        ]),
        ""
    );
}
