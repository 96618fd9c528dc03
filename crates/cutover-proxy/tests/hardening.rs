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
    assert!(
        closed_within(&mut silent, Duration::from_secs(10))
            .await
            .is_some(),
        "a connection that sent nothing is still open 10 s after a 300 ms header timeout"
    );
}

#[tokio::test]
async fn part_of_the_http2_preface_does_not_hold_a_connection() {
    let (_blue, h) = with_short_timeouts().await;
    let mut partial = connect(h.addr).await;
    partial
        .write_all(&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..23])
        .await
        .unwrap();
    assert!(
        closed_within(&mut partial, Duration::from_secs(10))
            .await
            .is_some(),
        "23 bytes of the h2 preface held the connection past the header timeout"
    );
    // The whole preface and no SETTINGS: still the client's first step.
    let mut preface_only = connect(h.addr).await;
    preface_only
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut preface_only, Duration::from_secs(10))
            .await
            .is_some(),
        "a preface with no SETTINGS frame held the connection past the header timeout"
    );
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
