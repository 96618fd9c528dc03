//! The data plane end to end: in-process origins (blue, green) behind a real
//! proxy listener on 127.0.0.1.
//!
//! Timeouts that are the subject of a test are short real durations, not
//! paused time: paused time auto-advances whenever the runtime waits on a
//! socket, which would fire probe and connect timeouts spuriously here.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cutover_core::service::Color;
use cutover_core::status::{Event, Health, SetState};
use cutover_proxy::{DeployError, ProxyConfig};
use cutover_test::client::{self, raw, raw_status};
use cutover_test::Origin;
use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use http_body_util::BodyExt;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

mod support;

use support::{next_event, request, wait_until, Harness, HOST};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_under_concurrent_load_loses_no_request() {
    let blue = Origin::start("blue").await.unwrap();
    let green = Origin::start("green").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;

    let switched = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let before = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for i in 0..8 {
        let (switched, stop, before, addr) =
            (switched.clone(), stop.clone(), before.clone(), h.addr);
        clients.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut after_switch = Vec::new();
            let h2 = i % 2 == 1;
            let mut s1 = if h2 {
                None
            } else {
                Some(client::http1(addr).await.unwrap())
            };
            let mut s2 = if h2 {
                Some(client::http2(addr).await.unwrap())
            } else {
                None
            };
            for _ in 0..5000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let started_after = switched.load(Ordering::SeqCst);
                let r = match (&mut s1, &mut s2) {
                    (Some(s), _) => client::get1(s, HOST, "/").await,
                    (_, Some(s)) => client::get2(s, HOST, "/").await,
                    _ => unreachable!(),
                };
                match r {
                    Ok((StatusCode::OK, body)) => {
                        if started_after {
                            after_switch.push(body);
                        } else {
                            before.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    other => failures.push(format!("{other:?}")),
                }
            }
            (failures, after_switch)
        }));
    }
    wait_until("load before the switch", || {
        before.load(Ordering::Relaxed) > 200
    })
    .await;
    h.deploy(&[&green], Color::Green).await;
    switched.store(true, Ordering::SeqCst);
    // Let every client run a good number of requests on the new set.
    let served_before = green.requests();
    wait_until("load after the switch", || {
        green.requests() > served_before + 400
    })
    .await;
    stop.store(true, Ordering::SeqCst);

    let mut total_after = 0;
    for c in clients {
        let (failures, after) = c.await.unwrap();
        assert!(failures.is_empty(), "failed requests: {failures:?}");
        assert!(
            after.iter().all(|b| b == "green"),
            "a request after the switch was not served by green"
        );
        total_after += after.len();
    }
    assert!(total_after > 0);
    assert!(blue.requests() > 0);
}

#[tokio::test]
async fn slow_request_in_flight_finishes_on_blue() {
    let blue = Origin::start("blue").await.unwrap();
    let green = Origin::start("green").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;
    let mut events = h.proxy.subscribe();

    let addr = h.addr;
    let slow = tokio::spawn(async move { client::get(addr, HOST, "/slow?ms=700").await.unwrap() });
    wait_until("the slow request to reach blue", || blue.in_flight() == 1).await;
    let blue_id = h.proxy.status()[0].active.id;
    h.deploy(&[&green], Color::Green).await;
    let ev = events.recv().await.unwrap();
    assert!(
        matches!(ev, Event::Switched { color: Color::Green, previous: Some(p), .. } if p == blue_id),
        "{ev:?}"
    );

    assert_eq!(h.get("/").await, (StatusCode::OK, "green".to_string()));
    let status = h.proxy.status();
    assert_eq!(status[0].active.color, Color::Green);
    assert_eq!(status[0].draining.len(), 1);
    assert_eq!(status[0].draining[0].state, SetState::Draining);
    assert_eq!(status[0].draining[0].targets[0].in_flight, 1);

    assert_eq!(slow.await.unwrap(), (StatusCode::OK, "blue".to_string()));
    let ev = next_event(&mut events, |e| matches!(e, Event::Drained { .. })).await;
    assert!(
        matches!(
            ev,
            Event::Drained {
                color: Color::Blue,
                cut_requests: 0,
                closed_websockets: 0,
                ..
            }
        ),
        "{ev:?}"
    );
    assert!(h.proxy.status()[0].draining.is_empty());
}

async fn ws_connect(addr: SocketAddr) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (ws, resp) = tokio_tungstenite::client_async(format!("ws://{HOST}/ws"), stream)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws
}

async fn next_text(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> String {
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => t.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

#[tokio::test]
async fn websocket_survives_the_switch_and_gets_1012_at_its_deadline() {
    let blue = Origin::start("blue").await.unwrap();
    let green = Origin::start("green").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;
    let mut events = h.proxy.subscribe();

    let mut old = ws_connect(h.addr).await;
    assert_eq!(next_text(&mut old).await, "blue");

    let mut req = request(&[&green], Color::Green);
    req.timeouts.websocket_drain = Duration::from_millis(800);
    h.proxy.deploy("app", req).await.unwrap();

    // Still relayed by blue after the switch.
    old.send(Message::text("still there?")).await.unwrap();
    assert_eq!(next_text(&mut old).await, "still there?");
    // New connections land on green.
    let mut new = ws_connect(h.addr).await;
    assert_eq!(next_text(&mut new).await, "green");

    // At the deadline the proxy closes the old one with 1012.
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match old.next().await {
                Some(Ok(Message::Close(frame))) => {
                    // Answer the close like a browser does, so the relay
                    // can finish without waiting out its grace period.
                    while let Some(Ok(_)) = old.next().await {}
                    return frame.map(|f| u16::from(f.code));
                }
                Some(Ok(_)) => continue,
                other => panic!("connection ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("close frame within 5s");
    assert_eq!(close, Some(1012));
    let ev = next_event(&mut events, |e| matches!(e, Event::Drained { .. })).await;
    assert!(
        matches!(
            ev,
            Event::Drained {
                closed_websockets: 1,
                cut_requests: 0,
                ..
            }
        ),
        "{ev:?}"
    );
    wait_until("blue to see the 1001 close", || {
        blue.ws_close_codes() == [1001]
    })
    .await;

    // The green one is untouched.
    new.send(Message::text("hi")).await.unwrap();
    assert_eq!(next_text(&mut new).await, "hi");
}

#[tokio::test]
async fn sse_keeps_streaming_across_the_switch() {
    let blue = Origin::start("blue").await.unwrap();
    let green = Origin::start("green").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;

    let mut sender = client::http1(h.addr).await.unwrap();
    let resp = sender
        .send_request(client::get_request(HOST, "/sse?n=8", false))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut text = String::new();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    text.push_str(&String::from_utf8_lossy(&first));
    h.deploy(&[&green], Color::Green).await;
    while let Some(frame) = body.frame().await {
        if let Ok(d) = frame.unwrap().into_data() {
            text.push_str(&String::from_utf8_lossy(&d));
        }
    }
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 8, "{text}");
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(i, e)| *e == format!("data: blue {i}")),
        "{text}"
    );
    assert_eq!(h.get("/").await.1, "green");
}

#[tokio::test]
async fn health_gate_refuses_unhealthy_green_and_blue_keeps_serving() {
    let blue = Origin::start("blue").await.unwrap();
    let green = Origin::start("green").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;
    green.set_healthy(false);

    let mut req = request(&[&green], Color::Green);
    req.timeouts.deploy = Duration::from_millis(600);
    let err = h.proxy.deploy("app", req).await.unwrap_err();
    let DeployError::Unhealthy { detail, .. } = &err else {
        panic!("expected Unhealthy, got {err:?}");
    };
    assert!(detail.contains(&green.target()), "{detail}");
    assert!(detail.contains("503"), "{detail}");
    assert!(
        detail.contains("green is failing its health check"),
        "{detail}"
    );

    // A target nobody listens on names the connect error.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut req = request(&[&green], Color::Green);
    req.targets = vec![dead.clone()];
    req.timeouts.deploy = Duration::from_millis(400);
    let err = h.proxy.deploy("app", req).await.unwrap_err();
    // As a user reads it: the failing targets are the detail.
    let err = cutover_core::diag::Diagnose::report(&err).to_string();
    assert!(err.contains(&dead) && err.contains("connect"), "{err}");

    assert_eq!(h.get("/").await, (StatusCode::OK, "blue".to_string()));
    let status = h.proxy.status();
    assert_eq!(status[0].active.color, Color::Blue);
    assert!(status[0].draining.is_empty());
}

#[tokio::test]
async fn unhealthy_target_leaves_rotation_and_comes_back() {
    let a = Origin::start("a").await.unwrap();
    let b = Origin::start("b").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&a, &b], Color::Blue).await;
    let mut events = h.proxy.subscribe();

    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10 {
        seen.insert(h.get("/").await.1);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "b"]);

    b.set_healthy(false);
    let ev = next_event(&mut events, |e| matches!(e, Event::HealthChanged { .. })).await;
    let Event::HealthChanged {
        addr,
        health,
        reason,
        ..
    } = ev
    else {
        unreachable!()
    };
    assert_eq!(
        (addr.as_str(), health),
        (b.target().as_str(), Health::Unhealthy)
    );
    assert!(reason.unwrap().contains("503"));
    for _ in 0..10 {
        assert_eq!(h.get("/").await.1, "a");
    }
    let t = &h.proxy.status()[0].active.targets[1];
    assert_eq!(t.health, Health::Unhealthy);
    assert!(t
        .last_error
        .as_deref()
        .unwrap()
        .contains("failing its health check"));

    b.set_healthy(true);
    next_event(&mut events, |e| {
        matches!(
            e,
            Event::HealthChanged {
                health: Health::Healthy,
                ..
            }
        )
    })
    .await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10 {
        seen.insert(h.get("/").await.1);
    }
    assert!(seen.contains("b"));
}

#[tokio::test]
async fn connect_failure_is_retried_on_another_target() {
    let a = Origin::start("a").await.unwrap();
    let b = Origin::start("b").await.unwrap();
    let h = Harness::start().await;
    let mut req = request(&[&a, &b], Color::Blue);
    // Keep the monitor out of the way: this is about the request path.
    req.health.interval = Duration::from_secs(3600);
    h.proxy.deploy("app", req).await.unwrap();
    b.stop();
    // Give b's listener time to close.
    wait_until("b to refuse connections", || {
        std::net::TcpStream::connect(b.addr()).is_err()
    })
    .await;

    for _ in 0..10 {
        assert_eq!(h.get("/").await, (StatusCode::OK, "a".to_string()));
    }
    // The failed connect took b out of rotation.
    let t = &h.proxy.status()[0].active.targets[1];
    assert_eq!(t.health, Health::Unhealthy);
    assert!(
        t.last_error.as_deref().unwrap().contains("connect"),
        "{t:?}"
    );
}

#[tokio::test]
async fn all_targets_down_is_a_502() {
    let a = Origin::start("a").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&a], Color::Blue).await;
    a.stop();
    wait_until("a to refuse connections", || {
        std::net::TcpStream::connect(a.addr()).is_err()
    })
    .await;
    let (status, body) = h.get("/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("502"));
}

#[tokio::test]
async fn drain_timeout_cuts_long_requests_and_reports_them() {
    let blue = Origin::start("blue").await.unwrap();
    let green = Origin::start("green").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;
    let mut events = h.proxy.subscribe();

    // One waits for headers, one is mid-stream, when the deadline passes.
    let addr = h.addr;
    let waiting = tokio::spawn(async move { client::get(addr, HOST, "/slow?ms=30000").await });
    let mut sender = client::http1(h.addr).await.unwrap();
    let resp = sender
        .send_request(client::get_request(HOST, "/sse?n=1000", false))
        .await
        .unwrap();
    let mut body = resp.into_body();
    body.frame().await.unwrap().unwrap();
    // The stream is on blue (its first event came); wait for the slow one.
    wait_until("the slow request to reach blue", || blue.in_flight() == 1).await;

    let mut req = request(&[&green], Color::Green);
    req.timeouts.drain = Duration::from_millis(300);
    h.proxy.deploy("app", req).await.unwrap();

    let ev = next_event(&mut events, |e| matches!(e, Event::Drained { .. })).await;
    assert!(
        matches!(
            ev,
            Event::Drained {
                cut_requests: 2,
                color: Color::Blue,
                ..
            }
        ),
        "{ev:?}"
    );
    let (status, _) = waiting.await.unwrap().unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let streamed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match body.frame().await {
                Some(Ok(_)) => continue,
                Some(Err(_)) => return true,
                None => return false,
            }
        }
    })
    .await
    .unwrap();
    assert!(
        streamed,
        "the cut stream must end with an error, not a clean end"
    );
}

#[tokio::test]
async fn malformed_oversized_unknown_and_health() {
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::with_config(ProxyConfig {
        max_header_bytes: 8192,
        ..ProxyConfig::default()
    })
    .await;
    h.deploy(&[&blue], Color::Blue).await;
    let wait = Duration::from_secs(2);

    let answer = raw(
        h.addr,
        b"GET / HTTP/1.1\r\nHost: app.test\r\nBad Header\r\n\r\n",
        wait,
    )
    .await
    .unwrap();
    assert_eq!(raw_status(&answer), Some(400), "{answer}");
    let answer = raw(h.addr, b"\x01\x02garbage\r\n\r\n", wait).await.unwrap();
    assert_eq!(raw_status(&answer), Some(400), "{answer}");

    let big = format!(
        "GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let answer = raw(h.addr, big.as_bytes(), wait).await.unwrap();
    assert_eq!(raw_status(&answer), Some(431), "{answer}");

    let (status, body) = client::get(h.addr, "nobody.test", "/").await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no service"), "{body}");

    let (status, body) = client::get(h.addr, "anything", "/_cutover/health")
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));

    // The proxy is still fine after all that.
    assert_eq!(h.get("/").await, (StatusCode::OK, "blue".to_string()));
}

/// An app's readiness, for a load balancer in front of several nodes:
/// 200 while its live color has a healthy target, 503 once none is, by
/// name or by Host; liveness stays 200 throughout.
#[tokio::test]
async fn readiness_follows_the_live_colors_health() {
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;
    let ready = |host: &'static str, path: &'static str| {
        let addr = h.addr;
        async move { client::get(addr, host, path).await.unwrap() }
    };
    assert_eq!(
        ready("x", "/_cutover/ready/app").await,
        (StatusCode::OK, "ready\n".into())
    );
    assert_eq!(ready(HOST, "/_cutover/ready").await.0, StatusCode::OK);
    assert_eq!(
        ready("x", "/_cutover/ready/nope").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ready("nobody.test", "/_cutover/ready").await.0,
        StatusCode::NOT_FOUND
    );
    // Not the endpoint: routed to the app like any path.
    assert_eq!(ready(HOST, "/_cutover/readyz").await.1, "blue");

    blue.set_healthy(false);
    let mut status = StatusCode::OK;
    for _ in 0..200 {
        status = ready("x", "/_cutover/ready/app").await.0;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready(HOST, "/_cutover/ready").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(ready("x", "/_cutover/health").await.0, StatusCode::OK);
    blue.set_healthy(true);
    for _ in 0..200 {
        status = ready("x", "/_cutover/ready/app").await.0;
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status, StatusCode::OK);
}

/// Maintenance: new requests get the 503 page with Retry-After while the
/// one in flight finishes; with a hold they wait and are served once it
/// ends, or get the page when the hold is up; a deploy during it stays
/// behind it; the state file carries it to a restarted proxy.
#[tokio::test]
async fn maintenance_answers_503_or_holds_until_it_ends() {
    use cutover_core::maintenance::Maintenance;
    let blue = Origin::start("blue").await.unwrap();
    let green = Origin::start("green").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;
    let on = |message: Option<&str>, hold: Option<Duration>| Maintenance {
        message: message.map(Into::into),
        hold,
        retry_after: Duration::from_secs(120),
        since_ms: 0,
    };

    let slow = tokio::spawn(client::get(h.addr, HOST, "/slow?ms=600"));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let status = h
        .proxy
        .set_maintenance("app", Some(on(Some("back at ten"), None)))
        .unwrap();
    assert_eq!(
        status.maintenance.unwrap().message.as_deref(),
        Some("back at ten")
    );
    let answer = raw(
        h.addr,
        format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n").as_bytes(),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(raw_status(&answer), Some(503), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 120\r\n"),
        "{answer}"
    );
    assert!(
        answer.ends_with("503 Service Unavailable: back at ten\n"),
        "{answer}"
    );
    // The request that came before it finished as usual.
    assert_eq!(slow.await.unwrap().unwrap().0, StatusCode::OK);

    // A deploy during maintenance switches behind the page.
    h.deploy(&[&green], Color::Green).await;
    assert_eq!(h.get("/").await.0, StatusCode::SERVICE_UNAVAILABLE);

    // Held: released when maintenance ends, and served by the live color.
    h.proxy
        .set_maintenance("app", Some(on(None, Some(Duration::from_secs(30)))))
        .unwrap();
    let held = tokio::spawn(client::get(h.addr, HOST, "/"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished(), "a held request waits");
    h.proxy.set_maintenance("app", None).unwrap();
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .expect("released when maintenance ends")
        .unwrap()
        .unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "green"));

    // A hold that runs out gets the page.
    h.proxy
        .set_maintenance("app", Some(on(None, Some(Duration::from_millis(200)))))
        .unwrap();
    let (status, body) = h.get("/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("down for maintenance"), "{body}");

    // Kept in the state a restarted proxy restores.
    let state = h.proxy.state();
    let restarted = cutover_proxy::Proxy::new(ProxyConfig::default());
    restarted.restore(state).unwrap();
    let hold = restarted.status()[0]
        .maintenance
        .as_ref()
        .and_then(|m| m.hold);
    assert_eq!(hold, Some(Duration::from_millis(200)));
    assert!(h.proxy.set_maintenance("nope", None).is_err());
}

#[tokio::test]
async fn forwarding_headers_and_hop_by_hop() {
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;
    let req = format!(
        "GET /headers HTTP/1.1\r\nHost: {HOST}:8080\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\n\
         Keep-Alive: timeout=5\r\nProxy-Authorization: x\r\nX-Forwarded-For: 10.9.8.7\r\nX-Request-Id: abc-123\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let answer = raw(h.addr, req.as_bytes(), Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(raw_status(&answer), Some(200), "{answer}");
    let body = answer.to_ascii_lowercase();
    assert!(
        body.contains("x-forwarded-for: 10.9.8.7, 127.0.0.1\n"),
        "{answer}"
    );
    assert!(body.contains("x-forwarded-proto: http\n"), "{answer}");
    assert!(
        body.contains(&format!("x-forwarded-host: {HOST}:8080\n")),
        "{answer}"
    );
    assert!(body.contains("x-request-id: abc-123\n"), "{answer}");
    assert!(body.contains(&format!("host: {HOST}:8080\n")), "{answer}");
    for gone in ["x-secret:", "keep-alive:", "proxy-authorization:"] {
        assert!(!body.contains(gone), "{gone} forwarded: {answer}");
    }

    // Without an incoming id one is generated; HTTP/2 authority becomes Host.
    let mut s = client::http2(h.addr).await.unwrap();
    let (status, body) = client::get2(&mut s, HOST, "/headers").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(&format!("host: {HOST}\n")), "{body}");
    let id = body
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap();
    assert_eq!(id.len(), 24, "{id}");
}

#[tokio::test]
async fn request_body_limit_is_413() {
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::with_config(ProxyConfig {
        max_request_body: 16,
        ..ProxyConfig::default()
    })
    .await;
    h.deploy(&[&blue], Color::Blue).await;
    let wait = Duration::from_millis(500);
    let declared = format!(
        "POST /echo HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\nContent-Length: 17\r\n\r\n{}",
        "x".repeat(17)
    );
    assert_eq!(
        raw_status(&raw(h.addr, declared.as_bytes(), wait).await.unwrap()),
        Some(413)
    );
    let chunked = format!("POST /echo HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n{}\r\n0\r\n\r\n", "y".repeat(32));
    assert_eq!(
        raw_status(&raw(h.addr, chunked.as_bytes(), wait).await.unwrap()),
        Some(413)
    );
    let small = format!("POST /echo HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello");
    let answer = raw(h.addr, small.as_bytes(), wait).await.unwrap();
    assert_eq!(raw_status(&answer), Some(200));
    assert!(answer.ends_with("hello"), "{answer}");
}

#[tokio::test]
async fn routes_by_host_and_prefix_and_remove_drains() {
    let web = Origin::start("web").await.unwrap();
    let api = Origin::start("api").await.unwrap();
    let h = Harness::start().await;
    let mut req = request(&[&web], Color::Blue);
    req.hosts = vec![];
    h.proxy.deploy("web", req).await.unwrap();
    let mut req = request(&[&api], Color::Blue);
    req.hosts = vec!["*.example.test".into()];
    req.path_prefix = Some("/api".into());
    h.proxy.deploy("api", req).await.unwrap();

    assert_eq!(
        client::get(h.addr, "x.example.test", "/api/v1")
            .await
            .unwrap()
            .1,
        "api"
    );
    assert_eq!(
        client::get(h.addr, "X.Example.Test:80", "/api")
            .await
            .unwrap()
            .1,
        "api"
    );
    assert_eq!(
        client::get(h.addr, "x.example.test", "/other")
            .await
            .unwrap()
            .1,
        "web"
    );
    assert_eq!(
        client::get(h.addr, "elsewhere", "/api").await.unwrap().1,
        "web"
    );

    // A route clash is refused before any probe.
    let mut req = request(&[&api], Color::Blue);
    req.hosts = vec!["*.example.test".into()];
    req.path_prefix = Some("/api/".into());
    let err = h.proxy.deploy("other", req).await.unwrap_err();
    assert!(matches!(err, DeployError::Invalid(_)), "{err:?}");

    let mut events = h.proxy.subscribe();
    h.proxy.remove("api").unwrap();
    assert_eq!(
        client::get(h.addr, "x.example.test", "/api")
            .await
            .unwrap()
            .1,
        "web"
    );
    next_event(
        &mut events,
        |e| matches!(e, Event::Drained { service, .. } if service == "api"),
    )
    .await;
    assert!(matches!(
        h.proxy.remove("api"),
        Err(DeployError::UnknownService(_))
    ));
    assert_eq!(h.proxy.state().services.len(), 1);
}

#[tokio::test]
async fn metrics_count_requests_by_service_class_and_color() {
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;
    for _ in 0..3 {
        h.get("/").await;
    }
    client::get(h.addr, "nobody.test", "/").await.unwrap();
    let text = h.proxy.render_metrics();
    assert!(
        text.contains("cutover_requests_total{service=\"app\",class=\"2xx\",color=\"blue\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("cutover_requests_total{service=\"\",class=\"4xx\",color=\"\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("cutover_request_duration_seconds_count{service=\"app\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "cutover_target_healthy{{service=\"app\",target=\"{}\",color=\"blue\"}} 1\n",
            blue.target()
        )),
        "{text}"
    );
}

#[tokio::test]
async fn restore_serves_without_gate_and_probes_to_healthy() {
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;
    let state = h.proxy.state();

    let h2 = Harness::start().await;
    let mut events = h2.proxy.subscribe();
    h2.proxy.restore(state).unwrap();
    assert_eq!(h2.get("/").await, (StatusCode::OK, "blue".to_string()));
    next_event(&mut events, |e| {
        matches!(
            e,
            Event::HealthChanged {
                health: Health::Healthy,
                ..
            }
        )
    })
    .await;
    assert_eq!(
        h2.proxy.status()[0].active.targets[0].health,
        Health::Healthy
    );
}

/// The rule for restored targets (docs/architecture.md, "Health"): a set
/// routes to its healthy targets, and while none is healthy it fails open.
#[tokio::test]
async fn a_restored_set_with_no_healthy_target_fails_open() {
    let sick = Origin::start("sick").await.unwrap();
    let well = Origin::start("well").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&sick, &well], Color::Blue).await;
    let state = h.proxy.state();
    sick.set_healthy(false);

    // A set whose only target fails its probe still serves: a 503 for all
    // would be worse than trying it, and a dead one fails fast on connect.
    let mut only_sick = state.clone();
    only_sick.services[0].request.targets = vec![sick.target()];
    let h1 = Harness::start().await;
    let mut events = h1.proxy.subscribe();
    h1.proxy.restore(only_sick).unwrap();
    next_event(&mut events, |e| {
        matches!(
            e,
            Event::HealthChanged {
                health: Health::Unhealthy,
                ..
            }
        )
    })
    .await;
    assert_eq!(h1.get("/").await, (StatusCode::OK, "sick".to_string()));

    // With a healthy target beside it, the unhealthy one leaves rotation
    // once the first probes are in.
    let h2 = Harness::start().await;
    let mut events = h2.proxy.subscribe();
    h2.proxy.restore(state).unwrap();
    let mut probed = std::collections::BTreeSet::new();
    while probed.len() < 2 {
        if let Event::HealthChanged { addr, .. } =
            next_event(&mut events, |e| matches!(e, Event::HealthChanged { .. })).await
        {
            probed.insert(addr);
        }
    }
    for _ in 0..10 {
        assert_eq!(h2.get("/").await.1, "well");
    }
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests() {
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;
    let addr = h.addr;
    let slow = tokio::spawn(async move { client::get(addr, HOST, "/slow?ms=300").await.unwrap() });
    wait_until("the slow request to reach blue", || blue.in_flight() == 1).await;
    h.shutdown.cancel();
    assert_eq!(slow.await.unwrap(), (StatusCode::OK, "blue".to_string()));
    h.served.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn slow_client_head_is_dropped_and_slow_upstream_is_504() {
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::with_config(ProxyConfig {
        client_header_timeout: Duration::from_millis(200),
        response_header_timeout: Duration::from_millis(200),
        ..ProxyConfig::default()
    })
    .await;
    h.deploy(&[&blue], Color::Blue).await;

    // Slowloris: a head that never ends must not hold the connection.
    let answer = raw(
        h.addr,
        b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Slow: 1",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert!(
        answer.is_empty() || raw_status(&answer) == Some(408),
        "expected the connection to be closed: {answer}"
    );

    let (status, body) = h.get("/slow?ms=3000").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(body.contains("504"), "{body}");
    assert_eq!(h.get("/").await, (StatusCode::OK, "blue".to_string()));
}

#[tokio::test]
async fn websockets_get_1012_on_shutdown() {
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;
    let mut ws = ws_connect(h.addr).await;
    assert_eq!(next_text(&mut ws).await, "blue");
    h.shutdown.cancel();
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => {
                    // Answer the close like a browser does, so the relay
                    // can finish without waiting out its grace period.
                    while let Some(Ok(_)) = ws.next().await {}
                    return frame.map(|f| u16::from(f.code));
                }
                Some(Ok(_)) => continue,
                other => panic!("connection ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("close frame within 5s");
    assert_eq!(close, Some(1012));
    h.served.await.unwrap().unwrap();
}

#[tokio::test]
async fn empty_bodies_reuse_the_upstream_connection() {
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::start().await;
    let mut req = request(&[&blue], Color::Blue);
    req.health.interval = Duration::from_secs(3600);
    h.proxy.deploy("app", req).await.unwrap();
    let probes = blue.connections();
    let mut s = client::http1(h.addr).await.unwrap();
    for _ in 0..5 {
        let resp = s
            .send_request(
                http::Request::head("/")
                    .header(http::header::HOST, HOST)
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.into_body().collect().await.unwrap();
        s.ready().await.unwrap();
    }
    let (_, body) = client::get1(&mut s, HOST, "/").await.unwrap();
    assert_eq!(body, "blue");
    // Six requests on one client connection, one upstream connection.
    assert_eq!(blue.connections() - probes, 1);
}

/// Collects the fields of `cutover::access` events on the current thread.
mod capture {
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// The (name, value) fields of one event.
    pub type Line = Vec<(String, String)>;

    #[derive(Clone, Default)]
    pub struct Lines(pub Arc<Mutex<Vec<Line>>>);

    struct Fields(Vec<(String, String)>);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0
                .push((field.name().to_string(), format!("{value:?}")));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.push((field.name().to_string(), value.to_string()));
        }
    }

    impl Subscriber for Lines {
        // "Sometimes", never "never": a scoped subscriber's interest must not
        // be cached against a callsite that other tests' threads (with no
        // subscriber) registered first; `enabled` decides per event.
        fn register_callsite(
            &self,
            _: &'static Metadata<'static>,
        ) -> tracing::subscriber::Interest {
            tracing::subscriber::Interest::sometimes()
        }
        fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
            Some(tracing::level_filters::LevelFilter::TRACE)
        }
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            metadata.target() == "cutover::access"
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut f = Fields(Vec::new());
            event.record(&mut f);
            self.0.lock().unwrap().push(f.0);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

#[tokio::test(flavor = "current_thread")]
async fn access_log_line_has_the_request_fields() {
    let lines = capture::Lines::default();
    let _guard = tracing::subscriber::set_default(lines.clone());
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;
    let raw_req = format!(
        "GET /headers?x=1 HTTP/1.1\r\nHost: {HOST}\r\nX-Request-Id: rid-42\r\nConnection: close\r\n\r\n"
    );
    // Bounded retries: what is under test is the line's fields. A scoped
    // test subscriber can miss the first events while tracing rebuilds its
    // interest cache for other tests' threads; the daemon's global
    // subscriber has no such window.
    for _ in 0..10 {
        let answer = raw(h.addr, raw_req.as_bytes(), Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(raw_status(&answer), Some(200));
        client::get(h.addr, "nobody.test", "/").await.unwrap();
        if !lines.0.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let lines = lines.0.lock().unwrap().clone();
    let find = |id: &str| {
        lines
            .iter()
            .find(|l| l.iter().any(|(k, v)| k == "request_id" && v == id))
            .cloned()
            .unwrap_or_else(|| panic!("no access line for {id}: {lines:?}"))
    };
    let line = find("rid-42");
    let get = |k: &str| line.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("service").as_deref(), Some("app"));
    assert_eq!(get("upstream"), Some(blue.target()));
    assert_eq!(get("color").as_deref(), Some("blue"));
    assert_eq!(get("status").as_deref(), Some("200"));
    assert_eq!(get("method").as_deref(), Some("GET"));
    assert_eq!(get("path").as_deref(), Some("/headers?x=1"));
    assert!(get("bytes").unwrap().parse::<u64>().unwrap() > 0);
    assert!(get("duration_us").is_some());
    assert!(
        lines
            .iter()
            .any(|l| l.iter().any(|(k, v)| k == "status" && v == "404")),
        "the 404 is logged too: {lines:?}"
    );
}

#[tokio::test]
async fn color_alternates_when_the_request_names_none() {
    let one = Origin::start("one").await.unwrap();
    let two = Origin::start("two").await.unwrap();
    let h = Harness::start().await;
    let mut req = request(&[&one], Color::Blue);
    req.color = None;
    let status = h.proxy.deploy("app", req.clone()).await.unwrap();
    assert_eq!(status.active.color, Color::Blue);
    req.targets = vec![two.target()];
    let status = h.proxy.deploy("app", req.clone()).await.unwrap();
    assert_eq!(status.active.color, Color::Green);
    assert_eq!(status.draining.len(), 1);
    assert_eq!(status.draining[0].color, Color::Blue);
    let status = h.proxy.deploy("app", req).await.unwrap();
    assert_eq!(status.active.color, Color::Blue);
    assert_eq!(h.get("/").await.1, "two");
}

/// The host cutover routes on is the host the origin receives: a request
/// that names none, or two, is refused before any origin sees it, and an
/// absolute-form URI's authority wins over a Host header that disagrees.
#[tokio::test]
async fn the_routed_host_is_the_host_the_origin_gets() {
    let blue = Origin::start("blue").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;
    let wait = Duration::from_secs(2);
    let before = blue.requests();
    for (what, request, status) in [
        (
            "two Host headers",
            "GET / HTTP/1.1\r\nHost: app.test\r\nHost: other.test\r\nConnection: close\r\n\r\n",
            400,
        ),
        (
            "HTTP/1.1 without Host",
            "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
            400,
        ),
        ("HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 400),
        (
            "CONNECT",
            "CONNECT app.test:443 HTTP/1.1\r\nHost: app.test:443\r\n\r\n",
            405,
        ),
    ] {
        let answer = raw(h.addr, request.as_bytes(), wait).await.unwrap();
        assert_eq!(raw_status(&answer), Some(status), "{what}: {answer}");
    }
    assert_eq!(blue.requests(), before, "no origin saw any of them");

    let answer = raw(
        h.addr,
        b"GET http://app.test/headers HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
        wait,
    )
    .await
    .unwrap();
    assert_eq!(raw_status(&answer), Some(200), "{answer}");
    assert!(answer.contains("host: app.test\n"), "{answer}");
    assert!(!answer.contains("other.test"), "{answer}");

    // The health endpoint needs no host: load balancers probe it bare.
    let answer = raw(h.addr, b"GET /_cutover/health HTTP/1.0\r\n\r\n", wait)
        .await
        .unwrap();
    assert_eq!(raw_status(&answer), Some(200), "{answer}");
}
