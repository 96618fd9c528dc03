//! The control API of `cutover serve`: JSON over HTTP/1.1, served on a Unix
//! socket (and, when asked for, on TCP behind a bearer token).
//!
//! The routes are documented for users in `docs/api.md`. Every change that
//! succeeds (deploy, remove) is persisted before it is answered, so a client
//! that got a 2xx knows the change survives a restart.

mod auth;
mod error;
mod events;
mod maintenance;
mod prepared;
mod serve;
mod services;
mod socket;
mod staged;
mod tcp;
mod tokens;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;

use cutover_core::tls::CertificateStatus;

use crate::state::{StateError, StateStore};
use crate::Proxy;

pub use auth::{require_token, BearerToken, Guard, PeerAddr, TokenError};
pub use cutover_core::status::DrainedAnswer;
pub use error::ApiError;
pub use serve::{serve_control, ControlTimeouts};
pub use socket::{bind_control_socket, ControlSocket, SocketError, SocketFile};
pub use tcp::ControlTcp;
pub use tokens::{Tokens, TokensFileError};

/// Everything the control API handlers share. Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    inner: Arc<Inner>,
}

struct Inner {
    proxy: Proxy,
    store: Option<Arc<StateStore>>,
    /// Fires at daemon shutdown: event streams and long polls end with it so
    /// that the graceful shutdown of the server does not wait on them.
    shutdown: CancellationToken,
    version: String,
    listen: Option<SocketAddr>,
    handed_over: AtomicBool,
    tokens: Option<Arc<Tokens>>,
    /// An edge node of a cluster: the coordinator sends compose apps'
    /// routes here (`cutover serve --role edge`).
    edge: bool,
}

impl Admin {
    /// `store` is where successful changes are persisted; `None` keeps state
    /// in memory only (tests, or a daemon run without a state directory).
    pub fn new(proxy: Proxy, store: Option<Arc<StateStore>>, shutdown: CancellationToken) -> Admin {
        Admin::with_info(
            proxy,
            store,
            shutdown,
            env!("CARGO_PKG_VERSION").into(),
            None,
        )
    }

    /// Like [`Admin::new`] with the version and data-listener address the
    /// health call reports.
    pub fn with_info(
        proxy: Proxy,
        store: Option<Arc<StateStore>>,
        shutdown: CancellationToken,
        version: String,
        listen: Option<SocketAddr>,
    ) -> Admin {
        Admin {
            inner: Arc::new(Inner {
                proxy,
                store,
                shutdown,
                version,
                listen,
                handed_over: AtomicBool::new(false),
                tokens: None,
                edge: false,
            }),
        }
    }

    /// The tokens `/v1/tokens` manages. Call before the Admin is cloned.
    pub fn with_tokens(mut self, tokens: Arc<Tokens>) -> Admin {
        Arc::get_mut(&mut self.inner)
            .expect("with_tokens is called before the admin is shared")
            .tokens = Some(tokens);
        self
    }

    /// Makes this the control API of an edge node. Call before the Admin
    /// is cloned.
    pub fn as_edge(mut self) -> Admin {
        Arc::get_mut(&mut self.inner)
            .expect("as_edge is called before the admin is shared")
            .edge = true;
        self
    }

    pub fn tokens(&self) -> Option<&Tokens> {
        self.inner.tokens.as_deref()
    }

    pub fn proxy(&self) -> &Proxy {
        &self.inner.proxy
    }

    /// Writes the proxy's current state to the state file, if there is one.
    pub async fn persist(&self) -> Result<(), StateError> {
        let Some(store) = self.inner.store.clone() else {
            return Ok(());
        };
        if self.inner.handed_over.load(Ordering::SeqCst) {
            // The state file is the successor's now.
            return Ok(());
        }
        let proxy = self.inner.proxy.clone();
        // fsync blocks; keep it off the runtime's worker threads.
        tokio::task::spawn_blocking(move || store.save_with(|| proxy.state()))
            .await
            .expect("the state writer does not panic")
    }

    /// A successor daemon owns the state file from now on: this one never
    /// writes it again.
    pub fn hand_over(&self) {
        self.inner.handed_over.store(true, Ordering::SeqCst);
    }

    /// The full control API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/health", get(health))
            .route("/v1/services", get(services::list))
            .route(
                "/v1/services/{name}",
                get(services::get_one)
                    .put(services::deploy)
                    .delete(services::remove),
            )
            .route("/v1/services/{name}/prepared", put(prepared::prepare))
            .route(
                "/v1/services/{name}/prepared/{id}",
                axum::routing::delete(prepared::abort),
            )
            .route(
                "/v1/services/{name}/prepared/{id}/commit",
                post(prepared::commit),
            )
            .route(
                "/v1/services/{name}/prepared/{id}/stage",
                post(prepared::stage),
            )
            .route(
                "/v1/services/{name}/maintenance",
                put(maintenance::on).delete(maintenance::off),
            )
            .route(
                "/v1/services/{name}/staged",
                axum::routing::delete(staged::unstage),
            )
            .route("/v1/services/{name}/staged/promote", post(staged::promote))
            .route(
                "/v1/services/{name}/sets/{id}/drained",
                get(events::wait_drained),
            )
            .route("/v1/events", get(events::stream))
            .route("/v1/certificates", get(certificates))
            .route("/v1/tokens", get(tokens::list).post(tokens::create))
            .route("/v1/tokens/{id}", axum::routing::delete(tokens::revoke))
            .route("/metrics", get(metrics))
            .fallback(not_found)
            .with_state(self.clone())
    }
}

/// Every certificate the daemon serves or is ordering.
async fn certificates(State(admin): State<Admin>) -> Json<Vec<CertificateStatus>> {
    Json(admin.proxy().certificates())
}

/// Only `GET /metrics`, for the opt-in `--metrics-listen` TCP endpoint that
/// must not expose the control routes.
pub fn metrics_router(admin: &Admin) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(admin.clone())
}

async fn health(State(admin): State<Admin>) -> impl IntoResponse {
    Json(cutover_core::status::HealthAnswer {
        status: "ok".into(),
        version: admin.inner.version.clone(),
        listen: admin.inner.listen.map(|a| a.to_string()),
        certificate_storage: admin.proxy().certificate_storage(),
    })
}

async fn metrics(State(admin): State<Admin>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        admin.inner.proxy.render_metrics(),
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
        .with_hint("the routes are listed in docs/api.md; they start with /v1/")
}
