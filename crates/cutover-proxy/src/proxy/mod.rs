//! Request handling: route, pick a target, hand the request over on a pooled
//! upstream connection and stream the response back.
//!
//! [`handle`] reads top to bottom as the steps a request takes. The
//! connection is checked out before the request is handed over, so a target
//! that refuses the connection costs nothing but a retry on another target
//! of the same set: the request, body included, is still intact.

mod body;
mod headers;
mod pages;
mod ready;

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover_core::dot_segments::{remove_dot_segments, AboveRoot};
use cutover_core::status::Health;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body::Body;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

pub(crate) use body::RespBody;
use body::Tail;
pub(crate) use headers::connection_has;
use headers::{ensure_request_id, request_host, strip_hop_by_hop};
use pages::{Answer, PAGE_404};

use crate::access_log::{self, LogCtx};
use crate::body::{ReqBody, ReqBodyError};
use crate::context::Context;
use crate::router::Route;
use crate::stage;
use crate::target::{InFlight, Upgraded};
use crate::upstream::{self, Failure, UpstreamBody};

pub(crate) const HEALTH_PATH: &str = "/_cutover/health";

/// What the server knows about the client connection a request came on.
pub(crate) struct ConnInfo {
    /// The peer IP, formatted once per connection for X-Forwarded-For.
    pub peer_ip: HeaderValue,
    /// A request has come on this connection (see `server::serve_conn`).
    pub started: std::sync::atomic::AtomicBool,
    /// A request on it asked for an upgrade (WebSocket).
    pub upgrading: std::sync::atomic::AtomicBool,
    pub first_request: tokio::sync::Notify,
    /// Accepted on an app's own port: every request goes to that service.
    pub pinned: Option<Arc<str>>,
    /// Came in on the HTTPS listener.
    pub tls: bool,
}

impl ConnInfo {
    fn request_started(&self) {
        // A plain load on every request after the first, not a locked swap.
        if !self.started.load(Ordering::Relaxed) && !self.started.swap(true, Ordering::Relaxed) {
            self.first_request.notify_one();
        }
    }
}

pub(crate) async fn handle(
    inner: Arc<Context>,
    conn: Arc<ConnInfo>,
    mut req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    let inner = &*inner;
    let start = Instant::now();
    conn.request_started();
    // A CA validating an order comes before any route: the host may
    // redirect to HTTPS, which has no certificate yet.
    if let Some(resp) = acme_http01(inner, &conn, &req) {
        return Ok(resp);
    }
    // On an app's own port every path is the app's.
    if let Some((status, page)) = own_endpoint(inner, &conn, &req) {
        return Ok(pages::unrouted(inner, &req, start, status, page));
    }
    if let Some(Answer(status, page)) = refused(&req) {
        return Ok(pages::unrouted(inner, &req, start, status, page));
    }
    if let Err(Answer(status, page)) = resolve_dot_segments(&mut req) {
        return Ok(pages::unrouted(inner, &req, start, status, page));
    }
    let Some(entered) = route_and_enter(inner, &conn, &req) else {
        return Ok(not_routed(inner, &req, start));
    };
    let Entered {
        route,
        guard,
        canary_cookie,
    } = match through_maintenance(inner, &conn, &req, entered, start).await {
        Ok(entered) => entered,
        Err(resp) => return Ok(resp),
    };
    if redirects_to_https(&route, &conn, &req) {
        let log = access_log::enabled(inner.config.access_log).then(|| pages::log_ctx(&req));
        let location = https_location(inner, &req);
        return Ok(pages::to_https(&route, guard, start, location, log));
    }
    if declared_length(&req).is_some_and(|len| len > inner.config.max_request_body) {
        let log = access_log::enabled(inner.config.access_log).then(|| pages::log_ctx(&req));
        return Ok(pages::routed(&route, guard, start, Answer::TOO_LARGE, log));
    }
    let mut upstream = upstream_request(inner, &conn, req);
    let sent = send_with_retry(inner, &route, guard, &upstream.parts, &mut upstream.body).await;
    let (resp, guard) = match sent {
        Ok(sent) => sent,
        Err((guard, answer)) => {
            return Ok(pages::routed(&route, guard, start, answer, upstream.log));
        }
    };
    let hsts = if conn.tls { route.hsts.clone() } else { None };
    let mut resp = respond(
        inner,
        route,
        guard,
        resp,
        upstream.client_upgrade,
        start,
        upstream.log,
    );
    if let Some(hsts) = hsts {
        resp.headers_mut()
            .insert(header::STRICT_TRANSPORT_SECURITY, hsts);
    }
    if let Some(cookie) = canary_cookie {
        resp.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(resp)
}

/// Before any route: the daemon's own endpoints on the main listener: liveness
/// (`/_cutover/health`) and each app's readiness (`/_cutover/ready/...`).
fn own_endpoint(
    inner: &Context,
    conn: &ConnInfo,
    req: &Request<Incoming>,
) -> Option<(StatusCode, &'static str)> {
    if !inner.config.health_endpoint || conn.pinned.is_some() {
        return None;
    }
    let path = req.uri().path();
    if !path.starts_with("/_cutover/") {
        return None;
    }
    if path == HEALTH_PATH {
        return Some((StatusCode::OK, "ok\n"));
    }
    ready::readiness(inner, req)
}

fn not_routed(inner: &Context, req: &Request<Incoming>, start: Instant) -> Response<RespBody> {
    pages::unrouted(inner, req, start, StatusCode::NOT_FOUND, PAGE_404)
}

/// Step 1a: a route in maintenance answers its 503 page at once, or, with
/// a hold, keeps the request (entering no set, so no drain waits on it)
/// until maintenance ends or the hold is up, then routes it afresh.
async fn through_maintenance(
    inner: &Context,
    conn: &ConnInfo,
    req: &Request<Incoming>,
    entered: Entered,
    start: Instant,
) -> Result<Entered, Response<RespBody>> {
    let Some(gate) = entered.route.maintenance.clone() else {
        return Ok(entered);
    };
    let log = || access_log::enabled(inner.config.access_log).then(|| pages::log_ctx(req));
    let Some(hold) = gate.spec.hold else {
        return Err(pages::maintenance(
            &entered.route,
            &gate,
            entered.guard,
            start,
            log(),
        ));
    };
    drop(entered);
    tokio::select! {
        _ = gate.ended.cancelled() => {}
        _ = tokio::time::sleep(hold) => {}
        _ = inner.shutdown.cancelled() => {}
    }
    let Some(entered) = route_and_enter(inner, conn, req) else {
        return Err(not_routed(inner, req, start));
    };
    match entered.route.maintenance.clone() {
        None => Ok(entered),
        // Still (or again) in maintenance: held once is enough.
        Some(gate) => Err(pages::maintenance(
            &entered.route,
            &gate,
            entered.guard,
            start,
            log(),
        )),
    }
}

/// Step 1b: plain HTTP to a TLS route goes to HTTPS, but not on an app's
/// own port or in-network address (its plain-HTTP addresses: a container
/// calling it by name has no HTTPS), and not under the ACME challenge
/// path, where a CA validating the app's own client must reach it.
fn redirects_to_https(route: &Route, conn: &ConnInfo, req: &Request<Incoming>) -> bool {
    route.redirect_to_https
        && !conn.tls
        && conn.pinned.is_none()
        && !req.uri().path().starts_with(cutover_tls::HTTP01_PREFIX)
}

/// Step 0a: `/.well-known/acme-challenge/TOKEN` over plain HTTP, for a
/// token an order of this daemon (or of one on the same storage) waits on.
/// Other paths under it go to the app, which may run its own ACME client.
fn acme_http01(
    inner: &Context,
    conn: &ConnInfo,
    req: &Request<Incoming>,
) -> Option<Response<RespBody>> {
    if conn.tls {
        return None;
    }
    let token = req.uri().path().strip_prefix(cutover_tls::HTTP01_PREFIX)?;
    let answer = inner.https.get()?.certs.http01(token)?;
    Some(pages::key_authorization(answer))
}

/// Where a plain-HTTP request to a TLS route is sent: the same host, path
/// and query over HTTPS, on the HTTPS listener's port.
fn https_location(inner: &Context, req: &Request<Incoming>) -> HeaderValue {
    let host = cutover_core::route::normalize_host(request_host(req).unwrap_or_default());
    let port = inner.https.get().map_or(443, |h| h.public_port());
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = match port {
        443 => format!("https://{host}{path}"),
        p => format!("https://{host}:{p}{path}"),
    };
    HeaderValue::from_str(&url).unwrap_or_else(|_| HeaderValue::from_static("/"))
}

/// Step 0: requests no origin may receive. The host cutover routes on must
/// be the one the origin gets (a backend with several virtual hosts must
/// never be reached under a name cutover did not route), so a request that
/// names no host, or two, is refused; and CONNECT asks for a tunnel, which
/// a reverse proxy does not open.
fn refused(req: &Request<Incoming>) -> Option<Answer> {
    if req.method() == http::Method::CONNECT {
        return Some(Answer::CONNECT);
    }
    let hosts = req.headers().get_all(header::HOST).iter().count();
    let named = hosts == 1 || (hosts == 0 && req.uri().authority().is_some());
    (!named).then_some(Answer::NO_SINGLE_HOST)
}

/// Step 0b: the path as the origin will resolve it. Dot segments are
/// removed before a prefix is matched, and the origin gets the path that
/// was routed on, so `/wsp/../up` is `/up` for both.
fn resolve_dot_segments(req: &mut Request<Incoming>) -> Result<(), Answer> {
    let resolved = match remove_dot_segments(req.uri().path()) {
        Ok(Cow::Borrowed(_)) => return Ok(()),
        Ok(Cow::Owned(path)) => path,
        Err(AboveRoot) => return Err(Answer::ABOVE_ROOT),
    };
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{resolved}?{q}"),
        None => resolved,
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().map_err(|_| Answer::ABOVE_ROOT)?);
    *req.uri_mut() = http::Uri::from_parts(parts).map_err(|_| Answer::ABOVE_ROOT)?;
    Ok(())
}

/// Step 1: the route for the request's host and path, and a target of its
/// active set entered. Route and enter are one step: a request that read
/// the snapshot just before a switch and finds its set draining routes
/// again, so no new request starts on an old set once the switch is
/// published.
fn route_and_enter(inner: &Context, conn: &ConnInfo, req: &Request<Incoming>) -> Option<Entered> {
    for _ in 0..4 {
        let snapshot = inner.router.load();
        let route = match &conn.pinned {
            Some(service) => snapshot.by_service.get(&**service)?,
            None => snapshot.table.lookup(request_host(req), req.uri().path())?,
        };
        let (set, canary_cookie) = stage::choose(route, req);
        let idx = set.pick(0)?;
        if let Some(guard) = InFlight::enter(set, idx) {
            return Some(Entered {
                route: route.clone(),
                guard,
                canary_cookie,
            });
        }
    }
    None
}

/// Step 1's result: the route, a target of the set chosen for the request
/// entered, and the canary cookie to set when the request drew its side.
struct Entered {
    route: Arc<Route>,
    guard: InFlight,
    canary_cookie: Option<HeaderValue>,
}

/// The body length the client announced, checked against the limit before
/// anything is sent (a chunked body is checked as it streams).
fn declared_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Step 2's result: the request as the origin gets it.
struct Upstream {
    parts: http::request::Parts,
    body: ReqBody,
    /// The client's side of an HTTP/1.1 upgrade it asked for.
    client_upgrade: Option<OnUpgrade>,
    log: Option<LogCtx>,
}

/// Step 2: the upstream request, with the forwarding headers, a request id
/// and the body limit.
fn upstream_request(inner: &Context, conn: &ConnInfo, mut req: Request<Incoming>) -> Upstream {
    let upgrade = if req.version() == Version::HTTP_11 && connection_has(req.headers(), "upgrade") {
        req.headers().get(header::UPGRADE).cloned()
    } else {
        None
    };
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    if client_upgrade.is_some() {
        conn.upgrading.store(true, Ordering::Relaxed);
    }
    let (mut parts, body) = req.into_parts();
    let request_id = ensure_request_id(&mut parts);
    let log = access_log::enabled(inner.config.access_log).then(|| LogCtx {
        method: parts.method.clone(),
        path: parts.uri.path_and_query().cloned(),
        request_id,
    });
    headers::for_upstream(&mut parts, conn, upgrade.as_ref());
    Upstream {
        parts,
        body: ReqBody::new(
            body,
            inner.config.max_request_body,
            inner.config.client_body_timeout,
        ),
        client_upgrade,
        log,
    }
}

/// Step 3: checkout and send, retrying on other targets of the same set
/// while nothing was sent. A pooled connection the origin had closed gives
/// the request back too when nothing of it can have been acted on
/// (`upstream::Failure::Retry`), and it goes out on a fresh one.
/// Either way the guard comes back: the request counts against the target
/// that answered, or against the last one tried.
async fn send_with_retry(
    inner: &Context,
    route: &Arc<Route>,
    mut guard: InFlight,
    parts: &http::request::Parts,
    body: &mut ReqBody,
) -> Result<(Response<UpstreamBody>, InFlight), (InFlight, Answer)> {
    let cfg = &inner.config;
    let service = &*route.service.name;
    let set = guard.set().clone();
    let max_attempts = set.targets.len().min(8) + 2;
    let mut tried: u64 = 0;
    let mut last_error = String::new();
    for _ in 0..max_attempts {
        let target = guard.target();
        let conn = match target.checkout(cfg.connect_timeout).await {
            Ok(c) => c,
            Err(e) => {
                if let Some(prev) = target.set_health(Health::Unhealthy, Some(e.clone())) {
                    inner.health_changed(&set, guard.idx(), prev);
                }
                tracing::warn!(service, error = %e, "upstream connect failed, trying another target");
                last_error = e;
                tried |= 1u64.checked_shl(guard.idx() as u32).unwrap_or(0);
                match set.pick(tried) {
                    // Enter the next target before leaving this one, so the
                    // set never looks idle to its drain task in between.
                    Some(i) => {
                        guard = guard.transfer(i);
                        continue;
                    }
                    None => break,
                }
            }
        };
        let body_sent = body.sent();
        let exchange = response_head(
            cfg.response_header_timeout,
            body_sent,
            upstream::send(conn, parts, body),
        );
        let sent = tokio::select! {
            biased;
            r = exchange => r,
            _ = set.cut.cancelled() => {
                set.cut_requests.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(service, "request waiting for its response was cut at the drain deadline");
                return Err((guard, Answer::CUT));
            }
        };
        match sent {
            Ok(Ok(resp)) => return Ok((resp, guard)),
            Ok(Err(Failure::Retry(e))) => {
                last_error = e;
                continue;
            }
            Ok(Err(Failure::Client(e))) => {
                tracing::info!(service, error = %e, "the client's request body failed; not the upstream's fault");
                return Err((guard, client_body_fault(&e)));
            }
            Ok(Err(Failure::Upstream(e))) => {
                tracing::warn!(service, target = %guard.target().addr, error = %e, "upstream request failed");
                return Err((guard, Answer::BAD_GATEWAY));
            }
            Err(_) => {
                tracing::warn!(service, target = %guard.target().addr, "upstream did not send response headers in {:?}", cfg.response_header_timeout);
                return Err((guard, Answer::TIMEOUT));
            }
        }
    }
    tracing::warn!(service, error = %last_error, "no target of the service could be reached");
    Err((guard, Answer::BAD_GATEWAY))
}

/// The wait for the response head. Its timer starts once the request body
/// has been sent: until then the body's own stall timer bounds the
/// exchange, so a long, steady upload is never cut by this one.
async fn response_head<F: Future>(
    limit: Duration,
    body_sent: Option<CancellationToken>,
    send: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    let mut send = std::pin::pin!(send);
    if let Some(body_sent) = body_sent {
        tokio::select! {
            biased;
            r = &mut send => return Ok(r),
            _ = body_sent.cancelled() => {}
        }
    }
    tokio::time::timeout(limit, send).await
}

/// A send that failed because of the client's body: past the limit (413),
/// stalled (408) or unreadable, e.g. a malformed chunk (400). The client's
/// fault, not the origin's, and not counted as an upstream failure.
fn client_body_fault(err: &ReqBodyError) -> Answer {
    match err {
        ReqBodyError::TooLarge => Answer::TOO_LARGE,
        ReqBodyError::Stalled(_) => Answer::BODY_TIMEOUT,
        ReqBodyError::Client(_) => Answer::BAD_BODY,
    }
}

/// Step 4: the origin's response on its way back. A 101 hands both
/// connections to a WebSocket relay; any other response streams its body,
/// and the body settles the request's accounting when it ends.
#[allow(clippy::too_many_arguments)]
fn respond(
    inner: &Context,
    route: Arc<Route>,
    guard: InFlight,
    resp: Response<UpstreamBody>,
    client_upgrade: Option<OnUpgrade>,
    start: Instant,
    log: Option<LogCtx>,
) -> Response<RespBody> {
    let status = resp.status();
    let (mut parts, mut body) = resp.into_parts();
    if status == StatusCode::SWITCHING_PROTOCOLS {
        // The upstream connection now belongs to the relay (or is useless).
        let upgraded = body.take_upgraded();
        if let (Some(client_upgrade), Some(upgraded)) = (client_upgrade, upgraded) {
            start_upgrade(inner, &route, &guard, upgraded, client_upgrade);
        }
    } else {
        strip_hop_by_hop(&mut parts.headers);
    }
    let mut tail = Tail::new(route, guard, start, status.as_u16(), 0, log);
    if body.is_end_stream() {
        // hyper never polls a body that says it is over (204, HEAD,
        // Content-Length: 0), so settle now or the connection is not reused.
        tail.finish(true, body.take_reusable());
    }
    Response::from_parts(
        parts,
        RespBody::Upstream {
            body,
            cut: None,
            tail,
        },
    )
}

/// Relays an upgraded connection until it closes or its set's WebSocket
/// drain deadline closes it.
fn start_upgrade(
    inner: &Context,
    route: &Route,
    guard: &InFlight,
    upstream: upstream::Upgraded,
    client_upgrade: OnUpgrade,
) {
    // Counted before the response goes out so the set never looks idle
    // between the 101 and the relay starting.
    let upgraded = Upgraded::enter(guard.set(), guard.idx());
    let set = guard.set().clone();
    let service = route.service.name.clone();
    let idle = inner.config.websocket_idle_timeout;
    inner.tasks.spawn(async move {
        let Ok(c) = client_upgrade.await else {
            return;
        };
        let (c, u) = (TokioIo::new(c), upstream);
        match crate::websocket::relay(c, u, set.close_upgraded.clone(), idle).await {
            Ok(out) if out.closed_at_deadline => {
                set.closed_websockets.fetch_add(1, Ordering::Relaxed);
                tracing::info!(service = &*service, color = set.color.as_str(), "upgraded connection closed at its drain deadline");
            }
            Ok(out) if out.closed_idle => {
                tracing::debug!(service = &*service, "upgraded connection closed after {idle:?} without traffic");
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(service = &*service, error = %e, "upgraded connection ended with an error"),
        }
        drop(upgraded);
    });
}
