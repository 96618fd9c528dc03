//! One line per request on the `cutover::access` tracing target.
//!
//! The fields are captured only when the line will be written (config on and
//! the subscriber listening), and without allocating: method, path and
//! request id are cheap clones of what the request already holds.

use http::uri::PathAndQuery;
use http::{HeaderValue, Method};

pub(crate) const TARGET: &str = "cutover::access";

pub(crate) struct LogCtx {
    pub method: Method,
    pub path: Option<PathAndQuery>,
    pub request_id: HeaderValue,
}

pub(crate) fn enabled(config_on: bool) -> bool {
    config_on && tracing::enabled!(target: TARGET, tracing::Level::INFO)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn write(
    ctx: &LogCtx,
    service: &str,
    upstream: &str,
    color: &str,
    status: u16,
    duration_us: u64,
    bytes: u64,
    note: Option<&str>,
) {
    let path = ctx.path.as_ref().map(|p| p.as_str()).unwrap_or("/");
    let request_id = ctx.request_id.to_str().unwrap_or("-");
    tracing::info!(
        target: TARGET,
        service,
        // Not `target`: JSON logs already use that key for the log target
        // (`cutover::access`), and a parser keeps only one of the two.
        upstream,
        color,
        status,
        duration_us,
        bytes,
        method = ctx.method.as_str(),
        path,
        request_id,
        note = note.unwrap_or(""),
    );
}
