//! What the proxy answers itself: short text pages, logged and counted like
//! every other answer.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::body::{RespBody, Tail};
use super::headers::{new_request_id, X_REQUEST_ID};
use crate::access_log::{self, LogCtx};
use crate::context::Context;
use crate::router::Route;
use crate::target::InFlight;

pub(super) const PAGE_400_HOST: &str =
    "400 Bad Request: the request must name exactly one host (RFC 9112 3.2)\n";
pub(super) const PAGE_405_CONNECT: &str =
    "405 Method Not Allowed: cutover is a reverse proxy, not a forward proxy; CONNECT is not served\n";
pub(super) const PAGE_400_BODY: &str =
    "400 Bad Request: the request body could not be read (malformed chunked encoding, or the client stopped in the middle)\n";
pub(super) const PAGE_408_BODY: &str =
    "408 Request Timeout: the client stopped sending its request body\n";
pub(super) const PAGE_400_PATH: &str =
    "400 Bad Request: the path climbs above the root with '..'\n";
pub(super) const PAGE_308: &str = "308 Permanent Redirect: this host is served over HTTPS\n";
pub(super) const PAGE_404: &str = "404 Not Found: no service is routed for this host and path\n";
pub(super) const PAGE_413: &str =
    "413 Payload Too Large: the request body exceeds the proxy's limit\n";
pub(super) const PAGE_502: &str = "502 Bad Gateway: the service's targets could not be reached\n";
pub(super) const PAGE_503: &str =
    "503 Service Unavailable: the request was cut while its target set drained\n";
pub(super) const PAGE_504: &str = "504 Gateway Timeout: the target did not answer in time\n";

/// A short page the proxy answers itself.
pub(super) fn local(status: StatusCode, text: &'static str) -> Response<RespBody> {
    answer(
        status,
        Bytes::from_static(text.as_bytes()),
        "text/plain; charset=utf-8",
    )
}

fn answer(status: StatusCode, body: Bytes, content_type: &'static str) -> Response<RespBody> {
    let mut resp = Response::new(RespBody::Local { data: Some(body) });
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A page for a request no service took: counted as unrouted.
pub(super) fn unrouted(
    inner: &Context,
    req: &Request<Incoming>,
    start: Instant,
    status: StatusCode,
    page: &'static str,
) -> Response<RespBody> {
    inner.unrouted.record(status.as_u16());
    if access_log::enabled(inner.config.access_log) {
        let ctx = log_ctx(req);
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
pub(super) fn log_ctx(req: &Request<Incoming>) -> LogCtx {
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

/// A page for a routed request, accounted like a proxied one.
pub(super) fn routed(
    route: &Arc<Route>,
    guard: InFlight,
    start: Instant,
    answer: Answer,
    log: Option<LogCtx>,
) -> Response<RespBody> {
    let Answer(status, page) = answer;
    let mut tail = Tail::new(
        route.clone(),
        guard,
        start,
        status.as_u16(),
        page.len() as u64,
        log,
    );
    tail.finish(true, None);
    local(status, page)
}

/// A route in maintenance: 503 with its page and `Retry-After`, accounted
/// like a proxied request.
pub(super) fn maintenance(
    route: &Arc<Route>,
    gate: &crate::maintenance::Gate,
    guard: InFlight,
    start: Instant,
    log: Option<LogCtx>,
) -> Response<RespBody> {
    let status = StatusCode::SERVICE_UNAVAILABLE;
    let mut tail = Tail::new(
        route.clone(),
        guard,
        start,
        status.as_u16(),
        gate.page.len() as u64,
        log,
    );
    tail.finish(true, None);
    let mut resp = answer(status, gate.page.clone(), "text/plain; charset=utf-8");
    resp.headers_mut()
        .insert(header::RETRY_AFTER, gate.retry_after.clone());
    resp
}

/// The answer to a CA's HTTP-01 validation: the token's key authorization.
pub(super) fn key_authorization(text: String) -> Response<RespBody> {
    answer(
        StatusCode::OK,
        Bytes::from(text),
        "application/octet-stream",
    )
}

/// Plain HTTP to a TLS route: 308 keeps the method and body, so a POST is
/// redirected as a POST. Accounted like a proxied request.
pub(super) fn to_https(
    route: &Arc<Route>,
    guard: InFlight,
    start: Instant,
    location: HeaderValue,
    log: Option<LogCtx>,
) -> Response<RespBody> {
    let mut resp = routed(route, guard, start, Answer::TO_HTTPS, log);
    resp.headers_mut().insert(header::LOCATION, location);
    resp
}

/// A status and the page that goes with it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Answer(pub StatusCode, pub &'static str);

impl Answer {
    pub const NO_SINGLE_HOST: Answer = Answer(StatusCode::BAD_REQUEST, PAGE_400_HOST);
    pub const CONNECT: Answer = Answer(StatusCode::METHOD_NOT_ALLOWED, PAGE_405_CONNECT);
    pub const ABOVE_ROOT: Answer = Answer(StatusCode::BAD_REQUEST, PAGE_400_PATH);
    pub const BAD_BODY: Answer = Answer(StatusCode::BAD_REQUEST, PAGE_400_BODY);
    pub const BODY_TIMEOUT: Answer = Answer(StatusCode::REQUEST_TIMEOUT, PAGE_408_BODY);
    pub const TOO_LARGE: Answer = Answer(StatusCode::PAYLOAD_TOO_LARGE, PAGE_413);
    pub const BAD_GATEWAY: Answer = Answer(StatusCode::BAD_GATEWAY, PAGE_502);
    pub const CUT: Answer = Answer(StatusCode::SERVICE_UNAVAILABLE, PAGE_503);
    pub const TIMEOUT: Answer = Answer(StatusCode::GATEWAY_TIMEOUT, PAGE_504);
    pub const TO_HTTPS: Answer = Answer(StatusCode::PERMANENT_REDIRECT, PAGE_308);
}
