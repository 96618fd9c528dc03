//! An in-process origin: the stand-in for an app container in tests and
//! benchmarks. Each one answers with its name so a test can tell which color
//! served a request.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{header, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

type Body = BoxBody<Bytes, Infallible>;

/// Shared, switchable behaviour of one origin.
#[derive(Debug)]
pub struct OriginState {
    pub name: String,
    healthy: AtomicBool,
    requests: AtomicU64,
    probes: AtomicU64,
    /// Requests whose response head is not ready yet.
    in_flight: AtomicU64,
    connections: AtomicU64,
    /// Close codes the origin received from WebSocket peers, in order.
    ws_close_codes: Mutex<Vec<u16>>,
}

impl OriginState {
    pub fn new(name: &str) -> Arc<Self> {
        Arc::new(OriginState {
            name: name.to_string(),
            healthy: AtomicBool::new(true),
            requests: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            ws_close_codes: Mutex::new(Vec::new()),
        })
    }
}

/// A running origin on 127.0.0.1; stops when dropped.
pub struct Origin {
    addr: SocketAddr,
    state: Arc<OriginState>,
    shutdown: CancellationToken,
}

impl Origin {
    /// Binds 127.0.0.1:0 and serves in the background.
    pub async fn start(name: &str) -> io::Result<Origin> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Ok(Self::start_on(listener, name))
    }

    pub fn start_on(listener: TcpListener, name: &str) -> Origin {
        let addr = listener
            .local_addr()
            .expect("bound listener has an address");
        let state = OriginState::new(name);
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(listener, state.clone(), shutdown.clone()));
        Origin {
            addr,
            state,
            shutdown,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `addr:port` as a deploy request names a target.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// Makes `/up` answer 503 (false) or 200 (true).
    pub fn set_healthy(&self, healthy: bool) {
        self.state.healthy.store(healthy, Ordering::SeqCst);
    }

    /// Requests received so far, health probes (`/up`) not counted.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Health probes (`/up`) received so far.
    pub fn probes(&self) -> u64 {
        self.state.probes.load(Ordering::SeqCst)
    }

    /// Requests being handled whose response head is not sent yet (e.g. a
    /// `/slow` one still sleeping).
    pub fn in_flight(&self) -> u64 {
        self.state.in_flight.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Close codes received from WebSocket clients (the proxy, in tests).
    pub fn ws_close_codes(&self) -> Vec<u16> {
        self.state.ws_close_codes.lock().unwrap().clone()
    }

    /// Stops accepting and closes connections, like a killed container.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Serves the origin on `listener` until `shutdown` fires; open connections
/// are dropped at that point.
pub async fn serve(listener: TcpListener, state: Arc<OriginState>, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            // Out of descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        state.connections.fetch_add(1, Ordering::SeqCst);
        let state = state.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let svc = service_fn(move |req| handle(state.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            tokio::select! {
                _ = conn => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
    drop(listener);
    tracker.close();
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Full::new(body.into()).boxed())
        .expect("static response parts are valid")
}

fn query_u64(req: &Request<Incoming>, key: &str) -> Option<u64> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.parse().ok()).flatten()
    })
}

struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    state: Arc<OriginState>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if req.uri().path() == "/up" {
        state.probes.fetch_add(1, Ordering::SeqCst);
    } else {
        state.requests.fetch_add(1, Ordering::SeqCst);
    }
    state.in_flight.fetch_add(1, Ordering::SeqCst);
    let _in_flight = InFlight(&state.in_flight);
    let resp = match req.uri().path() {
        "/up" => {
            if state.healthy.load(Ordering::SeqCst) {
                text(StatusCode::OK, "up")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{} is failing its health check", state.name),
                )
            }
        }
        "/slow" => {
            let ms = query_u64(&req, "ms").unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            text(StatusCode::OK, state.name.clone())
        }
        "/sse" => sse(&state, query_u64(&req, "n").unwrap_or(20)),
        // Which container answered: Docker sets HOSTNAME to its short id,
        // so replicas with one env tell themselves apart.
        "/whoami" => text(
            StatusCode::OK,
            std::env::var("HOSTNAME").unwrap_or_else(|_| state.name.clone()),
        ),
        "/headers" => {
            let mut out = String::new();
            for (k, v) in req.headers() {
                out.push_str(k.as_str());
                out.push_str(": ");
                out.push_str(&String::from_utf8_lossy(v.as_bytes()));
                out.push('\n');
            }
            text(StatusCode::OK, out)
        }
        "/echo" => {
            // Echoes the request body back, for body-streaming tests.
            let body = req
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            text(StatusCode::OK, body)
        }
        "/ws" => {
            // `?delay_ms=N` holds the handshake's answer, for shutdown tests.
            if let Some(ms) = query_u64(&req, "delay_ms") {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            websocket(&state, &mut req)
        }
        // The request target as the origin got it, for path-rewrite tests.
        p if p.contains("echo-uri") => {
            text(StatusCode::OK, format!("{} {}", state.name, req.uri()))
        }
        _ => text(StatusCode::OK, state.name.clone()),
    };
    Ok(resp)
}

fn sse(state: &Arc<OriginState>, count: u64) -> Response<Body> {
    let name = state.name.clone();
    let stream = futures_util::stream::unfold(0u64, move |i| {
        let name = name.clone();
        async move {
            if i >= count {
                return None;
            }
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let event = Bytes::from(format!("data: {name} {i}\n\n"));
            Some((Ok::<_, Infallible>(Frame::data(event)), i + 1))
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("static response parts are valid")
}

fn websocket(state: &Arc<OriginState>, req: &mut Request<Incoming>) -> Response<Body> {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return text(StatusCode::BAD_REQUEST, "expected a WebSocket upgrade");
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(req);
    let state = state.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        if ws.send(Message::text(state.name.clone())).await.is_err() {
            return;
        }
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_text() || msg.is_binary() {
                if ws.send(msg).await.is_err() {
                    break;
                }
            } else if let Message::Close(frame) = msg {
                let code = frame.as_ref().map(|f| u16::from(f.code)).unwrap_or(1005);
                state.ws_close_codes.lock().unwrap().push(code);
                // tungstenite answers the close itself; drive it out.
                let _ = ws.close(None).await;
                break;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Full::new(Bytes::new()).boxed())
        .expect("static response parts are valid")
}
