use std::net::SocketAddr;

use hyper::{Method, StatusCode};

use crate::util::{cutover, free_port, run, tcp_request, Daemon};

const TOKEN: &str = "s3cr3t-token-for-the-tests-0123456789";

#[tokio::test]
async fn tcp_control_needs_the_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let port = free_port();
    let _daemon = Daemon::in_dir(dir.path())
        .arg("--control-listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--control-token-file")
        .arg(token_file.to_str().unwrap())
        .arg("--control-insecure-http")
        .start()
        .await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let (status, body) = tcp_request(addr, Method::GET, "/v1/services", &[])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&body).contains("missing bearer token"));

    let wrong = format!("Bearer {}x", &TOKEN[..TOKEN.len() - 1]);
    let (status, body) = tcp_request(
        addr,
        Method::GET,
        "/v1/services",
        &[("authorization", &wrong)],
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&body).contains("invalid bearer token"));

    let (status, _) = tcp_request(addr, Method::GET, "/v1/health", &[("authorization", TOKEN)])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the scheme is required");

    let right = format!("Bearer {TOKEN}");
    let (status, body) = tcp_request(
        addr,
        Method::GET,
        "/v1/services",
        &[("authorization", &right)],
    )
    .await
    .unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"[]"[..]));
}

#[test]
fn an_empty_token_file_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "\n").unwrap();
    let out = run(cutover()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--control-listen",
            "127.0.0.1:0",
            "--control-token-file",
        ])
        .arg(&token_file)
        .arg("--socket")
        .arg(dir.path().join("c.sock"))
        .arg("--state-dir")
        .arg(dir.path()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: the control token file {} is empty",
            token_file.display()
        )),
        "{stderr}"
    );
}
