//! What the data-plane tests share: a proxy on 127.0.0.1 with a listener
//! of its own, and deploy requests with fast probes.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cutover_core::service::{Color, DeployRequest, HealthCheck, Timeouts};
use cutover_core::status::Event;
use cutover_proxy::{Proxy, ProxyConfig};
use cutover_test::client;
use cutover_test::Origin;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub const HOST: &str = "app.test";

pub struct Harness {
    pub proxy: Proxy,
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::with_config(ProxyConfig::default()).await
    }

    pub async fn with_config(config: ProxyConfig) -> Harness {
        let proxy = Proxy::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let served = tokio::spawn({
            let proxy = proxy.clone();
            let shutdown = shutdown.clone();
            async move { proxy.serve(listener, shutdown).await }
        });
        Harness {
            proxy,
            addr,
            shutdown,
            served,
        }
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        client::get(self.addr, HOST, path).await.unwrap()
    }

    pub async fn deploy(&self, targets: &[&Origin], color: Color) {
        self.proxy
            .deploy("app", request(targets, color))
            .await
            .unwrap();
    }
}

/// One GET with extra headers: status, body and the `Set-Cookie` values.
pub async fn get_with(
    h: &Harness,
    host: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, String, Vec<String>) {
    let mut sender = client::http1(h.addr).await.unwrap();
    let mut req = Request::get("/").header(header::HOST, host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let cookies = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned(), cookies)
}

/// A deploy request with fast probes, as tests want them.
pub fn request(targets: &[&Origin], color: Color) -> DeployRequest {
    DeployRequest {
        targets: targets.iter().map(|o| o.target()).collect(),
        hosts: vec![HOST.into()],
        path_prefix: None,
        color: Some(color),
        version: Some(format!("v-{color}")),
        // Generous probe and deploy deadlines: they only bound a failure,
        // and a busy CI machine (both cores compiling) can stall a probe for
        // seconds. Tests of the deadlines themselves set short ones.
        health: HealthCheck {
            interval: Duration::from_millis(50),
            timeout: Duration::from_secs(10),
            ..HealthCheck::default()
        },
        timeouts: Timeouts {
            deploy: Duration::from_secs(30),
            drain: Duration::from_secs(10),
            websocket_drain: Duration::from_secs(10),
        },
        listen: Vec::new(),
        in_network: Vec::new(),
        tls: None,
    }
}

pub async fn next_event(
    rx: &mut broadcast::Receiver<Event>,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let ev = rx.recv().await.expect("event stream open");
            if pred(&ev) {
                return ev;
            }
        }
    })
    .await
    .expect("expected event did not arrive within 10s")
}

pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// `tests/ws_clients.py` against `at` (`[IP:]PORT`) with Host `host`:
/// `per_library` clients of aiohttp and of websockets, for at most 30 s;
/// the script and its lines.
pub fn ws_clients(
    at: &str,
    host: &str,
    per_library: usize,
) -> (
    tokio::process::Child,
    tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) {
    use tokio::io::AsyncBufReadExt;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ws_clients.py");
    // Debian's python3, where scripts/deps.sh installs python3-aiohttp and
    // python3-websockets (a pyenv python3 earlier on PATH would lack them).
    let mut child = tokio::process::Command::new("/usr/bin/python3")
        .arg(script)
        .arg(at)
        .arg(host)
        .arg(per_library.to_string())
        .arg("30")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("/usr/bin/python3 runs (scripts/deps.sh installs it with aiohttp and websockets)");
    let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// The next line `tests/ws_clients.py` prints, within 30 s.
pub async fn ws_clients_line(
    lines: &mut tokio::io::Lines<impl tokio::io::AsyncBufRead + Unpin>,
) -> String {
    tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the clients report within 30 s")
        .unwrap()
        .expect("the client script ended early; run it by hand to see why")
}
