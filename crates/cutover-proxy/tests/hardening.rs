//! Hostile and unlucky clients, over raw sockets against a real listener:
//! silent connections, connection floods, broken and stalled bodies, dot
//! segments, idle WebSockets. Each timeout under test is a short real
//! duration (see data_plane.rs for why not paused time); the assertions
//! bound a failure, they do not measure speed.

use std::net::SocketAddr;
use std::time::Duration;

use cutover_core::service::Color;
use cutover_proxy::ProxyConfig;
use cutover_test::client::{raw, raw_status};
use cutover_test::Origin;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;

use support::{wait_until, Harness};

/// Reads until the server closes the connection; `None` if it is still
/// open after `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|_| out)
}

/// Fails with `what` unless the server closes `stream` within 10 s.
async fn assert_closed(stream: &mut TcpStream, what: &str) {
    let closed = closed_within(stream, Duration::from_secs(10)).await;
    assert!(closed.is_some(), "{what}");
}

/// A raw WebSocket handshake request for `path` on the test host.
fn ws_handshake(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

fn metric(h: &Harness, name: &str) -> u64 {
    let text = h.proxy.render_metrics();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in the metrics:\n{text}"))
}

async fn with_short_timeouts() -> (Origin, Harness) {
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::with_config(ProxyConfig {
        client_header_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    })
    .await;
    h.deploy(&[&blue], Color::Blue).await;
    (blue, h)
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_client_header_timeout() {
    let (_blue, h) = with_short_timeouts().await;
    let mut silent = connect(h.addr).await;
    assert_closed(
        &mut silent,
        "a connection that sent nothing is still open 10 s after a 300 ms header timeout",
    )
    .await;
}

#[tokio::test]
async fn part_of_the_http2_preface_does_not_hold_a_connection() {
    let (_blue, h) = with_short_timeouts().await;
    let mut partial = connect(h.addr).await;
    partial
        .write_all(&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..23])
        .await
        .unwrap();
    assert_closed(
        &mut partial,
        "23 bytes of the h2 preface held the connection past the header timeout",
    )
    .await;
    // The whole preface and no SETTINGS: still the client's first step.
    let mut preface_only = connect(h.addr).await;
    preface_only
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    assert_closed(
        &mut preface_only,
        "a preface with no SETTINGS frame held the connection past the header timeout",
    )
    .await;
}

#[tokio::test]
async fn a_request_that_starts_in_time_is_served() {
    let (_blue, h) = with_short_timeouts().await;
    let mut stream = connect(h.addr).await;
    stream.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream
        .write_all(b"Host: app.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_within(&mut stream, Duration::from_secs(10))
        .await
        .expect("the proxy answers and closes");
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(raw_status(&answer), Some(200), "{answer}");
    assert!(answer.ends_with("blue"), "{answer}");
}

#[tokio::test]
async fn past_max_connections_new_ones_are_shed_and_open_ones_keep_working() {
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::with_config(ProxyConfig {
        max_connections: 3,
        ..ProxyConfig::default()
    })
    .await;
    h.deploy(&[&blue], Color::Blue).await;

    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(cutover_test::client::http1(h.addr).await.unwrap());
    }
    wait_until("three connections counted", || {
        metric(&h, "cutover_client_connections") == 3
    })
    .await;

    let mut fourth = connect(h.addr).await;
    fourth
        .write_all(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_within(&mut fourth, Duration::from_secs(5))
        .await
        .expect("a connection past the cap is closed at once");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    assert_eq!(metric(&h, "cutover_connections_shed_total"), 1);

    // The connections already open are served as before.
    for sender in &mut held {
        let (status, body) = cutover_test::client::get1(sender, support::HOST, "/")
            .await
            .unwrap();
        assert_eq!((status.as_u16(), body.as_str()), (200, "blue"));
    }
    // One ends, and a new client gets its place.
    held.pop();
    wait_until("the closed connection leaves the count", || {
        metric(&h, "cutover_client_connections") == 2
    })
    .await;
    let (status, body) = h.get("/").await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "blue"));
}

#[tokio::test]
async fn raw_requests_still_get_answers() {
    // The preface timer must not touch a request that arrives at once.
    let (_blue, h) = with_short_timeouts().await;
    let answer = raw(
        h.addr,
        b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(raw_status(&answer), Some(200), "{answer}");
}

async fn with_body_timers(response_header: Duration, body: Duration) -> (Origin, Harness) {
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::with_config(ProxyConfig {
        response_header_timeout: response_header,
        client_body_timeout: body,
        ..ProxyConfig::default()
    })
    .await;
    h.deploy(&[&blue], Color::Blue).await;
    (blue, h)
}

#[tokio::test]
async fn a_steady_upload_longer_than_the_response_header_timeout_is_served() {
    let (_blue, h) = with_body_timers(Duration::from_millis(300), Duration::from_secs(5)).await;
    let mut stream = connect(h.addr).await;
    let (chunks, size) = (15, 100);
    stream
        .write_all(
            format!(
                "POST /echo HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                chunks * size
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // 1.5 s of upload, five times the response-header timeout.
    for _ in 0..chunks {
        stream.write_all(&vec![b'x'; size]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = closed_within(&mut stream, Duration::from_secs(10))
        .await
        .expect("an answer");
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(raw_status(&answer), Some(200), "{answer}");
    assert!(answer.ends_with(&"x".repeat(chunks * size)), "{answer}");
}

#[tokio::test]
async fn the_response_header_timer_still_bounds_the_origin_after_the_body() {
    let (_blue, h) = with_body_timers(Duration::from_millis(300), Duration::from_secs(5)).await;
    let answer = raw(
        h.addr,
        b"POST /slow?ms=3000 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(raw_status(&answer), Some(504), "{answer}");
}

#[tokio::test]
async fn a_stalled_upload_is_408() {
    let (_blue, h) = with_body_timers(Duration::from_secs(60), Duration::from_millis(300)).await;
    let mut stream = connect(h.addr).await;
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1000\r\n\r\n0123456789",
        )
        .await
        .unwrap();
    let answer = closed_within(&mut stream, Duration::from_secs(10))
        .await
        .expect("a stalled body is not held for long");
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(raw_status(&answer), Some(408), "{answer}");
}

#[tokio::test]
async fn a_malformed_chunked_body_is_400_not_an_upstream_failure() {
    let (blue, h) = with_body_timers(Duration::from_secs(60), Duration::from_secs(5)).await;
    let answer = raw(
        h.addr,
        b"POST /echo HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(raw_status(&answer), Some(400), "{answer}");
    let text = h.proxy.render_metrics();
    assert!(
        !text.contains("class=\"5xx\""),
        "a client's broken body counted as a server error:\n{text}"
    );
    // The target is still in rotation.
    let (status, body) = h.get("/").await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "blue"));
    drop(blue);
}

#[tokio::test]
async fn dot_segments_are_resolved_before_a_prefix_is_matched() {
    let web = Origin::start("web").await.unwrap();
    let wsp = Origin::start("wsp").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&web], Color::Blue).await;
    let mut req = support::request(&[&wsp], Color::Blue);
    req.path_prefix = Some("/wsp".into());
    h.proxy.deploy("wsp", req).await.unwrap();

    let get = |path: &'static str| async move {
        let answer = raw(
            h.addr,
            format!("GET {path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
                .as_bytes(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (raw_status(&answer), body)
    };
    // The origin gets the path that was routed on.
    assert_eq!(
        get("/wsp/../echo-uri?q=1").await,
        (Some(200), "web /echo-uri?q=1".into())
    );
    assert_eq!(
        get("/wsp/%2e%2E/echo-uri").await,
        (Some(200), "web /echo-uri".into())
    );
    assert_eq!(
        get("/x/./../wsp/echo-uri").await,
        (Some(200), "wsp /wsp/echo-uri".into())
    );
    assert_eq!(
        get("/wsp/./echo-uri").await,
        (Some(200), "wsp /wsp/echo-uri".into())
    );
    // Names with dots are names.
    assert_eq!(
        get("/wsp/..echo-uri").await,
        (Some(200), "wsp /wsp/..echo-uri".into())
    );
    let (status, body) = get("/wsp/../../etc/passwd").await;
    assert_eq!(status, Some(400), "{body}");
}

mod control {
    use super::*;
    use cutover_proxy::admin::{
        require_token, serve_control, Admin, BearerToken, ControlTcp, ControlTimeouts, Guard,
        Tokens,
    };
    use cutover_proxy::Proxy;
    use tokio::net::{TcpListener, UnixStream};
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    const TIMEOUTS: ControlTimeouts = ControlTimeouts {
        header: Duration::from_millis(300),
        body: Duration::from_millis(300),
    };

    async fn closed<S: AsyncReadExt + Unpin>(mut s: S) -> bool {
        let mut buf = [0u8; 512];
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }

    /// What a client can leave unfinished: nothing, half a head, half a body.
    const UNFINISHED: [&[u8]; 3] = [
        b"",
        b"GET /v1/health HTTP/1.1\r\nHost: x",
        b"POST /v1/services/app HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"tar",
    ];

    #[tokio::test]
    async fn the_unix_socket_times_out_what_a_client_leaves_unfinished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let shutdown = CancellationToken::new();
        let admin = Admin::new(Proxy::new(ProxyConfig::default()), None, shutdown.clone());
        tokio::spawn(serve_control(
            listener,
            admin.router(),
            TIMEOUTS,
            shutdown.clone(),
            TaskTracker::new(),
        ));

        for bytes in UNFINISHED {
            let mut s = UnixStream::connect(&path).await.unwrap();
            s.write_all(bytes).await.unwrap();
            assert!(
                closed(s).await,
                "{:?} held the control socket past its timeouts",
                String::from_utf8_lossy(bytes)
            );
        }
        // A whole request is still answered.
        let mut s = UnixStream::connect(&path).await.unwrap();
        s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        assert_eq!(raw_status(&answer), Some(200), "{answer}");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_service_of_too_many_targets_is_a_clear_400() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let shutdown = CancellationToken::new();
        let proxy = Proxy::new(ProxyConfig::default());
        let admin = Admin::new(proxy.clone(), None, shutdown.clone());
        tokio::spawn(serve_control(
            listener,
            admin.router(),
            TIMEOUTS,
            shutdown.clone(),
            TaskTracker::new(),
        ));

        let targets: Vec<String> = (0..10_000)
            .map(|i| format!("10.{}.{}.{}:80", i / 65536, (i / 256) % 256, i % 256))
            .collect();
        let body = serde_json::json!({ "targets": targets }).to_string();
        let mut s = UnixStream::connect(&path).await.unwrap();
        s.write_all(
            format!(
                "PUT /v1/services/app HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        assert_eq!(raw_status(&answer), Some(400), "{answer}");
        assert!(
            answer.contains("targets: 10000 targets, at most 256 are accepted for one service"),
            "{answer}"
        );
        assert!(proxy.status().is_empty(), "nothing was installed");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn the_tcp_control_listener_times_out_before_the_token_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "0123456789abcdef0123456789abcdef\n").unwrap();
        let token = BearerToken::from_file(&token_file).unwrap();
        let tls =
            cutover_tls::ControlTls::self_signed(&dir.path().join("tls"), &["localhost".into()])
                .unwrap();
        let shutdown = CancellationToken::new();
        let admin = Admin::new(Proxy::new(ProxyConfig::default()), None, shutdown.clone());
        let guard = Guard::new(std::sync::Arc::new(Tokens::in_memory()), Some(token));
        // Plain HTTP (loopback) is timed once a head starts; TLS already
        // while the handshake has not begun, off the accept loop.
        for (config, unfinished) in [
            (None, &UNFINISHED[..]),
            (Some(tls.config.clone()), &UNFINISHED[..1]),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(serve_control(
                ControlTcp::new(listener, config, TIMEOUTS.header),
                require_token(admin.router(), guard.clone()),
                TIMEOUTS,
                shutdown.clone(),
                TaskTracker::new(),
            ));
            // A silent client holds nothing: the next one still connects
            // and is timed on its own.
            let mut held = Vec::new();
            for bytes in unfinished {
                let mut s = TcpStream::connect(addr).await.unwrap();
                s.write_all(bytes).await.unwrap();
                held.push((bytes, s));
            }
            for (bytes, s) in held {
                assert!(
                    closed(s).await,
                    "{:?} held the TCP control listener past its timeouts",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
        shutdown.cancel();
    }
}

/// The clients that exposed the reset: Python's aiohttp and websockets,
/// each sending every 250 ms and reading the echoes, through the drain
/// deadline. Each must see the 1012 close, not a connection reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_clients_that_keep_sending_get_1012_not_a_reset() {
    let blue = Origin::start("blue").await.unwrap();
    let green = Origin::start("green").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;

    let per_library = 3;
    let (mut child, mut lines) =
        support::ws_clients(&h.addr.port().to_string(), support::HOST, per_library);
    for _ in 0..2 * per_library {
        let line = support::ws_clients_line(&mut lines).await;
        assert!(line.starts_with("connected "), "{line}");
    }

    let mut req = support::request(&[&green], Color::Green);
    req.timeouts.websocket_drain = Duration::from_secs(1);
    h.proxy.deploy("app", req).await.unwrap();

    let mut results = Vec::new();
    for _ in 0..2 * per_library {
        results.push(support::ws_clients_line(&mut lines).await);
    }
    for line in &results {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            v["close"], 1012,
            "a client did not get the 1012 close: {results:#?}"
        );
    }
    assert!(child.wait().await.unwrap().success());
}

/// A client that keeps sending after the 1012 and reads only seconds later,
/// past the relay's wait for its Close: closing the socket then, over the
/// bytes the client kept sending, would be an RST, and the client's kernel
/// would throw away the 1012 it had not read yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_keeps_sending_and_reads_late_still_finds_the_1012() {
    let blue = Origin::start("blue").await.unwrap();
    let green = Origin::start("green").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;

    let mut stream = connect(h.addr).await;
    stream.write_all(&ws_handshake("/ws")).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        stream.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let (mut rx, mut tx) = stream.into_split();
    let writer = tokio::spawn(async move {
        // A masked one-byte text frame every 50 ms, for at most 20 s.
        let frame = [0x81, 0x81, 1, 2, 3, 4, b'x' ^ 1];
        for _ in 0..400 {
            if tx.write_all(&frame).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    let mut req = support::request(&[&green], Color::Green);
    req.timeouts.websocket_drain = Duration::from_millis(300);
    h.proxy.deploy("app", req).await.unwrap();
    // Past the drain deadline and the relay's 2 s wait for a Close reply.
    tokio::time::sleep(Duration::from_millis(3300)).await;

    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rx.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect("the proxy closes the connection");
    writer.abort();
    let close_1012 = [0x88, 0x11, 0x03, 0xF4];
    let found = seen.windows(4).any(|w| w == close_1012);
    assert!(
        end.is_ok() && found,
        "expected the 1012 close and a FIN, got {end:?} after {} bytes (close frame found: {found})",
        seen.len()
    );
}

/// The connections a burst opened to the origin close once idle, so
/// their buffers do not stay with the daemon after the load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_upstream_connections_close_after_the_idle_timeout() {
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::with_config(ProxyConfig {
        upstream_idle_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    })
    .await;
    h.deploy(&[&blue], Color::Blue).await;
    let burst: Vec<_> = (0..8)
        .map(|_| {
            let addr = h.addr;
            tokio::spawn(async move {
                cutover_test::client::get(addr, support::HOST, "/slow?ms=200").await
            })
        })
        .collect();
    for b in burst {
        assert_eq!(b.await.unwrap().unwrap().0.as_u16(), 200);
    }
    let idle = "cutover_upstream_idle_connections{service=\"app\"}";
    assert!(
        metric(&h, idle) >= 2,
        "the burst left connections in the pool"
    );
    wait_until("the idle pool to empty", || metric(&h, idle) == 0).await;
}

/// A WebSocket handshake under way when the daemon shuts down (or hands
/// over) completes: the client gets its 101, then the 1012 of the shutdown,
/// not a failed handshake.
#[tokio::test]
async fn a_websocket_handshake_in_flight_at_shutdown_completes() {
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;
    let mut stream = connect(h.addr).await;
    stream
        .write_all(&ws_handshake("/ws?delay_ms=300"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.shutdown.cancel();
    let answer = closed_within(&mut stream, Duration::from_secs(10))
        .await
        .expect("the connection ends after the shutdown");
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 101"), "{text}");
    // hyper adds `close` to the Connection header of a response on a
    // connection that is shutting down, which fails the handshake.
    let connection: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("connection:"))
        .map(str::trim)
        .collect();
    assert_eq!(connection, ["upgrade"], "{text}");
}

/// Transfer-Encoding and Content-Length both: the body is the chunked one
/// (hyper drops the length as it parses, RFC 9112 §6.3), and the origin
/// gets it whole, framed anew, with no stale length to desync on.
#[tokio::test]
async fn a_body_with_both_framings_reaches_the_origin_as_chunked_framed_it() {
    let (_blue, h) = with_body_timers(Duration::from_secs(60), Duration::from_secs(5)).await;
    let body = "y".repeat(32);
    let answer = raw(
        h.addr,
        format!(
            "POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n{body}\r\n0\r\n\r\n"
        )
        .as_bytes(),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(raw_status(&answer), Some(200), "{answer}");
    assert!(
        answer.ends_with(&body),
        "the origin got a cut body: {answer}"
    );
}
