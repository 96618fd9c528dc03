//! athens: the field report's backend, small enough to read in one sitting.
//!
//! It has the parts that made their blue/green deploys hard: state in Redis
//! shared by both colors (visits, OAuth `state`), a health check that depends
//! on Redis, and long-lived connections (a WebSocket, an SSE stream) that a
//! switch must drain rather than cut. On SIGTERM it stops accepting, lets
//! in-flight requests finish, closes WebSockets with 1001 (going away) and
//! ends SSE streams, so the old color leaves cleanly when cutover stops it.
#![forbid(unsafe_code)]

mod config;
mod store;

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::{SinkExt, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Config, ConfigError};
pub use store::{Store, StoreError, SCHEMA_VERSION};

pub const HEALTH_PATH: &str = "/api/v1/open/health-check";
pub const CALLBACK_PATH: &str = "/api/v1/open/oauth/callback";
/// How long an OAuth `state` may wait for its callback, as the report's app.
pub const STATE_TTL: Duration = Duration::from_secs(300);
/// Upper bound of `/api/v1/slow?ms=`.
pub const MAX_SLOW: Duration = Duration::from_secs(60);
/// How long WebSocket sessions get to send their close frame at shutdown.
const WS_CLOSE_GRACE: Duration = Duration::from_secs(5);
/// WebSocket close code 1001: the server is going away.
const GOING_AWAY: u16 = 1001;

#[derive(Clone)]
struct AppState {
    cfg: Arc<Config>,
    store: Store,
    shutdown: CancellationToken,
    // Upgraded WebSockets are no longer connections hyper tracks, so the
    // graceful shutdown of `axum::serve` does not wait for them: this does.
    sessions: TaskTracker,
}

/// Serves until `shutdown` is cancelled, then drains: no new connections,
/// in-flight requests finish, WebSockets get a 1001 close, SSE streams end.
pub async fn serve(
    listener: TcpListener,
    cfg: Config,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let store = Store::new(&cfg.redis_host, cfg.redis_port).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "redis address {}:{} is not usable: {e}",
                cfg.redis_host, cfg.redis_port
            ),
        )
    })?;
    let state = AppState {
        cfg: Arc::new(cfg),
        store,
        shutdown: shutdown.clone(),
        sessions: TaskTracker::new(),
    };
    let sessions = state.sessions.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    sessions.close();
    if tokio::time::timeout(WS_CLOSE_GRACE, sessions.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = sessions.len(),
            "WebSockets did not close within {WS_CLOSE_GRACE:?}, dropping them"
        );
    }
    Ok(())
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route(HEALTH_PATH, get(health))
        // cutover's default health path, for a compose file without `health.path`.
        .route("/up", get(health))
        .route("/api/v1/visits", get(visits))
        .route("/api/v1/open/oauth/start", get(oauth_start))
        .route(CALLBACK_PATH, get(oauth_callback))
        .route("/api/v1/stream", get(sse))
        .route("/api/v1/slow", get(slow))
        .route("/ws", get(ws))
        .with_state(state)
}

fn unavailable(e: StoreError) -> Response {
    tracing::warn!(error = %e, "redis call failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "error": e.to_string() })),
    )
        .into_response()
}

async fn index(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "name": "athens",
        "version": s.cfg.version,
        "color": s.cfg.color,
        "instance": s.cfg.instance,
    }))
}

/// Spring-actuator-like: UP only when Redis answers, because a backend that
/// cannot reach Redis cannot log anyone in and must not receive traffic.
async fn health(State(s): State<AppState>) -> Response {
    match s.store.ping().await {
        Ok(()) => Json(json!({ "status": "UP" })).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "DOWN", "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn visits(State(s): State<AppState>) -> Response {
    match s.store.incr_visits().await {
        Ok(count) => Json(json!({
            "version": s.cfg.version,
            "color": s.cfg.color,
            "instance": s.cfg.instance,
            "count": count,
        }))
        .into_response(),
        Err(e) => unavailable(e),
    }
}

async fn oauth_start(State(s): State<AppState>) -> Response {
    let state = hex(&rand::random::<[u8; 32]>());
    let issued =
        json!({ "version": s.cfg.version, "color": s.cfg.color, "instance": s.cfg.instance });
    match s
        .store
        .put_state(&state, &issued.to_string(), STATE_TTL)
        .await
    {
        Ok(true) => {}
        // 256 random bits do not collide; if they ever do, refuse rather
        // than hand two users the same state.
        Ok(false) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": "state collision, try again" })),
            )
                .into_response()
        }
        Err(e) => return unavailable(e),
    }
    let url = &s.cfg.oauth_authorize_url;
    let sep = if url.contains('?') { '&' } else { '?' };
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("{url}{sep}state={state}"))],
    )
        .into_response()
}

#[derive(Deserialize)]
struct Callback {
    state: Option<String>,
}

async fn oauth_callback(State(s): State<AppState>, Query(q): Query<Callback>) -> Response {
    let refused =
        |why: &str| (StatusCode::BAD_REQUEST, Json(json!({ "error": why }))).into_response();
    let Some(state) = q.state.filter(|st| valid_state(st)) else {
        return refused("missing or malformed state");
    };
    match s.store.take_state(&state).await {
        Ok(Some(issued)) => {
            let issued: serde_json::Value =
                serde_json::from_str(&issued).unwrap_or(serde_json::Value::String(issued));
            Json(json!({
                "ok": true,
                "issued_by": issued,
                "accepted_by": { "version": s.cfg.version, "color": s.cfg.color, "instance": s.cfg.instance },
            }))
            .into_response()
        }
        Ok(None) => refused("unknown, expired or already used state"),
        Err(e) => unavailable(e),
    }
}

/// Only what `oauth_start` issues, so a caller cannot probe other keys.
fn valid_state(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn sse(State(s): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let cfg = s.cfg.clone();
    let ticks = futures_util::stream::unfold(
        (tokio::time::interval(cfg.tick), 0u64),
        move |(mut interval, n)| {
            let cfg = cfg.clone();
            async move {
                interval.tick().await;
                let n = n + 1;
                let event = Event::default().event("tick").id(n.to_string()).data(
                    json!({ "version": cfg.version, "color": cfg.color, "n": n }).to_string(),
                );
                Some((Ok(event), (interval, n)))
            }
        },
    )
    // A stream that never ends would hold graceful shutdown forever; clients
    // reconnect (EventSource does so by itself) and reach the new color.
    .take_until(s.shutdown.cancelled_owned());
    Sse::new(ticks).keep_alive(KeepAlive::default())
}

#[derive(Deserialize)]
struct Slow {
    ms: Option<u64>,
}

/// A request that takes `ms` to finish, sending its headers and a first line
/// at once: shows (and tests) that a deploy or a shutdown lets it complete.
async fn slow(Query(q): Query<Slow>) -> Response {
    let wait = Duration::from_millis(q.ms.unwrap_or(1000)).min(MAX_SLOW);
    let body = futures_util::stream::iter([Bytes::from_static(b"started\n")])
        .chain(futures_util::stream::once(async move {
            tokio::time::sleep(wait).await;
            Bytes::from_static(b"done\n")
        }))
        .map(Ok::<_, Infallible>);
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(body))
        .expect("static response parts are valid")
}

async fn ws(upgrade: WebSocketUpgrade, State(s): State<AppState>) -> Response {
    let sessions = s.sessions.clone();
    upgrade.on_upgrade(move |socket| sessions.track_future(ws_session(socket, s)))
}

async fn ws_session(socket: WebSocket, s: AppState) {
    let (mut tx, mut rx) = socket.split();
    let hello = json!({ "hello": s.cfg.version, "color": s.cfg.color, "instance": s.cfg.instance });
    if tx
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut interval = tokio::time::interval(s.cfg.tick);
    // The first tick of an interval is immediate; the greeting stands for it.
    interval.tick().await;
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = s.shutdown.cancelled() => {
                let close = Message::Close(Some(CloseFrame {
                    code: GOING_AWAY,
                    reason: "server shutting down".into(),
                }));
                let _ = tx.send(close).await;
                return;
            }
            _ = interval.tick() => {
                n += 1;
                let tick = json!({ "tick": n, "version": s.cfg.version, "color": s.cfg.color });
                if tx.send(Message::Text(tick.to_string().into())).await.is_err() {
                    return;
                }
            }
            msg = rx.next() => {
                let echo = match msg {
                    Some(Ok(Message::Text(t))) => Message::Text(t),
                    Some(Ok(Message::Binary(b))) => Message::Binary(b),
                    // axum answers pings itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                };
                if tx.send(echo).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_64_hex_chars() {
        let s = hex(&[0xab; 32]);
        assert_eq!(s.len(), 64);
        assert!(valid_state(&s));
        assert!(!valid_state("athens:visits"));
        assert!(!valid_state(&format!("{}g", &s[..63])));
        assert!(!valid_state(""));
    }
}
