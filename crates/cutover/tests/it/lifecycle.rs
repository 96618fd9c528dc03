use std::time::{Duration, Instant};

use cutover_test::Origin;
use hyper::{Method, StatusCode};
use serde_json::Value;

use crate::util::{cutover, get_until_ok, run, tcp_request, Daemon, PATIENCE};

#[tokio::test]
async fn restart_restores_the_routes() {
    let origin = Origin::start("green-7").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut first = Daemon::in_dir(dir.path()).start().await;
    first.deploy("web", &[origin.target()]).await;
    assert_eq!(get_until_ok(first.listen, "/").await, "green-7");
    assert!(first.stop().await.success(), "{}", first.stderr());

    let state: Value =
        serde_json::from_slice(&std::fs::read(first.state_dir.join("state.json")).unwrap())
            .unwrap();
    assert_eq!(state["version"], 1);
    assert_eq!(state["state"]["services"][0]["name"], "web");

    let second = Daemon::in_dir(dir.path()).start().await;
    let (status, services) = second.request(Method::GET, "/v1/services", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(services[0]["name"], "web");
    assert_eq!(services[0]["active"]["targets"][0]["addr"], origin.target());
    // Served again once the restored target passed a probe.
    assert_eq!(get_until_ok(second.listen, "/").await, "green-7");
}

#[tokio::test]
async fn sigterm_lets_a_slow_request_finish_and_exits_0() {
    let origin = Origin::start("blue").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::in_dir(dir.path()).start().await;
    daemon.deploy("web", &[origin.target()]).await;
    get_until_ok(daemon.listen, "/").await;

    let before = origin.requests();
    let listen = daemon.listen;
    let slow =
        tokio::spawn(async move { tcp_request(listen, Method::GET, "/slow?ms=1500", &[]).await });
    // Signal only once the request has reached the origin, so it is in flight.
    let start = Instant::now();
    while origin.requests() == before {
        assert!(
            start.elapsed() < PATIENCE,
            "the slow request never reached the origin"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    daemon.signal("TERM");

    let (status, body) = slow
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"blue"[..]));
    let exit = daemon.wait_exit().await;
    assert_eq!(exit.code(), Some(0), "{}", daemon.stderr());
    assert!(!daemon.socket.exists());
    let log = daemon.stderr();
    assert!(log.contains("SIGTERM"), "{log}");
}

#[tokio::test]
async fn sighup_cuts_no_request_and_the_daemon_keeps_serving() {
    let origin = Origin::start("blue").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::in_dir(dir.path()).start().await;
    daemon.deploy("web", &[origin.target()]).await;
    get_until_ok(daemon.listen, "/").await;

    let listen = daemon.listen;
    let in_flight: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(async move { tcp_request(listen, Method::GET, "/slow?ms=800", &[]).await })
        })
        .collect();
    let start = Instant::now();
    while origin.in_flight() < 20 {
        assert!(
            start.elapsed() < PATIENCE,
            "the requests never reached the origin"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    daemon.signal("HUP");
    for request in in_flight {
        let (status, body) = request.await.unwrap().expect("no request is cut by SIGHUP");
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"blue"[..]));
    }
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "{}",
        daemon.stderr()
    );
    assert_eq!(get_until_ok(daemon.listen, "/").await, "blue");
    assert!(daemon.stderr().contains("SIGHUP"), "{}", daemon.stderr());
    assert!(daemon.stop().await.success(), "{}", daemon.stderr());
}

/// A flood of silent connections under a low descriptor limit: the data
/// plane sheds what it cannot hold, and the control socket still answers.
#[tokio::test]
async fn a_connection_flood_never_takes_the_control_socket_down() {
    let origin = Origin::start("blue").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path())
        .nofile(320)
        .arg("--client-header-timeout")
        .arg("60s")
        .start()
        .await;
    daemon.deploy("web", &[origin.target()]).await;
    get_until_ok(daemon.listen, "/").await;

    // More than the process has descriptors for.
    let mut flood = Vec::new();
    for _ in 0..400 {
        match tokio::net::TcpStream::connect(daemon.listen).await {
            Ok(s) => flood.push(s),
            Err(e) => panic!("connect failed (the test's own limit?): {e}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        let (status, health) = daemon.request(Method::GET, "/v1/health", None).await;
        assert_eq!(status, StatusCode::OK, "{health}");
    }
    let (status, services) = daemon.request(Method::GET, "/v1/services", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(services[0]["name"], "web");
    // Once the flood ends, the proxy serves again.
    drop(flood);
    assert_eq!(get_until_ok(daemon.listen, "/").await, "blue");
    assert!(
        daemon
            .stderr()
            .contains("--max-connections client connections are open"),
        "{}",
        daemon.stderr()
    );
}

/// `cutover serve` in `dir` over a state file holding `content`; returns
/// the state file's path and what the start printed.
fn serve_with_state(
    dir: &std::path::Path,
    content: &str,
) -> (std::path::PathBuf, std::process::Output) {
    let state_dir = dir.join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let state_file = state_dir.join("state.json");
    std::fs::write(&state_file, content).unwrap();
    let out = run(cutover()
        .args(["serve", "--listen", "127.0.0.1:0", "--socket"])
        .arg(dir.join("c.sock"))
        .arg("--state-dir")
        .arg(&state_dir));
    (state_file, out)
}

#[tokio::test]
async fn a_corrupt_state_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (state_file, out) = serve_with_state(
        dir.path(),
        r#"{"version": 1, "state": {"services": [{"name": "web"}]}}"#,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: the state file {} is corrupt: state.services[0]: missing field `request`",
            state_file.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
    assert!(
        !dir.path().join("c.sock").exists(),
        "a failed start leaves no socket"
    );
    assert!(state_file.exists(), "the file is kept for the user to fix");
}

#[tokio::test]
async fn a_state_entry_that_fails_validation_stops_the_start_and_stays_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    // Valid JSON a newer or stricter cutover might disagree with: the
    // second entry's target is no address.
    let written = r#"{"version": 1, "state": {"services": [
        {"name": "web", "request": {"targets": ["127.0.0.1:9"]}},
        {"name": "api", "request": {"targets": ["not an address"]}}
    ]}}"#;
    let (state_file, out) = serve_with_state(dir.path(), written);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: the state file {} has a service this cutover cannot restore: services[1] (service \"api\"): ",
            state_file.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: a newer cutover wrote it"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("c.sock").exists(),
        "a failed start leaves no socket"
    );
    assert_eq!(
        std::fs::read_to_string(&state_file).unwrap(),
        written,
        "the file is kept as it was, for the user to fix"
    );
}

#[tokio::test]
async fn json_logs_carry_the_access_log() {
    let origin = Origin::start("blue").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::in_dir(dir.path())
        .arg("--log-format")
        .arg("json")
        .start()
        .await;
    daemon.deploy("web", &[origin.target()]).await;
    get_until_ok(daemon.listen, "/logged").await;
    assert!(daemon.stop().await.success());
    let log = daemon.stderr();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let access = lines
        .iter()
        .find(|l| l["target"] == "cutover::access" && l["path"] == "/logged")
        .unwrap_or_else(|| panic!("no access line for /logged: {log}"));
    // Both keys survive a JSON parser: the log target and the upstream.
    assert_eq!(access["upstream"], origin.target(), "{access}");
}

#[tokio::test]
async fn no_access_log_silences_the_access_log() {
    let origin = Origin::start("blue").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::in_dir(dir.path())
        .arg("--log-format")
        .arg("json")
        .arg("--no-access-log")
        .start()
        .await;
    daemon.deploy("web", &[origin.target()]).await;
    get_until_ok(daemon.listen, "/quiet").await;
    assert!(daemon.stop().await.success());
    let log = daemon.stderr();
    assert!(log.contains("cutover serve is ready"), "{log}");
    assert!(!log.contains("cutover::access"), "{log}");
}
