//! Readiness of one app for an external load balancer:
//! `/_cutover/ready/<project>/<service>`, or `/_cutover/ready` for the app
//! the request's Host routes to. 200 while its live color has a healthy
//! target, 503 when none is (the balancer takes this node out), 404 when no
//! such app is routed. `/_cutover/health` stays the daemon's liveness: it
//! answers 200 whatever the apps do.

use http::{Request, StatusCode};
use hyper::body::Incoming;

use super::headers::request_host;
use crate::context::Context;

pub(crate) const READY_PATH: &str = "/_cutover/ready";

const READY: &str = "ready\n";
const NOT_READY: &str = "503 Service Unavailable: the app has no healthy target\n";
const NO_APP: &str = "404 Not Found: no app is routed by that name or host\n";

/// The answer to a readiness request, or `None` for any other path.
pub(super) fn readiness(
    inner: &Context,
    req: &Request<Incoming>,
) -> Option<(StatusCode, &'static str)> {
    let rest = req.uri().path().strip_prefix(READY_PATH)?;
    let snapshot = inner.router.load();
    let route = match rest.strip_prefix('/') {
        Some(name) if !name.is_empty() => snapshot.by_service.get(name),
        _ if rest.is_empty() || rest == "/" => snapshot.table.lookup(request_host(req), "/"),
        // `/_cutover/readyz` and the like are not this endpoint.
        _ => return None,
    };
    Some(match route {
        None => (StatusCode::NOT_FOUND, NO_APP),
        Some(r) if r.set.targets.iter().any(|t| t.is_healthy()) => (StatusCode::OK, READY),
        Some(_) => (StatusCode::SERVICE_UNAVAILABLE, NOT_READY),
    })
}
