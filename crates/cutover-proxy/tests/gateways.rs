//! Calls to an app by name on a Swarm: an app's gateway relays each
//! connection to an edge with a PROXY v2 header naming the route; the
//! edge serves it pinned to that route, whatever its Host, switched like
//! every route. Both ends run here on loopback, with curl as the caller.

use std::net::SocketAddr;
use std::time::Duration;

use cutover_core::service::Color;
use cutover_proxy::gateway::{relay, RelaySettings};
use cutover_proxy::{Proxy, ProxyConfig};
use cutover_test::Origin;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod support;

use support::request;

/// An edge that serves gateways on a listener of its own (as `cutover
/// serve --gateway-listen` does): the proxy, and that listener's address.
async fn edge(stop: &CancellationToken) -> (Proxy, SocketAddr) {
    let proxy = Proxy::new(ProxyConfig::default());
    let gateways = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = gateways.local_addr().unwrap();
    proxy.serve_gateways(gateways).unwrap();
    let data = TcpListener::bind("127.0.0.1:0").await.unwrap();
    tokio::spawn({
        let (proxy, stop) = (proxy.clone(), stop.clone());
        async move { proxy.serve(data, stop).await }
    });
    (proxy, at)
}

/// A gateway for `route` in front of the edge at `edge`; its address.
async fn gateway(route: &str, edge: SocketAddr, stop: &CancellationToken) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = RelaySettings {
        route: route.to_string(),
        edges: edge.to_string(),
        connect_timeout: Duration::from_secs(2),
        grace: Duration::from_secs(1),
    };
    tokio::spawn(relay(listener, settings, stop.clone()));
    addr
}

/// curl with `api:8080` resolved to `at`; its stdout, or its stderr.
async fn curl(at: SocketAddr, args: &[&str]) -> Result<String, String> {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--connect-to"])
        .arg(format!("api:8080:{}:{}", at.ip(), at.port()))
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("curl is needed: {e}"));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

const URL: &str = "http://api:8080/";

/// An edge serving `shop/api` on blue, a gateway in front of it, and the
/// green origin for a switch.
struct BehindAGateway {
    proxy: Proxy,
    /// The edge's gateways' listener.
    edge_at: SocketAddr,
    gw: SocketAddr,
    _blue: Origin,
    green: Origin,
}

async fn blue_behind_a_gateway(stop: &CancellationToken) -> BehindAGateway {
    let (proxy, edge_at) = edge(stop).await;
    let gw = gateway("shop/api", edge_at, stop).await;
    let blue = Origin::start("blue").await.unwrap();
    // The route answers to app.test only; the calls name `api:8080`.
    proxy
        .deploy("shop/api", request(&[&blue], Color::Blue))
        .await
        .unwrap();
    BehindAGateway {
        proxy,
        edge_at,
        gw,
        _blue: blue,
        green: Origin::start("green").await.unwrap(),
    }
}

#[tokio::test]
async fn a_call_through_the_gateway_reaches_the_live_color_whatever_its_host() {
    let stop = CancellationToken::new();
    let BehindAGateway {
        proxy,
        edge_at,
        gw,
        green,
        _blue,
    } = blue_behind_a_gateway(&stop).await;
    assert_eq!(curl(gw, &[URL]).await.unwrap(), "blue");

    // The caller's address is the one the gateway saw (here loopback
    // too), and the Host is the caller's.
    let headers = curl(gw, &["http://api:8080/headers"]).await.unwrap();
    assert!(headers.contains("x-forwarded-for: 127.0.0.1"), "{headers}");
    assert!(headers.contains("host: api:8080"), "{headers}");

    // h2c with prior knowledge passes as it came.
    let h2 = curl(gw, &["--http2-prior-knowledge", URL]).await.unwrap();
    assert_eq!(h2, "blue");

    // A switch moves the calls with it.
    proxy
        .deploy("shop/api", request(&[&green], Color::Green))
        .await
        .unwrap();
    assert_eq!(curl(gw, &[URL]).await.unwrap(), "green");

    // A gateway for a route the edge does not have gets the answer to
    // any request no route takes.
    let other = gateway("shop/nothing", edge_at, &stop).await;
    let code = curl(other, &["-o", "/dev/null", "-w", "%{http_code}", URL])
        .await
        .unwrap();
    assert_eq!(code, "404", "a route the edge does not have");

    // The edge's listener speaks only to gateways: a plain request is
    // closed unanswered.
    assert!(
        curl(edge_at, &[URL]).await.is_err(),
        "served without a header"
    );
    stop.cancel();
}

#[tokio::test]
async fn with_no_edge_answering_the_call_is_closed() {
    let stop = CancellationToken::new();
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = gateway("shop/api", nobody, &stop).await;
    let err = curl(gw, &[URL]).await.unwrap_err();
    assert!(
        err.contains("Empty reply") || err.contains("reset"),
        "{err}"
    );
    stop.cancel();
}

/// WebSockets through the gateway are the edge's like any: aiohttp and
/// websockets clients that keep sending get the 1012 at the drain
/// deadline of a switch, through the relay, not a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_through_the_gateway_end_with_1012_at_a_switch() {
    let stop = CancellationToken::new();
    let BehindAGateway {
        proxy,
        gw,
        green,
        _blue,
        ..
    } = blue_behind_a_gateway(&stop).await;

    let per_library = 2;
    let (mut child, mut lines) = support::ws_clients(&gw.to_string(), "api", per_library);
    for _ in 0..2 * per_library {
        let line = support::ws_clients_line(&mut lines).await;
        assert!(line.starts_with("connected "), "{line}");
    }
    let mut req = request(&[&green], Color::Green);
    req.timeouts.websocket_drain = Duration::from_secs(1);
    proxy.deploy("shop/api", req).await.unwrap();
    let mut results = Vec::new();
    for _ in 0..2 * per_library {
        results.push(support::ws_clients_line(&mut lines).await);
    }
    for line in &results {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["close"], 1012, "through the gateway: {results:#?}");
    }
    assert!(child.wait().await.unwrap().success());
    stop.cancel();
}
