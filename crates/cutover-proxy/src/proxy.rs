//! Request handling: route, pick a target, hand the request over on a pooled
//! upstream connection and stream the response back.
//!
//! The connection is checked out before the request is handed over, so a
//! target that refuses the connection costs nothing but a retry on another
//! target of the same set: the request, body included, is still intact.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use cutover_core::status::Health;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::access_log::{self, LogCtx};
use crate::handle::Inner;
use crate::router::Route;
use crate::target::{InFlight, Upgraded, UpstreamSender};

pub(crate) const HEALTH_PATH: &str = "/_cutover/health";

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the server knows about the client connection a request came on.
pub(crate) struct ConnInfo {
    /// The peer IP, formatted once per connection for X-Forwarded-For.
    pub peer_ip: HeaderValue,
}

/// Upstream request body: the client's body with the size limit applied as
/// it streams (Content-Length is checked up front; chunked bodies here).
pub(crate) struct ReqBody {
    inner: Option<Incoming>,
    remaining: u64,
}

#[derive(Debug)]
pub(crate) enum ReqBodyError {
    TooLarge,
    Client(hyper::Error),
}

impl fmt::Display for ReqBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReqBodyError::TooLarge => f.write_str("request body exceeds the configured limit"),
            ReqBodyError::Client(e) => write!(f, "reading the client's request body: {e}"),
        }
    }
}

impl StdError for ReqBodyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ReqBodyError::TooLarge => None,
            ReqBodyError::Client(e) => Some(e),
        }
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = ReqBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ReqBodyError>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match ready!(Pin::new(inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.inner = None;
                        return Poll::Ready(Some(Err(ReqBodyError::TooLarge)));
                    }
                    this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(ReqBodyError::Client(e)))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map(|b| b.size_hint())
            .unwrap_or_else(|| SizeHint::with_exact(0))
    }
}

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

#[derive(Debug)]
struct CutAtDrainDeadline;

impl fmt::Display for CutAtDrainDeadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("response cut at the drain deadline of its target set")
    }
}

impl StdError for CutAtDrainDeadline {}

/// Accounting for a proxied response, settled once when it ends (or is
/// dropped): pool return, metrics, in-flight count and the access log line.
struct Tail {
    route: Arc<Route>,
    guard: Option<InFlight>,
    /// Returned to the target's pool only if the body was read to its end.
    sender: Option<UpstreamSender>,
    start: Instant,
    status: u16,
    bytes: u64,
    log: Option<LogCtx>,
    note: Option<&'static str>,
    done: bool,
}

impl Tail {
    fn finish(&mut self, complete: bool) {
        if self.done {
            return;
        }
        self.done = true;
        let Some(guard) = self.guard.take() else {
            return;
        };
        if complete && !guard.set().is_draining() {
            if let Some(s) = self.sender.take() {
                guard.target().checkin(s);
            }
        }
        self.sender = None;
        let elapsed = self.start.elapsed();
        self.route
            .service
            .metrics
            .record(guard.set().color, self.status, elapsed);
        if let Some(ctx) = &self.log {
            let note = if complete {
                self.note
            } else {
                self.note.or(Some("client went away or body error"))
            };
            access_log::write(
                ctx,
                &self.route.service.name,
                &guard.target().addr,
                guard.set().color.as_str(),
                self.status,
                elapsed.as_micros() as u64,
                self.bytes,
                note,
            );
        }
        drop(guard);
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.finish(false);
    }
}

pin_project! {
    #[project = RespProj]
    pub(crate) enum RespBody {
        Local { data: Option<Bytes> },
        Upstream {
            body: Incoming,
            #[pin]
            cut: Option<WaitForCancellationFutureOwned>,
            tail: Tail,
        },
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            RespProj::Local { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            RespProj::Upstream {
                body,
                mut cut,
                tail,
            } => {
                if tail.done {
                    return Poll::Ready(None);
                }
                match Pin::new(&mut *body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Some(d) = frame.data_ref() {
                            tail.bytes += d.len() as u64;
                        }
                        // hyper stops polling once a body says it is over,
                        // so a length-delimited body is settled here.
                        if body.is_end_stream() {
                            tail.finish(true);
                        }
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Poll::Ready(Some(Err(e))) => {
                        tail.note = Some("upstream body error");
                        tail.finish(false);
                        return Poll::Ready(Some(Err(e.into())));
                    }
                    Poll::Ready(None) => {
                        tail.finish(true);
                        return Poll::Ready(None);
                    }
                    Poll::Pending => {}
                }
                // Only a body that waits on its upstream can outlive a drain
                // deadline, so only then do we listen for the cut.
                if cut.is_none() {
                    let token = tail.route.set.cut.clone();
                    cut.set(Some(token.cancelled_owned()));
                }
                if let Some(f) = cut.as_pin_mut() {
                    if f.poll(cx).is_ready() {
                        tail.route.set.cut_requests.fetch_add(1, Ordering::Relaxed);
                        tail.note = Some("cut at drain deadline");
                        tracing::warn!(
                            service = &*tail.route.service.name,
                            color = tail.route.set.color.as_str(),
                            "response still streaming at the drain deadline was cut"
                        );
                        tail.finish(false);
                        return Poll::Ready(Some(Err(Box::new(CutAtDrainDeadline))));
                    }
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RespBody::Local { data } => data.is_none(),
            RespBody::Upstream { body, tail, .. } => tail.done || body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Local { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            RespBody::Upstream { body, .. } => body.size_hint(),
        }
    }
}

use std::future::Future;

/// A short page the proxy answers itself.
pub(crate) fn local(status: StatusCode, text: &'static str) -> Response<RespBody> {
    let mut resp = Response::new(RespBody::Local {
        data: Some(Bytes::from_static(text.as_bytes())),
    });
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

const PAGE_404: &str = "404 Not Found: no service is routed for this host and path\n";
const PAGE_413: &str = "413 Payload Too Large: the request body exceeds the proxy's limit\n";
const PAGE_502: &str = "502 Bad Gateway: the service's targets could not be reached\n";
const PAGE_503: &str =
    "503 Service Unavailable: the request was cut while its target set drained\n";
const PAGE_504: &str = "504 Gateway Timeout: the target did not answer in time\n";

/// Request ids: a per-process random prefix and a counter, hex encoded.
fn new_request_id() -> HeaderValue {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(rand::random::<u32>);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut buf = [0u8; 24];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in buf[..8].iter_mut().enumerate() {
        *b = HEX[((prefix >> (28 - 4 * i)) & 0xf) as usize];
    }
    for (i, b) in buf[8..].iter_mut().enumerate() {
        *b = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&buf).expect("hex is a valid header value")
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// The hop-by-hop names RFC 9110 7.6.1 lists, besides those the Connection
/// header names. Connection comes first: its bit says whether to parse it.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
];

/// Where `name` is in HOP_BY_HOP. Matching the lowercase text is cheaper
/// than comparing HeaderNames, which compares custom names' bytes one by one.
fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    match name.as_str() {
        "connection" => Some(0),
        "keep-alive" => Some(1),
        "te" => Some(2),
        "trailer" => Some(3),
        "transfer-encoding" => Some(4),
        "upgrade" => Some(5),
        "proxy-connection" => Some(6),
        "proxy-authenticate" => Some(7),
        "proxy-authorization" => Some(8),
        _ => None,
    }
}

/// Removes hop-by-hop headers (RFC 9110 7.6.1) including those the
/// Connection header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names present instead of a hashed remove per listed
    // name: a proxied request usually carries none of them and a response
    // only Connection, and the nine removes were ~6 % of the proxy's
    // user-space instructions per request (docs/benchmarks.md, profile).
    let mut present: u16 = 0;
    for name in headers.keys() {
        if let Some(i) = hop_by_hop_index(name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    if present & 1 != 0 {
        let mut values = headers.get_all(header::CONNECTION).iter();
        let first = values.next().expect("Connection is present");
        // The usual lone `keep-alive`/`close`/`upgrade` names nothing else to
        // remove; only other shapes pay for parsing.
        let plain = values.next().is_none()
            && [&b"keep-alive"[..], b"close", b"upgrade"]
                .iter()
                .any(|t| first.as_bytes().eq_ignore_ascii_case(t));
        if !plain {
            let named: Vec<HeaderName> = headers
                .get_all(header::CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|s| s.split(','))
                .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
                .collect();
            for n in named {
                headers.remove(n);
            }
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

pub(crate) async fn handle(
    inner: Arc<Inner>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    Ok(handle_inner(&inner, &conn, req).await)
}

/// Host as the client named it: the HTTP/2 authority or the Host header.
fn request_host(req: &Request<Incoming>) -> Option<&str> {
    match req.uri().authority() {
        Some(a) => Some(a.as_str()),
        None => req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok()),
    }
}

fn local_logged(
    inner: &Inner,
    req: &Request<Incoming>,
    start: Instant,
    status: StatusCode,
    page: &'static str,
) -> Response<RespBody> {
    inner.unrouted.record(status.as_u16());
    if access_log::enabled(inner.config.access_log) {
        let ctx = local_log_ctx(req);
        access_log::write(
            &ctx,
            "",
            "",
            "",
            status.as_u16(),
            start.elapsed().as_micros() as u64,
            page.len() as u64,
            None,
        );
    }
    local(status, page)
}

/// The log context of a request answered by the proxy itself (never
/// forwarded, so its request id is the client's or a fresh one).
fn local_log_ctx(req: &Request<Incoming>) -> LogCtx {
    LogCtx {
        method: req.method().clone(),
        path: req.uri().path_and_query().cloned(),
        request_id: req
            .headers()
            .get(&X_REQUEST_ID)
            .cloned()
            .unwrap_or_else(new_request_id),
    }
}

async fn handle_inner(
    inner: &Arc<Inner>,
    conn: &ConnInfo,
    mut req: Request<Incoming>,
) -> Response<RespBody> {
    let start = Instant::now();
    if inner.config.health_endpoint && req.uri().path() == HEALTH_PATH {
        return local_logged(inner, &req, start, StatusCode::OK, "ok\n");
    }

    // Route and enter the set in one step: a request that read the snapshot
    // just before a switch and finds its set draining routes again, so no new
    // request starts on an old set once the switch is published.
    let mut tried: u64 = 0;
    let mut guard = None;
    for _ in 0..4 {
        let snapshot = inner.router.load();
        let Some(route) = snapshot.table.lookup(request_host(&req), req.uri().path()) else {
            break;
        };
        let Some(idx) = route.set.pick(0) else { break };
        if let Some(g) = InFlight::enter(&route.set, idx) {
            guard = Some((route.clone(), g));
            break;
        }
    }
    let Some((route, mut guard)) = guard else {
        return local_logged(inner, &req, start, StatusCode::NOT_FOUND, PAGE_404);
    };

    let limit = inner.config.max_request_body;
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit {
            let log = access_log::enabled(inner.config.access_log).then(|| local_log_ctx(&req));
            return finish_local(
                &route,
                guard,
                start,
                StatusCode::PAYLOAD_TOO_LARGE,
                PAGE_413,
                log,
            );
        }
    }

    let upgrade = if req.version() == Version::HTTP_11 && connection_has(req.headers(), "upgrade") {
        req.headers().get(header::UPGRADE).cloned()
    } else {
        None
    };
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));

    let (mut parts, body) = req.into_parts();
    let log = access_log::enabled(inner.config.access_log);
    let request_id = match parts.headers.get(&X_REQUEST_ID) {
        Some(v) => v.clone(),
        None => {
            let id = new_request_id();
            parts.headers.insert(X_REQUEST_ID.clone(), id.clone());
            id
        }
    };
    let log_ctx = log.then(|| LogCtx {
        method: parts.method.clone(),
        path: parts.uri.path_and_query().cloned(),
        request_id,
    });

    // Forwarding headers, computed before hop-by-hop removal changes nothing
    // they depend on.
    let host = match parts.uri.authority() {
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => parts.headers.get(header::HOST).cloned(),
    };
    strip_hop_by_hop(&mut parts.headers);
    if let Some(h) = &host {
        if !parts.headers.contains_key(header::HOST) {
            parts.headers.insert(header::HOST, h.clone());
        }
        if !parts.headers.contains_key(&X_FORWARDED_HOST) {
            parts.headers.insert(X_FORWARDED_HOST.clone(), h.clone());
        }
    }
    let xff = match parts.headers.get(&X_FORWARDED_FOR) {
        Some(prev) => {
            let mut v = Vec::with_capacity(prev.len() + 2 + conn.peer_ip.len());
            v.extend_from_slice(prev.as_bytes());
            v.extend_from_slice(b", ");
            v.extend_from_slice(conn.peer_ip.as_bytes());
            HeaderValue::from_bytes(&v).unwrap_or_else(|_| conn.peer_ip.clone())
        }
        None => conn.peer_ip.clone(),
    };
    parts.headers.insert(X_FORWARDED_FOR.clone(), xff);
    // Incoming X-Forwarded-Proto/Host are kept (a TLS terminator in front
    // of cutover sets them); X-Forwarded-For is appended to, never replaced.
    if !parts.headers.contains_key(&X_FORWARDED_PROTO) {
        parts
            .headers
            .insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    }
    if let Some(u) = &upgrade {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, u.clone());
    }
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        let pq = parts.uri.path_and_query().cloned();
        let mut p = http::uri::Parts::default();
        p.path_and_query = pq.or_else(|| Some(http::uri::PathAndQuery::from_static("/")));
        parts.uri = Uri::from_parts(p).unwrap_or_else(|_| Uri::from_static("/"));
    }
    parts.version = Version::HTTP_11;
    let mut upstream_req = Some(Request::from_parts(
        parts,
        ReqBody {
            inner: Some(body),
            remaining: limit,
        },
    ));

    // Checkout, retrying on other targets of the same set while nothing was
    // sent. Pooled connections that turn out stale give the request back
    // too (try_send_request), and are retried on a fresh connection.
    let cfg = &inner.config;
    let max_attempts = route.set.targets.len().min(8) + 2;
    let mut last_error = String::new();
    let mut response = None;
    for _ in 0..max_attempts {
        let target = guard.target();
        let mut sender = match target.checkout(cfg.connect_timeout).await {
            Ok(s) => s,
            Err(e) => {
                if let Some(prev) = target.set_health(Health::Unhealthy, Some(e.clone())) {
                    inner.health_changed(&route.set, guard.idx(), prev);
                }
                tracing::warn!(service = &*route.service.name, error = %e, "upstream connect failed, trying another target");
                last_error = e;
                tried |= 1u64.checked_shl(guard.idx() as u32).unwrap_or(0);
                match route.set.pick(tried) {
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
        let req = upstream_req.take().expect("request is kept until sent");
        let sent = tokio::select! {
            biased;
            r = tokio::time::timeout(cfg.response_header_timeout, sender.try_send_request(req)) => r,
            _ = route.set.cut.cancelled() => {
                route.set.cut_requests.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(service = &*route.service.name, "request waiting for its response was cut at the drain deadline");
                return finish_local(&route, guard, start, StatusCode::SERVICE_UNAVAILABLE, PAGE_503, log_ctx);
            }
        };
        match sent {
            Ok(Ok(resp)) => {
                response = Some((resp, sender));
                break;
            }
            Ok(Err(mut e)) => {
                if let Some(req) = e.take_message() {
                    // Not written to the connection: safe to retry.
                    upstream_req = Some(req);
                    last_error = e.error().to_string();
                    continue;
                }
                let err = e.into_error();
                let too_large = {
                    let mut src: Option<&(dyn StdError + 'static)> = Some(&err);
                    let mut found = false;
                    while let Some(s) = src {
                        if matches!(
                            s.downcast_ref::<ReqBodyError>(),
                            Some(ReqBodyError::TooLarge)
                        ) {
                            found = true;
                            break;
                        }
                        src = s.source();
                    }
                    found
                };
                if too_large {
                    return finish_local(
                        &route,
                        guard,
                        start,
                        StatusCode::PAYLOAD_TOO_LARGE,
                        PAGE_413,
                        log_ctx,
                    );
                }
                tracing::warn!(service = &*route.service.name, target = %guard.target().addr, error = %err, "upstream request failed");
                return finish_local(
                    &route,
                    guard,
                    start,
                    StatusCode::BAD_GATEWAY,
                    PAGE_502,
                    log_ctx,
                );
            }
            Err(_) => {
                tracing::warn!(service = &*route.service.name, target = %guard.target().addr, "upstream did not send response headers in {:?}", cfg.response_header_timeout);
                return finish_local(
                    &route,
                    guard,
                    start,
                    StatusCode::GATEWAY_TIMEOUT,
                    PAGE_504,
                    log_ctx,
                );
            }
        }
    }
    let Some((mut resp, sender)) = response else {
        tracing::warn!(service = &*route.service.name, error = %last_error, "no target of the service could be reached");
        return finish_local(
            &route,
            guard,
            start,
            StatusCode::BAD_GATEWAY,
            PAGE_502,
            log_ctx,
        );
    };

    let status = resp.status();
    let mut sender = Some(sender);
    if status == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            // Counted before the response goes out so the set never looks
            // idle between the 101 and the relay starting.
            let upgraded = Upgraded::enter(guard.set(), guard.idx());
            let set = route.set.clone();
            let service = route.service.name.clone();
            inner.tasks.spawn(async move {
                let (c, u) = match tokio::join!(client_upgrade, upstream_upgrade) {
                    (Ok(c), Ok(u)) => (c, u),
                    _ => return,
                };
                match crate::websocket::relay(TokioIo::new(c), TokioIo::new(u), set.close_upgraded.clone()).await {
                    Ok(out) if out.closed_at_deadline => {
                        set.closed_websockets.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(service = &*service, color = set.color.as_str(), "upgraded connection closed at its drain deadline");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(service = &*service, error = %e, "upgraded connection ended with an error"),
                }
                drop(upgraded);
            });
        }
        // The upstream connection now belongs to the relay (or is useless).
        sender = None;
    } else {
        strip_hop_by_hop(resp.headers_mut());
    }

    let (parts, body) = resp.into_parts();
    let mut tail = Tail {
        route,
        guard: Some(guard),
        sender,
        start,
        status: status.as_u16(),
        bytes: 0,
        log: log_ctx,
        note: None,
        done: false,
    };
    if body.is_end_stream() {
        // hyper never polls a body that says it is over (204, HEAD,
        // Content-Length: 0), so settle now or the connection is not reused.
        tail.finish(true);
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

/// Answers with a proxy page for a routed request, accounted like a proxied one.
fn finish_local(
    route: &Arc<Route>,
    guard: InFlight,
    start: Instant,
    status: StatusCode,
    page: &'static str,
    log: Option<LogCtx>,
) -> Response<RespBody> {
    let mut tail = Tail {
        route: route.clone(),
        guard: Some(guard),
        sender: None,
        start,
        status: status.as_u16(),
        bytes: page.len() as u64,
        log,
        note: None,
        done: false,
    };
    tail.finish(true);
    local(status, page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("trailer", "x"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authorization", "secret"),
            ("x-kept", "yes"),
        ] {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-kept"]);

        // Several Connection headers: each one's names go.
        let mut h = HeaderMap::new();
        h.append(header::CONNECTION, HeaderValue::from_static("Keep-Alive"));
        h.append(header::CONNECTION, HeaderValue::from_static("x-a"));
        h.insert(
            HeaderName::from_static("x-a"),
            HeaderValue::from_static("1"),
        );
        strip_hop_by_hop(&mut h);
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn each_hop_by_hop_name_is_found_and_removed() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name), Some(i), "{name}");
            // Repeated, so that removal has to take every value.
            let mut h = HeaderMap::new();
            h.append(name.clone(), HeaderValue::from_static("close"));
            h.append(name.clone(), HeaderValue::from_static("close"));
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            strip_hop_by_hop(&mut h);
            let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
            assert_eq!(left, ["content-type"], "{name}");
        }
        assert_eq!(hop_by_hop_index(&header::CONTENT_LENGTH), None);
        assert_eq!(hop_by_hop_index(&X_REQUEST_ID), None);
    }

    #[test]
    fn request_ids_are_unique_hex() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(a.as_bytes().iter().all(u8::is_ascii_hexdigit));
    }

    #[test]
    fn connection_tokens_are_case_insensitive() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(connection_has(&h, "upgrade"));
        assert!(!connection_has(&h, "close"));
    }
}
