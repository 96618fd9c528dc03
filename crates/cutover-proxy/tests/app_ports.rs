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

/// Containers reach an app by name at its network's gateway, at the app's
/// port: an address that may be covered by the main listener (bound on
/// every interface) or overlap another app's published port.
#[tokio::test]
async fn in_network_addresses_overlap_published_ports_and_the_main_listener() {
    // The main listener on every interface, as in production; only
    // loopback is dialled.
    let proxy = cutover_proxy::Proxy::new(Default::default());
    let main = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = main.local_addr().unwrap().port();
    proxy.main_listener(main.local_addr().unwrap());
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn({
        let (proxy, shutdown) = (proxy.clone(), shutdown.clone());
        async move { proxy.serve(main, shutdown).await }
    });
    let (web, admin, api) = (
        Origin::start("web").await.unwrap(),
        Origin::start("admin").await.unwrap(),
        Origin::start("api").await.unwrap(),
    );
    let at = |ip: &str, port: u16| -> SocketAddr { format!("{ip}:{port}").parse().unwrap() };

    // web answers in its network where the main listener already listens.
    let mut req = request(&[&web], Color::Blue);
    req.in_network = vec![at("127.0.0.1", port).to_string()];
    proxy.deploy("shop/web", req).await.unwrap();
    let mut req = request(&[&admin], Color::Blue);
    req.hosts = vec!["admin.test".into()];
    proxy.deploy("shop/admin", req).await.unwrap();
    // Whatever the Host, a connection to web's in-network address is web's;
    // the rest of the main listener routes by Host as before.
    let (_, body) = client::get(at("127.0.0.1", port), "admin.test", "/")
        .await
        .unwrap();
    assert_eq!(body, "web");
    let (_, body) = client::get(at("127.0.0.2", port), "admin.test", "/")
        .await
        .unwrap();
    assert_eq!(body, "admin");

    // Another project's app listens on `other` in its network; then web
    // publishes that port on every interface. Both hold it.
    let other = free_addr().port();
    let mut req = request(&[&api], Color::Blue);
    req.hosts = vec!["api.test".into()];
    req.in_network = vec![at("127.0.0.3", other).to_string()];
    proxy.deploy("crm/api", req).await.unwrap();
    let mut req = request(&[&web], Color::Green);
    req.in_network = vec![at("127.0.0.1", port).to_string()];
    req.listen = vec![at("0.0.0.0", other).to_string()];
    proxy.deploy("shop/web", req).await.unwrap();
    let (_, body) = client::get(at("127.0.0.3", other), "x", "/").await.unwrap();
    assert_eq!(body, "api");
    let (_, body) = client::get(at("127.0.0.4", other), "x", "/").await.unwrap();
    assert_eq!(body, "web");
    // web stays on the main listener by its hosts despite its own port.
    let (_, body) = client::get(at("127.0.0.2", port), support::HOST, "/")
        .await
        .unwrap();
    assert_eq!(body, "web");
    shutdown.cancel();
}
