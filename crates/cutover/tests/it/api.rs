use cutover_test::Origin;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::UnixStream;

use crate::util::{free_port, get_until_ok, tcp_request, Daemon, PATIENCE};

async fn bad_request(daemon: &Daemon, body: &str) -> Value {
    let (status, answer) = daemon
        .request(Method::PUT, "/v1/services/web", Some(body))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
    answer
}

#[tokio::test]
async fn bad_bodies_are_400_and_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;

    let answer = bad_request(
        &daemon,
        r#"{"targets": ["127.0.0.1:80"], "colour": "blue"}"#,
    )
    .await;
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("colour: unknown field `colour`"),
        "{answer}"
    );
    assert_eq!(answer["detail"], "line 1, column 38");

    let answer = bad_request(&daemon, r#"{"targets": ["127.0.0.1:80", "nope"]}"#).await;
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("targets[1]: invalid socket address \"nope\""),
        "{answer}"
    );
    assert!(
        answer["hint"].as_str().unwrap().contains("host:port"),
        "{answer}"
    );

    let answer = bad_request(
        &daemon,
        r#"{"targets": ["127.0.0.1:80"], "timeouts": {"drain": "soon"}}"#,
    )
    .await;
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("timeouts.drain: "),
        "{answer}"
    );

    let answer = bad_request(&daemon, "{\"targets\": [\"127.0.0.1:80\"\n").await;
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("targets: EOF while parsing a list"),
        "{answer}"
    );
    assert_eq!(answer["detail"], "line 2, column 0");

    let answer = bad_request(&daemon, "").await;
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("request body: EOF"),
        "{answer}"
    );

    let (status, answer) = daemon
        .request(
            Method::PUT,
            "/v1/services/no%20spaces",
            Some(r#"{"targets":["127.0.0.1:80"]}"#),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("invalid service name"),
        "{answer}"
    );

    // Nothing was deployed by any of it.
    let (status, answer) = daemon.request(Method::GET, "/v1/services", None).await;
    assert_eq!((status, answer), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn deploy_routes_traffic_and_remove_stops_it() {
    let origin = Origin::start("blue-1").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;

    let (status, health) = daemon.request(Method::GET, "/v1/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));

    let answer = daemon.deploy("web", &[origin.target()]).await;
    assert_eq!(answer["name"], "web");
    assert_eq!(answer["active"]["targets"][0]["addr"], origin.target());

    let (status, body) = tcp_request(
        daemon.listen,
        Method::GET,
        "/hello",
        &[("host", "example.com")],
    )
    .await
    .unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"blue-1"[..]));

    let (status, one) = daemon.request(Method::GET, "/v1/services/web", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["name"], "web");
    let (_, all) = daemon.request(Method::GET, "/v1/services", None).await;
    assert_eq!(all.as_array().unwrap().len(), 1);

    let (status, answer) = daemon.request(Method::GET, "/v1/services/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["error"], "no service named \"nope\"");

    let (status, _) = daemon
        .request(Method::DELETE, "/v1/services/web", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = daemon.request(Method::GET, "/v1/services/web", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = daemon
        .request(Method::DELETE, "/v1/services/web", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let served = origin.requests();
    let (status, _) = tcp_request(daemon.listen, Method::GET, "/hello", &[])
        .await
        .unwrap();
    assert_ne!(status, StatusCode::OK);
    assert_eq!(
        origin.requests(),
        served,
        "a removed service gets no traffic"
    );
}

#[tokio::test]
async fn unhealthy_targets_are_422_and_change_nothing() {
    let good = Origin::start("blue").await.unwrap();
    let bad = Origin::start("green").await.unwrap();
    bad.set_healthy(false);
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;
    daemon.deploy("web", &[good.target()]).await;

    let body = json!({"targets": [bad.target()], "timeouts": {"deploy": "1s"}, "health": {"interval": "100ms"}});
    let (status, answer) = daemon
        .request(Method::PUT, "/v1/services/web", Some(&body.to_string()))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("did not become healthy within 1s"),
        "{answer}"
    );
    assert!(
        answer["detail"].as_str().unwrap().contains(&bad.target()),
        "{answer}"
    );

    let (status, body) = tcp_request(daemon.listen, Method::GET, "/", &[])
        .await
        .unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"blue"[..]));
}

/// The NDJSON event stream as read so far; nothing read is thrown away, so
/// events that arrive together are all seen.
struct Events {
    body: hyper::body::Incoming,
    buf: Vec<u8>,
    seen: Vec<Value>,
}

impl Events {
    /// The first event (of all read so far, or still to come) that matches.
    async fn find(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        loop {
            while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                self.seen.push(serde_json::from_slice(&line).unwrap());
            }
            if let Some(found) = self.seen.iter().find(|e| matches(e)) {
                return found.clone();
            }
            let frame = tokio::time::timeout(PATIENCE, self.body.frame())
                .await
                .unwrap_or_else(|_| panic!("no {what} event; got {:?}", self.seen))
                .expect("the stream goes on")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }
}

#[tokio::test]
async fn events_stream_and_drain_long_poll() {
    let blue = Origin::start("blue").await.unwrap();
    let green = Origin::start("green").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;

    let stream = UnixStream::connect(&daemon.socket).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/v1/events?service=web")
        .header("host", "cutover")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let mut events = Events {
        body: response.into_body(),
        buf: Vec::new(),
        seen: Vec::new(),
    };

    let first = daemon.deploy("web", &[blue.target()]).await;
    let blue_set = first["active"]["id"].as_u64().unwrap();
    let switched = events.find("switched", |e| e["event"] == "switched").await;
    assert_eq!(switched["service"], "web");
    assert_eq!(switched["set_id"], blue_set);

    // The active set is not drained: the long poll times out saying so.
    let (status, answer) = daemon
        .request(
            Method::GET,
            &format!("/v1/services/web/sets/{blue_set}/drained?timeout=100ms"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (answer["drained"].clone(), answer["state"].clone()),
        (json!(false), json!("active"))
    );

    daemon.deploy("web", &[green.target()]).await;
    let switched = events
        .find("second switched", |e| {
            e["event"] == "switched" && e["set_id"] != blue_set
        })
        .await;
    assert_eq!(switched["previous"], blue_set);
    let (status, answer) = daemon
        .request(
            Method::GET,
            &format!("/v1/services/web/sets/{blue_set}/drained?timeout=10s"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["drained"], true, "{answer}");
    events
        .find("drained", |e| {
            e["event"] == "drained" && e["set_id"] == blue_set
        })
        .await;

    let (status, answer) = daemon
        .request(
            Method::GET,
            "/v1/services/web/sets/1/drained?timeout=forever",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("timeout: invalid duration"),
        "{answer}"
    );
}

#[tokio::test]
async fn metrics_on_the_socket_and_on_metrics_listen() {
    let origin = Origin::start("blue").await.unwrap();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path())
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{port}"))
        .start()
        .await;
    daemon.deploy("web", &[origin.target()]).await;
    get_until_ok(daemon.listen, "/").await;

    let (status, text) = daemon.request(Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_string();
    assert!(
        text.contains("# TYPE cutover_requests_total counter"),
        "{text}"
    );
    assert!(text.contains("service=\"web\""), "{text}");

    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let body = get_until_ok(addr, "/metrics").await;
    assert!(
        body.contains("# TYPE cutover_requests_total counter"),
        "{body}"
    );
    // The metrics listener does not expose the control routes.
    let (status, _) = tcp_request(addr, Method::GET, "/v1/services", &[])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// One wire contract: one name rule for every service route, one JSON
/// reader (trailing data refused) and one error shape for the proxy's and
/// the deploy engine's routes alike.
#[tokio::test]
async fn every_route_reads_and_answers_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::in_dir(dir.path()).start().await;

    for method in [Method::GET, Method::DELETE] {
        let (status, answer) = daemon
            .request(method.clone(), "/v1/services/no%20spaces", None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {answer}");
        assert!(answer["error"]
            .as_str()
            .unwrap()
            .contains("invalid service name"));
        // A compose app's route is a valid name; none is deployed here.
        let (status, answer) = daemon
            .request(method.clone(), "/v1/services/athens%2Fbackend", None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {answer}");
        assert!(
            answer.get("detail").is_none(),
            "empty fields are left out: {answer}"
        );
    }
    let (status, answer) = daemon
        .request(
            Method::PUT,
            "/v1/services/athens%2Fbackend",
            Some(r#"{"targets":["127.0.0.1:80"]}"#),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["hint"].as_str().unwrap().contains("cutover deploy"),
        "{answer}"
    );

    let (status, answer) = daemon
        .request(
            Method::POST,
            "/v1/projects/cvit-wire/down",
            Some(r#"{"volumes":true} junk"#),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("trailing"),
        "{answer}"
    );
    assert_eq!(answer["detail"], "line 1, column 18", "{answer}");
}
