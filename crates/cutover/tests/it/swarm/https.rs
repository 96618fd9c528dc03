//! HTTPS on the three-node swarm: cutover's stack with
//! dist/swarm/https.yml, the edges' certificates in one folder every node
//! sees (as an NFS mount would be), and Debian's pebble as the CA on the
//! host's address on the swarm's network.
//!
//! Pebble's DNS answers every name with the third node's address, so the
//! CA's checks all go there, and that node cannot reach the CA at all: it
//! never orders. One of the other two orders; the third answers the CA's
//! HTTP-01 check from the shared folder, and all three serve the one
//! certificate.

use std::net::SocketAddr;
use std::process::Command;

use super::{text, wait_for, Cluster, Nodes, Stack};
use crate::https::{served_certificate, Pebble};
use cutover_test::images::workspace_root;

const HOST: &str = "shop.swarm.test";

/// The athens app of the other swarm tests, on one host name with an
/// ordered certificate.
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
      replicas: 2
    x-cutover:
      port: 8080
      hosts: [shop.swarm.test]
      tls: true
      deploy_timeout: 20s
      drain_timeout: 5s
      health:
        path: /api/v1/open/health-check
        interval: 500ms
  redis:
    image: cutover-test-redis:latest
    command: redis-server --protected-mode no
"#;

/// Where the edges find the test CA's root for pebble's own HTTPS: in the
/// shared folder, which https.yml mounts at /var/lib/cutover-certificates.
const CA_ROOT_OVERRIDE: &str = r#"
version: "3.8"
services:
  edge:
    environment:
      CUTOVER_ACME_CA_ROOT: /var/lib/cutover-certificates/test-ca.pem
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_node_orders_every_node_serves_and_any_node_answers_the_ca() {
    let nodes = Nodes::up("tls");
    let gateway = nodes.swarm.gateway().unwrap();
    let checked = nodes.swarm.nodes[2].clone();
    // HTTP-01 on the checked node's port 80. Nothing listens on 444, so
    // TLS-ALPN-01, tried first, fails there and HTTP-01 is what succeeds.
    let pebble = Pebble::on_network(
        gateway.parse().unwrap(),
        checked.addr.parse().unwrap(),
        80,
        444,
    )
    .await;
    let port = pebble.directory().split(':').nth(2).unwrap();
    let port = port.split('/').next().unwrap();
    std::fs::copy(
        pebble.ca(),
        nodes.swarm.shared().join("certificates/test-ca.pem"),
    )
    .unwrap();
    // The checked node's containers cannot reach the CA: its edge, should
    // it take the order lock first, fails and leaves the order to another.
    nodes
        .swarm
        .exec(
            2,
            &[
                "iptables",
                "-I",
                "DOCKER-USER",
                "-d",
                &gateway,
                "-p",
                "tcp",
                "--dport",
                port,
                "-j",
                "REJECT",
                "--reject-with",
                "tcp-reset",
            ],
        )
        .unwrap();
    let extra = tempfile::tempdir().unwrap();
    let ca_root = extra.path().join("test-ca-root.yml");
    std::fs::write(&ca_root, CA_ROOT_OVERRIDE).unwrap();
    let stack = Stack {
        files: vec![workspace_root().join("dist/swarm/https.yml"), ca_root],
        env: vec![(
            "CUTOVER_ACME_DIRECTORY".into(),
            pebble.directory().to_string(),
        )],
    };
    let c = Cluster::on(nodes, stack).await;
    std::fs::write(c.dir.path().join("compose.yaml"), COMPOSE).unwrap();
    let https: Vec<SocketAddr> = c
        .swarm
        .nodes
        .iter()
        .map(|n| format!("{}:443", n.addr).parse().unwrap())
        .collect();

    // 1. The deploy switches every node; the certificate follows.
    let out = c.deploy("v1", &[]);
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    let root = pebble.root();
    for addr in &https {
        wait_for(&format!("{addr} serving {HOST} over HTTPS"), || async {
            https_version(*addr, &root) == "v1"
        })
        .await;
    }

    // 2. One certificate, ordered once, by a node the CA never checked.
    let serials: Vec<String> = https.iter().map(|a| serial(*a)).collect();
    assert!(!serials[0].is_empty(), "no certificate served");
    assert!(
        serials.iter().all(|s| s == &serials[0]),
        "every node serves the one certificate: {serials:?}"
    );
    let logs = edge_logs(&c);
    let issued: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("certificate issued"))
        .collect();
    assert_eq!(issued.len(), 1, "one order in all:\n{logs}");
    eprintln!("the order: {}", issued[0]);
    assert!(
        !issued[0].contains(&format!("@{}", checked.name)),
        "the checked node cannot reach the CA, so another ordered: {}",
        issued[0]
    );
    let ca_log = pebble.log();
    assert!(
        ca_log.contains(&format!("validate w/ HTTP: http://{HOST}:80/")),
        "the CA checked HTTP-01, at the checked node:\n{ca_log}"
    );
    assert_eq!(ca_log.matches("Issued certificate").count(), 1, "{ca_log}");

    // 3. Plain HTTP is redirected on every node.
    for edge in &c.edges {
        assert_eq!(
            redirect(*edge),
            format!("308 https://{HOST}/api/v1/visits"),
            "{edge}"
        );
    }

    // 4. The next deploy orders nothing: the stored certificate serves.
    let out = c.deploy("v2", &[]);
    assert!(out.status.success(), "deploy v2: {}", text(&out));
    for addr in &https {
        wait_for(&format!("{addr} serving v2 over HTTPS"), || async {
            https_version(*addr, &root) == "v2"
        })
        .await;
        assert_eq!(serial(*addr), serials[0], "{addr}");
    }
    let logs = edge_logs(&c);
    assert_eq!(logs.matches("certificate issued").count(), 1, "{logs}");
}

/// Every edge's log, each line named by its task and node
/// (`cutover_edge.<node>.<task>@<hostname>`); the daemon logs on stderr.
fn edge_logs(c: &Cluster) -> String {
    let out = Command::new("docker")
        .arg("-H")
        .arg(&c.swarm.manager().host)
        .args(["service", "logs", "cutover_edge"])
        .output()
        .unwrap();
    text(&out)
}

/// The version athens answers over HTTPS at `addr`, verified with pebble's
/// root; empty while that is not possible.
fn https_version(addr: SocketAddr, root: &std::path::Path) -> String {
    let body = curl(&[
        "-sf",
        "--max-time",
        "5",
        "--cacert",
        &root.display().to_string(),
        "--resolve",
        &format!("{HOST}:443:{}", addr.ip()),
        &format!("https://{HOST}/"),
    ]);
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["version"].as_str().map(String::from))
        .unwrap_or_default()
}

fn serial(addr: SocketAddr) -> String {
    served_certificate(addr, Some(HOST))
        .lines()
        .find(|l| l.starts_with("serial="))
        .unwrap_or("")
        .to_string()
}

/// `STATUS LOCATION` of a plain GET to the app at `edge`.
fn redirect(edge: SocketAddr) -> String {
    curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        "-H",
        &format!("Host: {HOST}"),
        &format!("http://{edge}/api/v1/visits"),
    ])
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
