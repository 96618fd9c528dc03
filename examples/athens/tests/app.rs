//! The app against a real redis-server, two instances ("blue" and "green")
//! sharing it the way both colors share the Redis accessory during a deploy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use athens::Config;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Bounds every wait of these tests, so a broken app fails them instead of
/// hanging them; nothing asserts on how long anything took.
const WAIT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
}

fn redis_server_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "redis-server is not installed (looked on PATH and in /usr/bin): the athens tests run a real one\n\
                 hint: apt-get install redis-server, or run scripts/deps.sh, which installs the test packages"
            )
        })
}

/// A throwaway redis-server on a free loopback port, without persistence.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    async fn start() -> Redis {
        // The port is free when probed but another process may take it before
        // redis binds it; a few attempts make that race harmless.
        for _ in 0..5 {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            if let Some(redis) = Redis::try_start_on(port).await {
                return redis;
            }
        }
        panic!("redis-server did not answer PING on a loopback port after 5 attempts");
    }

    async fn try_start_on(port: u16) -> Option<Redis> {
        let bin = redis_server_binary();
        let mut child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        for _ in 0..200 {
            if let Ok(Some(_)) = child.try_wait() {
                return None;
            }
            if let Ok(reply) = resp(port, &["PING"]).await {
                if reply.starts_with("+PONG") {
                    return Some(Redis { child, port });
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = child.kill().await;
        None
    }

    async fn stop(&mut self) {
        self.child.kill().await.expect("kill redis-server");
    }
}

/// One command in RESP, answered by the raw reply: enough to inspect what
/// the app stored without trusting the app's own client.
async fn resp(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).await?;
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply"))??;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

struct App {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl App {
    async fn start(redis: &Redis, color: &str, version: &str) -> App {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cfg = Config {
            redis_port: redis.port,
            version: version.into(),
            color: color.into(),
            instance: format!("test-{color}"),
            tick: Duration::from_millis(50),
            ..Config::default()
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(athens::serve(listener, cfg, shutdown.clone()));
        App {
            addr,
            shutdown,
            task,
        }
    }

    /// Cancels and waits for `serve` to return.
    async fn stop(self) {
        self.shutdown.cancel();
        within("serve returning after shutdown", self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

async fn send(addr: SocketAddr, path: &str) -> Response<Incoming> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get(path)
        .header(header::HOST, "athens.test")
        .body(Empty::<Bytes>::new())
        .unwrap();
    within(path, sender.send_request(req)).await.unwrap()
}

async fn get(addr: SocketAddr, path: &str) -> (StatusCode, Value) {
    let resp = send(addr, path).await;
    let status = resp.status();
    let body = within(path, resp.into_body().collect())
        .await
        .unwrap()
        .to_bytes();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{path}: body is not JSON ({e}): {body:?}"));
    (status, json)
}

#[tokio::test]
async fn health_check_follows_redis() {
    let mut redis = Redis::start().await;
    let app = App::start(&redis, "blue", "1").await;

    let (status, body) = get(app.addr, athens::HEALTH_PATH).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "UP");
    let (status, _) = get(app.addr, "/up").await;
    assert_eq!(status, StatusCode::OK);

    redis.stop().await;
    let (status, body) = get(app.addr, athens::HEALTH_PATH).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "DOWN");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "the 503 says why: {body}"
    );

    // Redis comes back (an accessory restart): the app reconnects by itself.
    let _redis = Redis::try_start_on(redis.port)
        .await
        .expect("redis-server restarts on its port");
    let mut last = None;
    for _ in 0..100 {
        let (status, body) = get(app.addr, athens::HEALTH_PATH).await;
        if status == StatusCode::OK {
            last = None;
            break;
        }
        last = Some(body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last, None, "healthy again once redis is back");
    app.stop().await;
}

#[tokio::test]
async fn health_check_is_503_when_redis_never_was_there() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let cfg = Config {
        redis_port: port,
        ..Config::default()
    };
    let task = tokio::spawn(athens::serve(listener, cfg, shutdown.clone()));
    let (status, body) = get(addr, athens::HEALTH_PATH).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, _) = get(addr, "/api/v1/visits").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    shutdown.cancel();
    within("serve", task).await.unwrap().unwrap();
}

#[tokio::test]
async fn visits_count_on_across_blue_and_green() {
    let redis = Redis::start().await;
    let blue = App::start(&redis, "blue", "1.0").await;
    let green = App::start(&redis, "green", "1.1").await;

    let (status, b1) = get(blue.addr, "/api/v1/visits").await;
    assert_eq!(status, StatusCode::OK, "{b1}");
    assert_eq!(b1["count"], 1);
    assert_eq!(b1["color"], "blue");
    assert_eq!(b1["version"], "1.0");

    let (_, g) = get(green.addr, "/api/v1/visits").await;
    assert_eq!(g["count"], 2, "green continues blue's count: {g}");
    assert_eq!(g["color"], "green");
    assert_eq!(g["version"], "1.1");

    let (_, b2) = get(blue.addr, "/api/v1/visits").await;
    assert_eq!(b2["count"], 3);
    assert_eq!(
        resp(redis.port, &["GET", "athens:visits"]).await.unwrap(),
        "$1\r\n3\r\n"
    );

    blue.stop().await;
    green.stop().await;
}

#[tokio::test]
async fn an_oauth_state_from_blue_is_accepted_once_by_green() {
    let redis = Redis::start().await;
    let blue = App::start(&redis, "blue", "1.0").await;
    let green = App::start(&redis, "green", "1.1").await;

    let start = send(blue.addr, "/api/v1/open/oauth/start").await;
    assert_eq!(start.status(), StatusCode::FOUND);
    let location = start.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let state = location
        .strip_prefix(&format!("{}?state=", athens::CALLBACK_PATH))
        .unwrap_or_else(|| panic!("redirects to the callback with the state: {location}"))
        .to_owned();
    assert_eq!(state.len(), 64, "{state}");

    // Stored with the 5 minute TTL, not forever.
    let ttl = resp(
        redis.port,
        &["PTTL", &format!("athens:oauth:state:{state}")],
    )
    .await
    .unwrap();
    let ttl: i64 = ttl.trim().trim_start_matches(':').parse().unwrap();
    assert!(ttl > 0 && ttl <= 300_000, "PTTL {ttl}");

    let (status, body) = get(green.addr, &location).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["issued_by"]["color"], "blue");
    assert_eq!(body["accepted_by"]["color"], "green");

    for app in [&green, &blue] {
        let (status, body) = get(app.addr, &location).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "a state is single-use: {body}"
        );
    }
    let unknown = format!("{}?state={}", athens::CALLBACK_PATH, "0".repeat(64));
    let (status, _) = get(green.addr, &unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(green.addr, athens::CALLBACK_PATH).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    blue.stop().await;
    green.stop().await;
}

#[tokio::test]
async fn the_oauth_redirect_goes_to_the_configured_url() {
    let redis = Redis::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let cfg = Config {
        redis_port: redis.port,
        oauth_authorize_url: "https://id.example/authorize?client_id=athens".into(),
        ..Config::default()
    };
    let task = tokio::spawn(athens::serve(listener, cfg, shutdown.clone()));
    let start = send(addr, "/api/v1/open/oauth/start").await;
    assert_eq!(start.status(), StatusCode::FOUND);
    let location = start.headers()[header::LOCATION].to_str().unwrap();
    assert!(
        location.starts_with("https://id.example/authorize?client_id=athens&state="),
        "{location}"
    );
    shutdown.cancel();
    within("serve", task).await.unwrap().unwrap();
}

#[tokio::test]
async fn the_websocket_greets_echoes_ticks_and_closes_with_1001() {
    let redis = Redis::start().await;
    let app = App::start(&redis, "blue", "7").await;
    let (mut ws, _) = within(
        "websocket handshake",
        tokio_tungstenite::connect_async(format!("ws://{}/ws", app.addr)),
    )
    .await
    .unwrap();

    let hello = within("greeting", ws.next()).await.unwrap().unwrap();
    let hello: Value = serde_json::from_str(hello.to_text().unwrap()).unwrap();
    assert_eq!(hello["hello"], "7");
    assert_eq!(hello["color"], "blue");

    ws.send(Message::text("echo me")).await.unwrap();
    let (mut echoed, mut ticks) = (false, 0);
    // Ticks interleave with the echo; read until both were seen.
    for _ in 0..200 {
        if echoed && ticks > 0 {
            break;
        }
        let msg = within("echo or tick", ws.next()).await.unwrap().unwrap();
        let text = msg.to_text().unwrap();
        if text == "echo me" {
            echoed = true;
        } else {
            let tick: Value = serde_json::from_str(text).unwrap();
            assert_eq!(tick["version"], "7", "{tick}");
            ticks += 1;
            assert_eq!(tick["tick"], ticks, "ticks count up by one: {tick}");
        }
    }
    assert!(echoed && ticks > 0, "echoed: {echoed}, ticks: {ticks}");

    app.shutdown.cancel();
    let mut close = None;
    for _ in 0..200 {
        match within("close frame", ws.next()).await {
            Some(Ok(Message::Close(frame))) => {
                close = frame;
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    let close = close.expect("the close frame has a code");
    assert_eq!(close.code, CloseCode::Away);
    within("serve", app.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn sse_yields_events_until_shutdown() {
    let redis = Redis::start().await;
    let app = App::start(&redis, "green", "9").await;
    let resp = send(app.addr, "/api/v1/stream").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = resp.into_body();
    let mut text = String::new();
    for _ in 0..200 {
        if text.matches("event: tick").count() >= 2 {
            break;
        }
        let frame = within("SSE event", body.frame()).await.unwrap().unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
    assert!(text.matches("event: tick").count() >= 2, "{text}");
    let first = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("an event has data");
    let first: Value = serde_json::from_str(first).unwrap();
    assert_eq!(first["version"], "9");
    assert_eq!(first["n"], 1);

    // Shutdown ends the stream rather than waiting on it forever.
    app.shutdown.cancel();
    within("the stream to end", async {
        while let Some(frame) = body.frame().await {
            frame.unwrap();
        }
    })
    .await;
    within("serve", app.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_stops_accepting_and_finishes_the_request_in_flight() {
    let redis = Redis::start().await;
    let app = App::start(&redis, "blue", "1").await;
    let resp = send(app.addr, "/api/v1/slow?ms=500").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let first = within("first line", body.frame()).await.unwrap().unwrap();
    assert_eq!(
        first.into_data().unwrap(),
        "started\n",
        "the request is in flight"
    );

    app.shutdown.cancel();
    let mut refused = false;
    for _ in 0..400 {
        if TcpStream::connect(app.addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the listener closes after the shutdown signal");

    let rest = within("the rest of the body", body.collect())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(rest, "done\n", "the in-flight request completes");
    within("serve", app.task).await.unwrap().unwrap();
}
