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

#[tokio::test]
async fn a_call_through_the_gateway_reaches_the_live_color_whatever_its_host() {
    let stop = CancellationToken::new();
    let (proxy, edge_at) = edge(&stop).await;
    let gw = gateway("shop/api", edge_at, &stop).await;
    let (blue, green) = (
        Origin::start("blue").await.unwrap(),
        Origin::start("green").await.unwrap(),
    );
    // The route answers to app.test only; the calls name `api:8080`.
    proxy
        .deploy("shop/api", request(&[&blue], Color::Blue))
        .await
        .unwrap();
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
    use tokio::io::AsyncBufReadExt;
    let stop = CancellationToken::new();
    let (proxy, edge_at) = edge(&stop).await;
    let gw = gateway("shop/api", edge_at, &stop).await;
    let (blue, green) = (
        Origin::start("blue").await.unwrap(),
        Origin::start("green").await.unwrap(),
    );
    proxy
        .deploy("shop/api", request(&[&blue], Color::Blue))
        .await
        .unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ws_clients.py");
    let per_library = 2;
    // Debian's python3, with python3-aiohttp and python3-websockets.
    let mut child = tokio::process::Command::new("/usr/bin/python3")
        .arg(script)
        .arg(gw.to_string())
        .arg("api")
        .arg(per_library.to_string())
        .arg("30")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("/usr/bin/python3 runs (scripts/deps.sh installs it with aiohttp and websockets)");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
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
