//! Runs the real `cutover-loadtest` binary against an in-process server that mimics the
//! athens endpoints. The "deploy" command writes files in a temp dir that the server
//! polls, so each test can make the deploy clean, or break it in one specific way.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

#[derive(Clone, Copy, PartialEq)]
enum WsOnSwitch {
    /// Close old-version sockets with 1012 (service restart), as a draining proxy would.
    Close1012,
    /// Drop the TCP connection without a close frame, as a restarted proxy would.
    Drop,
}

struct App {
    dir: PathBuf,
    version: Mutex<String>,
    /// Bumped on every version change so WebSockets notice a switch.
    generation: AtomicU64,
    resetting: std::sync::atomic::AtomicBool,
    count: AtomicI64,
    oauth_states: Mutex<HashSet<String>>,
    next_state: AtomicU64,
    ws_on_switch: WsOnSwitch,
}

type Body = Full<Bytes>;

fn resp(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()))
        .unwrap()
}

async fn handle(
    app: Arc<App>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    if app.resetting.load(Ordering::SeqCst) {
        // An error from the service makes hyper drop the connection without a response.
        return Err(std::io::Error::other(
            "deploy in progress: dropping connection",
        ));
    }
    let version = app.version.lock().unwrap().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let r = match path.as_str() {
        "/api/v1/visits" => {
            let count = app.count.fetch_add(1, Ordering::SeqCst) + 1;
            let body = serde_json::json!({"version": version, "color": "blue", "count": count});
            let mut r = resp(StatusCode::OK, body.to_string());
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            r
        }
        "/api/v1/open/oauth/start" => {
            let state = format!("s{}", app.next_state.fetch_add(1, Ordering::SeqCst));
            app.oauth_states.lock().unwrap().insert(state.clone());
            let mut r = resp(StatusCode::FOUND, "");
            r.headers_mut().insert(
                "location",
                format!("https://idp.example/authorize?client_id=x&state={state}")
                    .parse()
                    .unwrap(),
            );
            r
        }
        "/api/v1/open/oauth/callback" => {
            let state = query.strip_prefix("state=").unwrap_or("").to_string();
            if app.oauth_states.lock().unwrap().remove(&state) {
                resp(StatusCode::OK, "logged in")
            } else {
                resp(StatusCode::BAD_REQUEST, "unknown state")
            }
        }
        "/ws" => {
            let key = req.headers().get("sec-websocket-key").cloned();
            let Some(key) = key else {
                return Ok(resp(StatusCode::BAD_REQUEST, "not a websocket request"));
            };
            let upgrade = hyper::upgrade::on(&mut req);
            let app2 = app.clone();
            tokio::spawn(async move {
                if let Ok(upgraded) = upgrade.await {
                    let ws = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        None,
                    )
                    .await;
                    serve_ws(app2, ws, version).await;
                }
            });
            Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
                .body(Full::new(Bytes::new()))
                .unwrap()
        }
        _ => resp(StatusCode::NOT_FOUND, "not found"),
    };
    Ok(r)
}

async fn serve_ws(
    app: Arc<App>,
    mut ws: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
    version: String,
) {
    let generation = app.generation.load(Ordering::SeqCst);
    let hello = serde_json::json!({"hello": version, "color": "blue"}).to_string();
    if ws.send(Message::text(hello)).await.is_err() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut watch = tokio::time::interval(Duration::from_millis(20));
    // Bounded like every loop here: the longest test run is far shorter.
    let stop = tokio::time::sleep(Duration::from_secs(60));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {
                if ws.send(Message::text("tick")).await.is_err() { return; }
            }
            _ = watch.tick() => {
                if app.generation.load(Ordering::SeqCst) != generation {
                    match app.ws_on_switch {
                        WsOnSwitch::Close1012 => {
                            let _ = ws.close(Some(CloseFrame { code: CloseCode::Restart, reason: "redeploy".into() })).await;
                            // Let the client's close reply arrive so the TCP close is clean.
                            let _ = tokio::time::timeout(Duration::from_secs(1), async { while ws.next().await.is_some() {} }).await;
                        }
                        WsOnSwitch::Drop => drop(ws),
                    }
                    return;
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if ws.send(Message::Text(t)).await.is_err() { return; }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// Polls the control files the deploy command writes.
async fn watch_files(app: Arc<App>) {
    for _ in 0..6000 {
        let reset = app.dir.join("reset").exists();
        app.resetting.store(reset, Ordering::SeqCst);
        if let Ok(v) = std::fs::read_to_string(app.dir.join("version")) {
            let v = v.trim().to_string();
            let mut cur = app.version.lock().unwrap();
            if !v.is_empty() && *cur != v {
                *cur = v;
                app.generation.fetch_add(1, Ordering::SeqCst);
            }
        }
        if std::fs::remove_file(app.dir.join("counter_reset")).is_ok() {
            app.count.store(0, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn start_server(dir: &Path, ws_on_switch: WsOnSwitch) -> SocketAddr {
    let app = Arc::new(App {
        dir: dir.to_path_buf(),
        version: Mutex::new("v0".into()),
        generation: AtomicU64::new(0),
        resetting: Default::default(),
        count: AtomicI64::new(0),
        oauth_states: Mutex::default(),
        next_state: AtomicU64::new(0),
        ws_on_switch,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(watch_files(app.clone()));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            if app.resetting.load(Ordering::SeqCst) {
                drop(stream);
                continue;
            }
            let app = app.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(app.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

struct Run {
    code: i32,
    stderr: String,
    report: serde_json::Value,
}

async fn run_loadtest(
    addr: SocketAddr,
    dir: &Path,
    deploy_cmd: &str,
    ws: usize,
    extra: &[&str],
) -> Run {
    let json = dir.join("report.json");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_cutover-loadtest"))
        .args(["--url", &format!("http://{addr}")])
        .args(["--duration", "3500ms", "--keepalive", "4", "--fresh", "2"])
        .args(["--ws", &ws.to_string()])
        .args([
            "--deploys",
            "2",
            "--deploy-interval",
            "1s",
            "--oauth-interval",
            "300ms",
        ])
        .args(["--deploy-cmd", deploy_cmd])
        .arg("--json")
        .arg(&json)
        .args(extra)
        .env("CTL", dir)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = std::fs::read(&json)
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(serde_json::Value::Null);
    Run {
        code: out.status.code().unwrap_or(-1),
        stderr,
        report,
    }
}

const FLIP: &str = r#"printf %s "$LOADTEST_VERSION" > "$CTL/version""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_run_with_expected_broken_deploy_reports_zero_failures() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_server(dir.path(), WsOnSwitch::Close1012).await;
    let cmd = format!(r#"if [ "$LOADTEST_BROKEN" = 1 ]; then exit 3; fi; {FLIP}"#);
    let run = run_loadtest(
        addr,
        dir.path(),
        &cmd,
        4,
        &["--broken-at", "2", "--assert-zero-failures"],
    )
    .await;
    let r = &run.report;
    assert_eq!(run.code, 0, "stderr: {}\nreport: {r:#}", run.stderr);
    assert_eq!(r["failures"], serde_json::json!([]), "{r:#}");
    assert!(r["http"]["ok_2xx"].as_u64().unwrap() > 0);
    assert_eq!(r["http"]["connection_errors"], 0);
    let d1 = &r["deploys"][0];
    assert_eq!(d1["exit_code"], 0);
    assert_eq!(d1["version_before"], "v0");
    assert_eq!(d1["version_after"], "v1");
    assert!(d1["switch_ms"].is_number(), "{d1:#}");
    assert!(
        d1["drain_ms"].is_number(),
        "old-version WebSockets closed after the switch: {d1:#}"
    );
    let d2 = &r["deploys"][1];
    assert_eq!(d2["expected_failure"], true);
    assert_eq!(d2["exit_code"], 3);
    assert_eq!(d2["ok"], true);
    assert!(
        d2["switch_ms"].is_null(),
        "a failed deploy must not switch: {d2:#}"
    );
    let ws = &r["websocket"];
    assert_eq!(ws["cuts"], 0);
    assert!(ws["close_codes"]["1012"].as_u64().unwrap() > 0, "{ws:#}");
    assert_eq!(ws["graceful_closes"], ws["close_codes"]["1012"]);
    assert!(ws["reconnects"].as_u64().unwrap() > 0);
    assert!(ws["echoes_ok"].as_u64().unwrap() > 0);
    assert_eq!(r["continuity"]["ok"], true);
    let oauth = &r["oauth"];
    assert!(
        oauth["carried_across_deploy"].as_u64().unwrap() > 0,
        "{oauth:#}"
    );
    assert_eq!(oauth["refused"], 0);
    assert_eq!(oauth["second_use_accepted"], 0);
    assert_eq!(oauth["accepted"], oauth["issued"], "{oauth:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_resets_during_deploy_fail_the_assertion() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_server(dir.path(), WsOnSwitch::Close1012).await;
    let cmd = format!(r#"touch "$CTL/reset"; sleep 0.4; {FLIP}; rm "$CTL/reset""#);
    let run = run_loadtest(addr, dir.path(), &cmd, 0, &["--assert-zero-failures"]).await;
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(
        run.report["http"]["connection_errors"].as_u64().unwrap() > 0,
        "{:#}",
        run.report
    );
    assert!(
        run.stderr.contains("HTTP requests failed"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_dropped_without_close_frame_is_a_cut() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_server(dir.path(), WsOnSwitch::Drop).await;
    let run = run_loadtest(addr, dir.path(), FLIP, 4, &["--assert-zero-failures"]).await;
    let ws = &run.report["websocket"];
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(ws["cuts"].as_u64().unwrap() > 0, "{ws:#}");
    assert!(ws["close_codes"]["none"].as_u64().unwrap() > 0, "{ws:#}");
    assert_eq!(ws["graceful_closes"], 0);
    assert!(run.stderr.contains("WebSockets were cut"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_going_backwards_is_flagged_without_failing_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_server(dir.path(), WsOnSwitch::Close1012).await;
    let cmd = format!(r#"touch "$CTL/counter_reset"; {FLIP}"#);
    // Without --assert-zero-failures a completed run exits 0 whatever it found.
    let run = run_loadtest(addr, dir.path(), &cmd, 0, &[]).await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let c = &run.report["continuity"];
    assert_eq!(c["ok"], false, "{c:#}");
    assert!(!c["violations"].as_array().unwrap().is_empty());
    assert!(run.report["failures"].to_string().contains("continuity"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_url_is_refused() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_cutover-loadtest"))
        .args(["--url", "http://192.0.2.10:8080", "--duration", "1s"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(
        stderr.contains("hint: pass --allow-host 192.0.2.10"),
        "{stderr}"
    );
}

/// True once `pid` has exited: gone, or a zombie nobody has reaped yet.
fn exited(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_stops_its_deploy_too() {
    use rustix::process::{kill_process, Pid, Signal};
    let dir = tempfile::tempdir().unwrap();
    let addr = start_server(dir.path(), WsOnSwitch::Close1012).await;
    // A deploy that outlives the run unless someone stops it; the child it
    // starts stands for docker-compose.
    let cmd = r#"sleep 120 >/dev/null 2>&1 & echo $! > "$CTL/child.pid"; wait"#;
    let mut lt = tokio::process::Command::new(env!("CARGO_BIN_EXE_cutover-loadtest"))
        .args(["--url", &format!("http://{addr}")])
        .args(["--duration", "60s", "--keepalive", "1", "--fresh", "0"])
        .args(["--deploys", "1", "--deploy-interval", "100ms"])
        .args(["--deploy-cmd", cmd])
        .arg("--json")
        .arg(dir.path().join("report.json"))
        .env("CTL", dir.path())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid_file = dir.path().join("child.pid");
    let child: i32 = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the deploy command never started");
    assert!(!exited(child), "the deploy's child ended by itself");

    let harness = Pid::from_raw(lt.id().unwrap() as i32).unwrap();
    kill_process(harness, Signal::TERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), lt.wait())
        .await
        .expect("the harness did not stop on SIGTERM")
        .unwrap();
    // The deploy inherited the harness's stderr: while any of it runs, the
    // pipe stays open.
    let mut stderr = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_string(lt.stderr.as_mut().unwrap(), &mut stderr),
    )
    .await
    .expect("the deploy command still runs after the harness exited")
    .unwrap();
    assert_eq!(status.code(), Some(143), "stderr: {stderr}");
    assert!(
        stderr.contains("stopping the deploy in progress"),
        "{stderr}"
    );
    assert!(!dir.path().join("report.json").exists());
    // Its parent is gone, so whoever adopted it reaps it; give that a moment.
    for _ in 0..100 {
        if exited(child) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the deploy's child {child} still runs after the harness stopped");
}
