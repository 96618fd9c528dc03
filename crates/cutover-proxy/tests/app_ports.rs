//! An app's own ports: the proxy listens on the address a compose file
//! publishes for the app, and serves it there alone, switched and drained
//! like every route.

use std::net::SocketAddr;

use cutover_core::service::Color;
use cutover_proxy::DeployError;
use cutover_test::client;
use cutover_test::Origin;
use http::StatusCode;

mod support;

use support::{request, wait_until, Harness};

/// A loopback address no one listens on right now.
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test]
async fn an_apps_port_serves_it_alone_and_follows_its_switch() {
    let h = Harness::start().await;
    let (blue, green) = (
        Origin::start("blue").await.unwrap(),
        Origin::start("green").await.unwrap(),
    );
    let port = free_addr();
    let mut req = request(&[&blue], Color::Blue);
    req.hosts.clear();
    req.listen = vec![port.to_string()];
    h.proxy.deploy("shop/web", req.clone()).await.unwrap();

    // Any Host on the app's port reaches it; the main listener does not
    // route a port-only app (it would take the catch-all).
    let (status, body) = client::get(port, "whatever.example", "/").await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "blue"));
    assert_eq!(
        client::get(h.addr, "whatever.example", "/")
            .await
            .unwrap()
            .0,
        StatusCode::NOT_FOUND
    );

    // A deploy switches the port like any route.
    let mut next = request(&[&green], Color::Green);
    next.hosts.clear();
    next.listen = req.listen.clone();
    h.proxy.deploy("shop/web", next).await.unwrap();
    assert_eq!(client::get(port, "x", "/").await.unwrap().1, "green");

    // Another service cannot take the port; nothing of it switches.
    let mut other = request(&[&blue], Color::Blue);
    other.hosts = vec!["admin.test".into()];
    other.listen = req.listen.clone();
    match h.proxy.deploy("shop/admin", other).await {
        Err(DeployError::Invalid(r)) => {
            assert!(
                r.message.contains("is already the port of shop/web"),
                "{r:?}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(h.proxy.status().iter().all(|s| s.name != "shop/admin"));

    // Removing the app closes its port.
    h.proxy.remove("shop/web").unwrap();
    wait_until("the port to close", || {
        std::net::TcpStream::connect(port).is_err()
    })
    .await;
}

#[tokio::test]
async fn a_port_another_program_holds_fails_the_deploy_before_the_switch() {
    let h = Harness::start().await;
    let (blue, green) = (
        Origin::start("blue").await.unwrap(),
        Origin::start("green").await.unwrap(),
    );
    h.deploy(&[&blue], Color::Blue).await;
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut req = request(&[&green], Color::Green);
    req.listen = vec![held.local_addr().unwrap().to_string()];
    match h.proxy.deploy("app", req).await {
        Err(DeployError::Invalid(r)) => {
            assert!(
                r.message.starts_with("cannot listen on 127.0.0.1:"),
                "{r:?}"
            );
            assert!(
                r.hint
                    .as_deref()
                    .unwrap_or_default()
                    .contains("another program holds the port"),
                "{r:?}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(h.get("/").await.1, "blue");
}
