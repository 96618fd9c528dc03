//! `cutover upgrade`: the daemon hands its listeners to a new process, under
//! a request loop and open WebSockets, with real processes.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cutover_test::Origin;
use futures_util::{SinkExt, StreamExt};
use hyper::{Method, StatusCode};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::util::{cutover, get_until_ok, run, tcp_request, Daemon};

/// SIGTERMs the process serving at the end, whichever the last upgrade
/// made it: the test's own `Daemon` is only the first.
pub(crate) struct Serving(pub(crate) u32);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.0.to_string())
            .status();
    }
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    ws_sessions: AtomicU64,
    ws_1012: AtomicU64,
    ws_cut: AtomicU64,
}

/// Fresh connections, one request each, until `stop`.
async fn request_loop(addr: SocketAddr, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    while !stop.load(Ordering::Relaxed) {
        match tcp_request(addr, Method::GET, "/", &[]).await {
            Ok((StatusCode::OK, _)) => tally.ok.fetch_add(1, Ordering::Relaxed),
            other => {
                eprintln!("request failed: {other:?}");
                tally.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A WebSocket that echoes every 100 ms, reconnecting after a 1012; any
/// other end is a cut.
async fn websocket_loop(addr: SocketAddr, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    while !stop.load(Ordering::Relaxed) {
        let request = hyper::Request::get(format!("ws://{addr}/ws"))
            .header("Host", "cutover")
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header(
                "Sec-WebSocket-Key",
                tokio_tungstenite::tungstenite::handshake::client::generate_key(),
            )
            .body(())
            .unwrap();
        let mut ws = match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => ws,
            Err(e) => {
                eprintln!("websocket connect failed: {e}");
                tally.ws_cut.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        tally.ws_sessions.fetch_add(1, Ordering::Relaxed);
        let end = loop {
            if stop.load(Ordering::Relaxed) {
                let _ = ws.close(None).await;
                return;
            }
            if ws.send(Message::text("ping")).await.is_err() {
                break None;
            }
            let next = tokio::time::timeout(Duration::from_millis(100), ws.next()).await;
            match next {
                Err(_) | Ok(Some(Ok(Message::Text(_)))) => {}
                Ok(Some(Ok(Message::Close(frame)))) => {
                    break frame.map(|f| u16::from(f.code));
                }
                Ok(Some(Ok(_))) => {}
                Ok(other) => {
                    eprintln!("websocket ended without a close: {other:?}");
                    break None;
                }
            }
        };
        if end == Some(1012) {
            tally.ws_1012.fetch_add(1, Ordering::Relaxed);
            while let Some(Ok(_)) = ws.next().await {}
        } else {
            eprintln!("websocket cut: {end:?}");
            tally.ws_cut.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub(crate) fn upgrade(socket: &Path) -> Value {
    let out = run(cutover()
        .arg("--socket")
        .arg(socket)
        .args(["upgrade", "--json"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "cutover upgrade failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn exe_of(pid: u64) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_upgrades_and_a_binary_upgrade_refuse_nothing_and_cut_nothing() {
    let origin = Origin::start("blue").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A copy of the binary, so the test can replace it on disk.
    let program = dir.path().join("cutover");
    std::fs::copy(crate::util::bin(), &program).unwrap();
    let daemon = Daemon::in_dir(dir.path()).program(&program).start().await;
    let body = serde_json::json!({
        "targets": [origin.target()],
        "health": {"interval": "100ms", "timeout": "1s"},
        "timeouts": {"deploy": "10s", "drain": "5s", "websocket_drain": "1s"},
    });
    let (status, answer) = daemon
        .request(Method::PUT, "/v1/services/web", Some(&body.to_string()))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    get_until_ok(daemon.listen, "/").await;
    let mut serving = Serving(daemon.child.id());

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut loops = Vec::new();
    for _ in 0..4 {
        loops.push(tokio::spawn(request_loop(
            daemon.listen,
            stop.clone(),
            tally.clone(),
        )));
    }
    for _ in 0..3 {
        loops.push(tokio::spawn(websocket_loop(
            daemon.listen,
            stop.clone(),
            tally.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    for i in 0..11 {
        if i == 10 {
            // The binary upgrade: a new file where the old one was.
            let staged = dir.path().join("cutover.new");
            std::fs::copy(crate::util::bin(), &staged).unwrap();
            std::fs::rename(&staged, &program).unwrap();
        }
        let previous = serving.0;
        let answer = tokio::task::spawn_blocking({
            let socket = daemon.socket.clone();
            move || upgrade(&socket)
        })
        .await
        .unwrap();
        assert_eq!(answer["previous_pid"], previous, "{answer}");
        let pid = answer["pid"].as_u64().unwrap();
        assert_ne!(pid, u64::from(previous));
        serving.0 = pid as u32;
        if i == 10 {
            let exe = exe_of(pid);
            assert!(
                exe.ends_with("/cutover") && !exe.contains("(deleted)"),
                "the upgraded daemon runs {exe:?}, not the new file"
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        tokio::time::timeout(Duration::from_secs(20), l)
            .await
            .expect("the loops end")
            .unwrap();
    }
    let (ok, failed) = (
        tally.ok.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    let (sessions, closed_1012, cut) = (
        tally.ws_sessions.load(Ordering::Relaxed),
        tally.ws_1012.load(Ordering::Relaxed),
        tally.ws_cut.load(Ordering::Relaxed),
    );
    eprintln!("requests ok {ok}, failed {failed}; websocket sessions {sessions}, 1012 {closed_1012}, cut {cut}");
    assert!(ok > 100, "the loop ran: {ok} requests");
    assert_eq!(
        failed,
        0,
        "requests failed or were refused across the upgrades\n{}",
        daemon.stderr()
    );
    assert_eq!(
        cut,
        0,
        "websockets were cut across the upgrades\n{}",
        daemon.stderr()
    );
    assert!(
        closed_1012 > 0,
        "each old daemon closes its websockets with 1012 at the deadline"
    );
    // The last one serves the routes it was handed.
    let (status, services) = daemon.request(Method::GET, "/v1/services", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(services[0]["name"], "web", "{services}");
    drop(serving);
}

#[tokio::test]
async fn a_successor_that_cannot_start_leaves_the_daemon_serving() {
    let origin = Origin::start("blue").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("cutover");
    std::fs::copy(crate::util::bin(), &program).unwrap();
    let mut daemon = Daemon::in_dir(dir.path()).program(&program).start().await;
    daemon.deploy("web", &[origin.target()]).await;
    get_until_ok(daemon.listen, "/").await;

    // A "new version" that exits at once.
    let broken = dir.path().join("broken");
    std::fs::write(
        &broken,
        "#!/bin/sh\necho 'this build is broken' >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::rename(&broken, &program).unwrap();
    let out = run(cutover().arg("--socket").arg(&daemon.socket).arg("upgrade"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("exited (exit status: 3) before it took over; this daemon keeps serving"),
        "{stderr}"
    );

    // Still the same process, serving and taking deploys.
    assert!(daemon.child.try_wait().unwrap().is_none());
    assert_eq!(get_until_ok(daemon.listen, "/").await, "blue");
    daemon.deploy("web", &[origin.target()]).await;
    assert!(daemon.stop().await.success(), "{}", daemon.stderr());
}

/// An app's own port travels with the other listeners: requests on it
/// never fail across upgrades.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_own_port_is_handed_over_with_the_listeners() {
    let origin = Origin::start("blue").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;
    let port: SocketAddr = ([127, 0, 0, 1], crate::util::free_port()).into();
    let body = serde_json::json!({
        "targets": [origin.target()],
        "hosts": ["shop.test"],
        "listen": [port.to_string()],
        "health": {"interval": "100ms", "timeout": "1s"},
        "timeouts": {"deploy": "10s", "drain": "5s", "websocket_drain": "1s"},
    });
    let (status, answer) = daemon
        .request(Method::PUT, "/v1/services/shop", Some(&body.to_string()))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    get_until_ok(port, "/").await;
    let mut serving = Serving(daemon.child.id());

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let load = tokio::spawn(request_loop(port, stop.clone(), tally.clone()));
    for _ in 0..3 {
        let answer = upgrade(&daemon.socket);
        // Not a new `Serving`: dropping the old one would SIGTERM the
        // predecessor while it drains.
        serving.0 = answer["pid"].as_u64().unwrap() as u32;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let (ok, failed) = (
        tally.ok.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    assert!(
        ok > 0 && failed == 0,
        "{ok} requests served on the app's port, {failed} failed"
    );
    eprintln!("app port across 3 upgrades: {ok} requests, 0 failed");
    drop(serving);
}
