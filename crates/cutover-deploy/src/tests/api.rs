//! The deploy engine's HTTP routes.

use super::*;

pub(super) async fn serve_api(engine: DeployEngine) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, crate::router(engine)).await });
    addr
}

pub(super) async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: cutover\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer =
        cutover_test::client::raw(addr, req.as_bytes(), std::time::Duration::from_secs(10))
            .await
            .unwrap();
    let status = cutover_test::client::raw_status(&answer).unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn api_streams_a_deploy_as_ndjson_and_names_bad_fields() {
    let h = Harness::new().await;
    let addr = serve_api(h.engine.clone()).await;
    let body = serde_json::to_string(&cmd(compose("hello", 2))).unwrap();

    let (status, text) = http(addr, "POST", "/v1/projects/athens/deploy", &body).await;
    assert_eq!(status, 200, "{text}");
    let events: Vec<ProgressEvent> = text
        .lines()
        // Chunked encoding: keep the JSON lines only.
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(outcome(&events).0, Outcome::Ok, "{text}");

    let bad = body.replace("\"force\":false", "\"force\":\"yes\"");
    let (status, text) = http(addr, "POST", "/v1/projects/athens/deploy", &bad).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("\"error\":\"force: invalid type"), "{text}");

    let (status, text) = http(addr, "POST", "/v1/projects/other/deploy", &body).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("project.name"), "{text}");

    let (status, text) = http(addr, "GET", "/v1/projects/athens/status", "").await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"route\":\"athens/web\""), "{text}");

    let (status, text) = http(addr, "POST", "/v1/projects/athens/plan", &body).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("app_up_to_date"), "{text}");

    let (status, text) = http(addr, "GET", "/v1/projects/athens/history?service=web", "").await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"operation\":\"deploy\""), "{text}");

    let (status, text) = http(addr, "GET", "/v1/projects/athens/logs?tail=x", "").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("tail"), "{text}");

    let (status, text) = http(
        addr,
        "POST",
        "/v1/projects/athens/down",
        "{\"volume\":true}",
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("volume"), "{text}");
}
