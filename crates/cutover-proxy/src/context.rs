//! The data-plane context: everything a request, a drain or a health probe
//! reads, and the events they report. The control plane (`handle.rs`) owns
//! the changes; this module depends on nothing above it, so the request
//! path, the drain and the health checks never reach back into the control
//! plane.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cutover_core::service::Timeouts;
use cutover_core::status::{Event, Health};
use cutover_core::sync::lock;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::{Connections, Unrouted};
use crate::router::Router;
use crate::service::Services;
use crate::target::TargetSet;

/// Data-plane settings that come from `cutover serve` flags.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Serve `/_cutover/health` on the data listener.
    pub health_endpoint: bool,
    pub connect_timeout: Duration,
    /// Time the upstream has to send response headers.
    pub response_header_timeout: Duration,
    /// Time a client has to send a full request head (slowloris guard).
    pub client_header_timeout: Duration,
    /// Idle keep-alive connections are closed after this. HTTP/1: hyper's
    /// header timer also runs between requests, so the effective idle limit
    /// is the shorter of this and `client_header_timeout`. HTTP/2: the
    /// client is pinged at this interval and dropped if it does not answer.
    pub idle_timeout: Duration,
    /// A pooled upstream connection unused this long is closed, so a
    /// burst's connections (and the buffers they grew) do not outlive it.
    /// Checked at each health probe of the target's set.
    pub upstream_idle_timeout: Duration,
    /// Time between two reads of a request body before the request is
    /// answered 408 (a stalled upload).
    pub client_body_timeout: Duration,
    /// An upgraded (WebSocket) connection with no data either way for this
    /// long is closed, with a 1001 close frame to both ends.
    pub websocket_idle_timeout: Duration,
    pub max_request_body: u64,
    pub max_header_bytes: usize,
    /// Client connections open at once; past it a new connection is closed
    /// on accept, so the descriptors the control socket, the upstream
    /// connections and the state file need are never used up.
    pub max_connections: usize,
    /// One access log line per request.
    pub access_log: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            health_endpoint: true,
            connect_timeout: Duration::from_secs(5),
            response_header_timeout: Duration::from_secs(60),
            client_header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            upstream_idle_timeout: Duration::from_secs(15),
            client_body_timeout: Duration::from_secs(60),
            websocket_idle_timeout: Duration::from_secs(60),
            max_request_body: 1 << 30,
            max_header_bytes: 64 * 1024,
            max_connections: 16_384,
            access_log: true,
        }
    }
}

/// What the data plane and the control plane share: the routes, the
/// services and their sets, the settings, the tasks and the event channel.
/// The request path reads it; only the control plane ([`crate::Proxy`])
/// changes the services.
pub(crate) struct Context {
    pub(crate) config: ProxyConfig,
    pub(crate) router: Router,
    pub(crate) services: Mutex<Services>,
    pub(crate) events: broadcast::Sender<Event>,
    /// Drain tasks, health monitors and WebSocket relays.
    pub(crate) tasks: TaskTracker,
    /// Daemon shutdown: closes upgraded connections, stops monitors.
    pub(crate) shutdown: CancellationToken,
    pub(crate) next_set_id: AtomicU64,
    pub(crate) unrouted: Unrouted,
    pub(crate) connections: Connections,
    pub(crate) local_addr: Mutex<Option<SocketAddr>>,
    /// A successor serves the listener now: at shutdown, upgraded
    /// connections stay until their services' WebSocket drain deadline
    /// instead of getting their 1012 at once.
    pub(crate) handed_over: AtomicBool,
    /// Apps' own ports, each listener pinned to its service.
    pub(crate) ports: crate::ports::PortRoutes,
    /// The HTTPS listener and its certificates, once enabled.
    pub(crate) https: std::sync::OnceLock<crate::https::Https>,
    /// The edge's listener for connections apps' gateways relay
    /// (`--gateway-listen`), until the data plane serves it.
    pub(crate) gateways: Mutex<Option<std::net::TcpListener>>,
    /// The deploy engine's operations, for `/metrics`.
    pub(crate) operations: crate::operation_metrics::OperationMetrics,
}

impl Context {
    pub fn emit(&self, event: Event) {
        // No subscriber is fine: events are a notification, not a queue.
        let _ = self.events.send(event);
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Services> {
        lock(&self.services)
    }

    pub fn health_changed(&self, set: &TargetSet, idx: usize, prev: Health) {
        let t = &set.targets[idx];
        let health = t.health();
        let reason = t.last_error().filter(|_| health != Health::Healthy);
        tracing::info!(
            service = &*set.service, target = %t.addr, from = ?prev, to = ?health,
            reason = reason.as_deref().unwrap_or(""), "target health changed"
        );
        self.emit(Event::HealthChanged {
            service: set.service.to_string(),
            addr: t.addr.clone(),
            health,
            reason,
        });
    }

    /// A drained set leaves its service's status.
    pub fn forget_drained(&self, set: &Arc<TargetSet>) {
        self.lock().forget(set);
    }

    /// Upgraded connections on every set, live or draining.
    pub fn upgraded(&self) -> u64 {
        let services = self.lock();
        let live = services
            .live
            .values()
            .flat_map(|e| std::iter::once(&e.active).chain(&e.draining));
        let removed = services.removed.values().flat_map(|r| &r.draining);
        live.chain(removed).map(|set| set.load().1).sum()
    }

    /// The longest WebSocket drain timeout of the live services.
    pub fn max_websocket_drain(&self) -> Duration {
        let services = self.lock();
        services
            .live
            .values()
            .map(|e| e.config.timeouts.websocket_drain)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// How long shutdown waits for in-flight work: the longest drain timeout
    /// of any service, removed ones still draining included, or the default.
    pub fn max_drain(&self) -> Duration {
        let services = self.lock();
        let live = services.live.values().map(|e| e.config.timeouts.drain);
        let removed = services.removed.values().map(|r| r.drain);
        live.chain(removed)
            .max()
            .unwrap_or(Timeouts::default().drain)
    }
}
